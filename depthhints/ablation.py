"""Do Depth Hints help? The controlled ablation on the fixed synthetic benchmark.

The paper's comparisons (SPEC §6.4) as one Ray Tune sweep: every variant × seed is a trial (a
Ray Train run and an MLflow child run) with the same recipe — ResNet18 from scratch, stereo
pairs (S), the published loss — except for where its proxy labels come from and how they are
used:

- ``no_hints``: the photometric loss alone (monodepth2 S);
- ``fused_parity``: Depth Hints as published, hints fused from the published SGM candidates;
- ``masked_fusion``: the same candidates fused without the invalid ones (``--fusion masked``);
- ``single_sgm``: the hints of one SGM setting (``--matchers single``);
- ``hard_supervision``: the parity hints as the only loss, on every valid pixel;
- ``sum`` (not in the default set): photometric loss plus the hint loss on every valid pixel.

Learning curves are the dense-protocol metrics on the validation drive after every epoch; each
trial's last weights are scored on the held-out test drive, on all pixels and on thin-structure
pixels only (poles and signs, from the generator's labels). The variants' means ± std over seeds,
their differences from ``no_hints`` with a 95 % Welch interval, the curves and error maps go to
``<out>/results`` and to the sweep's MLflow run; ``publish`` writes them into docs/results.md.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import shutil
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import ray
import torch
from mlflow import MlflowClient
from scipy import stats

from depthhints.config import TrainConfig
from depthhints.data.benchmark import BENCHMARKS, BenchmarkData, prepare_benchmark
from depthhints.data.kitti import KittiRawLayout, load_image
from depthhints.errors import ConfigError
from depthhints.evaluate import (
    MAX_DEPTH,
    METRICS,
    MIN_DEPTH,
    STEREO_SCALE_FACTOR,
    THIN_STRUCTURES,
    EvalImageDataset,
    class_masks,
    eval_mask,
    evaluate_predictions,
    gt_depth_maps,
    predict_disparities,
)
from depthhints.models import load_depth_net
from depthhints.results import log_evaluation
from depthhints.tracking import login_hidden
from depthhints.train.reporting import TrackingOptions, recorded_run_id
from depthhints.train.trainer import init_ray
from depthhints.tune import SweepOptions, apply_choices, reopen_sweep_run, sweep
from hints_worker.actors import HintConfig, precompute_hints

REGIONS = ("all", "thin")
DOCS_BEGIN, DOCS_END = "<!-- ablation:begin -->", "<!-- ablation:end -->"


@dataclass(frozen=True)
class Variant:
    """A way to train: the hint store it reads (None: no hints) and the options it sets."""

    description: str
    store: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


STORES = {
    "parity": {"matchers": "parity", "fusion": "parity"},
    "masked": {"matchers": "parity", "fusion": "masked"},
    "single": {"matchers": "single", "fusion": "parity"},
}
VARIANTS = {
    "no_hints": Variant("photometric loss only", None, {"use_depth_hints": False}),
    "fused_parity": Variant("Depth Hints, fused SGM (published)", "parity"),
    "masked_fusion": Variant("Depth Hints, fusion of valid candidates only", "masked"),
    "single_sgm": Variant("Depth Hints, one SGM setting (blockSize 3, 128 disparities)", "single"),
    "hard_supervision": Variant(
        "hard supervision on the fused hints", "parity", {"hint_supervision": "hard"}
    ),
    "sum": Variant(
        "photometric + hint loss on every valid pixel", "parity", {"hint_supervision": "sum"}
    ),
}
DEFAULT_VARIANTS = ("no_hints", "fused_parity", "masked_fusion", "single_sgm", "hard_supervision")
BASELINE = "no_hints"

RECIPE = {  # every variant: ResNet18 from scratch on stereo pairs, the published S loss
    "num_layers": 18,
    "weights_init": "scratch",
    "use_stereo": True,
    "frame_ids": [0],
    "disparity_smoothness": 0.0,
    "use_depth_hints": True,
    "num_workers": 0,
    "eval_protocol": "dense",
    "model_name": "ablation",
}


@dataclass(frozen=True)
class Preset:
    """The benchmark, the budget and the hint resolution of an ablation run."""

    benchmark: str
    seeds: int
    hint_size: tuple[int, int]  # (height, width) of the hint stores
    budget: dict[str, Any]
    variants: tuple[str, ...] = DEFAULT_VARIANTS
    error_map_frames: int = 3
    overrides: dict[str, Any] = field(default_factory=dict)  # set for one run (--set)


PRESETS = {
    # 2 drives × 98 frames × 2 sides = 392 images; 6 epochs of 98 steps: ~10 min a trial on one
    # core, 2 at a time on 2 cores (15 trials ≈ 100 min)
    "benchmark": Preset(
        benchmark="synthdrive-v1",
        seeds=3,
        hint_size=(160, 512),
        budget=dict(
            height=96,
            width=320,
            batch_size=4,
            learning_rate=1e-3,
            num_epochs=6,
            scheduler_step_size=5,
            log_frequency=49,
        ),
    ),
    "smoke": Preset(
        benchmark="synthdrive-smoke",
        seeds=1,
        hint_size=(128, 416),
        budget=dict(height=64, width=192, batch_size=2, learning_rate=1e-3, num_epochs=1),
        variants=("no_hints", "fused_parity"),
        error_map_frames=1,
    ),
}


def hint_stores(
    data: BenchmarkData, names: Sequence[str], size: tuple[int, int]
) -> dict[str, Path]:
    """{store name: folder} with the hints of the training and validation drives (computed on
    the Ray actor pool where missing)."""
    items = data.items("train") + data.items("val")
    height, width = size
    stores = {}
    for name in names:
        folder = data.root / "hints" / f"{name}_{width}x{height}"
        config = HintConfig(height=height, width=width, **STORES[name])
        summary = precompute_hints(items, data.root, folder, config, progress=False)
        if not summary.ok:
            raise ConfigError(
                f"{len(summary.failures)} hints of store {name} failed; see "
                f"{folder / 'failures.json'}"
            )
        stores[name] = folder
    return stores


def variant_options(
    names: Sequence[str], preset: Preset, data: BenchmarkData, stores: dict[str, Path], out: Path
) -> dict[str, dict[str, Any]]:
    """{variant: its full training options} (the sweep's ``row`` bundles)."""
    common = {
        **RECIPE,
        **preset.budget,
        "data_path": str(data.root),
        "split": str(data.root / "splits"),
        "eval_split_file": str(data.split("curve")),
        "log_dir": str(out / "runs"),
    }
    bundles = {}
    for name in names:
        variant = VARIANTS[name]
        hints = {"depth_hint_path": str(stores[variant.store])} if variant.store else {}
        bundles[name] = {**common, **hints, **variant.options}
    return bundles


@dataclass
class TrialResult:
    """One trained model's test scores and learning curve."""

    variant: str
    seed: int
    scores: dict[str, dict[str, float]]  # region → metric → value
    curve: list[dict[str, float]]  # validation metrics after each epoch (with ``step``)
    config: TrainConfig
    shown_disparities: np.ndarray | None = None  # the error-map frames' predictions


def evaluate_trial(
    config: TrainConfig,
    data: BenchmarkData,
    gt: list[np.ndarray],
    thin: list[np.ndarray],
    shown: Sequence[int],
) -> tuple[dict[str, dict[str, float]], np.ndarray]:
    """The last weights' test metrics on all pixels and on thin-structure pixels (the dense
    protocol: ×5.4, 1e-3..80 m, no crop), and its disparities on the ``shown`` frames."""
    loaded = load_depth_net(config.run_dir / "models" / f"weights_{config.num_epochs - 1}")
    images = EvalImageDataset(
        KittiRawLayout(data.root), data.items("test"), loaded.height, loaded.width
    )
    device = "cuda" if torch.cuda.is_available() else "cpu"
    disparities = predict_disparities(loaded.net, images, False, device=device)
    scores = {
        "all": evaluate_predictions(disparities, gt, "dense", stereo=True),
        "thin": evaluate_predictions(disparities, gt, "dense", stereo=True, regions=thin),
    }
    return {region: result.metrics for region, result in scores.items()}, disparities[list(shown)]


def learning_curve(config: TrainConfig) -> list[dict[str, float]]:
    """The validation rows (``phase: eval``) of a run's metrics.jsonl."""
    path = config.run_dir / "metrics.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [
        {key: value for key, value in row.items() if key != "phase"}
        for row in rows
        if row.get("phase") == "eval"
    ]


