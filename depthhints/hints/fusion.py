"""Per-pixel fusion of the 12 SGM candidates by reprojection loss (docs/method.md#hint-fusion).

Each candidate depth map warps the other view of the stereo pair into the base view; the
candidate with the lowest photometric loss (0.85·SSIM term + 0.15·L1) wins at each pixel.

The warp is :func:`depthhints.geometry.warp`, the one training uses — back-project with inv_K,
move by the stereo extrinsic T, project with K, bilinear ``grid_sample`` with border padding —
with the fixed KITTI K at the hint resolution (:func:`depthhints.geometry.scaled_intrinsics`)
and :func:`depthhints.geometry.stereo_T`. For a valid candidate this is a horizontal shift by its
disparity; an invalid candidate (depth 0) collapses to the camera centre, and its projection
(divided by ~1e-7) lands far outside the image, so border padding samples the top-left pixel of
the other view for a left base image and the top-right pixel for a right one.

Fusion modes:

- ``"parity"``: as published, invalid candidates compete like any other
  (docs/method.md#quirk-invalid-fused-hints).
- ``"masked"``: invalid candidates (depth ≤ 0) get loss +inf, so they win only where every
  candidate is invalid, and there the hint is 0.

``align_corners=True`` (default) is the sampling the authors had (PyTorch ≤ 1.2);
``False`` is what the published code gives on PyTorch ≥ 1.3 (docs/method.md#quirk-align-corners).

The SSIM / photometric loss here is a separate fast path of
:func:`depthhints.losses.photometric_loss` (same formula and operation order;
``tests/test_losses.py`` compares them): it updates its intermediates in place (no autograd) and
runs ``CANDIDATE_CHUNK`` candidates at a time. For the 12 candidates of one 1024×320 image that
peaks at ~110 MB of intermediates and ~0.4 s on one core, against ~400 MB and ~0.7–0.9 s for
the out-of-place training loss on all 12 at once, and the hint precompute runs one such process
per core. Training keeps ``depthhints.losses``, which autograd needs.

Torch code is device-agnostic: work runs on ``device`` (default: the inputs' device, else CPU).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from depthhints.geometry import (
    disparity_to_depth,
    focal_px,
    scaled_intrinsics,
    stereo_T,
    warp,
)
from depthhints.hints.sgm import (
    MatcherMode,
    candidate_disparities,
    make_matchers,
)

FusionMode = Literal["parity", "masked"]
FUSION_MODES = ("parity", "masked")

HINT_WIDTH, HINT_HEIGHT = 1024, 320

SSIM_C1 = 0.01**2
SSIM_C2 = 0.03**2
SSIM_WEIGHT = 0.85
L1_WEIGHT = 0.15
CANDIDATE_CHUNK = 4
"""Candidates whose losses are computed together: small enough for the intermediates to stay in
cache (12 candidates at 1024×320 on one core: 0.45 s in chunks of 4, 0.67 s in one batch), and
each candidate's loss is the same bit for bit whatever the chunk."""

ImageLike = np.ndarray | torch.Tensor


def resize_for_hints(
    rgb_uint8: np.ndarray, width: int = HINT_WIDTH, height: int = HINT_HEIGHT
) -> np.ndarray:
    """Resize an RGB uint8 image to the hint resolution with PIL Lanczos
    (docs/method.md#resizing)."""
    rgb = np.asarray(rgb_uint8)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected RGB uint8 (H, W, 3), got {rgb.dtype} {rgb.shape}")
    image = Image.fromarray(rgb)
    return np.asarray(image.resize((width, height), Image.Resampling.LANCZOS))


