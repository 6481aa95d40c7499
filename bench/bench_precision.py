"""Speed options and what training learns, on CPU: fp32 (the baseline) against bf16 and
channels_last, each a fresh 500-step training with the same seed and data order.

ResNet18 at 320×96 (half the paper's 640×192, so that the three 500-step runs take about a
quarter of an hour on 2 cores), batch 4, on synthetic drives at 640×192 (twice the network size,
as KITTI's 1242×375 is about twice 640×192). Reports the final loss and the depth error on
the held-out drive per option (:func:`bench.drift.drift_rows`, goal: within 1 % of fp32) and
each option's images/s against fp32.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import torch

from bench.drift import (
    DRIFT_HEADER,
    DRIFT_VARIANTS,
    base_config,
    drift_rows,
    prepare,
    train_and_score,
)
from bench.report import table, write_section

NATIVE = (640, 192)  # (width, height) of the synthetic drives
HEIGHT, WIDTH = 96, 320
BATCH = 4
STEPS = 500
FRAMES = 102  # per drive: 200 training items, 50 steps per epoch, 10 epochs
THREADS = 2


def main() -> None:
    torch.set_num_threads(THREADS)
    start = time.perf_counter()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = prepare(Path(tmp) / "synthetic", *NATIVE, FRAMES, workers=THREADS)
        for name, overrides in DRIFT_VARIANTS.items():
            config = base_config(
                data, "cpu", 18, HEIGHT, WIDTH, BATCH, STEPS, Path(tmp) / "runs" / name
            ).replace(**overrides)
            results[name] = train_and_score(config, data["test_split"])
            print(name, json.dumps(results[name]), flush=True)
    minutes = (time.perf_counter() - start) / 60

    reference = results["fp32"]["images_per_second"]
    speed_rows = [
        [
            name,
            r["steps"],
            f"{r['seconds']:.0f}",
            f"{r['images_per_second']:.2f}",
            f"{r['images_per_second'] / reference:.2f}×",
        ]
        for name, r in results.items()
    ]
    steps = results["fp32"]["steps"]
    body = (
        "Command: `python -m bench precision` (run with `nice -n 10` on a shared machine). "
        f"ResNet18 from scratch at {WIDTH}×{HEIGHT}, batch {BATCH}, {steps} steps "
        f"({THREADS} threads), the paper's stereo + hints recipe (frames 0 and s, no smoothness "
        "term) at a constant learning rate of 1e-4, on three synthetic drives at "
        f"{NATIVE[0]}×{NATIVE[1]} (train, val, held-out test, {FRAMES} frames each; hints from "
        "the dense ground truth). Every variant is a fresh training with the same seed (the "
        "same initial weights, data order and augmentation; only the option differs), except "
        "`fp32, another seed`: how far two equally valid fp32 runs land apart. Goal: final "
        "loss and abs rel within 1 % of fp32. channels_last computes the same as fp32 in "
        "another summation order, so its difference is also numerical noise."
        "\n\n"
        + table(DRIFT_HEADER, drift_rows(results))
        + "\nFinal loss: the mean training loss (the published loss: photometric and hint "
        "terms, averaged over the 4 scales) of the last 50 steps. Depth error: the final weights "
        "run in fp32 on the held-out drive's left images, scored against its dense ground truth "
        "(`dense` protocol: 1e-3..80 m, no crop, the stereo scale 5.4): abs rel (lower is "
        "better) and δ<1.25 (the share of pixels within 25 % of the truth). Relative "
        "difference: (variant − fp32) / fp32. How to read it: two fp32 runs that differ only "
        "in their seed, or only in the order of their sums (channels_last), already land more "
        "than 1 % apart after 500 steps, so the 1 % goal is below this recipe's own spread; an "
        "option passes when it stays inside that spread. (With the disparity sigmoid in bf16, "
        "bf16 training stalled at sigmoid ≈ 0.5 and collapsed, abs rel 0.91: the decoder now "
        "computes it in fp32.)\n\n"
        + table(["variant", "steps", "fit seconds", "images/s", "vs fp32"], speed_rows)
        + "\nImages/s: the training images after the first step over the time from the end "
        "of that step to the end of `fit` (data loading, the per-epoch checkpoints and the "
        "final weights included; start-up and first-call kernel set-up not); fit seconds: the "
        "whole `fit`. The machine's 2 cores are shared with other work, so rates vary between "
        f"runs. Total run time {minutes:.0f} min."
    )
    write_section("precision", "Speed options and what training learns (CPU)", body)
    print(body)


if __name__ == "__main__":
    main()
