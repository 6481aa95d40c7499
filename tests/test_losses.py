"""Training losses (docs/method.md#losses): SSIM/photometric values against direct formulas and
the hint precompute, smoothness by hand, the mask-selection truth table, the DH normalisations,
the hint gradient path, and ``compute_losses`` against a hand-written sum over scales."""

from __future__ import annotations

import math
from itertools import product

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from depthhints.config import TrainConfig
from depthhints.hints import fusion
from depthhints.losses import (
    compute_losses,
    hint_proxy_loss,
    hint_reprojection_loss,
    photometric_loss,
    reprojection_term,
    select_masks,
    smoothness_loss,
    ssim,
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one intra-op thread avoids OpenMP spin-waiting on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- SSIM and photometric loss --------------------------------------------------------------
def _ssim_direct(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """SSIM term with explicit loops over each 3×3 window of the reflection-padded images."""
    c1, c2 = 0.01**2, 0.03**2
    out = np.zeros_like(x, dtype=np.float64)
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)), mode="reflect")
    yp = np.pad(y.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)), mode="reflect")
    b_, c_, h_, w_ = x.shape
    for b, c, i, j in product(range(b_), range(c_), range(h_), range(w_)):
        wx = xp[b, c, i : i + 3, j : j + 3].ravel()
        wy = yp[b, c, i : i + 3, j : j + 3].ravel()
        mx, my = wx.mean(), wy.mean()
        vx = (wx * wx).mean() - mx * mx
        vy = (wy * wy).mean() - my * my
        cxy = (wx * wy).mean() - mx * my
        s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
        out[b, c, i, j] = min(max((1 - s) / 2, 0.0), 1.0)
    return out


def test_ssim_matches_direct_formula():
    torch.manual_seed(0)
    x, y = torch.rand(2, 3, 5, 6), torch.rand(2, 3, 5, 6)
    np.testing.assert_allclose(ssim(x, y).numpy(), _ssim_direct(x.numpy(), y.numpy()), atol=2e-6)


def test_photometric_loss_matches_direct_formula_and_no_ssim():
    torch.manual_seed(1)
    pred, target = torch.rand(1, 3, 4, 5), torch.rand(1, 3, 4, 5)
    l1 = np.abs(target.numpy() - pred.numpy()).mean(1, keepdims=True)
    s = _ssim_direct(pred.numpy(), target.numpy()).mean(1, keepdims=True)
    loss = photometric_loss(pred, target)
    assert loss.shape == (1, 1, 4, 5)
    np.testing.assert_allclose(loss.numpy(), 0.85 * s + 0.15 * l1, atol=2e-6)
    np.testing.assert_allclose(photometric_loss(pred, target, no_ssim=True).numpy(), l1, atol=1e-7)


def test_photometric_loss_agrees_with_hint_precompute():
    torch.manual_seed(2)
    pred, target = torch.rand(3, 3, 16, 20), torch.rand(3, 3, 16, 20)
    ours = photometric_loss(pred, target)
    theirs = fusion.photometric_loss(pred.clone(), target.clone())
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)
    torch.testing.assert_close(ssim(pred, target), fusion.ssim(pred, target), rtol=0, atol=1e-6)


def test_identical_images_cost_nothing():
    torch.manual_seed(3)
    x = torch.rand(2, 3, 8, 9)
    assert photometric_loss(x, x.clone()).abs().max() < 1e-6
    assert ssim(x, x.clone()).abs().max() < 1e-6


def test_photometric_loss_is_differentiable():
    torch.manual_seed(4)
    pred = torch.rand(1, 3, 6, 7, requires_grad=True)
    photometric_loss(pred, torch.rand(1, 3, 6, 7)).mean().backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0


