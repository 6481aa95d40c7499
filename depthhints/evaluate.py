"""KITTI depth evaluation: ground-truth export, prediction, metrics (docs/method.md#evaluation).

The functions follow the reference ``export_gt_depth.py`` / ``evaluate_depth.py`` step by step so
that numbers are comparable with the published ones:

* ground truth: ``eigen`` projects the Velodyne scan into camera 2 with the LiDAR-x depth quirk
  (``vel_depth=True``, docs/method.md#ground-truth-export); ``eigen_benchmark`` reads KITTI's
  annotated depth PNGs. Maps of different sizes are stored as a ragged object array in
  ``np.savez_compressed(data=...)`` (docs/method.md#quirk-ragged-ground-truth), read back by
  :func:`depthhints.npz.read_npz_array`, which unpickles numpy arrays only;
* prediction: each test image is resized with Lanczos to the network resolution, and with
  post-processing the horizontally flipped image is predicted too and blended in (Monodepth v1,
  docs/method.md#evaluation);
* metrics: the disparity is resized bilinearly to each GT map, inverted, masked (Garg/Eigen crop
  and the 1e-3..80 m range for ``eigen``; GT > 0 for ``eigen_benchmark``), scaled (×5.4 for stereo
  models, per-image median scaling for mono models), clamped to [1e-3, 80] and scored with the 7
  standard metrics, averaged over images;
* ``dense`` (synthetic drives) scores the ``eigen_benchmark`` PNGs in 1e-3..80 m without the crop;
  any protocol can be restricted to a region per image, e.g. the thin structures of class_masks.

Everything here works on arrays; only the prediction part (:class:`EvalImageDataset`,
:func:`predict_disparities`) touches torch, on any device. The ``depthhints export-gt`` /
``depthhints evaluate`` commands wrap these functions; their GT file defaults to
``<data-path>/gt_depths_<split>.npz`` (never inside the installed package).
"""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from depthhints.config import EVAL_PROTOCOLS
from depthhints.data.kitti import (
    SPLITS_DIR,
    KittiRawLayout,
    SplitItem,
    load_depth_png,
    load_image,
    load_velodyne,
    velodyne_to_depth_map,
)
from depthhints.data.render import CLASSES
from depthhints.errors import ConfigError, DataFileError, MissingDataError
from depthhints.npz import RefusedPickleError, read_npz_array

PathLike = str | os.PathLike

#: Metric names in the reference's output order.
METRICS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")
#: The accuracy metrics (δ thresholds); lower is better for the others.
HIGHER_IS_BETTER = frozenset({"a1", "a2", "a3"})
MIN_DEPTH = 1e-3
MAX_DEPTH = 80.0
#: Converts the 0.1-baseline stereo training scale to metres (KITTI baseline 0.54 m / 0.1).
STEREO_SCALE_FACTOR = 5.4
#: Splits whose ground truth ``export_gt_depths`` can write.
GT_SPLITS = EVAL_PROTOCOLS
#: Splits ``evaluate`` accepts (``benchmark`` writes submission PNGs instead of metrics).
EVAL_SPLITS = (*GT_SPLITS, "benchmark")
#: Classes where the photometric loss has local minima (thin structures against a far
#: background: the paper's motivating case); score them with ``class_masks`` as regions.
THIN_STRUCTURES = ("pole", "sign")
EIGEN_TO_BENCHMARK_IDS = SPLITS_DIR / "benchmark" / "eigen_to_benchmark_ids.npy"
NUM_EIGEN_TEST = 697
BENCHMARK_SIZE = (1216, 352)  # (w, h) of the KITTI depth-prediction benchmark images

