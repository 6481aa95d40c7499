"""The ``depthhints`` command."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from depthhints.errors import DepthHintsError


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _add_dataset_arguments(parser: argparse.ArgumentParser, frames: int) -> None:
    parser.add_argument("--drives", type=_positive_int, default=1, help="number of drives")
    parser.add_argument("--frames", type=_positive_int, default=frames, help="frames per drive")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--width", type=_positive_int, default=1242)
    parser.add_argument("--height", type=_positive_int, default=375)
    parser.add_argument(
        "--image-ext",
        choices=[".png", ".jpg"],
        default=".png",
        help="KITTI raw ships PNG; the published hint precompute reads JPEG",
    )
    parser.add_argument(
        "--workers",
        type=_positive_int,
        default=os.cpu_count() or 1,
        help="processes rendering frames in parallel (default: one per core)",
    )


def _synthesize(args: argparse.Namespace) -> tuple[Path, dict[str, Path]]:
    from depthhints.data.synthetic import DatasetConfig, generate_dataset

    config = DatasetConfig(
        num_drives=args.drives,
        frames_per_drive=args.frames,
        seed=args.seed,
        width=args.width,
        height=args.height,
        image_ext=args.image_ext,
    )
    start = time.perf_counter()
    splits = generate_dataset(args.out, config, workers=args.workers, progress=True)
    seconds = time.perf_counter() - start
    root = Path(args.out)
    files = [p for p in root.rglob("*") if p.is_file()]
    size_mb = sum(p.stat().st_size for p in files) / 1e6
    print(
        f"wrote {len(files)} files ({size_mb:.1f} MB) under {root} in {seconds:.1f} s "
        f"({args.drives * args.frames / seconds:.2f} stereo frames/s)"
    )
    for part, path in splits.items():
        print(f"  split {part:5s}: {path} ({len(path.read_text().splitlines())} lines)")
    return root, splits


def cmd_synth(args: argparse.Namespace) -> int:
    _synthesize(args)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from depthhints.data.kitti import KittiRawLayout, read_split_file
    from depthhints.train.trainer import init_ray
    from depthhints.visualize import stereo_preview

    out = Path(args.out)
    args.out = out / "kitti_synthetic"
    root, splits = _synthesize(args)
    layout = KittiRawLayout(root)
    item = read_split_file(splits["test"])[0]
    picture = stereo_preview(layout, item.folder, item.frame, out / "stereo_preview.png")
    print(f"picture of a stereo pair with its ground-truth depth and LiDAR: {picture}")

    import ray

    from hints_worker.actors import precompute_hints

    started = not ray.is_initialized()
    if started:
        init_ray()  # one local cluster for the hint actors, Ray Tune and Ray Train
    try:
        items = [item for path in splits.values() for item in read_split_file(path)]
        summary = precompute_hints(items, root, root / "depth_hints", workers=args.workers)
        print(
            f"fused SGM depth hints (Ray actor pool, {args.workers} workers): {summary.written} "
            f"written, {summary.skipped} already there, {len(summary.failures)} failed -> "
            f"{summary.store}"
        )
        if not summary.ok:
            return 1
        _demo_hint_quality(root, items, layout, _demo_tracking_uri(out), args.workers)
        files = _demo_table(root, out, args)
    finally:
        if started:
            ray.shutdown()
    print(files["md"].read_text())
    from dashboards.report import build_report

    report = build_report(out / "report.html", _demo_tracking_uri(out))
    print(f"table: {files['md']} (.csv, .json); MLflow: {out / 'runs' / 'mlflow.db'}")
    print(f"report (open in a browser): {report}; MLflow UI: make ui")
    return 0


def _demo_tracking_uri(out: Path) -> str:
    """The demo's MLflow store: $MLFLOW_TRACKING_URI, else ``<out>/runs/mlflow.db``."""
    from depthhints.config import TrainConfig
    from depthhints.train.reporting import TrackingOptions

    return TrackingOptions().tracking_uri(TrainConfig(log_dir=str(out / "runs")))


def _demo_hint_quality(root: Path, items: list, layout, tracking_uri: str, workers) -> None:
    """The published hints and the fast preset's, their quality and cost logged to MLflow."""
    from hints_worker.actors import HintConfig, precompute_hints

    fast = precompute_hints(
        items, root, root / "depth_hints_fast", HintConfig(matchers="fast"), workers=workers
    )
    if not fast.ok:
        raise DepthHintsError(f"fast hints failed: {fast.failures[:3]}")
    for store in (root / "depth_hints", root / "depth_hints_fast"):
        row = hint_quality(store, layout, tracking_uri=tracking_uri)
        print(
            f"hint quality {row['matchers']}/{row['fusion']}: coverage {row['coverage']:.3f}, "
            f"abs rel {row['abs_rel']:.4f}, d<1.25 {row['delta1']:.3f}"
        )


