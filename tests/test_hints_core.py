"""Hint precompute core: SGBM matchers, disparity → depth, fusion by reprojection loss.

Two oracles: (a) the published code's output on a real KITTI pair (fixtures/reference_hints),
(b) a plain re-statement of docs/method.md#hint-fusion written here, on random candidate sets.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from depthhints.geometry import disparity_to_depth, focal_px
from depthhints.hints.fusion import (
    HINT_WIDTH,
    candidate_losses,
    fuse,
    fuse_batch,
    fuse_pair,
    intrinsics,
    photometric_loss,
    resize_for_hints,
    stereo_T,
)
from depthhints.hints.sgm import (
    MATCHER_SETTINGS,
    PUBLISHED,
    candidate_disparities,
    make_matchers,
)
from tests.oracles import plain_fusion, published_hint

REFERENCE = Path(__file__).parent / "fixtures" / "reference_hints"
KITTI_PAIR = Path(__file__).parent / "fixtures" / "kitti_object_stereo"
MIN_AGREEMENT = 0.999


def _rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def _textured_pair(disparity: int, height: int = 48, width: int = 256) -> tuple:
    """Rectified pair of a smooth random texture at constant disparity: right[x] = left[x + d]."""
    rng = np.random.default_rng(7)
    small = rng.integers(0, 256, (height // 2, (width + disparity) // 2 + 1, 3), dtype=np.uint8)
    texture = cv2.resize(small, (small.shape[1] * 2, height), interpolation=cv2.INTER_LINEAR)
    left = np.ascontiguousarray(texture[:, :width])
    right = np.ascontiguousarray(texture[:, disparity : disparity + width])
    return left, right


# --- matchers and disparity → depth ------------------------------------------------------------


def test_matcher_settings_order():
    assert len(MATCHER_SETTINGS) == 12
    for block in (1, 2, 3):
        for j, ndisp in enumerate((64, 96, 128, 160)):
            assert MATCHER_SETTINGS[4 * (block - 1) + j] == (block, ndisp)


def _check_shared_parameters(matcher: cv2.StereoSGBM) -> None:
    assert matcher.getMinDisparity() == 0
    assert (matcher.getP1(), matcher.getP2()) == (36, 288)
    assert matcher.getPreFilterCap() == 63
    assert matcher.getUniquenessRatio() == 10
    assert matcher.getSpeckleWindowSize() == 100
    assert matcher.getSpeckleRange() == 16
    assert matcher.getDisp12MaxDiff() == 0


@pytest.mark.parametrize(
    ("preset", "cv_mode", "settings"),
    [
        (PUBLISHED, cv2.STEREO_SGBM_MODE_SGBM, MATCHER_SETTINGS),
        ("parity", cv2.STEREO_SGBM_MODE_SGBM, MATCHER_SETTINGS[:8]),
        ("fast", cv2.STEREO_SGBM_MODE_SGBM, ((1, 160), (3, 160))),
        ("quality", cv2.STEREO_SGBM_MODE_HH, MATCHER_SETTINGS[:8]),
        ("single", cv2.STEREO_SGBM_MODE_SGBM, ((3, 128),)),
    ],
)
def test_matcher_parameters(preset, cv_mode, settings):
    matchers = make_matchers(preset)
    assert len(matchers) == len(settings)
    for matcher, (block, ndisp) in zip(matchers, settings, strict=True):
        assert (matcher.getBlockSize(), matcher.getNumDisparities()) == (block, ndisp)
        assert matcher.getMode() == cv_mode
        _check_shared_parameters(matcher)


def test_single_preset_is_one_published_matcher():
    (matcher,) = make_matchers("single")
    assert (matcher.getBlockSize(), matcher.getNumDisparities()) == (3, 128)
    assert (3, 128) in MATCHER_SETTINGS
    from depthhints.hints.compute import HintConfig

    manifest = HintConfig(matchers="single").manifest("npy", ".")
    assert manifest.config["candidates"]["settings"] == [[3, 128]]


def test_unknown_modes_rejected():
    with pytest.raises(ValueError, match="matcher mode"):
        make_matchers("hh")
    base = np.zeros((4, 6, 3), np.float32)
    with pytest.raises(ValueError, match="fusion mode"):
        fuse(base, base, np.ones((2, 4, 6), np.float32), "l", mode="best")


def test_disparity_to_depth_values():
    disp = np.array([[-1.0, 0.0, 1e-3, 1.0, 59.392, 160.0]], dtype=np.float32)
    depth = disparity_to_depth(disp, 593.92)
    assert depth.dtype == np.float32
    assert depth[0, 0] == 0 and depth[0, 1] == 0
    expected = np.float32(59.392) / (disp[0, 2:] + np.float32(1e-7))
    np.testing.assert_array_equal(depth[0, 2:], expected)
    np.testing.assert_allclose(depth[0, 3:], [59.392, 1.0, 0.3712], rtol=1e-6)


def test_hint_focal_and_stereo_T():
    assert focal_px(1024) == pytest.approx(593.92, abs=1e-4)
    K, inv_K = intrinsics(1024, 320)
    assert K.dtype == inv_K.dtype == np.float32
    np.testing.assert_allclose(K[:2, :3], [[593.92, 0, 512], [0, 614.4, 160]], rtol=1e-6)
    np.testing.assert_allclose(inv_K @ K, np.eye(4), atol=1e-6)
    assert stereo_T("l")[0, 3] == pytest.approx(-0.1)
    assert stereo_T("r")[0, 3] == pytest.approx(0.1)
    with pytest.raises(ValueError):
        stereo_T("x")


def test_right_base_is_matched_mirrored():
    d = 10
    left, right = _textured_pair(d)
    matchers = make_matchers(PUBLISHED)
    disp_l = candidate_disparities(left, right, "l", matchers)
    disp_r = candidate_disparities(right, left, "r", matchers)
    assert disp_l.shape == disp_r.shape == (12, *left.shape[:2])
    assert disp_l.dtype == disp_r.dtype == np.float32
    width = left.shape[1]
    for k, (_, ndisp) in enumerate(MATCHER_SETTINGS):
        # the band without a match is on the left edge for 'l' and on the right edge for 'r'
        assert (disp_l[k, :, : ndisp - 1] <= 0).all()
        assert (disp_r[k, :, width - ndisp + 1 :] <= 0).all()
        inner_l = disp_l[k, 4:-4, ndisp + 4 : -4]
        inner_r = disp_r[k, 4:-4, 4 : width - ndisp - 4]
        assert np.mean(np.abs(inner_l - d) <= 0.5) > 0.9
        assert np.mean(np.abs(inner_r - d) <= 0.5) > 0.9


def test_resize_for_hints():
    left = _rgb(KITTI_PAIR / "left.png")
    out = resize_for_hints(left)
    assert out.shape == (320, 1024, 3) and out.dtype == np.uint8
    expected = Image.fromarray(left).resize((1024, 320), Image.Resampling.LANCZOS)
    np.testing.assert_array_equal(out, np.asarray(expected))


# --- oracle (a): the published code's hints on a real pair -------------------------------------


@pytest.fixture(scope="module")
def real_pair():
    """The reference pair and its 12 candidate depth maps per side (SGBM run once per side)."""
    left, right = _rgb(REFERENCE / "left_1024x320.png"), _rgb(REFERENCE / "right_1024x320.png")
    matchers = make_matchers("parity")
    fx = focal_px(left.shape[1])
    views = {"l": (left, right), "r": (right, left)}
    depths = {
        side: disparity_to_depth(candidate_disparities(base, other, side, matchers), fx)
        for side, (base, other) in views.items()
    }
    return views, depths


# Measured on torch 2.14.1 CPU / OpenCV 5.0.0 / NumPy 2.4.6: 100.000 % of pixels agree for both
# sides and both align_corners variants, argmin and hint alike (hints bit-identical).
@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("side", ["l", "r"])
def test_matches_reference_hints(real_pair, side, align_corners):
    views, depths = real_pair
    base, other = views[side]
    variant = REFERENCE / f"align_corners_{str(align_corners).lower()}"
    ref_hint = np.load(variant / f"hint_{side}.npy")[0]
    ref_argmin = np.load(variant / f"argmin_{side}.npy")[0]

    hint, argmin = fuse(base, other, depths[side], side, align_corners=align_corners)

    assert hint.shape == ref_hint.shape and hint.dtype == np.float32
    assert argmin.shape == ref_argmin.shape and argmin.dtype == np.uint8
    assert np.mean(argmin == ref_argmin) >= MIN_AGREEMENT
    assert np.mean(hint == ref_hint) >= MIN_AGREEMENT


def test_published_procedure_oracle_reproduces_reference():
    """The benchmark's baseline (tests/oracles.py) is itself the published procedure."""
    hint = published_hint(REFERENCE / "right_1024x320.png", REFERENCE / "left_1024x320.png", "r")
    reference = np.load(REFERENCE / "align_corners_true" / "hint_r.npy")[0]
    assert np.mean(hint == reference) >= MIN_AGREEMENT


