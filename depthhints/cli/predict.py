"""``depthhints predict`` (depth maps of images) and ``depthhints export`` (ONNX and
TorchScript, checked against PyTorch)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from depthhints.cli.arguments import positive_int

WEIGHTS_HELP = "folder with encoder.pth and depth.pth"


def register(commands: argparse._SubParsersAction) -> None:
    predict = commands.add_parser(
        "predict",
        help="depth maps (.npy at the input size, coloured .png) for images with a weights folder",
    )
    add = predict.add_argument
    add("--load-weights-folder", required=True, help=WEIGHTS_HELP)
    add("inputs", nargs="+", help="image files, folders (non-recursive) or quoted globs")
    add("--out", required=True, help="folder for <stem>_depth.npy/.png")
    add("--ext", default="jpg,jpeg,png", help="comma-separated extensions searched in folders")
    add("--batch-size", type=positive_int, default=8, help="images per batch")
    add("--device", choices=["cpu", "cuda"], help="default: cuda when available, else cpu")
    add("--no-colormap", action="store_true", help="skip the coloured .png")
    predict.set_defaults(func=cmd_predict)

    export = commands.add_parser(
        "export", help="export the depth network to ONNX and TorchScript (+ export.json)"
    )
    add = export.add_argument
    add("--load-weights-folder", required=True, help=WEIGHTS_HELP)
    add("--out", required=True, help="folder for the exported files")
    formats = ["onnx", "torchscript"]
    add("--format", nargs="+", choices=formats, default=formats, help="the formats to write")
    add("--opset", type=int, default=17, help="ONNX opset, 11..20")
    add("--verify-image", help="image to compare the outputs on (default: noise)")
    add("--no-verify", action="store_true", help="skip the comparison with PyTorch")
    add("--tolerance", type=float, default=1e-3, help="max abs disparity difference accepted")
    export.set_defaults(func=cmd_export)


def cmd_predict(args: argparse.Namespace) -> int:
    from depthhints.paths import writable_folder
    from depthhints.predict import report, run_predict

    summary = run_predict(
        args.load_weights_folder,
        args.inputs,
        writable_folder(args.out, "--out"),
        exts=args.ext.split(","),
        batch_size=args.batch_size,
        device=args.device,
        colormap=not args.no_colormap,
    )
    report(summary)
    return 0 if summary.ok else 1


def cmd_export(args: argparse.Namespace) -> int:
    from depthhints.export import export_depth_net
    from depthhints.paths import writable_folder

    out = writable_folder(args.out, "--out")
    result = export_depth_net(args.load_weights_folder, out, args.format, args.opset)
    for fmt, path in result.files.items():
        print(f"{fmt:12s} {path}")
    meta = result.metadata
    print(
        f"input '{meta['input']['name']}' (batch, 3, {meta['height']}, {meta['width']}) RGB in "
        f"[0, 1]; output '{meta['output']['name']}' = scaled disparity; {meta['depth']}, "
        f"{meta['depth_unit']}"
    )
    return 0 if args.no_verify else _verify(args, meta)


def _verify(args: argparse.Namespace, meta: dict[str, Any]) -> int:
    """Compare the export with PyTorch and record it in export.json; 1 beyond the tolerance."""
    from depthhints.export import verify_export, write_metadata

    diffs = verify_export(args.out, args.load_weights_folder, args.verify_image)
    image = str(args.verify_image or "synthetic noise")
    meta["verification"] = {"image": image, "batch": 2, "max_abs_diff_vs_pytorch": diffs}
    write_metadata(args.out, meta)
    worst = max(diffs.values())
    shown = ", ".join(f"{fmt} {diff:.2e}" for fmt, diff in diffs.items())
    print(f"max abs difference vs PyTorch: {shown}")
    if worst > args.tolerance:
        print(
            f"depthhints: error: exported output differs from PyTorch by {worst:.2e} "
            f"(> {args.tolerance:g}); do not use this export",
            file=sys.stderr,
        )
        return 1
    return 0
