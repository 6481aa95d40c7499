"""Hint precomputation on a Ray actor pool: completeness, resume, failures, a killed actor."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import ray

from depthhints.data import synthetic as syn
from depthhints.data.hint_store import hint_key, open_store, row_hint
from depthhints.data.kitti import KittiRawLayout, load_image, read_split_file
from depthhints.hints.fusion import fuse_pair, resize_for_hints
from depthhints.probes import CRASH_ONCE_ENV
from hints_worker.actors import (
    FAILURES_FILE,
    GpuNodeWorker,
    HintConfig,
    gpu_share,
    node_workers,
    plan_jobs,
    precompute_hints,
)

pytestmark = pytest.mark.slow

CONFIG = HintConfig(height=96, width=320)  # small, so that SGBM x 12 is quick


@pytest.fixture(scope="module")
def drive(tmp_path_factory):
    root = tmp_path_factory.mktemp("drive")
    config = syn.DatasetConfig(frames_per_drive=6, width=416, height=128, seed=5)
    splits = syn.generate_dataset(root, config)
    items = [item for part in ("train", "val", "test") for item in read_split_file(splits[part])]
    return root, items


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    arm = tmp_path_factory.mktemp("crash") / "arm"
    ray.init(
        num_cpus=2, include_dashboard=False, runtime_env={"env_vars": {CRASH_ONCE_ENV: str(arm)}}
    )
    yield arm
    ray.shutdown()


@pytest.mark.parametrize("store_format", ["npy", "parquet"])
def test_every_item_computed_once_and_resumed(drive, cluster, tmp_path, store_format):
    root, items = drive
    summary = precompute_hints(
        items, root, tmp_path, CONFIG, store_format, workers=2, progress=False
    )
    keys = {hint_key(item) for item in items}
    assert summary.ok and summary.written == len(keys) and summary.skipped == 0
    assert summary.startup_seconds > 0 and summary.compute_seconds > 0
    assert summary.images_per_second == len(keys) / summary.compute_seconds
    store = open_store(tmp_path)
    assert store.keys() == keys

    # Same values as computing the pair directly, in one process.
    folder, frame, _ = sorted(keys)[0]
    layout = KittiRawLayout(root)
    pair = [
        resize_for_hints(
            load_image(layout.image_path(folder, frame, s)), CONFIG.width, CONFIG.height
        )
        for s in ("l", "r")
    ]
    direct = fuse_pair(*pair)
    for side in ("l", "r"):
        if (folder, frame, side) in keys:
            np.testing.assert_allclose(
                store.read((folder, frame, side)), direct[side][0], rtol=1e-3
            )

    again = precompute_hints(items, root, tmp_path, CONFIG, store_format, workers=2, progress=False)
    assert again.written == 0 and again.skipped == len(keys)

    if store_format == "parquet":  # training streams the shards with Ray Data
        rows = ray.data.read_parquet(str(store.shard_dir)).take_all()
        streamed = {(f"{r['date']}/{r['drive']}", r["frame"], r["side"]): r for r in rows}
        assert streamed.keys() == keys
        row = streamed[(folder, frame, "l")]
        np.testing.assert_array_equal(row_hint(row), store.read((folder, frame, "l")))


def test_bad_images_are_reported_and_the_rest_completes(drive, cluster, tmp_path):
    root, items = drive
    broken = tmp_path / "data"
    shutil.copytree(root, broken)
    layout = KittiRawLayout(broken)
    truncated = layout.image_path(items[0].folder, items[0].frame, "r")
    truncated.write_bytes(truncated.read_bytes()[:200])
    missing_item = next(i for i in items if i.frame != items[0].frame)
    layout.image_path(missing_item.folder, missing_item.frame, "l").unlink()

    store_root = tmp_path / "hints"
    summary = precompute_hints(items, broken, store_root, CONFIG, workers=2, progress=False)
    failed = {failure.key for failure in summary.failures}
    bad_frames = {items[0].frame, missing_item.frame}
    assert failed == {hint_key(i) for i in items if i.frame in bad_frames}
    assert open_store(store_root).keys() == {hint_key(i) for i in items} - failed
    records = json.loads((store_root / FAILURES_FILE).read_text())
    reasons = " ".join(record["reason"] for record in records)
    assert str(truncated) in reasons and "not found" in reasons


def test_a_killed_actor_is_restarted_and_nothing_is_lost_or_duplicated(drive, cluster, tmp_path):
    root, items = drive
    crash_frame = sorted({item.frame for item in items})[2]
    cluster.write_text(str(crash_frame))  # arm: the first worker to reach this frame dies
    summary = precompute_hints(
        items, root, tmp_path, CONFIG, "parquet", workers=2, frames_per_task=1, progress=False
    )
    assert not cluster.exists(), "the crash hook did not fire"
    keys = {hint_key(item) for item in items}
    assert summary.ok and summary.written == len(keys)
    store = open_store(tmp_path)
    rows = [key for key, _ in store.iter_rows()]
    assert sorted(rows) == sorted(keys)  # every item exactly once
    assert not list(tmp_path.rglob("*.tmp"))


def _node(cpus: float, gpus: float = 0, alive: bool = True) -> dict:
    resources = {"CPU": cpus, **({"GPU": gpus} if gpus else {})}
    return {"Alive": alive, "Resources": resources}


def test_gpu_share_only_when_every_node_can_hold_its_actors():
    assert gpu_share([_node(16)]) == 0
    assert gpu_share([_node(16, 1)]) == 1 / 16
    assert gpu_share([_node(16, 2), _node(8, 2)]) == 2 / 16  # the scarcer node sets the share
    assert gpu_share([_node(2, 4)]) == 1  # never more than one GPU per actor
    assert gpu_share([_node(16, 1), _node(16)]) == 0  # a CPU-only node could hold no actor
    assert gpu_share([_node(16, 1), _node(16, alive=False), _node(0, 8)]) == 1 / 16


def test_one_gpu_node_worker_per_gpu_with_its_share_of_cores():
    assert node_workers([_node(16)]) == (0, 0)  # CPU nodes: one-core actors, as before
    assert node_workers([_node(16, 1)]) == (1, 16)
    assert node_workers([_node(16, 2), _node(16, 2)]) == (4, 8)
    assert node_workers([_node(16, 1), _node(16)]) == (0, 0)


def test_a_gpu_node_worker_stores_what_one_core_actors_store(drive, cluster, tmp_path):
    """Run here on the CPU (no GPU): its matcher processes and batched fuser, driven by Ray."""
    root, items = drive
    reference = precompute_hints(items, root, tmp_path / "ref", CONFIG, workers=2, progress=False)
    assert reference.ok
    layout = KittiRawLayout(root)
    manifest = CONFIG.manifest("npy", root)
    worker = GpuNodeWorker.options(num_cpus=2).remote(
        str(root), layout.image_ext, str(tmp_path / "node"), manifest, CONFIG, 2
    )
    jobs = plan_jobs(items, set())
    results = ray.get(worker.process.remote(jobs))
    ray.kill(worker)
    assert not [f for r in results for f in r.failures]
    expected, got = open_store(tmp_path / "ref"), open_store(tmp_path / "node")
    assert got.keys() == expected.keys() == {k for r in results for k in r.written}
    for key in sorted(expected.keys()):
        np.testing.assert_array_equal(got.read(key), expected.read(key))