def _demo_table(root: Path, out: Path, args: argparse.Namespace) -> dict[str, Path]:
    """The stereo + hints recipe and its no-hint baseline as a Ray Tune sweep, each trial on
    Ray Train with ``--train-workers`` workers, evaluated into the results table (from scratch
    and at a high learning rate: the demo runs a few dozen steps without ImageNet weights)."""
    from depthhints.reproduce import reproduce
    from depthhints.train.trainer import RayOptions
    from depthhints.tune import SweepOptions

    runs = out / "runs"
    for stale in [runs / "tune" / "table_demo", *runs.glob("table_*")]:  # a demo starts afresh
        shutil.rmtree(stale, ignore_errors=True)
    print(
        f"Ray Tune: stereo training with and without depth hints, {args.epochs} epochs each, "
        f"on Ray Train with {args.train_workers} workers ..."
    )
    options = SweepOptions(
        max_concurrent_trials=1, ray=RayOptions(num_workers=args.train_workers, max_failures=0)
    )
    from depthhints.data.kitti import read_split_file

    train_items = len(read_split_file(root / "splits" / "train_files.txt"))
    overrides = {
        "num_epochs": args.epochs,
        "learning_rate": args.learning_rate,
        "batch_size": max(1, min(2, train_items // args.train_workers)),
    }
    _, files, failed = reproduce("demo", out, root, options=options, overrides=overrides)
    if failed:
        raise DepthHintsError(f"demo trials failed: {failed}; see the log above")
    return files


def _read_items(split: str) -> list:
    """A split given as a file path or as '<name>/<part>' of the bundled lists."""
    from depthhints.data.kitti import load_split, read_split_file

    if Path(split).is_file():
        return read_split_file(split)
    name, _, part = split.partition("/")
    return load_split(name, part or "all")


def cmd_hints(args: argparse.Namespace) -> int:
    from hints_worker.actors import FAILURES_FILE, HintConfig, precompute_hints

    config = HintConfig(
        height=args.height,
        width=args.width,
        matchers=args.matchers,
        fusion=args.fusion,
        align_corners=not args.no_align_corners,
    )
    items = _read_items(args.split)
    out = args.out or Path(args.data_path) / "depth_hints"
    summary = precompute_hints(
        items,
        args.data_path,
        out,
        config,
        args.format,
        workers=args.workers,
        address=args.address,
        precision=args.precision,
    )
    if not summary.written and not summary.failures:
        print(f"nothing to compute: all {summary.skipped} hints are already in {summary.store}")
        return 0
    print(
        f"{summary.written} hints written, {summary.skipped} already in {summary.store}, "
        f"{len(summary.failures)} failed ({summary.images_per_second:.2f} hints/s written after "
        f"{summary.startup_seconds:.1f} s of actor start-up)"
    )
    if summary.failures:
        for failure in summary.failures[:10]:
            print(f"  failed {failure.key}: {failure.reason}", file=sys.stderr)
        print(f"all failures: {summary.store / FAILURES_FILE}", file=sys.stderr)
        return 1
    return 0


def cmd_hints_quality(args: argparse.Namespace) -> int:
    import json

    from depthhints.data.kitti import KittiRawLayout

    tracking_uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    print(
        f"{'store':40s} {'matchers':>8s} {'fusion':>7s} {'images':>6s} "
        f"{'coverage':>8s} {'abs rel':>8s} {'d<1.25':>7s} {'s/img/core':>10s}"
    )
    report = []
    for root in args.stores:
        row = hint_quality(
            root, KittiRawLayout(args.data_path), args.limit, tracking_uri, args.experiment
        )
        report.append(row)
        cost = row.get("seconds_per_image")
        print(
            f"{str(root)[-40:]:40s} {row['matchers']:>8s} {row['fusion']:>7s} "
            f"{row['images']:6d} {row['coverage']:8.3f} {row['abs_rel']:8.4f} "
            f"{row['delta1']:7.3f} {'' if cost is None else f'{cost:10.2f}'}"
        )
    if tracking_uri:
        from depthhints.tracking import redact_uri

        print(f"logged to MLflow ({redact_uri(tracking_uri)}, experiment {args.experiment!r})")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


def hint_quality(
    root: str | Path,
    layout,
    limit: int | None = None,
    tracking_uri: str | None = None,
    experiment: str = "depth-hints",
) -> dict:
    """One store's quality (and cost, from its ``timing.json``), logged to MLflow when a
    ``tracking_uri`` is given."""
    from depthhints.data.hint_store import open_store
    from depthhints.hints.quality import evaluate_store
    from depthhints.results import log_hint_quality
    from hints_worker.actors import read_timing

    store = open_store(root)
    keys = sorted(store.keys())
    if limit and len(keys) > limit:
        keys = [keys[i] for i in np.linspace(0, len(keys) - 1, limit).astype(int)]
    quality = evaluate_store(store, layout, keys).as_dict()
    config = store.manifest.config if store.manifest else {}
    settings = {"matchers": config.get("matchers", "?"), "fusion": config.get("fusion", "?")}
    cost = (read_timing(root) or {}).get("seconds_per_image_per_actor")
    if tracking_uri:
        log_hint_quality(tracking_uri, experiment, root, settings, quality, cost)
    return {"store": str(root), **settings, **quality, "seconds_per_image": cost}


def _tracking_options(args: argparse.Namespace):
    from depthhints.train.reporting import TrackingOptions

    return TrackingOptions(
        enabled=not args.no_tracking, uri=args.tracking_uri, experiment=args.experiment
    )


def cmd_train(args: argparse.Namespace) -> int:
    from depthhints.config import config_from_args

    config = config_from_args(args)
    if args.workers:
        return _train_on_ray(config, args)
    from depthhints.train.loop import fit

    result = fit(
        config,
        resume=args.resume,
        progress=not args.no_progress,
        tracking=_tracking_options(args),
        announce=print,
    )
    last = result.history[-1] if result.history else {}
    print(
        f"trained {len(result.history)} steps, last loss {last.get('loss', float('nan')):.5f}; "
        f"weights: {result.weights[-1] if result.weights else 'none written'}; "
        f"metrics: {config.run_dir / 'metrics.jsonl'}"
    )
    return 0


def _train_on_ray(config, args: argparse.Namespace) -> int:
    from depthhints.errors import ConfigError
    from depthhints.train.trainer import RayOptions, fit_distributed, run_path

    options = RayOptions(
        num_workers=args.workers,
        use_gpu=args.gpus,
        storage_path=args.storage_path,
        max_failures=args.max_failures,
        address=args.address,
    )
    where = run_path(config, options)
    if Path(where).exists() and not args.resume:
        raise ConfigError(
            f"a run named {config.model_name!r} already exists at {where}; pass --resume to "
            "continue it (with more --num_epochs to extend it) or choose another --model_name"
        )
    print(
        f"Ray Train: {options.num_workers} workers ({'GPU' if options.use_gpu else 'CPU'}), "
        f"per-worker batch {config.batch_size}, effective batch "
        f"{config.batch_size * options.num_workers}; Ray result: {where}"
    )
    result = fit_distributed(
        config,
        options,
        tracking=_tracking_options(args),
        resume=bool(args.resume),
        announce=print,
    )
    metrics = result.metrics or {}
    print(
        f"finished at epoch {metrics.get('epoch')} step {metrics.get('step')}, loss "
        f"{metrics.get('loss', float('nan')):.5f}; checkpoint: {result.checkpoint}; "
        f"weights: {config.run_dir / 'models'}"
    )
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from depthhints.config import config_from_args
    from depthhints.tune import parse_space, sweep, trial_table

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
    space = parse_space(args.space)
    grid = sweep(base, space, options, tracking, resume=args.resume)
    metric = options.metric or ("eval/abs_rel" if base.eval_split_file else "loss")
    rows = trial_table(grid, metric)
    names = [*space, "status", metric]
    print(" | ".join(f"{name:>14}" for name in ["trial", *names]))
    for row in rows:
        cells = [row["trial"], *(row.get(name) for name in names)]
        print(" | ".join(f"{_cell(cell):>14}" for cell in cells), row["error"])
    print(f"sweep results: {grid.experiment_path}")
    return 0 if all(row["status"] == "OK" for row in rows) else 1


def _hint_stores(items: list[str]) -> dict[str, str]:
    from depthhints.errors import ConfigError

    stores = {}
    for item in items:
        mode, sep, folder = item.partition("=")
        if not (sep and mode and folder):
            raise ConfigError(f"--hint-store {item!r}: write MODE=FOLDER, e.g. fast=/data/hf")
        stores[mode] = folder
    return stores


def _cell(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def cmd_sync_tracking(args: argparse.Namespace) -> int:
    from depthhints.tracking import sync_pending

    result = sync_pending(args.folder, args.tracking_uri)
    print(f"synced MLflow runs {', '.join(result.run_ids) or '(none)'}; {result.remaining} left")
    return 0 if result.remaining == 0 else 1


def _add_train_parser(commands: argparse._SubParsersAction) -> None:
    from depthhints.config import add_config_arguments

    train = commands.add_parser(
        "train",
        help="train on one machine (CPU or CUDA); options keep the reference names",
        description="Options default to the reference's (SPEC §4.9); --config reads them from "
        "YAML and flags override it. For a synthetic tree pass --split <tree>/splits.",
    )
    train.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        help="continue from <log_dir>/<model_name>/models/state.pt (or the given state file)",
    )
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    ray_group = train.add_argument_group("Ray Train (distributed data parallel)")
    ray_group.add_argument(
        "--workers", type=_positive_int, help="train on Ray with this many DDP workers"
    )
    ray_group.add_argument("--gpus", action="store_true", help="one GPU per worker (NCCL)")
    ray_group.add_argument(
        "--storage-path", help="checkpoints: a folder or URI (default <log_dir>/ray_results)"
    )
    ray_group.add_argument("--max-failures", type=int, default=2, help="worker-group restarts")
    ray_group.add_argument("--address", help="an existing Ray cluster (e.g. 'auto')")
    _add_tracking_arguments(train)
    add_config_arguments(train)
    train.set_defaults(func=cmd_train)
    _add_sweep_parser(commands)

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


def _add_tracking_arguments(parser: argparse.ArgumentParser) -> None:
    tracking = parser.add_argument_group("MLflow tracking")
    tracking.add_argument(
        "--tracking-uri",
        help="MLflow store or server (default: $MLFLOW_TRACKING_URI, else sqlite "
        "<log_dir>/mlflow.db)",
    )
    tracking.add_argument("--experiment", default="depth-hints", help="MLflow experiment name")
    tracking.add_argument("--no-tracking", action="store_true", help="do not log to MLflow")


def add_trial_arguments(parser: argparse.ArgumentParser, max_concurrent: int = 1) -> None:
    """The flags of every command that runs a Tune sweep: trials at once, Ray Train workers
    per trial, GPUs, the Ray cluster, resuming, and MLflow (see :func:`trial_options`)."""
    parser.add_argument(
        "--max-concurrent", type=_positive_int, default=max_concurrent, help="trials at once"
    )
    parser.add_argument(
        "--workers-per-trial", type=_positive_int, default=1, help="Ray Train workers per trial"
    )
    parser.add_argument("--gpus", action="store_true", help="one GPU per Train worker")
    parser.add_argument("--address", help="an existing Ray cluster (e.g. 'auto')")
    parser.add_argument(
        "--resume", action="store_true", help="continue an interrupted run (Tuner.restore)"
    )
    _add_tracking_arguments(parser)


def trial_options(args: argparse.Namespace, **sweep: Any):
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
    return options, _tracking_options(args)


def _add_sweep_parser(commands: argparse._SubParsersAction) -> None:
    from depthhints.config import add_config_arguments

    sweep = commands.add_parser(
        "sweep",
        help="a Ray Tune sweep of training options, each trial a Ray Train run",
        description="The training options (--config and flags) are the base every trial "
        "changes; --space NAME=V1,V2 adds a dimension: any training option, resolution "
        "(640x192), modality (S, MS, M) or hint_mode (a --hint-store name). Trials are MLflow "
        "child runs of the sweep's run.",
    )
    sweep.add_argument(
        "--space", action="append", required=True, help="NAME=VALUE[,VALUE...] (repeatable)"
    )
    sweep.add_argument("--name", default="sweep", help="the sweep's name (Tune and MLflow)")
    sweep.add_argument("--search", choices=["grid", "random"], default="grid")
    sweep.add_argument(
        "--num-samples", type=_positive_int, default=1, help="grid repeats / random trials"
    )
    sweep.add_argument("--asha", action="store_true", help="stop poor trials early (ASHA)")
    sweep.add_argument("--metric", help="default: eval/abs_rel with an eval split, else loss")
    sweep.add_argument(
        "--hint-store", action="append", help="MODE=FOLDER: the store of a hint_mode value"
    )
    sweep.add_argument("--max-failures", type=int, default=2, help="worker-group restarts")
    sweep.add_argument("--storage-path", help="Tune results (default <log_dir>/tune)")
    add_trial_arguments(sweep)
    add_config_arguments(sweep)
    sweep.set_defaults(func=cmd_sweep)


def cmd_predict(args: argparse.Namespace) -> int:
    from depthhints.predict import report, run_predict

    summary = run_predict(
        args.load_weights_folder,
        args.inputs,
        args.out,
        exts=args.ext.split(","),
        batch_size=args.batch_size,
        device=args.device,
        colormap=not args.no_colormap,
    )
    report(summary)
    return 0 if summary.ok else 1


def cmd_export(args: argparse.Namespace) -> int:
    from depthhints.export import export_depth_net, verify_export, write_metadata

    result = export_depth_net(args.load_weights_folder, args.out, args.format, args.opset)
    for fmt, path in result.files.items():
        print(f"{fmt:12s} {path}")
    meta = result.metadata
    print(
        f"input '{meta['input']['name']}' (batch, 3, {meta['height']}, {meta['width']}) RGB in "
        f"[0, 1]; output '{meta['output']['name']}' = scaled disparity; {meta['depth']}, "
        f"{meta['depth_unit']}"
    )
    if args.no_verify:
        return 0
    diffs = verify_export(args.out, args.load_weights_folder, args.verify_image)
    meta["verification"] = {
        "image": str(args.verify_image or "synthetic noise"),
        "batch": 2,
        "max_abs_diff_vs_pytorch": diffs,
    }
    write_metadata(args.out, meta)
    worst = max(diffs.values())
    print(
        "max abs difference vs PyTorch: "
        + ", ".join(f"{fmt} {diff:.2e}" for fmt, diff in diffs.items())
    )
    if worst > args.tolerance:
        print(
            f"depthhints: error: exported output differs from PyTorch by {worst:.2e} "
            f"(> {args.tolerance:g}); do not use this export",
            file=sys.stderr,
        )
        return 1
    return 0


def _add_predict_export_parsers(commands: argparse._SubParsersAction) -> None:
    predict = commands.add_parser(
        "predict",
        help="depth maps (.npy at the input size, coloured .png) for images with a weights folder",
    )
    predict.add_argument(
        "--load-weights-folder", required=True, help="folder with encoder.pth and depth.pth"
    )
    predict.add_argument(
        "inputs", nargs="+", help="image files, folders (non-recursive) or quoted globs"
    )
    predict.add_argument("--out", required=True, help="folder for <stem>_depth.npy/.png")
    predict.add_argument(
        "--ext",
        default="jpg,jpeg,png",
        help="comma-separated extensions searched in folders (default: %(default)s)",
    )
    predict.add_argument("--batch-size", type=_positive_int, default=8)
    predict.add_argument(
        "--device", choices=["cpu", "cuda"], help="default: cuda when available, else cpu"
    )
    predict.add_argument("--no-colormap", action="store_true", help="skip the coloured .png")
    predict.set_defaults(func=cmd_predict)

    export = commands.add_parser(
        "export", help="export the depth network to ONNX and TorchScript (+ export.json)"
    )
    export.add_argument(
        "--load-weights-folder", required=True, help="folder with encoder.pth and depth.pth"
    )
    export.add_argument("--out", required=True, help="folder for the exported files")
    export.add_argument(
        "--format", nargs="+", choices=["onnx", "torchscript"], default=["onnx", "torchscript"]
    )
    export.add_argument("--opset", type=int, default=17, help="ONNX opset, 11..20 (default 17)")
    export.add_argument(
        "--verify-image", help="image to compare exported and PyTorch outputs on (default: noise)"
    )
    export.add_argument("--no-verify", action="store_true", help="skip the comparison")
    export.add_argument(
        "--tolerance", type=float, default=1e-3, help="max abs disparity difference accepted"
    )
    export.set_defaults(func=cmd_export)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="depthhints", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    synth = commands.add_parser(
        "synth", help="write synthetic stereo drives in the KITTI raw layout"
    )
    synth.add_argument("--out", required=True, help="root of the KITTI-style tree to write")
    _add_dataset_arguments(synth, frames=100)
    synth.set_defaults(func=cmd_synth)

    hints = commands.add_parser(
        "hints", help="precompute fused SGM depth hints on a Ray actor pool (resumable)"
    )
    hints.add_argument("--data-path", required=True, help="KITTI raw root (or a synthetic tree)")
    hints.add_argument(
        "--split",
        default="eigen_full/all",
        help="split file, or <name>/<part> of the bundled lists (default: eigen_full/all)",
    )
    hints.add_argument("--out", help="hint store (default: <data-path>/depth_hints)")
    hints.add_argument("--format", choices=["npy", "parquet"], default="npy")
    hints.add_argument(
        "--precision",
        choices=["exact", "float16"],
        default="exact",
        help="Parquet only: exact (read back bit for bit; default) or float16 (lossy; the "
        "layout of Parquet stores written before exact storage, to add to one)",
    )
    hints.add_argument("--height", type=_positive_int, default=320)
    hints.add_argument("--width", type=_positive_int, default=1024)
    hints.add_argument(
        "--matchers",
        choices=["parity", "fast", "quality", "single"],
        default="parity",
        help="SGM candidates: as published, the 2 wide-range ones (fast), 8-path (quality), or "
        "one (single: blockSize 3, 128 disparities, the single-SGM ablation's hint source)",
    )
    hints.add_argument("--fusion", choices=["parity", "masked"], default="parity")
    hints.add_argument(
        "--no-align-corners",
        action="store_true",
        help="sample as the published code does on PyTorch >= 1.3 (default: as the authors did)",
    )
    hints.add_argument("--workers", type=_positive_int, help="actors (default: one per CPU)")
    hints.add_argument("--address", help="join an existing Ray cluster (e.g. 'auto')")
    hints.set_defaults(func=cmd_hints)

    quality = commands.add_parser(
        "hints-quality",
        help="coverage, abs rel and d<1.25 of hint stores against dense GT or LiDAR",
    )
    quality.add_argument("stores", nargs="+", help="hint stores to evaluate (one row each)")
    quality.add_argument("--data-path", required=True, help="the KITTI raw root the hints are of")
    quality.add_argument(
        "--limit", type=_positive_int, help="evaluate this many images, evenly spread"
    )
    quality.add_argument("--json", help="also write the table as JSON to this file")
    quality.add_argument(
        "--tracking-uri",
        help="log one MLflow run per store (default $MLFLOW_TRACKING_URI; unset: no logging)",
    )
    quality.add_argument("--experiment", default="depth-hints", help="MLflow experiment")
    quality.set_defaults(func=cmd_hints_quality)

    demo = commands.add_parser("demo", help="run the pipeline on a small synthetic drive")
    demo.add_argument("--out", default="outputs/demo", help="output folder")
    _add_dataset_arguments(demo, frames=20)
    demo.add_argument("--epochs", type=_positive_int, default=3, help="training epochs")
    demo.add_argument(
        "--learning-rate",
        type=float,
        default=1e-3,
        help="10x the published 1e-4: the demo trains a few dozen steps, from scratch",
    )
    demo.add_argument(
        "--train-workers", type=_positive_int, default=2, help="Ray Train workers (DDP ranks)"
    )
    demo.set_defaults(func=cmd_demo)
    _add_train_parser(commands)
    _add_predict_export_parsers(commands)
    _add_evaluate_parsers(commands)
    from dashboards import report, ui

    ui.add_parser(commands)
    report.add_parser(commands)
    from depthhints import cluster_config  # imports Ray only when the command runs

    cluster_config.add_parser(commands)
    return parser


_EVAL_MODE_HINT = (
    "give exactly one of --eval-stereo (stereo-trained models: x5.4, no median scaling) or "
    "--eval-mono (per-image median scaling). The Depth Hints README's eval command uses "
    "--use_stereo, which is a training flag (README pitfall P-1)"
)


class _UseStereoAction(argparse.Action):
    """Turns the README's mistaken ``--use_stereo`` into a clear error (pitfall P-1)."""

    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(f"{option_string} is not an evaluation mode: {_EVAL_MODE_HINT}")


def _eval_device(name: str | None) -> str:
    import torch

    from depthhints.errors import ConfigError

    if name is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available here; use --device cpu")
    return name


def cmd_export_gt(args: argparse.Namespace) -> int:
    from depthhints.data.kitti import KittiRawLayout, load_split, read_split_file
    from depthhints.errors import MissingDataError
    from depthhints.evaluate import export_gt_depths

    root = Path(args.data_path)
    if not root.is_dir():
        raise MissingDataError(f"{root}: KITTI data root not found; check --data-path")
    items = read_split_file(args.split_file) if args.split_file else load_split(args.split, "test")
    out = Path(args.out) if args.out else root / f"gt_depths_{args.split}.npz"
    start = time.perf_counter()
    # Only LiDAR/GT files are read, so the image extension does not matter here.
    export_gt_depths(KittiRawLayout(root, image_ext=".png"), items, args.split, out, progress=True)
    print(
        f"wrote {len(items)} {args.split} ground-truth depth maps to {out} "
        f"in {time.perf_counter() - start:.1f} s"
    )
    return 0


def _check_counts(count: int, gt_depths: list | None, gt_path: Path | None, what: str) -> None:
    from depthhints.errors import ConfigError
    from depthhints.evaluate import COUNT_MISMATCH_HINT

    if gt_depths is not None and count != len(gt_depths):
        raise ConfigError(
            f"{count} {what} but {len(gt_depths)} ground-truth depth maps "
            f"in {gt_path}: {COUNT_MISMATCH_HINT}"
        )


def _eval_predictions(
    args: argparse.Namespace, gt_depths: list | None, gt_path: Path | None
) -> tuple[np.ndarray, str]:
    """The (N, H, W) scaled disparities to score, and where they came from."""
    from depthhints import evaluate as ev
    from depthhints.errors import ConfigError

    if args.ext_disp_to_eval:
        disps = ev.load_pred_disps(args.ext_disp_to_eval)
        print(
            f"-> loaded {len(disps)} disparities of {disps.shape[1:]} from {args.ext_disp_to_eval}"
        )
        if args.post_process:
            print(
                "-> note: --post-process needs the network; saved disparities are used as they are"
            )
        if args.eval_eigen_to_benchmark:
            disps = ev.eigen_to_benchmark(disps)
            print(f"-> re-indexed the Eigen predictions to {len(disps)} eigen_benchmark frames")
        return disps, str(args.ext_disp_to_eval)

    from depthhints.data.kitti import KittiRawLayout, load_split, read_split_file
    from depthhints.models.depth_net import load_depth_net

    if args.load_weights_folder is None:
        raise ConfigError(
            "give --load-weights-folder (a network to run) or --ext-disp-to-eval (saved "
            "disparities)"
        )
    if args.data_path is None:
        raise ConfigError("--data-path (the KITTI raw root holding the test images) is required")
    if args.num_workers < 0:
        raise ConfigError(f"--num-workers must be 0 or more, got {args.num_workers}")
    if args.eval_eigen_to_benchmark:
        raise ConfigError(
            "--eval-eigen-to-benchmark re-indexes saved 697-image Eigen predictions; use it with "
            "--ext-disp-to-eval, or run the network directly with --eval-split eigen_benchmark"
        )
    if args.split_file:
        items = read_split_file(args.split_file)
    else:
        items = load_split(args.eval_split, "test")
    split_name = args.split_file or f"the bundled {args.eval_split} test list"
    _check_counts(len(items), gt_depths, gt_path, f"test items in {split_name}")
    device = _eval_device(args.device)
    loaded = load_depth_net(args.load_weights_folder, device=device)
    if loaded.use_stereo and args.eval_mono:
        print(
            "-> note: this model was trained with stereo; --eval-mono median-scales it and "
            "flatters it (monodepth2 #390), --eval-stereo gives the comparable numbers",
            file=sys.stderr,
        )
    if not loaded.use_stereo and args.eval_stereo:
        print(
            "-> note: this model was trained without stereo, so its depth is not metric; "
            "x5.4 is only meaningful for stereo-trained models",
            file=sys.stderr,
        )
    dataset = ev.EvalImageDataset(
        KittiRawLayout(args.data_path), items, loaded.height, loaded.width
    )
    print(
        f"-> predicting {len(dataset)} images at {loaded.width}x{loaded.height} with "
        f"ResNet{loaded.num_layers} on {device}"
        + (" with post-processing" if args.post_process else "")
    )
    disps = ev.predict_disparities(
        loaded.net,
        dataset,
        post_process=args.post_process,
        device=device,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
    )
    return disps, str(args.load_weights_folder)


def cmd_evaluate(args: argparse.Namespace) -> int:
    import json

    from depthhints import evaluate as ev
    from depthhints.errors import ConfigError

    split = args.eval_split
    gt_path, gt_depths = None, None
    if not args.no_eval and split != "benchmark":  # read the GT first: fail before predicting
        if args.gt:
            gt_path = Path(args.gt)
        elif args.data_path:
            gt_path = Path(args.data_path) / f"gt_depths_{split}.npz"
        else:
            raise ConfigError(
                "give --gt FILE (from `depthhints export-gt`) or --data-path with "
                f"<data-path>/gt_depths_{split}.npz"
            )
        gt_depths = ev.load_gt_depths(gt_path)
    disps, source = _eval_predictions(args, gt_depths, gt_path)
    _check_counts(len(disps), gt_depths, gt_path, f"predictions ({source})")  # before any write
    weights = Path(args.load_weights_folder) if args.load_weights_folder else None

    if args.save_pred_disps is not None:
        if args.save_pred_disps:
            path = Path(args.save_pred_disps)
        elif weights is not None:
            path = weights / f"disps_{split}_split.npy"
        else:
            raise ConfigError("--save-pred-disps needs a file name when no weights folder is given")
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, disps)
        print(f"-> saved {len(disps)} predicted disparities to {path}")
    if args.no_eval:
        print("-> evaluation disabled (--no-eval)")
        return 0

    if split == "benchmark":
        if args.benchmark_out:
            out_dir = Path(args.benchmark_out)
        elif weights is not None:
            out_dir = weights / "benchmark_predictions"
        else:
            out_dir = Path(args.ext_disp_to_eval).parent / "benchmark_predictions"
        factor = args.pred_depth_scale_factor or ev.STEREO_SCALE_FACTOR
        written = ev.export_benchmark_pngs(disps, out_dir, scale_factor=factor)
        print(
            f"-> wrote {len(written)} KITTI benchmark PNGs (depth = {factor:g} / disparity) to "
            f"{out_dir}; the benchmark has no local ground truth, so no metrics"
        )
        return 0

    result = ev.evaluate_predictions(
        disps,
        gt_depths,
        split,
        stereo=args.eval_stereo,
        median_scaling=False if args.disable_median_scaling else None,
        pred_depth_scale_factor=args.pred_depth_scale_factor,
    )
    mode = "stereo" if args.eval_stereo else "mono"
    scaling = "per-image median scaling" if result.median_scaling else "no median scaling"
    print(
        f"-> {mode} evaluation of {result.num_images} images on {split} ({gt_path}): "
        f"depth x {result.scale_factor:g}, {scaling}"
    )
    print(result.format())
    if args.json:
        payload = {
            "mode": mode,
            "predictions": source,
            "post_process": bool(args.post_process and not args.ext_disp_to_eval),
            "gt": str(gt_path),
            **result.as_dict(),
        }
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")
        print(f"-> metrics written to {args.json}")
    return 0


def _add_evaluate_parsers(commands: argparse._SubParsersAction) -> None:
    export_gt = commands.add_parser(
        "export-gt", help="write the ground-truth depth maps of a test split to an .npz"
    )
    export_gt.add_argument(
        "--data-path", required=True, help="KITTI raw root (or a synthetic tree)"
    )
    export_gt.add_argument(
        "--split",
        choices=["eigen", "eigen_benchmark", "dense"],
        required=True,
        help="eigen: projected Velodyne scans (LiDAR-x depth, as published); eigen_benchmark: "
        "KITTI's annotated depth maps under proj_depth/groundtruth; dense: the same maps, for "
        "synthetic drives (no bundled list: give --split-file)",
    )
    export_gt.add_argument(
        "--split-file",
        help="split list to export (default: the bundled <split>/test_files.txt; for a synthetic "
        "tree use <data-path>/splits/test_files.txt)",
    )
    export_gt.add_argument("--out", help="output .npz (default: <data-path>/gt_depths_<split>.npz)")
    export_gt.set_defaults(func=cmd_export_gt)

    evaluate = commands.add_parser(
        "evaluate",
        help="depth metrics (abs rel ... a3) of a weights folder or saved disparities on KITTI",
    )
    plain_error = evaluate.error

    def error(message: str) -> None:
        if "--eval-stereo" in message and "P-1" not in message:
            message = f"{message}; {_EVAL_MODE_HINT}"
        plain_error(message)

    evaluate.error = error  # type: ignore[method-assign]
    mode = evaluate.add_mutually_exclusive_group(required=True)
    mode.add_argument(
        "--eval-stereo",
        action="store_true",
        help="stereo-trained model: depth x 5.4, no median scaling",
    )
    mode.add_argument("--eval-mono", action="store_true", help="per-image median scaling")
    evaluate.add_argument(
        "--use-stereo", "--use_stereo", nargs=0, action=_UseStereoAction, help=argparse.SUPPRESS
    )
    evaluate.add_argument(
        "--load-weights-folder", metavar="DIR", help="folder with encoder.pth and depth.pth"
    )
    evaluate.add_argument(
        "--data-path",
        metavar="ROOT",
        help="KITTI raw root (test images; default place of the GT file)",
    )
    evaluate.add_argument(
        "--eval-split",
        choices=["eigen", "eigen_benchmark", "dense", "benchmark"],
        default="eigen",
        help="eigen: LiDAR GT with crop and 80 m cap (default); eigen_benchmark: improved GT; "
        "dense: dense (synthetic) GT with 80 m cap, no crop, needs --split-file to predict; "
        "benchmark: write KITTI submission PNGs, no metrics",
    )
    evaluate.add_argument(
        "--split-file",
        metavar="FILE",
        help="test list to predict (default: the bundled <eval-split>/test_files.txt)",
    )
    evaluate.add_argument(
        "--gt", metavar="FILE", help="GT .npz (default: <data-path>/gt_depths_<eval-split>.npz)"
    )
    evaluate.add_argument(
        "--post-process", action="store_true", help="blend in the flipped image's prediction (P-2)"
    )
    evaluate.add_argument(
        "--ext-disp-to-eval", metavar="NPY", help="score saved (N, H, W) disparities (.npy)"
    )
    evaluate.add_argument(
        "--eval-eigen-to-benchmark",
        action="store_true",
        help="re-index 697 saved Eigen predictions to the 652 eigen_benchmark frames",
    )
    evaluate.add_argument(
        "--save-pred-disps",
        nargs="?",
        const="",
        metavar="FILE",
        help="save the predictions (default FILE: <weights>/disps_<eval-split>_split.npy)",
    )
    evaluate.add_argument("--no-eval", action="store_true", help="stop after predicting/saving")
    evaluate.add_argument(
        "--disable-median-scaling", action="store_true", help="mono: score without median scaling"
    )
    evaluate.add_argument(
        "--pred-depth-scale-factor",
        type=float,
        metavar="X",
        help="multiply depths by X (default: 5.4 stereo, 1 mono; benchmark PNGs: 5.4 for "
        "every model as published, P-17)",
    )
    evaluate.add_argument(
        "--benchmark-out",
        metavar="DIR",
        help="folder for benchmark PNGs (default: <weights>/benchmark_predictions)",
    )
    evaluate.add_argument("--batch-size", type=_positive_int, default=16, metavar="N")
    evaluate.add_argument(
        "--num-workers", type=int, default=0, metavar="N", help="image loading processes"
    )
    evaluate.add_argument(
        "--device", choices=["cpu", "cuda"], help="default: cuda when available, else cpu"
    )
    evaluate.add_argument(
        "--json", metavar="FILE", help="also write the run and its metrics as JSON to FILE"
    )
    evaluate.set_defaults(func=cmd_evaluate)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except DepthHintsError as error:
        print(f"depthhints: error: {_redacted(error)}", file=sys.stderr)
        return 2
    except Exception as error:
        if not type(error).__module__.startswith("mlflow."):
            raise
        # "API request to http://user:password@host/... failed": masked, not in a traceback
        print(f"depthhints: MLflow error: {_redacted(error)}", file=sys.stderr)
        return 1


def _redacted(error: Exception) -> str:
    """The error's message with any password in a URI masked."""
    text = str(error)
    if "://" not in text or "@" not in text:
        return text  # nothing to mask: spare the import of MLflow
    from depthhints.tracking import redact_uri

    return redact_uri(text)


if __name__ == "__main__":
    sys.exit(main())