# Garg/Eigen crop as fractions of the GT image size (rows top..bottom, columns left..right).
_CROP = (0.40810811, 0.99189189, 0.03594771, 0.96405229)
_MAX_LISTED = 5
COUNT_MISMATCH_HINT = (
    "both must come from the same split. Check the evaluation split / split file and the GT "
    f"file (the Eigen test split has {NUM_EIGEN_TEST} images, eigen_benchmark 652); Eigen "
    "predictions scored on eigen_benchmark GT need the eigen->benchmark re-indexing "
    "(--eval-eigen-to-benchmark)"
)


# --------------------------------------------------------------------------------------------
# Masks and metrics
# --------------------------------------------------------------------------------------------


def garg_crop(height: int, width: int) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the Garg/Eigen crop; rows top:bottom, columns left:right."""
    top, bottom, left, right = _CROP
    return int(top * height), int(bottom * height), int(left * width), int(right * width)


def eval_mask(gt_depth: np.ndarray, split: str) -> np.ndarray:
    """Boolean mask of the GT pixels that are scored.

    ``eigen``: MIN_DEPTH < GT < MAX_DEPTH inside the Garg crop. ``dense``: the same range, no
    crop (it only exists for the LiDAR's field of view). Any other split (the improved
    ``eigen_benchmark`` GT included): GT > 0, with no crop and no range cap.
    """
    gt_depth = np.asarray(gt_depth)
    if gt_depth.ndim != 2:
        raise DataFileError(f"a GT depth map must be 2-D (h, w), got shape {gt_depth.shape}")
    if split == "dense":
        return (gt_depth > MIN_DEPTH) & (gt_depth < MAX_DEPTH)
    if split != "eigen":
        return gt_depth > 0
    height, width = gt_depth.shape
    top, bottom, left, right = garg_crop(height, width)
    crop = np.zeros(gt_depth.shape, dtype=bool)
    crop[top:bottom, left:right] = True
    return (gt_depth > MIN_DEPTH) & (gt_depth < MAX_DEPTH) & crop


def compute_errors(gt: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """The 7 metrics of paired depths (both > 0), keyed and ordered as METRICS."""
    gt = np.asarray(gt, dtype=np.float64).ravel()
    pred = np.asarray(pred, dtype=np.float64).ravel()
    if gt.shape != pred.shape or gt.size == 0:
        raise ConfigError(
            f"compute_errors needs two non-empty arrays of equal size, got {gt.size} GT and "
            f"{pred.size} predicted depths"
        )
    thresh = np.maximum(gt / pred, pred / gt)
    diff = gt - pred
    return {
        "abs_rel": float(np.mean(np.abs(diff) / gt)),
        "sq_rel": float(np.mean(diff**2 / gt)),
        "rmse": float(np.sqrt(np.mean(diff**2))),
        "rmse_log": float(np.sqrt(np.mean((np.log(gt) - np.log(pred)) ** 2))),
        "a1": float(np.mean(thresh < 1.25)),
        "a2": float(np.mean(thresh < 1.25**2)),
        "a3": float(np.mean(thresh < 1.25**3)),
    }


MONITORING_NAMES = {
    "abs_rel": "de/abs_rel",
    "sq_rel": "de/sq_rel",
    "rmse": "de/rms",
    "rmse_log": "de/log_rms",
    "a1": "da/a1",
    "a2": "da/a2",
    "a3": "da/a3",
}


def monitoring_metrics(depth: torch.Tensor, depth_gt: torch.Tensor) -> dict[str, float]:
    """The training-time depth metrics of the reference, keyed ``de/…``/``da/…``.

    docs/method.md#training-metrics.

    ``depth`` (B, 1, h, w) in network units is bilinearly resized to the GT's 375×1242 and
    clamped to [1e-3, 80]; pixels with GT > 0 inside rows 153:371, columns 44:1197 count, and the
    prediction is median-scaled over the whole batch — even for stereo, as the reference does,
    so these are a health signal, not the paper's protocol.
    """
    height, width = depth_gt.shape[-2:]
    pred = torch.nn.functional.interpolate(
        depth.detach().float(), (height, width), mode="bilinear", align_corners=False
    ).clamp(MIN_DEPTH, MAX_DEPTH)
    crop = torch.zeros_like(depth_gt, dtype=torch.bool)
    crop[..., 153:371, 44:1197] = True
    mask = (depth_gt > 0) & crop
    if not mask.any():
        return {}
    gt_pixels, pred_pixels = depth_gt[mask], pred[mask]
    pred_pixels = (pred_pixels * gt_pixels.median() / pred_pixels.median()).clamp(
        MIN_DEPTH, MAX_DEPTH
    )
    errors = compute_errors(gt_pixels.cpu().numpy(), pred_pixels.cpu().numpy())
    return {MONITORING_NAMES[k]: v for k, v in errors.items()}


def post_process_disparity(disp: np.ndarray, disp_flipped_back: np.ndarray) -> np.ndarray:
    """Monodepth v1 blend of a prediction and the flipped-back prediction of the flipped image.

    The leftmost 5 % of columns come from ``disp_flipped_back``, the rightmost 5 % from ``disp``,
    the centre is their mean, with linear ramps over the next 5 % on each side. Works on any
    array whose last axis is the image width.
    """
    disp = np.asarray(disp)
    disp_flipped_back = np.asarray(disp_flipped_back)
    if disp.shape != disp_flipped_back.shape:
        raise ConfigError(
            f"post-processing needs equal shapes, got {disp.shape} and {disp_flipped_back.shape}"
        )
    x = np.linspace(0.0, 1.0, disp.shape[-1])
    l_mask = 1.0 - np.clip(20.0 * (x - 0.05), 0.0, 1.0)
    r_mask = l_mask[::-1]
    mean = 0.5 * (disp + disp_flipped_back)
    out = r_mask * disp + l_mask * disp_flipped_back + (1.0 - l_mask - r_mask) * mean
    return out.astype(disp.dtype, copy=False)


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


@dataclass
class EvalResult:
    """Mean metrics over the scored images, with how they were obtained."""

    metrics: dict[str, float]
    per_image: np.ndarray  # (N, 7) in METRICS order, one row per scored image
    split: str
    median_scaling: bool
    scale_factor: float
    ratios: np.ndarray = field(default_factory=lambda: np.zeros(0))
    pixels: int = 0  # scored pixels over all images

    @property
    def num_images(self) -> int:
        return len(self.per_image)

    @property
    def ratio_median(self) -> float | None:
        """Median of the per-image median-scaling ratios (None without median scaling)."""
        return float(np.median(self.ratios)) if self.median_scaling else None

    @property
    def ratio_std(self) -> float | None:
        """std(ratios / median ratio), as the reference prints it (None without scaling)."""
        if not self.median_scaling:
            return None
        return float(np.std(self.ratios / np.median(self.ratios)))

    def as_dict(self) -> dict:
        """JSON-ready summary: metrics plus the evaluation settings."""
        return {
            "split": self.split,
            "num_images": self.num_images,
            "pixels": self.pixels,
            "median_scaling": self.median_scaling,
            "pred_depth_scale_factor": self.scale_factor,
            "ratio_median": self.ratio_median,
            "ratio_std": self.ratio_std,
            "metrics": dict(self.metrics),
        }

    def format(self) -> str:
        """Printed report: the scaling ratios (mono), a table and a LaTeX row, 3 decimals."""
        lines = []
        if self.median_scaling:
            lines.append(
                f" Scaling ratios | med: {self.ratio_median:0.3f} | std: {self.ratio_std:0.3f}"
            )
        lines.append(format_metrics(self.metrics))
        return "\n".join(lines)


def format_metrics(metrics: dict[str, float]) -> str:
    """A header, the values in METRICS order, and the same values as a LaTeX table row."""
    values = [metrics[name] for name in METRICS]
    header = " | ".join(f"{name:>8}" for name in METRICS)
    row = " | ".join(f"{value:8.3f}" for value in values)
    latex = "&".join(f"{value: 8.3f}  " for value in values)
    return f"  {header}\n  {row}\n&{latex}\\\\"


def evaluate_predictions(
    pred_disps: Sequence[np.ndarray] | np.ndarray,
    gt_depths: Sequence[np.ndarray],
    split: str,
    stereo: bool,
    median_scaling: bool | None = None,
    pred_depth_scale_factor: float | None = None,
    regions: Sequence[np.ndarray | None] | None = None,
) -> EvalResult:
    """Score scaled disparities (N, H, W) against N GT depth maps of any sizes.

    ``stereo=True`` multiplies depths by STEREO_SCALE_FACTOR without median scaling; mono uses
    per-image median scaling with factor 1. ``median_scaling`` / ``pred_depth_scale_factor``
    override the mode's defaults (``--disable-median-scaling``, ``--pred-depth-scale-factor``).
    ``regions``: one boolean mask per GT map (or None: the whole map), ANDed with the protocol
    mask; images without a pixel in their region are skipped. The median-scaling ratio stays that
    of the whole protocol mask: a region's own would hide its scale errors (a pole predicted at
    the background's depth).
    """
    if len(pred_disps) != len(gt_depths):
        raise ConfigError(
            f"{len(pred_disps)} predicted disparities but {len(gt_depths)} ground-truth depth "
            f"maps: {COUNT_MISMATCH_HINT}"
        )
    if regions is not None and len(regions) != len(gt_depths):
        raise ConfigError(
            f"{len(regions)} region masks but {len(gt_depths)} ground-truth depth maps; give one "
            "mask (or None) per image"
        )
    if len(gt_depths) == 0:
        raise ConfigError("nothing to evaluate: no predictions and no ground truth")
    if median_scaling is None:
        median_scaling = not stereo
    if pred_depth_scale_factor is None:
        pred_depth_scale_factor = STEREO_SCALE_FACTOR if stereo else 1.0
    scale = float(pred_depth_scale_factor)
    if not np.isfinite(scale) or scale <= 0:
        raise ConfigError(f"pred_depth_scale_factor must be a positive number, got {scale}")

    per_image, ratios, pixels = [], [], 0
    for i, (disp, gt) in enumerate(zip(pred_disps, gt_depths, strict=True)):
        gt = np.asarray(gt, dtype=np.float32)
        disp = np.ascontiguousarray(disp, dtype=np.float32)
        if disp.ndim != 2:
            raise ConfigError(f"prediction {i} has shape {disp.shape}; expected (H, W)")
        mask = eval_mask(gt, split)
        if not mask.any():
            raise DataFileError(
                f"GT depth map {i} has no valid pixel for the {split!r} evaluation mask; the GT "
                "file is empty or belongs to another split, re-run `depthhints export-gt`"
            )
        scored = mask
        if regions is not None and regions[i] is not None:
            scored = mask & _region(regions[i], gt.shape, i)
            if not scored.any():
                continue
        pixels += int(scored.sum())
        height, width = gt.shape
        disp = cv2.resize(disp, (width, height), interpolation=cv2.INTER_LINEAR)
        with np.errstate(divide="ignore"):
            pred = 1.0 / disp[mask]
        pred = pred * scale
        gt_valid = gt[mask]
        if median_scaling:
            ratio = float(np.median(gt_valid) / np.median(pred))
            ratios.append(ratio)
            pred = pred * ratio
        if scored is not mask:
            inside = scored[mask]
            gt_valid, pred = gt_valid[inside], pred[inside]
        pred = np.clip(pred, MIN_DEPTH, MAX_DEPTH)
        per_image.append([compute_errors(gt_valid, pred)[name] for name in METRICS])

    if not per_image:
        raise ConfigError(
            f"no pixel of the region is in the ground truth of any of the {len(gt_depths)} "
            f"images ({split!r} mask); nothing to score"
        )
    table = np.asarray(per_image, dtype=np.float64)
    metrics = dict(zip(METRICS, table.mean(axis=0).tolist(), strict=True))
    return EvalResult(
        metrics=metrics,
        per_image=table,
        split=split,
        median_scaling=median_scaling,
        scale_factor=scale,
        ratios=np.asarray(ratios, dtype=np.float64),
        pixels=pixels,
    )


def _region(region: np.ndarray, shape: tuple[int, ...], index: int) -> np.ndarray:
    """``region`` checked to be a boolean mask of the GT map's ``shape``."""
    region = np.asarray(region)
    if region.dtype != bool:
        raise ConfigError(
            f"region {index} must be a boolean mask, got {region.dtype}; compare label maps "
            "with the classes to keep (or use class_masks)"
        )
    if region.shape != shape:
        raise ConfigError(
            f"region {index} has shape {region.shape} but its GT depth map has shape {shape}; "
            "a region must cover the GT map pixel for pixel"
        )
    return region


