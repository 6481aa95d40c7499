"""Do Depth Hints help? The controlled ablation on the fixed synthetic benchmark.

The paper's comparisons (docs/method.md#ablations) as one sweep: every variant × seed is a trial
with the same recipe (ResNet18 from scratch, stereo pairs (S), the published loss) except for
where its proxy labels come from and how they are used:

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

import json
import math
import shutil
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np

from depthhints.config import TrainConfig
from depthhints.data.benchmark import BENCHMARKS, prepare_benchmark
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
from depthhints.experiments.runner import (
    Experiment,
    Outcome,
    Preset,
    Score,
    Trial,
    compute_hints,
    run_experiment,
)
from depthhints.experiments.summary import mean_std, over_seeds, welch_interval, write_table
from depthhints.hints.compute import HintConfig
from depthhints.models import load_depth_net
from depthhints.predict import resolve_device
from depthhints.train.reporting import TrackingOptions
from depthhints.tune import SweepOptions

REGIONS = {"all": "dense", "thin": "dense_thin"}
"""Pixels scored → the MLflow ``eval_protocol`` of their scores."""
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
BASELINE = "no_hints"

PRESETS = {
    # 2 drives × 98 frames × 2 sides = 392 images; 6 epochs of 98 steps: ~10 min a trial on one
    # core, 2 at a time on 2 cores (15 trials ≈ 100 min)
    "benchmark": Preset(
        rows=("no_hints", "fused_parity", "masked_fusion", "single_sgm", "hard_supervision"),
        data="synthdrive-v1",
        seeds=3,
        hint_size=(160, 512),
        overrides=dict(
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
        rows=("no_hints", "fused_parity"),
        data="synthdrive-smoke",
        hint_size=(128, 416),
        overrides=dict(height=64, width=192, batch_size=2, learning_rate=1e-3, num_epochs=1),
        shown_frames=1,
    ),
}


def summarise(trials: Sequence[Trial], variants: Sequence[str]) -> list[dict[str, Any]]:
    """Per variant and region: mean and std over seeds of the 7 metrics, and the difference
    from the baseline with a 95 % Welch t interval (over seeds)."""
    groups = [(name, region) for region in REGIONS for name in variants]
    table = over_seeds(trials, groups, "variant", "region")
    for line in table:
        region, name = line["region"], line["variant"]
        baseline = [t.scores[region].metrics for t in trials if t.row == BASELINE]
        if not baseline or name == BASELINE:
            continue
        runs = [t.scores[region].metrics for t in trials if t.row == name]
        for metric in METRICS:
            reference = [run[metric] for run in baseline]
            low, high = welch_interval([run[metric] for run in runs], reference)
            line[f"{metric}_diff"] = line[metric] - statistics.fmean(reference)
            line[f"{metric}_diff_low"], line[f"{metric}_diff_high"] = low, high
    return table


def markdown_table(table: Sequence[dict[str, Any]], region: str) -> str:
    """Mean ± std of the 7 metrics per variant for one region, and Δ abs rel / Δ δ<1.25 from
    the baseline with their 95 % intervals."""
    header = (
        "| variant | seeds | abs rel | sq rel | rmse | rmse log | δ<1.25 | δ<1.25² | δ<1.25³ "
        "| Δ abs rel [95 % CI] | Δ δ<1.25 [95 % CI] |"
    )
    lines = [header, "|" + "---|" * 11]
    for line in (row for row in table if row["region"] == region):
        cells = " | ".join(mean_std(line, m) for m in METRICS)
        diffs = " | ".join(_difference(line, m) for m in ("abs_rel", "a1"))
        lines.append(f"| {line['variant']} | {line['seeds']} | {cells} | {diffs} |")
    return "\n".join(lines) + "\n"


def per_trial_table(trials: Sequence[Trial]) -> str:
    """Markdown: every trial's test abs rel and δ<1.25, on all and on thin-structure pixels."""
    lines = [
        "| variant | seed | abs rel | δ<1.25 | thin abs rel | thin δ<1.25 |",
        "|---|---|---|---|---|---|",
    ]
    for t in trials:
        full, thin = t.scores["all"].metrics, t.scores["thin"].metrics
        lines.append(
            f"| {t.row} | {t.seed} | {full['abs_rel']:.3f} | {full['a1']:.3f} "
            f"| {thin['abs_rel']:.3f} | {thin['a1']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def curve_table(trials: Sequence[Trial], variants: Sequence[str], metric: str) -> str:
    """Markdown: the validation ``metric`` after each epoch, mean ± std over seeds."""
    steps = sorted({row["step"] for t in trials for row in t.curve})
    lines = ["| variant | " + " | ".join(f"step {s}" for s in steps) + " |"]
    lines.append("|" + "---|" * (len(steps) + 1))
    for name in variants:
        runs = [{row["step"]: row[metric] for row in t.curve} for t in trials if t.row == name]
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


def learning_curve(config: TrainConfig) -> list[dict[str, float]]:
    """The validation rows (``phase: eval``) of a run's metrics.jsonl."""
    path = config.run_dir / "metrics.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [
        {key: value for key, value in row.items() if key != "phase"}
        for row in rows
        if row.get("phase") == "eval"
    ]


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


