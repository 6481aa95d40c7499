"""The `depthhints` command: synth and demo end to end on a small drive."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient
from PIL import Image

from depthhints.cli import main
from depthhints.data.kitti import KittiRawLayout, read_split_file

SMALL = ["--frames", "5", "--width", "416", "--height", "128", "--workers", "1"]


def test_synth_writes_a_readable_tree(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path), "--image-ext", ".jpg", *SMALL]) == 0
    out = capsys.readouterr().out
    assert "stereo frames/s" in out and "split train" in out
    layout = KittiRawLayout(tmp_path)
    assert layout.image_ext == ".jpg"
    items = read_split_file(tmp_path / "splits" / "train_files.txt")
    assert layout.image_path(items[0].folder, items[0].frame, "r").is_file()


@pytest.mark.slow
def test_demo_renders_hints_sweeps_on_ray_tracks_and_tabulates(tmp_path, capfd, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI")  # the demo's own embedded store
    small = ["--frames", "4", "--width", "416", "--height", "128", "--workers", "2"]
    assert main(["demo", "--out", str(tmp_path), *small, "--epochs", "1"]) == 0
    picture = tmp_path / "stereo_preview.png"
    captured = capfd.readouterr()  # what the terminal would show (not a tty here)
    out = captured.out
    assert str(picture) in out and "5 written" in out and "0 failed" in out
    hints = list((tmp_path / "kitti_synthetic" / "depth_hints").rglob("*.npy"))
    assert len(hints) == 5 and np.load(hints[0]).shape == (1, 320, 1024)
    pixels = np.asarray(Image.open(picture).convert("L"), dtype=float)
    assert pixels.shape[0] > 400 and pixels.std() > 20  # four panels with real content

    # the results table: the recipe with and without hints, on both GTs, with and without pp
    table = json.loads((tmp_path / "table" / "table.json").read_text())
    rows = {(line["row"], line["evaluation"]) for line in table}
    assert ("S_R18_640x192_nopt_hints", "eigen_pp") in rows
    assert ("S_R18_640x192_nopt_nohints", "eigen_benchmark") in rows and len(rows) == 8
    assert "| S_R18_640x192_nopt_hints | eigen_pp |" in out

    # a Tune sweep tracked in <out>/runs/mlflow.db: two trials on 2 Ray Train workers each,
    # validated after every epoch
    client = MlflowClient(f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}")
    (parent,) = client.search_runs(
        [client.get_experiment_by_name("depth-hints").experiment_id],
        "attributes.run_name = 'table_demo'",
    )
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert sorted(c.data.params["use_depth_hints"] for c in children) == ["False", "True"]
    for child in children:
        assert child.info.status == "FINISHED" and child.data.params["world_size"] == "2"
        assert {"train/loss", "val/loss", "eval/abs_rel"} <= set(child.data.metrics)

    # the quality and cost of the published hints and of the fast preset's, and the report
    quality = client.search_runs([parent.info.experiment_id], "tags.run_kind = 'hint_quality'")
    assert sorted(run.data.params["mode"] for run in quality) == ["fast/parity", "parity/parity"]
    for run in quality:
        assert run.data.metrics["hints/seconds_per_image"] > 0
        assert 0 < run.data.metrics["hints/coverage"] <= 1
    report = tmp_path / "report.html"
    assert f"report (open in a browser): {report}" in out
    assert report.read_text().count('class="result-row"') == 8

    # our output first: stages, progress bars with rate and ETA, trials and results; Ray's and
    # Tune's own output in the log file named at the start
    terminal = captured.out + captured.err
    ray_log = tmp_path / "ray.log"
    assert f"Ray's own output: {ray_log}" in out
    assert "Trial status" in ray_log.read_text() and "Started a local Ray" in ray_log.read_text()
    for noise in RAY_NOISE:
        assert noise not in terminal, noise
    assert "\x1b[" not in terminal  # no colours or cursor moves: this is not a terminal
    # rank 0's bar, drawn by the driver: steps done, elapsed < remaining, rate
    assert re.search(
        r"epoch 0/1: 100%.* 1/1 \[[\d:]+<[\d:]+, +[\d.]+(s/step|step/s)\]", captured.err
    )
    assert out.count(" done in ") == 2  # a line per trial
    assert len(terminal.splitlines()) <= 100

    # one copy of each trial's weights: its run folder's, hard-linked into MLflow's artifacts;
    # the Train checkpoints gone once the trial ended
    for child in children:
        weights = tmp_path / "runs" / child.info.run_name / "models" / "weights_0" / "encoder.pth"
        assert weights.stat().st_nlink == 2
    assert not list((tmp_path / "runs" / "ray_results").glob("*/checkpoint_*"))
    assert disk_usage(tmp_path) <= 500e6


RAY_NOISE = (
    "Trial status",
    "╭",
    "│ Trial name",
    "Current time:",
    "core_worker",
    "TensorBoard",
    "(RayTrainWorker",
    "(TrainController",
    "Token authentication",
)


def disk_usage(folder: Path) -> int:
    """Bytes of the files under ``folder``, a file with several links counted once (as du)."""
    sizes = {}
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            stat = path.stat()
            sizes[stat.st_dev, stat.st_ino] = stat.st_size
    return sum(sizes.values())


@pytest.mark.slow
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
