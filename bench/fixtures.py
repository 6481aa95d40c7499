"""Data the training benchmarks run on: a synthetic drive and hints made from its ground truth.

Hints from the dense ground truth (nearest-resized to the hint resolution, in network units)
cost nothing to make, and a training step costs the same whatever the hint values are.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from depthhints.data.hint_store import NpyHintStore, StoreManifest, hint_key
from depthhints.data.kitti import KittiRawLayout, SplitItem, load_depth_png, read_split_file
from depthhints.hints.quality import STEREO_SCALE


def hints_from_ground_truth(
    root: Path, items: list[SplitItem], store: Path, height: int = 320, width: int = 1024
) -> NpyHintStore:
    """An npy hint store at ``height``×``width`` holding each item's dense ground truth."""
    manifest = StoreManifest(format="npy", height=height, width=width, config={"source": "gt"})
    hints = NpyHintStore(store, manifest)
    layout = KittiRawLayout(root)
    for item in dict.fromkeys(items):
        gt = load_depth_png(layout.groundtruth_path(item.folder, item.frame, item.side))
        resized = torch.nn.functional.interpolate(
            torch.from_numpy(gt)[None, None], size=(height, width), mode="nearest"
        )[0, 0].numpy()
        hints.write(hint_key(item), (resized / STEREO_SCALE).astype(np.float32))
    return hints


def split_items(split_files: dict[str, Path], *parts: str) -> list[SplitItem]:
    """The items of the named split parts, in order."""
    return [item for part in parts for item in read_split_file(split_files[part])]
