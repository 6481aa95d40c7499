"""Ray Tune sweeps over training options: each trial is a Ray Train run and an MLflow child run.

The Ray Train V2 way (``Tuner(trainer)`` fails under it with ``TuneError: Improper 'run'``): a
function trainable (:func:`run_trial`) builds and fits a ``TorchTrainer`` through
:func:`depthhints.train.trainer.fit_distributed`, named ``<model_name>_<trial id>`` so that a
restored sweep's trial finds its Train run and checkpoints again; ``TuneReportCallback``
forwards rank 0's epoch reports (losses, ``eval/*``) to Tune. A trial's own driver holds no CPU
(its Train workers take theirs), so ``max_concurrent_trials`` and the cluster's free CPUs/GPUs
decide how many run at once. A trial that fails is recorded as ERROR and the sweep
goes on; ``sweep(..., resume=True)`` continues an interrupted sweep with ``Tuner.restore``
(finished trials are not run again).

Dimensions: any TrainConfig option (``use_depth_hints``, ``num_layers``, ``weights_init``,
``seed``, ...) plus ``resolution`` (``640x192``), ``modality`` (``S``: stereo, frames 0 and s;
``MS``: frames 0 −1 1 and s; ``M``: frames 0 −1 1), ``hint_mode`` (a name from
``hint_stores``, e.g. parity/masked/fast, whose store the trial trains with) and ``hints``
(``off``, or a hint mode with ``use_depth_hints`` on: one dimension for an ablation),
``row`` (a name from ``rows``: a bundle of options, e.g. one row of the paper's table) and
``workers`` (the trial's Ray Train worker count, instead of the sweep's).

MLflow: the sweep is a parent run (its space and search as params, the trial table as an
artifact, the best trial as tags); every trial is a child run (``mlflow.parentRunId``) with all
its config values as params, so the UI groups and compares them.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from ray import tune
from ray.tune.integration.ray_train import TuneReportCallback
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search.basic_variant import BasicVariantGenerator

from depthhints.config import TrainConfig
from depthhints.errors import ConfigError
from depthhints.evaluate import HIGHER_IS_BETTER
from depthhints.tracking import NullTracker, Tracker, login_hidden, redact_uri
from depthhints.train import console
from depthhints.train.reporting import TrackingOptions
from depthhints.train.trainer import (
    RayOptions,
    absolute_paths,
    fit_distributed,
    init_ray,
    ray_log_file,
)

log = logging.getLogger(__name__)

MODALITIES = {
    "S": {"use_stereo": True, "frame_ids": [0]},
    "MS": {"use_stereo": True, "frame_ids": [0, -1, 1]},
    "M": {"use_stereo": False, "frame_ids": [0, -1, 1]},
}
DERIVED = ("row", "resolution", "modality", "hint_mode", "hints", "workers")
TRIAL_RESOURCES = {"CPU": 0, "memory": 1}
"""A trial's own driver holds no CPU (so its Train workers can take every core); Tune refuses an
empty bundle, hence one byte of memory, a resource every node has."""


@dataclass
class SweepOptions:
    """How to search, and how much of the cluster each trial gets."""

    name: str = "sweep"
    search: str = "grid"  # grid: every combination; random: num_samples draws
    num_samples: int = 1  # grid: repeats of the whole grid; random: number of trials
    max_concurrent_trials: int = 1
    asha: bool = False  # stop poor trials early on the metric (epochs as time)
    metric: str | None = None  # None: eval/abs_rel with an eval split, else loss
    storage_path: str | None = None  # None: <log_dir>/tune
    hint_stores: dict[str, str] = field(default_factory=dict)  # hint_mode → store folder
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)  # row → options it sets
    ray: RayOptions = field(default_factory=lambda: RayOptions(num_workers=1))
    random_seed: int = 0

    def __post_init__(self) -> None:
        if self.search not in ("grid", "random"):
            raise ConfigError(f"search={self.search!r}: use 'grid' or 'random'")
        if self.num_samples < 1 or self.max_concurrent_trials < 1:
            raise ConfigError("num_samples and max_concurrent_trials must be at least 1")


def parse_space(items: Sequence[str]) -> dict[str, list[Any]]:
    """``["use_depth_hints=true,false", "num_layers=18,50"]`` → {name: [values]} (YAML values)."""
    space: dict[str, list[Any]] = {}
    for item in items:
        name, sep, values = item.partition("=")
        name = name.strip()
        if not sep or not name or not values.strip():
            raise ConfigError(f"--space {item!r}: write NAME=VALUE[,VALUE...]")
        space[name] = [_space_value(item, value) for value in values.split(",")]
    return space


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["learning_rate=3e-4"]`` (``--set`` items) → {"learning_rate": 0.0003}: one YAML value
    each."""
    values = {}
    for name, choices in parse_space(items).items():
        if len(choices) != 1:
            raise ConfigError(f"--set {name}: give one value, got {choices}")
        values[name] = choices[0]
    return values