class HintAblation(Experiment):
    """The variants on the synthetic benchmark, scored on all and on thin-structure pixels."""

    kind = "ablation"
    row_key, label_key = "variant", "region"
    # every variant: ResNet18 from scratch on stereo pairs, the published S loss
    recipe: ClassVar[Mapping[str, Any]] = {
        "num_layers": 18,
        "weights_init": "scratch",
        "use_stereo": True,
        "frame_ids": [0],
        "disparity_smoothness": 0.0,
        "use_depth_hints": True,
        "num_workers": 0,
        "eval_protocol": "dense",
    }

    def __init__(
        self,
        preset_name: str,
        out: Path,
        data_root: Path | None = None,
        variants: Sequence[str] | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> None:
        if preset_name not in PRESETS:
            raise ConfigError(f"preset {preset_name!r}: use one of {list(PRESETS)}")
        super().__init__(preset_name, PRESETS[preset_name], out, overrides or {})
        self.variants = list(variants or self.preset.rows)
        unknown = sorted(set(self.variants) - set(VARIANTS))
        if unknown:
            raise ConfigError(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
        self.benchmark = BENCHMARKS[self.preset.data]
        self.data_root = Path(data_root or self.out / self.benchmark.name).resolve()

    def prepare(self) -> dict[str, dict[str, Any]]:
        self.data = prepare_benchmark(self.data_root, self.benchmark)
        needed = [s for s in STORES if any(VARIANTS[n].store == s for n in self.variants)]
        stores = {name: self._hint_store(name) for name in needed}
        common = {
            **self.recipe,
            **self.preset.overrides,
            "data_path": str(self.data.root),
            "split": str(self.data.root / "splits"),
            "eval_split_file": str(self.data.split("curve")),
            "log_dir": str(self.out / "runs"),
        }
        rows = {}
        for name in self.variants:
            variant = VARIANTS[name]
            hints = {"depth_hint_path": str(stores[variant.store])} if variant.store else {}
            rows[name] = {**common, **hints, **variant.options}
        return rows

    def _hint_store(self, name: str) -> Path:
        """The folder of hint store ``name`` for the training and validation drives (computed
        on the Ray actor pool where missing)."""
        height, width = self.preset.hint_size
        folder = self.data.root / "hints" / f"{name}_{width}x{height}"
        items = self.data.items("train") + self.data.items("val")
        config = HintConfig(height=height, width=width, **STORES[name])
        return compute_hints(items, self.data.root, folder, config, counts=self.hint_counts)

    @cached_property
    def test_drive(self) -> tuple[list[np.ndarray], list[np.ndarray], list[int]]:
        """The test drive's dense GT, its thin-structure masks, and the frames shown in the
        error maps (those with the most thin-structure pixels)."""
        layout = KittiRawLayout(self.data.root)
        items = self.data.items("test")
        gt = gt_depth_maps(layout, items, "dense")
        thin = class_masks(layout, items, THIN_STRUCTURES)
        order = np.argsort([-int(mask.sum()) for mask in thin], kind="stable")
        return gt, thin, sorted(order[: self.preset.shown_frames].tolist())

    def score(self, config: TrainConfig, row: str, seed: int) -> Trial:
        """The last weights' test metrics on all pixels and on thin-structure pixels (the dense
        protocol: ×5.4, 1e-3..80 m, no crop), its learning curve and its predictions on the
        shown frames."""
        gt, thin, shown = self.test_drive
        loaded = load_depth_net(config.run_dir / "models" / f"weights_{config.num_epochs - 1}")
        images = EvalImageDataset(
            KittiRawLayout(self.data.root), self.data.items("test"), loaded.height, loaded.width
        )
        device = resolve_device(None)
        disparities = predict_disparities(loaded.net, images, False, device=device)
        scores = {}
        for region, protocol in REGIONS.items():
            regions = thin if region == "thin" else None
            result = evaluate_predictions(disparities, gt, "dense", stereo=True, regions=regions)
            scores[region] = Score(protocol, result.metrics, params={"region": region})
        return Trial(
            row, seed, config, scores, curve=learning_curve(config), shown=disparities[shown]
        )

    def write(self, trials: list[Trial]) -> tuple[list[dict[str, Any]], dict[str, Path]]:
        """table.{md,csv,json}, trials.json, learning_curves.png and error_maps.png."""
        from depthhints import plots

        out = self.out / self.results_folder
        table = summarise(trials, self.variants)
        steps = max((row["step"] for trial in trials for row in trial.curve), default=0)
        text = "\n".join(
            [
                self._markdown(table, len(trials), steps),
                "Every trial (test drive):",
                "",
                per_trial_table(trials),
                "Validation drive, abs rel after each epoch (mean ± std over seeds):",
                "",
                curve_table(trials, self.variants, "abs_rel"),
            ]
        )
        files = write_table(table, text, out, "variant")
        files["trials"] = out / "trials.json"
        files["trials"].write_text(
            json.dumps(
                [
                    {"variant": t.row, "seed": t.seed, "scores": _metrics(t), "curve": t.curve}
                    for t in trials
                ],
                indent=2,
            )
            + "\n"
        )
        curves = {
            name: [
                {m: [(row["step"], row[m]) for row in t.curve] for m in ("abs_rel", "a1")}
                for t in trials
                if t.row == name
            ]
            for name in self.variants
        }
        titles = {
            "abs_rel": "abs rel on the validation drive (log scale; lower is better)",
            "a1": "δ<1.25 on the validation drive (higher is better)",
        }
        files["curves"] = out / "learning_curves.png"
        files["curves"].write_bytes(plots.ablation_curves(curves, titles, log_scale=("abs_rel",)))
        files["error_maps"] = out / "error_maps.png"
        files["error_maps"].write_bytes(plots.error_maps(self._error_map_rows(trials)))
        return table, files

    def _error_map_rows(self, trials: Sequence[Trial]) -> list[dict[str, Any]]:
        """Per shown test frame: image, GT and the abs rel error map of the first seed of
        ``no_hints`` and ``fused_parity`` (or of the first two variants run)."""
        gt, _, shown = self.test_drive
        names = [v for v in (BASELINE, "fused_parity") if any(t.row == v for t in trials)]
        names = names if len(names) == 2 else list(dict.fromkeys(t.row for t in trials))[:2]
        first = {
            name: min((t for t in trials if t.row == name), key=lambda t: t.seed) for name in names
        }
        layout = KittiRawLayout(self.data.root)
        items = self.data.items("test")
        rows = []
        for position, index in enumerate(shown):
            item = items[index]
            image = load_image(layout.image_path(item.folder, item.frame, item.side))
            errors = {
                name: relative_error(trial.shown[position], gt[index])
                for name, trial in first.items()
                if trial.shown is not None
            }
            title = f"test frame {item.frame}"
            rows.append(
                {"image": np.asarray(image), "gt": gt[index], "errors": errors, "title": title}
            )
        return rows

    def _markdown(self, table: Sequence[dict[str, Any]], trials: int, steps: int) -> str:
        """The generated part of docs/results.md: the set-up, the variants and both tables."""
        bench, data, budget = self.benchmark, self.data, self.preset.overrides
        variants = dict.fromkeys(line["variant"] for line in table)
        changed = ", ".join(f"{key}={value}" for key, value in self.changed.items())
        height, width = self.preset.hint_size
        return "\n".join(
            [
                *([f"**Changed for this run**: {changed}.", ""] if changed else []),
                f"Benchmark **{bench.name}** (synthetic generator v{bench.generator_version}, "
                f"seed {bench.seed}: {bench.drives} drives of {bench.frames} frames at "
                f"{bench.width}×{bench.height}; drives 1–{bench.drives - 2} train, "
                f"{bench.drives - 1} validates, {bench.drives} is the held-out test drive; test "
                f"fingerprint `{data.fingerprint[:16]}`). Recipe: ResNet18 from scratch, stereo "
                f"(S), {budget['width']}×{budget['height']}, batch {budget['batch_size']}, Adam "
                f"lr {budget['learning_rate']:g}, {budget['num_epochs']} epochs ({steps} steps); "
                f"hints at {width}×{height}. {trials} trials.",
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


def _metrics(trial: Trial) -> dict[str, dict[str, float]]:
    return {label: dict(score.metrics) for label, score in trial.scores.items()}


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


def run_ablation(
    preset: str,
    out: Path,
    data_root: Path | None = None,
    variants: Sequence[str] | None = None,
    seeds: int | None = None,
    options: SweepOptions | None = None,
    tracking: TrackingOptions | None = None,
    resume: bool = False,
    publish: Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> Outcome:
    """Prepare the benchmark and hints, run the sweep, evaluate, write (and log) the results.

    ``data_root``: where the benchmark lives (default ``<out>/<benchmark name>``); ``publish``:
    a Markdown file whose generated section (and figures beside it) to rewrite; ``overrides``:
    training options that replace the preset's for every variant (a sensitivity run, e.g.
    another learning rate).
    """
    ablation = HintAblation(preset, out, data_root, variants, overrides)
    outcome = run_experiment(ablation, seeds, options, tracking, resume)
    if publish:
        publish_results(outcome.files, publish)
    return outcome
