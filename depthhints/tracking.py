"""MLflow tracking of training runs: rank 0 logs through a ``Tracker``, other ranks get a no-op.

Where runs go: ``default_tracking_uri(output_dir)`` is an embedded SQLite store
``sqlite:///<output_dir>/mlflow.db`` (no server to start) unless ``MLFLOW_TRACKING_URI`` is set;
an explicit ``--tracking-uri`` wins over both. New experiments on a SQLite store keep their
artifacts in ``<db folder>/mlartifacts``. Both are absolute paths, never relative to the cwd (a
Ray worker runs in another cwd than the driver). Only ``mlflow.MlflowClient`` is used: no global
active run, so a tracker is safe inside a Ray worker next to other MLflow users. MLflow is
imported only once a ``Tracker`` is created: ``NullTracker`` (``--no-tracking``) and the URI
helpers work without it installed.

Resilience: a tracking server that is down at start or goes down mid-run never stops training
and loses no record.

- Every call is first tried directly (one ``log_batch`` per call). Only when it fails, or while
  earlier records are still pending, the record is appended to the journal
  ``<fallback_dir>/mlflow_pending.jsonl`` (line 1: the run's identity; then one record per call).
  Artifacts that could not be uploaded are copied to ``<fallback_dir>/mlflow_pending_artifacts/``
  first, so cleaning up the run folder cannot lose them.
- Pending records are retried in order, batched with ``log_batch``, on a later call once
  ``retry_interval`` seconds (30) have passed; the interval doubles while the outage lasts, up
  to 10 minutes, so a dead server costs one failed request now and then, not one per step. HTTP
  calls run with ``MLFLOW_HTTP_REQUEST_TIMEOUT=5`` and ``MLFLOW_HTTP_REQUEST_MAX_RETRIES=0``
  (the journal does the retrying) unless the user set these variables; they are set only around
  the tracker's own calls. A refused connection fails in milliseconds; a host that does not
  answer blocks the call that retries for the 5 s timeout (under 1 % of the time once the
  interval has grown); buffered calls cost well under a millisecond.
- A run that could not be created at start is created once the server answers (with the original
  start time), then the journal is replayed. Metrics keep the timestamp of the original call, and
  MLflow's SQL stores ignore a metric identical in key, value, step and timestamp, so a batch that
  is sent twice (its reply lost) is not duplicated; params and tags are idempotent too.
- ``flush()`` tries to deliver everything and returns how many records remain; ``end()`` flushes.
  What cannot be delivered stays in the journal: ``sync_pending(dir)`` (the CLI
  ``depthhints sync-tracking <dir> [--tracking-uri URI]``) replays it later. Do not sync a folder
  whose training is still running. A run whose journal ends without an ``end`` record (the
  training crashed) is replayed but left RUNNING, as a resumed training would continue it.
- A record MLflow refuses for good (a 4xx answer, e.g. a param whose value changed on resume) is
  retried entity by entity; the refused entities go to ``mlflow_rejected.jsonl`` with the error
  and a warning, and the rest is delivered.
- A journal found at start is continued when it belongs to the same run (same ``run_id``, or both
  without one: a training restarted while offline); another run's journal is renamed to
  ``mlflow_pending.<id>.jsonl`` and synced on its own.

Credentials: a tracking URI may carry a login (``http://user:password@host:5000``). Every
message this module logs and every file it writes (the journal, ``mlflow_rejected.jsonl``)
shows it through :func:`redact_uri` (``http://user:***@host:5000``), ``run_url`` has no
login at all, and MLflow's own ``View run ... at: <URI>`` line is not printed for such a URI
(:func:`login_hidden`). A journal therefore does not know the password: ``sync_pending``
uses the URI given to it, or ``$MLFLOW_TRACKING_URI`` when that is the recorded one, or else
the recorded URI without its login (MLflow then takes it from ``MLFLOW_TRACKING_USERNAME`` and
``MLFLOW_TRACKING_PASSWORD``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Self
from urllib.parse import urlsplit, urlunsplit
from urllib.request import url2pathname

import numpy as np

from depthhints.errors import ConfigError

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from depthhints.config import TrainConfig

log = logging.getLogger(__name__)

JOURNAL = "mlflow_pending.jsonl"
PENDING_ARTIFACTS = "mlflow_pending_artifacts"
REJECTED = "mlflow_rejected.jsonl"
RETRY_INTERVAL_S = 30.0  # first retry after a failure; doubles while the outage lasts ...
MAX_RETRY_INTERVAL_S = 600.0  # ... up to this
HTTP_ENV = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "5", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
QUIET_URLS = "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"  # MLflow prints a run's URL as it ends
STATUSES = ("FINISHED", "FAILED", "KILLED")
MAX_PARAM_LENGTH, MAX_TAG_LENGTH = 6000, 8000  # MLflow's limits on values
BATCH_LIMITS = {"metrics": 1000, "params": 100, "tags": 100}  # entities per log_batch
MASK = "***"  # what redact_uri shows instead of a password
# scheme://user:password@ — the password runs to the last @ before the host's / ? # or a space
_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/?#@\s:]*):[^/?#\s]*@")


# ----------------------------------------------------------------------------- credentials
def redact_uri(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@host`` in it masked:
    ``http://user:***@host:5000``. For URIs and messages that may contain one."""
    return _PASSWORD.sub(rf"\g<head>:{MASK}@", text)


