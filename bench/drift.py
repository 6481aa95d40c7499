"""What the speed options do to what training learns: one recipe trained once per option, each
run scored on a held-out synthetic drive and compared with fp32.

Goal: over 500 steps on a synthetic drive, the final training loss and the depth error (abs rel)
of every option stay within 1 % of fp32.

The data are three synthetic drives (train, val, and a held-out test drive) with depth hints made
from the dense ground truth. Every run is a fresh :func:`depthhints.train.loop.fit` with the same
seed, so the same initial weights and the same data order and augmentation; only the option
differs. Scoring runs the final weights in fp32 on the test drive (protocol ``dense``).

Imports only the core and its packages (torch, numpy, OpenCV, PIL, pyarrow, PyYAML, tqdm): no
Ray, no MLflow, so a bare GPU machine can run it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench.fixtures import hints_from_ground_truth, split_items
from depthhints.config import TrainConfig
from depthhints.data import synthetic as syn
from depthhints.data.kitti import KittiRawLayout, read_split_file
from depthhints.evaluate import (
    EvalImageDataset,
    evaluate_predictions,
    gt_depth_maps,
    predict_disparities,
)
from depthhints.models import load_depth_net
from depthhints.train.data import steps_per_epoch
from depthhints.train.loop import fit, select_device
from depthhints.train.reporting import TrackingOptions

DRIFT_VARIANTS: dict[str, dict[str, Any]] = {
    "fp32": {},
    "bf16": {"precision": "bf16"},
    "channels_last": {"channels_last": True},
    "fp32, another seed": {"seed": 1},
}
"""Config overrides per variant; ``fp32`` (no override) is the published computation, and
``fp32, another seed`` (other initial weights, data order and augmentation) shows how far two
equally valid fp32 runs land apart: the yardstick for the others."""

DATA_SEED = 7
HINT_MAX_SIZE = (320, 1024)
"""(height, width) of the hint store: KITTI's 1024×320, or the native size where smaller."""
FINAL_WINDOW = 50
GOAL = 0.01
DRIFT_HEADER = [
    "variant",
    "final loss",
    "abs rel",
    "δ<1.25",
    "final loss vs fp32",
    "abs rel vs fp32",
    "within 1 %",
]


def prepare(root: Path, width: int, height: int, frames: int, workers: int) -> dict[str, Path]:
    """Three synthetic drives at ``width``×``height`` (train, val, held-out test) and hints from
    the dense ground truth of the train and val items.

    Returns ``data_path``, ``split`` (the folder with train_files.txt and val_files.txt),
    ``test_split`` (the test drive's split file) and ``hint_path`` (the npy store, at 1024×320
    or the native size where that is smaller).
    """
    root = Path(root)
    dataset = syn.DatasetConfig(
        num_drives=3,
        frames_per_drive=frames,
        width=width,
        height=height,
        seed=DATA_SEED,
        image_ext=".jpg",
    )
    splits = syn.generate_dataset(root, dataset, workers=workers)
    hint_height, hint_width = min(HINT_MAX_SIZE[0], height), min(HINT_MAX_SIZE[1], width)
    hint_path = root / "depth_hints"
    items = split_items(splits, "train", "val")
    hints_from_ground_truth(root, items, hint_path, hint_height, hint_width)
    return {
        "data_path": root,
        "split": splits["train"].parent,
        "test_split": splits["test"],
        "hint_path": hint_path,
    }


def base_config(
    data: dict[str, Path],
    device: str,
    num_layers: int,
    height: int,
    width: int,
    batch_size: int,
    steps: int,
    log_dir: Path,
) -> TrainConfig:
    """The paper's stereo + hints recipe (frames 0 and s, no smoothness term) from scratch, with
    as many epochs as make about ``steps`` steps, at a constant learning rate of 1e-4 (the
    scheduler's first decay falls after the last epoch), logging and saving only when needed."""
    train_items = len(read_split_file(Path(data["split"]) / "train_files.txt"))
    per_epoch = steps_per_epoch(train_items, batch_size)
    if per_epoch < 1:
        raise ValueError(f"{train_items} training items make no batch of {batch_size}")
    num_epochs = max(1, round(steps / per_epoch))
    return TrainConfig(
        data_path=str(data["data_path"]),
        split=str(data["split"]),
        depth_hint_path=str(data["hint_path"]),
        log_dir=str(log_dir),
        model_name="drift",
        num_layers=num_layers,
        height=height,
        width=width,
        use_stereo=True,
        frame_ids=[0],
        use_depth_hints=True,
        disparity_smoothness=0.0,
        batch_size=batch_size,
        learning_rate=1e-4,
        num_epochs=num_epochs,
        scheduler_step_size=num_epochs + 1,
        weights_init="scratch",
        seed=0,
        device=device,
        log_frequency=1_000_000,
        save_frequency=num_epochs,
    )


