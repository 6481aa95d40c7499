"""How good are the hints? Coverage, abs rel and δ < 1.25 against ground truth.

Hints are depths in network units (stereo baseline 0.1); × ``STEREO_SCALE`` (5.4, for KITTI's
0.54 m baseline) gives metres. A hint is resized to the ground truth's size by nearest neighbour
(so "no hint" stays 0) and compared where the ground truth is valid (``MIN_DEPTH``–``MAX_DEPTH``):

- coverage: the share of valid ground-truth pixels that have a hint;
- abs rel and δ < 1.25: over the pixels that have both (hint depths clipped to the valid range,
  as in the KITTI evaluation).

The ground truth of an image is its dense ``proj_depth/groundtruth`` PNG when present (the
synthetic drives, KITTI's annotated depth), else its Velodyne scan projected into that camera
(with the pixel convention corrected, see ``velodyne_to_depth_map``). Metrics are averaged over
images, as in the KITTI evaluation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

from depthhints.data.hint_store import HintKey, HintStore
from depthhints.data.kitti import (
    KittiRawLayout,
    load_depth_png,
    load_image,
    load_velodyne,
    velodyne_to_depth_map,
)
from depthhints.errors import MissingDataError

STEREO_SCALE = 5.4
MIN_DEPTH, MAX_DEPTH = 1e-3, 80.0


@dataclass(frozen=True)
class HintQuality:
    """Mean per-image hint metrics over ``images`` images."""

    coverage: float
    abs_rel: float
    delta1: float
    images: int

    def as_dict(self) -> dict[str, float]:
        return {
            "coverage": self.coverage,
            "abs_rel": self.abs_rel,
            "delta1": self.delta1,
            "images": self.images,
        }


def image_metrics(
    hint: np.ndarray, gt: np.ndarray, scale: float = STEREO_SCALE
) -> tuple[float, float, float]:
    """(coverage, abs rel, δ<1.25) of one hint (network units) against ground truth (metres).

    abs rel and δ are NaN when no pixel has both a hint and ground truth.
    """
    hint = np.asarray(hint, dtype=np.float32)
    gt = np.asarray(gt, dtype=np.float32)
    if hint.ndim != 2 or gt.ndim != 2:
        raise ValueError(f"expected 2-D hint and ground truth, got {hint.shape} and {gt.shape}")
    metres = cv2.resize(hint, gt.shape[::-1], interpolation=cv2.INTER_NEAREST) * scale
    valid = (gt > MIN_DEPTH) & (gt < MAX_DEPTH)
    if not valid.any():
        raise ValueError("the ground truth has no valid pixel")
    both = valid & (metres > 0)
    coverage = float(both.sum() / valid.sum())
    if not both.any():
        return coverage, float("nan"), float("nan")
    pred = np.clip(metres[both], MIN_DEPTH, MAX_DEPTH)
    target = gt[both]
    abs_rel = float(np.mean(np.abs(pred - target) / target))
    delta1 = float(np.mean(np.maximum(pred / target, target / pred) < 1.25))
    return coverage, abs_rel, delta1


def summarise(per_image: Iterable[tuple[float, float, float]]) -> HintQuality:
    """Average per-image metrics (abs rel and δ over the images that have any hint)."""
    rows = np.array(list(per_image), dtype=np.float64).reshape(-1, 3)
    if not len(rows):
        raise ValueError("no images to summarise")
    with np.errstate(invalid="ignore"):
        abs_rel, delta1 = np.nanmean(rows[:, 1]), np.nanmean(rows[:, 2])
    return HintQuality(float(rows[:, 0].mean()), float(abs_rel), float(delta1), len(rows))


def ground_truth(layout: KittiRawLayout, folder: str, frame: int, side: str) -> np.ndarray:
    """Metric ground truth of one image: dense depth PNG if present, else projected LiDAR."""
    dense = layout.groundtruth_path(folder, frame, side)
    if dense.is_file():
        return load_depth_png(dense)
    scan = layout.velodyne_path(folder, frame)
    if not scan.is_file():
        raise MissingDataError(
            f"no ground truth for {folder} {frame} {side}: neither {dense} nor {scan} exists; "
            "evaluate on drives with velodyne_points or proj_depth/groundtruth"
        )
    image_shape = load_image(layout.image_path(folder, frame, side)).shape[:2]
    camera = 2 if side == "l" else 3
    return velodyne_to_depth_map(
        load_velodyne(scan),
        layout.calibration(folder),
        cam=camera,
        image_shape=image_shape,
        corrected=True,
    )


def evaluate_store(
    store: HintStore, layout: KittiRawLayout, keys: Iterable[HintKey] | None = None
) -> HintQuality:
    """Hint quality of ``keys`` (default: every hint in the store) against their ground truth."""
    keys = sorted(store.keys() if keys is None else keys)
    return summarise(image_metrics(store.read(key), ground_truth(layout, *key)) for key in keys)