@pytest.mark.parametrize("side", ["l", "r"])
def test_skipping_duplicate_matchers_changes_nothing(real_pair, side):
    """OpenCV runs blockSize 2 and 3 alike, so parity's 8 matchers fuse like the published 12."""
    views, depths = real_pair
    base, other = views[side]
    published = disparity_to_depth(
        candidate_disparities(base, other, side, make_matchers(PUBLISHED)), focal_px(HINT_WIDTH)
    )
    np.testing.assert_array_equal(published[4:8], published[8:12])
    np.testing.assert_array_equal(published[:8], depths[side])
    for ours, theirs in zip(
        fuse(base, other, depths[side], side), fuse(base, other, published, side), strict=True
    ):
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("side", ["l", "r"])
def test_masked_mode_on_real_pair(real_pair, side):
    views, depths = real_pair
    base, other = views[side]
    any_valid = (depths[side] > 0).any(0)
    parity_hint, _ = fuse(base, other, depths[side], side, mode="parity")
    masked_hint, _ = fuse(base, other, depths[side], side, mode="masked")
    # parity keeps the published quirk: some pixels lose their hint to an invalid candidate
    assert ((parity_hint == 0) & any_valid).sum() > 0
    assert ((masked_hint > 0) == any_valid).all()
    same = parity_hint > 0
    np.testing.assert_array_equal(masked_hint[same], parity_hint[same])