def without_credentials(uri: str) -> str:
    """``uri`` without its ``user:password@`` part: a link to open in a browser (which asks
    for the login itself)."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def login_hidden(tracking_uri: str) -> contextlib.AbstractContextManager[None]:
    """Around MLflow calls that end a run: on a tracking server MLflow prints ``View run ... at:
    <tracking URI>/#/...``, which would show a password in ``tracking_uri``; not printed then."""
    return _env_defaults(_no_url_printing(tracking_uri))


def _no_url_printing(tracking_uri: str) -> dict[str, str]:
    return {QUIET_URLS: "true"} if redact_uri(tracking_uri) != tracking_uri else {}


def journal_uri(recorded: str, candidates: tuple[str | None, ...] = ()) -> str:
    """The URI that a journal's (redacted) ``recorded`` one stands for: the first candidate
    that redacts to it, else ``recorded`` without a masked login."""
    for uri in candidates:
        if uri and redact_uri(uri) == recorded:
            return uri
    return without_credentials(recorded) if f":{MASK}@" in recorded else recorded


# ----------------------------------------------------------------------------- configuration
def default_tracking_uri(output_dir: str | os.PathLike) -> str:
    """``$MLFLOW_TRACKING_URI`` if set, else the embedded store ``<output_dir>/mlflow.db``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or (
        f"sqlite:///{Path(output_dir).resolve() / 'mlflow.db'}"
    )


def check_store_uri(uri: str | None, existing: bool = False) -> str | None:
    """The store in effect: ``uri`` (from ``--tracking-uri``), else ``$MLFLOW_TRACKING_URI``
    (None: neither is set), refused with a ConfigError naming it when MLflow would misread it:
    a plain path (MLflow would make a folder store, a backend in maintenance mode) and, with
    ``existing`` (commands that read a store), a SQLite file that does not exist (MLflow would
    create an empty one)."""
    what = "--tracking-uri"
    if not uri:
        uri, what = os.environ.get("MLFLOW_TRACKING_URI") or None, "$MLFLOW_TRACKING_URI"
    if uri is None:
        return None
    if "://" not in uri and not uri.startswith("databricks"):
        raise ConfigError(
            f"{what} {uri!r} is a path, not a store URI; use sqlite:///<path> for a database "
            "file, or http(s)://host:port for a server"
        )
    database = Path(uri.removeprefix("sqlite:///"))
    if existing and uri.startswith("sqlite:///") and not database.is_file():
        raise ConfigError(
            f"{what} {uri}: no database file at {database.resolve()}; check the path "
            "(training, `depthhints evaluate` and the demo create a store)"
        )
    return uri


def ensure_experiment(client: MlflowClient, name: str, artifact_location: str | None = None) -> str:
    """The id of experiment ``name``, created (or restored from the bin) when needed."""
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            return client.create_experiment(name, artifact_location=artifact_location)
        except _mlflow_exception():  # created meanwhile by another process?
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
    if experiment.lifecycle_stage == "deleted":
        client.restore_experiment(experiment.experiment_id)
    return experiment.experiment_id


def default_artifact_location(tracking_uri: str) -> str | None:
    """``<db folder>/mlartifacts`` for a SQLite file store; None (the server decides) otherwise."""
    if not tracking_uri.startswith("sqlite:///") or ":memory:" in tracking_uri:
        return None
    db = Path(tracking_uri.removeprefix("sqlite:///")).resolve()
    return (db.parent / "mlartifacts").as_uri()


def config_params(config: TrainConfig) -> dict[str, str]:
    """Every TrainConfig field as an MLflow param."""
    return flatten_params(config.to_dict())


def flatten_params(values: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested mappings become dotted keys; lists are JSON (``[0, -1, 1]``), None is ``"None"``."""
    out: dict[str, str] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            out.update(flatten_params(value, f"{prefix}{key}."))
            continue
        text = (
            json.dumps(list(value), default=str) if isinstance(value, list | tuple) else str(value)
        )
        out[f"{prefix}{key}"] = _truncate(text, MAX_PARAM_LENGTH)
    return out


