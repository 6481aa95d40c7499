"""A training's MLflow run: params, metrics, images and weights; resume; an unreachable server."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from mlflow import MlflowClient
from PIL import Image

from depthhints.config import TrainConfig
from depthhints.data.kitti import write_split_file
from depthhints.evaluate import (
    EvalImageDataset,
    evaluate_predictions,
    gt_depth_maps,
    predict_disparities,
)
from depthhints.models import load_depth_net
from depthhints.tracking import JOURNAL, sync_pending
from depthhints.train.loop import fit
from depthhints.train.reporting import TrackingOptions, recorded_run_id, training_grid
from tests.helpers import tiny_config

CLOSED_PORT_URI = "http://127.0.0.1:9"  # the discard port: nothing listens, connections refused
METRICS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")


def _config(tree: dict, tmp_path: Path, **changes) -> TrainConfig:
    eval_split = tmp_path / "eval_files.txt"
    write_split_file(eval_split, [item for item in tree["items"] if item.side == "l"])
    tracked = dict(
        depth_hint_path=str(tree["hints"]),
        use_depth_hints=True,
        log_frequency=1,
        eval_split_file=str(eval_split),
        eval_protocol="eigen_benchmark",
    )
    return tiny_config(tree, tmp_path, **{**tracked, **changes})


def _jsonl(config: TrainConfig, phase: str) -> list[dict]:
    lines = (config.run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r.pop("phase") == phase]


def _history(client: MlflowClient, run_id: str, key: str) -> dict[int, float]:
    return {m.step: m.value for m in client.get_metric_history(run_id, key)}


@pytest.mark.slow
def test_training_run_holds_params_metrics_images_weights_and_resumes(tree, tmp_path, mlflow_store):
    config = _config(tree, tmp_path, model_name="tracked")
    lines: list[str] = []
    fit(config, progress=False, announce=lines.append)
    run_id = recorded_run_id(config)
    assert run_id and run_id in lines[0] and mlflow_store in lines[0]
    client = MlflowClient(mlflow_store)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == config.model_name

    params = run.data.params
    assert {k: v for k, v in params.items() if k in config.to_dict()} == {
        k: (json.dumps(v) if isinstance(v, list) else str(v)) for k, v in config.to_dict().items()
    }
    assert params["world_size"] == "1" and params["effective_batch_size"] == "2"
    tags = run.data.tags
    assert tags["split"] == config.split and tags["world_size"] == "1"
    assert tags["hint_store_hash"] not in ("none", "unreadable")

    # every metric of metrics.jsonl is in MLflow under <phase>/<name>, at its step
    for phase in ("train", "val", "eval"):
        records = _jsonl(config, phase)
        assert records, phase
        for key in records[0]:
            if key != "step":
                expected = {r["step"]: r[key] for r in records}
                assert _history(client, run_id, f"{phase}/{key}") == pytest.approx(expected)
    assert sorted(_history(client, run_id, "train/loss")) == [0, 1, 2, 3]
    for key in ("loss/3", "depth_hint_loss/0", "reproj_loss/0", "lr", "images_per_second"):
        assert f"train/{key}" in run.data.metrics
    per_worker = _history(client, run_id, "train/images_per_second_per_worker")
    assert per_worker == _history(client, run_id, "train/images_per_second")  # one worker
    assert sorted(_history(client, run_id, "eval/abs_rel")) == [2, 4]  # after each epoch

    artifacts = tmp_path / "artifacts"
    client.download_artifacts(run_id, "", str(artifacts))
    assert TrainConfig.from_yaml(artifacts / "config.yaml") == config
    grid = np.asarray(Image.open(artifacts / "images" / "epoch_001.png"))
    # 2 validation images x (input, disparity, hint, hint pixels, automask) tiles of 64x192
    assert grid.shape == (2 * 64, 5 * 192, 3) and grid.std() > 10
    assert (artifacts / "images" / "epoch_000.png").is_file()
    assert (artifacts / "weights" / "weights_1" / "encoder.pth").is_file()
    final = json.loads((artifacts / "eval" / "epoch_001.json").read_text())
    assert final["step"] == 4 and final["num_images"] == 2
    assert final["metrics"]["abs_rel"] == pytest.approx(run.data.metrics["eval/abs_rel"])

    # the per-epoch validation is `depthhints evaluate` on the published weights
    loaded = load_depth_net(config.run_dir / "models" / "weights_1")
    layout_items = _eval_items(config)
    disparities = predict_disparities(
        loaded.net, EvalImageDataset(*layout_items, config.height, config.width)
    )
    reference = evaluate_predictions(
        disparities, gt_depth_maps(*layout_items, "eigen_benchmark"), "eigen_benchmark", True
    )
    for name in METRICS:
        assert final["metrics"][name] == pytest.approx(reference.metrics[name], rel=1e-5)

    # resuming with one more epoch continues the same MLflow run and its step counter
    fit(config.replace(num_epochs=3), resume=True, progress=False)
    assert recorded_run_id(config) == run_id
    assert client.get_run(run_id).info.status == "FINISHED"
    assert sorted(_history(client, run_id, "train/loss")) == [0, 1, 2, 3, 4, 5]
    assert sorted(_history(client, run_id, "eval/abs_rel")) == [2, 4, 6]
    experiment = client.get_experiment_by_name("depth-hints").experiment_id
    named = client.search_runs([experiment], f"attributes.run_name = '{config.model_name}'")
    assert [r.info.run_id for r in named] == [run_id]  # no second run


def _eval_items(config: TrainConfig):
    from depthhints.data.kitti import KittiRawLayout, read_split_file

    return KittiRawLayout(config.data_path), read_split_file(config.eval_split_file)


def test_unreachable_tracking_server_stops_nothing_and_loses_no_metric(
    tree, tmp_path, mlflow_store
):
    config = _config(tree, tmp_path, eval_split_file=None, model_name="offline")
    offline = TrackingOptions(uri=CLOSED_PORT_URI, experiment="offline-test")
    lines: list[str] = []
    result = fit(config, progress=False, tracking=offline, announce=lines.append)
    assert len(result.history) == 4 and result.weights
    assert "does not answer" in lines[0]
    assert (config.run_dir / JOURNAL).is_file() and recorded_run_id(config) is None

    synced = sync_pending(config.run_dir, tracking_uri=mlflow_store)
    assert synced.remaining == 0 and len(synced.run_ids) == 1
    client = MlflowClient(mlflow_store)
    run = client.get_run(synced.run_ids[0])
    assert run.info.status == "FINISHED" and run.data.params["model_name"] == "offline"
    for phase in ("train", "val"):
        records = _jsonl(config, phase)
        for key in records[0]:
            if key != "step":
                expected = {r["step"]: r[key] for r in records}
                assert _history(client, run.info.run_id, f"{phase}/{key}") == pytest.approx(
                    expected
                )
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "images", "weights"} <= names


def test_no_tracking_writes_no_mlflow_run(tree, tmp_path):
    config = _config(tree, tmp_path, eval_split_file=None, num_epochs=1, model_name="quiet")
    fit(config, progress=False, tracking=TrackingOptions(enabled=False))
    assert recorded_run_id(config) is None and not (config.run_dir / JOURNAL).exists()
    assert not (Path(config.log_dir) / "mlflow.db").exists()


def test_training_grid_columns_follow_what_the_run_has():
    batch = {("color", 0, 0): torch.rand(3, 3, 32, 64)}
    outputs = {("disp", 0): torch.rand(3, 1, 32, 64)}
    assert training_grid(batch, outputs, {}).shape == (3 * 32, 2 * 64, 3)
    batch["depth_hint"] = torch.where(torch.rand(3, 1, 32, 64) > 0.5, 10.0, 0.0)
    masks = {"automask/0": torch.ones(3, 1, 32, 64), "automask/1": torch.ones(3, 1, 16, 32)}
    grid = training_grid(batch, outputs, masks, max_rows=2)
    assert grid.shape == (2 * 32, 4 * 64, 3) and grid.dtype == np.uint8
    hint_tile = grid[:32, 2 * 64 : 3 * 64]
    no_hint = (batch["depth_hint"][0, 0] == 0).numpy()
    assert (hint_tile[no_hint] == 0).all() and (hint_tile[~no_hint] > 0).any()
