"""An evaluation run: the ground truth read first, predictions made by a network or loaded,
optionally saved, then scored (or written as KITTI benchmark PNGs); and the export of a test
split's ground truth. ``depthhints evaluate`` and ``depthhints export-gt`` run these.

Messages name the command's options (``--eval-stereo`` ...) and go to stdout as the run goes;
notes on a questionable choice go to stderr. Errors are :class:`ConfigError` /
:class:`MissingDataError` naming the fix. numpy, torch and the evaluation code are imported when
a run starts, so the command's parser stays fast to build.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from depthhints.errors import ConfigError, MissingDataError

if TYPE_CHECKING:
    import numpy as np

    from depthhints.evaluate import EvalResult


@dataclass
class EvaluationRequest:
    """What to score and how; the fields are ``depthhints evaluate``'s options."""

    eval_stereo: bool
    """True: depth x5.4, no median scaling (stereo-trained models); False: per-image median
    scaling."""
    eval_split: str = "eigen"
    load_weights_folder: str | None = None
    ext_disp_to_eval: str | None = None
    data_path: str | None = None
    split_file: str | None = None
    gt: str | None = None
    post_process: bool = False
    eval_eigen_to_benchmark: bool = False
    save_pred_disps: str | None = None
    """None: not saved; "": <weights>/disps_<eval_split>_split.npy."""
    no_eval: bool = False
    disable_median_scaling: bool = False
    pred_depth_scale_factor: float | None = None
    benchmark_out: str | None = None
    batch_size: int = 16
    num_workers: int = 0
    device: str | None = None
    json: str | None = None


def run_evaluation(request: EvaluationRequest) -> EvalResult | None:
    """Predict or load, save, then score; the scores (None with ``no_eval`` or the benchmark)."""
    gt_path, gt_depths = _ground_truth(request)  # read first: fail before predicting
    if request.ext_disp_to_eval:
        disps, source = _saved_disparities(request), str(request.ext_disp_to_eval)
    else:
        disps, source = _predict(request, gt_depths, gt_path), str(request.load_weights_folder)
    check_counts(len(disps), gt_depths, gt_path, f"predictions ({source})")  # before any write
    if request.save_pred_disps is not None:
        _save(disps, request)
    if request.no_eval:
        print("-> evaluation disabled (--no-eval)")
        return None
    if request.eval_split == "benchmark":
        _write_benchmark(disps, request)
        return None
    return _score(disps, gt_depths, gt_path, source, request)


def export_ground_truth(
    data_path: str | Path, split: str, split_file: str | None = None, out: str | None = None
) -> Path:
    """The GT depth maps of ``split``'s test list (or ``split_file``) written to ``out``
    (default ``<data_path>/gt_depths_<split>.npz``)."""
    from depthhints.data.kitti import KittiRawLayout, load_split, read_split_file
    from depthhints.evaluate import export_gt_depths

    root = Path(data_path)
    if not root.is_dir():
        raise MissingDataError(f"{root}: KITTI data root not found; check --data-path")
    items = read_split_file(split_file) if split_file else load_split(split, "test")
    path = Path(out) if out else root / f"gt_depths_{split}.npz"
    start = time.perf_counter()
    # Only LiDAR/GT files are read, so the image extension does not matter here.
    export_gt_depths(KittiRawLayout(root, image_ext=".png"), items, split, path, progress=True)
    print(
        f"wrote {len(items)} {split} ground-truth depth maps to {path} "
        f"in {time.perf_counter() - start:.1f} s"
    )
    return path


def check_counts(count: int, gt_depths: list | None, gt_path: Path | None, what: str) -> None:
    """ConfigError unless there are as many ``what`` as ground-truth maps."""
    from depthhints.evaluate import COUNT_MISMATCH_HINT

    if gt_depths is not None and count != len(gt_depths):
        raise ConfigError(
            f"{count} {what} but {len(gt_depths)} ground-truth depth maps "
            f"in {gt_path}: {COUNT_MISMATCH_HINT}"
        )


def _ground_truth(request: EvaluationRequest) -> tuple[Path | None, list | None]:
    """The GT file and its maps; (None, None) when nothing will be scored."""
    from depthhints.evaluate import load_gt_depths

    split = request.eval_split
    if request.no_eval or split == "benchmark":
        return None, None
    if request.gt:
        path = Path(request.gt)
    elif request.data_path:
        path = Path(request.data_path) / f"gt_depths_{split}.npz"
    else:
        raise ConfigError(
            "give --gt FILE (from `depthhints export-gt`) or --data-path with "
            f"<data-path>/gt_depths_{split}.npz"
        )
    return path, load_gt_depths(path)


def _saved_disparities(request: EvaluationRequest) -> np.ndarray:
    from depthhints import evaluate as ev

    disps = ev.load_pred_disps(request.ext_disp_to_eval)
    print(
        f"-> loaded {len(disps)} disparities of {disps.shape[1:]} from {request.ext_disp_to_eval}"
    )
    if request.post_process:
        print("-> note: --post-process needs the network; saved disparities are used as they are")
    if request.eval_eigen_to_benchmark:
        disps = ev.eigen_to_benchmark(disps)
        print(f"-> re-indexed the Eigen predictions to {len(disps)} eigen_benchmark frames")
    return disps