def _space_value(item: str, value: str) -> Any:
    """One YAML value of a ``--space`` item; a ConfigError naming the item if it is no value."""
    try:
        return yaml.safe_load(value.strip())
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or type(error).__name__
        raise ConfigError(
            f"--space {item!r}: {value.strip()!r} is not a plain YAML value ({problem}); write "
            "NAME=VALUE[,VALUE...] with values such as true, 18, 0.5, 640x192 or 'quoted text'"
        ) from None


def apply_choices(
    base: TrainConfig,
    choices: Mapping[str, Any],
    hint_stores: Mapping[str, str] | None = None,
    rows: Mapping[str, Mapping[str, Any]] | None = None,
) -> TrainConfig:
    """``base`` with one trial's values; derived dimensions expand to their options (a ``row``
    first, so that the other dimensions apply on top of it)."""
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    values: dict[str, Any] = {}
    if "row" in choices:
        if choices["row"] not in (rows or {}):
            raise ConfigError(f"row={choices['row']!r}: not one of {sorted(rows or {})}")
        values.update(rows[choices["row"]])
    for name, value in choices.items():
        if name == "row":
            continue
        if name == "resolution":
            width, _, height = str(value).partition("x")
            if not (width.isdigit() and height.isdigit()):
                raise ConfigError(f"resolution={value!r}: write WIDTHxHEIGHT, e.g. 640x192")
            values.update(width=int(width), height=int(height))
        elif name == "modality":
            if value not in MODALITIES:
                raise ConfigError(f"modality={value!r}: use one of {list(MODALITIES)}")
            values.update(MODALITIES[value])
        elif name == "hints" and value in ("off", False):
            values["use_depth_hints"] = False
        elif name in ("hint_mode", "hints"):
            stores = hint_stores or {}
            if value not in stores:
                raise ConfigError(
                    f"{name}={value!r} has no store; pass --hint-store {value}=<folder> "
                    f"(known: {sorted(stores) or 'none'})"
                )
            values["depth_hint_path"] = str(stores[value])
            if name == "hints":
                values["use_depth_hints"] = True
        elif name in known:
            values[name] = value
        else:
            raise ConfigError(
                f"unknown sweep dimension {name!r}: use a training option or one of {DERIVED}"
            )
    return base.replace(**values)


def run_trial(params: dict[str, Any]) -> None:
    """The Tune trainable: one trial's Ray Train run, reporting to Tune and MLflow."""
    trial_id = tune.get_context().get_trial_id()
    base = TrainConfig.from_dict(params["base"])
    choices = dict(params["choices"])
    workers = choices.pop("workers", params["ray"]["num_workers"])
    # a trial that ended is not continued: its Train checkpoints go once its weights are written
    ray_options = RayOptions(**{**params["ray"], "num_workers": workers, "keep_checkpoints": False})
    config = apply_choices(base, choices, params["hint_stores"], params["rows"])
    config = config.replace(model_name=f"{base.model_name}_{trial_id}")
    tracking = TrackingOptions(**params["tracking"])
    tracking.tags = {  # the swept values, by which the report groups the sweep's runs
        **tracking.tags,
        **{f"sweep.{name}": str(value) for name, value in params["choices"].items()},
    }
    shown = ", ".join(f"{name}={value}" for name, value in params["choices"].items())
    console.say(
        f"trial {config.model_name} ({shown}): epochs {config.num_epochs}, Ray Train workers "
        f"{workers}"
    )
    start = time.perf_counter()
    try:
        result = fit_distributed(
            config,
            ray_options,
            tracking=tracking,
            resume=True,  # a restored trial continues its Train run and its MLflow run
            callbacks=[TuneReportCallback()],
        )
    except Exception as error:
        console.say(f"trial {config.model_name} failed: {_last_line(error)}")
        raise
    seconds = time.perf_counter() - start
    console.say(f"trial {config.model_name} done in {seconds:.0f} s: {_scores(result.metrics)}")