# --------------------------------------------------------------------------------------------
# Ground truth
# --------------------------------------------------------------------------------------------


def _check_exist(paths: Iterable[Path], what: str, hint: str = "") -> None:
    """MissingDataError listing the first missing files, if any."""
    missing = [p for p in paths if not p.is_file()]
    if missing:
        listed = ", ".join(str(p) for p in missing[:_MAX_LISTED])
        more = f" and {len(missing) - _MAX_LISTED} more" if len(missing) > _MAX_LISTED else ""
        raise MissingDataError(f"{what} missing ({len(missing)}): {listed}{more}{hint}")


def _raw_items(items: Sequence[SplitItem], purpose: str) -> None:
    benchmark = [item for item in items if item.kind != "raw"]
    if benchmark:
        raise ConfigError(
            f"{purpose} needs KITTI raw split lines '<date>/<drive>_sync <frame> <side>', got "
            f"{benchmark[0].line()!r} ({benchmark[0].kind} format). The benchmark test list "
            "('image N') has no raw frames (docs/method.md#quirk-benchmark-split-format): "
            "score benchmark images from saved disparities (--ext-disp-to-eval)"
        )


def export_gt_depths(
    layout: KittiRawLayout,
    items: Sequence[SplitItem],
    split: str,
    out_path: PathLike,
    progress: bool = False,
) -> Path:
    """Write the GT depth maps of ``items`` (:func:`gt_depth_maps`) to ``out_path`` (.npz, key
    ``data``) and return it."""
    save_gt_depths(out_path, gt_depth_maps(layout, items, split, progress))
    return Path(out_path)


