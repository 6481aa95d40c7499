"""Training and validation samples from a KITTI raw tree (or a synthetic one).

``MonoDataset`` turns split items into the dict of tensors the trainer consumes, keyed as in the
reference loader (docs/method.md#augmentation):

- ``("color", f, s)`` / ``("color_aug", f, s)``: float32 (3, H/2^s, W/2^s) in [0, 1] for every
  frame id ``f`` (an int temporal offset, or ``"s"`` for the stereo partner) and scale ``s``.
  Scale 0 is a Lanczos resize of the native image (aspect not kept); scale s+1 is a Lanczos
  resize of scale s (cascaded, as in the reference, docs/method.md#resizing).
- ``("K", s)`` / ``("inv_K", s)``: the fixed normalised KITTI intrinsics scaled to each scale.
- ``"stereo_T"`` (with ``"s"``): X_other = X_target + t, t_x = side_sign x flip_sign x 0.1.
- ``"depth_hint"`` / ``"depth_hint_mask"`` (with a hint store), ``"depth_gt"`` (with
  ``load_gt``), and ``"index"``.

Augmentation (training only): a left-right flip of every frame before resizing (the stereo pair
is not swapped; the baseline sign, hint and LiDAR GT follow the flip; K is unchanged) and colour
jitter whose parameters are drawn once per item and shared by every frame and scale. Every random
number of an item comes from ``np.random.default_rng((seed, epoch, index))``, so a sample is a
pure function of (seed, epoch, index): the same in any loader worker and any process.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path

import cv2
import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torch.utils.data import Dataset

from depthhints.data.hint_store import HintKey, HintStore, hint_key
from depthhints.data.kitti import (
    KittiRawLayout,
    SplitItem,
    load_image,
    load_velodyne,
    velodyne_to_depth_map,
)
from depthhints.errors import ConfigError, DataFileError, MissingDataError
from depthhints.geometry import scaled_intrinsics, stereo_T

FrameId = int | str

STEREO = "s"
FULL_RES_SHAPE = (375, 1242)  # (H, W) of the training-time LiDAR GT (docs/method.md#resolutions)
BRIGHTNESS = CONTRAST = SATURATION = (0.8, 1.2)
HUE = (-0.1, 0.1)


@dataclass(frozen=True)
class ColorJitterParams:
    """One draw of colour jitter: factors and the order (0 brightness, 1 contrast, 2 saturation,
    3 hue) they are applied in, as torchvision's ColorJitter does."""

    order: tuple[int, ...]
    brightness: float
    contrast: float
    saturation: float
    hue: float

    def apply(self, image: Image.Image) -> Image.Image:
        """Jitter a PIL RGB image with torchvision's adjust_* functions, in ``order``."""
        for step in self.order:
            if step == 0:
                image = TF.adjust_brightness(image, self.brightness)
            elif step == 1:
                image = TF.adjust_contrast(image, self.contrast)
            elif step == 2:
                image = TF.adjust_saturation(image, self.saturation)
            else:
                image = TF.adjust_hue(image, self.hue)
        return image


@dataclass(frozen=True)
class Augmentation:
    """The augmentation of one sample: flip or not, and the colour jitter (None = none)."""

    flip: bool = False
    color: ColorJitterParams | None = None


NO_AUGMENTATION = Augmentation()


def _intrinsics(height: int, width: int, scale: int) -> tuple[torch.Tensor, torch.Tensor]:
    K, inv_K = scaled_intrinsics(width, height, scale)
    return torch.from_numpy(K), torch.from_numpy(inv_K)


def stereo_transform(side: str, flip: bool) -> torch.Tensor:
    """stereo_T of a target on ``side`` ('l'/'r' or camera '2'/'3'), flipped or not
    (docs/method.md#stereo-baseline)."""
    return torch.from_numpy(stereo_T("l" if side in ("l", "2") else "r", flip))