# --- smoothness -------------------------------------------------------------------------------
def test_smoothness_by_hand_on_2x3():
    disp = torch.tensor([[[[1.0, 2.0, 4.0], [2.0, 2.0, 1.0]]]])
    image = torch.zeros(1, 3, 2, 3)
    image[:, 0] = torch.tensor([[0.0, 0.3, 0.3], [0.6, 0.0, 0.9]])
    image[:, 1] = torch.tensor([[0.0, 0.0, 0.6], [0.0, 0.0, 0.0]])
    mean = 12.0 / 6
    d = [[v / (mean + 1e-7) for v in row] for row in ([1, 2, 4], [2, 2, 1])]
    r = [[0.0, 0.3, 0.3], [0.6, 0.0, 0.9]]
    g = [[0.0, 0.0, 0.6], [0.0, 0.0, 0.0]]
    gx = []
    for i in range(2):
        for j in range(2):
            grad_img = (abs(r[i][j] - r[i][j + 1]) + abs(g[i][j] - g[i][j + 1])) / 3
            gx.append(abs(d[i][j] - d[i][j + 1]) * math.exp(-grad_img))
    gy = []
    for j in range(3):
        grad_img = (abs(r[0][j] - r[1][j]) + abs(g[0][j] - g[1][j])) / 3
        gy.append(abs(d[0][j] - d[1][j]) * math.exp(-grad_img))
    expected = sum(gx) / len(gx) + sum(gy) / len(gy)
    assert smoothness_loss(disp, image).item() == pytest.approx(expected, rel=1e-6)


def test_smoothness_is_scale_invariant_in_disparity():
    torch.manual_seed(5)
    disp, image = torch.rand(2, 1, 6, 8) + 0.1, torch.rand(2, 3, 6, 8)
    a = smoothness_loss(disp, image)
    b = smoothness_loss(disp * 7, image)
    assert a.item() == pytest.approx(b.item(), rel=1e-5)


# --- mask selection ---------------------------------------------------------------------------
def _px(value: float) -> torch.Tensor:
    return torch.full((1, 1, 1, 1), float(value))


@pytest.mark.parametrize(
    ("r", "i", "h", "m_r", "m_h"),
    [
        (0.1, 0.2, 0.3, 1, 0),  # prediction wins
        (0.2, 0.1, 0.3, 0, 0),  # identity wins: masked out
        (0.3, 0.2, 0.1, 1, 1),  # hint wins: photometric loss kept too
        (0.1, 0.1, 0.3, 1, 0),  # r == i → reprojection wins
        (0.3, 0.1, 0.1, 0, 0),  # i == h → identity wins
        (0.1, 0.3, 0.1, 1, 0),  # r == h → reprojection wins
        (0.2, 0.2, 0.2, 1, 0),  # all equal → reprojection wins
        (0.3, 0.2, 0.2, 0, 0),  # i == h < r → identity
    ],
)
def test_mask_truth_table(r, i, h, m_r, m_h):
    photometric, hint = select_masks(_px(r), _px(i), _px(h))
    assert (photometric.item(), hint.item()) == (m_r, m_h)
    # the same answers as an argmin over [r, i, h] (first index on ties)
    idx = torch.argmin(torch.tensor([r, i, h])).item()
    assert (int(idx != 1), int(idx == 2)) == (m_r, m_h)


@pytest.mark.parametrize(("r", "i", "m_r"), [(0.1, 0.2, 1), (0.2, 0.1, 0), (0.2, 0.2, 1)])
def test_mask_without_hints(r, i, m_r):
    photometric, hint = select_masks(_px(r), _px(i), None)
    assert photometric.item() == m_r and hint is None


def test_invalid_hint_is_never_selected():
    torch.manual_seed(6)
    warped, target = torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4)
    valid = torch.ones(1, 1, 4, 4)
    valid[..., :2] = 0
    hint_reproj = hint_reprojection_loss(target.clone(), target, valid)  # perfect hint where valid
    torch.testing.assert_close(hint_reproj[..., 2:], torch.zeros(1, 1, 4, 2), atol=1e-6, rtol=0)
    torch.testing.assert_close(
        hint_reproj[..., :2], torch.full((1, 1, 4, 2), 1000.0), rtol=1e-6, atol=0
    )
    r = photometric_loss(warped, target)
    _, m_h = select_masks(r, r + 0.5, hint_reproj)
    assert m_h[..., :2].sum() == 0 and m_h[..., 2:].sum() == 8
    _, m_h = select_masks(r, None, hint_reproj)
    assert m_h[..., :2].sum() == 0 and m_h[..., 2:].sum() == 8