def gt_depth_maps(
    layout: KittiRawLayout, items: Sequence[SplitItem], split: str, progress: bool = False
) -> list[np.ndarray]:
    """The GT depth maps (float32 metres, 0 = no value) of ``items`` under protocol ``split``.

    ``eigen``: the Velodyne scan projected into the item's camera at camera 2's S_rect size with
    the LiDAR-x depth (the reference's ``generate_depth_map(..., vel_depth=True)``; all Eigen test
    items are left images, i.e. camera 2 as in the reference). ``eigen_benchmark``: KITTI's
    annotated depth maps ``proj_depth/groundtruth/image_0X/%010d.png`` / 256; ``dense`` reads the
    same maps (a synthetic drive's dense GT). Missing inputs are reported before anything is
    computed.
    """
    if split not in GT_SPLITS:
        raise ConfigError(f"no GT export for split {split!r}; use one of {list(GT_SPLITS)}")
    items = list(items)
    if not items:
        raise ConfigError("the split has no items; nothing to export")
    _raw_items(items, "GT export")
    if split == "eigen":
        paths = [layout.velodyne_path(item.folder, item.frame) for item in items]
        _check_exist(paths, "Velodyne scans", "; check --data-path and that the drives are there")
        for item in items:
            layout.calibration(item.folder)  # fail now on missing/bad calibration files
    else:
        paths = [layout.groundtruth_path(item.folder, item.frame, item.side) for item in items]
        if split == "dense":
            hint = (
                ". dense needs dense GT maps <date>/<drive>/proj_depth/groundtruth/image_0X/: a "
                "synthetic drive written by `depthhints synth`, or KITTI's annotated depth "
                "(data_depth_annotated.zip) merged into the raw tree"
            )
        else:
            hint = (
                ". eigen_benchmark needs KITTI's improved ground truth (the 'annotated depth "
                "maps' download, data_depth_annotated.zip) merged into the raw tree as "
                "<date>/<drive>/proj_depth/groundtruth/image_02/ (monodepth2 #258)"
            )
        _check_exist(paths, "annotated depth maps", hint)

    maps = []
    for item, path in tqdm(
        list(zip(items, paths, strict=True)), desc=f"GT {split}", unit="map", disable=not progress
    ):
        if split == "eigen":
            calib = layout.calibration(item.folder)
            depth = velodyne_to_depth_map(
                load_velodyne(path), calib, cam=item.camera, vel_depth=True
            )
        else:
            depth = load_depth_png(path)
        maps.append(depth.astype(np.float32))
    return maps


