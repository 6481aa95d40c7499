"""Training under faults: a Ray Train worker process killed mid-epoch, the driver killed and the
run resumed, the newest checkpoint truncated. Each run must end with the weights of an
uninterrupted run (training is deterministic on CPU and resumes exactly), one MLflow run, and
the steps after the checkpoint used trained again, no more."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import ray
import torch
from mlflow import MlflowClient

from depthhints.config import TrainConfig
from depthhints.train.checkpoint import CheckpointFallbackWarning
from depthhints.train.loop import fit
from depthhints.train.reporting import recorded_run_id
from depthhints.train.restarts import RESTARTS_LOG
from depthhints.train.trainer import RayOptions, fit_distributed, init_ray
from tests.faults.drivers import driver, wait_for
from tests.helpers import tiny_config

pytestmark = pytest.mark.slow

EPOCHS = 6  # 4 items / 2 workers / batch 1: 2 steps an epoch, a checkpoint after each
# (6: a SIGKILLed driver's Ray workers train on for a second or two before they notice)


@pytest.fixture(scope="module")
def cluster():
    init_ray(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _config(tree: dict, folder: Path, name: str, **changes) -> TrainConfig:
    values = {"batch_size": 1, "num_epochs": EPOCHS, "log_frequency": 1, "model_name": name}
    return tiny_config(tree, folder, **{**values, **changes})


def _train_log(config: TrainConfig) -> list[int]:
    lines = (config.run_dir / "metrics.jsonl").read_text().splitlines()
    return [r["step"] for r in map(json.loads, lines) if r["phase"] == "train"]


def _final_weights(config: TrainConfig) -> dict[str, torch.Tensor]:
    folder = config.run_dir / "models" / f"weights_{EPOCHS - 1}"
    return {
        f"{part}.{name}": value
        for part in ("encoder", "depth")
        for name, value in torch.load(folder / f"{part}.pth", weights_only=True).items()
        if isinstance(value, torch.Tensor)  # encoder.pth also holds height, width, use_stereo
    }


def _assert_same_weights(config: TrainConfig, reference: dict[str, torch.Tensor]) -> None:
    weights = _final_weights(config)
    assert weights.keys() == reference.keys()
    different = [name for name in reference if not torch.equal(weights[name], reference[name])]
    assert not different, f"{len(different)} tensors differ from the uninterrupted run"


@pytest.fixture(scope="module")
def uninterrupted(tree, cluster, tmp_path_factory) -> dict[str, torch.Tensor]:
    """Final weights of a 2-worker run nothing happened to."""
    config = _config(tree, tmp_path_factory.mktemp("uninterrupted"), "reference")
    fit_distributed(config, RayOptions(num_workers=2))
    assert _train_log(config) == list(range(2 * EPOCHS))
    return _final_weights(config)


def test_a_killed_worker_process_is_replaced_and_resumes_from_the_checkpoint(
    tree, tmp_path, mlflow_store, uninterrupted
):
    config = _config(tree, tmp_path, "killed_worker")
    hooks = {"kill_at_step": 3, "marker": str(tmp_path / "killed")}  # rank 0, mid-epoch 1
    result = fit_distributed(config, RayOptions(num_workers=2, max_failures=1), hooks)
    assert (tmp_path / "killed").read_text() == "killed"
    assert result.metrics["step"] == 2 * EPOCHS
    # step 3 was logged, then its process died; the group restarted from the epoch-0
    # checkpoint (step 2): steps 2 and 3 ran twice, nothing restarted from 0
    assert _train_log(config) == [0, 1, 2, 3, *range(2, 2 * EPOCHS)]
    _assert_same_weights(config, uninterrupted)
    client = MlflowClient(mlflow_store)
    run = client.get_run(recorded_run_id(config))
    assert run.info.status == "FINISHED"
    history = client.get_metric_history(run.info.run_id, "train/loss")
    assert sorted(m.step for m in history) == sorted([0, 1, 2, 3, *range(2, 2 * EPOCHS)])
    # the restart is on record with its cause: the run's log, the terminal and MLflow
    (restart,) = (config.run_dir / RESTARTS_LOG).read_text().splitlines()
    assert "restart 1 of at most 1 (after step 2)" in restart
    assert "rank 0: worker process died (SYSTEM_ERROR" in restart
    assert [
        (m.value, m.step) for m in client.get_metric_history(run.info.run_id, "train/restarts")
    ] == [(1, 2)]
    assert run.data.tags["last_restart_cause"].startswith("rank 0: worker process died")


ANOTHER_CLUSTER = """
import sys, ray
ray.init(address="local", num_cpus=1, log_to_driver=False, dashboard_port=8265)
print("up", flush=True)
sys.stdin.read()  # until the test closes it
ray.shutdown()
"""


def test_a_cluster_started_beside_a_run_leaves_it_alone(tree, tmp_path, uninterrupted):
    """Another Ray cluster started on the machine mid-run (another user's job, another test),
    its dashboard on Ray's default port, must not take the run's workers, nor restart it: Ray
    Train's placement-group cleaner, asking that dashboard about our controller, would find
    none and remove the run's placement group."""
    config = _config(tree, tmp_path, "beside")
    run = threading.Thread(target=fit_distributed, args=(config, RayOptions(num_workers=2)))
    run.start()
    wait_for(lambda: (config.run_dir / "metrics.jsonl").is_file(), "the first step", timeout=600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}  # Ray's defaults
    other = subprocess.Popen(
        [sys.executable, "-c", ANOTHER_CLUSTER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert other.stdout.readline().strip() == "up"
        run.join(timeout=600)
    finally:
        other.communicate(timeout=120)  # closes its stdin: it shuts its cluster down
    assert not run.is_alive()
    assert _train_log(config) == list(range(2 * EPOCHS))
    assert not (config.run_dir / RESTARTS_LOG).exists()
    _assert_same_weights(config, uninterrupted)


def test_a_killed_driver_is_resumed_from_the_last_checkpoint(
    tree, tmp_path, mlflow_store, uninterrupted
):
    config = _config(tree, tmp_path, "killed_driver")
    config.to_yaml(tmp_path / "run.yaml")
    command = ["train", "--config", str(tmp_path / "run.yaml"), "--workers", "2", "--no-progress"]
    checkpoints = Path(config.log_dir) / "ray_results" / config.model_name
    with driver(command, tmp_path / "first.log", cwd=tmp_path) as first:
        wait_for(
            lambda: first.alive() and any(checkpoints.glob("checkpoint_*/state.pt")),
            "the first checkpoint",
        )
        first.kill()
    done = _train_log(config)
    assert len(done) < 2 * EPOCHS, "the kill did not land mid-run"
    run_id = recorded_run_id(config)
    assert MlflowClient(mlflow_store).get_run(run_id).info.status == "RUNNING"  # nobody ended it

    with driver([*command, "--resume"], tmp_path / "resumed.log", cwd=tmp_path) as resumed:
        assert resumed.process.wait(timeout=300) == 0, resumed.log.read_text()
    log = _train_log(config)
    restart = len(done)  # where the resumed driver's steps begin
    assert log[:restart] == done and log[-1] == 2 * EPOCHS - 1
    assert log[restart] % 2 == 0 and log[restart] <= done[-1] + 1  # from a checkpoint
    _assert_same_weights(config, uninterrupted)
    assert recorded_run_id(config) == run_id
    assert MlflowClient(mlflow_store).get_run(run_id).info.status == "FINISHED"


def test_a_truncated_checkpoint_falls_back_to_the_previous_one(
    tree, tmp_path, mlflow_store, uninterrupted
):
    shorter = _config(tree, tmp_path, "truncated", num_epochs=EPOCHS - 1)
    fit_distributed(shorter, RayOptions(num_workers=2))
    run = Path(shorter.log_dir) / "ray_results" / "truncated"
    checkpoints = sorted(run.glob("checkpoint_*/"))
    assert len(checkpoints) == 2  # RayOptions.num_to_keep
    newest = checkpoints[-1] / "state.pt"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])

    config = shorter.replace(num_epochs=EPOCHS)
    fit_distributed(config, RayOptions(num_workers=2), resume=True)
    # the newest state was unreadable: the run continued from the one before, an epoch earlier
    done = 2 * (EPOCHS - 1)
    assert _train_log(config) == [*range(done), *range(done - 2, 2 * EPOCHS)]
    _assert_same_weights(config, uninterrupted)
    logs = Path(ray._private.worker._global_node.get_session_dir_path()) / "logs"
    warned = [p for p in logs.glob("worker-*.err") if str(newest.parent.name) in p.read_text()]
    assert warned, "no worker warned about the unreadable checkpoint"
    assert "CheckpointFallbackWarning" in warned[0].read_text()


def test_a_truncated_local_state_falls_back_to_the_previous_one(tree, tmp_path):
    reference_config = _config(tree, tmp_path, "local_reference", batch_size=2)
    reference = fit(reference_config, progress=False)
    shorter = _config(tree, tmp_path, "local", batch_size=2, num_epochs=EPOCHS - 1)
    fit(shorter, progress=False)
    state = shorter.run_dir / "models" / "state.pt"
    state.write_bytes(state.read_bytes()[:1000])

    config = shorter.replace(num_epochs=EPOCHS)
    with pytest.warns(CheckpointFallbackWarning, match="state.previous.pt"):
        resumed = fit(config, resume=True, progress=False)
    first = 2 * (EPOCHS - 2)  # the previous state: one epoch before the truncated one
    assert [h["step"] for h in resumed.history] == list(range(first, 2 * EPOCHS))
    assert resumed.history == reference.history[first:]  # with the uninterrupted run's losses
    _assert_same_weights(config, _final_weights(reference_config))
