"""A real two-node Ray cluster on this machine (two raylets started with ``ray start``): the hint
actor pool and a 2-worker Train run spread over both nodes, then ``reproduce_table.py`` submitted
to it as a Ray job. The test stops what it started (each node runs ``ray start --block`` in its
own process group, which is terminated at the end)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.local_cluster import RAY, REPO, LocalCluster

LABELS = {"hints": 1, "train": 1}  # as platform/cluster.yaml's worker nodes


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[LocalCluster]:
    cluster = LocalCluster(tmp_path_factory.mktemp("cluster"))
    try:
        cluster.start(resources=LABELS)
        cluster.add_node(resources=LABELS)
        yield cluster
    finally:
        cluster.shutdown()


DRIVER = """
import json, sys
from pathlib import Path
import ray
from ray.util.state import list_actors
from depthhints.train.reporting import TrackingOptions
from depthhints.train.trainer import RayOptions, fit_distributed, init_ray
from hints_worker.actors import HintConfig, precompute_hints
from depthhints.data.kitti import read_split_file
from tests.helpers import tiny_config

address, root, split, out = sys.argv[1:5]
init_ray(address)
items = read_split_file(Path(split) / "train_files.txt")
summary = precompute_hints(
    items, root, Path(out) / "hints", HintConfig(height=128, width=416), workers=2, progress=False
)
tree = {"root": Path(root), "split": Path(split)}
config = tiny_config(tree, Path(out), num_epochs=1, depth_hint_path=str(Path(out) / "hints"),
                     use_depth_hints=True)
fit_distributed(config, RayOptions(num_workers=2, max_failures=0),
                tracking=TrackingOptions(enabled=False))
workers = [a for a in list_actors(detail=True, limit=1000) if "TrainWorker" in a.class_name]
print("RESULT " + json.dumps({
    "written": summary.written,
    "hint_nodes": summary.nodes,
    "train_nodes": sorted({a.node_id for a in workers}),
    "nodes": sorted(n["NodeID"] for n in ray.nodes() if n["Alive"]),
}))
"""


@pytest.mark.slow
def test_hint_actors_and_training_spread_over_both_nodes(cluster, tree, tmp_path):
    paths = (tree["root"], tree["split"], tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, cluster.address, *map(str, paths)],
        cwd=REPO,
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))
    assert len(result["nodes"]) == 2
    assert result["written"] == 4 and result["hint_nodes"] == result["nodes"]
    assert result["train_nodes"] == result["nodes"]  # one DDP rank on each raylet


@pytest.mark.slow
def test_reproduce_table_runs_as_a_job_on_the_cluster(cluster, tmp_path):
    out = tmp_path / "job"
    submit = [RAY, "job", "submit", "--address", cluster.dashboard, "--", sys.executable]
    script = str(REPO / "experiments" / "reproduce_table.py")
    done = subprocess.run(
        [*submit, script, "--preset", "smoke", "--address", "auto", "--out", str(out)],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "succeeded" in done.stdout.lower()
    table = json.loads((out / "table" / "table.json").read_text())
    rows = {line["row"] for line in table}
    assert rows == {"S_R18_192x64_nopt_hints", "MS_R18_192x64_nopt_hints"}
