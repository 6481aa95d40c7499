"""KITTI evaluation: crop, metrics, post-processing, scaling, GT export and the CLI end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

import depthhints.data.synthetic as syn
from depthhints import evaluate as ev
from depthhints.cli import main
from depthhints.config import EVAL_PROTOCOLS, TrainConfig
from depthhints.data.kitti import (
    KittiRawLayout,
    SplitItem,
    load_depth_png,
    load_velodyne,
    read_split_file,
    velodyne_to_depth_map,
)
from depthhints.data.render import CLASSES
from depthhints.errors import ConfigError, DataFileError, MissingDataError
from depthhints.models.checkpoint import encoder_checkpoint
from depthhints.models.decoder import DepthDecoder
from depthhints.models.encoder import ResnetEncoder

# --------------------------------------------------------------------------- masks and metrics


@pytest.mark.parametrize(
    ("shape", "crop"),
    [
        ((375, 1242), (153, 371, 44, 1197)),  # rows 153..370, columns 44..1196
        ((376, 1241), (153, 372, 44, 1196)),
        ((370, 1226), (151, 366, 44, 1181)),
    ],
)
def test_garg_crop_indices(shape, crop):
    assert ev.garg_crop(*shape) == crop
    top, bottom, left, right = crop
    mask = ev.eval_mask(np.full(shape, 10.0, np.float32), "eigen")
    rows, cols = np.nonzero(mask)
    assert (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1) == crop
    assert mask.sum() == (bottom - top) * (right - left)


def test_eval_mask_ranges_per_split():
    gt = np.zeros((375, 1242), np.float32)
    gt[200, 100:106] = [0.0, 5e-4, 2e-3, 79.9, 80.0, 120.0]
    eigen = ev.eval_mask(gt, "eigen")[200, 100:106]
    assert eigen.tolist() == [False, False, True, True, False, False]
    benchmark = ev.eval_mask(gt, "eigen_benchmark")
    assert benchmark[200, 100:106].tolist() == [False, True, True, True, True, True]
    gt[0, 0] = 5.0  # outside the Garg crop: scored on eigen_benchmark only
    assert ev.eval_mask(gt, "eigen_benchmark")[0, 0] and not ev.eval_mask(gt, "eigen")[0, 0]


def test_dense_mask_caps_at_80_m_without_crop():
    gt = np.zeros((375, 1242), np.float32)
    gt[200, 100:106] = [0.0, 5e-4, 2e-3, 79.9, 80.0, 90.0]
    dense = ev.eval_mask(gt, "dense")
    assert dense[200, 100:106].tolist() == [False, False, True, True, False, False]
    assert ev.eval_mask(gt, "eigen_benchmark")[200, 105]  # 90 m: scored without the cap
    gt[0, 0] = 5.0  # outside the Garg crop: scored on dense, not on eigen
    assert ev.eval_mask(gt, "dense")[0, 0] and not ev.eval_mask(gt, "eigen")[0, 0]
    assert ev.eval_mask(gt, "dense").sum() == 3


def test_dense_is_a_protocol_everywhere():
    assert "dense" in EVAL_PROTOCOLS and EVAL_PROTOCOLS == ev.GT_SPLITS
    assert "dense" in ev.EVAL_SPLITS and "benchmark" in ev.EVAL_SPLITS
    assert TrainConfig(eval_protocol="dense").eval_protocol == "dense"


def test_metric_formulas_on_hand_computed_values():
    gt = np.array([1.0, 2.0, 4.0, 10.0])
    pred = np.array([1.2, 3.0, 2.4, 10.0])
    errors = ev.compute_errors(gt, pred)
    assert list(errors) == list(ev.METRICS)
    log_sq = [math.log(1.2) ** 2, math.log(1.5) ** 2, math.log(4 / 2.4) ** 2, 0.0]
    expected = {
        "abs_rel": (0.2 + 0.5 + 0.4 + 0.0) / 4,
        "sq_rel": (0.04 + 0.5 + 0.64 + 0.0) / 4,
        "rmse": math.sqrt((0.04 + 1.0 + 2.56 + 0.0) / 4),
        "rmse_log": math.sqrt(sum(log_sq) / 4),
        "a1": 2 / 4,  # ratios 1.2, 1.5, 1.667, 1
        "a2": 3 / 4,
        "a3": 4 / 4,
    }
    for name, value in expected.items():
        assert errors[name] == pytest.approx(value, rel=1e-12), name


def test_perfect_prediction_scores_zero_error():
    gt = np.random.default_rng(0).uniform(1, 80, 500)
    errors = ev.compute_errors(gt, gt.copy())
    assert errors["abs_rel"] == errors["sq_rel"] == errors["rmse"] == errors["rmse_log"] == 0
    assert errors["a1"] == errors["a2"] == errors["a3"] == 1


def test_post_processing_weights():
    width = 101  # x = i / 100 per column
    disp = np.zeros((2, 3, width), np.float32)
    flipped_back = np.ones((2, 3, width), np.float32)
    out = ev.post_process_disparity(disp, flipped_back)
    assert out.dtype == np.float32 and out.shape == disp.shape
    row = out[1, 2]
    np.testing.assert_allclose(row[:6], 1.0)  # left 5 %: the flipped prediction
    np.testing.assert_allclose(row[95:], 0.0)  # right 5 %: the original
    np.testing.assert_allclose(row[10:91], 0.5)  # centre: the mean
    # linear ramps: x = 0.07 -> l_mask 0.6 -> 0.6 + 0.4 * 0.5; mirrored on the right
    np.testing.assert_allclose(row[7], 0.8, atol=1e-6)
    np.testing.assert_allclose(row[93], 0.2, atol=1e-6)
    np.testing.assert_allclose(row[:51] + row[::-1][:51], 1.0, atol=1e-6)


class _RampNet(nn.Module):
    """Disparity = red channel + a fixed column ramp (not flip-equivariant)."""

    def forward(self, images):
        ramp = torch.linspace(0.0, 1.0, images.shape[-1])
        return images[:, :1] + ramp


class _Images(torch.utils.data.Dataset):
    """A map-style dataset of single images, batched by predict_disparities."""

    def __init__(self, images):
        self.images = images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.images[index]


def test_predict_disparities_post_processes_and_batches():
    images = torch.rand(5, 3, 4, 8, generator=torch.Generator().manual_seed(0))
    red, ramp = images[:, 0].numpy(), np.linspace(0.0, 1.0, 8, dtype=np.float32)
    plain = ev.predict_disparities(_RampNet(), images, batch_size=2)
    np.testing.assert_allclose(plain, red + ramp, atol=1e-6)
    expected = ev.post_process_disparity(red + ramp, red + ramp[::-1])
    for source in (images, [images[:3], images[3:]], _Images(images)):
        out = ev.predict_disparities(_RampNet(), source, post_process=True, batch_size=3)
        assert out.dtype == np.float32 and out.shape == (5, 4, 8)
        np.testing.assert_allclose(out, expected, atol=1e-6)


# --------------------------------------------------------------------------- scaling


def _gt_maps(rng, shapes):
    return [rng.uniform(2.0, 10.0, shape).astype(np.float32) for shape in shapes]


def test_median_scaling_recovers_a_scaled_prediction_and_stereo_applies_5_4():
    rng = np.random.default_rng(1)
    gts = _gt_maps(rng, [(20, 30), (20, 30)])
    scaled = np.stack([1.0 / (3.0 * gt) for gt in gts])  # depth off by x3
    mono = ev.evaluate_predictions(scaled, gts, "eigen_benchmark", stereo=False)
    assert mono.median_scaling and mono.scale_factor == 1.0
    assert mono.metrics["abs_rel"] < 1e-6 and mono.metrics["a1"] == 1.0
    assert mono.ratio_median == pytest.approx(1 / 3, rel=1e-6)  # median(gt) / median(pred)
    assert mono.ratio_std == pytest.approx(0.0, abs=1e-6)

    metric = np.stack([1.0 / gt for gt in gts])  # disparity of the true depth
    stereo = ev.evaluate_predictions(metric, gts, "eigen_benchmark", stereo=True)
    assert not stereo.median_scaling and stereo.scale_factor == ev.STEREO_SCALE_FACTOR == 5.4
    assert stereo.metrics["abs_rel"] == pytest.approx(4.4, rel=1e-5)  # 5.4 g vs g, < 80 m
    assert stereo.metrics["a3"] == 0.0 and stereo.ratio_median is None

    # explicit options override the mode's defaults
    unit = ev.evaluate_predictions(metric, gts, "eigen_benchmark", True, pred_depth_scale_factor=1)
    assert unit.metrics["abs_rel"] < 1e-6
    raw = ev.evaluate_predictions(scaled, gts, "eigen_benchmark", False, median_scaling=False)
    assert raw.metrics["abs_rel"] == pytest.approx(2.0, rel=1e-5)
    assert "abs_rel" in stereo.format() and stereo.format().rstrip().endswith("\\\\")


def test_predictions_are_clamped_to_80_m():
    gt = [np.full((8, 8), 100.0, np.float32)]
    result = ev.evaluate_predictions(np.full((1, 4, 4), 1e-4), gt, "eigen_benchmark", True)
    assert result.metrics["abs_rel"] == pytest.approx(0.2, rel=1e-6)  # 80 m vs 100 m


def _half_right(gt):
    """Disparities (stereo scale 1) exact in the left half of ``gt``, depth x2 in the right."""
    depth = gt.copy()
    depth[:, gt.shape[1] // 2 :] *= 2.0
    return 1.0 / depth


def test_regions_restrict_scoring_and_count_pixels():
    gts = _gt_maps(np.random.default_rng(2), [(6, 8), (6, 8)])
    disps = np.stack([_half_right(gt) for gt in gts])
    left = np.zeros((6, 8), bool)
    left[:, :4] = True
    kwargs = {"stereo": True, "pred_depth_scale_factor": 1.0}
    whole = ev.evaluate_predictions(disps, gts, "dense", **kwargs)
    assert whole.metrics["abs_rel"] == pytest.approx(0.5, rel=1e-5)  # half the pixels off by 1
    assert whole.pixels == 2 * 48 and whole.num_images == 2
    region = ev.evaluate_predictions(disps, gts, "dense", regions=[left, left], **kwargs)
    assert region.metrics["abs_rel"] < 1e-6 and region.metrics["a1"] == 1.0
    assert region.pixels == 2 * 24 and region.as_dict()["pixels"] == 48
    mixed = ev.evaluate_predictions(disps, gts, "dense", regions=[left, None], **kwargs)
    assert mixed.pixels == 24 + 48
    np.testing.assert_allclose(mixed.per_image[:, 0], [0.0, 0.5], atol=1e-5)


def test_median_scaling_uses_the_whole_image_not_the_region():
    gt = np.full((6, 8), 5.0, np.float32)
    depth = gt.copy()
    depth[:, :2] *= 3.0  # the region is predicted 3x too far, the rest exactly
    region = np.zeros((6, 8), bool)
    region[:, :2] = True
    result = ev.evaluate_predictions((1.0 / depth)[None], [gt], "dense", False, regions=[region])
    assert result.ratio_median == pytest.approx(1.0)  # median of the whole protocol mask
    assert result.metrics["abs_rel"] == pytest.approx(2.0, rel=1e-5) and result.pixels == 12


def test_images_with_an_empty_region_are_skipped():
    gts = _gt_maps(np.random.default_rng(3), [(6, 8)] * 3)
    disps = np.stack([1.0 / (3.0 * gt) for gt in gts])
    gts[1][:, :4] = 0.0  # the region of image 1 has no GT
    left, empty = np.zeros((6, 8), bool), np.zeros((6, 8), bool)
    left[:, :4] = True
    result = ev.evaluate_predictions(disps, gts, "dense", False, regions=[left, left, empty])
    assert result.num_images == 1 and result.pixels == 24
    assert len(result.ratios) == 1 and result.ratio_median == pytest.approx(1 / 3, rel=1e-5)
    assert result.as_dict()["num_images"] == 1
    with pytest.raises(ConfigError, match="no pixel of the region is in the ground truth"):
        ev.evaluate_predictions(disps, gts, "dense", False, regions=[empty, left, empty])


def test_region_errors_name_the_image():
    gts = [np.ones((4, 4), np.float32), np.ones((5, 6), np.float32)]
    disps = np.ones((2, 4, 4), np.float32)
    with pytest.raises(ConfigError, match=r"region 1 has shape \(4, 4\).*shape \(5, 6\)"):
        ev.evaluate_predictions(disps, gts, "dense", True, regions=[None, np.ones((4, 4), bool)])
    with pytest.raises(ConfigError, match="1 region masks but 2"):
        ev.evaluate_predictions(disps, gts, "dense", True, regions=[None])
    with pytest.raises(ConfigError, match="region 0 must be a boolean mask"):
        ev.evaluate_predictions(disps, gts, "dense", True, regions=[np.ones((4, 4)), None])


def test_ragged_gt_round_trip_and_eval_on_varying_sizes(tmp_path):
    shapes = [(375, 1242), (370, 1226), (376, 1241)]
    values = [4.0, 8.0, 16.0]
    gts = [np.full(shape, v, np.float32) for shape, v in zip(shapes, values, strict=True)]
    path = tmp_path / "gt.npz"
    ev.save_gt_depths(path, gts)
    with np.load(path, allow_pickle=True) as archive:  # the reference's loading code works
        assert archive["data"].dtype == object and archive["data"].shape == (3,)
    loaded = ev.load_gt_depths(path)
    assert [g.shape for g in loaded] == shapes and all(g.dtype == np.float32 for g in loaded)
    disps = np.stack([np.full((32, 64), 1.0 / v, np.float32) for v in values])
    result = ev.evaluate_predictions(disps, loaded, "eigen", stereo=False)
    assert result.num_images == 3 and result.metrics["abs_rel"] < 1e-6
    np.testing.assert_allclose(result.ratios, 1.0, rtol=1e-6)

    same = tmp_path / "same.npz"  # equal sizes must stay a list of 2-D maps, not one 3-D array
    ev.save_gt_depths(same, gts[:1] * 2)
    assert [g.shape for g in ev.load_gt_depths(same)] == [shapes[0]] * 2
    plain = tmp_path / "plain.npz"  # a non-ragged reference file
    np.savez_compressed(plain, data=np.ones((2, 5, 6), np.float32))
    assert [g.shape for g in ev.load_gt_depths(plain)] == [(5, 6)] * 2


def test_gt_file_errors_name_the_export_command(tmp_path):
    with pytest.raises(MissingDataError, match="depthhints export-gt"):
        ev.load_gt_depths(tmp_path / "none.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DataFileError, match="export-gt"):
        ev.load_gt_depths(bad)
    np.savez(tmp_path / "other.npz", depths=np.ones(3))
    with pytest.raises(DataFileError, match="'data'"):
        ev.load_gt_depths(tmp_path / "other.npz")


def test_count_mismatch_names_both_counts_and_the_likely_cause():
    gts = [np.ones((4, 4), np.float32)] * 2
    with pytest.raises(ConfigError, match=r"3 predicted .* 2 ground-truth.*eigen-to-benchmark"):
        ev.evaluate_predictions(np.ones((3, 4, 4)), gts, "eigen", stereo=True)


def test_eigen_to_benchmark_and_benchmark_pngs(tmp_path):
    eigen = np.arange(697, dtype=np.float32)[:, None, None] * np.ones((1, 2, 3), np.float32)
    bench = ev.eigen_to_benchmark(eigen)
    assert bench.shape == (652, 2, 3)
    np.testing.assert_array_equal(bench[:, 0, 0], np.load(ev.EIGEN_TO_BENCHMARK_IDS))
    with pytest.raises(ConfigError, match="697"):
        ev.eigen_to_benchmark(eigen[:652])

    disps = np.stack([np.full((6, 20), 0.27), np.full((6, 20), 0.01)]).astype(np.float32)
    paths = ev.export_benchmark_pngs(disps, tmp_path / "bench")
    assert [p.name for p in paths] == ["0000000000.png", "0000000001.png"]
    import cv2

    first = cv2.imread(str(paths[0]), cv2.IMREAD_UNCHANGED)
    assert first.dtype == np.uint16 and first.shape == (352, 1216)
    assert np.all(first == 5120)  # 5.4 / 0.27 = 20 m -> 20 * 256
    assert np.all(cv2.imread(str(paths[1]), cv2.IMREAD_UNCHANGED) == 80 * 256)  # 540 m clipped
    mono = ev.export_benchmark_pngs(disps[:1], tmp_path / "mono", scale_factor=1.0)
    assert np.all(cv2.imread(str(mono[0]), cv2.IMREAD_UNCHANGED) == int(256 / 0.27))


def test_benchmark_test_list_cannot_feed_the_network(tmp_path):
    layout = KittiRawLayout(tmp_path, image_ext=".png")
    with pytest.raises(ConfigError, match="quirk-benchmark-split-format"):
        ev.EvalImageDataset(layout, [SplitItem("image", 3, None, "benchmark")], 64, 128)


# --------------------------------------------------------------------------- on a synthetic tree


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("kitti")
    config = syn.DatasetConfig(frames_per_drive=10, width=416, height=128, seed=5)
    splits = syn.generate_dataset(root, config)
    return root, splits["test"]


def test_gt_export_for_eigen_and_eigen_benchmark(tree, tmp_path):
    root, split = tree
    layout = KittiRawLayout(root)
    items = read_split_file(split)
    assert len(items) == 2
    lidar = ev.load_gt_depths(ev.export_gt_depths(layout, items, "eigen", tmp_path / "e.npz"))
    dense = ev.load_gt_depths(
        ev.export_gt_depths(layout, items, "eigen_benchmark", tmp_path / "b.npz")
    )
    for item, sparse, full in zip(items, lidar, dense, strict=True):
        calib = layout.calibration(item.folder)
        scan = load_velodyne(layout.velodyne_path(item.folder, item.frame))
        expected = velodyne_to_depth_map(scan, calib, 2, vel_depth=True)
        np.testing.assert_array_equal(sparse, expected)
        assert sparse.shape == (128, 416) and 0.01 < (sparse > 0).mean() < 0.5
        png = load_depth_png(layout.groundtruth_path(item.folder, item.frame, "l"))
        np.testing.assert_array_equal(full, png)


def test_gt_export_fails_fast_on_missing_files(tree, tmp_path):
    root, split = tree
    layout = KittiRawLayout(root)
    items = read_split_file(split)
    absent = [SplitItem(items[0].folder, 99, "l")]
    with pytest.raises(MissingDataError, match=r"0000000099\.bin"):
        ev.export_gt_depths(layout, [*items, *absent], "eigen", tmp_path / "e.npz")
    with pytest.raises(MissingDataError, match=r"0000000099\.png.*#258"):
        ev.export_gt_depths(layout, absent, "eigen_benchmark", tmp_path / "b.npz")
    assert not (tmp_path / "e.npz").exists()


def test_dense_gt_loads_the_eigen_benchmark_maps(tree, tmp_path, capsys):
    root, split = tree
    layout = KittiRawLayout(root)
    items = read_split_file(split)
    dense = ev.gt_depth_maps(layout, items, "dense")
    for ours, theirs in zip(dense, ev.gt_depth_maps(layout, items, "eigen_benchmark"), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    with pytest.raises(MissingDataError, match=r"0000000099\.png.*depthhints synth"):
        ev.gt_depth_maps(layout, [SplitItem(items[0].folder, 99, "l")], "dense")

    gt_path = tmp_path / "dense.npz"  # end to end: export-gt and evaluate --eval-split dense
    assert main(["export-gt", "--data-path", str(root), "--split", "dense", "--split-file",
                 str(split), "--out", str(gt_path)]) == 0  # fmt: skip
    with np.errstate(divide="ignore"):
        disps = np.stack([np.where(g > 0, 5.4 / g, 1.0) for g in dense]).astype(np.float32)
    np.save(tmp_path / "d.npy", disps)
    out = tmp_path / "dense.json"
    args = ["evaluate", "--eval-stereo", "--eval-split", "dense", "--ext-disp-to-eval",
            str(tmp_path / "d.npy"), "--gt", str(gt_path), "--json", str(out)]  # fmt: skip
    assert main(args) == 0
    report = json.loads(out.read_text())
    assert report["split"] == "dense" and report["metrics"]["abs_rel"] < 1e-6
    expected = sum(int(ev.eval_mask(g, "dense").sum()) for g in dense)
    assert report["pixels"] == expected < sum(int((g > 0).sum()) for g in dense)  # 80 m cap
    assert "on dense" in capsys.readouterr().out


def _drive_items(root):
    folder = read_split_file(root / "splits" / "test_files.txt")[0].folder
    frames = sorted(int(p.stem) for p in (root / folder / "semantic" / "image_02").glob("*.png"))
    return [SplitItem(folder, frame, side) for frame in frames for side in "lr"]


def test_class_masks_match_the_label_pngs(tree):
    import cv2

    root, _ = tree
    layout = KittiRawLayout(root)
    items = _drive_items(root)
    masks = ev.class_masks(layout, items, ev.THIN_STRUCTURES)
    assert len(masks) == len(items) and any(mask.any() for mask in masks)
    poles = ev.class_masks(layout, items, ["pole"])
    thin = [CLASSES["pole"], CLASSES["sign"]]
    for item, mask, pole in zip(items, masks, poles, strict=True):
        labels = cv2.imread(str(layout.semantic_path(item.folder, item.frame, item.side)), -1)
        assert mask.dtype == bool and mask.shape == labels.shape == (128, 416)
        np.testing.assert_array_equal(mask, np.isin(labels, thin))
        np.testing.assert_array_equal(pole, labels == CLASSES["pole"])
    gt = ev.gt_depth_maps(layout, items, "dense")  # usable as regions of the same items
    disps = np.full((len(items), 64, 208), 0.1, np.float32)
    result = ev.evaluate_predictions(disps, gt, "dense", True, regions=masks)
    assert 0 < result.num_images <= len(items) and result.pixels <= sum(m.sum() for m in masks)


def test_class_mask_errors(tree, tmp_path):
    root, split = tree
    layout = KittiRawLayout(root)
    items = read_split_file(split)
    with pytest.raises(ConfigError, match=r"\['tree'\].*'pole', 'sign'"):
        ev.class_masks(layout, items, ["pole", "tree"])
    absent = [SplitItem(items[0].folder, 99, "l")]
    with pytest.raises(MissingDataError, match=r"0000000099\.png.*only in synthetic.*synth"):
        ev.class_masks(layout, absent, ev.THIN_STRUCTURES)

    broken = KittiRawLayout(tmp_path, image_ext=".png")
    path = broken.semantic_path(items[0].folder, items[0].frame, "l")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a png")
    with pytest.raises(DataFileError, match=str(path)):
        ev.class_masks(broken, items[:1], ["sign"])
    path.write_bytes(b"")
    with pytest.raises(DataFileError, match=str(path)):
        ev.class_masks(broken, items[:1], ["sign"])


def _weights_folder(path, use_stereo=True):
    torch.manual_seed(0)
    encoder = ResnetEncoder(18)
    decoder = DepthDecoder(encoder.num_ch_enc)
    path.mkdir()
    torch.save(encoder_checkpoint(encoder, 64, 128, use_stereo), path / "encoder.pth")
    torch.save(decoder.state_dict(), path / "depth.pth")
    return path


def test_cli_export_gt_and_evaluate_a_network(tree, tmp_path, capsys):
    root, split = tree
    assert main(["export-gt", "--data-path", str(root), "--split", "eigen", "--split-file",
                 str(split)]) == 0  # fmt: skip
    gt = root / "gt_depths_eigen.npz"
    assert gt.is_file() and "wrote 2 eigen" in capsys.readouterr().out

    weights = _weights_folder(tmp_path / "weights")
    out = tmp_path / "metrics.json"
    args = ["evaluate", "--eval-stereo", "--load-weights-folder", str(weights), "--data-path",
            str(root), "--split-file", str(split), "--post-process", "--save-pred-disps",
            "--device", "cpu", "--json", str(out)]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    for name in ev.METRICS:
        assert name in printed
    assert "with post-processing" in printed and "depth x 5.4" in printed
    report = json.loads(out.read_text())
    assert list(report["metrics"]) == list(ev.METRICS) and report["num_images"] == 2
    assert report["mode"] == "stereo" and report["post_process"] is True
    assert all(math.isfinite(v) for v in report["metrics"].values())
    assert np.load(weights / "disps_eigen_split.npy").shape == (2, 64, 128)


def test_cli_scores_perfect_disparities_exactly(tree, tmp_path, capsys):
    root, split = tree
    gt_path = tmp_path / "gt.npz"
    assert main(["export-gt", "--data-path", str(root), "--split", "eigen", "--split-file",
                 str(split), "--out", str(gt_path)]) == 0  # fmt: skip
    gts = ev.load_gt_depths(gt_path)
    with np.errstate(divide="ignore"):
        stereo = np.stack([np.where(g > 0, 5.4 / g, 1.0) for g in gts]).astype(np.float32)
        mono = np.stack([np.where(g > 0, 1.0 / (7.0 * g), 1.0) for g in gts]).astype(np.float32)
    np.save(tmp_path / "stereo.npy", stereo)
    np.save(tmp_path / "mono.npy", mono)
    for mode, disps in (("--eval-stereo", "stereo.npy"), ("--eval-mono", "mono.npy")):
        out = tmp_path / f"{disps}.json"
        args = ["evaluate", mode, "--ext-disp-to-eval", str(tmp_path / disps), "--gt",
                str(gt_path), "--json", str(out)]  # fmt: skip
        assert main(args) == 0
        metrics = json.loads(out.read_text())["metrics"]
        assert metrics["abs_rel"] < 1e-6 and metrics["rmse"] < 1e-4
        assert metrics["a1"] == metrics["a2"] == metrics["a3"] == 1.0
    report = json.loads((tmp_path / "mono.npy.json").read_text())
    assert report["ratio_median"] == pytest.approx(1 / 7, rel=1e-5)
    assert "Scaling ratios" in capsys.readouterr().out

    bench = tmp_path / "bench"
    args = ["evaluate", "--eval-stereo", "--eval-split", "benchmark", "--ext-disp-to-eval",
            str(tmp_path / "stereo.npy"), "--benchmark-out", str(bench)]  # fmt: skip
    assert main(args) == 0
    assert sorted(p.name for p in bench.iterdir()) == ["0000000000.png", "0000000001.png"]


def test_cli_errors(tmp_path, capsys):
    for modes in ([], ["--eval-stereo", "--eval-mono"], ["--use_stereo"]):
        with pytest.raises(SystemExit) as exit_info:
            main(["evaluate", *modes, "--ext-disp-to-eval", "x.npy"])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert "--eval-stereo" in err and "docs/method.md#quirk-eval-flag" in err

    disps = tmp_path / "d.npy"
    np.save(disps, np.ones((3, 8, 16), np.float32))
    args = ["evaluate", "--eval-mono", "--ext-disp-to-eval", str(disps), "--gt"]
    assert main([*args, str(tmp_path / "missing.npz")]) == 2
    assert "depthhints export-gt" in capsys.readouterr().err

    gt = tmp_path / "gt.npz"
    ev.save_gt_depths(gt, [np.ones((8, 16), np.float32)] * 2)
    assert main([*args, str(gt)]) == 2
    error = capsys.readouterr().err
    assert "3 predictions" in error and "2 ground-truth" in error and str(gt) in error
    assert "--eval-eigen-to-benchmark" in error
