"""``depthhints ui``: the compare link, and the MLflow UI serving our runs beside the paper's."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
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

from dashboards.runs import ResultRun
from dashboards.ui import check_port_free, comparison_url, links, runs_url, server_command
from depthhints.errors import ConfigError

PAPER_NAME = "paper · Depth Hints R50 640x192"
OUR_NAME = "ours_demo · eigen_pp"  # <model_name> · <protocol>[_pp]
OLD_NAME = "ours_old · eigen_pp"  # the same row, evaluated in an earlier sweep
ROW = "S_R18_640x192_nopt_hints"  # the demo's row: ResNet18 from scratch ...
PAPER_ROW = "S_R50_640x192_hints"  # ... standing in for the paper's
SWEEP_FILTER = "tags.sweep = 'table_demo' and tags.sweep_run_id = 'new-sweep'"


def _decode(url: str) -> tuple[str, list[str], list[str]]:
    """(route, runs, experiments) of a compare-page URL."""
    route = urlsplit(urlsplit(url).fragment)
    query = parse_qs(route.query)
    return route.path, json.loads(query["runs"][0]), json.loads(query["experiments"][0])


def _search_filter(url: str) -> tuple[str, str]:
    """(route, search filter) of a runs-table URL."""
    route = urlsplit(urlsplit(url).fragment)
    return route.path, parse_qs(route.query).get("searchFilter", [""])[0]


def test_comparison_url_round_trips():
    ids = ["0123abcd", "4567ef01", "89ab2345"]
    url = comparison_url("http://127.0.0.1:5000/", "7", ids)
    assert url.startswith("http://127.0.0.1:5000/#/compare-runs?runs=")
    assert _decode(url) == ("/compare-runs", ids, ["7"])
    runs = "http://127.0.0.1:5000/#/experiments/7/runs?workflowType=machine_learning"
    assert runs_url("http://127.0.0.1:5000", "7") == runs  # the runs table, not the GenAI overview
    filtered = runs_url("http://127.0.0.1:5000", "7", "tags.sweep = 'a b' and params.x = '1'")
    assert " " not in filtered and "'" not in filtered
    assert _search_filter(filtered) == (
        "/experiments/7/runs",
        "tags.sweep = 'a b' and params.x = '1'",
    )


def _result(run_id: str, source: str, tags: dict[str, str] | None = None, **params) -> ResultRun:
    recipe = {"backbone": "resnet18", "resolution": "640x192", "pretrained": "False"}
    base = {
        **recipe,
        "modality": "S",
        "use_depth_hints": "True",
        "post_process": "True",
        "eval_protocol": "eigen",
    }
    return ResultRun(run_id, run_id, source, {**base, **params}, {"abs_rel": 0.3}, tags or {})


def test_links_open_the_newest_sweeps_runs_and_pair_each_row_with_its_paper_row():
    new = {"sweep": "table_demo", "sweep_run_id": "new-sweep"}
    ours = [  # newest first
        _result("hints_pp", "ours", new, row=ROW, paper_row=PAPER_ROW),
        _result("hints_pp_seed1", "ours", new, row=ROW, paper_row=PAPER_ROW),
        _result("hints", "ours", new, row=ROW, paper_row=PAPER_ROW, post_process="False"),
        _result("old", "ours", {"sweep": "table_demo", "sweep_run_id": "old-sweep"}, row=ROW),
    ]
    papers = [
        _result("dh", "paper", backbone="resnet50", pretrained="True", row=PAPER_ROW),
        _result("md2", "paper", use_depth_hints="False", post_process="False"),
    ]
    lines = links("http://127.0.0.1:5000", "7", ours, papers)
    assert lines[0].startswith("MLflow UI: http://127.0.0.1:5000/#/experiments/7/runs?")
    assert _search_filter(lines[0]) == ("/experiments/7/runs", SWEEP_FILTER)
    assert "table_demo" in lines[1]
    label, url = lines[-1].strip().rsplit(": ", 1)
    # the row without post-processing has no paper run
    assert label == f"{ROW} eigen_pp vs dh (recipe differs: backbone, pretrained)"
    assert _decode(url) == ("/compare-runs", ["hints_pp", "hints_pp_seed1", "dh"], ["7"])
    assert lines[-2] == "ours vs the paper, one compare page per row:"

    (first, note) = links("http://127.0.0.1:5000", "7", [], papers)
    assert first == f"MLflow UI: {runs_url('http://127.0.0.1:5000', '7')}" and "paper" in note


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
    metrics = {"abs_rel": 0.31, "sq_rel": 3.8, "rmse": 9.7, "rmse_log": 0.4, "a1": 0.5}

    def evaluation(model_name: str, sweep_run_id: str) -> str:  # as the demo logs it
        config = TrainConfig(
            data_path=str(tmp_path),
            log_dir=str(tmp_path / "runs"),
            model_name=model_name,
            use_stereo=True,
            frame_ids=[0],
            use_depth_hints=True,
            num_layers=18,
            weights_init="scratch",
        )
        run_id = log_evaluation(
            uri,
            "depth-hints",
            config,
            "eigen",
            True,
            metrics,
            extra_params={"row": ROW, "paper_row": PAPER_ROW},
            tags={"sweep": "table_demo", "sweep_run_id": sweep_run_id},
        )
        assert run_id
        return run_id

    evaluation("ours_old", "old-sweep")
    time.sleep(0.01)  # newest first: by start time in milliseconds
    ours = evaluation("ours_demo", "new-sweep")
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
        compared = f"  {ROW} eigen_pp vs {PAPER_NAME} (recipe differs: backbone, pretrained): "
        url, output = _read_until(process, compared, timeout=120)
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
        assert runs == [ours, paper["depth-hints/S_R50_640x192/eigen_pp"]]
        experiment = MlflowClient(uri).get_run(ours).info.experiment_id
        assert experiments == [experiment]
        runs_page = output.split("MLflow UI: ", 1)[1].split()[0]
        assert _search_filter(runs_page) == (f"/experiments/{experiment}/runs", SWEEP_FILTER)

        # the artifact, read by the server from the run's file:// artifact folder
        fetch = f"{base}/get-artifact?path=sample.png&run_uuid={ours}"
        with urllib.request.urlopen(fetch, timeout=30) as response:
            assert response.status == 200
            assert response.read() == (stored / "sample.png").read_bytes()

        # the printed experiment link: the runs table of the newest sweep, not the overview
        with open_page(runs_page) as page:
            page.get_by_text(OUR_NAME, exact=True).first.wait_for(timeout=60_000)
            page.get_by_text("matching run").first.wait_for(timeout=60_000)
            body = page.inner_text("body")
            assert re.search(r"\b1\s+matching run\b", body), body
            assert OLD_NAME not in body and PAPER_NAME not in body
            assert "Token Usage" not in body and "/runs" in page.url
        # the compare page of the row: ours and the paper's row, nothing else
        with open_page(url) as page:
            page.get_by_text("Comparing 2 Runs from 1 Experiment").wait_for(timeout=60_000)
            page.get_by_text(PAPER_NAME, exact=True).first.wait_for(timeout=60_000)
            page.get_by_text(OUR_NAME, exact=True).first.wait_for(timeout=60_000)
            assert OLD_NAME not in page.inner_text("body")

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
