"""``depthhints train`` (one machine, or Ray Train), ``depthhints sweep`` (Ray Tune) and
``depthhints sync-tracking`` (deliver MLflow records journaled while the server was away)."""

from __future__ import annotations

import argparse

from depthhints.cli.arguments import (
    add_tracking_arguments,
    add_trial_arguments,
    add_verbose_argument,
    check_training_run,
    positive_int,
    tracking_options,
    trial_options,
)
from depthhints.config import add_config_arguments, config_from_args
from depthhints.errors import ConfigError


def register(commands: argparse._SubParsersAction) -> None:
    _add_train(commands)
    _add_sweep(commands)
    sync = commands.add_parser(
        "sync-tracking",
        help="deliver MLflow records a run journaled while its tracking server was unreachable",
    )
    sync.add_argument("folder", help="the run folder holding mlflow_pending*.jsonl")
    sync.add_argument(
        "--tracking-uri",
        help="deliver to this store instead of the recorded one (the journal keeps no password: "
        "give the login in MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD, or here)",
    )
    sync.set_defaults(func=cmd_sync_tracking)


def _add_train(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser(
        "train",
        help="train on one machine (CPU or CUDA); options keep the reference names",
        description="Options default to the published code's (docs/method.md#options); --config "
        "reads them from YAML and flags override it. For a synthetic tree pass --split "
        "<tree>/splits.",
    )
    add = train.add_argument
    resume = "continue from <log_dir>/<model_name>/models/state.pt (or the given state file)"
    add("--resume", nargs="?", const=True, default=False, help=resume)
    add("--no-progress", action="store_true", help="no progress bar")
    ray = train.add_argument_group("Ray Train (distributed data parallel)").add_argument
    ray("--workers", type=positive_int, help="train on Ray with this many DDP workers")
    ray("--gpus", action="store_true", help="one GPU per worker (NCCL)")
    ray("--storage-path", help="checkpoints: a folder or URI (default <log_dir>/ray_results)")
    ray("--max-failures", type=int, default=2, help="worker-group restarts")
    ray("--address", help="an existing Ray cluster (e.g. 'auto')")
    add_verbose_argument(train)
    add_tracking_arguments(train)
    add_config_arguments(train)
    train.set_defaults(func=cmd_train)


def _add_sweep(commands: argparse._SubParsersAction) -> None:
    sweep = commands.add_parser(
        "sweep",
        help="a Ray Tune sweep of training options, each trial a Ray Train run",
        description="The training options (--config and flags) are the base every trial "
        "changes; --space NAME=V1,V2 adds a dimension: any training option, resolution "
        "(640x192), modality (S, MS, M) or hint_mode (a --hint-store name). Trials are MLflow "
        "child runs of the sweep's run.",
    )
    add = sweep.add_argument
    add("--space", action="append", required=True, help="NAME=VALUE[,VALUE...] (repeatable)")
    add("--name", default="sweep", help="the sweep's name (Tune and MLflow)")
    search = "grid: every combination of the --space values; random: --num-samples draws"
    add("--search", choices=["grid", "random"], default="grid", help=search)
    add("--num-samples", type=positive_int, default=1, help="grid repeats / random trials")
    add("--asha", action="store_true", help="stop poor trials early (ASHA)")
    add("--metric", help="default: eval/abs_rel with an eval split, else loss")
    add("--hint-store", action="append", help="MODE=FOLDER: the store of a hint_mode value")
    add("--max-failures", type=int, default=2, help="worker-group restarts")
    add("--storage-path", help="Tune results (default <log_dir>/tune)")
    add_trial_arguments(sweep)
    add_config_arguments(sweep)
    sweep.set_defaults(func=cmd_sweep)


def cmd_train(args: argparse.Namespace) -> int:
    from depthhints.training_run import train_here, train_on_ray

    config, tracking = config_from_args(args), tracking_options(args)
    check_training_run(config, tracking, args.storage_path)
    if not args.workers:
        train_here(config, args.resume, not args.no_progress, tracking)
        return 0
    from depthhints.train.trainer import RayOptions

    options = RayOptions(
        num_workers=args.workers,
        use_gpu=args.gpus,
        storage_path=args.storage_path,
        max_failures=args.max_failures,
        address=args.address,
        verbose=args.verbose,
    )
    train_on_ray(config, options, tracking, resume=bool(args.resume))
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from depthhints.training_run import run_sweep
    from depthhints.tune import parse_space

    base = config_from_args(args)
    options, tracking = trial_options(
        args,
        name=args.name,
        search=args.search,
        num_samples=args.num_samples,
        asha=args.asha,
        metric=args.metric,
        storage_path=args.storage_path,
        hint_stores=_hint_stores(args.hint_store or []),
    )
    check_training_run(base, tracking, args.storage_path)
    return 0 if run_sweep(base, parse_space(args.space), options, tracking, args.resume) else 1


def _hint_stores(items: list[str]) -> dict[str, str]:
    """``MODE=FOLDER`` items as {mode: folder}."""
    stores = {}
    for item in items:
        mode, sep, folder = item.partition("=")
        if not (sep and mode and folder):
            raise ConfigError(f"--hint-store {item!r}: write MODE=FOLDER, e.g. fast=/data/hf")
        stores[mode] = folder
    return stores


def cmd_sync_tracking(args: argparse.Namespace) -> int:
    from depthhints.tracking import sync_pending

    result = sync_pending(args.folder, args.tracking_uri)
    print(f"synced MLflow runs {', '.join(result.run_ids) or '(none)'}; {result.remaining} left")
    return 0 if result.remaining == 0 else 1
