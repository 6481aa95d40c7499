"""A node of a two-node Ray cluster stopped mid-run: the hint actor it held is restarted on the
surviving node, its batch retried, and the store ends equal to an uninterrupted run's."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from depthhints.data import synthetic as syn
from depthhints.data.hint_store import MANIFEST, open_store
from depthhints.data.kitti import KittiRawLayout, SplitItem, write_split_file
from tests.faults.drivers import wait_for
from tests.local_cluster import REPO, LocalCluster, cluster_env

pytestmark = pytest.mark.slow

RENDERED, FRAMES = 6, 24  # as test_hint_faults: copies with rolled rows, at KITTI-like width
DRIVER = """
import json, sys
from pathlib import Path
import ray
from depthhints.data.kitti import read_split_file
from hints_worker.actors import HintConfig, precompute_hints

address, root, split, store = sys.argv[1:5]
ray.init(address=address, log_to_driver=False)
summary = precompute_hints(
    read_split_file(split), root, store, HintConfig(height=128, width=416), workers=2,
    frames_per_task=1, progress=False,
)
print("RESULT " + json.dumps({
    "written": summary.written, "failed": len(summary.failures), "nodes": summary.nodes,
}))
"""


@pytest.fixture(scope="module")
def drive(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("drive")
    config = syn.DatasetConfig(frames_per_drive=RENDERED, width=416, height=128, seed=3)
    syn.generate_dataset(root, config)
    layout, folder = KittiRawLayout(root), config.drives()[0].folder
    for frame in range(RENDERED, FRAMES):
        for side in ("l", "r"):
            source = layout.image_path(folder, frame % RENDERED, side)
            image = cv2.imread(str(source), cv2.IMREAD_UNCHANGED)
            shift = 3 * (frame // RENDERED)
            cv2.imwrite(str(layout.image_path(folder, frame, side)), np.roll(image, shift, 0))
    split = root / "all_files.txt"
    write_split_file(split, [SplitItem(folder, f, s) for f in range(FRAMES) for s in "lr"])
    return root, split


@pytest.fixture
def cluster(tmp_path) -> Iterator[LocalCluster]:
    """Head with a spare CPU (where a lost node's actor can go), worker node with one CPU; the
    GCS declares a silent node dead after ~2 s instead of ~30 s."""
    env = cluster_env(RAY_health_check_period_ms="500", RAY_health_check_failure_threshold="4")
    cluster = LocalCluster(tmp_path, env)
    try:
        cluster.start(cpus=2)
        cluster.add_node(cpus=1)
        yield cluster
    finally:
        cluster.shutdown()


def _run(cluster: LocalCluster, drive: tuple[Path, Path], store: Path) -> subprocess.Popen:
    root, split = drive
    return subprocess.Popen(
        [sys.executable, "-c", DRIVER, cluster.address, str(root), str(split), str(store)],
        cwd=REPO,
        env=cluster.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _result(process: subprocess.Popen) -> dict:
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output[-3000:]
    return json.loads(next(x for x in output.splitlines() if x.startswith("RESULT "))[7:])


def _stored(store: Path) -> int:
    return len(open_store(store).keys()) if (store / MANIFEST).is_file() else 0


def test_a_stopped_node_costs_nothing_but_time(cluster, drive, tmp_path):
    reference = _result(_run(cluster, drive, tmp_path / "reference"))
    assert reference["written"] == 2 * FRAMES and len(reference["nodes"]) == 2

    store = tmp_path / "hints"
    process = _run(cluster, drive, store)
    wait_for(lambda: _stored(store) >= 4, "the first hints", timeout=120)
    cluster.stop_node(1, signal.SIGKILL)  # the worker node's raylet and everything it ran
    at_stop = _stored(store)
    result = _result(process)
    assert at_stop < 2 * FRAMES, "the node was stopped after the run"
    assert (result["written"], result["failed"]) == (2 * FRAMES, 0)
    assert len(result["nodes"]) == 2  # the run started on both nodes

    expected, got = open_store(tmp_path / "reference"), open_store(store)
    assert got.keys() == expected.keys()
    for key in sorted(expected.keys()):
        np.testing.assert_array_equal(got.read(key), expected.read(key))
    assert not list(store.rglob("*.tmp"))
    assert cluster.alive_nodes() == 1
