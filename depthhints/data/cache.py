"""A one-time training cache, and the batches it feeds finished on the training device.

The reference loader decodes two native images per sample and resizes each to four scales with
Lanczos, every epoch; at GPU rates that needs far more cores than a node has. What does not
depend on the random draw is computed once instead: every image's Lanczos pyramid at the network
resolution (uint8, unflipped) and every hint at the rows the nearest resize keeps. A sample is
then a few array copies, and the draw is applied batched on the device:

- ``("color", f, s)`` equals the reference loader's bit for bit: a horizontal flip commutes with
  PIL's Lanczos resize, so flipping the cached pyramid is flipping before resizing.
- ``depth_hint`` equals it bit for bit: the hint's flip and nearest resize are a gather with
  OpenCV's own nearest indices.
- ``("color_aug", f, 0)``: the reference's draws (flip, jitter order and factors from
  ``(seed, epoch, index)``) applied to float tensors rather than PIL's uint8 images, so values
  differ by rounding. Only scale 0, and only the frames the networks see, are jittered.

No LiDAR ground truth (``load_gt``) comes from the cache.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import multiprocessing
import os
import shutil
import uuid
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from depthhints.data.dataset import (
    STEREO,
    Augmentation,
    ColorJitterParams,
    FrameId,
    MonoDataset,
    lanczos_pyramid,
    stereo_transform,
)
from depthhints.data.hint_store import HintKey, HintStore, hint_key
from depthhints.data.jitter import jitter_batch
from depthhints.data.kitti import KittiRawLayout, SplitItem, load_image

CACHE_VERSION = 1
MANIFEST = "manifest.json"
ImageKey = tuple[str, int, str]  # (folder, frame, side) of one image file
IDENTITY_JITTER = ColorJitterParams((0, 1, 2, 3), 1.0, 1.0, 1.0, 0.0)


def nearest_indices(source: int, target: int) -> np.ndarray:
    """The source index OpenCV's ``INTER_NEAREST`` reads for each of ``target`` outputs."""
    index = np.arange(source, dtype=np.float32)[None]
    return cv2.resize(index, (target, 1), interpolation=cv2.INTER_NEAREST)[0].astype(np.int64)


def image_key(item: SplitItem, frame_id: FrameId) -> ImageKey:
    """The image a split item needs for ``frame_id`` (its stereo partner, or a neighbour)."""
    if frame_id == STEREO:
        return item.folder, item.frame, item.other_side
    return item.folder, item.frame + int(frame_id), item.side


@dataclass(frozen=True)
class CacheSpec:
    """What a cache holds; its hash names the cache's folder."""

    data_root: str
    items: tuple[str, ...]
    frame_ids: tuple[FrameId, ...]
    height: int
    width: int
    num_scales: int
    hints: str | None  # the hint store's root and manifest, None without hints

    def key(self) -> str:
        text = json.dumps([CACHE_VERSION, *self.__dict__.values()], default=list)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class TrainingCache:
    """A built cache, memory-mapped: ``images[s]`` (N, 3, H/2^s, W/2^s) uint8, ``hints``
    (M, H, hint width) float32 at the rows the nearest resize keeps, and their index."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        manifest = json.loads((folder / MANIFEST).read_text())
        self.images = [
            np.load(folder / f"images_{s}.npy", mmap_mode="r") for s in range(manifest["scales"])
        ]
        self.image_index = {tuple(k): i for i, k in enumerate(manifest["images"])}
        self.hint_index = {tuple(k): i for i, k in enumerate(manifest["hints"])}
        self.hints = np.load(folder / "hints.npy", mmap_mode="r") if self.hint_index else None
        self.hint_width = manifest["hint_width"]

    def hint_columns(self, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Columns of a cached hint row the network's nearest resize reads, unflipped and
        flipped (the reference flips the stored hint, then resizes it)."""
        columns = nearest_indices(self.hint_width, width)
        return columns, self.hint_width - 1 - columns


def open_cache(
    spec: CacheSpec,
    layout: KittiRawLayout,
    items: Sequence[SplitItem],
    hint_store: HintStore | None,
    root: Path,
    workers: int = 0,
) -> TrainingCache:
    """The cache of ``spec`` under ``root``, built first if it is not there.

    Processes that need the same cache at once (the ranks of a node) take a file lock: one
    builds, the others wait and open its result. The build writes a temporary folder renamed
    into place, so a killed build leaves nothing that opens.
    """
    folder = root / spec.key()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{spec.key()}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / MANIFEST).is_file():
            staging = root / f".{spec.key()}.{uuid.uuid4().hex[:8]}"
            try:
                _build(spec, layout, items, hint_store, staging, workers)
                os.replace(staging, folder)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    return TrainingCache(folder)


def _pyramid(path: Path, sizes: Sequence[tuple[int, int]]) -> list[np.ndarray]:
    """The reference's cascaded Lanczos pyramid of one image, each level (3, h, w) uint8."""
    image = Image.fromarray(load_image(path, require_colour=True))
    return [np.asarray(level).transpose(2, 0, 1) for level in lanczos_pyramid(image, sizes)]


def _hint_rows(store: HintStore, key: HintKey, rows: np.ndarray) -> np.ndarray:
    return store.read(key)[rows]