def lanczos_pyramid(image: Image.Image, sizes: Sequence[tuple[int, int]]) -> list[Image.Image]:
    """Cascaded Lanczos resizes to ``sizes`` (W, H): native -> scale 0 -> scale 1 -> ..."""
    levels = []
    for size in sizes:
        image = image.resize(size, Image.Resampling.LANCZOS)
        levels.append(image)
    return levels


def _to_tensor(image: Image.Image) -> torch.Tensor:
    """PIL RGB -> float32 (3, H, W) in [0, 1], bit-identical to torchvision's to_tensor."""
    array = torch.from_numpy(np.array(image))  # HWC uint8; permuting bytes is cheapest
    return array.permute(2, 0, 1).contiguous().to(torch.float32).div_(255)


def _check_frame_ids(frame_ids: Sequence[FrameId]) -> tuple[FrameId, ...]:
    ids: list[FrameId] = []
    for f in frame_ids:
        if isinstance(f, str) and f == STEREO:
            ids.append(STEREO)
        elif isinstance(f, Integral) and not isinstance(f, bool):
            ids.append(int(f))
        else:
            raise ConfigError(
                f"frame_ids: {f!r} is not a frame id; use integer temporal offsets (0, -1, 1) or "
                f"'{STEREO}' for the stereo partner, e.g. frame_ids=(0, -1, 1, 's')"
            )
    if not ids or ids[0] != 0:
        raise ConfigError(
            f"frame_ids={tuple(frame_ids)!r} must start with 0 (the target frame), e.g. (0, -1, 1) "
            "or (0, 's')"
        )
    if len(set(ids)) != len(ids):
        raise ConfigError(f"frame_ids={tuple(frame_ids)!r} lists a frame twice; list each once")
    return tuple(ids)


