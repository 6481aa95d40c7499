"""Our results beside the paper's: matching evaluation runs to published rows, and differences.

A run of ours matches a published result that was evaluated the same way (``use_depth_hints``,
``post_process``, ``eval_protocol``) and either has the same recipe (``backbone``,
``resolution``, ``pretrained``, ``modality``): an exact match; or, failing that, stands in for the
same row (its ``paper_row``, else its ``row``: a bundled row config), i.e. ours is that recipe
changed (a shrunken demo recipe, named after what it trains): the changed params are listed.
Runs that differ only in their seed are averaged.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from dashboards.runs import ResultRun
from depthhints.evaluate import HIGHER_IS_BETTER, METRICS
from depthhints.results import COMPARISON_PARAMS

RECIPE_KEYS = ("backbone", "resolution", "pretrained", "modality")
EVALUATION_KEYS = ("use_depth_hints", "post_process", "eval_protocol")
SAME_TOLERANCE = 5e-4  # published numbers have 3 decimals: closer than this is "the same"


@dataclass
class Match:
    """The published result a run of ours is compared with, and how the recipes differ."""

    paper: ResultRun
    differs: list[str] = field(default_factory=list)  # recipe params that are not the paper's

    @property
    def exact(self) -> bool:
        return not self.differs


def match_paper(ours: ResultRun, papers: Iterable[ResultRun]) -> Match | None:
    """The paper run to compare ``ours`` with (see the module docstring), or None."""
    evaluated_alike = [
        p for p in papers if all(p.params.get(k) == ours.params.get(k) for k in EVALUATION_KEYS)
    ]
    for paper in evaluated_alike:
        if all(paper.params.get(k) == ours.params.get(k) for k in RECIPE_KEYS):
            return Match(paper)
    row = ours.params.get("paper_row") or ours.params.get("row")
    for paper in evaluated_alike:
        if row and paper.params.get("row") == row:
            differs = [k for k in RECIPE_KEYS if paper.params.get(k) != ours.params.get(k)]
            return Match(paper, differs)
    return None


def verdict(metric: str, ours: float, paper: float) -> str:
    """``better``, ``worse`` or ``same`` (within the paper's rounding) for ``ours``."""
    difference = ours - paper
    if abs(difference) < SAME_TOLERANCE:
        return "same"
    better = difference > 0 if metric in HIGHER_IS_BETTER else difference < 0
    return "better" if better else "worse"


@dataclass
class ComparisonRow:
    """One line of the results table: our runs of one recipe and evaluation (over seeds)."""

    label: str
    params: dict[str, str]
    runs: list[ResultRun]
    match: Match | None

    @property
    def seeds(self) -> int:
        return len(self.runs)

    @property
    def dataset(self) -> str:
        return self.params.get("dataset", "kitti")

    @property
    def evaluation(self) -> str:
        pp = "_pp" if self.params.get("post_process") == "True" else ""
        return f"{self.params.get('eval_protocol', '?')}{pp}"

    def mean(self, metric: str) -> float | None:
        values = [run.metrics[metric] for run in self.runs if metric in run.metrics]
        return statistics.fmean(values) if values else None

    def std(self, metric: str) -> float | None:
        values = [run.metrics[metric] for run in self.runs if metric in run.metrics]
        return statistics.stdev(values) if len(values) > 1 else None

    def paper_value(self, metric: str) -> float | None:
        return self.match.paper.metrics.get(metric) if self.match else None

    def difference(self, metric: str) -> float | None:
        ours, paper = self.mean(metric), self.paper_value(metric)
        return None if ours is None or paper is None else ours - paper

    def verdict(self, metric: str) -> str | None:
        ours, paper = self.mean(metric), self.paper_value(metric)
        return None if ours is None or paper is None else verdict(metric, ours, paper)

    @property
    def caveats(self) -> list[str]:
        """Why the comparison is not like for like (empty when it is)."""
        notes = []
        if self.match and self.match.differs:
            notes.append("recipe differs: " + ", ".join(self.match.differs))
        if self.match and self.dataset != self.match.paper.params.get("dataset", "kitti"):
            notes.append(f"{self.dataset} data")
        return notes


def compare(ours: Sequence[ResultRun], papers: Sequence[ResultRun]) -> list[ComparisonRow]:
    """Group our runs by recipe and evaluation (seeds together) and match each group."""
    groups: dict[tuple[str, ...], list[ResultRun]] = defaultdict(list)
    for run in ours:
        key = (run.params.get("row", ""), *(run.params.get(k, "") for k in COMPARISON_PARAMS))
        groups[key].append(run)
    rows = []
    for (row_name, *_), runs in groups.items():
        first = runs[0]
        label = row_name or first.params.get("model_name") or first.name
        rows.append(ComparisonRow(label, dict(first.params), runs, match_paper(first, papers)))
    rows.sort(key=lambda r: (r.label, r.evaluation))
    return rows


def metrics_shown(rows: Sequence[ComparisonRow]) -> list[str]:
    """The test metrics any row has, in the standard order."""
    present = {m for row in rows for run in row.runs for m in run.metrics}
    return [m for m in METRICS if m in present]
