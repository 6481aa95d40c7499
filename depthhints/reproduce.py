"""Reproduce the paper's KITTI table: train its rows as Ray Tune trials, evaluate, compare.

For each chosen row (``experiments/configs/<row>_hints.yaml``, and with ``baselines`` its
``_nohints`` twin) and each seed, one trial of a sweep (so rows run in parallel on a cluster;
trials are MLflow child runs). Each finished trial's last weights are then evaluated as the
paper is: Eigen test split with the LiDAR GT (``eigen``), and with the annotated GT
(``eigen_benchmark``) where it is present, each with and without post-processing (SPEC §6.2:
the published numbers are post-processed). Rows are averaged over seeds (mean ± std) and written
beside the paper's numbers with the differences, as Markdown, CSV and JSON, and logged to the
sweep's MLflow run.

Presets: ``kitti`` trains the published recipes on ``data_path``; ``demo`` and ``smoke`` make a
synthetic drive and its hints first and shrink the recipe (resolution, encoder, epochs), so
their numbers show the pipeline works, not the paper's accuracy.
"""

from __future__ import annotations

import csv
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
import torch

from depthhints.config import TrainConfig
from depthhints.data.kitti import KittiRawLayout, SplitItem, read_split_file, split_file
from depthhints.errors import ConfigError
from depthhints.evaluate import (
    EvalImageDataset,
    evaluate_predictions,
    gt_depth_maps,
    predict_disparities,
)
from depthhints.models import load_depth_net
from depthhints.results import log_evaluation
from depthhints.samples import sample_frames, save_samples
from depthhints.tracking import Tracker
from depthhints.train.reporting import TrackingOptions, recorded_run_id
from depthhints.train.trainer import init_ray
from depthhints.tune import SweepOptions, reopen_sweep_run, sweep, sweep_run_file

CONFIGS = Path(__file__).resolve().parent.parent / "experiments" / "configs"
# SPEC §6.1 (KITTI Eigen test, LiDAR GT, ×5.4, post-processed)
PAPER = {
    "S_R50_640x192": {"abs_rel": 0.102, "sq_rel": 0.762, "a1": 0.880},
    "S_R50_640x192_nopt": {"abs_rel": 0.118, "sq_rel": 0.941, "a1": 0.850},
    "S_R50_1024x320": {"abs_rel": 0.096, "sq_rel": 0.710, "a1": 0.890},
    "S_R50_1024x320_nopt": {"abs_rel": 0.112, "sq_rel": 0.857, "a1": 0.861},
    "MS_R18_1024x320": {"abs_rel": 0.098, "sq_rel": 0.702, "a1": 0.887},
}
COLUMNS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")


@dataclass
class Preset:
    """What a preset changes in the published recipes, and the synthetic drive it needs."""

    rows: list[str]
    overrides: dict[str, Any] = field(default_factory=dict)
    synthetic: dict[str, int] | None = None  # frames, width, height of a generated drive
    baselines: bool = False  # also train each row without hints


PRESETS = {
    "kitti": Preset(rows=list(PAPER)),
    "demo": Preset(
        rows=["S_R50_640x192"],
        overrides=dict(
            num_layers=18,
            weights_init="scratch",
            learning_rate=1e-3,
            batch_size=2,
            num_epochs=3,
            num_workers=0,
        ),
        synthetic=dict(frames=20, width=1242, height=375),
        baselines=True,
    ),
    "smoke": Preset(
        rows=["S_R50_640x192", "MS_R18_1024x320"],
        overrides=dict(
            num_layers=18,
            height=64,
            width=192,
            weights_init="scratch",
            learning_rate=1e-3,
            batch_size=2,
            num_epochs=1,
            num_workers=0,
        ),
        synthetic=dict(frames=8, width=416, height=128),
    ),
}


