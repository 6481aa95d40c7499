"""The ``depthhints`` command."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

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
    from depthhints.visualize import stereo_preview

    args.out = Path(args.out) / "kitti_synthetic"
    root, splits = _synthesize(args)
    layout = KittiRawLayout(root)
    item = read_split_file(splits["test"])[0]
    picture = stereo_preview(layout, item.folder, item.frame, root.parent / "stereo_preview.png")
    print(f"picture of a stereo pair with its ground-truth depth and LiDAR: {picture}")

    from hints_worker.actors import precompute_hints

    items = [item for path in splits.values() for item in read_split_file(path)]
    summary = precompute_hints(items, root, root / "depth_hints", workers=args.workers)
    print(
        f"fused SGM depth hints (Ray actor pool, {args.workers} workers): {summary.written} "
        f"written, {summary.skipped} already there, {len(summary.failures)} failed -> "
        f"{summary.store}"
    )
    return 0 if summary.ok else 1


def _read_items(split: str) -> list:
    """A split given as a file path or as '<name>/<part>' of the bundled lists."""
    from depthhints.data.kitti import load_split, read_split_file

    if Path(split).is_file():
        return read_split_file(split)
    name, _, part = split.partition("/")
    return load_split(name, part or "all")


def cmd_hints(args: argparse.Namespace) -> int:
    from hints_worker.actors import FAILURES_FILE, HintConfig, precompute_hints, ray_session

    config = HintConfig(
        height=args.height,
        width=args.width,
        matchers=args.matchers,
        fusion=args.fusion,
        align_corners=not args.no_align_corners,
    )
    items = _read_items(args.split)
    out = args.out or Path(args.data_path) / "depth_hints"
    with ray_session(args.address):
        summary = precompute_hints(
            items, args.data_path, out, config, args.format, workers=args.workers
        )
    print(
        f"{summary.written} hints written, {summary.skipped} already in {summary.store}, "
        f"{len(summary.failures)} failed ({summary.images_per_second:.2f} images/s after "
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
    from hints_worker.quality import evaluate_store
    from hints_worker.store import open_store

    layout = KittiRawLayout(args.data_path)
    report = []
    print(
        f"{'store':40s} {'matchers':>8s} {'fusion':>7s} {'images':>6s} "
        f"{'coverage':>8s} {'abs rel':>8s} {'d<1.25':>7s}"
    )
    for root in args.stores:
        store = open_store(root)
        keys = sorted(store.keys())
        if args.limit and len(keys) > args.limit:
            keys = [keys[i] for i in np.linspace(0, len(keys) - 1, args.limit).astype(int)]
        quality = evaluate_store(store, layout, keys)
        config = store.manifest.config if store.manifest else {}
        matchers, fusion = config.get("matchers", "?"), config.get("fusion", "?")
        report.append(
            {"store": str(root), "matchers": matchers, "fusion": fusion, **quality.as_dict()}
        )
        print(
            f"{str(root)[-40:]:40s} {matchers:>8s} {fusion:>7s} {quality.images:6d} "
            f"{quality.coverage:8.3f} {quality.abs_rel:8.4f} {quality.delta1:7.3f}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


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
    hints.add_argument("--height", type=_positive_int, default=320)
    hints.add_argument("--width", type=_positive_int, default=1024)
    hints.add_argument(
        "--matchers",
        choices=["parity", "fast", "quality"],
        default="parity",
        help="SGM candidates: as published, the 2 wide-range ones (fast), or 8-path (quality)",
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
    quality.set_defaults(func=cmd_hints_quality)

    demo = commands.add_parser("demo", help="run the pipeline on a small synthetic drive")
    demo.add_argument("--out", default="outputs/demo", help="output folder")
    _add_dataset_arguments(demo, frames=20)
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except DepthHintsError as error:
        print(f"depthhints: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
