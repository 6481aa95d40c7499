"""``depthhints export-gt`` (a test split's ground truth to .npz) and ``depthhints evaluate``
(depth metrics of a network or of saved disparities, :mod:`depthhints.evaluation_run`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from depthhints.cli.arguments import from_args, positive_int
from depthhints.config import EVAL_PROTOCOLS
from depthhints.evaluation_run import EvaluationRequest, export_ground_truth, run_evaluation

EVAL_MODE_HINT = (
    "give exactly one of --eval-stereo (stereo-trained models: x5.4, no median scaling) or "
    "--eval-mono (per-image median scaling). The Depth Hints README's eval command uses "
    "--use_stereo, which is a training flag (docs/method.md#quirk-eval-flag)"
)

TEST_LIST_FORMS = "a split file, a folder holding test_files.txt or a bundled split name"


def register(commands: argparse._SubParsersAction) -> None:
    export_gt = commands.add_parser(
        "export-gt", help="write the ground-truth depth maps of a test split to an .npz"
    )
    add = export_gt.add_argument
    add("--data-path", required=True, help="KITTI raw root (or a synthetic tree)")
    split = (
        "eigen: projected Velodyne scans (LiDAR-x depth, as published); eigen_benchmark: KITTI's "
        "annotated depth maps under proj_depth/groundtruth; dense: the same maps, for synthetic "
        "drives (no bundled list: give --split-file)"
    )
    add("--split", choices=EVAL_PROTOCOLS, required=True, help=split)
    split_file = (
        f"test list to export: {TEST_LIST_FORMS} (default: the bundled <split>/test_files.txt; "
        "for a synthetic tree use <data-path>/splits)"
    )
    add("--split-file", help=split_file)
    add("--out", help="output .npz (default: <data-path>/gt_depths_<split>.npz)")
    export_gt.set_defaults(func=cmd_export_gt)
    _register_evaluate(commands)


def _register_evaluate(commands: argparse._SubParsersAction) -> None:
    evaluate = commands.add_parser(
        "evaluate",
        help="depth metrics (abs rel ... a3) of a weights folder or saved disparities on KITTI",
    )
    _explain_mode_errors(evaluate)
    mode = evaluate.add_mutually_exclusive_group(required=True).add_argument
    mode("--eval-stereo", action="store_true", help="stereo-trained model: x5.4, no median scaling")
    mode("--eval-mono", action="store_true", help="per-image median scaling")
    add = evaluate.add_argument
    add("--use-stereo", "--use_stereo", nargs=0, action=_UseStereoAction, help=argparse.SUPPRESS)
    add("--load-weights-folder", metavar="DIR", help="folder with encoder.pth and depth.pth")
    add("--data-path", metavar="ROOT", help="KITTI raw root (test images; default GT folder)")
    split = (
        "eigen: LiDAR GT with crop and 80 m cap; eigen_benchmark: improved GT; dense: dense "
        "(synthetic) GT with 80 m cap, no crop, needs --split-file to predict; benchmark: write "
        "KITTI submission PNGs, no metrics"
    )
    default = EvaluationRequest.eval_split
    add("--eval-split", choices=[*EVAL_PROTOCOLS, "benchmark"], default=default, help=split)
    test_list = (
        f"test list to predict: {TEST_LIST_FORMS} (default: the bundled "
        "<eval-split>/test_files.txt)"
    )
    add("--split-file", metavar="FILE", help=test_list)
    add("--gt", metavar="FILE", help="GT .npz (default: <data-path>/gt_depths_<eval-split>.npz)")
    post = "blend in the flipped image's prediction (docs/method.md#quirk-post-processing)"
    add("--post-process", action="store_true", help=post)
    add("--ext-disp-to-eval", metavar="NPY", help="score saved (N, H, W) disparities (.npy)")
    reindex = "re-index 697 saved Eigen predictions to the 652 eigen_benchmark frames"
    add("--eval-eigen-to-benchmark", action="store_true", help=reindex)
    save = "save the predictions (default FILE: <weights>/disps_<eval-split>_split.npy)"
    add("--save-pred-disps", nargs="?", const="", metavar="FILE", help=save)
    add("--no-eval", action="store_true", help="stop after predicting/saving")
    add("--disable-median-scaling", action="store_true", help="mono: no median scaling")
    factor = (
        "multiply depths by X (default: 5.4 stereo, 1 mono; benchmark PNGs: 5.4 for every model "
        "as published, docs/method.md#quirk-benchmark-export-scale)"
    )
    add("--pred-depth-scale-factor", type=float, metavar="X", help=factor)
    out = "folder for benchmark PNGs (default: <weights>/benchmark_predictions)"
    add("--benchmark-out", metavar="DIR", help=out)
    batch, workers = EvaluationRequest.batch_size, EvaluationRequest.num_workers
    add("--batch-size", type=positive_int, default=batch, metavar="N", help="images per batch")
    add("--num-workers", type=int, default=workers, metavar="N", help="image loading processes")
    add("--device", choices=["cpu", "cuda"], help="default: cuda when available, else cpu")
    add("--json", metavar="FILE", help="also write the run and its metrics as JSON to FILE")
    evaluate.set_defaults(func=cmd_evaluate)


class _UseStereoAction(argparse.Action):
    """Turns the README's mistaken ``--use_stereo`` into a clear error."""

    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(f"{option_string} is not an evaluation mode: {EVAL_MODE_HINT}")


def _explain_mode_errors(parser: argparse.ArgumentParser) -> None:
    """argparse's errors about the evaluation mode, with what the two modes are."""
    plain_error = parser.error

    def error(message: str) -> None:
        if "--eval-stereo" in message and EVAL_MODE_HINT not in message:
            message = f"{message}; {EVAL_MODE_HINT}"
        plain_error(message)

    parser.error = error  # type: ignore[method-assign]


def cmd_export_gt(args: argparse.Namespace) -> int:
    from depthhints.paths import writable_file

    split_file = _test_list(args.split_file)
    writable_file(args.out or Path(args.data_path) / f"gt_depths_{args.split}.npz", "--out")
    export_ground_truth(args.data_path, args.split, split_file, args.out)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from depthhints.paths import writable_file, writable_folder

    request = from_args(EvaluationRequest, args, split_file=_test_list(args.split_file))
    for flag, file in (("--json", request.json), ("--save-pred-disps", request.save_pred_disps)):
        if file:  # "" for --save-pred-disps: beside the weights
            writable_file(file, flag)
    if request.benchmark_out:
        writable_folder(request.benchmark_out, "--benchmark-out")
    run_evaluation(request)
    return 0


def _test_list(spec: str | None) -> str | None:
    """The test list file that ``--split-file`` names (see :func:`split_lists`)."""
    from depthhints.data.kitti import split_lists

    return str(split_lists(spec, ("test",), "--split-file")["test"]) if spec else None
