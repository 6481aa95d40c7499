"""Argument helpers shared by the ``depthhints`` sub-commands and the experiment scripts.

:class:`CommandParser` is every sub-command's parser: its help shows each option's default.
:func:`add_trial_arguments` / :func:`trial_options` are the flags of anything that runs a Ray
Tune sweep (``depthhints sweep``, ``experiments/*.py``); :func:`check_training_run` checks a
training's inputs and output folders before anything is written.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from depthhints.config import TrainConfig
    from depthhints.train.reporting import TrackingOptions
    from depthhints.tune import SweepOptions

T = TypeVar("T")


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Appends ``(default: X)`` to an option's help unless it is a flag (``--x`` alone), has
    no default (None) or its help already places ``%(default)s``."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text, default = action.help or "", action.default
        if (
            not action.option_strings
            or action.nargs == 0
            or default is None
            or default == argparse.SUPPRESS
            or "%(default)" in text
        ):
            return action.help
        shown = " ".join(map(str, default)) if isinstance(default, list | tuple) else str(default)
        return f"{text} (default: {shown.replace('%', '%%')})"


class CommandParser(argparse.ArgumentParser):
    """A sub-command's parser: help with defaults (:class:`DefaultsHelpFormatter`)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        super().__init__(**kwargs)


def from_args(cls: type[T], args: argparse.Namespace, **values: Any) -> T:
    """A ``cls`` dataclass from ``values`` and, for its other fields, the options of the same
    name (``dest``)."""
    names = [f.name for f in dataclasses.fields(cls) if f.name not in values]
    return cls(**{name: getattr(args, name) for name in names}, **values)


def positive_int(text: str) -> int:
    """argparse ``type=`` for an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def add_tracking_arguments(parser: argparse.ArgumentParser) -> None:
    """``--tracking-uri``, ``--experiment`` and ``--no-tracking`` (see :func:`tracking_options`)."""
    tracking = parser.add_argument_group("MLflow tracking").add_argument
    uri = (
        "MLflow store: sqlite:///<path>.db or http(s)://host:port (default: "
        "$MLFLOW_TRACKING_URI, else sqlite:///<log_dir>/mlflow.db)"
    )
    tracking("--tracking-uri", help=uri)
    tracking("--experiment", default="depth-hints", help="MLflow experiment name")
    tracking("--no-tracking", action="store_true", help="do not log to MLflow")


def tracking_options(args: argparse.Namespace) -> TrackingOptions:
    """TrackingOptions from :func:`add_tracking_arguments`' flags; a store URI that MLflow
    would misread (a plain path) is refused here, before any run folder is made."""
    from depthhints.tracking import check_store_uri
    from depthhints.train.reporting import TrackingOptions

    if not args.no_tracking:
        check_store_uri(args.tracking_uri)
    return TrackingOptions(
        enabled=not args.no_tracking, uri=args.tracking_uri, experiment=args.experiment
    )


def check_training_run(
    config: TrainConfig, tracking: TrackingOptions, storage_path: str | None = None
) -> None:
    """Before a training or a sweep starts, nothing written yet: its split lists exist, and
    log_dir, a local ``storage_path`` and a SQLite tracking store can be written."""
    from depthhints.data.kitti import split_lists
    from depthhints.paths import writable_file, writable_folder
    from depthhints.train.data import split_paths

    split_paths(config)
    if config.eval_split_file:
        split_lists(config.eval_split_file, ("test",), "--eval_split_file")
    writable_folder(config.log_dir, "--log_dir")
    if storage_path and "://" not in storage_path:
        writable_folder(storage_path, "--storage-path")
    uri = tracking.tracking_uri(config) if tracking.enabled else ""
    if uri.startswith("sqlite:///"):
        writable_file(uri.removeprefix("sqlite:///"), "--tracking-uri")


def add_trial_arguments(parser: argparse.ArgumentParser, max_concurrent: int = 1) -> None:
    """The flags of every command that runs a Tune sweep: trials at once, Ray Train workers
    per trial, GPUs, the Ray cluster, resuming, and MLflow (see :func:`trial_options`)."""
    add = parser.add_argument
    add("--max-concurrent", type=positive_int, default=max_concurrent, help="trials at once")
    add("--workers-per-trial", type=positive_int, default=1, help="Ray Train workers per trial")
    add("--gpus", action="store_true", help="one GPU per Train worker")
    add("--address", help="an existing Ray cluster (e.g. 'auto')")
    add("--resume", action="store_true", help="continue an interrupted run (Tuner.restore)")
    add_verbose_argument(parser)
    add_tracking_arguments(parser)


def add_verbose_argument(parser: argparse.ArgumentParser) -> None:
    """``--verbose`` of every command that runs Ray: Ray's and Tune's own output on the
    terminal (``RayOptions.verbose``; without it, a ``ray.log`` file whose path is printed)."""
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="show Ray's and Tune's own output here (worker logs, trial tables) instead of in "
        "the ray.log file named at the start",
    )


def trial_options(args: argparse.Namespace, **sweep: Any) -> tuple[SweepOptions, TrackingOptions]:
    """(SweepOptions, TrackingOptions) from :func:`add_trial_arguments`' flags; ``sweep``: more
    SweepOptions fields."""
    from depthhints.train.trainer import RayOptions
    from depthhints.tune import SweepOptions

    ray_options = RayOptions(
        num_workers=args.workers_per_trial,
        use_gpu=args.gpus,
        address=args.address,
        max_failures=getattr(args, "max_failures", RayOptions.max_failures),
        verbose=args.verbose,
    )
    options = SweepOptions(max_concurrent_trials=args.max_concurrent, ray=ray_options, **sweep)
    return options, tracking_options(args)
