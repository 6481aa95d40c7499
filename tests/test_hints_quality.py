"""Hint quality: per-image metrics, ground truth lookup, and `depthhints hints-quality`."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from depthhints.cli import main
from depthhints.data import synthetic as syn
from depthhints.data.hint_store import NpyHintStore, StoreManifest, hint_key
from depthhints.data.kitti import KittiRawLayout, load_image, read_split_file
from depthhints.errors import MissingDataError
from depthhints.hints.fusion import fuse_pair
from depthhints.hints.quality import STEREO_SCALE, ground_truth, image_metrics, summarise

HEIGHT, WIDTH = 128, 416


def test_perfect_hint_scores_perfectly():
    gt = np.linspace(2.0, 60.0, 40 * 60, dtype=np.float32).reshape(40, 60)
    coverage, abs_rel, delta1 = image_metrics(gt / STEREO_SCALE, gt)
    assert coverage == 1.0 and abs_rel == pytest.approx(0, abs=1e-6) and delta1 == 1.0


def test_metrics_of_a_known_error():
    gt = np.full((20, 30), 10.0, np.float32)
    gt[:, :3] = 0  # no ground truth here: not counted anywhere
    hint = np.full((10, 15), 11.0 / STEREO_SCALE, np.float32)  # +10 %, half resolution
    hint[:, -5:] = 0  # a third of the image without a hint
    hint[0, 5] = 13.0 / STEREO_SCALE  # +30 %: outside δ < 1.25
    coverage, abs_rel, delta1 = image_metrics(hint, gt)
    # nearest-neighbour upsampling: hint pixel (i, j) covers gt rows 2i, 2i+1 and columns 2j, 2j+1
    assert coverage == pytest.approx(17 / 27)
    covered = 20 * 17
    assert abs_rel == pytest.approx((0.1 * (covered - 4) + 0.3 * 4) / covered, rel=1e-5)
    assert delta1 == pytest.approx((covered - 4) / covered)


def test_no_hint_at_all_and_no_ground_truth():
    gt = np.full((4, 4), 5.0, np.float32)
    coverage, abs_rel, delta1 = image_metrics(np.zeros((4, 4), np.float32), gt)
    assert coverage == 0 and np.isnan(abs_rel) and np.isnan(delta1)
    with pytest.raises(ValueError, match="no valid pixel"):
        image_metrics(gt, np.zeros((4, 4), np.float32))
    quality = summarise([(0.0, float("nan"), float("nan")), (1.0, 0.2, 0.5)])
    assert (quality.coverage, quality.abs_rel, quality.delta1, quality.images) == (0.5, 0.2, 0.5, 2)


@pytest.fixture(scope="module")
def hinted_drive(tmp_path_factory):
    """A small synthetic drive and an npy store with the parity hints of its test images."""
    root = tmp_path_factory.mktemp("drive")
    splits = syn.generate_dataset(
        root, syn.DatasetConfig(frames_per_drive=6, width=WIDTH, height=HEIGHT, seed=3)
    )
    layout = KittiRawLayout(root)
    keys = sorted({hint_key(item) for item in read_split_file(splits["train"])})[:4]
    store = NpyHintStore(
        root / "hints",
        StoreManifest("npy", HEIGHT, WIDTH, {"matchers": "parity", "fusion": "parity"}),
    )
    for folder, frame, side in keys:
        pair = [load_image(layout.image_path(folder, frame, s)) for s in ("l", "r")]
        hint, _ = fuse_pair(*pair)[side]
        store.write((folder, frame, side), hint)
    return root, store, keys


def test_ground_truth_prefers_dense_and_falls_back_to_lidar(hinted_drive, tmp_path):
    root, _, keys = hinted_drive
    folder, frame, side = keys[0]
    dense = ground_truth(KittiRawLayout(root), folder, frame, side)
    assert dense.shape == (HEIGHT, WIDTH) and (dense > 0).mean() > 0.5

    copy = tmp_path / "copy"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("proj_depth", "hints"))
    lidar = ground_truth(KittiRawLayout(copy), folder, frame, side)
    both = (lidar > 0) & (dense > 0)
    assert 0.01 < (lidar > 0).mean() < 0.5  # sparser than the dense map
    assert np.median(np.abs(lidar[both] - dense[both]) / dense[both]) < 0.05

    (copy / folder / "velodyne_points" / "data" / f"{frame:010d}.bin").unlink()
    with pytest.raises(MissingDataError, match="velodyne_points"):
        ground_truth(KittiRawLayout(copy), folder, frame, side)


def test_hints_quality_command(hinted_drive, tmp_path, capsys):
    root, store, keys = hinted_drive
    report = tmp_path / "quality.json"
    args = ["hints-quality", str(store.root), "--data-path", str(root), "--json", str(report)]
    assert main(args) == 0
    assert "parity" in capsys.readouterr().out
    [row] = json.loads(report.read_text())
    assert row["images"] == len(keys) and row["matchers"] == "parity"
    # Measured on this drive: coverage 0.76, abs rel 0.13, δ<1.25 0.91.
    assert row["coverage"] > 0.6 and row["abs_rel"] < 0.2 and row["delta1"] > 0.8

    assert main([*args, "--limit", "2"]) == 0
    assert json.loads(report.read_text())[0]["images"] == 2
