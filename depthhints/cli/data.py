"""``depthhints synth`` and ``depthhints demo``: a synthetic KITTI-style tree, and the whole
pipeline on a small one (:mod:`depthhints.demo`)."""

from __future__ import annotations

import argparse
import os

from depthhints.cli.arguments import add_verbose_argument, from_args, positive_int


def register(commands: argparse._SubParsersAction) -> None:
    synth = commands.add_parser("synth", help="write synthetic stereo drives in the KITTI layout")
    synth.add_argument("--out", required=True, help="root of the KITTI-style tree to write")
    _add_dataset_arguments(synth, frames=100)
    synth.set_defaults(func=cmd_synth)

    demo = commands.add_parser("demo", help="run the pipeline on a small synthetic drive")
    add = demo.add_argument
    add("--out", default="outputs/demo", help="output folder")
    _add_dataset_arguments(demo, frames=20)
    add("--epochs", type=positive_int, default=3, help="training epochs")
    rate = "10x the published 1e-4: the demo trains a few dozen steps, from scratch"
    add("--learning-rate", type=float, default=1e-3, help=rate)
    add("--train-workers", type=positive_int, default=2, help="Ray Train workers (DDP ranks)")
    add_verbose_argument(demo)
    demo.set_defaults(func=cmd_demo)


def _add_dataset_arguments(parser: argparse.ArgumentParser, frames: int) -> None:
    """The options of :class:`depthhints.data.synthetic.DatasetConfig` (same names), and
    ``--workers``."""
    add = parser.add_argument
    add("--drives", dest="num_drives", metavar="N", type=positive_int, default=1, help="drives")
    add(
        "--frames",
        dest="frames_per_drive",
        metavar="N",
        type=positive_int,
        default=frames,
        help="frames per drive",
    )
    add("--seed", type=int, default=0, help="seed of the scenes (drive i uses seed*1000+i)")
    add("--width", type=positive_int, default=1242, help="image width in pixels")
    add("--height", type=positive_int, default=375, help="image height in pixels")
    ext = "KITTI raw ships PNG; the published hint precompute reads JPEG"
    add("--image-ext", choices=[".png", ".jpg"], default=".png", help=ext)
    workers = "processes rendering frames in parallel (default: %(default)s, one per core here)"
    add("--workers", type=positive_int, default=os.cpu_count() or 1, help=workers)


def cmd_synth(args: argparse.Namespace) -> int:
    from depthhints.data.synthetic import DatasetConfig
    from depthhints.demo import synthesize
    from depthhints.paths import writable_folder

    synthesize(writable_folder(args.out, "--out"), from_args(DatasetConfig, args), args.workers)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from dashboards.report import build_report
    from depthhints.data.synthetic import DatasetConfig
    from depthhints.demo import run_demo, tracking_uri
    from depthhints.paths import writable_folder

    out = writable_folder(args.out, "--out")
    files = run_demo(
        out,
        from_args(DatasetConfig, args),
        workers=args.workers,
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        train_workers=args.train_workers,
        verbose=args.verbose,
    )
    if files is None:
        return 1
    print(files["table_md"].read_text())
    report = build_report(out / "report.html", tracking_uri(out))
    print(f"table: {files['table_md']} (.csv, .json); MLflow: {out / 'runs' / 'mlflow.db'}")
    print(f"report (open in a browser): {report}; MLflow UI: make ui")
    return 0
