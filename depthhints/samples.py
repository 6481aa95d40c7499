"""Sample test frames of a trained model for the report: image, prediction, hint, hint mask, GT.

The hint mask is the training loss's m_h (docs/method.md#losses): the pixels where the depth
hint reprojects the other stereo image better than the network's own depth (and better than the
identity, with auto-masking). It is computed for the stereo pair only (a MS model's temporal
views are left out), with the training losses themselves. Depths are in metres (× 5.4 for
stereo-trained models); 0 means "no value" (no hint, no GT).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from depthhints.config import TrainConfig
from depthhints.data.dataset import MonoDataset
from depthhints.data.hint_store import open_store
from depthhints.data.kitti import KittiRawLayout, SplitItem
from depthhints.losses import compute_losses
from depthhints.models.checkpoint import filter_state_dict
from depthhints.models.depth_net import read_weights
from depthhints.predict import depth_scale
from depthhints.train.model import build_model

FIELDS = ("image", "prediction", "hint", "hint_mask", "gt")


def sample_frames(
    config: TrainConfig,
    weights: str | Path,
    items: Sequence[SplitItem],
    gt_maps: Sequence[np.ndarray],
    count: int = 3,
) -> dict[str, np.ndarray]:
    """``count`` frames spread over ``items`` (with their GT maps), at the network resolution:
    ``image`` (N, H, W, 3) uint8, ``prediction``, ``hint``, ``gt`` (N, H, W) metres and
    ``hint_mask`` (N, H, W) bool; ``hint`` and ``hint_mask`` are absent without a hint store.
    ``names`` holds each frame's split line."""
    chosen = np.unique(np.linspace(0, len(items) - 1, min(count, len(items))).astype(int))
    has_hints = config.hint_path.is_dir()
    stereo = config.replace(
        frame_ids=[0],
        use_stereo=True,
        use_depth_hints=has_hints,
        weights_init="scratch",
        predictive_mask=False,
    )
    model = build_model(stereo).eval()
    for part in ("encoder", "depth"):
        state = read_weights(Path(weights) / f"{part}.pth")
        module = getattr(model, part)
        module.load_state_dict(filter_state_dict(module, state))
    dataset = MonoDataset(
        KittiRawLayout(config.data_path),
        [items[i] for i in chosen],
        config.height,
        config.width,
        frame_ids=stereo.all_frame_ids,
        hint_store=open_store(config.hint_path) if has_hints else None,
    )
    scale = depth_scale(True)
    frames: dict[str, list[np.ndarray]] = {name: [] for name in FIELDS}
    size = (config.width, config.height)
    torch.manual_seed(0)  # the automask's tie-breaking noise
    with torch.no_grad():
        for index, gt in zip(range(len(dataset)), (gt_maps[i] for i in chosen), strict=True):
            batch = {
                k: v.unsqueeze(0) if isinstance(v, torch.Tensor) else v
                for k, v in dataset[index].items()
            }
            outputs = model(batch)
            image = batch[("color", 0, 0)][0].permute(1, 2, 0).numpy()
            frames["image"].append((image * 255 + 0.5).astype(np.uint8))
            frames["prediction"].append(outputs[("depth", 0, 0)][0, 0].numpy() * scale)
            frames["gt"].append(cv2.resize(gt, size, interpolation=cv2.INTER_NEAREST))
            if has_hints:
                masks = compute_losses(batch, outputs, stereo).masks
                valid = batch["depth_hint_mask"][0, 0].numpy() > 0
                frames["hint"].append(np.where(valid, batch["depth_hint"][0, 0].numpy(), 0) * scale)
                frames["hint_mask"].append(masks["depth_hint_pixels/0"][0, 0].numpy() > 0)
    result = {name: np.stack(values) for name, values in frames.items() if values}
    result["names"] = np.array([items[i].line() for i in chosen])
    return result


def save_samples(path: str | Path, frames: dict[str, np.ndarray]) -> Path:
    """Write the frames as one compressed ``.npz`` (depths as float16: ~0.1 % precision)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    packed = {
        name: value.astype(np.float16) if value.dtype.kind == "f" else value
        for name, value in frames.items()
    }
    np.savez_compressed(path, **packed)
    return path


def load_samples(path: str | Path) -> dict[str, np.ndarray]:
    """The frames of :func:`save_samples` (depths back as float32)."""
    with np.load(path, allow_pickle=False) as data:
        return {
            name: data[name].astype(np.float32) if data[name].dtype.kind == "f" else data[name]
            for name in data.files
        }
