"""Training on one GPU: CUDA checks and the reference-style pipeline against ours, in one run.

``python -m bench.gpu --out DIR`` on a GPU node (it needs neither Ray nor MLflow):

1. writes a KITTI-size synthetic drive (JPEG, 1242×375) and hints from its ground truth;
2. checks CUDA against the CPU: a training step (losses, gradients), checkpoints resumed across
   devices, evaluation and prediction, hint fusion on the real KITTI pair;
3. measures, for stereo + hints at R18 640×192, R50 640×192 and R50 1024×320, batch 12, the
   **reference-style pipeline** (fp32, the per-sample PIL loader with the published 12 workers)
   and **ours** (the training cache with flip, jitter and hint resize on the GPU, bf16 networks,
   channels-last): images/s of the training loop, peak GPU memory, GPU busy share, and the
   loader alone; plus ``depthhints train``'s own loop end to end for R18, and the hint
   fusion rate on the GPU against the CPU;
4. trains R18 640×192 for 500 steps in fp32 and with each speed option, and compares the final
   loss and the depth error on a held-out drive;
5. writes ``gpu.json`` (after every stage, so a timeout keeps what was done) and ``gpu.md`` to
   DIR, its data and runs to a temporary folder (``--work`` to keep them); ``--publish`` also
   writes the section of docs/benchmarks.md. Stages after the first ``--budget`` seconds that
   are not essential (the end-to-end runs, compile, the other options' training) are skipped.

``--smoke`` runs every stage at a tiny size (on the CPU when there is no GPU): the test suite
does, so the script cannot rot.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench import drift, gpu_checks
from bench.fixtures import hints_from_ground_truth
from bench.report import table, write_section
from bench.stages import Run
from depthhints.config import TrainConfig
from depthhints.data import synthetic as syn
from depthhints.data.kitti import SplitItem, load_image, write_split_file
from depthhints.geometry import disparity_to_depth, focal_px
from depthhints.hints.fusion import fuse, resize_for_hints
from depthhints.hints.sgm import candidate_disparities, make_matchers
from depthhints.train.data import build_datasets, device_batch, epoch_order, make_loader
from depthhints.train.loop import PendingLosses, fit, seed_everything
from depthhints.train.model import build_model
from depthhints.train.reporting import TrackingOptions
from depthhints.train.step import train_step_tensors

REFERENCE_WORKERS = 12  # the published loader's worker count
DRIFT_VARIANTS = {  # each against "fp32": the cache loader with every speed option off
    "fp32": {"loader": "cache"},
    "bf16": {"loader": "cache", "precision": "bf16"},
    "channels_last": {"loader": "cache", "channels_last": True},
    "compile": {"loader": "cache", "compile": True},
    "bf16 + channels_last": {"loader": "cache", "precision": "bf16", "channels_last": True},
    "reference loader": {"loader": "reference"},
    "fp32, another seed": {"loader": "cache", "seed": 1},
}
ESSENTIAL_DRIFT = ("fp32", "bf16")  # the rest run while the time budget lasts
KITTI_PAIR = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "kitti_object_stereo"
BATCH = 12


@dataclass(frozen=True)
class Sizes:
    """How big each stage runs."""

    native: tuple[int, int] = (1242, 375)
    frames: int = 48
    configs: tuple[tuple[int, int, int], ...] = ((18, 192, 640), (50, 192, 640), (50, 320, 1024))
    batch: int = BATCH
    reference_steps: int = 20
    ours_steps: int = 100
    warmup: int = 5
    loader_batches: int = 20
    end_to_end_samples: int = 1200
    drift_steps: int = 500
    drift_frames: int = 160  # 3 drives; ~316 training items, 26 steps an epoch
    check_size: tuple[int, int] = (192, 640)
    fusion_repeats: int = 5
    drift_variants: tuple[str, ...] = tuple(DRIFT_VARIANTS)


SMOKE = Sizes(
    native=(416, 128),
    frames=6,
    configs=((18, 64, 192),),
    batch=2,
    reference_steps=2,
    ours_steps=2,
    warmup=1,
    loader_batches=2,
    end_to_end_samples=4,
    drift_steps=4,
    drift_frames=6,
    check_size=(64, 192),
    fusion_repeats=1,
    drift_variants=("fp32", "bf16", "reference loader"),
)


# ------------------------------------------------------------------------------------------ data


def prepare(root: Path, sizes: Sizes, workers: int) -> dict:
    """One synthetic drive, every frame's both sides as training items, and their hints."""
    width, height = sizes.native
    config = syn.DatasetConfig(
        frames_per_drive=sizes.frames, width=width, height=height, seed=11, image_ext=".jpg"
    )
    syn.generate_dataset(root, config, workers=workers)
    folder = config.drives()[0].folder
    items = [SplitItem(folder, f, s) for f in range(sizes.frames) for s in "lr"]
    hints_from_ground_truth(root, items, root / "depth_hints", *_hint_size(sizes))
    splits = {  # all items; 8 for the checks; one long epoch, as eigen_full's 3,766 steps
        "split": items,
        "small_split": items[:8],
        "long_split": (items * -(-sizes.end_to_end_samples // len(items)))[
            : sizes.end_to_end_samples
        ],
    }
    for name, train_items in splits.items():
        (root / name).mkdir()
        write_split_file(root / name / "train_files.txt", train_items)
        write_split_file(root / name / "val_files.txt", items[:4])
    return {"root": root, "items": items, **{name: root / name for name in splits}}


def _hint_size(sizes: Sizes) -> tuple[int, int]:
    width, height = sizes.native
    return (320, 1024) if width >= 1024 else (height, width)


def train_config(
    data: dict, device: str, num_layers: int, height: int, width: int, **kw
) -> TrainConfig:
    """The paper's stereo + hints recipe on the benchmark drive."""
    values = dict(
        data_path=str(data["root"]),
        split=str(data["split"]),
        use_stereo=True,
        frame_ids=[0],
        use_depth_hints=True,
        disparity_smoothness=0.0,
        scheduler_step_size=5,
        num_layers=num_layers,
        height=height,
        width=width,
        weights_init="scratch",
        device=device,
        log_frequency=10**9,
    )
    return TrainConfig(**{**values, **kw})


def reference_style(config: TrainConfig) -> TrainConfig:
    return config.replace(loader="reference", num_workers=REFERENCE_WORKERS, precision="fp32")


def ours(config: TrainConfig, workers: int) -> TrainConfig:
    return config.replace(loader="cache", num_workers=workers, precision="bf16", channels_last=True)


# ---------------------------------------------------------------------------------- measurements


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _kernel_seconds(run_steps: Callable[[int], None], steps: int) -> float:
    """GPU time of the kernels and copies of ``steps`` steps, from the profiler."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        run_steps(steps)
    on_gpu = [e for e in prof.events() if e.device_type == DeviceType.CUDA]
    return sum(e.time_range.elapsed_us() for e in on_gpu) / 1e6


def measure_training(config: TrainConfig, steps: int, warmup: int) -> dict:
    """The training loop's steady state: loader → device batch → step, as ``fit`` runs it."""
    device = torch.device(config.device)
    seed_everything(config.seed)
    started = time.perf_counter()
    train_set, _ = build_datasets(config)  # builds the training cache when it is not there
    prepare_seconds = time.perf_counter() - started
    model = build_model(config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), config.learning_rate)
    total = (warmup + 2 * steps + 4) * config.batch_size
    order = epoch_order(len(train_set), config.seed, 0)
    order = (order * (total // len(order) + 1))[:total]
    loader = make_loader(
        train_set, order, config.batch_size, config.num_workers, pin_memory=device.type == "cuda"
    )
    batches = iter(loader)
    pending = PendingLosses([])  # as the loop: losses fetched from the device in groups
    waited = 0.0

    def run(count: int) -> None:
        nonlocal waited
        for _ in range(count):
            tick = time.perf_counter()
            batch = next(batches)
            waited += time.perf_counter() - tick
            batch = device_batch(train_set, batch, device)
            pending.add({}, train_step_tensors(model, optimizer, batch, config))
        pending.flush()

    run(warmup)
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    waited, start = 0.0, time.perf_counter()
    run(steps)
    _sync(device)
    seconds = time.perf_counter() - start
    result = {
        "images_per_second": steps * config.batch_size / seconds,
        "step_ms": 1000 * seconds / steps,
        "data_wait_share": waited / seconds,
        "prepare_seconds": prepare_seconds,
    }
    if device.type == "cuda":
        result["peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
        profiled = min(steps, 10)
        try:  # the profiler is a nice-to-have: its failure must not lose the measurement
            kernels = _kernel_seconds(run, profiled)
            result["gpu_busy_share"] = min(1.0, kernels / profiled / (seconds / steps))
        except Exception as error:
            result["gpu_busy_share"] = f"{type(error).__name__}: {error}"
    return result


def measure_loader(config: TrainConfig, batches: int) -> dict:
    """The loader alone: its worker processes (images/s, and per worker core), then turning
    those batches into the model's input on the device (images/s)."""
    device = torch.device(config.device)
    train_set, _ = build_datasets(config)
    order = epoch_order(len(train_set), config.seed, 0)
    total = (batches + 2) * config.batch_size
    order = (order * (total // len(order) + 1))[:total]
    loader = make_loader(
        train_set, order, config.batch_size, config.num_workers, pin_memory=device.type == "cuda"
    )
    iterator = iter(loader)
    device_batch(train_set, next(iterator), device)  # worker start-up
    _sync(device)
    start = time.perf_counter()
    collated = [next(iterator) for _ in range(batches)]
    workers = batches * config.batch_size / (time.perf_counter() - start)
    start = time.perf_counter()
    for batch in collated:
        device_batch(train_set, batch, device)
    _sync(device)
    on_device = batches * config.batch_size / (time.perf_counter() - start)
    return {
        "images_per_second": workers,
        "per_core": workers / max(1, config.num_workers),
        "device_side_images_per_second": on_device,
    }


def measure_end_to_end(config: TrainConfig, data: dict) -> dict:
    """``depthhints train``'s loop (``fit``) over one long epoch, from the call to its return."""
    run = config.replace(split=str(data["long_split"]), num_epochs=1)
    start = time.perf_counter()
    result = fit(run, progress=False, tracking=TrackingOptions(enabled=False))
    seconds = time.perf_counter() - start
    images = len(result.history) * run.batch_size
    return {"images": images, "seconds": seconds, "images_per_second": images / seconds}


def measure_fusion(left: np.ndarray, right: np.ndarray, device: torch.device, repeats: int) -> dict:
    """Fusions per second of one image's 12 candidates on ``device`` and on the CPU."""
    base, other = resize_for_hints(left), resize_for_hints(right)
    fx = focal_px(base.shape[1])
    depths = disparity_to_depth(candidate_disparities(base, other, "l", make_matchers()), fx)
    rates = {}
    for name in dict.fromkeys(("cpu", device.type)):
        fuse(base, other, depths, "l", fx, device=name)  # warm-up
        start = time.perf_counter()
        for _ in range(repeats):
            fuse(base, other, depths, "l", fx, device=name)
        rates[name] = repeats / (time.perf_counter() - start)
    return {"hints_per_second": rates, "cpu_threads": torch.get_num_threads()}


# ------------------------------------------------------------------------------------- the run


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for gpu.json and gpu.md")
    parser.add_argument("--smoke", action="store_true", help="every stage at a tiny size")
    parser.add_argument("--publish", action="store_true", help="also write docs/benchmarks.md")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile rows")
    parser.add_argument(
        "--budget", type=float, default=360, help="seconds after which optional stages are skipped"
    )
    parser.add_argument(
        "--work", type=Path, help="folder for the data, caches and runs (default: a temporary one)"
    )
    args = parser.parse_args(argv)
    if args.work:
        return measure_all(args, args.work)
    with tempfile.TemporaryDirectory(prefix="bench-gpu-") as work:
        return measure_all(args, Path(work))


def measure_all(args: argparse.Namespace, work: Path) -> dict:
    """Every stage, in order of importance; see the module's docstring."""
    sizes = SMOKE if args.smoke else Sizes()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cores = os.cpu_count() or 1
    workers = {
        "ours": 1 if args.smoke else max(1, min(8, cores // 2)),
        "reference": 1 if args.smoke else REFERENCE_WORKERS,
    }
    run = Run(args.out, args.budget)
    height, width = sizes.check_size
    run.results["setup"] = {"small_resolution": f"{width}×{height}", "batch": sizes.batch}
    data = run.stage("data", lambda: prepare(work / "kitti", sizes, cores))
    if "error" in data:
        return run.results
    left, right = (load_image(KITTI_PAIR / f"{side}.png") for side in ("left", "right"))
    small = train_config(
        data, device.type, 18, *sizes.check_size, batch_size=2, log_dir=str(work / "checks")
    ).replace(split=str(data["small_split"]))
    run.stage("check_train_step", lambda: gpu_checks.train_step_difference(small, device))
    run.stage(
        "check_checkpoints", lambda: gpu_checks.checkpoint_round_trip(small, device, work / "ckpt")
    )
    run.stage("check_fusion", lambda: gpu_checks.fusion_difference(left, right, device))

    pipelines = {}
    for num_layers, height, width in sizes.configs:
        base = train_config(
            data,
            device.type,
            num_layers,
            height,
            width,
            batch_size=sizes.batch,
            log_dir=str(work / "runs"),
            cache_dir=str(work / "cache"),
        )
        name = f"R{num_layers} {width}x{height}"
        pipelines[name] = {
            "reference": reference_style(base).replace(num_workers=workers["reference"]),
            "ours": ours(base, workers["ours"]),
        }
        for pipeline, config in pipelines[name].items():
            steps = sizes.reference_steps if pipeline == "reference" else sizes.ours_steps
            run.stage(
                f"train {name} {pipeline}",
                lambda c=config, s=steps: {
                    **measure_training(c, s, sizes.warmup),
                    "loader": measure_loader(c, sizes.loader_batches),
                },
            )
    run.stage("fusion_rate", lambda: measure_fusion(left, right, device, sizes.fusion_repeats))

    drift_data = run.stage(
        "drift_data",
        lambda: drift.prepare(work / "drift", *sizes.native, sizes.drift_frames, cores),
    )

    def drift_stage(variant: str) -> None:
        changes = DRIFT_VARIANTS[variant]
        loader_workers = workers["ours" if changes["loader"] == "cache" else "reference"]
        config = drift.base_config(
            drift_data,
            device.type,
            18,
            *sizes.check_size,
            sizes.batch,
            sizes.drift_steps,
            work / "drift_runs" / variant,
        ).replace(num_workers=loader_workers, cache_dir=str(work / "drift_cache"), **changes)
        optional = variant not in ESSENTIAL_DRIFT
        run.stage(
            f"drift {variant}",
            lambda: drift.train_and_score(config, drift_data["test_split"]),
            optional,
        )

    wanted = [v for v in sizes.drift_variants if not (args.no_compile and v == "compile")]
    if "error" not in drift_data:
        for variant in [v for v in wanted if v in ESSENTIAL_DRIFT]:
            drift_stage(variant)
        weights = sorted((work / "drift_runs" / "fp32").rglob("weights_*"))
        if weights:
            run.stage(
                "check_inference",
                lambda: gpu_checks.inference_difference(
                    weights[-1], drift_data["data_path"], drift_data["test_split"], device
                ),
            )
    r18 = next((name for name in pipelines if name.startswith("R18 ")), None)
    if r18:
        for pipeline, config in pipelines[r18].items():
            run.stage(
                f"end_to_end R18 {pipeline}",
                lambda c=config: measure_end_to_end(c, data),
                optional=True,
            )
        if not args.no_compile:
            compiled = pipelines[r18]["ours"].replace(compile=True)
            run.stage(
                f"train {r18} ours+compile",
                lambda: measure_training(compiled, sizes.ours_steps, sizes.warmup + 2),
                optional=True,
            )
    if "error" not in drift_data:
        for variant in [v for v in wanted if v not in ESSENTIAL_DRIFT]:
            drift_stage(variant)
    markdown = report(run.results)
    (args.out / "gpu.md").write_text(markdown)
    if args.publish:
        write_section("gpu", "Training on one GPU", markdown)
    print(markdown)
    return run.results


# ------------------------------------------------------------------------------------ the report


def _number(value: object, digits: int = 1) -> str:
    return f"{value:,.{digits}f}" if isinstance(value, int | float) else "—"


def _share(value: object) -> str:
    return f"{100 * value:.0f}%" if isinstance(value, int | float) else "—"


def report(results: dict) -> str:
    """The markdown of a run's results (missing stages show as —, errors are listed)."""
    env = results["environment"]
    lines = [
        f"Machine: {env['device']}, {env['cpu_cores']} CPU cores, torch {env['torch']}, "
        f"Python {env['python']}, {env['date']}. Command: `python -m bench.gpu --out DIR`.",
        "",
        "**Training throughput**, stereo + hints, batch 12 (steady state of the training loop: "
        "loader → batch on the GPU → step). Reference-style: fp32, the per-sample PIL loader "
        f"with the published {REFERENCE_WORKERS} workers. Ours: the training cache (flip, "
        "colour jitter and hint resize on the GPU), bf16 networks, channels-last.",
        "",
    ]
    rows = []
    for key, value in results.items():
        if not key.startswith("train ") or "images_per_second" not in value:
            continue
        _, model, resolution, pipeline = key.split(" ")
        reference = results.get(f"train {model} {resolution} reference", {})
        ratio = value["images_per_second"] / reference.get("images_per_second", float("nan"))
        loader = value.get("loader", {})
        rows.append(
            [
                f"{model} {resolution}",
                pipeline,
                _number(value["images_per_second"]),
                "—" if pipeline == "reference" else f"{ratio:.1f}×",
                _number(value["step_ms"]),
                _number(value.get("peak_memory_gib"), 2),
                _share(value.get("gpu_busy_share")),
                _share(value["data_wait_share"]),
                _number(loader.get("images_per_second")),
                _number(loader.get("per_core")),
                _number(loader.get("device_side_images_per_second")),
            ]
        )
    lines.append(
        table(
            [
                "model",
                "pipeline",
                "images/s",
                "vs reference",
                "ms / step",
                "peak GPU GiB",
                "GPU busy",
                "waiting for data",
                "loader images/s",
                "loader images/s per core",
                "batch to device images/s",
            ],
            rows,
        )
    )
    end = {p: results.get(f"end_to_end R18 {p}", {}) for p in ("reference", "ours")}
    if all("images_per_second" in v for v in end.values()):
        ratio = end["ours"]["images_per_second"] / end["reference"]["images_per_second"]
        lines += [
            f"`depthhints train`'s loop (`fit`) end to end, R18, one epoch of "
            f"{end['ours']['images']} images from the call to its return (model build, cache "
            f"build for ours, loader start, checkpoint): reference-style "
            f"{end['reference']['images_per_second']:.1f} images/s, ours "
            f"{end['ours']['images_per_second']:.1f} images/s ({ratio:.1f}×).",
            "",
        ]
    lines += _goals(results) + _checks(results) + _drift(results)
    fusion = results.get("fusion_rate", {}).get("hints_per_second")
    if fusion and len(fusion) == 2:
        lines += [
            f"Hint fusion (12 parity candidates of one 1024×320 image): CPU "
            f"{fusion['cpu']:.2f} hints/s ({results['fusion_rate']['cpu_threads']} threads), "
            f"CUDA {fusion['cuda']:.1f} hints/s ({fusion['cuda'] / fusion['cpu']:.0f}×).",
            "",
        ]
    for outcome in ("error", "skipped"):
        lines += [
            f"- {'failed' if outcome == 'error' else 'skipped'} stage `{k}`: {v[outcome]}"
            for k, v in results.items()
            if isinstance(v, dict) and outcome in v
        ]
    return "\n".join(lines).strip() + "\n"


def _goals(results: dict) -> list[str]:
    """The issue's goals against what was measured (absent measurements are left out)."""

    def rate(key: str) -> float | None:
        return results.get(key, {}).get("images_per_second")

    lines = []
    ours18, reference18 = rate("train R18 640x192 ours"), rate("train R18 640x192 reference")
    if ours18 and reference18:
        met = ours18 >= 1000 and ours18 >= 4 * reference18
        lines.append(
            f"- R18 640×192: {ours18:,.0f} images/s, {ours18 / reference18:.1f}× the "
            f"reference-style pipeline (goal ≥ 1,000 and ≥ 4×): {'met' if met else 'not met'}"
        )
    ours50 = rate("train R50 1024x320 ours")
    if ours50:
        lines.append(
            f"- R50 1024×320: {ours50:,.0f} images/s (goal ≥ 250): "
            f"{'met' if ours50 >= 250 else 'not met'}"
        )
    fp32, bf16 = results.get("drift fp32", {}), results.get("drift bf16", {})
    if "abs_rel" in fp32 and "abs_rel" in bf16:
        loss = drift.relative(bf16["final_loss"], fp32["final_loss"])
        error = drift.relative(bf16["abs_rel"], fp32["abs_rel"])
        met = abs(loss) <= drift.GOAL and abs(error) <= drift.GOAL
        lines.append(
            f"- bf16 against fp32 after {fp32['steps']} steps: final loss {100 * loss:+.2f} %, "
            f"abs rel {100 * error:+.2f} % (goal within 1 %): {'met' if met else 'not met'}"
        )
    return ["**Goals**", "", *lines, ""] if lines else []


def _checks(results: dict) -> list[str]:
    rows = []
    step = results.get("check_train_step", {})
    if "loss_rel_diff" in step:
        rows.append(
            [
                "training step (TF32 off)",
                f"largest relative difference: losses {step['loss_rel_diff']:.1e}, "
                f"gradients {step['grad_rel_diff']:.1e} ({step['parameters']} tensors)",
            ]
        )
    for direction, value in results.get("check_checkpoints", {}).items():
        if isinstance(value, dict):
            ok = value["finite"] and value["weights_changed"] and value["epoch"] == 2
            rows.append(
                [
                    f"checkpoint {direction.replace('_to_', ' → ')}",
                    f"resumed, {value['resumed_steps']} steps trained, "
                    f"{'finite losses' if value['finite'] else 'NON-FINITE losses'}"
                    f"{'' if ok else ' (check failed)'}",
                ]
            )
    inference = results.get("check_inference", {})
    if "disparity_rel_diff" in inference:
        rows.append(
            [
                "evaluate and predict",
                f"disparities {inference['disparity_rel_diff']:.1e} relative, metrics "
                f"{inference['metric_max_abs_diff']:.1e} absolute, predicted depth "
                f"{inference['predict_depth_rel_diff']:.1e} relative",
            ]
        )
    fusion = results.get("check_fusion", {})
    if "pixels" in fusion:
        rows.append(
            [
                "hint fusion, real KITTI pair",
                f"identical hints {100 * fusion['identical_hint_share']:.4f}%, identical argmin "
                f"{100 * fusion['identical_argmin_share']:.4f}% of {fusion['pixels']:,} pixels; "
                f"largest difference {fusion['largest_hint_difference']:.3g}",
            ]
        )
    if not rows:
        return []
    return ["**CUDA against CPU**", "", table(["check", "result"], rows)]


def _drift(results: dict) -> list[str]:
    scores = {
        k.split(" ", 1)[1]: v
        for k, v in results.items()
        if k.startswith("drift ") and k != "drift_data" and "abs_rel" in v
    }
    if "fp32" not in scores:
        return []
    steps = scores["fp32"]["steps"]
    setup = results["setup"]
    return [
        f"**What training learns**: R18 {setup['small_resolution']}, batch {setup['batch']}, "
        f"{steps} steps from scratch on a synthetic drive, the same seed and data order for "
        "every variant but the last; final loss = mean training loss of the last 50 steps (the "
        "last 10 % of a shorter run); abs rel and δ<1.25 on a held-out drive (dense ground "
        "truth). Every variant but `reference loader` reads the training cache.",
        "",
        table(drift.DRIFT_HEADER, drift.drift_rows(scores)),
    ]


if __name__ == "__main__":
    main()
