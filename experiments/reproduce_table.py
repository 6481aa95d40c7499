"""Reproduce the Depth Hints KITTI table: train the rows on Ray Tune, evaluate, compare.

    python experiments/reproduce_table.py --preset smoke            # CI-sized, minutes, synthetic
    python experiments/reproduce_table.py --preset demo             # synthetic drive, small budget
    python experiments/reproduce_table.py --data-path /data/kitti --seeds 3 \
        --workers-per-trial 2 --gpus --max-concurrent 4 --weights-path ~/weights/resnet50.pth
    ray submit platform/cluster.yaml experiments/reproduce_table.py --data-path ... --address auto

Writes <out>/table/table.{md,csv,json} (ours as mean ± std over seeds beside the paper's numbers,
with the differences), prints the Markdown, and logs it all to MLflow (a parent run for the
table, a child run per trial). See depthhints/experiments/reproduce.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from depthhints.cli import resume_command
from depthhints.cli.arguments import add_trial_arguments, trial_options
from depthhints.errors import DepthHintsError, Stopped
from depthhints.experiments.reproduce import PAPER, PRESETS, reproduce
from depthhints.experiments.runner import report
from depthhints.tune import parse_overrides


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=list(PRESETS), default="kitti")
    parser.add_argument("--data-path", type=Path, help="the KITTI raw root (preset kitti)")
    parser.add_argument("--rows", nargs="+", choices=list(PAPER), help="default: the preset's")
    parser.add_argument("--seeds", type=int, help="runs per row, mean ± std (default: 1)")
    parser.add_argument(
        "--baselines",
        action="store_true",
        default=None,
        help="also each row without hints (default: the preset's choice)",
    )
    parser.add_argument("--out", type=Path, help="default: outputs/table_<preset>")
    parser.add_argument("--weights-path", help="ImageNet weights for the pretrained rows")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="OPTION=VALUE",
        help="a training option for every row (e.g. num_epochs=5)",
    )
    add_trial_arguments(parser, max_concurrent=2)
    args = parser.parse_args(argv)
    if args.seeds is not None and args.seeds < 1:
        parser.error("--seeds must be at least 1")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    options, tracking = trial_options(args)
    out = args.out or Path("outputs") / f"table_{args.preset}"
    try:
        overrides = parse_overrides(args.set)
        if args.weights_path:
            overrides["weights_path"] = args.weights_path
        outcome = reproduce(
            args.preset,
            out,
            data_path=args.data_path,
            rows=args.rows,
            seeds=args.seeds,
            baselines=args.baselines,
            options=options,
            tracking=tracking,
            resume=args.resume,
            overrides=overrides,
        )
    except DepthHintsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Stopped as stop:  # SIGINT or SIGTERM: the trials' checkpoints stay
        resume = resume_command(argv, args, ("python", "experiments/reproduce_table.py"))
        print(f"reproduce_table.py: {stop}; resume with: {resume}", file=sys.stderr)
        return stop.exit_code
    return report(outcome)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
