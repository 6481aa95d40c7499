"""``platform/cluster.local.yaml`` launched by Ray's own cluster launcher on three SSH hosts made on
this machine (:mod:`tests.cluster.hosts`): ``ray up``, ``ray exec``, ``ray submit`` of the
paper's table (smoke preset), ``ray down``, and a second ``ray up`` that finds the hosts set up.

Run by ``make test-cluster`` (root, Debian's openssh-server and rsync); ``make test`` leaves this
folder out. Each step's time is printed and written to ``<workspace>/timings.json``.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.cluster.hosts import USER, Hosts, missing_tools, prepare_wheelhouse
from tests.cluster.variant import changed_keys, cluster_variant
from tests.local_cluster import RAY, REPO

SOURCE = REPO / "platform" / "cluster.local.yaml"
WORKERS = 2
TRAIN_WORKERS = 3  # more than a worker host's 2 cores: each run's DDP spans both hosts
SHARED = Path("/mnt/shared")  # on the hosts; here: hosts.shared
TABLE = SHARED / "outputs" / "table_smoke"
LOCK = Path("/run/lock/depthhints-cluster-test.lock")

# Run on the head by `ray exec`: the nodes, where the job's actors ran, what MLflow holds.
NODES = """
import json, ray
ray.init(address="auto", logging_level="ERROR")
print("RESULT " + json.dumps(
    {n["NodeManagerAddress"]: n["Resources"] for n in ray.nodes() if n["Alive"]}
))
"""
PLACEMENT = """
import json
from ray.util.state import list_actors, list_nodes
nodes = {n.node_id: n.node_ip for n in list_nodes(detail=True)}
actors = list_actors(detail=True, limit=10000)
print("RESULT " + json.dumps({
    kind: sorted({nodes[a.node_id] for a in actors if a.class_name.endswith(kind)})
    for kind in ("HintWorker", "RayTrainWorker")
}))
"""
MLFLOW = """
import json, os
import mlflow
runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
print("RESULT " + json.dumps({
    "uri": os.environ["MLFLOW_TRACKING_URI"],
    "runs": sorted(run.data.tags.get("mlflow.runName", "") for run in runs),
    "statuses": sorted({run.info.status for run in runs}),
}))
"""


class Launcher:
    """Ray's launcher CLI against the test variant, run from the repository root as a user
    would; each call's output goes to ``<workspace>/logs/<step>.log``."""

    def __init__(self, hosts: Hosts, config: Path) -> None:
        self.hosts = hosts
        self.config = config
        self.logs = hosts.workspace / "logs"
        self.logs.mkdir()
        self.timings: dict[str, float] = {}
        self.env = {
            k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS")
        }
        self.env["RAY_USAGE_STATS_ENABLED"] = "0"  # passed on to the hosts: nothing to report

    def __call__(self, step: str, *args: str, timeout: float = 600) -> str:
        start = time.monotonic()
        done = subprocess.run(
            self.hosts.command(RAY, *args),
            cwd=REPO,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
        self.timings[step] = round(time.monotonic() - start, 1)
        (self.logs / f"{step}.log").write_text(done.stdout)
        print(f"{step}: {self.timings[step]} s", flush=True)
        assert done.returncode == 0, f"{step} failed:\n{done.stdout[-4000:]}"
        return done.stdout

    def on_head(self, step: str, script: str) -> dict:
        """Runs a Python ``script`` on the head with ``ray exec``; its ``RESULT`` line."""
        path = self.hosts.shared / f"query_{step}.py"  # not mlflow.py: it would hide mlflow
        path.write_text(script)
        output = self(step, "exec", str(self.config), f"python {SHARED / path.name}")
        line = next(x for x in output.splitlines() if x.startswith("RESULT "))
        return json.loads(line.removeprefix("RESULT "))

    def wait_for_nodes(self, addresses: list[str], timeout_s: float = 600) -> dict:
        """Each alive node's resources, once the nodes at ``addresses`` are all up."""
        deadline = time.monotonic() + timeout_s
        while True:
            nodes = self.on_head("nodes", NODES)
            if sorted(nodes) == sorted(addresses):
                return nodes
            assert time.monotonic() < deadline, f"nodes up: {sorted(nodes)}"
            time.sleep(5)


@pytest.fixture(scope="module")
def hosts(tmp_path_factory) -> Iterator[Hosts]:
    missing = missing_tools()
    if missing:
        pytest.fail(f"this machine lacks {', '.join(missing)}: run `make test-cluster`")
    lock = LOCK.open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the hosts' user is this machine's
    except BlockingIOError:
        pytest.fail(f"another run of tests/cluster holds {LOCK}: wait for it to end")
    workspace = tmp_path_factory.mktemp("lab")
    wheelhouse = prepare_wheelhouse(REPO / "requirements.txt", workspace / "wheelhouse.log")
    hosts = Hosts(workspace, workers=WORKERS)
    try:
        hosts.start(wheelhouse)
        yield hosts
    finally:
        hosts.stop()
    assert hosts.wait_until_idle() == [], "processes of the hosts outlived their sshd"


def test_the_lab_cluster_goes_up_runs_the_table_and_comes_down(hosts: Hosts) -> None:
    variant = cluster_variant(
        SOURCE,
        head=hosts.head.address,
        workers=[host.address for host in hosts.workers],
        user=USER,
        key=hosts.key,
        token=hosts.token,
    )
    assert changed_keys(yaml.safe_load(SOURCE.read_text()), variant) == {
        "provider.head_ip",
        "provider.worker_ips",
        "auth.ssh_user",
        "auth.ssh_private_key",
        "file_mounts.~/.ray/auth_token",
    }
    config = hosts.workspace / "cluster.yaml"
    config.write_text(yaml.safe_dump(variant, sort_keys=False))
    ray = Launcher(hosts, config)

    ray("up (first)", "up", "-y", str(config), timeout=1200)
    nodes = ray.wait_for_nodes([host.address for host in hosts.hosts])
    # the start commands' roles: the head runs nothing that asks for a CPU or a GPU, each
    # worker without a GPU advertises one unit of `hints` per core
    assert "CPU" not in nodes[hosts.head.address] and "GPU" not in nodes[hosts.head.address]
    for worker in hosts.workers:
        assert nodes[worker.address]["hints"] == nodes[worker.address]["CPU"] == os.cpu_count()
    # every Ray process of the hosts listens inside their namespaces, none on this machine's
    assert hosts.listening() == []
    assert any(":6379 " in line for line in hosts.listening(hosts.head.netns))

    ray(
        "submit",
        "submit",
        str(config),
        "experiments/reproduce_table.py",
        "--",
        "--preset",
        "smoke",
        "--max-concurrent",
        "1",
        "--workers-per-trial",
        str(TRAIN_WORKERS),
        "--address",
        "auto",
        "--out",
        str(TABLE),
        timeout=1500,
    )
    table_file = hosts.shared / TABLE.relative_to(SHARED) / "table" / "table.json"
    table = json.loads(table_file.read_text())
    assert {row["row"] for row in table} == {"S_R18_192x64_nopt_hints", "MS_R18_192x64_nopt_hints"}
    placement = ray.on_head("placement", PLACEMENT)
    workers = sorted(host.address for host in hosts.workers)
    assert placement["HintWorker"] == workers  # hint actors on both workers, none on the head
    assert placement["RayTrainWorker"] == workers
    tracked = ray.on_head("mlflow", MLFLOW)
    assert tracked["uri"] == f"http://{hosts.head.address}:5000"
    assert tracked["statuses"] == ["FINISHED"] and len(tracked["runs"]) >= 3

    ray("down (first)", "down", "-y", str(config))
    assert hosts.wait_until_idle() == [], "ray down left processes running"

    venv = hosts.home / "depth-hints" / ".venv" / "bin"

    def installed() -> tuple[int, float]:
        return (venv / "python").stat().st_ino, (venv / "ray").stat().st_mtime

    before = installed()
    ray("up (again)", "up", "-y", str(config), timeout=1200)
    assert installed() == before  # the venv found in place, nothing reinstalled
    ray.wait_for_nodes([host.address for host in hosts.hosts])
    ray("down (again)", "down", "-y", str(config))
    assert hosts.wait_until_idle() == [], "ray down left processes running"
    (hosts.workspace / "timings.json").write_text(json.dumps(ray.timings, indent=1))