def class_masks(
    layout: KittiRawLayout, items: Sequence[SplitItem], classes: Sequence[str]
) -> list[np.ndarray]:
    """Boolean masks of the pixels of ``items`` labelled as one of ``classes``.

    Labels are a synthetic drive's ``semantic/image_0X/%010d.png`` (ids of
    :data:`depthhints.data.render.CLASSES`); use the masks as ``regions`` of
    :func:`evaluate_predictions`, e.g. with THIN_STRUCTURES. Missing files are reported first.
    """
    names = [classes] if isinstance(classes, str) else list(classes)
    unknown = [name for name in names if name not in CLASSES]
    if unknown or not names:
        raise ConfigError(
            f"unknown semantic classes {unknown or names}; use names from {list(CLASSES)}"
        )
    ids = np.array([CLASSES[name] for name in names], dtype=np.uint8)
    items = list(items)
    _raw_items(items, "semantic labels")
    paths = [layout.semantic_path(item.folder, item.frame, item.side) for item in items]
    _check_exist(
        paths,
        "semantic label maps",
        ". Semantic labels exist only in synthetic drives written by `depthhints synth` "
        "(<date>/<drive>/semantic/image_0X/); KITTI has none",
    )
    return [np.isin(_load_labels(path), ids) for path in paths]