def row_configs(
    rows: list[str], baselines: bool, overrides: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """{row name: its options}: the published recipe file with ``overrides`` on top."""
    unknown = sorted(set(rows) - set(PAPER))
    if unknown:
        raise ConfigError(f"unknown rows {unknown}; the paper's rows are {list(PAPER)}")
    names = [f"{row}_hints" for row in rows] + (
        [f"{row}_nohints" for row in rows] if baselines else []
    )
    bundles = {}
    for name in names:
        values = TrainConfig.from_yaml(CONFIGS / f"{name}.yaml").to_dict()
        bundles[name] = {**values, **overrides}
    return bundles


def prepare_synthetic(out: Path, frames: int, width: int, height: int) -> Path:
    """A synthetic drive with its fused SGM hints under ``out`` (kept if already there)."""
    from depthhints.data import synthetic as syn
    from hints_worker.actors import precompute_hints

    root = out / "kitti_synthetic"
    if not (root / "splits" / "test_files.txt").is_file():
        syn.generate_dataset(
            root, syn.DatasetConfig(frames_per_drive=frames, width=width, height=height)
        )
    items = [item for part in ("train", "val", "test") for item in _split(root, part)]
    summary = precompute_hints(items, root, root / "depth_hints", progress=False)
    if not summary.ok:
        raise ConfigError(f"hint precomputation failed for {len(summary.failures)} images")
    return root


def ensure_hints(data_path: Path, split: str) -> None:
    """Compute the hints a KITTI split lacks (hints_worker skips what is already stored)."""
    from hints_worker.actors import precompute_hints

    items = [item for part in ("train", "val") for item in read_split_file(split_file(split, part))]
    summary = precompute_hints(items, data_path, data_path / "depth_hints", progress=True)
    if not summary.ok:
        raise ConfigError(
            f"{len(summary.failures)} hints failed; see {summary.store / 'failures.json'}"
        )


def _split(root: Path, part: str) -> list[SplitItem]:
    return read_split_file(root / "splits" / f"{part}_files.txt")


def evaluate_weights(
    weights: Path, layout: KittiRawLayout, items: list[SplitItem], gt: dict[str, list]
) -> dict[str, dict[str, float]]:
    """{"<protocol>[_pp]": metrics} of a stereo-trained model (×5.4, as the paper)."""
    loaded = load_depth_net(weights)
    images = EvalImageDataset(layout, items, loaded.height, loaded.width)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    scores = {}
    for post_process in (False, True):
        disparities = predict_disparities(loaded.net, images, post_process, device=device)
        for protocol, maps in gt.items():
            result = evaluate_predictions(disparities, maps, protocol, stereo=True)
            scores[f"{protocol}{'_pp' if post_process else ''}"] = result.metrics
    return scores


def summarise(trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (row, evaluation): mean and std over seeds, the paper's value, difference."""
    table = []
    keys = sorted({(t["row"], e) for t in trials for e in t["scores"]})
    for row, evaluation in keys:
        runs = [t["scores"][evaluation] for t in trials if t["row"] == row]
        line: dict[str, Any] = {"row": row, "evaluation": evaluation, "seeds": len(runs)}
        paper = PAPER.get(row.removesuffix("_hints"), {})
        for name in COLUMNS:
            values = [run[name] for run in runs]
            line[name] = statistics.fmean(values)
            line[f"{name}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
            if name in paper and evaluation == "eigen_pp" and row.endswith("_hints"):
                line[f"{name}_paper"] = paper[name]
                line[f"{name}_diff"] = line[name] - paper[name]
        table.append(line)
    return table


def markdown(table: list[dict[str, Any]], note: str = "") -> str:
    """The table as Markdown: ours (mean ± std over seeds), the paper's, and the difference."""
    header = (
        "| row | evaluation | seeds | abs rel | sq rel | rmse | δ<1.25 "
        "| paper abs rel / sq rel / δ | Δ abs rel |"
    )
    lines = [header, "|" + "---|" * 9]
    for line in table:
        paper = (
            f"{line['abs_rel_paper']:.3f} / {line['sq_rel_paper']:.3f} / {line['a1_paper']:.3f}"
            if "abs_rel_paper" in line
            else ""
        )
        diff = f"{line['abs_rel_diff']:+.3f}" if "abs_rel_diff" in line else ""
        cells = " | ".join(_mean_std(line, name) for name in ("abs_rel", "sq_rel", "rmse", "a1"))
        lines.append(
            f"| {line['row']} | {line['evaluation']} | {line['seeds']} | {cells} | {paper} | "
            f"{diff} |"
        )
    return (note + "\n\n" if note else "") + "\n".join(lines) + "\n"


def _mean_std(line: dict[str, Any], name: str) -> str:
    return f"{line[name]:.3f} ± {line[f'{name}_std']:.3f}"


def write_table(table: list[dict[str, Any]], out: Path, note: str = "") -> dict[str, Path]:
    """``table.md``, ``table.csv`` and ``table.json`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {ext: out / f"table.{ext}" for ext in ("md", "csv", "json")}
    paths["md"].write_text(markdown(table, note))
    paths["json"].write_text(json.dumps(table, indent=2) + "\n")
    fields = sorted({key for line in table for key in line}, key=lambda k: (k != "row", k))
    with paths["csv"].open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(table)
    return paths


def reproduce(
    preset: str,
    out: Path,
    data_path: Path | None = None,
    rows: list[str] | None = None,
    seeds: int = 1,
    baselines: bool | None = None,
    options: SweepOptions | None = None,
    tracking: TrackingOptions | None = None,
    resume: bool = False,
    overrides: dict[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Path], list[str]]:
    """Train, evaluate and tabulate; returns the table, the files written and the failed trials
    (the table holds the others; each failure's error is in its Tune trial folder).

    ``baselines`` None: the preset's choice; ``overrides``: options on top of the preset's.
    A synthetic preset makes its drive and hints under ``out`` unless ``data_path`` is given
    (a synthetic tree whose hints are computed).
    """
    if preset not in PRESETS:
        raise ConfigError(f"preset {preset!r}: use one of {list(PRESETS)}")
    chosen = PRESETS[preset]
    out = out.resolve()
    options = options or SweepOptions()
    if not ray.is_initialized():  # before the hint actors: Train needs init_ray's settings
        init_ray(options.ray.address)
    if chosen.synthetic:
        data_path = Path(data_path or prepare_synthetic(out, **chosen.synthetic)).resolve()
        splits = data_path / "splits"
        paths = {
            "split": str(splits),
            "eval_split_file": str(splits / "test_files.txt"),
            "eval_protocol": "eigen_benchmark",  # the drive's dense GT
        }
        test_items = _split(data_path, "test")
    else:
        if data_path is None:
            raise ConfigError("the kitti preset needs --data-path (the KITTI raw root)")
        paths = {}
        test_items = read_split_file(split_file("eigen", "test"))
    data_path = Path(data_path).resolve()
    if baselines is None:
        baselines = chosen.baselines
    bundles = row_configs(rows or chosen.rows, baselines, {**chosen.overrides, **(overrides or {})})
    for bundle in bundles.values():
        bundle.update(data_path=str(data_path), log_dir=str(out / "runs"), **paths)
    if not chosen.synthetic:
        for split in {bundle["split"] for bundle in bundles.values()}:
            ensure_hints(data_path, split)
    base = TrainConfig(**next(iter(bundles.values()))).replace(model_name="table")
    options.name, options.rows = f"table_{preset}", bundles
    space = {"row": list(bundles), "seed": list(range(seeds))}
    grid = sweep(base, space, options, tracking, resume=resume)

    layout = KittiRawLayout(data_path)
    gt = {"eigen": gt_depth_maps(layout, test_items, "eigen")}
    try:
        gt["eigen_benchmark"] = gt_depth_maps(layout, test_items, "eigen_benchmark")
    except (OSError, ConfigError) as error:  # no annotated depth maps: LiDAR GT only
        print(f"eigen_benchmark skipped: {str(error).splitlines()[0][:200]}")
    shown_gt = gt.get("eigen_benchmark", gt["eigen"])  # the denser GT for the sample frames
    trials, failed = [], []
    for result in grid:
        if result.error:
            failed.append(Path(result.path).name)
            continue
        choices = result.config["choices"]
        config = TrainConfig(**bundles[choices["row"]]).replace(
            model_name=f"{base.model_name}_{result.metrics['trial_id']}"
        )
        weights = config.run_dir / "models" / f"weights_{config.num_epochs - 1}"
        scores = evaluate_weights(weights, layout, test_items, gt)
        trials.append({**choices, "scores": scores})
        samples = save_samples(
            config.run_dir / "samples" / "test_frames.npz",
            sample_frames(config, weights, test_items, shown_gt),
        )
        _log_results(out, options.name, tracking, config, choices, scores, samples)
    table = summarise(trials)
    changed = ", ".join(f"{k}={v}" for k, v in {**chosen.overrides, **(overrides or {})}.items())
    note = (
        f"Synthetic data and a shrunken recipe ({changed}; rows keep the paper's names): the "
        "paper's numbers are shown for the layout, not as a target."
        if chosen.synthetic
        else (f"Changed from the published recipes: {changed}." if changed else "")
    )
    files = write_table(table, out / "table", note)
    _log_table(out, options.name, tracking, files, table)
    return table, files, failed


def _log_results(
    out: Path,
    name: str,
    tracking: TrackingOptions | None,
    config: TrainConfig,
    choices: dict[str, Any],
    scores: dict[str, dict[str, float]],
    samples: Path,
) -> None:
    """A trial's evaluation runs (one per protocol and post-processing, nested under its
    training run) and its sample frames (``samples/`` of the training run)."""
    tracking = tracking or TrackingOptions()
    training_run_id = recorded_run_id(config)
    if not tracking.enabled or training_run_id is None:
        return
    uri = tracking.tracking_uri(TrainConfig(log_dir=str(out / "runs")))
    sweep_file = sweep_run_file(out / "runs", name)
    sweep_run_id = json.loads(sweep_file.read_text())["run_id"] if sweep_file.is_file() else ""
    for key, metrics in scores.items():
        protocol, post_process = key.removesuffix("_pp"), key.endswith("_pp")
        log_evaluation(
            uri,
            tracking.experiment,
            config,
            protocol,
            post_process,
            metrics,
            training_run_id,
            extra_params={"row": choices["row"], "seed": choices.get("seed", config.seed)},
            tags={"sweep": name, "sweep_run_id": sweep_run_id},
        )
    training = Tracker.start(
        uri, tracking.experiment, run_id=training_run_id, fallback_dir=config.run_dir
    )
    training.log_artifact(samples, "samples")
    training.end("FINISHED")


def _log_table(
    out: Path,
    name: str,
    tracking: TrackingOptions | None,
    files: dict[str, Path],
    table: list[dict[str, Any]],
) -> None:
    """The table files and per-row metrics on the sweep's MLflow run."""
    tracker = reopen_sweep_run(out / "runs", name, tracking)
    if tracker is None:
        return
    for path in files.values():
        tracker.log_artifact(path, "table")
    metrics = {
        f"{line['row']}/{line['evaluation']}/{name}": line[name]
        for line in table
        for name in ("abs_rel", "sq_rel", "a1")
    }
    tracker.log_metrics(metrics, step=0)
    tracker.end("FINISHED")
