"""The `depthhints` command: synth and demo end to end on a small drive."""

from __future__ import annotations

import numpy as np
from mlflow import MlflowClient
from PIL import Image

from depthhints.cli import main
from depthhints.config import TrainConfig
from depthhints.data.kitti import KittiRawLayout, read_split_file
from depthhints.train.reporting import recorded_run_id

SMALL = ["--frames", "5", "--width", "416", "--height", "128", "--workers", "1"]


def test_synth_writes_a_readable_tree(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path), "--image-ext", ".jpg", *SMALL]) == 0
    out = capsys.readouterr().out
    assert "stereo frames/s" in out and "split train" in out
    layout = KittiRawLayout(tmp_path)
    assert layout.image_ext == ".jpg"
    items = read_split_file(tmp_path / "splits" / "train_files.txt")
    assert layout.image_path(items[0].folder, items[0].frame, "r").is_file()


def test_demo_renders_hints_trains_on_ray_tracks_and_evaluates(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI")  # the demo's own embedded store
    small = [
        "--frames",
        "4",
        "--width",
        "416",
        "--height",
        "128",
        "--workers",
        "2",
        "--epochs",
        "1",
    ]
    assert main(["demo", "--out", str(tmp_path), *small]) == 0
    picture = tmp_path / "stereo_preview.png"
    out = capsys.readouterr().out
    assert str(picture) in out and "5 written" in out and "0 failed" in out
    assert "abs_rel" in out and "stereo evaluation of 1 images" in out
    run_dir = tmp_path / "runs" / "demo_stereo_hints"
    assert (run_dir / "models" / "weights_0" / "depth.pth").is_file()
    # trained by 2 Ray Train workers, tracked in <out>/runs/mlflow.db
    store = f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}"
    run_id = recorded_run_id(TrainConfig(log_dir=str(tmp_path / "runs"), model_name=run_dir.name))
    assert run_id in out and store in out
    run = MlflowClient(store).get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.params["world_size"] == "2"
    assert {"train/loss", "val/loss", "eval/abs_rel", "eval/a1"} <= set(run.data.metrics)
    assert (tmp_path / "runs" / "ray_results" / run_dir.name).is_dir()
    hints = list((tmp_path / "kitti_synthetic" / "depth_hints").rglob("*.npy"))
    assert len(hints) == 5 and np.load(hints[0]).shape == (1, 320, 1024)
    pixels = np.asarray(Image.open(picture).convert("L"), dtype=float)
    assert pixels.shape[0] > 400 and pixels.std() > 20  # four panels with real content


def test_hints_command_exits_non_zero_and_names_failed_items(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path), *SMALL]) == 0
    split = tmp_path / "splits" / "test_files.txt"
    (tmp_path / read_split_file(split)[0].folder / "image_03" / "data" / "0000000004.png").unlink()
    args = ["hints", "--data-path", str(tmp_path), "--split", str(split), "--format", "parquet"]
    assert main([*args, "--height", "96", "--width", "320", "--workers", "1"]) == 1
    captured = capsys.readouterr()
    assert "0 hints written" in captured.out and "1 failed" in captured.out
    assert "0000000004.png" in captured.err and "failures.json" in captured.err


def test_bad_values_are_reported_not_raised(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path), "--frames", "3", "--width", "64"]) == 2
    error = capsys.readouterr().err
    assert "at least 4 frames" in error and "--frames" in error


def test_sync_tracking_on_a_folder_without_journal(tmp_path, capsys):
    assert main(["sync-tracking", str(tmp_path)]) == 0
    assert "0 left" in capsys.readouterr().out
