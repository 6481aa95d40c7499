"""``depthhints hints`` (precompute fused SGM depth hints on Ray) and ``depthhints
hints-quality`` (their coverage, accuracy and cost, :mod:`depthhints.hint_report`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from depthhints.cli.arguments import add_verbose_argument, from_args, positive_int

MATCHERS = ("parity", "fast", "quality", "single")  # depthhints.hints.sgm.MATCHER_PRESETS


def register(commands: argparse._SubParsersAction) -> None:
    hints = commands.add_parser(
        "hints", help="precompute fused SGM depth hints on a Ray actor pool (resumable)"
    )
    add = hints.add_argument
    add("--data-path", required=True, help="KITTI raw root (or a synthetic tree)")
    split = (
        "the frames: a split file, a folder of <part>_files.txt lists (all of them), or a bundled "
        "split: <name> (all its lists) or <name>/<part>"
    )
    add("--split", default="eigen_full/all", help=split)
    add("--out", help="hint store (default: <data-path>/depth_hints)")
    layout = "npy: one file per image, the published layout; parquet: shards of row groups"
    add("--format", choices=["npy", "parquet"], default="npy", help=layout)
    precision = (
        "Parquet only: exact (read back bit for bit) or float16 (lossy; the layout of Parquet "
        "stores written before exact storage, to add to one)"
    )
    add("--precision", choices=["exact", "float16"], default="exact", help=precision)
    add("--height", type=positive_int, default=320, help="hint height in pixels")
    add("--width", type=positive_int, default=1024, help="hint width in pixels")
    matchers = (
        "SGM candidates: as published, the 2 wide-range ones (fast), 8-path (quality), or one "
        "(single: blockSize 3, 128 disparities, the single-SGM ablation's hint source)"
    )
    add("--matchers", choices=MATCHERS, default="parity", help=matchers)
    fusion = (
        "parity: invalid candidates compete, as published; masked: they are dropped "
        "(docs/method.md#quirk-invalid-fused-hints)"
    )
    add("--fusion", choices=["parity", "masked"], default="parity", help=fusion)
    align = "sample as the published code does on PyTorch >= 1.3 (default: as the authors did)"
    add("--no-align-corners", dest="align_corners", action="store_false", help=align)
    add("--workers", type=positive_int, help="actors (default: one per CPU)")
    add("--address", help="join an existing Ray cluster (e.g. 'auto')")
    add_verbose_argument(hints)  # quiet: Ray's output in <out>.ray.log, beside the store
    hints.set_defaults(func=cmd_hints)
    _add_quality(commands)


def _add_quality(commands: argparse._SubParsersAction) -> None:
    quality = commands.add_parser(
        "hints-quality",
        help="coverage, abs rel and d<1.25 of hint stores against dense GT or LiDAR",
    )
    add = quality.add_argument
    add("stores", nargs="+", help="hint stores to evaluate (one row each)")
    add("--data-path", required=True, help="the KITTI raw root the hints are of")
    add("--limit", type=positive_int, help="evaluate this many images, evenly spread")
    add("--json", help="also write the table as JSON to this file")
    uri = "log one MLflow run per store (default $MLFLOW_TRACKING_URI; unset: no logging)"
    add("--tracking-uri", help=uri)
    add("--experiment", default="depth-hints", help="MLflow experiment")
    quality.set_defaults(func=cmd_hints_quality)


def cmd_hints(args: argparse.Namespace) -> int:
    from depthhints.data.kitti import read_split
    from depthhints.hint_report import print_summary
    from depthhints.paths import writable_folder
    from hints_worker.actors import HintConfig, precompute_hints

    items = read_split(args.split)
    out = Path(args.out or Path(args.data_path) / "depth_hints")
    if not out.exists():  # an existing store reports its own write errors, with what it holds
        writable_folder(out, "--out")
    summary = precompute_hints(
        items,
        args.data_path,
        out,
        from_args(HintConfig, args),  # --height, --width, --matchers, --fusion, --no-align-corners
        args.format,
        workers=args.workers,
        address=args.address,
        precision=args.precision,
        verbose=args.verbose,
    )
    return 0 if print_summary(summary) else 1


def cmd_hints_quality(args: argparse.Namespace) -> int:
    import json

    from depthhints.hint_report import print_quality
    from depthhints.paths import writable_file
    from depthhints.tracking import check_store_uri

    tracking_uri = check_store_uri(args.tracking_uri)
    if args.json:
        writable_file(args.json, "--json")
    rows = print_quality(args.stores, args.data_path, args.limit, tracking_uri, args.experiment)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0