def run_tags(
    config: TrainConfig, world_size: int, cluster_size: int | None = None
) -> dict[str, str]:
    """The tags every training run carries: code version, data, hint store, scale.

    ``git_commit`` (also as ``mlflow.source.git.commit``, which the MLflow UI shows),
    ``data_root``, ``split``, ``hint_store_hash`` (the store manifest's configuration hash when
    training with hints, else ``"none"``), ``world_size`` and, when given, ``ray_cluster_size``.
    """
    commit = _git_commit()
    tags = {
        "git_commit": commit,
        "mlflow.source.git.commit": commit,
        "data_root": os.path.abspath(config.data_path),
        "split": config.split,
        "hint_store_hash": _hint_store_hash(config),
        "world_size": str(world_size),
    }
    if cluster_size is not None:
        tags["ray_cluster_size"] = str(cluster_size)
    return tags


def _git_commit() -> str:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip() or "unknown"


def _hint_store_hash(config: TrainConfig) -> str:
    if not config.use_depth_hints:
        return "none"
    from depthhints.data.hint_store import open_store
    from depthhints.errors import DepthHintsError

    try:
        manifest = open_store(config.hint_path).manifest
    except (DepthHintsError, OSError) as error:
        log.warning("cannot read the hint store manifest for the run tags: %s", error)
        return "unreadable"
    return manifest.config_hash if manifest is not None else "none"


# ----------------------------------------------------------------------------- trackers
class _Base:
    """Context manager: the run ends FINISHED, FAILED on an exception, KILLED on Ctrl-C."""

    def end(self, status: str = "FINISHED") -> int:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.end("FINISHED")
        else:
            self.end("KILLED" if issubclass(exc_type, KeyboardInterrupt) else "FAILED")


class NullTracker(_Base):
    """The Tracker interface doing nothing: ranks other than 0, and ``--no-tracking``."""

    run_id: str | None = None
    run_url: str | None = None
    experiment_id: str | None = None
    pending: int = 0
    retry_in: float = 0.0

    def log_params(self, params: Mapping[str, Any]) -> None:
        pass

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        pass

    def log_artifact(
        self, path: str | os.PathLike, artifact_path: str | None = None, link: bool = False
    ) -> None:
        pass

    def log_dict(self, obj: Any, file_name: str) -> None:
        pass

    def log_image(self, image: np.ndarray, file_name: str) -> None:
        pass

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        pass

    def flush(self) -> int:
        return 0

    def end(self, status: str = "FINISHED") -> int:
        return 0


