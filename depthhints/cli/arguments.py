"""Argument helpers shared by the ``depthhints`` sub-commands and the experiment scripts.

:class:`CommandParser` is every sub-command's parser: its help shows each option's default.
:func:`add_trial_arguments` / :func:`trial_options` are the flags of anything that runs a Ray
Tune sweep (``depthhints sweep``, ``experiments/*.py``).
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
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
    uri = "MLflow store or server (default: $MLFLOW_TRACKING_URI, else sqlite <log_dir>/mlflow.db)"
    tracking("--tracking-uri", help=uri)
    tracking("--experiment", default="depth-hints", help="MLflow experiment name")
    tracking("--no-tracking", action="store_true", help="do not log to MLflow")


def tracking_options(args: argparse.Namespace) -> TrackingOptions:
    """TrackingOptions from :func:`add_tracking_arguments`' flags."""
    from depthhints.train.reporting import TrackingOptions

    return TrackingOptions(
        enabled=not args.no_tracking, uri=args.tracking_uri, experiment=args.experiment
    )


def add_trial_arguments(parser: argparse.ArgumentParser, max_concurrent: int = 1) -> None:
    """The flags of every command that runs a Tune sweep: trials at once, Ray Train workers
    per trial, GPUs, the Ray cluster, resuming, and MLflow (see :func:`trial_options`)."""
    add = parser.add_argument
    add("--max-concurrent", type=positive_int, default=max_concurrent, help="trials at once")
    add("--workers-per-trial", type=positive_int, default=1, help="Ray Train workers per trial")
    add("--gpus", action="store_true", help="one GPU per Train worker")
    add("--address", help="an existing Ray cluster (e.g. 'auto')")
    add("--resume", action="store_true", help="continue an interrupted run (Tuner.restore)")
    add_tracking_arguments(parser)


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
    )
    options = SweepOptions(max_concurrent_trials=args.max_concurrent, ray=ray_options, **sweep)
    return options, tracking_options(args)
