"""``depthhints ui``: the MLflow UI on the project's store, with links comparing our evaluation
runs with the paper's reference runs.

The store is resolved as everywhere else (``--tracking-uri``, else ``$MLFLOW_TRACKING_URI``, else
the demo's ``outputs/demo/runs/mlflow.db``). The paper's runs are logged first (idempotent, see
:mod:`dashboards.paper`), then ``mlflow server`` is started on that store, bound to
``127.0.0.1`` unless ``--host`` says otherwise, and the links are printed (:func:`links`): the
experiment's runs table filtered to the evaluation runs of the newest sweep (the experiment's
own page opens on MLflow's GenAI overview), and per row of that sweep with a published result
evaluated alike (:func:`dashboards.table.match_paper`) a compare page of our runs of the row and
the paper's. Ctrl-C (or SIGTERM) stops the server with every process it started.

Server settings (:func:`server_command`):

- ``--workers 1`` and no job runner (``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false`` unless set):
  one person browsing needs no more; the defaults start 4 uvicorn workers and 7 huey consumers
  for GenAI jobs (2.3 GB of memory, measured).
- ``--artifacts-destination <db folder>/mlartifacts`` for a SQLite store: our runs' artifact
  URIs are absolute ``file://`` paths (:func:`depthhints.tracking.default_artifact_location`),
  which the server reads directly, whatever its flags; the destination only decides where runs
  created *through* this server (``MLFLOW_TRACKING_URI=http://127.0.0.1:5000``) put their
  artifacts: next to the others instead of ``./mlartifacts`` in the current folder.
- A store URI with a password (``postgresql://user:password@db/mlflow``) goes to the server in
  ``MLFLOW_BACKEND_STORE_URI`` (:func:`server_env`), not on its command line, which every user
  of the machine can read (``ps``); messages show it masked (``user:***@``).

A store that already is a tracking server (``http(s)://``) is not served again: the links point
at it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

from depthhints.errors import ConfigError

if TYPE_CHECKING:
    from dashboards.runs import ResultRun

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000
EXPERIMENT = "depth-hints"  # = depthhints.train.reporting.DEFAULT_EXPERIMENT (not imported: slow)
STARTUP_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
LOG_TAIL_LINES = 30


# ----------------------------------------------------------------------------------- links
def runs_url(base_url: str, experiment_id: str, search_filter: str = "") -> str:
    """The UI's runs table of one experiment, its navigation set to model training (not GenAI),
    filtered by ``search_filter`` (MLflow's search syntax) when given."""
    query = {"workflowType": "machine_learning"}
    if search_filter:
        query["searchFilter"] = search_filter
    url = f"{base_url.rstrip('/')}/#/experiments/{experiment_id}/runs"
    return f"{url}?{urlencode(query, quote_via=quote)}"


def comparison_url(base_url: str, experiment_id: str, run_ids: Sequence[str]) -> str:
    """The UI's compare page of ``run_ids`` (columns in this order) of one experiment."""
    runs = quote(json.dumps(list(run_ids), separators=(",", ":")), safe="")
    experiments = quote(json.dumps([str(experiment_id)]), safe="")
    return f"{base_url.rstrip('/')}/#/compare-runs?runs={runs}&experiments={experiments}"


def sweep_filter(sweep: Sequence[ResultRun]) -> str:
    """The search filter of the runs table showing the evaluation runs of one sweep (our
    evaluation runs of it, :func:`dashboards.report.select_sweep`)."""
    tags = sweep[0].tags if sweep else {}
    name, run_id = tags.get("sweep"), tags.get("sweep_run_id")
    if name and run_id:  # the sweep's name can be reused: its run id tells the runs apart
        return f"tags.sweep = '{name}' and tags.sweep_run_id = '{run_id}'"
    if name:
        return f"tags.sweep = '{name}' and tags.run_kind = 'evaluation'"
    return "tags.source = 'ours' and tags.run_kind = 'evaluation'"


def paper_comparisons(
    ours: Sequence[ResultRun], papers: Sequence[ResultRun]
) -> list[tuple[str, list[str]]]:
    """(label, run ids) of one compare page per row of ``ours`` with a published counterpart
    (:func:`dashboards.table.compare`): our runs of the row (its seeds), then the paper's; the
    label says how the two differ, if they do."""
    from dashboards.table import compare

    pairs = []
    for row in compare(ours, papers):
        if row.match:
            caveats = f" ({'; '.join(row.caveats)})" if row.caveats else ""
            label = f"{row.label} {row.evaluation} vs {row.match.paper.name}{caveats}"
            pairs.append((label, [*(run.run_id for run in row.runs), row.match.paper.run_id]))
    return pairs


def links(
    base_url: str, experiment_id: str, ours: Sequence[ResultRun], papers: Sequence[ResultRun]
) -> list[str]:
    """The lines ``depthhints ui`` prints: the runs table of the newest sweep of ``ours`` (our
    evaluation runs, newest first) and a compare page per row of it that has a paper row."""
    from dashboards.report import select_sweep

    sweep = select_sweep(ours, None)
    if not sweep:
        return [
            f"MLflow UI: {runs_url(base_url, experiment_id)}",
            "(no evaluation runs of ours yet: only the paper's, tag source=paper)",
        ]
    name = sweep[0].tags.get("sweep")
    shown = f"the evaluation runs of the newest sweep, {name}" if name else "our evaluation runs"
    lines = [
        f"MLflow UI: {runs_url(base_url, experiment_id, sweep_filter(sweep))}",
        f"  ({shown}; clear the search box for every run)",
    ]
    pairs = paper_comparisons(sweep, papers)
    if not pairs:
        return [*lines, "(no row of it has a published result evaluated alike)"]
    lines.append("ours vs the paper, one compare page per row:")
    lines += [f"  {label}: {comparison_url(base_url, experiment_id, ids)}" for label, ids in pairs]
    return lines


# ----------------------------------------------------------------------------------- server
def server_command(tracking_uri: str, host: str, port: int) -> list[str]:
    """``python -m mlflow server`` on ``tracking_uri`` (see the module docstring for the flags)."""
    from depthhints.tracking import default_artifact_location

    command = [sys.executable, "-m", "mlflow", "server"]
    if not _has_password(tracking_uri):
        command += ["--backend-store-uri", tracking_uri]
    command += ["--host", host, "--port", str(port), "--workers", "1"]
    artifacts = default_artifact_location(tracking_uri)
    if artifacts:
        command += ["--artifacts-destination", artifacts]
    return command


def server_env(tracking_uri: str) -> dict[str, str]:
    """The server's environment: ours, no job runner unless set, and the store URI when it holds
    a password (kept off the command line)."""
    env = dict(os.environ)
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    if _has_password(tracking_uri):
        env["MLFLOW_BACKEND_STORE_URI"] = tracking_uri
    return env


def _has_password(uri: str) -> bool:
    from depthhints.tracking import redact_uri

    return redact_uri(uri) != uri


def check_port_free(host: str, port: int) -> None:
    """A clear error when something already listens on ``host``:``port``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as error:
            raise ConfigError(
                f"cannot serve the MLflow UI on {host}:{port}: {error.strerror or error}; "
                "another server (an MLflow UI already running?) may use the port: pass --port"
            ) from None


def _browse_host(host: str) -> str:
    """The address to open for a server bound to ``host`` (a wildcard means every interface)."""
    if host in ("0.0.0.0", ""):
        return DEFAULT_HOST
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


class _Server:
    """A ``mlflow server`` subprocess in its own process group, its output in a log file."""

    def __init__(self, tracking_uri: str, host: str, port: int) -> None:
        check_port_free(host, port)
        self.url = f"http://{_browse_host(host)}:{port}"
        fd, log_path = tempfile.mkstemp(prefix="depthhints-mlflow-ui-", suffix=".log")
        self.log_path = Path(log_path)
        with os.fdopen(fd, "wb") as log:
            self.process = subprocess.Popen(
                server_command(tracking_uri, host, port),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=server_env(tracking_uri),
                start_new_session=True,  # own process group: stopped as a whole, not by Ctrl-C
            )

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def failure(self, what: str) -> ConfigError:
        from depthhints.tracking import redact_uri

        tail = redact_uri(self.log_tail())
        return ConfigError(f"{what}; the server's last output:\n{tail or '(none)'}")

    def wait_healthy(self, timeout: float = STARTUP_TIMEOUT_S) -> None:
        """Return once ``/health`` answers; a clear error if the server exits or stays silent."""
        deadline = time.monotonic() + timeout
        while True:
            code = self.process.poll()
            if code is not None:
                raise self.failure(f"the MLflow server exited with status {code} at start-up")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise self.failure(
                    f"the MLflow server did not answer {self.url}/health in {timeout:.0f} s"
                )
            time.sleep(0.5)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM the whole process group, SIGKILL what is left after ``timeout``; remove the
        log."""
        group = self.process.pid  # the session leader's pid is the group id
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(max(0.0, deadline - time.monotonic()))
        while _group_alive(group) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _group_alive(group):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)
        self.log_path.unlink(missing_ok=True)


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _serve(tracking_uri: str, host: str, port: int) -> Iterator[_Server]:
    _check_servable(tracking_uri)
    server = _Server(tracking_uri, host, port)
    try:
        server.wait_healthy()
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def mlflow_server(
    tracking_uri: str, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT
) -> Iterator[str]:
    """The MLflow UI on ``tracking_uri``, serving from entry to exit; yields its base URL.

    The server and every process it starts are stopped on exit (also on an error or Ctrl-C).
    """
    with _serve(tracking_uri, host, port) as server:
        yield server.url