def summarise(trials: Sequence[TrialResult], variants: Sequence[str]) -> list[dict[str, Any]]:
    """Per variant and region: mean and std over seeds of the 7 metrics, and the difference
    from the baseline with a 95 % Welch t interval (over seeds)."""
    table = []
    for region in REGIONS:
        baseline = [t.scores[region] for t in trials if t.variant == BASELINE]
        for name in variants:
            runs = [t.scores[region] for t in trials if t.variant == name]
            if not runs:
                continue
            line: dict[str, Any] = {"variant": name, "region": region, "seeds": len(runs)}
            for metric in METRICS:
                values = [run[metric] for run in runs]
                line[metric] = statistics.fmean(values)
                line[f"{metric}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
                if baseline and name != BASELINE:
                    low, high = welch_interval(values, [run[metric] for run in baseline])
                    line[f"{metric}_diff"] = line[metric] - statistics.fmean(
                        run[metric] for run in baseline
                    )
                    line[f"{metric}_diff_low"], line[f"{metric}_diff_high"] = low, high
            table.append(line)
    return table


def welch_interval(
    a: Sequence[float], b: Sequence[float], level: float = 0.95
) -> tuple[float, float]:
    """Interval for mean(a) − mean(b) (Welch's t; NaN with fewer than two values in either)."""
    if len(a) < 2 or len(b) < 2:
        return math.nan, math.nan
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    diff = statistics.fmean(a) - statistics.fmean(b)
    if va + vb == 0:
        return diff, diff
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(stats.t.ppf(0.5 + level / 2, dof)) * math.sqrt(va + vb)
    return diff - half, diff + half


def markdown_table(table: Sequence[dict[str, Any]], region: str) -> str:
    """Mean ± std of the 7 metrics per variant for one region, and Δ abs rel / Δ δ<1.25 from
    the baseline with their 95 % intervals."""
    header = (
        "| variant | seeds | abs rel | sq rel | rmse | rmse log | δ<1.25 | δ<1.25² | δ<1.25³ "
        "| Δ abs rel [95 % CI] | Δ δ<1.25 [95 % CI] |"
    )
    lines = [header, "|" + "---|" * 11]
    for line in (row for row in table if row["region"] == region):
        cells = " | ".join(f"{line[m]:.3f} ± {line[f'{m}_std']:.3f}" for m in METRICS)
        diffs = " | ".join(_difference(line, m) for m in ("abs_rel", "a1"))
        lines.append(f"| {line['variant']} | {line['seeds']} | {cells} | {diffs} |")
    return "\n".join(lines) + "\n"


def per_trial_table(trials: Sequence[TrialResult]) -> str:
    """Markdown: every trial's test abs rel and δ<1.25, on all and on thin-structure pixels."""
    lines = [
        "| variant | seed | abs rel | δ<1.25 | thin abs rel | thin δ<1.25 |",
        "|---|---|---|---|---|---|",
    ]
    for t in trials:
        full, thin = t.scores["all"], t.scores["thin"]
        lines.append(
            f"| {t.variant} | {t.seed} | {full['abs_rel']:.3f} | {full['a1']:.3f} "
            f"| {thin['abs_rel']:.3f} | {thin['a1']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def curve_table(trials: Sequence[TrialResult], variants: Sequence[str], metric: str) -> str:
    """Markdown: the validation ``metric`` after each epoch, mean ± std over seeds."""
    steps = sorted({row["step"] for t in trials for row in t.curve})
    lines = ["| variant | " + " | ".join(f"step {s}" for s in steps) + " |"]
    lines.append("|" + "---|" * (len(steps) + 1))
    for name in variants:
        runs = [{row["step"]: row[metric] for row in t.curve} for t in trials if t.variant == name]
        cells = []
        for step in steps:
            values = [run[step] for run in runs if step in run]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.fmean(values):.3f} ± {spread:.3f}" if values else "")
        if runs:
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _difference(line: dict[str, Any], metric: str) -> str:
    if f"{metric}_diff" not in line:
        return ""
    low, high = line[f"{metric}_diff_low"], line[f"{metric}_diff_high"]
    interval = "" if math.isnan(low) else f" [{low:+.3f}, {high:+.3f}]"
    return f"{line[f'{metric}_diff']:+.3f}{interval}"


def write_results(
    trials: Sequence[TrialResult],
    variants: Sequence[str],
    data: BenchmarkData,
    preset: Preset,
    shown: Sequence[int],
    gt: list[np.ndarray],
    out: Path,
) -> dict[str, Path]:
    """table.{md,csv,json}, trials.json, learning_curves.png and error_maps.png in ``out``."""
    from dashboards import plots

    out.mkdir(parents=True, exist_ok=True)
    table = summarise(trials, variants)
    files = {
        "table_md": out / "table.md",
        "table_csv": out / "table.csv",
        "table_json": out / "table.json",
        "trials": out / "trials.json",
        "curves": out / "learning_curves.png",
        "error_maps": out / "error_maps.png",
    }
    steps = max((row["step"] for trial in trials for row in trial.curve), default=0)
    files["table_md"].write_text(
        "\n".join(
            [
                results_markdown(table, data, preset, len(trials), steps),
                "Every trial (test drive):",
                "",
                per_trial_table(trials),
                "Validation drive, abs rel after each epoch (mean ± std over seeds):",
                "",
                curve_table(trials, variants, "abs_rel"),
            ]
        )
    )
    files["table_json"].write_text(json.dumps(table, indent=2) + "\n")
    fields = sorted({key for line in table for key in line}, key=lambda k: (k != "variant", k))
    with files["table_csv"].open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(table)
    files["trials"].write_text(
        json.dumps(
            [
                {"variant": t.variant, "seed": t.seed, "scores": t.scores, "curve": t.curve}
                for t in trials
            ],
            indent=2,
        )
        + "\n"
    )
    curves = {
        name: [
            {
                metric: [(row["step"], row[metric]) for row in t.curve]
                for metric in ("abs_rel", "a1")
            }
            for t in trials
            if t.variant == name
        ]
        for name in variants
    }
    titles = {
        "abs_rel": "abs rel on the validation drive (log scale; lower is better)",
        "a1": "δ<1.25 on the validation drive (higher is better)",
    }
    files["curves"].write_bytes(plots.ablation_curves(curves, titles, log_scale=("abs_rel",)))
    files["error_maps"].write_bytes(plots.error_maps(error_map_rows(trials, data, shown, gt)))
    return files


def error_map_rows(
    trials: Sequence[TrialResult],
    data: BenchmarkData,
    shown: Sequence[int],
    gt: Sequence[np.ndarray],
) -> list[dict[str, Any]]:
    """Per shown test frame: image, GT and the abs rel error map of the first seed of
    ``no_hints`` and ``fused_parity`` (or of the first two variants run)."""
    names = [v for v in (BASELINE, "fused_parity") if any(t.variant == v for t in trials)]
    names = names if len(names) == 2 else list(dict.fromkeys(t.variant for t in trials))[:2]
    first = {
        name: min((t for t in trials if t.variant == name), key=lambda t: t.seed) for name in names
    }
    layout = KittiRawLayout(data.root)
    items = data.items("test")
    rows = []
    for position, index in enumerate(shown):
        item = items[index]
        image = load_image(layout.image_path(item.folder, item.frame, item.side))
        errors = {
            name: relative_error(trial.shown_disparities[position], gt[index])
            for name, trial in first.items()
            if trial.shown_disparities is not None
        }
        title = f"test frame {item.frame}"
        rows.append({"image": np.asarray(image), "gt": gt[index], "errors": errors, "title": title})
    return rows


def relative_error(disp: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """|pred − gt| / gt per GT pixel of the dense protocol (NaN elsewhere), pred in metres."""
    height, width = gt.shape
    disp = cv2.resize(disp.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    with np.errstate(divide="ignore"):
        pred = np.clip(STEREO_SCALE_FACTOR / disp, MIN_DEPTH, MAX_DEPTH)
    error = np.full(gt.shape, np.nan, np.float32)
    mask = eval_mask(gt, "dense")
    error[mask] = np.abs(pred[mask] - gt[mask]) / gt[mask]
    return error


def results_markdown(
    table: Sequence[dict[str, Any]], data: BenchmarkData, preset: Preset, trials: int, steps: int
) -> str:
    """The generated part of docs/results.md: the set-up, the variants and both tables."""
    bench = data.benchmark
    budget = preset.budget
    variants = dict.fromkeys(line["variant"] for line in table)
    changed = ", ".join(f"{key}={value}" for key, value in preset.overrides.items())
    return "\n".join(
        [
            *([f"**Changed for this run**: {changed}.", ""] if changed else []),
            f"Benchmark **{bench.name}** (synthetic generator v{bench.generator_version}, seed "
            f"{bench.seed}: {bench.drives} drives of {bench.frames} frames at "
            f"{bench.width}×{bench.height}; drives 1–{bench.drives - 2} train, "
            f"{bench.drives - 1} validates, {bench.drives} is the held-out test drive; test "
            f"fingerprint `{data.fingerprint[:16]}`). Recipe: ResNet18 from scratch, stereo (S), "
            f"{budget['width']}×{budget['height']}, batch {budget['batch_size']}, Adam lr "
            f"{budget['learning_rate']:g}, {budget['num_epochs']} epochs ({steps} steps); hints at "
            f"{preset.hint_size[1]}×{preset.hint_size[0]}. {trials} trials.",
            "",
            *(f"- `{name}`: {VARIANTS[name].description}" for name in variants),
            "",
            "Test drive, all pixels (dense protocol: ×5.4, GT and prediction capped to "
            "1e-3..80 m, no crop); mean ± std over seeds; Δ from `no_hints` with a 95 % "
            "Welch interval over seeds:",
            "",
            markdown_table(table, "all"),
            f"Thin structures only ({', '.join(THIN_STRUCTURES)} pixels of the test drive):",
            "",
            markdown_table(table, "thin"),
        ]
    )


def run_ablation(
    preset_name: str,
    out: Path,
    data_root: Path | None = None,
    variants: Sequence[str] | None = None,
    seeds: int | None = None,
    options: SweepOptions | None = None,
    tracking: TrackingOptions | None = None,
    resume: bool = False,
    publish: Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Path], list[str]]:
    """Prepare the benchmark and hints, run the sweep, evaluate, write (and log) the results.

    Returns the summary table, the files written and the failed trials (the table holds the
    others). ``data_root``: where the benchmark lives (default ``<out>/<benchmark name>``);
    ``publish``: a Markdown file whose generated section (and figures beside it) to rewrite;
    ``overrides``: training options that replace the preset's for every variant (a
    sensitivity run, e.g. another learning rate).
    """
    if preset_name not in PRESETS:
        raise ConfigError(f"preset {preset_name!r}: use one of {list(PRESETS)}")
    preset = PRESETS[preset_name]
    if overrides:
        checked = TrainConfig.from_dict({**RECIPE, **preset.budget, **overrides}, "--set")
        overrides = {name: getattr(checked, name) for name in overrides}  # typed values
        preset = dataclasses.replace(
            preset, budget={**preset.budget, **overrides}, overrides=overrides
        )
    names = list(variants or preset.variants)
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        raise ConfigError(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    out = out.resolve()
    options = options or SweepOptions()
    if not ray.is_initialized():  # before the hint actors: Train needs init_ray's settings
        init_ray(options.ray.address)
    benchmark = BENCHMARKS[preset.benchmark]
    data = prepare_benchmark(Path(data_root or out / benchmark.name).resolve(), benchmark)
    needed = [store for store in STORES if any(VARIANTS[n].store == store for n in names)]
    stores = hint_stores(data, needed, preset.hint_size)
    bundles = variant_options(names, preset, data, stores, out)
    base = TrainConfig(**bundles[names[0]])
    options.name, options.rows = f"ablation_{preset_name}", bundles
    space = {"row": names, "seed": list(range(seeds or preset.seeds))}
    grid = sweep(base, space, options, tracking, resume=resume)

    layout = KittiRawLayout(data.root)
    test_items = data.items("test")
    gt = gt_depth_maps(layout, test_items, "dense")
    thin = class_masks(layout, test_items, THIN_STRUCTURES)
    shown = sorted(
        np.argsort([-int(mask.sum()) for mask in thin], kind="stable")[
            : preset.error_map_frames
        ].tolist()
    )
    trials, failed = [], []
    for result in grid:
        if result.error:
            failed.append(Path(result.path).name)
            continue
        choices = result.config["choices"]
        config = apply_choices(base, choices, rows=bundles).replace(
            model_name=f"{base.model_name}_{result.metrics['trial_id']}"
        )
        scores, disparities = evaluate_trial(config, data, gt, thin, shown)
        trials.append(
            TrialResult(
                choices["row"], choices["seed"], scores, learning_curve(config), config, disparities
            )
        )
        _log_trial(out, options.name, tracking, trials[-1])
    trials.sort(key=lambda t: (names.index(t.variant), t.seed))
    files = write_results(trials, names, data, preset, shown, gt, out / "results")
    table = json.loads(files["table_json"].read_text())
    _log_results(out, options.name, tracking, files, table)
    if publish:
        publish_results(files, publish)
    return table, files, failed


def _log_trial(
    out: Path, sweep_name: str, tracking: TrackingOptions | None, trial: TrialResult
) -> None:
    """The trial's test scores as evaluation runs nested under its training run: protocol
    ``dense`` (all pixels) and ``dense_thin`` (thin-structure pixels); those already logged (a
    resumed ablation) are not logged again."""
    tracking = tracking or TrackingOptions()
    training_run_id = recorded_run_id(trial.config)
    if not tracking.enabled or training_run_id is None:
        return
    uri = tracking.tracking_uri(TrainConfig(log_dir=str(out / "runs")))
    logged = _logged_protocols(uri, tracking.experiment, training_run_id)
    for region, metrics in trial.scores.items():
        protocol = "dense" if region == "all" else "dense_thin"
        if protocol in logged:
            continue
        log_evaluation(
            uri,
            tracking.experiment,
            trial.config,
            protocol,
            False,
            metrics,
            training_run_id,
            extra_params={"variant": trial.variant, "seed": trial.seed, "region": region},
            tags={"sweep": sweep_name},
        )


def _logged_protocols(uri: str, experiment: str, training_run_id: str) -> set[str]:
    """``eval_protocol`` of the evaluation runs already nested under a training run."""
    client = MlflowClient(uri)
    with login_hidden(uri):
        found = client.get_experiment_by_name(experiment)
        if found is None:
            return set()
        runs = client.search_runs(
            [found.experiment_id], f"tags.mlflow.parentRunId = '{training_run_id}'"
        )
    return {run.data.params.get("eval_protocol", "") for run in runs}


def _log_results(
    out: Path,
    sweep_name: str,
    tracking: TrackingOptions | None,
    files: dict[str, Path],
    table: Sequence[dict[str, Any]],
) -> None:
    """The results folder and per-variant means on the sweep's MLflow run."""
    tracker = reopen_sweep_run(out / "runs", sweep_name, tracking)
    if tracker is None:
        return
    for path in files.values():
        tracker.log_artifact(path, "results")
    tracker.log_metrics(
        {
            f"{line['variant']}/{line['region']}/{metric}": line[metric]
            for line in table
            for metric in METRICS
        },
        step=0,
    )
    tracker.end("FINISHED")


def publish_results(files: dict[str, Path], document: Path) -> None:
    """Rewrite the generated section of ``document`` (between DOCS_BEGIN and DOCS_END) with
    the tables, and copy the figures to ``images/`` beside it."""
    images = document.parent / "images"
    images.mkdir(parents=True, exist_ok=True)
    figures = []
    for key in ("curves", "error_maps"):
        target = images / f"ablation_{files[key].name}"
        shutil.copyfile(files[key], target)
        figures.append(f"![{key.replace('_', ' ')}](images/{target.name})")
    generated = "\n".join([DOCS_BEGIN, files["table_md"].read_text(), *figures, DOCS_END])
    text = document.read_text() if document.is_file() else f"{DOCS_BEGIN}\n{DOCS_END}\n"
    if DOCS_BEGIN not in text or DOCS_END not in text:
        raise ConfigError(f"{document}: no {DOCS_BEGIN} … {DOCS_END} section to rewrite")
    head, rest = text.split(DOCS_BEGIN, 1)
    document.write_text(head + generated + rest.split(DOCS_END, 1)[1])