@pytest.mark.parametrize("fusion", ["parity", "masked"])
def test_single_preset_hint_is_its_matcher_depth(fusion):
    """With one candidate there is nothing to fuse: the hint is that matcher's depth where it
    matched, and 0 (hint mask 0, as the dataset reads it) where it did not."""
    left, right = _rgb(REFERENCE / "left_1024x320.png"), _rgb(REFERENCE / "right_1024x320.png")
    result = fuse_pair(left, right, matcher_mode="single", mode=fusion)
    (matcher,) = make_matchers("single")
    for side, (base, other) in {"l": (left, right), "r": (right, left)}.items():
        (depth,) = disparity_to_depth(
            candidate_disparities(base, other, side, [matcher]), focal_px(HINT_WIDTH)
        )
        hint, argmin = result[side]
        valid = depth > 0
        assert 0.5 < valid.mean() < 1  # the 128-pixel band at the edge has no match
        np.testing.assert_array_equal(hint[valid], depth[valid])
        np.testing.assert_array_equal(hint > 0, valid)
        assert (argmin == 0).all()


# --- oracle (b): a plain statement of docs/method.md#hint-fusion -------------------------------


def _random_case(seed: int, n: int = 12, height: int = 24, width: int = 40):
    rng = np.random.default_rng(seed)
    base = rng.random((height, width, 3), dtype=np.float32)
    other = rng.random((height, width, 3), dtype=np.float32)
    disp = rng.uniform(0.3, 12.0, (n, height, width)).astype(np.float32)
    disp[rng.random(disp.shape) < 0.25] = -1.0  # invalid, as SGBM reports
    return base, other, disparity_to_depth(disp, focal_px(width))


