"""Training losses of Depth Hints (docs/method.md#losses): photometric (SSIM + L1), per-pixel
minimum reprojection, auto-masking, the depth-hint proxy loss, edge-aware smoothness and the
optional predictive-mask term, combined over scales by :func:`compute_losses`.

The normalisations are Depth Hints', not monodepth2's (docs/method.md#quirk-loss-normalisation):
the reprojection term is the mean over *selected* pixels only and the hint term is normalised by
the number of hint pixels. ``--disable_automasking`` with hints works here (it crashes in the
published code, docs/method.md#quirk-automasking-with-hints).

``hint_supervision`` (ours) picks how the hints supervise, for the paper's comparison: ``hints``
(published: the hint term where the hint reprojects best), ``sum`` (the self-supervised loss plus
the hint term on every valid hint pixel) or ``hard`` (that hint term alone).

Pure functions of tensors and the config; device-agnostic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from depthhints.config import TrainConfig

SSIM_C1 = 0.01**2
SSIM_C2 = 0.03**2
SSIM_WEIGHT = 0.85
L1_WEIGHT = 0.15
INVALID_HINT_PENALTY = 1000.0
AUTOMASK_NOISE = 1e-5
PREDICTIVE_MASK_WEIGHT = 0.2
EPS = 1e-7


# --------------------------------------------------------------------------- per-pixel terms
def ssim(x: Tensor, y: Tensor) -> Tensor:
    """Per-pixel SSIM loss term ``clamp((1 − SSIM)/2, 0, 1)`` per channel, shape of ``x``.

    3×3 box window, stride 1, reflection padding 1, C1 = 0.01², C2 = 0.03².
    """
    x = F.pad(x, (1, 1, 1, 1), mode="reflect")
    y = F.pad(y, (1, 1, 1, 1), mode="reflect")
    mu_x = F.avg_pool2d(x, 3, 1)
    mu_y = F.avg_pool2d(y, 3, 1)
    sigma_x = F.avg_pool2d(x**2, 3, 1) - mu_x**2
    sigma_y = F.avg_pool2d(y**2, 3, 1) - mu_y**2
    sigma_xy = F.avg_pool2d(x * y, 3, 1) - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + SSIM_C1) * (2 * sigma_xy + SSIM_C2)
    denominator = (mu_x**2 + mu_y**2 + SSIM_C1) * (sigma_x + sigma_y + SSIM_C2)
    return torch.clamp((1 - numerator / denominator) / 2, 0, 1)


def photometric_loss(pred: Tensor, target: Tensor, no_ssim: bool = False) -> Tensor:
    """ρ = 0.85·mean_c SSIM term + 0.15·mean_c |target − pred| (L1 only with ``no_ssim``).

    ``pred``/``target``: (B, C, H, W); returns (B, 1, H, W).
    """
    l1 = (target - pred).abs().mean(1, keepdim=True)
    if no_ssim:
        return l1
    return SSIM_WEIGHT * ssim(pred, target).mean(1, keepdim=True) + L1_WEIGHT * l1


def smoothness_loss(disp: Tensor, image: Tensor) -> Tensor:
    """Edge-aware smoothness of the mean-normalised disparity (docs/method.md#losses), a scalar.

    ``disp`` (B, 1, h, w) is divided by its per-image spatial mean (+1e-7); each gradient is
    weighted by ``exp(−mean_c |∂I|)`` of ``image`` (B, C, h, w), then averaged.
    """
    disp = disp / (disp.mean(dim=(2, 3), keepdim=True) + EPS)
    grad_disp_x = (disp[:, :, :, :-1] - disp[:, :, :, 1:]).abs()
    grad_disp_y = (disp[:, :, :-1, :] - disp[:, :, 1:, :]).abs()
    grad_img_x = (image[:, :, :, :-1] - image[:, :, :, 1:]).abs().mean(1, keepdim=True)
    grad_img_y = (image[:, :, :-1, :] - image[:, :, 1:, :]).abs().mean(1, keepdim=True)
    return (grad_disp_x * torch.exp(-grad_img_x)).mean() + (
        grad_disp_y * torch.exp(-grad_img_y)
    ).mean()


def hint_reprojection_loss(
    warped_by_hint: Tensor, target: Tensor, valid: Tensor, no_ssim: bool = False
) -> Tensor:
    """ρ_h = ρ(Î_hint, I_t) + 1000·(1 − valid): invalid hints can never win the selection."""
    return photometric_loss(warped_by_hint, target, no_ssim) + INVALID_HINT_PENALTY * (1 - valid)


# --------------------------------------------------------------------------- selection
def select_masks(
    reprojection: Tensor, identity: Tensor | None, hint_reprojection: Tensor | None
) -> tuple[Tensor, Tensor | None]:
    """Per-pixel ``(photometric_mask, hint_mask)`` from argmin over [r, i, ρ_h].

    docs/method.md#losses.

    Ties go to the earlier entry. ``photometric_mask`` m_r is 1 where the identity does not win
    (all ones without auto-masking); ``hint_mask`` m_h is 1 where the hint wins (None without
    hints). Without auto-masking m_h is the argmin over [r, ρ_h]. All inputs are (B, 1, H, W);
    the masks are float, detached.
    """
    r = reprojection.detach()
    if identity is None:
        photometric_mask = torch.ones_like(r)
        if hint_reprojection is None:
            return photometric_mask, None
        return photometric_mask, (hint_reprojection.detach() < r).to(r.dtype)
    i = identity.detach()
    identity_wins = i < r
    if hint_reprojection is None:
        return (~identity_wins).to(r.dtype), None
    h = hint_reprojection.detach()
    hint_wins = (h < r) & (h < i)
    identity_wins &= i <= h
    return (~identity_wins).to(r.dtype), hint_wins.to(r.dtype)


def supervision_masks(
    supervision: str,
    reprojection: Tensor,
    identity: Tensor | None,
    hint_reprojection: Tensor | None,
    valid: Tensor | None,
) -> tuple[Tensor, Tensor | None]:
    """``(m_r, m_h)`` for a ``hint_supervision`` mode; ``valid`` is None without hints.

    ``"hints"``: :func:`select_masks` over [r, i, ρ_h]. ``"sum"`` and ``"hard"``: m_r over [r, i]
    as without hints (``hint_reprojection`` is not used) and m_h = valid, every hint pixel.
    """
    if valid is None or supervision == "hints":
        return select_masks(reprojection, identity, hint_reprojection)
    photometric_mask, _ = select_masks(reprojection, identity, None)
    return photometric_mask, valid.detach()


def reprojection_term(reprojection: Tensor, photometric_mask: Tensor) -> Tensor:
    """L_r = Σ(r·m_r) / (Σm_r + 1e-7): the mean over selected pixels only.

    docs/method.md#losses.
    """
    return (reprojection * photometric_mask).sum() / (photometric_mask.sum() + EPS)


def hint_proxy_loss(depth: Tensor, hint: Tensor, valid: Tensor, hint_mask: Tensor) -> Tensor:
    """L_h = Σ[log(|d − h| + 1)·valid·m_h] / (Σm_h + 1e-7); gradient only through ``depth``."""
    hint, valid, hint_mask = hint.detach(), valid.detach(), hint_mask.detach()
    per_pixel = torch.log((depth - hint).abs() + 1) * valid * hint_mask
    return per_pixel.sum() / (hint_mask.sum() + EPS)


# --------------------------------------------------------------------------- the total
@dataclass
class LossResult:
    """The training loss and what to log.

    ``total``: the scalar to back-propagate. ``scalars``: detached 0-d tensors ``loss``,
    ``loss/{s}``, ``reproj_loss/{s}`` (weight 0 in ``total`` with ``hard`` supervision) and
    (with hints) ``depth_hint_loss/{s}``. ``masks``: detached (B, 1, H, W) images
    ``automask/{s}`` (1 where the identity won, DH polarity) and ``depth_hint_pixels/{s}`` (m_h:
    every valid hint pixel with ``sum``/``hard`` supervision).
    """

    total: Tensor
    scalars: dict[str, Tensor] = field(default_factory=dict)
    masks: dict[str, Tensor] = field(default_factory=dict)


def _source_frames(config: TrainConfig) -> list[int | str]:
    return config.all_frame_ids[1:]


def compute_losses(
    inputs: Mapping[Any, Tensor], outputs: Mapping[Any, Tensor], config: TrainConfig
) -> LossResult:
    """Total = (1/|scales|)·Σ_s (L_r,s + L_h,s + λ_sm·L_sm,s/2^s [+ 0.2·BCE(mask, 1)]).

    ``inputs`` is a batch (see ``depthhints.data.dataset``); ``outputs`` holds ``("disp", s)``,
    ``("depth", 0, s)``, ``("color", f, s)`` for every source f, ``("color_depth_hint", "s", 0)``
    with hints and ``("predictive_mask", s)`` with the predictive mask (see
    ``DepthHintsModel.forward``).
    ``config.hint_supervision`` sets m_h (:func:`supervision_masks`); ``hard`` weighs L_r,s 0.
    """
    sources = _source_frames(config)
    use_hints = config.use_depth_hints
    supervision = config.hint_supervision
    automask = not config.disable_automasking
    scalars: dict[str, Tensor] = {}
    masks: dict[str, Tensor] = {}

    hint_reproj = hint = valid = None
    if use_hints:
        hint = inputs["depth_hint"]
        valid = inputs["depth_hint_mask"]
        if supervision == "hints":
            hint_reproj = hint_reprojection_loss(
                outputs[("color_depth_hint", "s", 0)],
                inputs[("color", 0, 0)],
                valid,
                config.no_ssim,
            )

    total = None
    for scale in config.scales:
        source_scale = scale if config.v1_multiscale else 0
        target = inputs[("color", 0, source_scale)]
        reprojections = torch.cat(
            [
                photometric_loss(outputs[("color", f, scale)], target, config.no_ssim)
                for f in sources
            ],
            dim=1,
        )
        loss = None
        if config.predictive_mask:
            mask = outputs[("predictive_mask", scale)]
            if not config.v1_multiscale:
                mask = F.interpolate(
                    mask, size=target.shape[-2:], mode="bilinear", align_corners=False
                )
            reprojections = reprojections * mask
            loss = PREDICTIVE_MASK_WEIGHT * F.binary_cross_entropy(mask, torch.ones_like(mask))
        reduce = _mean if config.avg_reprojection else _min
        reprojection = reduce(reprojections)

        identity = None
        if automask:
            identity = reduce(
                torch.cat(
                    [
                        photometric_loss(inputs[("color", f, source_scale)], target, config.no_ssim)
                        for f in sources
                    ],
                    dim=1,
                )
            )
            identity = identity + torch.randn_like(identity) * AUTOMASK_NOISE

        photometric_mask, hint_mask = supervision_masks(
            supervision, reprojection, identity, hint_reproj, valid
        )
        reproj_loss = reprojection_term(reprojection, photometric_mask)
        # hard supervision only logs L_r; weight 0 keeps it in the graph, so that every parameter
        # (the pose network's too) gets a gradient, as DDP requires
        loss = _plus(loss, 0 * reproj_loss if supervision == "hard" else reproj_loss)
        scalars[f"reproj_loss/{scale}"] = reproj_loss.detach()
        if automask:
            masks[f"automask/{scale}"] = 1 - photometric_mask

        if use_hints:
            assert hint_mask is not None and hint is not None and valid is not None
            hint_loss = hint_proxy_loss(outputs[("depth", 0, scale)], hint, valid, hint_mask)
            loss = _plus(loss, hint_loss)
            scalars[f"depth_hint_loss/{scale}"] = hint_loss.detach()
            masks[f"depth_hint_pixels/{scale}"] = hint_mask

        if config.disparity_smoothness:
            smooth = smoothness_loss(outputs[("disp", scale)], inputs[("color", 0, scale)])
            loss = _plus(loss, config.disparity_smoothness * smooth / 2**scale)

        assert loss is not None  # hard supervision requires hints (config validation)
        scalars[f"loss/{scale}"] = loss.detach()
        total = _plus(total, loss)

    assert total is not None  # config validation guarantees at least one scale
    total = total / len(config.scales)
    scalars["loss"] = total.detach()
    return LossResult(total=total, scalars=scalars, masks=masks)


def _plus(a: Tensor | None, b: Tensor) -> Tensor:
    return b if a is None else a + b


def _min(losses: Tensor) -> Tensor:
    return losses.min(dim=1, keepdim=True)[0]


def _mean(losses: Tensor) -> Tensor:
    return losses.mean(dim=1, keepdim=True)