class MonoDataset(Dataset):
    """Samples of split items for the monocular / stereo self-supervised trainer.

    Data pipeline and augmentation: docs/method.md#augmentation.

    ``layout`` locates images, scans and calibration; ``items`` are the split lines; ``height``
    and ``width`` the network input (multiples of 32). ``frame_ids`` must start with 0; ints
    are temporal offsets and ``"s"`` is the other stereo side. With ``is_train`` the sample is
    randomly flipped and colour-jittered. ``hint_store`` adds depth hints, ``load_gt`` the
    (costly) LiDAR ground truth. ``seed`` and the epoch (``set_epoch``) seed the augmentation.
    """

    def __init__(
        self,
        layout: KittiRawLayout,
        items: Sequence[SplitItem],
        height: int,
        width: int,
        frame_ids: Sequence[FrameId] = (0, -1, 1),
        num_scales: int = 4,
        is_train: bool = False,
        hint_store: HintStore | None = None,
        load_gt: bool = False,
        seed: int = 0,
    ):
        if isinstance(num_scales, bool) or not isinstance(num_scales, Integral) or num_scales < 1:
            raise ConfigError(f"num_scales={num_scales!r} must be a positive integer, e.g. 4")
        for name, value in (("height", height), ("width", width)):
            ok = isinstance(value, Integral) and not isinstance(value, bool) and value > 0
            if not ok or value % 32 or value % 2 ** (num_scales - 1):
                raise ConfigError(
                    f"{name}={value!r} must be a positive multiple of 32 (and of "
                    f"2**(num_scales-1)={2 ** (num_scales - 1)}); e.g. 640x192 or 1024x320"
                )
        if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
            raise ConfigError(f"seed={seed!r} must be a non-negative integer")
        self.layout = layout
        self.items = list(items)
        if not self.items:
            raise ConfigError("MonoDataset got no split items; give a split with at least one line")
        for item in self.items:
            if item.kind != "raw":
                raise ConfigError(
                    f"split line {item.line()!r} is a {item.kind!r} item; MonoDataset reads the "
                    "KITTI raw layout, use a raw split (e.g. eigen_zhou, eigen_full)"
                )
        self.height, self.width = int(height), int(width)
        self.frame_ids = _check_frame_ids(frame_ids)
        self.num_scales = int(num_scales)
        self.is_train = bool(is_train)
        self.hint_store = hint_store
        self.load_gt = bool(load_gt)
        self.seed = int(seed)
        self.epoch = 0
        self._sizes = [(self.width // 2**s, self.height // 2**s) for s in range(self.num_scales)]
        self._intrinsics = [_intrinsics(self.height, self.width, s) for s in range(self.num_scales)]

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose augmentation draws ``__getitem__`` makes."""
        if isinstance(epoch, bool) or not isinstance(epoch, Integral) or epoch < 0:
            raise ConfigError(f"epoch={epoch!r} must be a non-negative integer")
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.items)

    # ---------------------------------------------------------------- augmentation

    def augmentation(self, index: int) -> Augmentation:
        """The augmentation of sample ``index`` this epoch (none unless ``is_train``).

        Draws, in order, from default_rng((seed, epoch, index)): U(0,1) for colour aug, U(0,1)
        for flip, then the jitter order and brightness, contrast, saturation, hue factors.
        """
        if not self.is_train:
            return NO_AUGMENTATION
        rng = np.random.default_rng((self.seed, self.epoch, int(index)))
        do_color, do_flip = rng.random() > 0.5, rng.random() > 0.5
        order = tuple(int(i) for i in rng.permutation(4))
        factors = [float(rng.uniform(*bounds)) for bounds in (BRIGHTNESS, CONTRAST, SATURATION)]
        hue = float(rng.uniform(*HUE))
        color = ColorJitterParams(order, *factors, hue) if do_color else None
        return Augmentation(flip=bool(do_flip), color=color)

    # ---------------------------------------------------------------- paths

    def _frame_path(self, item: SplitItem, frame_id: FrameId) -> Path:
        if frame_id == STEREO:
            return self.layout.image_path(item.folder, item.frame, item.other_side)
        return self.layout.image_path(item.folder, item.frame + frame_id, item.side)

    def _hint_location(self, key: HintKey) -> Path:
        """Where a hint lives: its file for file-per-hint stores, else the key under the root."""
        path = getattr(self.hint_store, "path", None)
        if callable(path):
            return path(key)
        folder, frame, side = key
        camera = 2 if side == "l" else 3
        return self.hint_store.root / folder / f"image_0{camera}" / f"{frame:010d}"

    def missing_files(self, limit: int | None = None) -> list[Path]:
        """Every image (and hint, and scan with ``load_gt``) the items need that does not exist.

        Nothing is decoded: directories are listed once each. Hints of stores that are not one
        file per hint (Parquet) are reported as ``<store root>/<folder>/image_0X/<frame>``.
        With ``limit``, stop after that many.
        """
        listings: dict[Path, frozenset[str]] = {}

        def exists(path: Path) -> bool:
            parent = path.parent
            if parent not in listings:
                try:
                    listings[parent] = frozenset(os.listdir(parent))
                except OSError:
                    listings[parent] = frozenset()
            return path.name in listings[parent]

        missing: dict[Path, None] = {}
        hint_keys = self.hint_store.keys() if self.hint_store is not None else None
        for item in self.items:
            needed = [self._frame_path(item, f) for f in self.frame_ids]
            if self.load_gt:
                needed.append(self.layout.velodyne_path(item.folder, item.frame))
            for path in needed:
                if path not in missing and not exists(path):
                    missing[path] = None
            if hint_keys is not None and hint_key(item) not in hint_keys:
                missing[self._hint_location(hint_key(item))] = None
            if limit is not None and len(missing) >= limit:
                break
        result = list(missing)
        return result if limit is None else result[:limit]

    # ---------------------------------------------------------------- loading

    def _load_frame(self, item: SplitItem, frame_id: FrameId) -> Image.Image:
        path = self._frame_path(item, frame_id)
        if frame_id != 0 and not path.is_file():
            if frame_id == STEREO:
                fix = (
                    f"the stereo partner ({item.other_side}) of split line {item.line()!r} is "
                    "needed for frame_ids with 's'; extract both image_02 and image_03, or drop "
                    "'s' from frame_ids"
                )
            else:
                fix = (
                    f"temporal neighbour {frame_id:+d} of split line {item.line()!r}; split lines "
                    f"need both temporal neighbours for frame_ids {self.frame_ids}; use a split "
                    "whose frames have neighbours or frame_ids 0 s"
                )
            raise MissingDataError(f"{path}: image not found: {fix}")
        return Image.fromarray(load_image(path, require_colour=True))

    def _pyramid(self, image: Image.Image) -> list[Image.Image]:
        return lanczos_pyramid(image, self._sizes)

    def _load_hint(self, item: SplitItem, flip: bool) -> np.ndarray:
        key = hint_key(item)
        try:
            hint = self.hint_store.read(key)
        except MissingDataError:
            raise MissingDataError(
                f"{self._hint_location(key)}: no depth hint for {key} in {self.hint_store.root}; "
                "run `depthhints hints` for this split, or point the hint path at the right store"
            ) from None
        if flip:
            hint = np.fliplr(hint)
        if hint.shape != (self.height, self.width):
            hint = cv2.resize(
                np.ascontiguousarray(hint),
                (self.width, self.height),
                interpolation=cv2.INTER_NEAREST,
            )
        return np.ascontiguousarray(hint, dtype=np.float32)

    def _load_gt(self, item: SplitItem, flip: bool) -> np.ndarray:
        calib = self.layout.calibration(item.folder)
        points = load_velodyne(self.layout.velodyne_path(item.folder, item.frame))
        depth = velodyne_to_depth_map(points, calib, cam=item.camera, vel_depth=False)
        if depth.shape != FULL_RES_SHAPE:
            # INTER_NEAREST_EXACT samples pixel centres like skimage's resize(order=0).
            depth = cv2.resize(depth, FULL_RES_SHAPE[::-1], interpolation=cv2.INTER_NEAREST_EXACT)
        if flip:
            depth = np.fliplr(depth)
        return np.ascontiguousarray(depth, dtype=np.float32)

    def load(self, index: int, augmentation: Augmentation) -> dict:
        """Sample ``index`` with the given augmentation (``__getitem__`` draws it)."""
        item = self.items[index]
        sample: dict = {"index": int(index)}
        for frame_id in self.frame_ids:
            image = self._load_frame(item, frame_id)
            if frame_id == 0:
                native = image.size
            elif image.size != native:
                raise DataFileError(
                    f"{self._frame_path(item, frame_id)}: {image.size[0]}x{image.size[1]} pixels "
                    f"but the target {self._frame_path(item, 0)} is {native[0]}x{native[1]}; "
                    "the images of a split line (stereo partner, temporal neighbours) must share "
                    "one size, re-extract the drive"
                )
            if augmentation.flip:
                image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            for scale, level in enumerate(self._pyramid(image)):
                color = _to_tensor(level)
                sample[("color", frame_id, scale)] = color
                sample[("color_aug", frame_id, scale)] = (
                    color
                    if augmentation.color is None
                    else _to_tensor(augmentation.color.apply(level))
                )
        for scale, (K, inv_K) in enumerate(self._intrinsics):
            sample[("K", scale)] = K.clone()
            sample[("inv_K", scale)] = inv_K.clone()
        if STEREO in self.frame_ids:
            sample["stereo_T"] = stereo_transform(item.side, augmentation.flip)
        if self.hint_store is not None:
            hint = torch.from_numpy(self._load_hint(item, augmentation.flip)).unsqueeze(0)
            sample["depth_hint"] = hint
            sample["depth_hint_mask"] = (hint > 0).to(torch.float32)
        if self.load_gt:
            sample["depth_gt"] = torch.from_numpy(self._load_gt(item, augmentation.flip))[None]
        return sample

    def __getitem__(self, index: int) -> dict:
        if not -len(self.items) <= index < len(self.items):
            raise IndexError(f"index {index} out of range for {len(self.items)} items")
        index = index % len(self.items)
        return self.load(index, self.augmentation(index))
