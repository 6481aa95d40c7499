"""Faults and probes that tests and benchmarks inject into the real components: the one seam.

Nothing here runs unless a test or benchmark asks for it.

Hint precomputation (:func:`crash_at_frame`, called by every hint worker before a frame): if the
file named by ``$DEPTHHINTS_TEST_CRASH_ONCE`` holds the frame's number, the first worker to reach
it claims the file and dies (as if killed).

Training, by a JSON-able spec in the Ray Train loop config (:func:`from_spec`):
``from_spec({"crash_at_step": 2, "marker": path})``: rank 0 raises once at that log event;
``{"kill_at_step": 2, "marker": path}``: rank 0's process kills itself (SIGKILL) there, once;
``{"parameter_log": folder}``: every rank appends the sum and norm of its parameters after each
step to ``rank<N>.jsonl``; ``{"step_times": folder}``: every rank appends the wall-clock time at
the end of each step to ``rank<N>_times.jsonl``.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

LogHook = Callable[[str, dict, int], None]  # depthhints.train.reporting.LogHook
StepHook = Callable[[int, torch.nn.Module], None]  # depthhints.train.loop.StepHook

CRASH_ONCE_ENV = "DEPTHHINTS_TEST_CRASH_ONCE"


def crash_at_frame(frame: int) -> None:
    """Die once at ``frame`` if ``$DEPTHHINTS_TEST_CRASH_ONCE`` names a file holding it."""
    arm = os.environ.get(CRASH_ONCE_ENV)
    if arm and os.path.exists(arm) and Path(arm).read_text().strip() == str(frame):
        try:
            os.rename(arm, arm + ".fired")
        except FileNotFoundError:
            return  # another worker claimed it
        os._exit(1)


def from_spec(spec: dict[str, Any], rank: int) -> tuple[list[LogHook], list[StepHook]]:
    """The (log hooks, step hooks) a spec asks for."""
    hooks: list[LogHook] = []
    step_hooks: list[StepHook] = []
    if "crash_at_step" in spec:
        hooks.append(crash_once(spec["crash_at_step"], Path(spec["marker"])))
    if "kill_at_step" in spec:
        hooks.append(crash_once(spec["kill_at_step"], Path(spec["marker"]), kill=True))
    if "parameter_log" in spec:
        step_hooks.append(log_parameters(Path(spec["parameter_log"]), rank))
    if "step_times" in spec:
        step_hooks.append(log_step_times(Path(spec["step_times"]), rank))
    return hooks, step_hooks


def crash_once(step: int, marker: Path, kill: bool = False) -> LogHook:
    """Raise (``kill``: SIGKILL this process) once at ``step`` of rank 0's log events, leaving
    ``marker`` behind."""

    def hook(phase: str, metrics: dict, at: int) -> None:
        if at == step and not marker.exists():
            marker.write_text("killed" if kill else "crashed")
            if kill:
                os.kill(os.getpid(), signal.SIGKILL)
            raise RuntimeError(f"injected worker failure at step {step}")

    return hook


def log_parameters(folder: Path, rank: int) -> StepHook:
    """Append (step, sum and squared L2 norm of every parameter) to ``rank<N>.jsonl``."""
    folder.mkdir(parents=True, exist_ok=True)

    def hook(step: int, model: torch.nn.Module) -> None:
        with torch.no_grad():
            total = sum(float(p.double().sum()) for p in model.parameters())
            norm = sum(float(p.double().pow(2).sum()) for p in model.parameters())
        with (folder / f"rank{rank}.jsonl").open("a") as handle:
            handle.write(json.dumps({"step": step, "sum": total, "norm": norm}) + "\n")

    return hook


def log_step_times(folder: Path, rank: int) -> StepHook:
    """Append (step, ``time.time()``) at the end of every step to ``rank<N>_times.jsonl``."""
    folder.mkdir(parents=True, exist_ok=True)

    def hook(step: int, model: torch.nn.Module) -> None:
        with (folder / f"rank{rank}_times.jsonl").open("a") as handle:
            handle.write(json.dumps({"step": step, "time": time.time()}) + "\n")

    return hook