def _scores(metrics: Mapping[str, Any] | None) -> str:
    """A trial's last report in a few words: steps, loss and abs rel."""
    metrics = metrics or {}
    words = [f"{metrics.get('step')} steps"]
    words += [f"{name} {metrics[name]:.4f}" for name in ("loss", "eval/abs_rel") if name in metrics]
    return ", ".join(words)


def sweep(
    base: TrainConfig,
    space: Mapping[str, Sequence[Any]],
    options: SweepOptions,
    tracking: TrackingOptions | None = None,
    resume: bool = False,
) -> tune.ResultGrid:
    """Run (or with ``resume``, continue) a sweep; returns Tune's results, failed trials too."""
    if not space:
        raise ConfigError("the sweep space is empty; give at least one --space NAME=VALUES")
    for workers in space.get("workers", []):
        if not isinstance(workers, int) or workers < 1:
            raise ConfigError(f"workers={workers!r}: a trial needs a positive number of workers")
    trial_space = {name: values for name, values in space.items() if name != "workers"}
    for combination in itertools.product(*trial_space.values()):  # bad values fail now
        choices = dict(zip(trial_space, combination, strict=True))
        apply_choices(base, choices, options.hint_stores, options.rows)
    base = absolute_paths(base)
    rows = {  # trials run in their own folders: every path absolute
        name: absolute_paths(base.replace(**bundle)).to_dict()
        for name, bundle in options.rows.items()
    }
    tracking = tracking or TrackingOptions()
    storage = options.storage_path or str(Path(base.log_dir) / "tune")
    metric = options.metric or ("eval/abs_rel" if base.eval_split_file else "loss")
    # epoch reports carry eval/*, step checkpoints do not: let Tune accept both
    os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")
    import ray

    if not ray.is_initialized():
        init_ray(options.ray.address, verbose=options.ray.verbose, log_file=ray_log_file(base))

    parent = _parent_run(base, space, options, tracking, metric, resume)
    sample = tune.grid_search if options.search == "grid" else tune.choice
    param_space = {
        "base": base.to_dict(),
        "choices": {name: sample(list(values)) for name, values in space.items()},
        "hint_stores": {k: str(Path(v).resolve()) for k, v in options.hint_stores.items()},
        "rows": rows,
        "ray": dataclasses.asdict(options.ray),
        "tracking": {
            **dataclasses.asdict(tracking),
            "uri": tracking.tracking_uri(base),
            "run_id": None,
            "parent_run_id": parent.run_id,
        },
    }
    trainable = tune.with_resources(run_trial, TRIAL_RESOURCES)
    path = f"{storage.rstrip('/')}/{options.name}"
    if resume and tune.Tuner.can_restore(path):
        tuner = tune.Tuner.restore(
            path, trainable, resume_unfinished=True, resume_errored=True, param_space=param_space
        )
    else:
        tuner = tune.Tuner(
            trainable,
            param_space=param_space,
            tune_config=tune.TuneConfig(
                metric=metric,
                mode="max" if metric.split("/")[-1] in HIGHER_IS_BETTER else "min",
                num_samples=options.num_samples,
                scheduler=ASHAScheduler(max_t=base.num_epochs, grace_period=1)
                if options.asha
                else None,
                # Tune ignores TuneConfig.max_concurrent_trials beside a search_alg
                search_alg=BasicVariantGenerator(
                    random_state=options.random_seed,
                    max_concurrent=options.max_concurrent_trials,
                ),
            ),
            run_config=tune.RunConfig(
                name=options.name,
                storage_path=storage,
                failure_config=tune.FailureConfig(max_failures=0),
            ),
        )
    verbose = options.ray.verbose
    # show_progress first: it keeps the terminal that tune_output takes from Tune
    with (
        console.show_progress(enabled=not verbose),
        console.tune_output(verbose, ray_log_file(base)),
    ):
        grid = tuner.fit()
    _finish_parent(parent, grid, base, metric)
    return grid


