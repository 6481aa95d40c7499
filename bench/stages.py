"""The stages of a device benchmark: each records its result or its error, and the results
are saved after every stage, so that a run stopped by its time limit keeps what it measured."""

from __future__ import annotations

import json
import os
import platform
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch


class Run:
    """Stages that each record their result or their error, and ``<name>.json`` in ``out``
    written after each.

    An optional stage is skipped (and recorded as skipped) once ``budget`` seconds have passed.
    """

    def __init__(self, out: Path, budget: float, name: str = "gpu") -> None:
        self.out = out
        self.name = name
        self.budget = budget
        self.results: dict = {"environment": environment()}
        self.started = time.perf_counter()
        out.mkdir(parents=True, exist_ok=True)

    def stage(self, name: str, function: Callable[[], object], optional: bool = False) -> object:
        elapsed = time.perf_counter() - self.started
        if optional and elapsed > self.budget:
            value: object = {"skipped": f"time budget ({elapsed:.0f} s > {self.budget:.0f} s)"}
            self.results[name] = value
            self.save()
            return value
        print(f"== {name}", flush=True)
        start = time.perf_counter()
        try:
            value = function()
        except Exception as error:  # recorded; the other stages still run
            traceback.print_exc()
            value = {"error": f"{type(error).__name__}: {error}"}
        self.results[name] = value
        self.results.setdefault("seconds", {})[name] = round(time.perf_counter() - start, 1)
        self.save()
        print(json.dumps(value, default=str)[:2000], flush=True)
        return value

    def save(self) -> None:
        path = self.out / f"{self.name}.json"
        path.write_text(json.dumps(self.results, indent=2, default=str))


def environment() -> dict:
    cuda = torch.cuda.is_available()
    return {
        "date": time.strftime("%Y-%m-%d"),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu_cores": os.cpu_count(),
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "cuda": torch.version.cuda if cuda else None,
    }
