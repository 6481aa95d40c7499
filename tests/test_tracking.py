"""MLflow tracking: runs on an embedded SQLite store, and a real tracking server that goes down.

The outage tests run a real ``mlflow server`` subprocess (about 4 s per start here) on a free
localhost port with its own SQLite backend, stop it and start it again on the same port and
backend: what a training job sees when its tracking server restarts. The server fixture is shared
and its state carries over (started twice in all when the tests run in file order).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient
from PIL import Image

from depthhints.config import TrainConfig
from depthhints.data.hint_store import StoreManifest, open_store
from depthhints.tracking import (
    JOURNAL,
    REJECTED,
    NullTracker,
    Tracker,
    config_params,
    default_tracking_uri,
    run_tags,
    sync_pending,
)

CLOSED_PORT_URI = "http://127.0.0.1:9"  # the discard port: nothing listens, connections refused


@pytest.fixture(scope="module")
def store_uri(tmp_path_factory) -> str:
    """One embedded store for the module (creating its tables costs ~3 s)."""
    return default_tracking_uri(tmp_path_factory.mktemp("store"))


@pytest.fixture(autouse=True)
def _no_env_uri(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def steps_of(client: MlflowClient, run_id: str, key: str) -> list[int]:
    """Steps of a metric in logging order (timestamp, then step)."""
    history = client.get_metric_history(run_id, key)
    return [m.step for m in sorted(history, key=lambda m: (m.timestamp, m.step))]


# ----------------------------------------------------------------------------- embedded store
def test_run_holds_params_metrics_artifacts_tags(store_uri, tmp_path):
    config = TrainConfig()
    image = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    with Tracker.start(
        store_uri, "exp", "run", tags=run_tags(config, world_size=2), fallback_dir=tmp_path
    ) as tracker:
        tracker.log_params(config_params(config))
        for step in range(5):
            tracker.log_metrics({"loss/0": 1.0 / (step + 1), "de/abs_rel": 0.1 * step}, step)
        tracker.log_dict({"abs_rel": 0.1, "scales": [0, 1]}, "eval/summary.json")
        tracker.log_image(image, "viz/depth.png")
        tracker.set_tags({"phase": "done"})
        assert tracker.run_url is None  # not an http server
    client = MlflowClient(store_uri)
    run = client.get_run(tracker.run_id)
    assert run.info.status == "FINISHED"
    assert run.info.experiment_id == tracker.experiment_id
    assert run.info.run_name == "run"
    assert set(run.data.params) == set(config.to_dict())
    assert run.data.params["frame_ids"] == "[0, -1, 1]"
    assert run.data.params["depth_hint_path"] == "None"
    assert run.data.params["learning_rate"] == "0.0001"
    assert steps_of(client, tracker.run_id, "loss/0") == [0, 1, 2, 3, 4]
    assert [m.value for m in client.get_metric_history(tracker.run_id, "de/abs_rel")] == (
        pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    )
    tags = run.data.tags
    assert tags["phase"] == "done"
    assert tags["split"] == "eigen_zhou" and tags["world_size"] == "2"
    assert tags["data_root"] == os.path.abspath("kitti_data")
    assert tags["hint_store_hash"] == "none"
    assert tags["git_commit"] in (_git_head(), "unknown")
    summary = client.download_artifacts(tracker.run_id, "eval/summary.json", str(tmp_path))
    assert json.loads(Path(summary).read_text()) == {"abs_rel": 0.1, "scales": [0, 1]}
    png = client.download_artifacts(tracker.run_id, "viz/depth.png", str(tmp_path))
    np.testing.assert_array_equal(np.asarray(Image.open(png)), image)
    assert not (tmp_path / JOURNAL).exists()


def _git_head() -> str:
    result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True)
    return result.stdout.strip()


def test_failed_on_exception_and_resume_keeps_the_run(store_uri, tmp_path):
    with pytest.raises(RuntimeError, match="boom"):  # noqa: SIM117 - the raise is the point
        with Tracker.start(store_uri, "exp", "crash", fallback_dir=tmp_path) as tracker:
            tracker.log_metrics({"loss": 1.0}, step=0)
            raise RuntimeError("boom")
    client = MlflowClient(store_uri)
    assert client.get_run(tracker.run_id).info.status == "FAILED"

    resumed = Tracker.start(store_uri, "exp", run_id=tracker.run_id, fallback_dir=tmp_path)
    assert resumed.run_id == tracker.run_id
    assert client.get_run(tracker.run_id).info.status == "RUNNING"
    resumed.log_metrics({"loss": 0.5}, step=1)
    assert resumed.end() == 0
    assert client.get_run(tracker.run_id).info.status == "FINISHED"
    assert steps_of(client, tracker.run_id, "loss") == [0, 1]


def test_hint_store_hash_tag(tmp_path):
    manifest = StoreManifest(format="npy", height=192, width=640, config={"matchers": 12})
    open_store(tmp_path / "hints", manifest)
    config = TrainConfig(
        use_stereo=True, use_depth_hints=True, depth_hint_path=str(tmp_path / "hints")
    )
    assert run_tags(config, world_size=1, cluster_size=3)["hint_store_hash"] == manifest.config_hash
    assert run_tags(config, world_size=1, cluster_size=3)["ray_cluster_size"] == "3"
    no_manifest = config.replace(depth_hint_path=str(tmp_path / "published"))
    assert run_tags(no_manifest, world_size=1)["hint_store_hash"] == "none"


def test_tracking_uri_env_and_default_store_under_output_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.example:5000")
    assert default_tracking_uri(tmp_path) == "http://tracking.example:5000"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")

    cwd, out = tmp_path / "cwd", tmp_path / "out"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    uri = default_tracking_uri(out)
    assert uri == f"sqlite:///{out.resolve()}/mlflow.db"
    tracker = Tracker.start(uri, "exp", "run", fallback_dir=out / "run")
    tracker.log_metrics({"loss": 1.0}, step=0)
    tracker.log_dict({"a": 1}, "a.json")
    tracker.end()
    assert list(cwd.iterdir()) == []
    assert (out / "mlflow.db").is_file()
    assert list((out / "mlartifacts").glob(f"{tracker.run_id}/artifacts/a.json"))


def test_refused_param_is_set_aside_and_the_rest_delivered(store_uri, tmp_path):
    tracker = Tracker.start(store_uri, "exp", "changed-param", fallback_dir=tmp_path)
    tracker.log_params({"lr": 0.1})
    tracker.log_params({"lr": 0.2, "epochs": 3})  # MLflow refuses to change a param
    tracker.log_metrics({"loss": 1.0}, step=0)
    assert tracker.end() == 0
    params = MlflowClient(store_uri).get_run(tracker.run_id).data.params
    assert params == {"lr": "0.1", "epochs": "3"}
    (rejected,) = (tmp_path / REJECTED).read_text().splitlines()
    assert json.loads(rejected)["params"] == {"lr": "0.2"}


# ----------------------------------------------------------------------------- journal replay
def test_sync_pending_replays_a_journal_left_offline(store_uri, tmp_path):
    tracker = Tracker.start(CLOSED_PORT_URI, "exp", "offline", fallback_dir=tmp_path)
    assert tracker.run_id is None
    tracker.log_params({"lr": 0.1, "scales": [0, 1]})
    for step in range(3):
        tracker.log_metrics({"loss": float(step)}, step)
    artifact = tmp_path / "notes.txt"
    artifact.write_text("kept")
    tracker.log_artifact(artifact, "docs")
    artifact.unlink()  # the run folder is cleaned up: the journal kept its own copy
    assert tracker.end() > 0
    assert (tmp_path / JOURNAL).is_file()

    result = sync_pending(tmp_path, tracking_uri=store_uri)
    assert result.remaining == 0
    (run_id,) = result.run_ids
    client = MlflowClient(store_uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "offline"
    assert run.data.params == {"lr": "0.1", "scales": "[0, 1]"}
    assert steps_of(client, run_id, "loss") == [0, 1, 2]
    notes = client.download_artifacts(run_id, "docs/notes.txt", str(tmp_path / "dl"))
    assert Path(notes).read_text() == "kept"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dl"]  # journal and copies gone
    assert sync_pending(tmp_path) == ([], 0)


def test_restart_while_offline_continues_the_same_journal(store_uri, tmp_path):
    crashed = Tracker.start(CLOSED_PORT_URI, "exp", "restarted", fallback_dir=tmp_path)
    crashed.log_metrics({"loss": 1.0}, step=0)
    del crashed  # the process died without end()
    tracker = Tracker.start(store_uri, "exp", "restarted", fallback_dir=tmp_path)
    tracker.log_metrics({"loss": 0.5}, step=1)
    assert tracker.end() == 0
    assert steps_of(MlflowClient(store_uri), tracker.run_id, "loss") == [0, 1]
    assert not list(tmp_path.glob("mlflow_pending*"))


def test_another_runs_journal_is_set_aside_and_synced_on_its_own(store_uri, tmp_path):
    other = Tracker.start(CLOSED_PORT_URI, "exp", "other", fallback_dir=tmp_path)
    other.log_metrics({"loss": 1.0}, step=0)
    del other  # died offline
    first = Tracker.start(store_uri, "exp", "first", fallback_dir=tmp_path / "elsewhere")
    first.end()
    resumed = Tracker.start(store_uri, "exp", run_id=first.run_id, fallback_dir=tmp_path)
    resumed.log_metrics({"loss": 2.0}, step=5)
    assert resumed.end() == 0
    (aside,) = tmp_path.glob("mlflow_pending.*.jsonl")  # still undeliverable to its own URI
    result = sync_pending(tmp_path, tracking_uri=store_uri)
    assert result.remaining == 0 and result.run_ids != [first.run_id]
    client = MlflowClient(store_uri)
    assert steps_of(client, result.run_ids[0], "loss") == [0]
    assert steps_of(client, first.run_id, "loss") == [5]
    assert not aside.exists()


def test_null_tracker_accepts_every_call(tmp_path):
    with NullTracker() as tracker:
        tracker.log_params({"a": {"b": 1}})
        tracker.log_metrics({"loss/0": 1.0}, step=0)
        tracker.log_artifact(tmp_path / "missing")
        tracker.log_dict({}, "x.json")
        tracker.log_image(np.zeros((2, 2, 3), np.uint8), "x.png")
        tracker.set_tags({"a": 1})
        assert tracker.flush() == 0
        assert tracker.run_id is tracker.run_url is tracker.experiment_id is None
    assert tracker.end() == 0
    assert list(tmp_path.iterdir()) == []
