"""Straightforward statements of the published hint procedure (docs/method.md#hint-fusion),
independent of ``hints_worker``: the oracles our fast code is tested against, and the baseline
the benchmark times it against.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

PUBLISHED_SETTINGS = [(block, ndisp) for block in (1, 2, 3) for ndisp in (64, 96, 128, 160)]


def plain_fusion(
    base: torch.Tensor,
    other: torch.Tensor,
    depths: torch.Tensor,
    side: str,
    align_corners: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """docs/method.md#hint-fusion written out plainly: back-project every candidate depth
    (K, H, W), move it to the other camera, project, sample the other view bilinearly with border
    padding, score with 0.85·SSIM term + 0.15·L1, and take the per-pixel argmin.
    ``base``/``other`` are (1, 3, H, W) in [0, 1]. Returns (hint, argmin) as numpy arrays."""
    n, height, width = depths.shape
    K = np.array([[0.58, 0, 0.5, 0], [0, 1.92, 0.5, 0], [0, 0, 1, 0], [0, 0, 0, 1]], np.float32)
    K[0, :] *= width
    K[1, :] *= height
    inv_K = torch.from_numpy(np.linalg.pinv(K)).expand(n, 4, 4)
    K = torch.from_numpy(K).expand(n, 4, 4)
    T = torch.eye(4).expand(n, 4, 4).clone()
    T[:, 0, 3] = -0.1 if side == "l" else 0.1

    xs, ys = np.meshgrid(range(width), range(height), indexing="xy")
    pix = np.stack([xs.ravel(), ys.ravel(), np.ones(height * width)]).astype(np.float32)
    pix = torch.from_numpy(pix).expand(n, 3, height * width)
    cam = depths.view(n, 1, -1) * torch.matmul(inv_K[:, :3, :3], pix)
    cam = torch.cat([cam, torch.ones(n, 1, height * width)], 1)
    proj = torch.matmul(torch.matmul(K, T)[:, :3, :], cam)
    uv = proj[:, :2] / (proj[:, 2:3] + 1e-7)
    uv = uv.view(n, 2, height, width).permute(0, 2, 3, 1)
    u = (uv[..., 0] / (width - 1) - 0.5) * 2
    v = (uv[..., 1] / (height - 1) - 0.5) * 2
    grid = torch.stack([u, v], -1)
    warped = F.grid_sample(
        other.expand(n, -1, -1, -1), grid, "bilinear", "border", align_corners=align_corners
    )
    target = base.expand(n, -1, -1, -1)

    pool, pad = torch.nn.AvgPool2d(3, 1), torch.nn.ReflectionPad2d(1)
    x, y = pad(warped), pad(target)
    mu_x, mu_y = pool(x), pool(y)
    sigma_x = pool(x * x) - mu_x**2
    sigma_y = pool(y * y) - mu_y**2
    sigma_xy = pool(x * y) - mu_x * mu_y
    n_ssim = (2 * mu_x * mu_y + 1e-4) * (2 * sigma_xy + 9e-4)
    d_ssim = (mu_x**2 + mu_y**2 + 1e-4) * (sigma_x + sigma_y + 9e-4)
    ssim_term = torch.clamp((1 - n_ssim / d_ssim) / 2, 0, 1).mean(1, True)
    l1 = torch.abs(target - warped).mean(1, True)
    loss = 0.85 * ssim_term + 0.15 * l1
    best = torch.argmin(loss, 0)
    return torch.gather(depths, 0, best)[0].numpy(), best[0].numpy()


def published_hint(
    base_path: str | Path,
    other_path: str | Path,
    side: str,
    width: int = 1024,
    height: int = 320,
    align_corners: bool = True,
) -> np.ndarray:
    """The published per-image procedure: decode and resize both views of the pair, run the 12
    matchers one after the other (mirroring the pair for a right base image), convert to depth
    and fuse. Every image of a pair repeats the decode, resize and matching of its partner."""
    views = [
        np.asarray(Image.open(p).convert("RGB").resize((width, height), Image.LANCZOS))
        for p in (base_path, other_path)
    ]
    base, other = views
    if side == "r":
        base, other = (np.ascontiguousarray(v[:, ::-1]) for v in views)
    fx = np.float32(0.58) * np.float32(width)
    depths = []
    for block, ndisp in PUBLISHED_SETTINGS:
        matcher = cv2.StereoSGBM_create(
            minDisparity=0,
            numDisparities=ndisp,
            blockSize=block,
            P1=36,
            P2=288,
            preFilterCap=63,
            uniquenessRatio=10,
            speckleWindowSize=100,
            speckleRange=16,
        )
        disparity = matcher.compute(base, other).astype(np.float32) / np.float32(16)
        if side == "r":
            disparity = disparity[:, ::-1]
        depth = fx * np.float32(0.1) / (disparity + np.float32(1e-7))
        depths.append(depth * (disparity > 0))
    tensors = [torch.from_numpy(v.astype(np.float32) / 255).permute(2, 0, 1)[None] for v in views]
    hint, _ = plain_fusion(*tensors, torch.from_numpy(np.stack(depths)), side, align_corners)
    return hint
