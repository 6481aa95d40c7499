"""One way to run an experiment: data and rows, a rows × seeds sweep, scores, summary, MLflow.

An :class:`Experiment` states what is particular to it: how its data and hints are made and
what its rows train (:meth:`Experiment.prepare`), how a trained model is scored
(:meth:`Experiment.score`) and how the results are written (:meth:`Experiment.write`).
:func:`run_experiment` does the rest the same way for every experiment: every row × seed is a
Ray Tune trial (a Ray Train run and an MLflow child run of the sweep's run), every finished
trial's last weights are scored and logged as evaluation runs nested under its training run,
and the written results go to the sweep's run.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import ray

from depthhints.config import TrainConfig
from depthhints.data.kitti import SplitItem
from depthhints.errors import ConfigError
from depthhints.evaluate import METRICS
from depthhints.results import log_evaluation, logged_evaluations
from depthhints.tracking import Tracker
from depthhints.train.reporting import TrackingOptions, recorded_run_id
from depthhints.train.trainer import RAY_LOG, init_ray
from depthhints.training_run import sweep_until_stopped
from depthhints.tune import SweepOptions, apply_choices, reopen_sweep_run, sweep_run_file

if TYPE_CHECKING:
    from depthhints.hints.compute import HintConfig


@dataclass(frozen=True)
class Preset:
    """A named size of an experiment: its rows, data, seeds and training budget."""

    rows: tuple[str, ...]  # the table's rows, or the ablation's variants
    data: str  # "kitti", or the name of a synthetic drive or benchmark the experiment makes
    seeds: int = 1
    overrides: Mapping[str, Any] = field(default_factory=dict)  # options on top of every row
    baselines: bool = False  # also train each row without hints
    hint_size: tuple[int, int] | None = None  # (height, width) of hint stores made for it
    shown_frames: int = 3  # test frames shown in figures


@dataclass(frozen=True)
class Score:
    """One evaluation of a trained model: the protocol it followed and its metrics."""

    protocol: str
    metrics: Mapping[str, float]
    post_process: bool = False
    params: Mapping[str, Any] = field(default_factory=dict)  # more MLflow params (the region)


@dataclass
class Trial:
    """A trained row × seed, scored."""

    row: str
    seed: int
    config: TrainConfig
    scores: dict[str, Score]  # by label: "eigen_pp", "all", ...
    artifacts: dict[str, Path] = field(default_factory=dict)  # MLflow folder → file
    curve: list[dict[str, float]] = field(default_factory=list)  # validation after each epoch
    shown: np.ndarray | None = None  # predictions on the frames shown in figures


@dataclass(frozen=True)
class Outcome:
    """What an experiment produced: its summary table, the files written, the failed trials
    (their errors are in their Tune trial folders)."""

    table: list[dict[str, Any]]
    files: dict[str, Path]
    failed: list[str]


class Experiment(ABC):
    """What an experiment does beyond the shared sweep, scoring and logging."""

    kind: ClassVar[str]  # names the sweep (``<kind>_<preset>``) and its models
    row_key: ClassVar[str] = "row"  # the summary's column (and MLflow param) naming a row
    label_key: ClassVar[str] = "evaluation"  # the summary's column naming a score's label
    recipe: ClassVar[Mapping[str, Any]] = {}  # options every row shares, below the preset's
    results_folder: ClassVar[str] = "results"  # under ``out`` and on the sweep's MLflow run

    def __init__(
        self, preset_name: str, preset: Preset, out: Path, overrides: Mapping[str, Any] = ()
    ) -> None:
        overrides = dict(overrides)
        if overrides:  # refused before anything is made; typed as the config types them
            merged = {**self.recipe, **preset.overrides, **overrides}
            checked = TrainConfig.from_dict(merged, "--set")
            overrides = {name: getattr(checked, name) for name in overrides}
        self.name = f"{self.kind}_{preset_name}"
        self.preset = dataclasses.replace(preset, overrides={**preset.overrides, **overrides})
        self.changed = overrides  # what the user set for this run, beside the preset
        self.out = out.resolve()
        self.hint_counts: Counter[str] = Counter()  # of the hint stores prepare computed

    @abstractmethod
    def prepare(self) -> dict[str, dict[str, Any]]:
        """Make the data and hints the rows need; {row: its training options}."""

    @abstractmethod
    def score(self, config: TrainConfig, row: str, seed: int) -> Trial:
        """Score the last weights of a trained row."""

    @abstractmethod
    def write(self, trials: list[Trial]) -> tuple[list[dict[str, Any]], dict[str, Path]]:
        """Summarise the trials; the summary table and the files written."""


def compute_hints(
    items: list[SplitItem],
    root: Path,
    store: Path,
    config: HintConfig | None = None,
    progress: bool = False,
    counts: Counter[str] | None = None,
) -> Path:
    """The hint store ``store`` of ``items`` under data ``root``, computed on the Ray actor pool
    where missing; ConfigError naming the failures file when any hint failed. ``counts`` adds up
    the run's counts (``hints/restarts``: workers Ray restarted, each printed with its cause)."""
    from hints_worker.actors import precompute_hints

    summary = precompute_hints(items, root, store, config, progress=progress)
    if counts is not None:
        counts.update(summary.metrics)
    if not summary.ok:
        raise ConfigError(f"{len(summary.failures)} hints failed; see {store / 'failures.json'}")
    return store


