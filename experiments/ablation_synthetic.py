"""Do Depth Hints help? The controlled ablation on the fixed synthetic benchmark, one command.

    python experiments/ablation_synthetic.py                 # the benchmark: 5 variants × 3 seeds
    python experiments/ablation_synthetic.py --preset smoke  # CI-sized: 2 variants, 1 seed
    python experiments/ablation_synthetic.py --publish docs/results.md   # and update the docs
    ray submit platform/cluster.yaml experiments/ablation_synthetic.py --address auto \
        --max-concurrent 8 --gpus

Generates (or checks) the versioned benchmark drives, computes the hint stores the variants
need, trains every variant × seed as a Ray Tune trial (ResNet18 from scratch, stereo), scores
each on the held-out test drive (all pixels and thin structures) and writes
<out>/results/{table.md,table.csv,table.json,trials.json,learning_curves.png,error_maps.png},
also logged to MLflow (the sweep's run; each trial's evaluation runs).
See depthhints/experiments/ablation.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from depthhints.cli import resume_command
from depthhints.cli.arguments import add_trial_arguments, trial_options
from depthhints.errors import DepthHintsError, Stopped
from depthhints.experiments.ablation import PRESETS, VARIANTS, run_ablation
from depthhints.experiments.runner import report
from depthhints.tune import parse_overrides


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=list(PRESETS), default="benchmark")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), help="default: preset's")
    parser.add_argument("--seeds", type=int, help="runs per variant (default: the preset's)")
    parser.add_argument("--out", type=Path, help="default: outputs/ablation_<preset>")
    parser.add_argument("--data", type=Path, help="benchmark folder (default: under --out)")
    parser.add_argument("--publish", type=Path, help="Markdown to update (docs/results.md)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="OPTION=VALUE",
        help="a training option for every variant (a sensitivity run, e.g. learning_rate=3e-4)",
    )
    add_trial_arguments(parser, max_concurrent=2)
    args = parser.parse_args(argv)
    if args.seeds is not None and args.seeds < 1:
        parser.error("--seeds must be at least 1")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    options, tracking = trial_options(args)
    out = args.out or Path("outputs") / f"ablation_{args.preset}"
    try:
        overrides = parse_overrides(args.set)
        outcome = run_ablation(
            args.preset,
            out,
            data_root=args.data,
            variants=args.variants,
            seeds=args.seeds,
            options=options,
            tracking=tracking,
            resume=args.resume,
            publish=args.publish,
            overrides=overrides,
        )
    except DepthHintsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Stopped as stop:  # SIGINT or SIGTERM: the trials' checkpoints stay
        resume = resume_command(argv, args, ("python", "experiments/ablation_synthetic.py"))
        print(f"ablation_synthetic.py: {stop}; resume with: {resume}", file=sys.stderr)
        return stop.exit_code
    return report(outcome)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
