"""The ``depthhints`` command."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

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
