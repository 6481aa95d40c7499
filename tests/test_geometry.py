"""Camera geometry: intrinsics per scale, stereo extrinsic signs, back-projection/projection and
warping (docs/method.md#intrinsics, docs/method.md#stereo-baseline,
docs/method.md#view-synthesis)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from depthhints.geometry import (
    K_NORM,
    STEREO_BASELINE,
    backproject,
    pixel_grid,
    project,
    scaled_intrinsics,
    stereo_T,
    warp,
)


def _batched(matrix: np.ndarray, batch: int) -> torch.Tensor:
    return torch.from_numpy(matrix).unsqueeze(0).repeat(batch, 1, 1)


def _expected_grid(height: int, width: int) -> torch.Tensor:
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=torch.float32),
        torch.arange(width, dtype=torch.float32),
        indexing="ij",
    )
    return torch.stack([2 * xs / (width - 1) - 1, 2 * ys / (height - 1) - 1], dim=-1)


# --- stereo extrinsic -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("side", "flipped", "tx"),
    [("l", False, -0.1), ("r", False, 0.1), ("l", True, 0.1), ("r", True, -0.1)],
)
def test_stereo_T_signs(side, flipped, tx):
    T = stereo_T(side, flipped)
    assert T.dtype == np.float32 and T.shape == (4, 4)
    assert T[0, 3] == pytest.approx(tx)
    expected = np.eye(4, dtype=np.float32)
    expected[0, 3] = T[0, 3]
    np.testing.assert_array_equal(T, expected)


def test_stereo_T_rejects_bad_side():
    with pytest.raises(ValueError, match="'l' or 'r'"):
        stereo_T("s")


# --- intrinsics ------------------------------------------------------------------------------
def test_intrinsics_at_640x192():
    K, inv_K = scaled_intrinsics(640, 192)
    assert K.dtype == np.float32 and inv_K.dtype == np.float32
    assert K[0, 0] == pytest.approx(371.2)
    assert K[1, 1] == pytest.approx(368.64)
    assert (K[0, 2], K[1, 2]) == (320, 96)
    np.testing.assert_allclose(inv_K @ K, np.eye(4), atol=1e-6)
    np.testing.assert_array_equal(inv_K, np.linalg.pinv(K))


@pytest.mark.parametrize("scale", [0, 1, 2, 3])
def test_intrinsics_per_scale(scale):
    K, _ = scaled_intrinsics(640, 192, scale)
    w, h = 640 // 2**scale, 192 // 2**scale
    np.testing.assert_allclose(K[0], K_NORM[0] * w, rtol=1e-6)
    np.testing.assert_allclose(K[1], K_NORM[1] * h, rtol=1e-6)
    np.testing.assert_array_equal(K[2:], K_NORM[2:])


def test_intrinsics_integer_division_at_odd_sizes():
    K, _ = scaled_intrinsics(1242, 375, 2)  # 1242 // 4 = 310, 375 // 4 = 93
    assert K[0, 0] == pytest.approx(0.58 * 310)
    assert K[0, 2] == pytest.approx(155)
    assert K[1, 1] == pytest.approx(1.92 * 93)
    assert K[1, 2] == pytest.approx(46.5)
    assert scaled_intrinsics(1242, 375)[0][0, 0] == pytest.approx(720.36)


# --- back-projection / projection ------------------------------------------------------------
@pytest.mark.parametrize("batch", [1, 3])
def test_backproject_project_identity_returns_pixel_grid(batch):
    height, width = 12, 20
    K, inv_K = scaled_intrinsics(width, height)
    depth = torch.rand(batch, 1, height, width) * 50 + 0.5
    points = backproject(depth, _batched(inv_K, batch))
    assert points.shape == (batch, 4, height * width)
    torch.testing.assert_close(points[:, 3], torch.ones(batch, height * width))
    torch.testing.assert_close(points[:, 2], depth.reshape(batch, -1), rtol=1e-5, atol=1e-5)
    grid = project(
        points, _batched(K, batch), _batched(np.eye(4, dtype=np.float32), batch), height, width
    )
    assert grid.shape == (batch, height, width, 2)
    expected = _expected_grid(height, width).expand(batch, -1, -1, -1)
    torch.testing.assert_close(grid, expected, rtol=0, atol=1e-5)


def test_pixel_grid_cache_is_not_shared_state():
    depth = torch.ones(1, 1, 4, 5)
    inv_K = _batched(scaled_intrinsics(5, 4)[1], 1)
    first = backproject(depth, inv_K)
    first.mul_(7)  # the result must not alias the cached grid
    torch.testing.assert_close(backproject(depth, inv_K), first / 7)
    grid = pixel_grid(4, 5)
    grid.zero_()
    assert pixel_grid(4, 5)[0, 0, 1] == 1


def _textured(batch: int, height: int, width: int) -> torch.Tensor:
    torch.manual_seed(0)
    return torch.rand(batch, 3, height, width)


@pytest.mark.parametrize(("side", "flipped"), [("l", False), ("r", False), ("l", True)])
@pytest.mark.parametrize("batch", [1, 2, 5])
def test_stereo_warp_of_a_plane_is_a_horizontal_shift(side, flipped, batch):
    """A fronto-parallel plane at depth d shifts the other view by fx·0.1/d pixels."""
    height, width = 16, 96
    K, inv_K = scaled_intrinsics(width, height)
    fx = float(K[0, 0])
    shifts = [1 + b % 4 for b in range(batch)]  # a different integer shift per item
    depth = torch.stack([torch.full((1, height, width), fx * STEREO_BASELINE / s) for s in shifts])
    T = stereo_T(side, flipped)
    source = _textured(batch, height, width)
    warped = warp(
        source, depth, _batched(K, batch), _batched(inv_K, batch), _batched(T, batch), True
    )
    direction = 1 if T[0, 3] < 0 else -1  # t_x < 0: target pixel u samples source u − shift
    for b, shift in enumerate(shifts):
        expected = np.roll(source[b].numpy(), direction * shift, axis=-1)
        interior = slice(shift, width - shift)
        np.testing.assert_allclose(
            warped[b].numpy()[..., interior], expected[..., interior], rtol=0, atol=1e-4
        )


def test_align_corners_false_shifts_by_half_a_pixel():
    """The published call (align_corners left at default False on PyTorch ≥ 1.3) is not the
    identity for an identity transform (docs/method.md#quirk-align-corners); True is."""
    height, width = 8, 12
    K, inv_K = scaled_intrinsics(width, height)
    source = _textured(1, height, width)
    depth = torch.full((1, 1, height, width), 3.0)
    args = (
        source,
        depth,
        _batched(K, 1),
        _batched(inv_K, 1),
        _batched(np.eye(4, dtype=np.float32), 1),
    )
    torch.testing.assert_close(warp(*args, align_corners=True), source, rtol=0, atol=1e-5)
    assert not torch.allclose(warp(*args, align_corners=False), source, atol=1e-3)


def test_warp_float64_and_matches_hint_fusion_warp():
    """The training warp runs in float64; the hint precompute uses the same K (and warps with
    :func:`warp` itself: see the hint-fusion tests at the end of this file)."""
    from depthhints.hints.fusion import intrinsics

    height, width = 10, 24
    K, inv_K = scaled_intrinsics(width, height)
    Kf, inv_Kf = intrinsics(width, height)
    np.testing.assert_array_equal(K, Kf)
    np.testing.assert_array_equal(inv_K, inv_Kf)
    depth = torch.rand(2, 1, height, width) * 20 + 0.2
    T = stereo_T("r")
    out = warp(
        torch.rand(2, 3, height, width, dtype=torch.float64),
        depth.double(),
        _batched(K, 2),
        _batched(inv_K, 2),
        _batched(T, 2),
    )
    assert out.dtype == torch.float64 and out.shape == (2, 3, height, width)


# --- the hint fusion warps with this geometry --------------------------------------------------
@pytest.mark.parametrize(("width", "height"), [(1024, 320), (40, 24), (1242, 375)])
def test_hint_fusion_camera_is_scale_0_camera(width, height):
    """Fusion's K — at the default focal or at the focal the candidates were made with — and its
    stereo extrinsic are this module's, bit for bit; another focal replaces K[0, 0] only."""
    from depthhints.geometry import focal_px
    from depthhints.hints import fusion

    K, inv_K = scaled_intrinsics(width, height, 0)
    for fx in (None, focal_px(width)):
        fusion_K, fusion_inv_K = fusion.intrinsics(width, height, fx)
        np.testing.assert_array_equal(fusion_K, K)
        np.testing.assert_array_equal(fusion_inv_K, inv_K)
    fusion_K, fusion_inv_K = fusion.intrinsics(width, height, 500.0)
    assert fusion_K[0, 0] == 500.0
    np.testing.assert_array_equal(fusion_K.ravel()[1:], K.ravel()[1:])
    np.testing.assert_array_equal(fusion_inv_K, np.linalg.pinv(fusion_K))
    for side in ("l", "r"):
        np.testing.assert_array_equal(fusion.stereo_T(side), stereo_T(side))


@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("side", ["l", "r"])
def test_hint_fusion_loss_is_loss_of_warp(side, align_corners):
    """Each candidate's fusion loss is, bit for bit, the photometric loss of :func:`warp` of the
    other view by that candidate depth: valid and invalid (depth 0) candidates alike, with
    chunks of candidates that span two images."""
    from depthhints.geometry import disparity_to_depth, focal_px
    from depthhints.hints import fusion

    images, count, height, width = 2, 6, 24, 40
    generator = torch.Generator().manual_seed(5)
    base = torch.rand(images, 3, height, width, generator=generator)
    other = torch.rand(images, 3, height, width, generator=generator)
    disp = torch.rand(images, count, height, width, generator=generator) * 12 + 0.3
    disp[torch.rand(disp.shape, generator=generator) < 0.25] = -1.0  # no match: depth 0
    fx = focal_px(width)
    depths = torch.from_numpy(disparity_to_depth(disp.numpy(), fx))
    assert (depths == 0).any() and (depths > 0).any()

    losses = fusion.candidate_losses(base, other, depths, side, fx, align_corners, chunk=4)

    K, inv_K = scaled_intrinsics(width, height)
    cameras = [_batched(m, count) for m in (K, inv_K, stereo_T(side))]
    for i in range(images):
        source = other[i : i + 1].expand(count, -1, -1, -1)
        warped = warp(source, depths[i][:, None], *cameras, align_corners=align_corners)
        expected = fusion.photometric_loss(warped, base[i : i + 1])[:, 0]
        assert torch.equal(losses[i], expected)
