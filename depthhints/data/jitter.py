"""Colour jitter of a batch on its device, each sample with its own draw.

The same four operations as torchvision's ``ColorJitter`` on float tensors (brightness,
contrast, saturation, hue), applied in each sample's own order with its own factors. A loop
over samples would launch every operation once per image; here each (position, operation)
pair runs once on the samples that apply it there, with indices chosen on the host, so the
device never waits on a decision.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

BRIGHTNESS, CONTRAST, SATURATION, HUE = range(4)


def _blend(image: Tensor, other: Tensor, factor: Tensor) -> Tensor:
    return (factor * image + (1.0 - factor) * other).clamp(0.0, 1.0)


def _grayscale(image: Tensor) -> Tensor:
    r, g, b = image.unbind(dim=-3)
    return (0.2989 * r + 0.587 * g + 0.114 * b).unsqueeze(-3)


def adjust_brightness(image: Tensor, factor: Tensor) -> Tensor:
    return _blend(image, torch.zeros_like(image), factor)


def adjust_contrast(image: Tensor, factor: Tensor) -> Tensor:
    mean = _grayscale(image).mean(dim=(-3, -2, -1), keepdim=True)
    return _blend(image, mean, factor)


def adjust_saturation(image: Tensor, factor: Tensor) -> Tensor:
    return _blend(image, _grayscale(image), factor)


def rgb_to_hsv(image: Tensor) -> Tensor:
    """(..., 3, H, W) RGB in [0, 1] → HSV with hue in [0, 1)."""
    r, g, b = image.unbind(dim=-3)
    maxc, minc = image.amax(dim=-3), image.amin(dim=-3)
    delta = maxc - minc
    grey = delta == 0
    safe = torch.where(grey, torch.ones_like(delta), delta)
    saturation = delta / torch.where(grey, torch.ones_like(maxc), maxc)
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    hue = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    hue = torch.where(grey, torch.zeros_like(hue), hue)
    return torch.stack(((hue / 6.0 + 1.0).fmod(1.0), saturation, maxc), dim=-3)


def hsv_to_rgb(image: Tensor) -> Tensor:
    """Inverse of :func:`rgb_to_hsv`."""
    h, s, v = image.unbind(dim=-3)
    h6 = h * 6.0
    sector = torch.floor(h6)
    f = h6 - sector
    sector = sector.long().remainder(6)
    p = (v * (1.0 - s)).clamp(0.0, 1.0)
    q = (v * (1.0 - s * f)).clamp(0.0, 1.0)
    t = (v * (1.0 - s * (1.0 - f))).clamp(0.0, 1.0)
    # For sectors 0..5: (r, g, b) = (v,t,p) (q,v,p) (p,v,t) (p,q,v) (t,p,v) (v,p,q)
    table = torch.tensor(
        [[0, 2, 1, 1, 3, 0], [3, 0, 0, 2, 1, 1], [1, 1, 3, 0, 0, 2]], device=image.device
    )
    choices = torch.stack((v, p, q, t), dim=-3)
    index = table[:, sector].movedim(0, -3)
    return choices.gather(-3, index)


def adjust_hue(image: Tensor, factor: Tensor) -> Tensor:
    hsv = rgb_to_hsv(image)
    h, s, v = hsv.unbind(dim=-3)
    h = (h + factor.squeeze(-3)).remainder(1.0)
    return hsv_to_rgb(torch.stack((h, s, v), dim=-3))


OPERATIONS: tuple[Callable[[Tensor, Tensor], Tensor], ...] = (
    adjust_brightness,
    adjust_contrast,
    adjust_saturation,
    adjust_hue,
)


def jitter_batch(images: Tensor, enabled: Tensor, order: Tensor, factors: Tensor) -> Tensor:
    """Jitter ``images`` (B, 3, H, W) in [0, 1]; a new tensor.

    ``enabled`` (B,) bool, ``order`` (B, 4) operation indices and ``factors`` (B, 4)
    (brightness, contrast, saturation, hue) are host tensors, the draws of each sample.
    """
    out = images.clone()
    enabled, order, factors = enabled.cpu(), order.cpu(), factors.cpu()
    device_factors = factors.to(images.device, images.dtype, non_blocking=True)
    for position in range(order.shape[1]):
        for operation, apply in enumerate(OPERATIONS):
            chosen = torch.nonzero(enabled & (order[:, position] == operation)).flatten()
            if len(chosen) == 0:
                continue
            index = chosen.to(images.device, non_blocking=True)
            factor = device_factors[index, operation].view(-1, 1, 1, 1)
            out[index] = apply(out[index], factor)
    return out