@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("side", ["l", "r"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matchesplain_fusion(seed, side, align_corners):
    base, other, depths = _random_case(seed)
    hint, argmin = fuse(base, other, depths, side, align_corners=align_corners)
    chw = [torch.from_numpy(img).permute(2, 0, 1)[None] for img in (base, other)]
    plain_hint, plain_argmin = plain_fusion(*chw, torch.from_numpy(depths), side, align_corners)
    assert np.mean(argmin == plain_argmin) >= MIN_AGREEMENT
    assert np.mean(hint == plain_hint) >= MIN_AGREEMENT


@pytest.mark.parametrize(("side", "column"), [("l", 0), ("r", -1)])
def test_invalid_candidate_samples_top_corner(side, column):
    """Depth 0 projects to ±1e9 px, so border padding samples the top-left/top-right pixel."""
    base, other, _ = _random_case(3)
    zeros = torch.zeros(1, *base.shape[:2])
    base_t, other_t = (torch.from_numpy(img).permute(2, 0, 1) for img in (base, other))
    losses = candidate_losses(base_t[None], other_t[None], zeros[None], side)
    corner = other_t[:, :1, column].reshape(1, 3, 1, 1).expand(1, 3, *base.shape[:2])
    expected = photometric_loss(corner.contiguous(), base_t[None])
    torch.testing.assert_close(losses, expected)


def test_ties_go_to_lowest_index():
    base, other, depths = _random_case(4, n=3)
    depths[1] = depths[0]  # identical candidates → identical losses
    _, argmin = fuse(base, other, depths, "l")
    assert not (argmin == 1).any()
    assert (argmin == 0).any()


@pytest.mark.parametrize("seed", [0, 1])
def test_masked_never_picks_invalid(seed):
    base, other, depths = _random_case(seed)
    depths[:, :3, :5] = 0  # a corner with no valid candidate at all
    any_valid = (depths > 0).any(0)
    parity_hint, _ = fuse(base, other, depths, "l", mode="parity")
    hint, argmin = fuse(base, other, depths, "l", mode="masked")
    assert ((parity_hint == 0) & any_valid).any()  # the case masking exists for
    assert (hint[any_valid] > 0).all()
    picked = np.take_along_axis(depths, argmin[None].astype(np.int64), 0)[0]
    np.testing.assert_array_equal(hint, picked)
    assert (hint[~any_valid] == 0).all()


def test_input_types_agree():
    base, other, depths = _random_case(5)
    as_uint8 = [np.round(img * 255).astype(np.uint8) for img in (base, other)]
    as_float = [img.astype(np.float32) / 255 for img in as_uint8]
    from_uint8 = fuse(*as_uint8, depths, "r")
    from_float = fuse(*as_float, depths, "r")
    from_tensor = fuse(*(torch.from_numpy(img) for img in as_float), torch.from_numpy(depths), "r")
    for other_result in (from_float, from_tensor):
        for ours, theirs in zip(from_uint8, other_result, strict=True):
            np.testing.assert_array_equal(ours, theirs)


def test_fuse_pair_is_both_sides():
    left, right = _textured_pair(8, height=32, width=224)
    matchers = make_matchers()
    result = fuse_pair(left, right, matchers)
    fx = focal_px(left.shape[1])
    for side, (base, other) in {"l": (left, right), "r": (right, left)}.items():
        depths = disparity_to_depth(candidate_disparities(base, other, side, matchers), fx)
        expected = fuse(base, other, depths, side, fx)
        for ours, theirs in zip(result[side], expected, strict=True):
            np.testing.assert_array_equal(ours, theirs)
    assert (result["l"][0][:, 100:-20] > 0).mean() > 0.9
    assert (result["r"][0][:, 20:-100] > 0).mean() > 0.9


@pytest.mark.parametrize("side", ["l", "r"])
def test_a_batch_of_images_fuses_as_each_alone(side):
    """Several images in one launch (chunks across images): each as fused alone, bit for bit."""
    cases = [_random_case(seed) for seed in (5, 6, 7)]
    alone = [fuse(base, other, depths, side) for base, other, depths in cases]
    for chunk in (4, 5, 36):
        batched = fuse_batch(*zip(*cases, strict=True), side, chunk=chunk)
        for (hint, argmin), (expected_hint, expected_argmin) in zip(batched, alone, strict=True):
            np.testing.assert_array_equal(hint, expected_hint)
            np.testing.assert_array_equal(argmin, expected_argmin)
