"""Sweeps under faults: a trial that raises (the others finish, MLflow records it FAILED, a
resumed sweep does not rerun the finished one) and the Tune driver SIGKILLed mid-trial and
restored (the finished trial is not rerun, the interrupted one continues from its checkpoint and
ends with the weights of an identical trial that ran uninterrupted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import ray
import torch
from mlflow import MlflowClient

from depthhints.cli import main
from depthhints.train.trainer import RayOptions, init_ray
from depthhints.tune import SweepOptions, sweep, trial_table
from tests.faults.drivers import driver, wait_for
from tests.helpers import tiny_config

pytestmark = pytest.mark.slow

EPOCHS = 6


def test_a_raising_trial_leaves_the_others_and_is_recorded_failed(
    tree, tmp_path, mlflow_store, capsys
):
    init_ray(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        base = tiny_config(
            tree, tmp_path, model_name="sw", num_epochs=1, batch_size=1, use_depth_hints=True
        )
        base.to_yaml(tmp_path / "base.yaml")
        stores = {"parity": str(tree["hints"]), "gone": str(tmp_path / "no_store")}
        command = ["sweep", "--config", str(tmp_path / "base.yaml"), "--name", "hints"]
        command += ["--space", "hint_mode=parity,gone", "--space", "workers=1"]
        command += ["--max-concurrent", "2", "--asha"]
        for mode, folder in stores.items():
            command += ["--hint-store", f"{mode}={folder}"]
        assert main(command) == 1  # a trial failed
        table = capsys.readouterr().out
        lines = {line.split("|")[1].strip(): line for line in table.splitlines() if "|" in line}
        assert "OK" in lines["parity"] and "ERROR" in lines["gone"]
        assert "no hint store" in lines["gone"]

        client = MlflowClient(mlflow_store)
        parent_id = json.loads((tmp_path / "runs" / "sweep_hints" / "mlflow_run.json").read_text())
        parent = client.get_run(parent_id["run_id"])
        assert parent.info.status == "FINISHED" and parent.data.tags["best_trial"]
        children = client.search_runs(
            [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
        )
        by_store = {run.data.params["depth_hint_path"]: run for run in children}
        assert len(children) == 2
        child = by_store[str(Path(tree["hints"]).resolve())]
        # ASHA (max_t = 1 epoch) may stop the trial at its last report: KILLED, not RUNNING
        assert child.info.status in ("FINISHED", "KILLED") and "train/loss" in child.data.metrics
        assert child.data.params["world_size"] == "1"  # the trial's own worker count
        assert by_store[str(tmp_path / "no_store")].info.status == "FAILED"

        # resuming the sweep does not run the finished trial again
        done = Path(base.log_dir) / child.info.run_name / "metrics.jsonl"
        lines = done.read_text()
        options = SweepOptions(
            name="hints", hint_stores=stores, ray=RayOptions(num_workers=1, max_failures=2)
        )
        space = {"hint_mode": ["parity", "gone"], "workers": [1]}  # the same space
        again = sweep(base, space, options, resume=True)
        assert done.read_text() == lines
        assert {row["status"] for row in trial_table(again, "loss")} == {"OK", "ERROR"}
    finally:
        ray.shutdown()


def _weights(run: Path, epoch: int) -> dict[str, torch.Tensor]:
    folder = run / "models" / f"weights_{epoch}"
    return {
        f"{part}.{name}": value
        for part in ("encoder", "depth")
        for name, value in torch.load(folder / f"{part}.pth", weights_only=True).items()
        if isinstance(value, torch.Tensor)
    }


def test_a_killed_sweep_driver_is_restored_and_its_trial_continues(tree, tmp_path):
    # 6 epochs: after a SIGKILL of the driver, its Ray workers train on for a second or two
    base = tiny_config(
        tree, tmp_path, model_name="iv", num_epochs=EPOCHS, batch_size=1, log_frequency=1
    )
    base.to_yaml(tmp_path / "base.yaml")
    command = ["sweep", "--config", str(tmp_path / "base.yaml"), "--name", "killed"]
    command += ["--space", "seed=0,0", "--no-tracking"]  # two identical trials, one at a time
    runs = Path(base.log_dir)

    def second_trial_checkpointed() -> bool:
        trials = sorted(runs.glob("iv_*"))  # named <model>_<experiment>_<trial index>
        return len(trials) == 2 and any(
            (runs / "ray_results" / trials[1].name).glob("checkpoint_*/state.pt")
        )

    with driver(command, tmp_path / "first.log", cwd=tmp_path) as first:
        wait_for(lambda: first.alive() and second_trial_checkpointed(), "a checkpoint", 300)
        first.kill()
    finished, interrupted = sorted(runs.glob("iv_*"))
    last = f"weights_{EPOCHS - 1}"
    assert (finished / "models" / last).is_dir()
    assert not (interrupted / "models" / last).is_dir(), "the kill did not land mid-trial"
    finished_log = (finished / "metrics.jsonl").read_text()

    with driver([*command, "--resume"], tmp_path / "resumed.log", cwd=tmp_path) as resumed:
        assert resumed.process.wait(timeout=600) == 0, resumed.log.read_text()
    assert (finished / "metrics.jsonl").read_text() == finished_log  # not run again
    steps = [
        json.loads(line)["step"]
        for line in (interrupted / "metrics.jsonl").read_text().splitlines()
        if json.loads(line)["phase"] == "train"
    ]
    assert steps.count(0) == 1  # continued from its checkpoint, not from step 0
    assert sorted(set(steps)) == list(range(steps[-1] + 1))
    expected, got = _weights(finished, EPOCHS - 1), _weights(interrupted, EPOCHS - 1)
    assert all(torch.equal(got[name], expected[name]) for name in expected)