def _check_servable(tracking_uri: str) -> None:
    from depthhints.tracking import redact_uri

    if tracking_uri.startswith(("http://", "https://", "databricks")):
        raise ConfigError(
            f"{redact_uri(tracking_uri)} is a tracking server already: open it instead of "
            "starting another"
        )


# ----------------------------------------------------------------------------------- serving
class _Stop(Exception):
    """SIGTERM, turned into an exception so the server is stopped on the way out."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def serve_ui(
    tracking_uri: str | None = None,
    experiment_name: str = EXPERIMENT,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    log_paper: bool = True,
) -> None:
    """Log the paper's runs (unless ``log_paper`` is False), start the UI on the store, print its
    links and serve until Ctrl-C / SIGTERM; a tracking server is only linked to."""
    from mlflow import MlflowClient

    from dashboards.paper import log_paper_runs
    from dashboards.runs import experiment_id as find_experiment
    from dashboards.runs import resolve_store, result_runs
    from depthhints.tracking import without_credentials

    tracking_uri = resolve_store(tracking_uri)
    if log_paper:
        log_paper_runs(tracking_uri, experiment_name)
    client = MlflowClient(tracking_uri)
    experiment = find_experiment(client, experiment_name)
    ours = result_runs(client, experiment, "ours")
    papers = result_runs(client, experiment, "paper")

    def print_links(base_url: str) -> None:
        print("\n".join(links(base_url, experiment, ours, papers)), flush=True)

    if tracking_uri.startswith(("http://", "https://")):
        print_links(without_credentials(tracking_uri))  # the browser asks for the login
        return

    previous = signal.signal(signal.SIGTERM, _raise_stop)
    try:
        with _serve(tracking_uri, host, port) as server:
            print_links(server.url)
            print("serving; Ctrl-C stops the server", flush=True)
            while server.process.poll() is None:
                time.sleep(0.5)
            raise server.failure(f"the MLflow server stopped (status {server.process.returncode})")
    except (KeyboardInterrupt, _Stop):
        print("MLflow UI stopped", flush=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
