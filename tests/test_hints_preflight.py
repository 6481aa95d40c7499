"""Checks before a hint run starts Ray: data root, split, store settings and manifest."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import ray

from depthhints.data import synthetic as syn
from depthhints.data.hint_store import NpyHintStore, StoreMismatchError, hint_key, open_store
from depthhints.data.kitti import KittiRawLayout, SplitItem, read_split_file
from depthhints.errors import MissingDataError
from hints_worker.actors import HintConfig, Summary, precompute_hints
from hints_worker.preflight import preflight

REPO = Path(__file__).resolve().parent.parent
CONFIG = HintConfig(height=64, width=192)


@pytest.fixture(scope="module")
def drive(tmp_path_factory) -> tuple[Path, list[SplitItem]]:
    root = tmp_path_factory.mktemp("preflight") / "kitti"
    splits = syn.generate_dataset(root, syn.DatasetConfig(frames_per_drive=6, width=256, height=96))
    return root, read_split_file(splits["train"])


def _hints(args: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "depthhints.cli", "hints", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", **env},
        timeout=300,
    )


@pytest.mark.slow
def test_a_split_of_other_data_stops_before_ray_with_one_message(drive, tmp_path):
    root, _ = drive
    out = tmp_path / "hints"
    done = _hints(["--data-path", str(root), "--split", "eigen_full/all", "--out", str(out)])
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "Ray" not in done.stderr
    message = done.stderr
    assert "46976 of the 46976 images the split needs are missing" in message
    assert "2011_09_26/2011_09_26_drive_" in message  # a few are shown
    assert "is --split the list for this data?" in message
    assert not out.exists()  # nothing written


def test_a_data_root_without_drives_is_named(drive, tmp_path):
    _, items = drive
    photos = tmp_path / "photos"  # e.g. --data-path one level too deep
    photos.mkdir()
    (photos / "0000000000.png").touch()
    layout = KittiRawLayout(photos, ".png")
    manifest = CONFIG.manifest("npy", photos)
    with pytest.raises(MissingDataError, match="is --data-path the KITTI raw root"):
        preflight(items, layout, tmp_path / "h", manifest)


def test_a_few_missing_images_are_left_to_the_run(drive, tmp_path):
    root, items = drive
    layout = KittiRawLayout(root)
    first = items[0]
    path = layout.image_path(first.folder, first.frame, "r")
    moved = tmp_path / "moved.png"
    path.rename(moved)
    try:
        plan = preflight(items, layout, tmp_path / "h", CONFIG.manifest("npy", root))
    finally:
        moved.rename(path)
    assert plan.missing == [path] and len(plan.todo) == len(items)


def test_a_store_of_other_settings_names_them(drive, tmp_path):
    root, items = drive
    store = tmp_path / "hints"
    NpyHintStore(store, CONFIG.manifest("npy", root))
    layout = KittiRawLayout(root)
    other = HintConfig(height=96, width=320, matchers="fast")
    with pytest.raises(StoreMismatchError) as error:
        preflight(items, layout, store, other.manifest("npy", root))
    message = str(error.value)
    assert "matchers parity vs fast" in message and "resolution 192x64 vs 320x96" in message
    with pytest.raises(StoreMismatchError, match="format npy vs parquet"):
        preflight(items, layout, store, CONFIG.manifest("parquet", root))


def test_a_store_without_manifest_is_refused_not_relabelled(drive, tmp_path):
    root, items = drive
    store = tmp_path / "hints"
    key = hint_key(items[0])
    published = store / key[0] / "image_02" / f"{key[1]:010d}.npy"
    published.parent.mkdir(parents=True)
    np.save(published, np.ones((1, 64, 192), np.float32))
    with pytest.raises(StoreMismatchError, match=r"holds files but no manifest\.json"):
        precompute_hints(items, root, store, CONFIG, progress=False)
    assert not (store / "manifest.json").exists()


def test_nothing_to_compute_does_not_start_ray(drive, tmp_path):
    root, items = drive
    store = NpyHintStore(tmp_path / "hints", CONFIG.manifest("npy", root))
    for item in items:
        store.write(hint_key(item), np.ones((64, 192), np.float32))
    assert not ray.is_initialized()
    summary = precompute_hints(items, root, store.root, CONFIG, progress=False)
    assert not ray.is_initialized()
    assert summary.written == 0 and summary.skipped == len({hint_key(i) for i in items})
    assert summary.actors == 0 and open_store(store.root).keys() == set(store.keys())


def test_throughput_counts_written_hints_only(tmp_path):
    summary = Summary(written=10, skipped=0, failures=[object()] * 90, store=tmp_path)
    summary.compute_seconds = 2.0
    assert summary.images_per_second == 5.0
