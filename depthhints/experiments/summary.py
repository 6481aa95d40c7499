"""Scores summarised over seeds, and the table files they are written to."""

from __future__ import annotations

import csv
import json
import math
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from scipy import stats

from depthhints.evaluate import METRICS
from depthhints.experiments.runner import Trial


def over_seeds(
    trials: Sequence[Trial], groups: Iterable[tuple[str, str]], row_key: str, label_key: str
) -> list[dict[str, Any]]:
    """One line per (row, score label) of ``groups`` that has trials: the number of seeds, and
    the mean and sample standard deviation over seeds of every metric."""
    table = []
    for row, label in groups:
        runs = [t.scores[label].metrics for t in trials if t.row == row and label in t.scores]
        if not runs:
            continue
        line: dict[str, Any] = {row_key: row, label_key: label, "seeds": len(runs)}
        for metric in METRICS:
            values = [run[metric] for run in runs]
            line[metric] = statistics.fmean(values)
            line[f"{metric}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        table.append(line)
    return table


def welch_interval(
    a: Sequence[float], b: Sequence[float], level: float = 0.95
) -> tuple[float, float]:
    """Interval for mean(a) − mean(b) (Welch's t; NaN with fewer than two values in either)."""
    if len(a) < 2 or len(b) < 2:
        return math.nan, math.nan
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    diff = statistics.fmean(a) - statistics.fmean(b)
    if va + vb == 0:
        return diff, diff
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(stats.t.ppf(0.5 + level / 2, dof)) * math.sqrt(va + vb)
    return diff - half, diff + half


def mean_std(line: dict[str, Any], metric: str) -> str:
    """``0.123 ± 0.004``: a metric's mean and standard deviation over seeds."""
    return f"{line[metric]:.3f} ± {line[f'{metric}_std']:.3f}"


def write_table(
    table: list[dict[str, Any]], markdown: str, out: Path, first: str
) -> dict[str, Path]:
    """``table.md`` (``markdown``), ``table.json`` and ``table.csv`` (column ``first`` first)
    in ``out``; {"table_md": path, ...}."""
    out.mkdir(parents=True, exist_ok=True)
    files = {f"table_{ext}": out / f"table.{ext}" for ext in ("md", "csv", "json")}
    files["table_md"].write_text(markdown)
    files["table_json"].write_text(json.dumps(table, indent=2) + "\n")
    columns = sorted({key for line in table for key in line}, key=lambda k: (k != first, k))
    with files["table_csv"].open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(table)
    return files
