"""Reproduce the paper's KITTI table: train its rows, evaluate them as the paper did, compare.

Each chosen row (``configs/<row>_hints.yaml``, and with baselines its ``_nohints`` twin) × seed
is one trial. Its last weights are evaluated on the Eigen test split with the LiDAR GT
(``eigen``), and with the annotated GT (``eigen_benchmark``) where it is present, each with and
without post-processing (the published numbers are post-processed:
docs/method.md#quirk-post-processing). Rows are averaged over seeds (mean ± std) and written
beside the paper's numbers with the differences.

Presets: ``kitti`` trains the published recipes on a KITTI raw tree; ``demo`` and ``smoke`` make
a synthetic drive and its hints first and shrink the recipe (resolution, encoder, epochs), so
their numbers show that the pipeline works, not the paper's accuracy.

A row is named after what it trains, as the paper names its rows (:func:`recipe_name`): the
published recipes keep their names, a shrunken one gets its own (``S_R50_640x192_hints`` trained
as ResNet18 from scratch is ``S_R18_640x192_nopt_hints``) and keeps the paper's row it stands in
for (``paper_row``: the table's paper column, an MLflow param of its evaluation runs).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from depthhints.config import TrainConfig
from depthhints.data.kitti import KittiRawLayout, SplitItem, read_split_file, split_file
from depthhints.errors import ConfigError
from depthhints.evaluate import (
    EvalImageDataset,
    evaluate_predictions,
    gt_depth_maps,
    predict_disparities,
)
from depthhints.experiments import CONFIGS
from depthhints.experiments.runner import (
    Experiment,
    Outcome,
    Preset,
    Score,
    Trial,
    compute_hints,
    run_experiment,
)
from depthhints.experiments.summary import mean_std, over_seeds, write_table
from depthhints.models import load_depth_net
from depthhints.paper import paper_table
from depthhints.predict import resolve_device
from depthhints.results import evaluation_key, modality
from depthhints.samples import sample_frames, save_samples
from depthhints.train.reporting import TrackingOptions
from depthhints.tune import SweepOptions

PAPER = paper_table()
"""{row: the paper's metrics} (KITTI Eigen test, LiDAR GT, ×5.4, post-processed)."""
COMPARED = "eigen_pp"
"""The evaluation the paper's table reports."""

SYNTHETIC_DRIVES = {  # frames, width, height of the drives the synthetic presets make
    "synthetic-demo": dict(frames=20, width=1242, height=375),
    "synthetic-smoke": dict(frames=8, width=416, height=128),
}
_SMALL = dict(num_layers=18, weights_init="scratch", learning_rate=1e-3, batch_size=2)
PRESETS = {
    "kitti": Preset(rows=tuple(PAPER), data="kitti"),
    "demo": Preset(
        rows=("S_R50_640x192",),
        data="synthetic-demo",
        overrides=dict(**_SMALL, num_epochs=3, num_workers=0),
        baselines=True,
    ),
    "smoke": Preset(
        rows=("S_R50_640x192", "MS_R18_1024x320"),
        data="synthetic-smoke",
        overrides=dict(**_SMALL, height=64, width=192, num_epochs=1, num_workers=0),
    ),
}


def recipe_name(options: Mapping[str, Any]) -> str:
    """A recipe named as the paper names its rows: ``<modality>_R<layers>_<width>x<height>``,
    ``_nopt`` when the encoder starts from scratch (``S_R50_640x192``, ``S_R18_640x192_nopt``)."""
    config = TrainConfig(**options)
    scratch = "" if config.weights_init == "pretrained" else "_nopt"
    return f"{modality(config)}_R{config.num_layers}_{config.width}x{config.height}{scratch}"


def planned_rows(
    rows: list[str] | tuple[str, ...], baselines: bool, overrides: dict[str, Any]
) -> list[tuple[str, str, dict[str, Any]]]:
    """(name, paper row, options) of every row to train: the published recipe file
    (``configs/<paper row>.yaml``) with ``overrides`` on top, named after what it trains
    (:func:`recipe_name` and the file's ``_hints``/``_nohints``)."""
    unknown = sorted(set(rows) - set(PAPER))
    if unknown:
        raise ConfigError(f"unknown rows {unknown}; the paper's rows are {list(PAPER)}")
    variants = ["_hints"] + (["_nohints"] if baselines else [])
    planned, stands_in_for = [], {}
    for variant in variants:
        for row in rows:
            paper_row = f"{row}{variant}"
            published = TrainConfig.from_yaml(CONFIGS / f"{paper_row}.yaml")
            options = {**published.to_dict(), **overrides}
            name = f"{recipe_name(options)}{variant}"
            if name in stands_in_for:
                raise ConfigError(
                    f"rows {stands_in_for[name]} and {paper_row} both train {name} once the "
                    "preset's and --set's options apply: choose one of them with --rows"
                )
            stands_in_for[name] = paper_row
            planned.append((name, paper_row, options))
    return planned


def row_configs(
    rows: list[str] | tuple[str, ...], baselines: bool, overrides: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """{row name: its options} (see :func:`planned_rows`)."""
    return {name: options for name, _, options in planned_rows(rows, baselines, overrides)}


def prepare_synthetic(
    out: Path, frames: int, width: int, height: int, counts: Counter[str] | None = None
) -> Path:
    """A synthetic drive with its fused SGM hints under ``out`` (kept if already there)."""
    from depthhints.data import synthetic as syn

    root = out / "kitti_synthetic"
    if not (root / "splits" / "test_files.txt").is_file():
        syn.generate_dataset(
            root, syn.DatasetConfig(frames_per_drive=frames, width=width, height=height)
        )
    items = [item for part in ("train", "val", "test") for item in _split(root, part)]
    compute_hints(items, root, root / "depth_hints", counts=counts)
    return root


def ensure_hints(data_path: Path, split: str, counts: Counter[str] | None = None) -> None:
    """Compute the hints a KITTI split lacks (what is already stored is skipped)."""
    items = [item for part in ("train", "val") for item in read_split_file(split_file(split, part))]
    compute_hints(items, data_path, data_path / "depth_hints", progress=True, counts=counts)


def _split(root: Path, part: str) -> list[SplitItem]:
    return read_split_file(root / "splits" / f"{part}_files.txt")


def summarise(
    trials: list[Trial], paper_rows: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """One line per (row, evaluation): mean and std over seeds, the paper's row it stands in
    for (``paper_rows``: {row: paper row}, default the row itself), and for the paper's
    evaluation of a hint row the paper's value and our difference from it."""
    groups = sorted({(t.row, label) for t in trials for label in t.scores})
    table = over_seeds(trials, groups, "row", "evaluation")
    for line in table:
        line["paper_row"] = paper_row = (paper_rows or {}).get(line["row"], line["row"])
        paper = PAPER.get(paper_row.removesuffix("_hints"), {})
        if line["evaluation"] != COMPARED or not paper_row.endswith("_hints"):
            continue
        for name, value in paper.items():
            line[f"{name}_paper"] = value
            line[f"{name}_diff"] = line[name] - value
    return table


def markdown(table: list[dict[str, Any]], note: str = "") -> str:
    """The table as Markdown: ours (mean ± std over seeds), the paper's row it stands in for
    with its numbers, and the difference."""
    header = (
        "| row | evaluation | seeds | abs rel | sq rel | rmse | δ<1.25 "
        "| paper row: abs rel / sq rel / δ | Δ abs rel |"
    )
    lines = [header, "|" + "---|" * 9]
    for line in table:
        paper = (
            f"{line['paper_row'].removesuffix('_hints')}: {line['abs_rel_paper']:.3f} / "
            f"{line['sq_rel_paper']:.3f} / {line['a1_paper']:.3f}"
            if "abs_rel_paper" in line
            else ""
        )
        diff = f"{line['abs_rel_diff']:+.3f}" if "abs_rel_diff" in line else ""
        cells = " | ".join(mean_std(line, name) for name in ("abs_rel", "sq_rel", "rmse", "a1"))
        lines.append(
            f"| {line['row']} | {line['evaluation']} | {line['seeds']} | {cells} | {paper} | "
            f"{diff} |"
        )
    return (note + "\n\n" if note else "") + "\n".join(lines) + "\n"


class PaperTable(Experiment):
    """The paper's rows, each scored under every protocol whose GT the data has."""

    kind = "table"
    results_folder = "table"

    def __init__(
        self,
        preset_name: str,
        out: Path,
        data_path: Path | None = None,
        rows: list[str] | None = None,
        baselines: bool | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> None:
        if preset_name not in PRESETS:
            raise ConfigError(f"preset {preset_name!r}: use one of {list(PRESETS)}")
        super().__init__(preset_name, PRESETS[preset_name], out, overrides or {})
        self.synthetic = self.preset.data in SYNTHETIC_DRIVES
        if not self.synthetic and data_path is None:
            raise ConfigError("the kitti preset needs --data-path (the KITTI raw root)")
        self.data_path = data_path
        self.rows = rows or list(self.preset.rows)
        self.baselines = self.preset.baselines if baselines is None else baselines

    def prepare(self) -> dict[str, dict[str, Any]]:
        if self.synthetic:
            drive = SYNTHETIC_DRIVES[self.preset.data]
            root = Path(
                self.data_path or prepare_synthetic(self.out, **drive, counts=self.hint_counts)
            ).resolve()
            splits = root / "splits"
            paths = {
                "split": str(splits),
                "eval_split_file": str(splits / "test_files.txt"),
                "eval_protocol": "eigen_benchmark",  # the drive's dense GT
            }
            self.test_items = _split(root, "test")
        else:
            root, paths = Path(self.data_path).resolve(), {}
            self.test_items = read_split_file(split_file("eigen", "test"))
        self.data_path = root
        planned = planned_rows(self.rows, self.baselines, dict(self.preset.overrides))
        self.paper_rows = {name: paper_row for name, paper_row, _ in planned}
        rows = {name: options for name, _, options in planned}
        for options in rows.values():
            options.update(data_path=str(root), log_dir=str(self.out / "runs"), **paths)
        if not self.synthetic:
            for split in {options["split"] for options in rows.values()}:
                ensure_hints(root, split, self.hint_counts)
        return rows

    @cached_property
    def ground_truth(self) -> dict[str, list[np.ndarray]]:
        """{protocol: GT depth maps of the test items}: LiDAR, and the annotated maps if any."""
        layout = KittiRawLayout(self.data_path)
        gt = {"eigen": gt_depth_maps(layout, self.test_items, "eigen")}
        try:
            gt["eigen_benchmark"] = gt_depth_maps(layout, self.test_items, "eigen_benchmark")
        except (OSError, ConfigError) as error:  # no annotated depth maps: LiDAR GT only
            print(f"eigen_benchmark skipped: {str(error).splitlines()[0][:200]}")
        return gt

    def score(self, config: TrainConfig, row: str, seed: int) -> Trial:
        """Every protocol with and without post-processing (×5.4, as the paper), and sample
        frames against the denser GT."""
        weights = config.run_dir / "models" / f"weights_{config.num_epochs - 1}"
        loaded = load_depth_net(weights)
        layout = KittiRawLayout(self.data_path)
        images = EvalImageDataset(layout, self.test_items, loaded.height, loaded.width)
        device = resolve_device(None)
        scores = {}
        for post_process in (False, True):
            disparities = predict_disparities(loaded.net, images, post_process, device=device)
            for protocol, maps in self.ground_truth.items():
                result = evaluate_predictions(disparities, maps, protocol, stereo=True)
                label = evaluation_key(protocol, post_process)
                scores[label] = Score(
                    protocol, result.metrics, post_process, {"paper_row": self.paper_rows[row]}
                )
        shown_gt = self.ground_truth.get("eigen_benchmark", self.ground_truth["eigen"])
        frames = sample_frames(
            config, weights, self.test_items, shown_gt, count=self.preset.shown_frames
        )
        samples = save_samples(config.run_dir / "samples" / "test_frames.npz", frames)
        return Trial(row, seed, config, scores, artifacts={"samples": samples})

    def write(self, trials: list[Trial]) -> tuple[list[dict[str, Any]], dict[str, Path]]:
        table = summarise(trials, self.paper_rows)
        changed = ", ".join(f"{k}={v}" for k, v in self.preset.overrides.items())
        if self.synthetic:
            note = (
                f"Synthetic data and a shrunken recipe ({changed}; rows are named after what "
                "they train, beside the paper's row each stands in for): the paper's numbers "
                "are shown for the layout, not as a target."
            )
        else:
            note = f"Changed from the published recipes: {changed}." if changed else ""
        files = write_table(table, markdown(table, note), self.out / self.results_folder, "row")
        return table, files


def reproduce(
    preset: str,
    out: Path,
    data_path: Path | None = None,
    rows: list[str] | None = None,
    seeds: int | None = None,
    baselines: bool | None = None,
    options: SweepOptions | None = None,
    tracking: TrackingOptions | None = None,
    resume: bool = False,
    overrides: dict[str, Any] | None = None,
) -> Outcome:
    """Train, evaluate and tabulate the paper's rows.

    ``baselines`` None: the preset's choice; ``overrides``: options on top of the preset's.
    A synthetic preset makes its drive and hints under ``out`` unless ``data_path`` is given
    (a synthetic tree whose hints are computed).
    """
    table = PaperTable(preset, out, data_path, rows, baselines, overrides)
    return run_experiment(table, seeds, options, tracking, resume)
