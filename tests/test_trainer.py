"""Ray Train: 2 CPU workers in sync, resume with more epochs (faults: tests/faults/)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import ray
from mlflow import MlflowClient

from depthhints.config import TrainConfig
from depthhints.train.reporting import recorded_run_id
from depthhints.train.trainer import RayOptions, fit_distributed, init_ray
from tests.helpers import tiny_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def ray_cluster():
    init_ray(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _config(tree: dict, tmp_path: Path, **changes) -> TrainConfig:
    one_step_logs = {"batch_size": 1, "num_epochs": 1, "log_frequency": 1}
    return tiny_config(tree, tmp_path, **{**one_step_logs, **changes})


def _train_log(config: TrainConfig) -> list[int]:
    lines = (config.run_dir / "metrics.jsonl").read_text().splitlines()
    return [r["step"] for r in map(json.loads, lines) if r["phase"] == "train"]


def _steps(client: MlflowClient, run_id: str, key: str) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, key))


def test_two_workers_stay_in_sync_and_resume_with_more_epochs(tree, tmp_path, mlflow_store):
    config = _config(tree, tmp_path, model_name="sync")
    params = tmp_path / "params"
    announced: list[str] = []
    result = fit_distributed(
        config,
        RayOptions(num_workers=2),
        {"parameter_log": str(params)},
        announce=announced.append,
    )
    assert result.metrics["step"] == 2  # 4 items / 2 workers / batch 1
    ranks = [
        [json.loads(line) for line in (params / f"rank{r}.jsonl").read_text().splitlines()]
        for r in (0, 1)
    ]
    assert [e["step"] for e in ranks[0]] == [0, 1]
    assert ranks[0] == ranks[1]  # identical parameters on both workers after every step
    assert (config.run_dir / "models" / "weights_0" / "encoder.pth").is_file()

    # the driver created the MLflow run; rank 0 logged to it and finished it
    run_id = recorded_run_id(config)
    assert run_id and run_id in announced[0]
    client = MlflowClient(mlflow_store)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["world_size"] == "2" and run.data.params["effective_batch_size"] == "2"
    assert run.data.tags["world_size"] == "2" and run.data.tags["ray_cluster_size"] == "1"
    assert _steps(client, run_id, "train/loss") == [0, 1]
    per_worker = client.get_metric_history(run_id, "train/images_per_second_per_worker")
    total = {m.step: m.value for m in client.get_metric_history(run_id, "train/images_per_second")}
    assert all(total[m.step] == pytest.approx(2 * m.value) for m in per_worker)
    weights = client.list_artifacts(run_id, "weights")
    assert [a.path for a in weights] == ["weights/weights_0"]

    longer = config.replace(num_epochs=2)
    resumed = fit_distributed(longer, RayOptions(num_workers=2), resume=True)
    assert resumed.metrics["step"] == 4 and resumed.metrics["epoch"] == 1
    assert _train_log(longer) == [0, 1, 2, 3]  # the second run started at step 2, not 0
    assert recorded_run_id(longer) == run_id  # ... and continued the same MLflow run
    assert _steps(client, run_id, "train/loss") == [0, 1, 2, 3]
    assert client.get_run(run_id).info.status == "FINISHED"


def test_two_workers_on_the_training_cache_build_it_once_and_stay_in_sync(tree, tmp_path):
    hints = {"use_depth_hints": True, "depth_hint_path": str(tree["hints"])}
    config = _config(tree, tmp_path, model_name="cached", loader="cache", **hints)
    params = tmp_path / "params"
    result = fit_distributed(config, RayOptions(num_workers=2), {"parameter_log": str(params)})
    assert result.metrics["step"] == 2
    ranks = [(params / f"rank{r}.jsonl").read_text().splitlines() for r in (0, 1)]
    assert ranks[0] == ranks[1]
    caches = [p for p in config.cache_path.iterdir() if not p.name.startswith(".")]
    assert len(caches) == 1 and (caches[0] / "manifest.json").is_file()
