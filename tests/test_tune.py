"""Ray Tune sweeps: a failing trial does not stop the others; MLflow parent and child runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import ray
from mlflow import MlflowClient

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
    tree, tmp_path, mlflow_store
):
    init_ray(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        base = tiny_config(
            tree, tmp_path, model_name="sw", num_epochs=1, batch_size=1, use_depth_hints=True
        )
        options = SweepOptions(
            name="hints",
            max_concurrent_trials=2,
            hint_stores={"parity": str(tree["hints"]), "gone": str(tmp_path / "no_store")},
            ray=RayOptions(num_workers=1),
        )
        grid = sweep(base, {"hint_mode": ["parity", "gone"]}, options)
        rows = {row["hint_mode"]: row for row in trial_table(grid, "loss")}
        assert rows["parity"]["status"] == "OK" and rows["parity"]["loss"] > 0
        assert rows["gone"]["status"] == "ERROR" and "no hint store" in rows["gone"]["error"]

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
        assert child.info.status == "FINISHED" and "train/loss" in child.data.metrics
        assert by_store[str(tmp_path / "no_store")].info.status == "FAILED"

        # resuming the sweep does not run the finished trial again
        done = Path(base.log_dir) / child.info.run_name / "metrics.jsonl"
        lines = done.read_text()
        again = sweep(base, {"hint_mode": ["parity", "gone"]}, options, resume=True)
        assert done.read_text() == lines
        assert {row["status"] for row in trial_table(again, "loss")} == {"OK", "ERROR"}
    finally:
        ray.shutdown()
