"""Driver processes for the fault tests: a ``depthhints`` command with a Ray cluster of its own,
killed with everything it started, and waits with a deadline."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

RUN_MARKER = "DEPTHHINTS_FAULT_TEST_RUN"  # env var inherited by every process a driver starts
DEADLINE_S = 120.0


def wait_for(condition: Callable[[], bool], what: str, timeout: float = DEADLINE_S) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)


def processes_marked(marker: str) -> list[tuple[int, str]]:
    """(pid, command) of every live process whose environment carries ``RUN_MARKER=marker``."""
    needle = f"{RUN_MARKER}={marker}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
            if needle in environ:
                command = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
                found.append((int(entry), command.decode(errors="replace").strip()[:120]))
        except OSError:  # gone meanwhile, or not ours
            continue
    return found


def own_ray_env(ray_tmp: str, **extra: str) -> dict[str, str]:
    """The test's environment for a driver that starts its own Ray cluster: a temp dir of its
    own keeps it from finding the test's cluster (short: socket paths stay under 107 chars)."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    return {**env, "RAY_TMPDIR": ray_tmp, **extra}


class Driver:
    """``python -m depthhints.cli <args>`` in a session of its own, logging to ``log``."""

    def __init__(self, args: list[str], log: Path, cwd: Path | None = None) -> None:
        self.marker = uuid.uuid4().hex
        self.ray_tmp = tempfile.mkdtemp(prefix="dh-ray-", dir="/tmp")
        self.log = log
        with open(log, "wb") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "depthhints.cli", *args],
                env=own_ray_env(self.ray_tmp, **{RUN_MARKER: self.marker}),
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=cwd,
            )

    def alive(self) -> bool:
        """True while running; fails the test if the driver already exited."""
        if self.process.poll() is not None:
            pytest.fail(f"the driver exited ({self.process.returncode}):\n{self.log.read_text()}")
        return True

    def kill(self) -> None:
        """SIGKILL the driver, its Ray head and everything else in its group; wait for Ray's
        workers (process groups of their own) to go with the raylet."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        assert self.process.returncode == -signal.SIGKILL
        wait_for(lambda: not processes_marked(self.marker), "the killed driver's processes to exit")

    def cleanup(self) -> None:
        for pid, _ in processes_marked(self.marker):  # only after a failure: leave nothing
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.ray_tmp, ignore_errors=True)


@contextmanager
def driver(args: list[str], log: Path, cwd: Path | None = None) -> Iterator[Driver]:
    """A ``Driver`` for the block, cleaned up after it whatever happens."""
    process = Driver(args, log, cwd)
    try:
        yield process
    finally:
        process.cleanup()
