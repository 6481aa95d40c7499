"""``depthhints ui``: the compare link, and the MLflow UI serving our runs beside the paper's."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest

from dashboards.ui import check_port_free, comparison_url, experiment_url, server_command
from depthhints.errors import ConfigError

PAPER_NAME = "paper · Depth Hints R50 640x192"
OUR_NAME = "ours_demo · eigen_pp"  # <model_name> · <protocol>[_pp]


def _decode(url: str) -> tuple[str, list[str], list[str]]:
    """(route, runs, experiments) of a compare-page URL."""
    route = urlsplit(urlsplit(url).fragment)
    query = parse_qs(route.query)
    return route.path, json.loads(query["runs"][0]), json.loads(query["experiments"][0])


def test_comparison_url_round_trips():
    ids = ["0123abcd", "4567ef01", "89ab2345"]
    url = comparison_url("http://127.0.0.1:5000/", "7", ids)
    assert url.startswith("http://127.0.0.1:5000/#/compare-runs?runs=")
    assert _decode(url) == ("/compare-runs", ids, ["7"])
    assert experiment_url("http://127.0.0.1:5000", "7") == "http://127.0.0.1:5000/#/experiments/7"


def test_server_command_serves_the_store_artifacts(tmp_path):
    command = server_command(f"sqlite:///{tmp_path}/mlflow.db", "127.0.0.1", 5001)
    assert command[command.index("--backend-store-uri") + 1] == f"sqlite:///{tmp_path}/mlflow.db"
    assert command[command.index("--artifacts-destination") + 1] == (
        (tmp_path / "mlartifacts").as_uri()
    )
    assert command[command.index("--host") + 1] == "127.0.0.1"


def test_taken_port_is_a_clear_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(ConfigError, match="pass --port"):
            check_port_free("127.0.0.1", taken.getsockname()[1])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _server_processes(port: int) -> list[tuple[int, int, str]]:
    """(pid, process group, command line) of every process started for the server on ``port``."""
    out = subprocess.run(
        ["ps", "-ww", "-eo", "pid=,pgid=,args="], capture_output=True, text=True, check=True
    ).stdout
    found = []
    for line in out.splitlines():
        pid, pgid, args = line.split(None, 2)
        if f"--port {port}" in args and "depthhints.cli" not in args:
            found.append((int(pid), int(pgid), args))
    return found


def _read_until(process: subprocess.Popen, prefix: str, timeout: float) -> tuple[str, str]:
    """The first stdout line starting with ``prefix``, and everything read so far."""
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (process.poll() is None or not lines.empty()):
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        seen.append(line)
        if line.startswith(prefix):
            return line.removeprefix(prefix).strip(), "".join(seen)
    pytest.fail(f"no {prefix!r} line within {timeout} s; output:\n{''.join(seen)}")


def _reset_sigint() -> None:
    # A command started from a background shell job inherits SIGINT ignored: undo that, as an
    # interactive terminal would have it, so that SIGINT is Ctrl-C for the command.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_ui_shows_our_runs_next_to_the_papers(tmp_path):
    from mlflow import MlflowClient

    from dashboards.browser import open_page
    from dashboards.paper import log_paper_runs
    from depthhints.config import TrainConfig
    from depthhints.results import log_evaluation

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"  # its own store, not the suite's
    config = TrainConfig(
        data_path=str(tmp_path),
        log_dir=str(tmp_path / "runs"),
        model_name="ours_demo",
        use_stereo=True,
        frame_ids=[0],
    )
    metrics = {"abs_rel": 0.11, "sq_rel": 0.8, "rmse": 4.7, "rmse_log": 0.2, "a1": 0.87}
    ours = log_evaluation(uri, "depth-hints", config, "eigen", True, metrics)
    assert ours
    image = (np.arange(16 * 16 * 3).reshape(16, 16, 3) % 256).astype(np.uint8)
    MlflowClient(uri).log_image(ours, image, "sample.png")
    stored = Path(MlflowClient(uri).get_run(ours).info.artifact_uri.removeprefix("file://"))
    assert (stored / "sample.png").is_file()

    port = _free_port()
    start = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "depthhints.cli", "ui", "--tracking-uri", uri, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_reset_sigint,
    )
    try:
        url, output = _read_until(process, "ours vs the paper: ", timeout=120)
        print(f"UI up after {time.monotonic() - start:.1f} s")
        base = url.split("/#/")[0]
        assert base == f"http://127.0.0.1:{port}"
        assert f"MLflow UI: {base}/#/experiments/" in output
        groups = {pgid for _, pgid, _ in _server_processes(port)}
        assert groups, "no server process found"
        assert os.getpgid(process.pid) not in groups  # the server has its own process group

        route, runs, experiments = _decode(url)
        paper = log_paper_runs(uri, "depth-hints")  # idempotent: the ids the UI logged
        assert route == "/compare-runs"
        assert runs == [ours, *paper.values()]
        assert experiments == [MlflowClient(uri).get_run(ours).info.experiment_id]

        # the artifact, read by the server from the run's file:// artifact folder
        fetch = f"{base}/get-artifact?path=sample.png&run_uuid={ours}"
        with urllib.request.urlopen(fetch, timeout=30) as response:
            assert response.status == 200
            assert response.read() == (stored / "sample.png").read_bytes()

        with open_page(url) as page:
            page.get_by_text(PAPER_NAME, exact=True).first.wait_for(timeout=60_000)
            page.get_by_text(OUR_NAME, exact=True).first.wait_for(timeout=60_000)

        process.send_signal(signal.SIGINT)
        stop = time.monotonic()
        assert process.wait(timeout=15) == 0
        print(f"stopped in {time.monotonic() - stop:.1f} s")
        assert _server_processes(port) == []
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        for group in {pgid for _, pgid, _ in _server_processes(port)}:  # whatever failed
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        if process.stdout is not None:
            process.stdout.close()