def run_experiment(
    experiment: Experiment,
    seeds: int | None = None,
    options: SweepOptions | None = None,
    tracking: TrackingOptions | None = None,
    resume: bool = False,
) -> Outcome:
    """Prepare, sweep rows × seeds (``seeds`` None: the preset's), score, summarise and log.

    ``options`` says how to run the trials; the sweep's name and rows are the experiment's
    (the caller's options are not changed). ``resume`` continues an interrupted run: finished
    trials are not trained again and scores already in MLflow are not logged twice. SIGINT and
    SIGTERM stop the sweep (its MLflow runs KILLED) and raise :class:`~depthhints.errors.Stopped`.
    """
    options = options or SweepOptions()
    if not ray.is_initialized():  # before the hint actors: Train needs init_ray's settings
        ray_log = experiment.out / RAY_LOG  # Ray's and Tune's own output (verbose: the terminal)
        init_ray(options.ray.address, verbose=options.ray.verbose, log_file=ray_log)
    rows = experiment.prepare()
    base = TrainConfig(**next(iter(rows.values()))).replace(model_name=experiment.kind)
    options = dataclasses.replace(options, name=experiment.name, rows=rows)
    space = {"row": list(rows), "seed": list(range(seeds or experiment.preset.seeds))}
    grid = sweep_until_stopped(base, space, options, tracking, resume)  # Stopped on a signal

    trials, failed = [], []
    for result in grid:
        if result.error:
            failed.append(Path(result.path).name)
            continue
        choices = result.config["choices"]
        config = apply_choices(base, choices, rows=rows).replace(
            model_name=f"{base.model_name}_{result.metrics['trial_id']}"
        )
        trial = experiment.score(config, choices["row"], choices["seed"])
        _log_trial(experiment, tracking or TrackingOptions(), trial)
        trials.append(trial)
    trials.sort(key=lambda t: (list(rows).index(t.row), t.seed))
    table, files = experiment.write(trials)
    _log_results(experiment, tracking, files, table)
    return Outcome(table, files, failed)


def _log_trial(experiment: Experiment, tracking: TrackingOptions, trial: Trial) -> None:
    """The trial's scores as evaluation runs nested under its training run (those a resumed
    run already logged are skipped), and its artifacts on the training run."""
    training_run_id = recorded_run_id(trial.config)
    if not tracking.enabled or training_run_id is None:
        return
    runs = experiment.out / "runs"
    uri = tracking.tracking_uri(TrainConfig(log_dir=str(runs)))
    sweep_file = sweep_run_file(runs, experiment.name)
    sweep_run_id = json.loads(sweep_file.read_text())["run_id"] if sweep_file.is_file() else ""
    logged = logged_evaluations(uri, tracking.experiment, training_run_id)
    for score in trial.scores.values():
        if (score.protocol, score.post_process) in logged:
            continue
        log_evaluation(
            uri,
            tracking.experiment,
            trial.config,
            score.protocol,
            score.post_process,
            score.metrics,
            training_run_id,
            extra_params={experiment.row_key: trial.row, "seed": trial.seed, **score.params},
            tags={"sweep": experiment.name, "sweep_run_id": sweep_run_id},
        )
    if trial.artifacts:
        training = Tracker.start(
            uri, tracking.experiment, run_id=training_run_id, fallback_dir=trial.config.run_dir
        )
        for folder, path in trial.artifacts.items():
            training.log_artifact(path, folder)
        training.end("FINISHED")


def _log_results(
    experiment: Experiment,
    tracking: TrackingOptions | None,
    files: dict[str, Path],
    table: list[dict[str, Any]],
) -> None:
    """The written results and the summary's means on the sweep's MLflow run."""
    tracker = reopen_sweep_run(experiment.out / "runs", experiment.name, tracking)
    if tracker is None:
        return
    for path in files.values():
        tracker.log_artifact(path, experiment.results_folder)
    row, label = experiment.row_key, experiment.label_key
    tracker.log_metrics(
        {
            f"{line[row]}/{line[label]}/{metric}": line[metric]
            for line in table
            for metric in METRICS
            if metric in line
        }
        | dict(experiment.hint_counts),
        step=0,
    )
    tracker.end("FINISHED")


def report(outcome: Outcome) -> int:
    """Print the results table and the files written; the exit code of an experiment script
    (1 when a trial failed or none was scored)."""
    print(outcome.files["table_md"].read_text())
    print("written:", ", ".join(str(path) for path in outcome.files.values()))
    if outcome.failed:
        print(f"failed trials (errors in their Tune folders): {outcome.failed}", file=sys.stderr)
    return 0 if outcome.table and not outcome.failed else 1
