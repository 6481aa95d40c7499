"""The 12 semi-global matchers of the hint precompute and disparity → depth (SPEC §3.2–3.4).

Pure functions: no Ray, no file layout. Images are RGB uint8 (H, W, 3) at hint resolution.

Candidate order (the index stored as ``argmin``) is blockSize-major: index = 4·(blockSize−1) + j
with j over numDisparities 64, 96, 128, 160.

Two matcher modes:

- ``"parity"``: ``MODE_SGBM`` (5 directions), exactly the published settings.
- ``"fast"``: the same 12 candidates with ``MODE_SGBM_3WAY`` (3 directions, multi-threaded by
  OpenCV). A different aggregation, so hints change: on the reference KITTI pair the fused
  disparity differs by a median 0.06 px, by > 1 px on ~8 % of pixels, and the winning candidate
  on ~30 %. Not for parity runs.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

BLOCK_SIZES = (1, 2, 3)
NUM_DISPARITIES = (64, 96, 128, 160)
MATCHER_SETTINGS: tuple[tuple[int, int], ...] = tuple(
    (block, ndisp) for block in BLOCK_SIZES for ndisp in NUM_DISPARITIES
)
"""(blockSize, numDisparities) per candidate, in candidate-index order."""

SGBM_PARAMS = {
    "minDisparity": 0,
    "P1": 3 * 3 * 4,
    "P2": 3 * 3 * 32,
    "preFilterCap": 63,
    "uniquenessRatio": 10,
    "speckleWindowSize": 100,
    "speckleRange": 16,
}
"""Parameters shared by all 12 matchers; disp12MaxDiff is left at OpenCV's default."""

MatcherMode = Literal["parity", "fast"]
SGBM_MODES: dict[str, int] = {
    "parity": cv2.STEREO_SGBM_MODE_SGBM,
    "fast": cv2.STEREO_SGBM_MODE_SGBM_3WAY,
}

BASELINE = 0.1
"""Nominal stereo baseline in network units (SPEC §2.2); × 5.4 gives metres."""

DEPTH_EPS = 1e-7
SIDES = ("l", "r")


def make_matchers(mode: MatcherMode = "parity") -> list[cv2.StereoSGBM]:
    """Build the 12 SGBM matchers in candidate order."""
    if mode not in SGBM_MODES:
        raise ValueError(f"unknown matcher mode {mode!r}; expected one of {sorted(SGBM_MODES)}")
    matchers = []
    for block, ndisp in MATCHER_SETTINGS:
        matcher = cv2.StereoSGBM_create(numDisparities=ndisp, blockSize=block, **SGBM_PARAMS)
        matcher.setMode(SGBM_MODES[mode])
        matchers.append(matcher)
    return matchers


def _check_pair(base_rgb: np.ndarray, other_rgb: np.ndarray) -> None:
    for name, img in (("base", base_rgb), ("other", other_rgb)):
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(
                f"{name} image must be RGB uint8 (H, W, 3), got {img.dtype} {img.shape}"
            )
    if base_rgb.shape != other_rgb.shape:
        raise ValueError(f"image shapes differ: {base_rgb.shape} vs {other_rgb.shape}")


def candidate_disparities(
    base_rgb: np.ndarray,
    other_rgb: np.ndarray,
    side: str,
    matchers: list[cv2.StereoSGBM],
) -> np.ndarray:
    """Disparity of ``base_rgb`` against ``other_rgb`` for every matcher, float32 (K, H, W) px.

    ``side`` is the side of the base image. SGBM only matches a left view against a right view,
    so for ``"r"`` both images are mirrored, matched, and the result is mirrored back (§3.3).
    Invalid pixels come out as −1 (minDisparity − 1).
    """
    _check_pair(base_rgb, other_rgb)
    if side not in SIDES:
        raise ValueError(f"side must be 'l' or 'r', got {side!r}")
    flip = side == "r"
    if flip:
        base_rgb, other_rgb = base_rgb[:, ::-1], other_rgb[:, ::-1]
    base_rgb, other_rgb = np.ascontiguousarray(base_rgb), np.ascontiguousarray(other_rgb)
    out = np.empty((len(matchers), *base_rgb.shape[:2]), dtype=np.float32)
    for k, matcher in enumerate(matchers):
        fixed_point = matcher.compute(base_rgb, other_rgb)
        out[k] = fixed_point[:, ::-1] if flip else fixed_point
    out /= np.float32(16.0)  # int16 with 4 fractional bits; exact in float32
    return out


def disparity_to_depth(disp: np.ndarray, fx: float, baseline: float = BASELINE) -> np.ndarray:
    """Depth = fx·baseline / (disp + 1e-7), zeroed where disp ≤ 0 (SPEC §3.4), float32.

    Computed in float32 throughout, which is what reproduces the reference hint values bit for
    bit (a float64 computation rounded to float32 differs in the last bit on ~5 % of pixels).
    """
    disp = np.asarray(disp, dtype=np.float32)
    numerator = np.float32(fx) * np.float32(baseline)
    depth = numerator / (disp + np.float32(DEPTH_EPS))
    return (depth * (disp > 0)).astype(np.float32, copy=False)
