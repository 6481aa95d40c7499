"""MLflow tracking under faults: the server down when a run starts, stopped mid-run and
restarted (a tracker on its own, then a real training): no record is lost, the run ends
FINISHED, and the calls made during the outage do not block training."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from mlflow import MlflowClient
from PIL import Image

from depthhints.tracking import JOURNAL, Tracker
from depthhints.train.loop import fit
from depthhints.train.reporting import TrackingOptions, recorded_run_id
from tests.helpers import tiny_config
from tests.mlflow_server import Server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("server"))
    yield server
    server.stop()


def steps_of(client: MlflowClient, run_id: str, key: str) -> list[int]:
    """Steps of a metric in logging order (timestamp, then step)."""
    history = client.get_metric_history(run_id, key)
    return [m.step for m in sorted(history, key=lambda m: (m.timestamp, m.step))]


def timed(call, *args, **kwargs) -> float:
    start = time.perf_counter()
    call(*args, **kwargs)
    return time.perf_counter() - start


def test_server_down_at_start_creates_the_run_later(server, tmp_path):
    server.stop()
    started = time.time()
    tracker = Tracker.start(server.uri, "exp", "late", fallback_dir=tmp_path, retry_interval=0.0)
    assert tracker.run_id is None and tracker.run_url is None
    tracker.log_params({"lr": 0.1})
    tracker.log_metrics({"loss": 0.0}, step=0)
    assert tracker.pending == 2

    server.start()
    tracker.log_metrics({"loss": 1.0}, step=1)  # retries: creates the run, replays, sends
    assert tracker.run_id is not None and tracker.pending == 0
    assert tracker.end() == 0
    client = MlflowClient(server.uri)
    run = client.get_run(tracker.run_id)
    assert run.info.status == "FINISHED" and run.data.params == {"lr": "0.1"}
    assert run.info.start_time <= started * 1000 + 1000  # the original start time
    assert steps_of(client, tracker.run_id, "loss") == [0, 1]


def test_server_down_mid_run_loses_no_metric(server, tmp_path):
    server.start()
    tracker = Tracker.start(server.uri, "exp", "outage", fallback_dir=tmp_path, retry_interval=0.5)
    assert (
        tracker.run_url
        == f"{server.uri}/#/experiments/{tracker.experiment_id}/runs/{tracker.run_id}"
    )
    tracker.log_params({"lr": 0.1})
    for step in range(10):
        tracker.log_metrics({"loss/0": float(step), "de/abs_rel": step / 10}, step)

    server.stop()
    costs = [
        timed(tracker.log_metrics, {"loss/0": float(s), "de/abs_rel": s / 10}, s)
        for s in range(10, 20)
    ]
    costs.append(timed(tracker.log_image, np.full((8, 8, 3), 7, np.uint8), "viz/down.png"))
    costs.append(timed(tracker.set_tags, {"phase": "outage"}))
    time.sleep(0.6)  # past the retry interval: the next call retries (and fails) once more
    costs.append(timed(tracker.log_metrics, {"loss/0": 20.0, "de/abs_rel": 2.0}, 20))
    assert max(costs) < 2.0, costs
    assert tracker.pending == 13 and (tmp_path / JOURNAL).is_file()
    assert tracker.flush() == 13
    assert 0 < tracker.retry_in <= 2.0  # the interval doubled on each failed retry: 0.5, 1, 2 s

    server.start()
    time.sleep(tracker.retry_in)  # (already over: the server took longer to start)
    for step in range(21, 25):
        tracker.log_metrics({"loss/0": float(step), "de/abs_rel": step / 10}, step)
    assert tracker.pending == 0  # delivered by the training calls themselves, no flush needed
    assert tracker.end() == 0
    assert not (tmp_path / JOURNAL).exists()

    client = MlflowClient(server.uri)
    run = client.get_run(tracker.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params == {"lr": "0.1"} and run.data.tags["phase"] == "outage"
    for key in ("loss/0", "de/abs_rel"):
        assert steps_of(client, tracker.run_id, key) == list(range(25))
    png = client.download_artifacts(tracker.run_id, "viz/down.png", str(tmp_path / "dl"))
    assert np.asarray(Image.open(png)).shape == (8, 8, 3)


def test_a_training_outlives_a_server_outage_and_loses_no_metric(server, tree, tmp_path):
    server.start()
    config = tiny_config(tree, tmp_path, num_epochs=3, log_frequency=1)  # 2 steps an epoch

    def outage(phase: str, metrics: dict, step: int) -> None:
        if phase == "train" and step == 1:
            server.stop()
        if phase == "train" and step == 4:
            server.start()

    fit(config, hooks=[outage], progress=False, tracking=TrackingOptions(uri=server.uri))
    assert server.proc is not None, "the outage did not end during training"
    run_id = recorded_run_id(config)
    client = MlflowClient(server.uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    lines = (config.run_dir / "metrics.jsonl").read_text().splitlines()
    train_steps = [r["step"] for r in map(json.loads, lines) if r["phase"] == "train"]
    assert train_steps == list(range(6))
    for key in ("train/loss", "val/loss"):
        assert sorted(m.step for m in client.get_metric_history(run_id, key)) == train_steps
    assert [a.path for a in client.list_artifacts(run_id, "weights")] == ["weights/weights_2"]
    assert not (config.run_dir / JOURNAL).exists()  # everything delivered