def final_loss(losses: list[float]) -> float:
    """Mean of the last 50 losses, or of the last 10 % of them when there are under 500."""
    window = max(1, min(FINAL_WINDOW, len(losses) // 10))
    tail = losses[-window:]
    return sum(tail) / len(tail)


def train_and_score(config: TrainConfig, test_split: Path) -> dict[str, float]:
    """Train ``config`` in this process (tracking off) and score its final weights in fp32 on
    ``test_split`` with the ``dense`` protocol (stereo scaling when ``config.use_stereo``).

    ``seconds`` is the wall time of ``fit``; ``images_per_second`` counts the images after the
    first step over the time from the end of that step to the end of ``fit`` (data loading, the
    per-epoch checkpoints and the final weights included; start-up, first-call kernel set-up and
    compilation mostly not).
    """
    first_step_done: list[float] = []

    def note_first_step(phase: str, metrics: dict[str, float], step: int) -> None:
        if phase == "train" and not first_step_done:  # the loop logs step 0 first
            first_step_done.append(time.perf_counter())

    start = time.perf_counter()
    result = fit(
        config, hooks=[note_first_step], progress=False, tracking=TrackingOptions(enabled=False)
    )
    end = time.perf_counter()
    losses = [float(entry["loss"]) for entry in result.history]

    device = select_device(config.device)
    loaded = load_depth_net(result.weights[-1], config.num_layers, device)
    loaded.net.min_depth, loaded.net.max_depth = config.min_depth, config.max_depth
    layout = KittiRawLayout(config.data_path)
    items = read_split_file(test_split)
    disparities = predict_disparities(
        loaded.net,
        EvalImageDataset(layout, items, config.height, config.width),
        device=device,
        batch_size=config.batch_size,
    )
    scores = evaluate_predictions(
        disparities, gt_depth_maps(layout, items, "dense"), "dense", stereo=config.use_stereo
    ).metrics
    return {
        "steps": len(losses),
        "seconds": end - start,
        "final_loss": final_loss(losses),
        "last_loss": losses[-1],
        "abs_rel": scores["abs_rel"],
        "delta1": scores["a1"],
        "images_per_second": (len(losses) - 1) * config.batch_size / (end - first_step_done[0]),
    }


def relative(value: float, reference: float) -> float:
    """(value − reference) / |reference|."""
    return (value - reference) / abs(reference)


def drift_rows(
    results: dict[str, dict[str, float]], baseline: str = "fp32", goal: float = GOAL
) -> list[list]:
    """Table rows (:data:`DRIFT_HEADER`): per variant its final loss, abs rel, δ<1.25, the
    relative differences of final loss and abs rel to ``baseline``, and ✓ when both are within
    ``goal`` (✗ otherwise; "—" for the baseline itself)."""
    reference = results[baseline]
    rows = []
    for name, r in results.items():
        row = [name, f"{r['final_loss']:.5f}", f"{r['abs_rel']:.4f}", f"{r['delta1']:.4f}"]
        if name == baseline:
            rows.append([*row, "—", "—", "—"])
            continue
        loss_diff = relative(r["final_loss"], reference["final_loss"])
        abs_rel_diff = relative(r["abs_rel"], reference["abs_rel"])
        within = abs(loss_diff) <= goal and abs(abs_rel_diff) <= goal
        rows.append(
            [
                *row,
                f"{100 * loss_diff:+.2f} %",
                f"{100 * abs_rel_diff:+.2f} %",
                "✓" if within else "✗",
            ]
        )
    return rows
