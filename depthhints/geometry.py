"""Camera geometry for view synthesis (docs/method.md#intrinsics,
docs/method.md#stereo-baseline, docs/method.md#view-synthesis): intrinsics, stereo extrinsic,
back-projection, projection and warping. Training's view synthesis and the hint fusion
(:mod:`depthhints.hints.fusion`) both warp with :func:`warp`.

Pure functions on numpy arrays and torch tensors, device-agnostic. Unlike the reference's
``BackprojectDepth``/``Project3D`` layers, nothing is built for a fixed batch size, so loaders
need no ``drop_last`` and the last, smaller batch of an epoch works.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

K_NORM = np.array(
    [[0.58, 0, 0.5, 0], [0, 1.92, 0.5, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=np.float32
)
"""Normalised intrinsics used for every KITTI image: row 0 × width, row 1 × height."""

STEREO_BASELINE = 0.1
"""Nominal stereo baseline in network units; metres = 5.4 × network depth."""

PROJECTION_EPS = 1e-7
"""Added to the camera-space z before the perspective divide."""

DEPTH_EPS = 1e-7
"""Added to a disparity before it is inverted into a depth."""


def focal_px(width: int) -> float:
    """K[0, 0] in pixels at ``width``, in float32 arithmetic as published: 593.92 at 1024."""
    return float(K_NORM[0, 0] * np.float32(width))


def disparity_to_depth(
    disp: np.ndarray, fx: float, baseline: float = STEREO_BASELINE
) -> np.ndarray:
    """Depth = fx·baseline / (disp + 1e-7), zeroed where disp ≤ 0, float32.

    Computed in float32 throughout, which is what reproduces the published hint values bit for
    bit (a float64 computation rounded to float32 differs in the last bit on ~5 % of pixels).
    """
    disp = np.asarray(disp, dtype=np.float32)
    numerator = np.float32(fx) * np.float32(baseline)
    depth = numerator / (disp + np.float32(DEPTH_EPS))
    return (depth * (disp > 0)).astype(np.float32, copy=False)


def scaled_intrinsics(width: int, height: int, scale: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(K, inv_K)`` float32 4×4 at pyramid ``scale``: row 0 × ``width // 2**s``, row 1 ×
    ``height // 2**s``.

    ``inv_K`` is ``np.linalg.pinv(K)`` as in the reference (float32, not an exact inverse).
    """
    if width <= 0 or height <= 0 or scale < 0:
        raise ValueError(
            f"need positive width/height and scale ≥ 0, got {width}, {height}, {scale}"
        )
    K = K_NORM.copy()
    K[0, :] *= width // 2**scale
    K[1, :] *= height // 2**scale
    return K, np.linalg.pinv(K)


def stereo_T(side: str, flipped: bool = False) -> np.ndarray:
    """Target → other-camera transform: identity with ``T[0, 3] = side_sign·flip_sign·0.1``.

    ``side_sign`` is −1 for a left ('l') target and +1 for a right ('r') one; ``flip_sign`` is −1
    when the item was horizontally flipped (the images are not swapped,
    docs/method.md#stereo-baseline).
    """
    if side not in ("l", "r"):
        raise ValueError(f"side must be 'l' or 'r', got {side!r}")
    T = np.eye(4, dtype=np.float32)
    T[0, 3] = (-1.0 if side == "l" else 1.0) * (-1.0 if flipped else 1.0) * STEREO_BASELINE
    return T


@lru_cache(maxsize=32)
def _pixel_grid(height: int, width: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """Homogeneous pixel coordinates ``(x, y, 1)``, shape (1, 3, H·W); cached, never modified."""
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=dtype, device=device),
        torch.arange(width, dtype=dtype, device=device),
        indexing="ij",
    )
    grid = torch.stack([xs.reshape(-1), ys.reshape(-1), torch.ones_like(xs).reshape(-1)])
    return grid.unsqueeze(0)


def pixel_grid(height: int, width: int, device: torch.device | str = "cpu") -> Tensor:
    """Homogeneous pixel coordinates ``(x, y, 1)`` of an H×W image, float32 (1, 3, H·W)."""
    return _pixel_grid(height, width, torch.device(device), torch.float32).clone()


def backproject(depth: Tensor, inv_K: Tensor) -> Tensor:
    """Lift every pixel to a camera-space point: depth (B, 1, H, W), inv_K (B, 4, 4) → (B, 4, H·W).

    Points are homogeneous (last row 1), at least float32; any batch size works.
    """
    batch, _, height, width = depth.shape
    dtype = torch.promote_types(depth.dtype, torch.float32)  # pixel indices exact beyond 256
    pix = _pixel_grid(height, width, depth.device, dtype)
    rays = torch.matmul(inv_K[:, :3, :3].to(dtype), pix)
    points = depth.reshape(batch, 1, -1) * rays
    return torch.cat([points, torch.ones_like(points[:, :1])], dim=1)


def project(points: Tensor, K: Tensor, T: Tensor, height: int, width: int) -> Tensor:
    """Project homogeneous points (B, 4, H·W) through ``K @ T`` to grid_sample coordinates.

    Divides by z + 1e-7, then normalises x by (W − 1) and y by (H − 1) to [−1, 1] (the reference's
    align-corners convention, docs/method.md#view-synthesis). Returns (B, H, W, 2).
    """
    batch = points.shape[0]
    projection = torch.matmul(K.to(points.dtype), T.to(points.dtype))[:, :3, :]
    cam = torch.matmul(projection, points)
    pix = cam[:, :2, :] / (cam[:, 2:3, :] + PROJECTION_EPS)
    pix = pix.reshape(batch, 2, height, width).permute(0, 2, 3, 1)
    scale = torch.tensor([width - 1, height - 1], dtype=pix.dtype, device=pix.device)
    return (pix / scale - 0.5) * 2


def warp(
    source: Tensor,
    depth: Tensor,
    K: Tensor,
    inv_K: Tensor,
    T: Tensor,
    align_corners: bool = True,
) -> Tensor:
    """Synthesise the target view from ``source`` (B, C, H, W) with target ``depth`` (B, 1, H, W).

    Back-project with ``inv_K``, move by ``T`` (target → source camera), project with ``K`` and
    sample ``source`` bilinearly with border padding. ``align_corners=True`` is the authors'
    sampling (PyTorch ≤ 1.2); False is what the published code does on newer PyTorch
    (docs/method.md#quirk-align-corners).
    """
    height, width = depth.shape[-2:]
    grid = project(backproject(depth, inv_K), K, T, height, width)
    return F.grid_sample(
        source,
        grid.to(source.dtype),
        mode="bilinear",
        padding_mode="border",
        align_corners=align_corners,
    )