def intrinsics(width: int, height: int, fx: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``geometry.scaled_intrinsics(width, height)`` (float32 K and its pinv), with K[0, 0] set to
    ``fx`` when given (it must be the focal the candidate depths were made with).
    """
    K, inv_K = scaled_intrinsics(width, height)
    if fx is None:
        return K, inv_K
    K[0, 0] = fx
    return K, np.linalg.pinv(K)


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-pixel (1 − SSIM)/2 clamped to [0, 1]; 3×3 box window, reflection padding
    (docs/method.md#losses).

    ``y`` may have batch 1 and is broadcast against ``x`` (its statistics are computed once).
    Intermediates are updated in place, keeping the formula's operation order (so the values are
    bit-identical to the out-of-place form); not meant for autograd.
    """
    x = F.pad(x, (1, 1, 1, 1), mode="reflect")
    y = F.pad(y, (1, 1, 1, 1), mode="reflect")
    mu_x = F.avg_pool2d(x, 3, 1)
    mu_y = F.avg_pool2d(y, 3, 1)
    sigma_x = F.avg_pool2d(x**2, 3, 1).sub_(mu_x**2)
    sigma_y = F.avg_pool2d(y**2, 3, 1).sub_(mu_y**2)
    sigma_xy = F.avg_pool2d(x * y, 3, 1).sub_(mu_x * mu_y)
    # numerator = (2·mu_x·mu_y + C1)(2·sigma_xy + C2)
    numerator = (2 * mu_x).mul_(mu_y).add_(SSIM_C1)
    numerator.mul_(sigma_xy.mul_(2).add_(SSIM_C2))
    # denominator = (mu_x² + mu_y² + C1)(sigma_x + sigma_y + C2)
    denominator = mu_x.pow_(2).add_(mu_y**2).add_(SSIM_C1)
    denominator.mul_(sigma_x.add_(sigma_y).add_(SSIM_C2))
    # clamp((1 − n/d) / 2, 0, 1)
    return numerator.div_(denominator).neg_().add_(1).div_(2).clamp_(0, 1)


def photometric_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """ρ = 0.85·mean_c SSIM term + 0.15·mean_c |target − pred|, shape (B, 1, H, W).

    ``target`` may have batch 1 (broadcast against ``pred``).
    """
    l1 = (target - pred).abs_().mean(1, True)
    ssim_term = ssim(pred, target).mean(1, True)
    return ssim_term.mul_(SSIM_WEIGHT).add_(l1.mul_(L1_WEIGHT))


def _as_tensor(array: ImageLike) -> torch.Tensor:
    if isinstance(array, np.ndarray):  # torch needs a writable, contiguous buffer
        return torch.from_numpy(np.require(array, requirements=["C", "W"]))
    return torch.as_tensor(array)


def _as_chw(image: ImageLike, device: torch.device) -> torch.Tensor:
    """(H, W, 3) image → float32 (3, H, W) in [0, 1]; uint8 is divided by 255."""
    tensor = _as_tensor(image)
    if tensor.ndim != 3 or tensor.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {tuple(tensor.shape)}")
    tensor = tensor.to(device).permute(2, 0, 1)
    if tensor.dtype == torch.uint8:
        return tensor.float().div(255)
    return tensor.float()


def _resolve_device(device: str | torch.device | None, *inputs: object) -> torch.device:
    if device is not None:
        return torch.device(device)
    for item in inputs:
        if isinstance(item, torch.Tensor):
            return item.device
    return torch.device("cpu")


def candidate_losses(
    base: torch.Tensor,
    other: torch.Tensor,
    depths: torch.Tensor,
    side: str,
    fx: float | None = None,
    align_corners: bool = True,
    chunk: int = CANDIDATE_CHUNK,
) -> torch.Tensor:
    """Photometric loss of every candidate of every image, (B, K, H, W).

    ``base``/``other`` are (B, 3, H, W) in [0, 1] and ``depths`` (B, K, H, W), every image with
    its base on ``side``. Candidates are warped ``chunk`` at a time, across images: a GPU takes
    several images per launch. Each candidate's loss is the same bit for bit whatever the chunk
    (a chunk within one image compares against that image once, broadcast).
    """
    images, count, height, width = depths.shape
    K, inv_K = intrinsics(width, height, fx)
    cameras = [torch.from_numpy(m).to(depths.device) for m in (K, inv_K, stereo_T(side))]
    flat = depths.reshape(images * count, 1, height, width)
    owner = torch.arange(images, device=depths.device).repeat_interleave(count)
    losses = torch.empty(images * count, 1, height, width, device=depths.device)
    for start in range(0, images * count, chunk):
        part = slice(start, start + chunk)
        first, last = int(owner[part][0]), int(owner[part][-1])
        sources = other[owner[part]] if first != last else other[first : first + 1]
        targets = base[owner[part]] if first != last else base[first : first + 1]
        n = len(flat[part])
        K_n, inv_K_n, T_n = (m.expand(n, -1, -1) for m in cameras)
        warped = warp(sources.expand(n, -1, -1, -1), flat[part], K_n, inv_K_n, T_n, align_corners)
        losses[part] = photometric_loss(warped, targets)
    return losses.reshape(images, count, height, width)


def fuse_batch(
    bases: Sequence[ImageLike],
    others: Sequence[ImageLike],
    depths: Sequence[ImageLike],
    side: str,
    fx: float | None = None,
    mode: FusionMode = "parity",
    align_corners: bool = True,
    device: str | torch.device | None = None,
    chunk: int = CANDIDATE_CHUNK,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """:func:`fuse` for several images whose base is on the same ``side``, in one batch.

    Each image's result equals :func:`fuse`'s bit for bit on the same device; ``chunk`` is how
    many candidates are warped together (larger on a GPU).
    """
    if mode not in FUSION_MODES:
        raise ValueError(f"unknown fusion mode {mode!r}; expected one of {FUSION_MODES}")
    dev = _resolve_device(device, *bases, *others, *depths)
    depth_t = torch.stack([_as_tensor(d).to(device=dev, dtype=torch.float32) for d in depths])
    if depth_t.ndim != 4 or depth_t.shape[1] > 255:
        raise ValueError(f"depths must be (K ≤ 255, H, W) each, got {tuple(depth_t.shape[1:])}")
    base = torch.stack([_as_chw(image, dev) for image in bases])
    other = torch.stack([_as_chw(image, dev) for image in others])
    if base.shape != other.shape or base.shape[2:] != depth_t.shape[2:]:
        raise ValueError(
            f"shape mismatch: base {tuple(base.shape[1:])}, other {tuple(other.shape[1:])}, "
            f"depths {tuple(depth_t.shape[1:])}"
        )
    with torch.no_grad():
        losses = candidate_losses(base, other, depth_t, side, fx, align_corners, chunk)
        if mode == "masked":
            losses = losses.masked_fill(depth_t <= 0, float("inf"))
        best = torch.argmin(losses, dim=1, keepdim=True)
        hints = torch.gather(depth_t, 1, best)[:, 0].cpu().numpy()
        winners = best[:, 0].to(torch.uint8).cpu().numpy()
    return list(zip(hints, winners, strict=True))


def fuse(
    base_rgb: ImageLike,
    other_rgb: ImageLike,
    depths: ImageLike,
    side: str,
    fx: float | None = None,
    mode: FusionMode = "parity",
    align_corners: bool = True,
    device: str | torch.device | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Fuse candidate depths (K, H, W) into one hint map.

    ``base_rgb``/``other_rgb`` are (H, W, 3) RGB, float in [0, 1] or uint8. ``fx`` defaults to
    the fixed KITTI focal at this width. Returns (hint float32 (H, W), argmin uint8 (H, W));
    argmin ties go to the lowest candidate index. In ``masked`` mode a pixel with no valid
    candidate gets hint 0 and argmin 0.
    """
    (result,) = fuse_batch([base_rgb], [other_rgb], [depths], side, fx, mode, align_corners, device)
    return result


def fuse_pair(
    left_rgb_uint8: np.ndarray,
    right_rgb_uint8: np.ndarray,
    matchers: list[cv2.StereoSGBM] | None = None,
    matcher_mode: MatcherMode = "parity",
    mode: FusionMode = "parity",
    align_corners: bool = True,
    device: str | torch.device | None = None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Hints for both images of one decoded pair (already at hint resolution).

    Runs the matchers for the left base and for the mirrored right base, then fuses each.
    Returns ``{"l": (hint, argmin), "r": (hint, argmin)}``.
    """
    matchers = matchers if matchers is not None else make_matchers(matcher_mode)
    fx = focal_px(left_rgb_uint8.shape[1])
    views = {"l": (left_rgb_uint8, right_rgb_uint8), "r": (right_rgb_uint8, left_rgb_uint8)}
    out = {}
    for side, (base, other) in views.items():
        disps = candidate_disparities(base, other, side, matchers)
        depths = disparity_to_depth(disps, fx)
        out[side] = fuse(base, other, depths, side, fx, mode, align_corners, device)
    return out