def test_no_automasking_with_hints_works():
    """The published code crashes here (docs/method.md#quirk-automasking-with-hints); m_r = 1
    and m_h = argmin[r, ρ_h] == 1."""
    r = torch.tensor([0.1, 0.5, 0.3]).view(1, 1, 1, 3)
    h = torch.tensor([0.2, 0.4, 0.3]).view(1, 1, 1, 3)
    m_r, m_h = select_masks(r, None, h)
    assert m_r.tolist() == [[[[1.0, 1.0, 1.0]]]]
    assert m_h.tolist() == [[[[0.0, 1.0, 0.0]]]]


# --- DH normalisations ------------------------------------------------------------------------
def test_reprojection_term_is_mean_over_selected_pixels():
    r = torch.tensor([0.2, 0.4, 0.9, 0.6]).view(1, 1, 2, 2)
    m = torch.tensor([1.0, 1.0, 0.0, 1.0]).view(1, 1, 2, 2)
    assert reprojection_term(r, m).item() == pytest.approx((0.2 + 0.4 + 0.6) / (3 + 1e-7))
    assert reprojection_term(r, torch.zeros_like(m)).item() == 0


def test_hint_proxy_loss_by_hand():
    depth = torch.tensor([1.0, 2.0, 5.0, 3.0]).view(1, 1, 2, 2)
    hint = torch.tensor([2.0, 2.5, 0.0, 1.0]).view(1, 1, 2, 2)
    valid = (hint > 0).float()
    m_h = torch.tensor([1.0, 1.0, 0.0, 0.0]).view(1, 1, 2, 2)
    expected = (math.log(2.0) + math.log(1.5)) / (2 + 1e-7)
    assert hint_proxy_loss(depth, hint, valid, m_h).item() == pytest.approx(expected, rel=1e-6)
    # an invalid pixel never contributes, even if its mask were set
    m_all = torch.ones_like(m_h)
    expected_all = (math.log(2.0) + math.log(1.5) + math.log(3.0)) / (4 + 1e-7)
    assert hint_proxy_loss(depth, hint, valid, m_all).item() == pytest.approx(
        expected_all, rel=1e-6
    )


def test_hint_gradient_flows_only_through_depth():
    depth = torch.tensor([1.0, 2.0, 5.0, 3.0]).view(1, 1, 2, 2).requires_grad_()
    hint = torch.tensor([2.0, 2.5, 4.0, 1.0]).view(1, 1, 2, 2).requires_grad_()
    m_h = torch.tensor([1.0, 0.0, 1.0, 0.0]).view(1, 1, 2, 2)
    hint_proxy_loss(depth, hint, torch.ones_like(m_h), m_h).backward()
    assert hint.grad is None
    # d/dd log(|d − h| + 1) = sign(d − h)/(|d − h| + 1), over Σm_h = 2
    expected = torch.tensor([-1 / 2 / 2, 0.0, 1 / 2 / 2, 0.0]).view(1, 1, 2, 2)
    torch.testing.assert_close(depth.grad, expected, rtol=1e-5, atol=1e-7)


# --- compute_losses ---------------------------------------------------------------------------
B, H, W = 2, 8, 16