def _check_predict_request(request: EvaluationRequest) -> None:
    if request.load_weights_folder is None:
        raise ConfigError(
            "give --load-weights-folder (a network to run) or --ext-disp-to-eval (saved "
            "disparities)"
        )
    if request.data_path is None:
        raise ConfigError("--data-path (the KITTI raw root holding the test images) is required")
    if request.num_workers < 0:
        raise ConfigError(f"--num-workers must be 0 or more, got {request.num_workers}")
    if request.eval_eigen_to_benchmark:
        raise ConfigError(
            "--eval-eigen-to-benchmark re-indexes saved 697-image Eigen predictions; use it with "
            "--ext-disp-to-eval, or run the network directly with --eval-split eigen_benchmark"
        )


def _predict(
    request: EvaluationRequest, gt_depths: list | None, gt_path: Path | None
) -> np.ndarray:
    """The network's (N, H, W) scaled disparities of the test items."""
    from depthhints import evaluate as ev
    from depthhints.data.kitti import KittiRawLayout, load_split, read_split_file
    from depthhints.models.depth_net import load_depth_net
    from depthhints.predict import resolve_device

    _check_predict_request(request)
    if request.split_file:
        items = read_split_file(request.split_file)
    else:
        items = load_split(request.eval_split, "test")
    split_name = request.split_file or f"the bundled {request.eval_split} test list"
    check_counts(len(items), gt_depths, gt_path, f"test items in {split_name}")
    device = resolve_device(request.device)
    loaded = load_depth_net(request.load_weights_folder, device=device)
    _note_mode(loaded.use_stereo, request.eval_stereo)
    layout = KittiRawLayout(request.data_path)
    dataset = ev.EvalImageDataset(layout, items, loaded.height, loaded.width)
    print(
        f"-> predicting {len(dataset)} images at {loaded.width}x{loaded.height} with "
        f"ResNet{loaded.num_layers} on {device}"
        + (" with post-processing" if request.post_process else "")
    )
    return ev.predict_disparities(
        loaded.net,
        dataset,
        post_process=request.post_process,
        device=device,
        batch_size=request.batch_size,
        num_workers=request.num_workers,
    )


def _note_mode(trained_with_stereo: bool, eval_stereo: bool) -> None:
    """A note on stderr when the evaluation mode does not suit how the model was trained."""
    if trained_with_stereo and not eval_stereo:
        print(
            "-> note: this model was trained with stereo; --eval-mono median-scales it and "
            "flatters it, --eval-stereo gives the comparable numbers "
            "(docs/method.md#quirk-eval-flag)",
            file=sys.stderr,
        )
    if not trained_with_stereo and eval_stereo:
        print(
            "-> note: this model was trained without stereo, so its depth is not metric; "
            "x5.4 is only meaningful for stereo-trained models",
            file=sys.stderr,
        )


def _weights(request: EvaluationRequest) -> Path | None:
    return Path(request.load_weights_folder) if request.load_weights_folder else None


def _save(disps: np.ndarray, request: EvaluationRequest) -> None:
    import numpy as np

    weights = _weights(request)
    if request.save_pred_disps:
        path = Path(request.save_pred_disps)
    elif weights is not None:
        path = weights / f"disps_{request.eval_split}_split.npy"
    else:
        raise ConfigError("--save-pred-disps needs a file name when no weights folder is given")
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, disps)
    print(f"-> saved {len(disps)} predicted disparities to {path}")


def _write_benchmark(disps: np.ndarray, request: EvaluationRequest) -> None:
    from depthhints import evaluate as ev

    weights = _weights(request)
    if request.benchmark_out:
        out_dir = Path(request.benchmark_out)
    elif weights is not None:
        out_dir = weights / "benchmark_predictions"
    else:
        out_dir = Path(request.ext_disp_to_eval).parent / "benchmark_predictions"
    factor = request.pred_depth_scale_factor or ev.STEREO_SCALE_FACTOR
    written = ev.export_benchmark_pngs(disps, out_dir, scale_factor=factor)
    print(
        f"-> wrote {len(written)} KITTI benchmark PNGs (depth = {factor:g} / disparity) to "
        f"{out_dir}; the benchmark has no local ground truth, so no metrics"
    )


def _score(
    disps: np.ndarray,
    gt_depths: list,
    gt_path: Path,
    source: str,
    request: EvaluationRequest,
) -> EvalResult:
    from depthhints import evaluate as ev

    result = ev.evaluate_predictions(
        disps,
        gt_depths,
        request.eval_split,
        stereo=request.eval_stereo,
        median_scaling=False if request.disable_median_scaling else None,
        pred_depth_scale_factor=request.pred_depth_scale_factor,
    )
    mode = "stereo" if request.eval_stereo else "mono"
    scaling = "per-image median scaling" if result.median_scaling else "no median scaling"
    print(
        f"-> {mode} evaluation of {result.num_images} images on {request.eval_split} "
        f"({gt_path}): depth x {result.scale_factor:g}, {scaling}"
    )
    print(result.format())
    if request.json:
        payload = {
            "mode": mode,
            "predictions": source,
            "post_process": bool(request.post_process and not request.ext_disp_to_eval),
            "gt": str(gt_path),
            **result.as_dict(),
        }
        Path(request.json).parent.mkdir(parents=True, exist_ok=True)
        Path(request.json).write_text(json.dumps(payload, indent=2) + "\n")
        print(f"-> metrics written to {request.json}")
    return result
