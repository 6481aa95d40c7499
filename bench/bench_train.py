"""Training throughput on CPU: step rate, peak memory, and whether data loading keeps up.

For ResNet18 and ResNet50 at 640×192, batch 4, stereo training (frames 0 and 's') with and
without depth hints, each configuration in a fresh process (so peak RSS is its own):

1. compute: images/s of ``train_step`` on batches already in memory;
2. loading: images/s of the training DataLoader with the default worker count, ours (no LiDAR)
   against the baseline, the reference's loader, which projects the LiDAR scan of every sample
   for monitoring metrics (docs/method.md#quirk-training-ground-truth) — measured in the same run;
3. the share of wall time a real loop (loader workers running beside the step) spends waiting
   for the next batch.

Goal: the loader delivers ≥ 3× the step rate with the default workers.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench.fixtures import hints_from_ground_truth, split_items
from bench.report import table, write_section
from depthhints.config import TrainConfig
from depthhints.data import synthetic as syn
from depthhints.data.hint_store import NpyHintStore
from depthhints.data.kitti import read_split_file
from depthhints.train.data import build_dataset, epoch_order, make_loader
from depthhints.train.model import build_model
from depthhints.train.step import batch_to_device, train_step

BATCH = 4
TIMED_STEPS = 3
LOADER_BATCHES = 6
LOOP_STEPS = 4
GOAL = 3.0
CONFIGS = [(18, False), (18, True), (50, False), (50, True)]


def _prepare(root: Path) -> None:
    """A synthetic drive at KITTI size, and hints from its dense GT (speed is what matters)."""
    splits = syn.generate_dataset(root, syn.DatasetConfig(frames_per_drive=24, seed=2), workers=2)
    hints_from_ground_truth(root, split_items(splits, "train"), root / "depth_hints")


def _config(root: Path, num_layers: int, hints: bool, load_gt: bool = False) -> TrainConfig:
    return TrainConfig(
        data_path=str(root),
        split=str(root / "splits"),
        num_layers=num_layers,
        use_stereo=True,
        frame_ids=[0],
        use_depth_hints=hints,
        disparity_smoothness=0.0 if hints else 1e-3,
        batch_size=BATCH,
        weights_init="scratch",
        device="cpu",
        load_gt=load_gt,
    )


def _loader_rate(config: TrainConfig) -> float:
    items = read_split_file(Path(config.split) / "train_files.txt")
    store = NpyHintStore(config.hint_path) if config.use_depth_hints else None
    dataset = build_dataset(config, items, True, store)
    loader = make_loader(dataset, epoch_order(len(dataset), 0, 0), BATCH, config.num_workers)
    batches = iter(loader)
    next(batches)  # worker start-up
    start = time.perf_counter()
    for _ in range(LOADER_BATCHES):
        next(batches)
    return LOADER_BATCHES * BATCH / (time.perf_counter() - start)


def measure(root: Path, num_layers: int, hints: bool) -> dict:
    """One configuration (run in its own process)."""
    config = _config(root, num_layers, hints)
    torch.manual_seed(0)
    model = build_model(config)
    optimizer = torch.optim.Adam(model.parameters(), config.learning_rate)
    items = read_split_file(root / "splits" / "train_files.txt")
    store = NpyHintStore(config.hint_path) if hints else None
    dataset = build_dataset(config, items, True, store)
    order = epoch_order(len(dataset), 0, 0)
    batch = next(iter(make_loader(dataset, order, BATCH, 0)))
    train_step(model, optimizer, batch_to_device(batch, "cpu"), config)  # warm-up
    start = time.perf_counter()
    for _ in range(TIMED_STEPS):
        train_step(model, optimizer, batch_to_device(batch, "cpu"), config)
    step_rate = TIMED_STEPS * BATCH / (time.perf_counter() - start)

    batches = iter(make_loader(dataset, order, BATCH, config.num_workers))
    train_step(model, optimizer, batch_to_device(next(batches), "cpu"), config)  # start-up
    waited, start = 0.0, time.perf_counter()
    for _ in range(LOOP_STEPS):
        t = time.perf_counter()
        batch = next(batches)
        waited += time.perf_counter() - t
        train_step(model, optimizer, batch_to_device(batch, "cpu"), config)
    loop_seconds = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "step_rate": step_rate,
        "peak_mib": peak_mib,
        "wait_share": waited / loop_seconds,
        "loader_rate": _loader_rate(config),
        "loader_rate_baseline": _loader_rate(_config(root, num_layers, hints, load_gt=True)),
        "workers": config.num_workers,
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "kitti"
        _prepare(root)
        results = {}
        for num_layers, hints in CONFIGS:
            out = subprocess.run(
                [sys.executable, "-m", "bench.bench_train", str(root), str(num_layers), str(hints)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            results[(num_layers, hints)] = json.loads(out.strip().splitlines()[-1])
            print(num_layers, hints, results[(num_layers, hints)])
    rows = []
    for (num_layers, hints), r in results.items():
        ratio = r["loader_rate"] / r["step_rate"]
        rows.append(
            [
                f"ResNet{num_layers}",
                "yes" if hints else "no",
                f"{r['step_rate']:.2f}",
                f"{r['peak_mib']:.0f}",
                f"{r['loader_rate_baseline']:.1f}",
                f"{r['loader_rate']:.1f}",
                f"{r['loader_rate'] / r['loader_rate_baseline']:.2f}×",
                f"{ratio:.1f}× {'✓' if ratio >= GOAL else '✗'}",
                f"{100 * r['wait_share']:.0f}%",
            ]
        )
    workers = next(iter(results.values()))["workers"]
    body = (
        "Command: `python -m bench train`. Stereo training (frames 0, s) at 640×192, batch "
        f"{BATCH}, on a synthetic drive at 1242×375; each configuration in its own process. "
        f"Loader: {workers} workers (the default `num_workers`). Baseline loader: the "
        "reference's, which projects every sample's LiDAR scan for monitoring metrics "
        "(`load_gt=True`); ours skips it unless asked. Goal: loader ≥ 3× the step rate.\n\n"
        + table(
            [
                "encoder",
                "hints",
                "train images/s",
                "peak RSS MiB",
                "loader images/s, baseline",
                "loader images/s, ours",
                "ratio",
                "loader / step",
                "time waiting for data",
            ],
            rows,
        )
        + f"\nTime waiting for data: share of {LOOP_STEPS} steps of a real loop (loader workers "
        "running beside the step on the same cores) spent in `next(loader)`, after start-up."
    )
    write_section("train", "Training throughput (CPU)", body)
    print(body)


if __name__ == "__main__":
    if len(sys.argv) == 4:
        root, layers, hints = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "True"
        torch.set_num_threads(2)
        print(json.dumps(measure(root, layers, hints)))
    else:
        main()