def _synthetic(config: TrainConfig, seed: int = 0) -> tuple[dict, dict]:
    """A tiny inputs/outputs pair with everything compute_losses reads."""
    g = torch.Generator().manual_seed(seed)
    inputs: dict = {}
    outputs: dict = {}
    for f in config.all_frame_ids:
        for s in range(4):
            inputs[("color", f, s)] = torch.rand(B, 3, H // 2**s, W // 2**s, generator=g)
    for s in config.scales:
        outputs[("disp", s)] = torch.rand(B, 1, H // 2**s, W // 2**s, generator=g) * 0.9 + 0.05
        outputs[("depth", 0, s)] = torch.rand(B, 1, H, W, generator=g) * 20 + 0.5
        for f in config.all_frame_ids[1:]:
            outputs[("color", f, s)] = torch.rand(B, 3, H, W, generator=g)
    if config.use_depth_hints:
        hint = torch.rand(B, 1, H, W, generator=g) * 20 + 0.5
        hint[:, :, :, :3] = 0
        inputs["depth_hint"] = hint
        inputs["depth_hint_mask"] = (hint > 0).float()
        # a warped-by-hint image close to the target on a block, so the hint wins there
        near = inputs[("color", 0, 0)] + 0.01 * torch.rand(B, 3, H, W, generator=g)
        outputs[("color_depth_hint", "s", 0)] = torch.where(
            torch.arange(W).view(1, 1, 1, W) < W // 2, near, torch.rand(B, 3, H, W, generator=g)
        )
    return inputs, outputs


def _hand_total(inputs: dict, outputs: dict, config: TrainConfig) -> dict[str, float]:
    """docs/method.md#losses written out: argmin over stacked [r, i, ρ_h], sums by hand, noise
    replayed."""

    def rho(a, b):
        return photometric_loss(a, b, config.no_ssim)

    sources = config.all_frame_ids[1:]
    target = inputs[("color", 0, 0)]
    reduce = (
        (lambda x: x.mean(1, keepdim=True))
        if config.avg_reprojection
        else (lambda x: x.min(1, keepdim=True)[0])
    )
    out: dict[str, float] = {}
    total = 0.0
    hint_rho = None
    if config.use_depth_hints:
        valid = inputs["depth_hint_mask"]
        hint_rho = rho(outputs[("color_depth_hint", "s", 0)], target) + 1000 * (1 - valid)
    for s in config.scales:
        r = reduce(torch.cat([rho(outputs[("color", f, s)], target) for f in sources], 1))
        stack = [r]
        if not config.disable_automasking:
            i = reduce(torch.cat([rho(inputs[("color", f, 0)], target) for f in sources], 1))
            i = i + torch.randn(i.shape) * 1e-5
            stack.append(i)
        if hint_rho is not None:
            stack.append(hint_rho)
        idx = torch.argmin(torch.cat(stack, 1), dim=1, keepdim=True)
        automask = not config.disable_automasking
        m_r = (idx != 1).float() if automask else torch.ones_like(r)
        reproj = float((r * m_r).sum() / (m_r.sum() + 1e-7))
        loss = reproj
        out[f"reproj_loss/{s}"] = reproj
        if hint_rho is not None:
            m_h = (idx == len(stack) - 1).float()
            d, h = outputs[("depth", 0, s)], inputs["depth_hint"]
            term = torch.log((d - h).abs() + 1) * inputs["depth_hint_mask"] * m_h
            hint_loss = float(term.sum() / (m_h.sum() + 1e-7))
            out[f"depth_hint_loss/{s}"] = hint_loss
            loss += hint_loss
        smooth = smoothness_loss(outputs[("disp", s)], inputs[("color", 0, s)])
        loss += config.disparity_smoothness * float(smooth) / 2**s
        out[f"loss/{s}"] = loss
        total += loss
    out["loss"] = total / len(config.scales)
    return out


CASES = {
    "mono": dict(frame_ids=[0, -1, 1]),
    "stereo_hints": dict(frame_ids=[0], use_stereo=True, use_depth_hints=True),
    "mono_stereo_hints_smooth": dict(
        use_stereo=True, use_depth_hints=True, disparity_smoothness=0.05
    ),
    "stereo_hints_no_automask": dict(
        frame_ids=[0], use_stereo=True, use_depth_hints=True, disable_automasking=True
    ),
    "avg_reprojection": dict(use_stereo=True, use_depth_hints=True, avg_reprojection=True),
    "no_ssim": dict(use_stereo=True, use_depth_hints=True, no_ssim=True),
}


@pytest.mark.parametrize("name", list(CASES))
def test_compute_losses_equals_hand_sum(name):
    config = TrainConfig(height=32, width=32, scales=[0, 1, 2], **CASES[name])
    inputs, outputs = _synthetic(config)
    torch.manual_seed(11)
    result = compute_losses(inputs, outputs, config)
    torch.manual_seed(11)
    expected = _hand_total(inputs, outputs, config)
    got = {k: float(v) for k, v in result.scalars.items()}
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-5, abs=1e-7), key
    assert float(result.total) == pytest.approx(expected["loss"], rel=1e-5)
    assert not result.scalars["loss"].requires_grad
    if config.use_depth_hints:
        assert any(float(v) > 0 for k, v in result.scalars.items() if "depth_hint_loss" in k)
        for s in config.scales:
            assert result.masks[f"depth_hint_pixels/{s}"].shape == (B, 1, H, W)
    if not config.disable_automasking:
        assert set(np.unique(result.masks["automask/0"].numpy())) <= {0.0, 1.0}


def test_flags_change_the_value_as_expected():
    base = TrainConfig(height=32, width=32, scales=[0], use_stereo=True, disparity_smoothness=0)
    inputs, outputs = _synthetic(base)

    def loss(**changes):
        config = base.replace(**changes)
        torch.manual_seed(0)
        return compute_losses(inputs, outputs, config).scalars["loss"].item()

    target = inputs[("color", 0, 0)]
    warped = [outputs[("color", f, 0)] for f in base.all_frame_ids[1:]]
    no_mask = dict(disable_automasking=True)
    per_source = torch.cat([photometric_loss(w, target) for w in warped], 1)
    assert loss(**no_mask) == pytest.approx(per_source.min(1)[0].mean().item(), rel=1e-6)
    assert loss(**no_mask, avg_reprojection=True) == pytest.approx(
        per_source.mean().item(), rel=1e-6
    )
    l1 = torch.cat([(w - target).abs().mean(1, keepdim=True) for w in warped], 1)
    assert loss(**no_mask, no_ssim=True) == pytest.approx(l1.min(1)[0].mean().item(), rel=1e-6)
    assert loss(**no_mask, avg_reprojection=True) > loss(**no_mask)


def test_predictive_mask_multiplies_and_adds_bce():
    config = TrainConfig(
        height=32,
        width=32,
        scales=[0, 1],
        use_stereo=True,
        disable_automasking=True,
        predictive_mask=True,
        disparity_smoothness=0,
    )
    inputs, outputs = _synthetic(config)
    n_src = len(config.all_frame_ids) - 1
    for s in config.scales:
        outputs[("predictive_mask", s)] = torch.rand(B, n_src, H // 2**s, W // 2**s) * 0.8 + 0.1
    got = compute_losses(inputs, outputs, config).scalars
    target = inputs[("color", 0, 0)]
    for s in config.scales:
        mask = F.interpolate(
            outputs[("predictive_mask", s)], size=(H, W), mode="bilinear", align_corners=False
        )
        rho = torch.cat(
            [photometric_loss(outputs[("color", f, s)], target) for f in config.all_frame_ids[1:]],
            1,
        )
        reproj = (rho * mask).min(1)[0].mean().item()
        bce = -torch.log(mask).mean().item()
        assert got[f"reproj_loss/{s}"].item() == pytest.approx(reproj, rel=1e-5)
        assert got[f"loss/{s}"].item() == pytest.approx(reproj + 0.2 * bce, rel=1e-5)


def test_automask_noise_uses_the_global_rng_on_the_input_device():
    config = TrainConfig(height=32, width=32, scales=[0], use_stereo=True, frame_ids=[0])
    inputs, outputs = _synthetic(config)
    torch.manual_seed(5)
    a = compute_losses(inputs, outputs, config).scalars["loss"].item()
    torch.manual_seed(5)
    b = compute_losses(inputs, outputs, config).scalars["loss"].item()
    assert a == b


# --- hint_supervision -------------------------------------------------------------------------
HINTS = dict(frame_ids=[0], use_stereo=True, use_depth_hints=True)
NO_HINTS = dict(use_depth_hints=False)


def _losses(inputs: dict, outputs: dict, config: TrainConfig, seed: int = 11):
    torch.manual_seed(seed)  # the same auto-masking noise for every call
    return compute_losses(inputs, outputs, config)


@pytest.mark.parametrize("name", [name for name in CASES if CASES[name].get("use_depth_hints")])
def test_default_hint_supervision_is_the_published_loss(name):
    config = TrainConfig(height=32, width=32, scales=[0, 1, 2], **CASES[name])
    inputs, outputs = _synthetic(config)
    default = _losses(inputs, outputs, config)
    explicit = _losses(inputs, outputs, config.replace(hint_supervision="hints"))
    assert torch.equal(default.total, explicit.total)
    for key, mask in default.masks.items():
        assert torch.equal(mask, explicit.masks[key]), key


def _grads(total: torch.Tensor, tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    grads = torch.autograd.grad(total, tensors, allow_unused=True)
    return [torch.zeros_like(t) if g is None else g for t, g in zip(tensors, grads, strict=True)]


@pytest.mark.parametrize("smoothness", [0.0, 0.05])
def test_hard_supervision_is_the_hint_term_alone(smoothness):
    config = TrainConfig(
        height=32,
        width=32,
        scales=[0, 1, 2],
        hint_supervision="hard",
        disparity_smoothness=smoothness,
        **HINTS,
    )
    inputs, outputs = _synthetic(config)
    warped = [outputs[("color", "s", s)].requires_grad_() for s in config.scales]
    depths = [outputs[("depth", 0, s)].requires_grad_() for s in config.scales]
    result = _losses(inputs, outputs, config)

    hint, valid = inputs["depth_hint"], inputs["depth_hint_mask"]
    expected = 0.0
    for s, depth in zip(config.scales, depths, strict=True):
        log_error = torch.log((depth.detach() - hint).abs() + 1)
        term = float((log_error * valid).sum() / (valid.sum() + 1e-7))
        smooth = float(smoothness_loss(outputs[("disp", s)], inputs[("color", 0, s)]))
        expected += term + smoothness * smooth / 2**s
        assert float(result.scalars[f"depth_hint_loss/{s}"]) == pytest.approx(term, rel=1e-6)
        assert float(result.scalars[f"reproj_loss/{s}"]) > 0  # logged, not optimised
        assert torch.equal(result.masks[f"depth_hint_pixels/{s}"], valid)
    assert float(result.total.detach()) == pytest.approx(expected / len(config.scales), rel=1e-6)
    grads = _grads(result.total, warped + depths)
    assert all(g.abs().sum() == 0 for g in grads[: len(warped)])
    assert all(g.abs().sum() > 0 for g in grads[len(warped) :])
    # the published loss does train through the warped images
    hinted = _losses(inputs, outputs, config.replace(hint_supervision="hints"))
    assert all(g.abs().sum() > 0 for g in _grads(hinted.total, warped))


def test_sum_supervision_uses_every_valid_hint_pixel():
    """The hint reprojects better than the prediction on columns < 8 (see _synthetic), worse on
    8–15, where the prediction's warp is perfect. With depth 3 everywhere and hint 1 on columns
    3–7, 2 on 8–15 (0, invalid, on 0–2): "hints" sees |d − h| = 2 only, "sum" all 13 valid
    columns: (5·log 3 + 8·log 2) / 13."""
    config = TrainConfig(
        height=32, width=32, scales=[0, 1], disparity_smoothness=0, hint_supervision="sum", **HINTS
    )
    inputs, outputs = _synthetic(config)
    columns = torch.arange(W).view(1, 1, 1, W).expand(B, 1, H, W)
    hint = torch.where(columns < 8, 1.0, 2.0).masked_fill(columns < 3, 0.0)
    inputs["depth_hint"], inputs["depth_hint_mask"] = hint, (hint > 0).float()
    for s in config.scales:
        outputs[("depth", 0, s)] = torch.full((B, 1, H, W), 3.0)
        warped = outputs[("color", "s", s)]
        outputs[("color", "s", s)] = torch.where(columns >= 7, inputs[("color", 0, 0)], warped)

    summed = _losses(inputs, outputs, config)
    hinted = _losses(inputs, outputs, config.replace(hint_supervision="hints"))
    no_hints = _losses(inputs, outputs, config.replace(hint_supervision="hints", **NO_HINTS))
    expected_sum = (5 * math.log(3) + 8 * math.log(2)) / 13
    for s in config.scales:
        m_h = hinted.masks[f"depth_hint_pixels/{s}"]
        assert m_h[..., 3:8].sum() > 0 and m_h[..., 8:].sum() == 0  # valid, but ignored
        assert float(hinted.scalars[f"depth_hint_loss/{s}"]) == pytest.approx(math.log(3))
        assert float(summed.scalars[f"depth_hint_loss/{s}"]) == pytest.approx(expected_sum)
        assert torch.equal(summed.masks[f"depth_hint_pixels/{s}"], inputs["depth_hint_mask"])
        # the photometric part is the one without hints (selection over [r, i] only)
        assert torch.equal(summed.scalars[f"reproj_loss/{s}"], no_hints.scalars[f"reproj_loss/{s}"])
        assert torch.equal(summed.masks[f"automask/{s}"], no_hints.masks[f"automask/{s}"])
    assert float(summed.total) == pytest.approx(float(no_hints.total) + expected_sum, rel=1e-6)