def _load_labels(path: Path) -> np.ndarray:
    """A uint8 label PNG as an (h, w) array; DataFileError if it cannot be decoded."""
    try:
        labels = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except (OSError, cv2.error) as err:
        raise DataFileError(f"{path}: cannot read the semantic label PNG ({err})") from None
    if labels is None:
        raise DataFileError(
            f"{path}: cannot decode the semantic label PNG; the file is corrupt, re-create the "
            "drive with `depthhints synth`"
        )
    if labels.dtype != np.uint8 or labels.ndim != 2:
        raise DataFileError(
            f"{path}: a semantic label PNG must be single-channel 8-bit, got {labels.dtype} with "
            f"shape {labels.shape}"
        )
    return labels


def save_gt_depths(path: PathLike, maps: Sequence[np.ndarray]) -> None:
    """Store depth maps (any sizes) as a 1-D object array under key ``data``
    (docs/method.md#quirk-ragged-ground-truth)."""
    data = np.empty(len(maps), dtype=object)
    for i, depth in enumerate(maps):  # element-wise: equal shapes must not merge into 3-D
        data[i] = np.asarray(depth, dtype=np.float32)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, data=data)
    os.replace(tmp, path)


def load_gt_depths(path: PathLike) -> list[np.ndarray]:
    """GT depth maps of a ``gt_depths`` .npz (ours, or the reference's, ragged or not).

    A ragged file's object array is unpickled by :func:`~depthhints.npz.read_npz_array`, which
    rebuilds numpy arrays only: a file whose pickle names anything else is refused, unrun.
    """
    path = Path(path)
    export = "`depthhints export-gt --data-path <root> --split <eigen|eigen_benchmark|dense>`"
    fix = f"create it with {export} (or pass the right file with --gt)"
    if not path.is_file():
        raise MissingDataError(f"{path}: ground-truth depth file not found; {fix}")
    try:
        data = read_npz_array(path, "data")
    except RefusedPickleError as err:
        raise DataFileError(
            f"{path}: refused to load ground-truth depths: {err}, and loading it could run "
            f"code; re-export it with {export}"
        ) from None
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError, pickle.PickleError) as err:
        raise DataFileError(
            f"{path}: cannot read ground-truth depths ({type(err).__name__}: {err}); the file is "
            f"corrupt or not a gt_depths .npz with a 'data' entry; {fix}"
        ) from None
    return _depth_maps(path, data, fix)


