"""Hints on one node without Ray: matcher processes and a batched fuser give the hints that one
process computing frame by frame gives, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from depthhints.data import synthetic as syn
from depthhints.data.hint_store import open_store
from depthhints.data.kitti import KittiRawLayout, read_split_file
from depthhints.hints.compute import HintConfig, compute_frame, plan_jobs
from depthhints.hints.sgm import make_matchers
from hints_worker.node import NodeHints

pytestmark = pytest.mark.slow

CONFIG = HintConfig(height=64, width=192)


@pytest.fixture(scope="module")
def drive(tmp_path_factory):
    root = tmp_path_factory.mktemp("node") / "kitti"
    splits = syn.generate_dataset(root, syn.DatasetConfig(frames_per_drive=6, width=256, height=96))
    return KittiRawLayout(root), read_split_file(splits["train"])


@pytest.mark.parametrize(
    ("store_format", "batch", "batched"),
    [("npy", 3, True), ("parquet", 8, True), ("npy", 8, False)],
)
def test_node_hints_equal_frame_by_frame(drive, tmp_path, store_format, batch, batched):
    """Batched (the GPU's way, here on the CPU) or fused in each process: the same hints."""
    layout, items = drive
    jobs = plan_jobs(items, set())
    manifest = CONFIG.manifest(store_format, layout.root)
    reference = open_store(tmp_path / "reference", manifest)
    matchers = make_matchers(CONFIG.matchers)
    for job in jobs:
        assert not compute_frame(job, layout, CONFIG, matchers, reference).failures
    reference.flush()
    store = open_store(tmp_path / "node", manifest)
    with NodeHints(layout, CONFIG, 2, "cpu", batch, batched) as node:
        results = list(node.run(jobs, store))
    assert sorted((j.folder, j.frame) for j in jobs) == sorted(
        {(r.written[0][0], r.written[0][1]) for r in results}
    )
    assert not [f for r in results for f in r.failures]
    stored = open_store(tmp_path / "node")
    assert stored.keys() == reference.keys()
    for key in sorted(reference.keys()):
        np.testing.assert_array_equal(stored.read(key), reference.read(key))


def test_a_broken_frame_is_recorded_and_the_rest_stored(drive, tmp_path):
    layout, items = drive
    jobs = plan_jobs(items, set())
    broken = layout.image_path(jobs[0].folder, jobs[0].frame, "r")
    original = broken.read_bytes()
    broken.write_bytes(b"not an image")
    try:
        store = open_store(tmp_path / "node", CONFIG.manifest("npy", layout.root))
        with NodeHints(layout, CONFIG, processes=2, device="cpu") as node:
            results = list(node.run(jobs, store))
    finally:
        broken.write_bytes(original)
    failures = [f for r in results for f in r.failures]
    assert {f.key for f in failures} == {(jobs[0].folder, jobs[0].frame, s) for s in "lr"}
    assert str(broken) in failures[0].reason
    written = {k for r in results for k in r.written}
    assert len(written) == 2 * (len(jobs) - 1) and written == store.keys()