def trial_table(grid: tune.ResultGrid, metric: str) -> list[dict[str, Any]]:
    """One row per trial: id, its choices, status, the metric's last value, error if any."""
    rows = []
    for result in grid:
        choices = (result.config or {}).get("choices", {})
        metrics = result.metrics or {}
        rows.append(
            {
                "trial": metrics.get("trial_id") or Path(result.path).name,
                **{name: choices.get(name) for name in sorted(choices)},
                "status": "ERROR" if result.error else "OK",
                metric: metrics.get(metric),
                "epoch": metrics.get("epoch"),
                "error": _last_line(result.error) if result.error else "",
            }
        )
    return rows


def sweep_run_file(log_dir: str | Path, name: str) -> Path:
    """Where sweep ``name`` keeps its MLflow parent run's id."""
    return Path(log_dir) / f"sweep_{name}" / "mlflow_run.json"


def reopen_sweep_run(
    log_dir: str | Path, name: str, tracking: TrackingOptions | None
) -> Tracker | None:
    """Sweep ``name``'s MLflow parent run, continued (to add results after the trials); None
    without tracking or when the sweep made no run."""
    tracking = tracking or TrackingOptions()
    run_file = sweep_run_file(log_dir, name)
    if not tracking.enabled or not run_file.is_file():
        return None
    return Tracker.start(
        tracking.tracking_uri(TrainConfig(log_dir=str(log_dir))),
        tracking.experiment,
        run_id=json.loads(run_file.read_text())["run_id"],
        fallback_dir=run_file.parent,
    )


def _parent_run(
    base: TrainConfig,
    space: Mapping[str, Sequence[Any]],
    options: SweepOptions,
    tracking: TrackingOptions,
    metric: str,
    resume: bool,
) -> Tracker | NullTracker:
    if not tracking.enabled:
        return NullTracker()
    run_file = sweep_run_file(base.log_dir, options.name)
    folder = run_file.parent
    run_id = json.loads(run_file.read_text())["run_id"] if resume and run_file.is_file() else None
    parent = Tracker.start(
        tracking.tracking_uri(base),
        tracking.experiment,
        run_name=options.name,
        tags={"sweep": options.name},
        run_id=run_id,
        fallback_dir=folder,
    )
    if run_id is None:
        parent.log_params(
            {
                "space": json.dumps({k: list(v) for k, v in space.items()}),
                "search": options.search,
                "num_samples": options.num_samples,
                "metric": metric,
                "asha": options.asha,
                "workers_per_trial": options.ray.num_workers,
                "base_model_name": base.model_name,
            }
        )
    if parent.run_id:
        run_file.write_text(json.dumps({"run_id": parent.run_id}) + "\n")
    return parent


def _finish_parent(
    parent: Tracker | NullTracker, grid: tune.ResultGrid, base: TrainConfig, metric: str
) -> None:
    if parent.run_id and parent.experiment_id:
        _end_stopped_children(parent)
    rows = trial_table(grid, metric)
    parent.log_dict(rows, "trials.json")
    scored = [r for r in rows if isinstance(r.get(metric), int | float)]
    if scored:
        best = (max if metric.split("/")[-1] in HIGHER_IS_BETTER else min)(
            scored, key=lambda r: r[metric]
        )
        parent.set_tags({"best_trial": best["trial"], f"best_{metric}": best[metric]})
        parent.log_metrics({f"best/{metric}": best[metric]}, step=0)
    parent.end("FAILED" if any(r["status"] == "ERROR" for r in rows) and not scored else "FINISHED")


def _last_line(error: BaseException) -> str:
    """The innermost message of a (Ray-wrapped) error."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def _end_stopped_children(parent: Tracker) -> None:
    """Trials that Tune stopped (ASHA) were killed mid-call: end their MLflow runs KILLED."""
    client = MlflowClient(parent.tracking_uri)
    query = f"tags.mlflow.parentRunId = '{parent.run_id}' and attributes.status = 'RUNNING'"
    try:
        with login_hidden(parent.tracking_uri):  # MLflow would print the URI, password included
            for run in client.search_runs([parent.experiment_id], query):
                client.set_terminated(run.info.run_id, "KILLED")
    except MlflowException as error:  # an unreachable server: the runs stay RUNNING
        log.warning("could not end the stopped trials' MLflow runs: %s", redact_uri(str(error)))