def _depth_maps(path: Path, data: np.ndarray, fix: str) -> list[np.ndarray]:
    """The 2-D float32 maps of a GT file's ``data`` array (object array or (N, H, W))."""
    try:
        if data.dtype == object:
            maps = [np.asarray(depth, dtype=np.float32) for depth in data]
        else:
            maps = list(data.astype(np.float32)) if data.ndim == 3 else []
    except (TypeError, ValueError):
        maps = []
    if not maps or any(depth.ndim != 2 for depth in maps):
        raise DataFileError(
            f"{path}: 'data' must hold 2-D depth maps, got {data.dtype} array of shape "
            f"{data.shape}; {fix}"
        )
    return maps


# --------------------------------------------------------------------------------------------
# Prediction
# --------------------------------------------------------------------------------------------


class EvalImageDataset(Dataset):
    """Test images of a raw split, Lanczos-resized to the network size, as (3, H, W) in [0, 1]."""

    def __init__(
        self, layout: KittiRawLayout, items: Sequence[SplitItem], height: int, width: int
    ) -> None:
        items = list(items)
        _raw_items(items, "running the network")
        self.paths = [layout.image_path(item.folder, item.frame, item.side) for item in items]
        _check_exist(self.paths, "test images", "; check --data-path and the split file")
        self.height = int(height)
        self.width = int(width)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Tensor:
        image = Image.fromarray(load_image(self.paths[index], require_colour=True))
        image = image.resize((self.width, self.height), Image.Resampling.LANCZOS)
        array = np.asarray(image, dtype=np.float32) / 255.0
        return torch.from_numpy(array.transpose(2, 0, 1).copy())


