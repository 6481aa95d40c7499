"""Ray Tune sweeps: a failing trial does not stop the others; MLflow parent and child runs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import ray
from mlflow import MlflowClient

from depthhints.cli import main
from depthhints.errors import ConfigError
from depthhints.train.trainer import RayOptions, init_ray
from depthhints.tune import SweepOptions, apply_choices, parse_space, sweep, trial_table
from tests.helpers import tiny_config


def test_space_parsing_and_derived_dimensions(tree, tmp_path):
    space = parse_space(["use_depth_hints=true,false", "resolution=640x192, 1024x320"])
    assert space == {"use_depth_hints": [True, False], "resolution": ["640x192", "1024x320"]}
    base = tiny_config(tree, tmp_path)
    config = apply_choices(
        base,
        {"resolution": "1024x320", "modality": "MS", "hint_mode": "fast", "seed": 3},
        {"fast": "/stores/fast"},
    )
    assert (config.width, config.height, config.seed) == (1024, 320, 3)
    assert config.frame_ids == [0, -1, 1] and config.use_stereo
    assert config.depth_hint_path == "/stores/fast"
    ablation = [apply_choices(base, {"hints": v}, {"fast": "/f"}) for v in ("off", "fast")]
    assert [(c.use_depth_hints, c.depth_hint_path) for c in ablation] == [
        (False, None),
        (True, "/f"),
    ]
    for bad, message in [
        ({"resolution": "640"}, "WIDTHxHEIGHT"),
        ({"modality": "X"}, "modality"),
        ({"hint_mode": "quality"}, "--hint-store quality="),
        ({"colour": 1}, "unknown sweep dimension"),
    ]:
        with pytest.raises(ConfigError, match=message):
            apply_choices(base, bad, {})
    with pytest.raises(ConfigError, match="NAME=VALUE"):
        parse_space(["num_layers"])


@pytest.mark.slow
def test_a_failing_trial_leaves_the_others_and_trials_are_mlflow_children(
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


def test_sweep_hints_script_builds_an_ablation_over_stores_and_seeds():
    from experiments.sweep_hints import sweep_arguments

    args = sweep_arguments(
        ["--config", "c.yaml", "--seeds", "2", "--hint-store", "fast=/h", "--max-concurrent", "2"]
    )
    assert args[:5] == ["sweep", "--name", "hint_ablation", "--space", "hints=off,fast"]
    assert "seed=0,1" in args and args[-4:] == ["--config", "c.yaml", "--max-concurrent", "2"]
    default = sweep_arguments(["--data_path", "/kitti"])
    assert "hints=off,parity" in default and "parity=/kitti/depth_hints" in default


@pytest.mark.slow
def test_an_interrupted_sweep_resumes_without_rerunning_finished_trials(tree, tmp_path):
    base = tiny_config(tree, tmp_path, model_name="iv", num_epochs=2, batch_size=1)
    base.to_yaml(tmp_path / "base.yaml")
    command = ["sweep", "--config", str(tmp_path / "base.yaml"), "--name", "interrupted"]
    command += ["--space", "seed=0,1", "--no-tracking"]
    script = "import sys; from depthhints.cli import main; sys.exit(main(sys.argv[1:]))"
    runs = Path(base.log_dir)
    process = subprocess.Popen([sys.executable, "-c", script, *command], cwd=tmp_path)
    try:
        deadline = time.monotonic() + 300
        while len(list(runs.glob("iv_*"))) < 2:  # the second trial has started
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=120)
    finally:
        process.kill()
    first, second = sorted(runs.glob("iv_*"))
    finished = (first / "metrics.jsonl").read_text()
    assert (first / "models" / "weights_1").is_dir()
    assert not (second / "models" / "weights_1").is_dir()  # interrupted mid-trial

    resumed = subprocess.run(
        [sys.executable, "-c", script, *command, "--resume"], cwd=tmp_path, timeout=600
    )
    assert resumed.returncode == 0
    assert (first / "metrics.jsonl").read_text() == finished  # not run again
    assert (second / "models" / "weights_1").is_dir()
