"""A real multi-node Ray cluster on this machine: each node a ``ray start --block`` process group
of its own (head first), so a test can stop one node and the cluster loses it for real."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RAY = str(Path(sys.executable).parent / "ray")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cluster_env(**extra: str) -> dict[str, str]:
    """The environment of the nodes and of drivers joining them."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return {**env, "RAY_AUTH_MODE": "token", "PYTHONPATH": str(REPO), **extra}


class LocalCluster:
    """Start with ``start()``, add nodes with ``add_node()``, end with ``shutdown()``."""

    def __init__(self, logs: Path, env: dict[str, str] | None = None) -> None:
        self.logs = logs
        self.env = env or cluster_env()
        self.port, self.dashboard_port = free_port(), free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.dashboard = f"http://127.0.0.1:{self.dashboard_port}"
        self.nodes: list[subprocess.Popen] = []

    def _start(self, args: list[str], cpus: int, resources: dict | None, log: str) -> None:
        command = [RAY, "start", "--block", "--num-cpus", str(cpus), *args]
        if resources:
            command += ["--resources", json.dumps(resources)]
        self.nodes.append(
            subprocess.Popen(
                command,
                env=self.env,
                stdout=(self.logs / log).open("w"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        self.wait_for_nodes(len(self.nodes))

    def start(self, cpus: int = 1, resources: dict | None = None) -> LocalCluster:
        head = [
            "--head",
            f"--port={self.port}",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={self.dashboard_port}",
        ]
        self._start(head, cpus, resources, "head.log")
        return self

    def add_node(self, cpus: int = 1, resources: dict | None = None) -> None:
        self._start([f"--address={self.address}"], cpus, resources, f"node{len(self.nodes)}.log")

    def alive_nodes(self) -> int:
        probe = (
            f"import ray; ray.init(address='{self.address}'); "
            "print(len([n for n in ray.nodes() if n['Alive']]))"
        )
        done = subprocess.run(
            [sys.executable, "-c", probe], env=self.env, capture_output=True, text=True, timeout=60
        )
        return int(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else -1

    def wait_for_nodes(self, count: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.alive_nodes() == count:
                return
            time.sleep(2)
        raise AssertionError(f"the cluster at {self.address} did not reach {count} nodes")

    def stop_node(self, index: int, sig: int = signal.SIGTERM) -> None:
        """Stop node ``index`` (its raylet and everything in its group)."""
        node = self.nodes[index]
        if node.poll() is None:
            os.killpg(node.pid, sig)
            try:
                node.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(node.pid, signal.SIGKILL)
                node.wait(10)

    def shutdown(self) -> None:
        for index in reversed(range(len(self.nodes))):
            self.stop_node(index)
        # `ray stop` would also forget the cluster; left behind, a later ray.init() joins it
        current = Path("/tmp/ray/ray_current_cluster")
        if current.is_file() and current.read_text().strip().endswith(f":{self.port}"):
            current.unlink()
        leftovers = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        assert self.address not in leftovers  # no raylet or GCS of this cluster is left
