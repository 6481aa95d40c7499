"""Hint ablation on Ray Tune: the same recipe without hints and with each hint store, over seeds.

    python experiments/sweep_hints.py \
        --config depthhints/experiments/configs/S_R50_640x192_hints.yaml \
        --data_path /data/kitti --seeds 3 --hint-store parity=/data/kitti/depth_hints \
        --hint-store fast=/data/hints_fast --workers-per-trial 2 --gpus --max-concurrent 4

Every other option is `depthhints sweep`'s (and the training options). Without --hint-store the
config's own store (`depth_hint_path`, else `<data_path>/depth_hints`) is the `parity` one.
Trials are MLflow child runs of the sweep's run: compare them in the MLflow UI by the `hints`
(use_depth_hints, depth_hint_path) and `seed` params.
"""

from __future__ import annotations

import argparse
import sys

from depthhints.cli import main


def sweep_arguments(argv: list[str]) -> list[str]:
    """The `depthhints sweep` command line of an ablation: hints {off, stores...} × seeds."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--hint-store", action="append", default=[])
    parser.add_argument("--name", default="hint_ablation")
    parser.add_argument("--depth_hint_path")
    parser.add_argument("--data_path")
    known, rest = parser.parse_known_args(argv)
    if known.seeds < 1:
        sys.exit("--seeds must be at least 1")
    stores = list(known.hint_store)
    if not stores:
        default = known.depth_hint_path or (
            f"{known.data_path}/depth_hints" if known.data_path else None
        )
        stores = [f"parity={default}"] if default else []
    modes = ["off", *(store.partition("=")[0] for store in stores)]
    if len(modes) == 1:
        sys.exit("give --hint-store MODE=FOLDER (or --depth_hint_path / --data_path)")
    args = ["sweep", "--name", known.name, "--space", f"hints={','.join(modes)}"]
    args += ["--space", "seed=" + ",".join(str(seed) for seed in range(known.seeds))]
    for store in stores:
        args += ["--hint-store", store]
    for flag in ("depth_hint_path", "data_path"):
        if getattr(known, flag):
            args += [f"--{flag}", getattr(known, flag)]
    return args + rest


if __name__ == "__main__":
    sys.exit(main(sweep_arguments(sys.argv[1:])))
