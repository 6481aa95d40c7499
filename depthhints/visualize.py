"""Pictures for people: a stereo pair beside its ground-truth depth and projected LiDAR."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from depthhints.data.kitti import (
    KittiRawLayout,
    load_depth_png,
    load_image,
    load_velodyne,
    velodyne_to_depth_map,
)


def stereo_preview(
    layout: KittiRawLayout, folder: str, frame: int, out_path: str | Path, max_depth: float = 80.0
) -> Path:
    """Render left/right images, the left ground-truth depth and the projected LiDAR to a PNG.

    Everything is read back through the KITTI reader, so the picture also shows that the tree
    on disk is readable as KITTI.
    """
    left = load_image(layout.image_path(folder, frame, "l"))
    right = load_image(layout.image_path(folder, frame, "r"))
    calib = layout.calibration(folder)
    lidar = velodyne_to_depth_map(
        load_velodyne(layout.velodyne_path(folder, frame)), calib, cam=2, image_shape=left.shape[:2]
    )
    panels = [("left image (image_02)", left, None), ("right image (image_03)", right, None)]
    gt_path = layout.groundtruth_path(folder, frame, "l")
    if gt_path.exists():
        panels.append(("ground-truth depth, left [m]", load_depth_png(gt_path), "depth"))
    panels.append(("Velodyne projected into the left image [m]", lidar, "lidar"))

    height, width = left.shape[:2]
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(10, len(panels) * 10 * height / width + 0.6), layout="constrained"
    )
    for ax, (title, data, kind) in zip(axes, panels, strict=True):
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
        if kind is None:
            ax.imshow(data)
            continue
        if kind == "lidar":
            ax.imshow(left)
            rows, cols = np.nonzero(data)
            artist = ax.scatter(
                cols, rows, c=data[rows, cols], s=0.3, cmap="magma_r", vmin=0, vmax=max_depth
            )
        else:
            artist = ax.imshow(np.ma.masked_equal(data, 0), cmap="magma_r", vmin=0, vmax=max_depth)
        fig.colorbar(artist, ax=ax, fraction=0.02, pad=0.01)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return out_path
