"""Hint computation without Ray: the settings, the unit of work and one frame's hints.

``compute_frame`` decodes a stereo frame once, resizes both images to the hint resolution,
runs the matchers for each requested side and fuses the candidates; the Ray actor pool
(``hints_worker.actors``) and a single node's process pool (``hints_worker.node``) both run it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from depthhints.data.hint_store import HintKey, HintStore, StoreManifest, hint_key
from depthhints.data.kitti import KittiRawLayout, SplitItem, load_image
from depthhints.errors import ConfigError, DataFileError, DepthHintsError
from depthhints.geometry import disparity_to_depth, focal_px
from depthhints.hints.fusion import (
    CANDIDATE_CHUNK,
    FUSION_MODES,
    FusionMode,
    fuse_batch,
    resize_for_hints,
)
from depthhints.hints.sgm import (
    MATCHER_PRESETS,
    MatcherMode,
    candidate_disparities,
    matcher_preset,
)


@dataclass(frozen=True)
class HintConfig:
    """Everything that determines the hint values (hashed into the store manifest)."""

    height: int = 320
    width: int = 1024
    matchers: MatcherMode = "parity"
    fusion: FusionMode = "parity"
    align_corners: bool = True

    def __post_init__(self) -> None:
        if self.fusion not in FUSION_MODES:
            raise ConfigError(f"fusion={self.fusion!r}: expected one of {list(FUSION_MODES)}")
        if self.matchers not in MATCHER_PRESETS:
            raise ConfigError(
                f"matchers={self.matchers!r}: expected one of {list(MATCHER_PRESETS)}"
            )
        if min(self.height, self.width) < 32:
            raise ConfigError(f"hint resolution {self.height}x{self.width}: both must be >= 32")

    def manifest(
        self, store_format: str, data_root: str | os.PathLike, precision: str = "exact"
    ) -> StoreManifest:
        """The manifest of a store of these hints (``precision``: see the hint store)."""
        settings = {k: v for k, v in asdict(self).items() if k not in ("height", "width")}
        settings["candidates"] = matcher_preset(self.matchers).describe()
        return StoreManifest(
            format=store_format,
            height=self.height,
            width=self.width,
            config=settings,
            data_root=str(Path(data_root).resolve()),
            precision=precision,
        )


@dataclass(frozen=True)
class FrameJob:
    """One stereo frame and the sides of it that still need hints."""

    folder: str
    frame: int
    sides: tuple[str, ...]


@dataclass(frozen=True)
class Failure:
    key: HintKey
    reason: str


@dataclass
class FrameResult:
    written: list[HintKey] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)


def plan_jobs(items: Iterable[SplitItem], done: set[HintKey]) -> list[FrameJob]:
    """Group items by frame (first-seen order) and drop the sides already in ``done``."""
    sides: dict[tuple[str, int], list[str]] = {}
    for item in items:
        folder, frame, side = hint_key(item)
        if (folder, frame, side) not in done:
            needed = sides.setdefault((folder, frame), [])
            if side not in needed:
                needed.append(side)
    return [FrameJob(folder, frame, tuple(s)) for (folder, frame), s in sides.items()]


@dataclass
class Candidates:
    """One image's candidate depths, ready to fuse: base and other view at hint resolution."""

    key: HintKey
    base: np.ndarray  # (H, W, 3) uint8
    other: np.ndarray
    depths: np.ndarray  # (K, H, W) float32

    @property
    def side(self) -> str:
        return self.key[2]


def match_frame(
    job: FrameJob, layout: KittiRawLayout, config: HintConfig, matchers: list[cv2.StereoSGBM]
) -> tuple[list[Candidates], list[Failure]]:
    """Decode a frame once and match each requested side: its candidates, or its failures."""
    keys = [(job.folder, job.frame, side) for side in job.sides]
    paths = {side: layout.image_path(job.folder, job.frame, side) for side in ("l", "r")}
    try:
        native = {side: load_image(path, require_colour=True) for side, path in paths.items()}
        if native["l"].shape != native["r"].shape:
            raise DataFileError(
                f"{paths['l']} is {native['l'].shape[:2]} but its stereo partner {paths['r']} is "
                f"{native['r'].shape[:2]}; both images of a pair must have the same size, "
                "re-extract this frame of image_02 and image_03"
            )
    except DepthHintsError as error:
        return [], [Failure(key, str(error)) for key in keys]
    images = {
        side: resize_for_hints(im, config.width, config.height) for side, im in native.items()
    }
    fx = focal_px(config.width)
    candidates = []
    for key, side in zip(keys, job.sides, strict=True):
        base, other = images[side], images["r" if side == "l" else "l"]
        depths = disparity_to_depth(candidate_disparities(base, other, side, matchers), fx)
        candidates.append(Candidates(key, base, other, depths))
    return candidates, []


def fuse_candidates(
    candidates: Sequence[Candidates],
    config: HintConfig,
    device: str | torch.device = "cpu",
    chunk: int = CANDIDATE_CHUNK,
) -> list[tuple[HintKey, np.ndarray]]:
    """The hint of each image, fused ``chunk`` candidates at a time on ``device`` (images of a
    side together), in the order given."""
    fx = focal_px(config.width)
    hints: dict[HintKey, np.ndarray] = {}
    for side in ("l", "r"):
        group = [c for c in candidates if c.side == side]
        if not group:
            continue
        fused = fuse_batch(
            [c.base for c in group],
            [c.other for c in group],
            [c.depths for c in group],
            side,
            fx,
            config.fusion,
            config.align_corners,
            device,
            chunk,
        )
        hints.update((c.key, hint) for c, (hint, _) in zip(group, fused, strict=True))
    return [(c.key, hints[c.key]) for c in candidates]


def compute_frame(
    job: FrameJob,
    layout: KittiRawLayout,
    config: HintConfig,
    matchers: list[cv2.StereoSGBM],
    store: HintStore,
) -> FrameResult:
    """Hints for the requested sides of one frame (fused on the CPU), written to ``store``."""
    candidates, failures = match_frame(job, layout, config, matchers)
    result = FrameResult(failures=failures)
    for key, hint in fuse_candidates(candidates, config):
        store.write(key, hint)
        result.written.append(key)
    return result