class Tracker(_Base):
    """One MLflow run, logged from one process, resilient to an unreachable tracking server.

    Create it with ``Tracker.start``. Calls never raise because of the tracking backend; they
    raise only for bad arguments (an image of the wrong shape, a missing artifact file).
    """

    def __init__(
        self,
        header: dict[str, Any],
        journal: Path,
        pending: list[dict[str, Any]] | None = None,
        retry_interval: float = RETRY_INTERVAL_S,
        reopen: bool = False,
    ):
        try:
            from mlflow import MlflowClient
        except ModuleNotFoundError:
            raise ConfigError(
                "MLflow is not installed here: install it (pip install mlflow) or train with "
                "--no-tracking"
            ) from None

        self._header = header  # the run's identity, line 1 of the journal
        self._journal = journal
        self._pending = pending or []
        self._retry_interval = retry_interval
        self._reopen = reopen  # set a resumed run back to RUNNING
        self._client = MlflowClient(tracking_uri=header["tracking_uri"])
        self._connected = False
        self._experiment_id: str | None = None
        self._next_try = 0.0
        self._wait = retry_interval  # the current retry interval (grows during an outage)
        self._outage = False
        self._ended = False

    @classmethod
    def start(
        cls,
        tracking_uri: str,
        experiment: str,
        run_name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        *,
        fallback_dir: str | os.PathLike,
        artifact_location: str | None = None,
        retry_interval: float = RETRY_INTERVAL_S,
    ) -> Tracker:
        """Create a run, or continue run ``run_id`` (a resumed training keeps its MLflow run).

        ``fallback_dir`` (the run folder) holds the journal while the server is unreachable;
        ``artifact_location`` defaults to ``<db folder>/mlartifacts`` on a SQLite store;
        ``retry_interval``: seconds before the first retry after a failure (then doubling).
        """
        folder = Path(fallback_dir).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        if tracking_uri.startswith("sqlite:///"):
            Path(tracking_uri.removeprefix("sqlite:///")).resolve().parent.mkdir(
                parents=True, exist_ok=True
            )
        header = {
            "op": "run",
            "tracking_uri": tracking_uri,
            "experiment": experiment,
            "run_name": run_name,
            "run_id": run_id,
            "artifact_location": artifact_location or default_artifact_location(tracking_uri),
            "tags": _tags(tags),
            "start_time": _now_ms(),
        }
        pending: list[dict[str, Any]] = []
        journal = folder / JOURNAL
        if journal.is_file():
            old_header, old_records = _read_journal(journal)
            if old_header.get("run_id") == run_id:  # the same run, restarted: continue it
                header = {**old_header, "tracking_uri": tracking_uri}
                header["tags"] = {**old_header.get("tags", {}), **_tags(tags)}
                pending = old_records
                log.warning("continuing %d unsent tracking records from %s", len(pending), journal)
            else:  # another run's records: keep them apart and try to deliver them
                aside = journal.with_name(
                    f"mlflow_pending.{old_header.get('run_id') or 'new'}"
                    f"-{uuid.uuid4().hex[:8]}.jsonl"
                )
                journal.rename(aside)
                cls._from_journal(aside, known=tracking_uri).flush()
        tracker = cls(header, journal, pending, retry_interval, reopen=run_id is not None)
        if pending:
            tracker._rewrite_journal()  # under the current header
        tracker._try_flush()
        return tracker

    @classmethod
    def _from_journal(
        cls, journal: Path, tracking_uri: str | None = None, known: str | None = None
    ) -> Tracker:
        """The tracker of a journal; ``tracking_uri`` overrides the recorded URI, ``known``
        (and ``$MLFLOW_TRACKING_URI``) may restore the login the journal does not hold."""
        header, records = _read_journal(journal)
        recorded = header["tracking_uri"]
        if tracking_uri and redact_uri(tracking_uri) != recorded:
            header = {
                **header,
                "tracking_uri": tracking_uri,
                "artifact_location": default_artifact_location(tracking_uri),
            }
        else:
            candidates = (tracking_uri, known, os.environ.get("MLFLOW_TRACKING_URI"))
            header = {**header, "tracking_uri": journal_uri(recorded, candidates)}
        return cls(header, journal, records)

    # ------------------------------------------------------------------------- properties
    @property
    def run_id(self) -> str | None:
        """The MLflow run id; None while the run could not be created yet."""
        return self._header["run_id"]

    @property
    def experiment_id(self) -> str | None:
        return self._experiment_id

    @property
    def tracking_uri(self) -> str:
        return self._header["tracking_uri"]

    @property
    def run_url(self) -> str | None:
        """The run's page for an http(s) tracking server (without a login), else None."""
        uri = without_credentials(self._header["tracking_uri"]).rstrip("/")
        if (
            not uri.startswith(("http://", "https://"))
            or not self.run_id
            or not self._experiment_id
        ):
            return None
        return f"{uri}/#/experiments/{self._experiment_id}/runs/{self.run_id}"

    @property
    def pending(self) -> int:
        """Records not delivered yet."""
        return len(self._pending)

    @property
    def retry_in(self) -> float:
        """Seconds until a logging call retries the pending records (0: the next one does)."""
        return max(0.0, self._next_try - time.monotonic()) if self._pending else 0.0

    # ------------------------------------------------------------------------- logging
    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log params; nested mappings are flattened to dotted keys, values stringified."""
        if params:
            self._submit({"op": "params", "params": flatten_params(params)})

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """Log scalar metrics (keys such as ``loss/0``, ``de/abs_rel``) at ``step``."""
        if metrics:
            values = {str(k): float(v) for k, v in metrics.items()}
            self._submit(
                {"op": "metrics", "metrics": values, "step": int(step), "timestamp": _now_ms()}
            )

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        if tags:
            self._submit({"op": "tags", "tags": _tags(tags)})

    def log_artifact(
        self, path: str | os.PathLike, artifact_path: str | None = None, link: bool = False
    ) -> None:
        """Upload a file or folder (under ``artifact_path`` in the run's artifacts). ``link``:
        when the run's artifacts are a local folder on the same file system, hard-link the
        files instead of copying them (:func:`_link_artifact`): one copy on disk, for files
        that are replaced, never rewritten in place (weights)."""
        path = Path(path).resolve()
        if not path.exists():
            raise FileNotFoundError(f"artifact {path} does not exist")
        record = {"op": "artifact", "path": str(path), "artifact_path": artifact_path}
        self._submit({**record, "link": True} if link else record)

    def log_dict(self, obj: Any, file_name: str) -> None:
        """Store ``obj`` as JSON (or YAML for ``.yaml``/``.yml``) at ``file_name``."""
        if Path(file_name).suffix in (".yaml", ".yml"):
            import yaml

            text = yaml.safe_dump(obj, sort_keys=False)
        else:
            text = json.dumps(obj, indent=2, default=str)
        with self._temp_artifact(file_name) as path:
            path.write_text(text)

    def log_image(self, image: np.ndarray, file_name: str) -> None:
        """Store an (H, W, 3) or (H, W) uint8 image as ``file_name`` (format from its suffix)."""
        from PIL import Image

        image = np.asarray(image)
        if image.dtype != np.uint8 or not (
            image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)
        ):
            raise ValueError(
                f"log_image({file_name!r}): expected an (H, W, 3) or (H, W) uint8 array, got "
                f"{image.dtype} {image.shape}"
            )
        with self._temp_artifact(file_name) as path:
            Image.fromarray(image).save(path)

    @contextlib.contextmanager
    def _temp_artifact(self, file_name: str) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(prefix="depthhints-artifact-") as tmp:
            path = Path(tmp) / Path(file_name).name
            yield path
            folder = Path(file_name).parent.as_posix()
            self.log_artifact(path, None if folder == "." else folder)

    # ------------------------------------------------------------------------- delivery
    def flush(self) -> int:
        """Try to deliver every pending record now; returns how many remain."""
        self._next_try = 0.0
        self._try_flush()
        return len(self._pending)

    def end(self, status: str = "FINISHED") -> int:
        """End the run (FINISHED, FAILED or KILLED) and flush; returns the records left over."""
        if status not in STATUSES:
            raise ValueError(f"end(status={status!r}): use one of {STATUSES}")
        if not self._ended:
            self._ended = True
            self._submit({"op": "end", "status": status, "end_time": _now_ms()})
        remaining = self.flush()
        if remaining:
            log.warning(
                "%d tracking records could not be delivered to %s; they are kept in %s. Run "
                "`depthhints sync-tracking %s` once the server is reachable.",
                remaining,
                redact_uri(self._header["tracking_uri"]),
                self._journal,
                self._journal.parent,
            )
        return remaining

    def _submit(self, record: dict[str, Any]) -> None:
        if self._connected and not self._pending:
            try:
                with _short_http(self.tracking_uri):
                    self._deliver([record])
                return
            except Exception as error:
                self._went_offline(error)
        if record["op"] == "artifact":
            record = {**record, "path": self._stash(Path(record["path"])), "stashed": True}
        self._pending.append(record)
        self._append_journal(record)
        if time.monotonic() >= self._next_try:
            self._try_flush()

    def _try_flush(self) -> None:
        """Connect (create or reopen the run) if needed, then deliver pending records in order."""
        delivered, had_run = 0, self.run_id
        try:
            with _short_http(self.tracking_uri):
                if not self._connected:
                    self._connect()
                while self._pending:
                    n = _group_size(self._pending)
                    self._deliver(self._pending[:n])
                    for record in self._pending[:n]:
                        if record.get("stashed"):
                            shutil.rmtree(self._local(record["path"]).parent, ignore_errors=True)
                    del self._pending[:n]
                    delivered += n
        except Exception as error:
            self._went_offline(error)
        else:
            if self._outage:
                log.warning("MLflow tracking reachable again: delivered %d records", delivered)
            self._outage, self._wait = False, self._retry_interval
        if delivered or had_run != self.run_id or (self._connected and not self._pending):
            self._rewrite_journal()  # (the last case only removes a journal left with no records)

    def _connect(self) -> None:
        from mlflow.entities import RunTag

        header, client = self._header, self._client
        if header["run_id"] is not None:
            try:
                run = client.get_run(header["run_id"])
            except _mlflow_exception() as error:
                if _transient(error):
                    raise
                log.warning(
                    "run %s not found at %s (%s); starting a new run",
                    header["run_id"],
                    redact_uri(header["tracking_uri"]),
                    _first_line(error),
                )
                header["run_id"] = None
            else:
                self._experiment_id = run.info.experiment_id
                if self._reopen:
                    client.update_run(run.info.run_id, status="RUNNING")
                    tags = [RunTag(k, v) for k, v in header["tags"].items()]
                    client.log_batch(run.info.run_id, tags=tags, synchronous=True)
                    self._reopen = False
        if header["run_id"] is None:
            experiment_id = self._experiment()
            run = client.create_run(
                experiment_id,
                start_time=header["start_time"],
                tags=header["tags"],
                run_name=header["run_name"],
            )
            header["run_id"], self._experiment_id = run.info.run_id, experiment_id
        self._connected = True

    def _experiment(self) -> str:
        return ensure_experiment(
            self._client, self._header["experiment"], self._header["artifact_location"]
        )

    def _deliver(self, records: list[dict[str, Any]]) -> None:
        """Send records; a permanent refusal is retried entity by entity and the refused ones
        rejected. Raises only transient errors (the caller keeps the records pending)."""
        try:
            self._send(records)
        except Exception as error:
            if _transient(error):
                raise
            singles = [single for record in records for single in _split(record)]
            if len(singles) == 1:
                self._reject(singles[0], error)
                return
            for single in singles:
                self._deliver([single])

    def _send(self, records: list[dict[str, Any]]) -> None:
        from mlflow.entities import Metric, Param, RunTag

        run_id, client = self._header["run_id"], self._client
        first = records[0]
        if first["op"] == "artifact":
            path = self._local(first["path"])
            if not path.exists():
                raise _Permanent(f"artifact file {path} vanished before it was uploaded")
            linked = first.get("link") and _link_artifact(
                client.get_run(run_id).info.artifact_uri, path, first["artifact_path"]
            )
            if not linked:
                client.log_artifact(run_id, str(path), first["artifact_path"])
        elif first["op"] == "end":
            client.set_terminated(run_id, status=first["status"], end_time=first["end_time"])
        else:
            metrics = [
                Metric(k, v, r["timestamp"], r["step"])
                for r in records
                if r["op"] == "metrics"
                for k, v in r["metrics"].items()
            ]
            params = [
                Param(k, v) for r in records if r["op"] == "params" for k, v in r["params"].items()
            ]
            tags = [
                RunTag(k, v) for r in records if r["op"] == "tags" for k, v in r["tags"].items()
            ]
            for kind, entities in (("metrics", metrics), ("params", params), ("tags", tags)):
                size = BATCH_LIMITS[kind]
                for i in range(0, len(entities), size):
                    client.log_batch(run_id, synchronous=True, **{kind: entities[i : i + size]})

    def _went_offline(self, error: Exception) -> None:
        if self._outage:
            self._wait = min(2 * self._wait, MAX_RETRY_INTERVAL_S)
        else:
            log.warning(
                "MLflow tracking at %s unreachable (%s); buffering to %s, retrying in %.0f s",
                redact_uri(self._header["tracking_uri"]),
                _first_line(error),
                self._journal,
                self._wait,
            )
        self._next_try = time.monotonic() + self._wait
        self._outage = True

    def _reject(self, record: dict[str, Any], error: Exception) -> None:
        log.warning("MLflow refused %s: %s (kept in %s)", record, _first_line(error), REJECTED)
        with open(self._journal.parent / REJECTED, "a") as f:
            f.write(json.dumps({**record, "error": redact_uri(str(error))}) + "\n")

    # ------------------------------------------------------------------------- journal
    def _stash(self, path: Path) -> str:
        """Copy an artifact into the fallback folder; returns its path relative to it."""
        target = self._journal.parent / PENDING_ARTIFACTS / uuid.uuid4().hex / path.name
        target.parent.mkdir(parents=True)
        if path.is_dir():
            shutil.copytree(path, target)
        else:
            shutil.copy2(path, target)
        return target.relative_to(self._journal.parent).as_posix()

    def _local(self, path: str) -> Path:
        return self._journal.parent / path

    def _append_journal(self, record: dict[str, Any]) -> None:
        if not self._journal.is_file():
            self._rewrite_journal()
        else:
            with open(self._journal, "a") as f:
                f.write(json.dumps(record) + "\n")

    def _rewrite_journal(self) -> None:
        """Journal = header (URI redacted) + pending records, replaced atomically; removed when
        all is sent."""
        if not self._pending and self._connected:
            self._journal.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                (self._journal.parent / PENDING_ARTIFACTS).rmdir()
            return
        header = {**self._header, "tracking_uri": redact_uri(self._header["tracking_uri"])}
        lines = [json.dumps(r) + "\n" for r in (header, *self._pending)]
        tmp = self._journal.with_name(f".{self._journal.name}.{uuid.uuid4().hex}.tmp")
        tmp.write_text("".join(lines))
        os.replace(tmp, self._journal)


class SyncResult(NamedTuple):
    run_ids: list[str]  # the runs that received records
    remaining: int  # records still undelivered


def sync_pending(fallback_dir: str | os.PathLike, tracking_uri: str | None = None) -> SyncResult:
    """Deliver the journals a tracker left in ``fallback_dir`` (ended offline, or crashed).

    ``tracking_uri`` overrides the URI recorded in the journal. Backs ``depthhints
    sync-tracking <dir>``.
    """
    if tracking_uri:
        check_store_uri(tracking_uri)
    run_ids, remaining = [], 0
    for journal in sorted(Path(fallback_dir).resolve().glob("mlflow_pending*.jsonl")):
        tracker = Tracker._from_journal(journal, tracking_uri)
        remaining += tracker.flush()
        if tracker.run_id:
            run_ids.append(tracker.run_id)
    return SyncResult(run_ids, remaining)


# ----------------------------------------------------------------------------- helpers
class _Permanent(Exception):
    """A record that can never be delivered (its local file vanished)."""


def _mlflow_exception() -> type[Exception]:
    """``mlflow.exceptions.MlflowException``, imported when first needed."""
    from mlflow.exceptions import MlflowException

    return MlflowException


def _transient(error: Exception) -> bool:
    """Worth retrying later: connection failures, timeouts, 5xx, 408/429, a locked database."""
    if isinstance(error, _mlflow_exception()):
        status = error.get_http_status_code()
        return status >= 500 or status in (408, 429)
    return not isinstance(error, _Permanent | TypeError | ValueError)


def _short_http(tracking_uri: str) -> contextlib.AbstractContextManager[None]:
    """Short HTTP timeout and no client retries for the tracker's calls, and no run URL printed
    when the URI holds a password (see :func:`login_hidden`)."""
    return _env_defaults({**HTTP_ENV, **_no_url_printing(tracking_uri)})


@contextlib.contextmanager
def _env_defaults(values: Mapping[str, str]) -> Iterator[None]:
    """``values`` in the environment for the block, except those the user set; MLflow reads
    these variables on every call."""
    added = {k: v for k, v in values.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def _group_size(pending: list[dict[str, Any]]) -> int:
    """How many leading records go into one delivery: consecutive params/metrics/tags records
    up to one log_batch's limits; an artifact or end record alone."""
    counts = dict.fromkeys(BATCH_LIMITS, 0)
    n = 0
    for record in pending:
        op = record["op"]
        if op not in BATCH_LIMITS:
            break
        counts[op] += len(record[op])
        if n and counts[op] > BATCH_LIMITS[op]:
            break
        n += 1
    return max(n, 1)


def _link_artifact(artifact_uri: str, path: Path, artifact_path: str | None) -> bool:
    """Hard-link the file or folder ``path`` to where ``MlflowClient.log_artifact`` would copy
    it, when ``artifact_uri`` (a run's artifacts) is a local folder; False, with nothing left
    behind, when it is not or a link fails (another file system): then copy it."""
    parts = urlsplit(artifact_uri)
    if parts.scheme not in ("", "file") or parts.netloc not in ("", "localhost"):
        return False
    target = Path(url2pathname(parts.path)) / (artifact_path or "") / path.name
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    made: list[Path] = []
    try:
        for source in files:
            link = target / source.relative_to(path) if path.is_dir() else target
            link.parent.mkdir(parents=True, exist_ok=True)
            link.unlink(missing_ok=True)  # sent before, its reply lost: link it again
            os.link(source, link)
            made.append(link)
    except OSError:
        for link in made:
            link.unlink(missing_ok=True)
        return False
    return True


def _split(record: dict[str, Any]) -> list[dict[str, Any]]:
    """A params/metrics/tags record as one record per entity."""
    op = record["op"]
    if op not in BATCH_LIMITS or len(record[op]) <= 1:
        return [record]
    return [{**record, op: {k: v}} for k, v in record[op].items()]


def _read_journal(journal: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    records = []
    for number, line in enumerate(journal.read_text().splitlines(), 1):
        try:
            records.append(json.loads(line))
        except ValueError:  # a line torn by a crash mid-write
            log.warning("%s:%d: skipping an unreadable journal line", journal, number)
    if not records or records[0].get("op") != "run":
        raise ValueError(f"{journal} is not a tracking journal (no run header on line 1)")
    return records[0], records[1:]


def _tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    return {str(k): _truncate(str(v), MAX_TAG_LENGTH) for k, v in (tags or {}).items()}


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _first_line(error: Exception) -> str:
    return redact_uri((str(error).splitlines() or [type(error).__name__])[0])[:300]


def _now_ms() -> int:
    return int(time.time() * 1000)