def make_eval_loader(
    dataset: Dataset, batch_size: int = 16, num_workers: int = 0, pin_memory: bool = False
) -> DataLoader:
    """In-order, no-shuffle, keep-the-last-batch loader, as the reference evaluation uses."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=pin_memory,
        drop_last=False,
    )


def _batches(
    images: Dataset | Tensor | Iterable[Tensor], batch_size: int, num_workers: int, pin: bool
) -> Iterable[Tensor]:
    if isinstance(images, Tensor):
        if images.dim() != 4:
            raise ConfigError(f"images must be (N, 3, H, W), got {tuple(images.shape)}")
        return images.split(batch_size)
    if isinstance(images, Dataset) and hasattr(images, "__len__"):
        return make_eval_loader(images, batch_size, num_workers, pin_memory=pin)
    return images


@torch.inference_mode()
def predict_disparities(
    net: nn.Module,
    images: Dataset | Tensor | Iterable[Tensor],
    post_process: bool = False,
    device: str | torch.device = "cpu",
    batch_size: int = 16,
    num_workers: int = 0,
) -> np.ndarray:
    """Scaled disparities (N, H, W) float32 of ``net`` at the network resolution.

    ``images``: a Dataset of (3, H, W) tensors (batched here), an (N, 3, H, W) tensor, or any
    iterable of (B, 3, H, W) batches (e.g. a DataLoader). ``post_process`` also predicts the
    flipped batch and blends it in with :func:`post_process_disparity`.
    """
    device = torch.device(device)
    net = net.to(device).eval()
    out = []
    for batch in _batches(images, batch_size, num_workers, device.type == "cuda"):
        batch = batch.to(device, non_blocking=True)
        count = batch.shape[0]
        if post_process:
            batch = torch.cat([batch, torch.flip(batch, [3])], dim=0)
        disp = net(batch)[:, 0].float().cpu().numpy()
        if post_process:
            disp = post_process_disparity(disp[:count], disp[count:, :, ::-1])
        out.append(disp)
    if not out:
        raise ConfigError("no images to predict")
    return np.concatenate(out).astype(np.float32, copy=False)


# --------------------------------------------------------------------------------------------
# Saved predictions and the KITTI benchmark
# --------------------------------------------------------------------------------------------


def load_pred_disps(path: PathLike) -> np.ndarray:
    """Saved scaled disparities as float32 (N, H, W); (N, 1, H, W) is squeezed."""
    path = Path(path)
    if not path.is_file():
        raise MissingDataError(f"{path}: disparity file not found; check --ext-disp-to-eval")
    try:
        disps = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise DataFileError(
            f"{path}: cannot read disparities ({err}); expected a .npy float array (N, H, W) "
            "such as disps_eigen_split.npy"
        ) from None
    if disps.ndim == 4 and disps.shape[1] == 1:
        disps = disps[:, 0]
    if disps.ndim != 3 or not np.issubdtype(disps.dtype, np.number):
        raise DataFileError(
            f"{path}: disparities must be a numeric (N, H, W) array, got {disps.dtype} with "
            f"shape {disps.shape}"
        )
    return disps.astype(np.float32, copy=False)


def eigen_to_benchmark(pred_disps: np.ndarray) -> np.ndarray:
    """Re-index 697 Eigen test predictions to the 652 frames of ``eigen_benchmark``."""
    if len(pred_disps) != NUM_EIGEN_TEST:
        raise ConfigError(
            f"eigen->benchmark re-indexing needs the {NUM_EIGEN_TEST} Eigen test predictions, "
            f"got {len(pred_disps)}; drop --eval-eigen-to-benchmark for predictions that already "
            "follow the eigen_benchmark list"
        )
    return np.asarray(pred_disps)[np.load(EIGEN_TO_BENCHMARK_IDS)]


def export_benchmark_pngs(
    pred_disps: np.ndarray, out_dir: PathLike, scale_factor: float = STEREO_SCALE_FACTOR
) -> list[Path]:
    """Write KITTI benchmark submission PNGs ``{i:010d}.png`` (uint16 metres × 256, 1216×352).

    depth = scale_factor / disp (bilinearly resized), clipped to [0, 80]. The reference always
    uses 5.4, also for mono models (docs/method.md#quirk-benchmark-export-scale); pass the
    factor that makes your model metric (e.g. a median-scaling ratio for a mono model) to get
    meaningful submissions.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for i, disp in enumerate(pred_disps):
        disp = np.ascontiguousarray(disp, dtype=np.float32)
        resized = cv2.resize(disp, BENCHMARK_SIZE, interpolation=cv2.INTER_LINEAR)
        with np.errstate(divide="ignore"):
            depth = np.clip(scale_factor / resized, 0, MAX_DEPTH)
        path = out_dir / f"{i:010d}.png"
        if not cv2.imwrite(str(path), (depth * 256).astype(np.uint16)):
            raise DataFileError(f"{path}: OpenCV could not write the PNG; check the folder")
        written.append(path)
    return written
