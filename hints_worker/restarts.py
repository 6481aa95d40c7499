"""Restarts of hint workers, and why they happened.

Ray restarts a hint worker whose process died and retries its batch on its own, silently. Each
batch's reply therefore names the process that ran it (:class:`WorkerProcess`): a new process
under the same actor is a restart (:class:`RestartWatch`). Why the old process ended comes from
Ray's worker table (:func:`exit_cause`, through the public state API, which the Ray dashboard
serves): its exit type (``SYSTEM_ERROR`` for a crash or a kill, ``NODE_OUT_OF_MEMORY`` for
Ray's memory monitor, ...) and Ray's account of it. Without the dashboard the cause is unknown,
and said so. Two restarts of one actor between two of its replies count as one, with the first
process's cause.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import ray

from depthhints.errors import first_sentence

STATE_API_UNAVAILABLE = "cause unknown (Ray's state API unavailable)"
NO_RECORD = "cause unknown (Ray recorded no exit of the process)"
STATE_API_TIMEOUT_S = 10
"""How long one question to Ray's state API may take."""


@dataclass(frozen=True)
class WorkerProcess:
    """The process an actor runs in: the actor's id (kept across restarts), its node and pid."""

    actor: str
    node: str
    pid: int

    @classmethod
    def current(cls) -> WorkerProcess:
        """The calling actor's process."""
        context = ray.get_runtime_context()
        return cls(context.get_actor_id() or "", context.get_node_id(), os.getpid())


@dataclass(frozen=True)
class Restart:
    """One restart of a hint worker: the process that ended, its successor, and why."""

    node: str
    """The address of the node the ended process ran on."""
    pid: int
    new_pid: int
    cause: str
    """One line: Ray's exit type and the start of its account, or why it is unknown."""
    detail: str = ""
    """Ray's whole account of the exit (unknown: the state API's error, or empty)."""
    new_node: str = ""
    """The successor's node address, when it is not ``node``."""

    def describe(self) -> str:
        """The restart in words: hint worker on node X restarted (pid A → B): <cause>."""
        moved = f" on node {self.new_node}" if self.new_node else ""
        return (
            f"hint worker on node {self.node} restarted (pid {self.pid} → {self.new_pid}{moved}): "
            f"{self.cause}"
        )

    def line(self) -> str:
        """What the run prints when it sees the restart."""
        return f"{self.describe()}; its batch is retried"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class RestartWatch:
    """Each actor's current process; :meth:`seen` tells a restart from a batch's reply."""

    def __init__(self, processes: Iterable[WorkerProcess]) -> None:
        self.current = {process.actor: process for process in processes}
        self.restarts: list[Restart] = []

    def seen(self, process: WorkerProcess) -> Restart | None:
        """The restart that ``process`` (which ran a batch) reveals, if any; recorded."""
        before = self.current.get(process.actor)
        self.current[process.actor] = process
        if before is None or (before.node, before.pid) == (process.node, process.pid):
            return None
        detail, cause = exit_cause(before)
        addresses = {node["NodeID"]: node["NodeManagerAddress"] for node in ray.nodes()}
        node = addresses.get(before.node, before.node[:8])
        new_node = (
            addresses.get(process.node, process.node[:8]) if process.node != before.node else ""
        )
        restart = Restart(node, before.pid, process.pid, cause, detail, new_node)
        self.restarts.append(restart)
        return restart


def exit_cause(process: WorkerProcess, wait_s: float = 5.0) -> tuple[str, str]:
    """(Ray's account of why ``process`` ended, a one-line cause) from Ray's worker table; the
    account is the state API's error, or empty, when the cause is unknown. Waits up to
    ``wait_s`` for the exit to be recorded."""
    from ray.util.state import list_nodes, list_workers
    from ray.util.state.exception import RayStateApiException

    address = ray.get_runtime_context().gcs_address
    filters = [("node_id", "=", process.node), ("pid", "=", process.pid)]
    deadline = time.monotonic() + wait_s
    try:
        while True:
            workers = list_workers(
                address,
                filters,
                timeout=STATE_API_TIMEOUT_S,
                detail=True,
                raise_on_missing_output=False,
            )
            ended = [worker for worker in workers if worker.exit_type]
            if ended:
                last = max(ended, key=lambda worker: worker.end_time_ms or 0)  # a reused pid
                detail = last.exit_detail or ""
                brief = first_sentence(detail)
                return detail, f"{last.exit_type}: {brief}" if brief else last.exit_type
            # no exit recorded: was its node lost? (no such node: another cluster's server)
            nodes = list_nodes(
                address,
                [("node_id", "=", process.node)],
                timeout=STATE_API_TIMEOUT_S,
                detail=True,
                raise_on_missing_output=False,
            )
            if not nodes:
                return "", STATE_API_UNAVAILABLE
            if nodes[0].state == "DEAD":
                message = nodes[0].state_message or "no reason recorded"
                return message, f"its node died ({first_sentence(message)})"
            if time.monotonic() > deadline:
                return "", NO_RECORD
            time.sleep(0.25)
    except (RayStateApiException, OSError, ValueError) as error:  # no dashboard, no address
        return " ".join(f"{type(error).__name__}: {error}".split()), STATE_API_UNAVAILABLE