def _build(
    spec: CacheSpec,
    layout: KittiRawLayout,
    items: Sequence[SplitItem],
    hint_store: HintStore | None,
    folder: Path,
    workers: int,
) -> None:
    folder.mkdir(parents=True)
    images = list(dict.fromkeys(image_key(i, f) for i in items for f in spec.frame_ids))
    hints = list(dict.fromkeys(hint_key(i) for i in items)) if hint_store else []
    sizes = [(spec.width >> s, spec.height >> s) for s in range(spec.num_scales)]
    levels = [
        np.lib.format.open_memmap(
            folder / f"images_{s}.npy", "w+", np.uint8, (len(images), 3, h, w)
        )
        for s, (w, h) in enumerate(sizes)
    ]
    paths = [layout.image_path(*key) for key in images]
    hint_width = 0
    spawn = multiprocessing.get_context("spawn")  # a fork of a training process can hang
    with ProcessPoolExecutor(workers, spawn) if workers else _Inline() as pool:
        pyramids = pool.map(_pyramid, paths, [sizes] * len(paths), chunksize=8)
        for i, pyramid in enumerate(tqdm(pyramids, "cache: images", len(paths), unit="img")):
            for level, array in zip(levels, pyramid, strict=True):
                level[i] = array
        if hints:
            height, hint_width = hint_store.read(hints[0]).shape
            rows = nearest_indices(height, spec.height)
            stored = np.lib.format.open_memmap(
                folder / "hints.npy", "w+", np.float32, (len(hints), spec.height, hint_width)
            )
            parts = pool.map(_hint_rows, [hint_store] * len(hints), hints, [rows] * len(hints))
            for i, part in enumerate(tqdm(parts, "cache: hints", len(hints), unit="hint")):
                stored[i] = part
            stored.flush()
    for level in levels:
        level.flush()
    manifest = {
        "version": CACHE_VERSION,
        "spec": spec.__dict__,
        "scales": spec.num_scales,
        "images": images,
        "hints": hints,
        "hint_width": hint_width,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, default=list))


class _Inline:
    """``ProcessPoolExecutor``'s ``map`` in this process (no workers)."""

    def __enter__(self) -> _Inline:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    @staticmethod
    def map(function, *iterables, chunksize: int = 1):
        return map(function, *iterables)


class CachedDataset(MonoDataset):
    """The samples of a :class:`MonoDataset`, read from a :class:`TrainingCache`.

    ``__getitem__`` returns the cached uint8 pyramids (unflipped), the cached hint rows and the
    sample's draws; :meth:`finish` turns a collated batch into the batch the reference loader
    would have made, on the training device.
    """

    def __init__(self, cache: TrainingCache, dataset: MonoDataset) -> None:
        super().__init__(
            dataset.layout,
            dataset.items,
            dataset.height,
            dataset.width,
            frame_ids=dataset.frame_ids,
            num_scales=dataset.num_scales,
            is_train=dataset.is_train,
            hint_store=dataset.hint_store,
            seed=dataset.seed,
        )
        self.cache = cache
        self._device_constants: dict[torch.device, dict] = {}

    def load(self, index: int, augmentation: Augmentation) -> dict:
        item = self.items[index]
        jitter = augmentation.color or IDENTITY_JITTER
        sample: dict = {
            "index": int(index),
            "flip": augmentation.flip,
            "jitter": augmentation.color is not None,
            "jitter_order": torch.tensor(jitter.order),
            "jitter_factors": torch.tensor(
                [jitter.brightness, jitter.contrast, jitter.saturation, jitter.hue]
            ),
        }
        for frame_id in self.frame_ids:
            row = self.cache.image_index[image_key(item, frame_id)]
            for scale, level in enumerate(self.cache.images):
                sample[("color", frame_id, scale)] = torch.from_numpy(np.array(level[row]))
        if STEREO in self.frame_ids:
            sample["stereo_T"] = stereo_transform(item.side, augmentation.flip)
        if self.hint_store is not None:
            row = self.cache.hint_index[hint_key(item)]
            sample["hint_rows"] = torch.from_numpy(np.array(self.cache.hints[row]))
        return sample

    def _constants(self, device: torch.device) -> dict:
        """Intrinsics and hint columns on ``device``, copied there once."""
        if device not in self._device_constants:
            columns = self.cache.hint_columns(self.width)
            self._device_constants[device] = {
                "intrinsics": [(K.to(device), inv_K.to(device)) for K, inv_K in self._intrinsics],
                "columns": torch.from_numpy(np.stack(columns)).to(device),
            }
        return self._device_constants[device]

    def finish(self, batch: dict, device: torch.device) -> dict:
        """A collated batch of this dataset on ``device``, keyed as :class:`MonoDataset`'s."""
        constants = self._constants(device)
        flip = batch["flip"].to(device, non_blocking=True)
        out: dict = {"index": batch["index"]}
        for key, value in batch.items():
            if isinstance(key, tuple) and key[0] == "color":
                image = value.to(device, non_blocking=True).to(torch.float32).div_(255)
                out[key] = torch.where(flip.view(-1, 1, 1, 1), image.flip(-1), image)
        for frame_id in self.frame_ids:
            if frame_id != STEREO:  # the stereo partner never enters the networks
                out[("color_aug", frame_id, 0)] = jitter_batch(
                    out[("color", frame_id, 0)],
                    batch["jitter"],
                    batch["jitter_order"],
                    batch["jitter_factors"],
                )
        size = len(batch["flip"])
        for scale, (K, inv_K) in enumerate(constants["intrinsics"]):
            out[("K", scale)] = K.repeat(size, 1, 1)
            out[("inv_K", scale)] = inv_K.repeat(size, 1, 1)
        if "stereo_T" in batch:
            out["stereo_T"] = batch["stereo_T"].to(device, non_blocking=True)
        if "hint_rows" in batch:
            rows = batch["hint_rows"].to(device, non_blocking=True)
            columns = constants["columns"][flip.long()]  # (B, W): unflipped or flipped columns
            columns = columns.unsqueeze(1).expand(-1, rows.shape[1], -1)
            hint = rows.gather(2, columns).unsqueeze(1)
            out["depth_hint"] = hint
            out["depth_hint_mask"] = (hint > 0).to(torch.float32)
        return out
