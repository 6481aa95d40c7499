"""Depth hints on one GPU node: every core matching, the fusion on the CPU against on the GPU.

``python -m bench.hints_gpu --out DIR`` on a GPU node (it needs neither Ray nor MLflow):

1. writes a KITTI-size synthetic drive (JPEG, 1242×375);
2. for the parity and fast matchers, computes every image's hints with ``NodeHints`` on all the
   node's cores, first fusing on the CPU (each process fuses its own frames: what a CPU node
   does today) and then batched on the GPU; images/s each, and the eigen_full time on one such
   node modelled from them (46,976 images; a model, not a measurement);
3. compares the two stores (share of identical hints, largest difference) and their accuracy
   against the drive's dense ground truth (does a flipped tie matter?), and the CUDA fusion of
   the real KITTI pair against the CPU's (identical hints and argmin);
4. writes ``hints_gpu.json`` (after every stage) and ``hints_gpu.md`` to DIR; ``--publish``
   also writes the section of docs/benchmarks.md.

``--smoke`` runs every stage at a tiny size (on the CPU when there is no GPU): the test suite
does, so that the script cannot rot.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench import gpu_checks
from bench.gpu import KITTI_PAIR
from bench.report import table, write_section
from bench.stages import Run
from depthhints.data import synthetic as syn
from depthhints.data.hint_store import open_store
from depthhints.data.kitti import KittiRawLayout, SplitItem, load_image
from depthhints.hints.compute import HintConfig, plan_jobs
from depthhints.hints.quality import evaluate_store
from hints_worker.node import NodeHints

EIGEN_FULL_IMAGES = 46_976
GOAL_MINUTES = {"parity": 35, "fast": 15}


@dataclass(frozen=True)
class Sizes:
    native: tuple[int, int] = (1242, 375)
    frames: int = 64
    hint: tuple[int, int] = (320, 1024)  # height, width


SMOKE = Sizes(native=(416, 128), frames=4, hint=(96, 320))


def compute_store(
    layout: KittiRawLayout,
    items: list[SplitItem],
    config: HintConfig,
    store: Path,
    device: str,
    batched: bool,
) -> dict:
    """Every item's hint with NodeHints on all cores, fused in each process or ``batched`` on
    ``device``: images/s."""
    jobs = plan_jobs(items, set())
    manifest = config.manifest("npy", layout.root)
    with NodeHints(layout, config, device=device, batched=batched) as node:
        start = time.perf_counter()
        results = list(node.run(jobs, open_store(store, manifest)))
        seconds = time.perf_counter() - start
    written = sum(len(r.written) for r in results)
    failed = sum(len(r.failures) for r in results)
    return {
        "images": written,
        "failed": failed,
        "seconds": seconds,
        "images_per_second": written / seconds,
        "processes": node.processes,
    }


def compare_stores(first: Path, second: Path, layout: KittiRawLayout) -> dict:
    """How far two stores of the same images are apart, and each one's accuracy."""
    a, b = open_store(first), open_store(second)
    keys = sorted(a.keys())
    same = total = 0
    largest = 0.0
    for key in keys:
        x, y = a.read(key), b.read(key)
        same += int((x == y).sum())
        total += x.size
        largest = max(largest, float(np.abs(x - y).max()))
    return {
        "identical_hint_share": same / total,
        "largest_hint_difference": largest,
        "accuracy": {
            name: evaluate_store(store, layout).as_dict()
            for name, store in (("cpu", a), ("gpu", b))
        },
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.hints_gpu", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="folder for the results")
    parser.add_argument("--smoke", action="store_true", help="every stage at a tiny size")
    parser.add_argument("--publish", action="store_true", help="also write docs/benchmarks.md")
    args = parser.parse_args(argv)
    sizes = SMOKE if args.smoke else Sizes()
    with tempfile.TemporaryDirectory(prefix="bench-hints-gpu-") as tmp:
        results = measure(args.out, sizes, Path(tmp))
    markdown = report(results)
    (args.out / "hints_gpu.md").write_text(markdown)
    if args.publish:
        write_section("hints_gpu", "Depth hints on one GPU node", markdown)
    print(markdown)
    return results


def measure(out: Path, sizes: Sizes, work: Path) -> dict:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    run = Run(out, budget=float("inf"), name="hints_gpu")
    width, height = sizes.native
    root = work / "kitti"

    def drive() -> dict:
        config = syn.DatasetConfig(
            frames_per_drive=sizes.frames, width=width, height=height, seed=3, image_ext=".jpg"
        )
        syn.generate_dataset(root, config, workers=os.cpu_count() or 1)
        return {"frames": sizes.frames, "folder": config.drives()[0].folder}

    data = run.stage("data", drive)
    layout = KittiRawLayout(root)
    items = [SplitItem(data["folder"], f, s) for f in range(sizes.frames) for s in "lr"]
    for matchers in ("parity", "fast"):
        config = HintConfig(*sizes.hint, matchers=matchers)
        stores = {name: work / f"{matchers}_{name}" for name in ("cpu", "gpu")}
        for name, store in stores.items():
            run.stage(
                f"{matchers} {name} fusion",
                lambda c=config, s=store, gpu=name == "gpu": compute_store(
                    layout, items, c, s, device if gpu else "cpu", batched=gpu
                ),
            )
        run.stage(f"{matchers} stores", lambda s=stores: compare_stores(s["cpu"], s["gpu"], layout))
    left, right = (load_image(KITTI_PAIR / f"{side}.png") for side in ("left", "right"))
    run.stage(
        "kitti_pair_fusion",
        lambda: gpu_checks.fusion_difference(left, right, torch.device(device)),
    )
    return run.results


def report(results: dict) -> str:
    env = results["environment"]
    rows = []
    for matchers in ("parity", "fast"):
        cpu = results.get(f"{matchers} cpu fusion", {})
        gpu = results.get(f"{matchers} gpu fusion", {})
        if "images_per_second" not in cpu or "images_per_second" not in gpu:
            continue
        minutes = EIGEN_FULL_IMAGES / gpu["images_per_second"] / 60
        goal = GOAL_MINUTES[matchers]
        rows.append(
            [
                matchers,
                f"{cpu['images_per_second']:.2f}",
                f"{gpu['images_per_second']:.2f}",
                f"{gpu['images_per_second'] / cpu['images_per_second']:.2f}×",
                f"{EIGEN_FULL_IMAGES / cpu['images_per_second'] / 60:.0f}",
                f"{minutes:.0f} ({'met' if minutes <= goal else 'not met'}: goal ≤ {goal})",
            ]
        )
    lines = [
        f"Machine: {env['device']}, {env['cpu_cores']} CPU cores, torch {env['torch']}, "
        f"{env['date']}. Command: `python -m bench.hints_gpu --out DIR`. Every image of a "
        "KITTI-size synthetic drive (both sides of each frame), hints at 1024×320, all the "
        "node's cores matching; CPU fusion: each process fuses its own frames; GPU fusion: "
        "the candidates fused in batches on the GPU. eigen_full times are a model from the "
        "measured rates (46,976 images on one such node), not a measurement.",
        "",
        table(
            [
                "matchers",
                "CPU fusion images/s",
                "GPU fusion images/s",
                "ratio",
                "eigen_full min, CPU fusion",
                "eigen_full min, GPU fusion",
            ],
            rows,
        ),
    ]
    for matchers in ("parity", "fast"):
        stores = results.get(f"{matchers} stores", {})
        if "accuracy" in stores:
            cpu, gpu = stores["accuracy"]["cpu"], stores["accuracy"]["gpu"]
            lines.append(
                f"- {matchers}: GPU-fused hints identical to the CPU's on "
                f"{100 * stores['identical_hint_share']:.4f}% of pixels (largest difference "
                f"{stores['largest_hint_difference']:.3g}); against the dense ground truth: "
                f"abs rel {cpu['abs_rel']:.5f} CPU vs {gpu['abs_rel']:.5f} GPU, δ<1.25 "
                f"{cpu['delta1']:.5f} vs {gpu['delta1']:.5f}, coverage {cpu['coverage']:.5f} vs "
                f"{gpu['coverage']:.5f}"
            )
    pair = results.get("kitti_pair_fusion", {})
    if "pixels" in pair:
        lines.append(
            f"- real KITTI pair (parity): identical hints "
            f"{100 * pair['identical_hint_share']:.4f}%, identical argmin "
            f"{100 * pair['identical_argmin_share']:.4f}% of {pair['pixels']:,} pixels; largest "
            f"difference {pair['largest_hint_difference']:.3g}"
        )
    lines += [
        f"- failed stage `{k}`: {v['error']}"
        for k, v in results.items()
        if isinstance(v, dict) and "error" in v
    ]
    return "\n".join(lines).strip() + "\n"


if __name__ == "__main__":
    main()
