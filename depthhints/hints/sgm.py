"""The semi-global matchers of the hint precompute and disparity → depth.

The matchers: docs/method.md#hint-matchers; disparity → depth: docs/method.md#disparity-to-depth.

Pure functions: no Ray, no file layout. Images are RGB uint8 (H, W, 3) at hint resolution.

The published procedure runs 12 matchers, blockSize-major: candidate index = 4·(blockSize−1) + j
with j over numDisparities 64, 96, 128, 160 (``MATCHER_SETTINGS``). OpenCV matches with a window
of radius ``blockSize // 2``, so blockSize 2 and 3 are the same matcher: candidates 8–11 are exact
copies of 4–7 and, since argmin ties go to the lower index, never win. Running the 8 distinct
ones gives the published hint and winning index bit for bit, for two thirds of the cost.

Matcher presets (``--matchers``):

- ``"parity"``: ``MODE_SGBM`` (5 paths), the 8 distinct published candidates.
- ``"fast"``: two of the published candidates, the wide-range ones (blockSize 1 and 3 with
  numDisparities 160): a quarter of the matching and fusion work. The narrow ranges are what
  mis-match near objects (a 64-disparity matcher cannot see closer than ~5 m at 1024 px), so on
  the real pair and the synthetic drives the fast hints are more accurate than parity's, on
  fewer pixels: none in the 160-pixel band at the image edge (see docs/benchmarks.md).
- ``"quality"``: ``MODE_HH`` (full 8-path aggregation) over the 8 distinct published candidates:
  ~2× the matching cost, more accurate hints.
- ``"single"``: one published candidate (blockSize 3, numDisparities 128), nothing to fuse: the
  hint source of the paper's single-SGM ablation against fused hints. At 1024 px it sees as
  close as ~2.5 m, and gives no hint in the 128-pixel band at the image edge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

BLOCK_SIZES = (1, 2, 3)
NUM_DISPARITIES = (64, 96, 128, 160)
MATCHER_SETTINGS: tuple[tuple[int, int], ...] = tuple(
    (block, ndisp) for block in BLOCK_SIZES for ndisp in NUM_DISPARITIES
)
"""The published (blockSize, numDisparities) per candidate, in candidate-index order."""

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

MatcherMode = Literal["parity", "fast", "quality", "single"]


def distinct_settings(settings: Sequence[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Drop settings that OpenCV runs identically to an earlier one (same blockSize // 2)."""
    seen, kept = set(), []
    for block, ndisp in settings:
        if (block // 2, ndisp) not in seen:
            seen.add((block // 2, ndisp))
            kept.append((block, ndisp))
    return tuple(kept)


@dataclass(frozen=True)
class MatcherPreset:
    """An OpenCV SGBM mode and the candidate (blockSize, numDisparities) settings to run."""

    sgbm_mode: int
    settings: tuple[tuple[int, int], ...]

    def describe(self) -> dict:
        """JSON-able description (recorded in the hint-store manifest)."""
        return {"sgbm_mode": self.sgbm_mode, "settings": [list(s) for s in self.settings]}


MATCHER_PRESETS: dict[str, MatcherPreset] = {
    "parity": MatcherPreset(cv2.STEREO_SGBM_MODE_SGBM, distinct_settings(MATCHER_SETTINGS)),
    "fast": MatcherPreset(cv2.STEREO_SGBM_MODE_SGBM, ((1, 160), (3, 160))),
    "quality": MatcherPreset(cv2.STEREO_SGBM_MODE_HH, distinct_settings(MATCHER_SETTINGS)),
    "single": MatcherPreset(cv2.STEREO_SGBM_MODE_SGBM, ((3, 128),)),
}
PUBLISHED = MatcherPreset(cv2.STEREO_SGBM_MODE_SGBM, MATCHER_SETTINGS)
"""All 12 published matchers, duplicates included (the baseline and the tests run these)."""

SIDES = ("l", "r")


def matcher_preset(mode: MatcherMode) -> MatcherPreset:
    """The preset named ``mode``; a clear error for an unknown name."""
    if mode not in MATCHER_PRESETS:
        raise ValueError(f"unknown matcher mode {mode!r}; expected one of {list(MATCHER_PRESETS)}")
    return MATCHER_PRESETS[mode]


def make_matchers(preset: MatcherMode | MatcherPreset = "parity") -> list[cv2.StereoSGBM]:
    """Build the matchers of a preset (or preset name), in candidate order."""
    if not isinstance(preset, MatcherPreset):
        preset = matcher_preset(preset)
    matchers = []
    for block, ndisp in preset.settings:
        matcher = cv2.StereoSGBM_create(numDisparities=ndisp, blockSize=block, **SGBM_PARAMS)
        matcher.setMode(preset.sgbm_mode)
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
    so for ``"r"`` both images are mirrored, matched, and the result is mirrored back
    (docs/method.md#right-image-hints).
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
