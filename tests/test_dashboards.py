"""The dashboards' logic: paper reference runs, matching ours to them, differences, sections."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from mlflow import MlflowClient

from dashboards.paper import log_paper_runs
from dashboards.report import (
    TrainingRun,
    benchmark_sections,
    curve_panels,
    loss_kinds,
    select_sweep,
)
from dashboards.runs import ResultRun, experiment_id, result_runs
from dashboards.table import compare, match_paper, verdict
from depthhints.paper import PAPER_RESULTS
from depthhints.results import COMPARISON_PARAMS, recipe_params
from tests.helpers import tiny_config


def _run(run_id: str, metrics: dict[str, float], source: str = "ours", **params) -> ResultRun:
    base = {
        "backbone": "resnet50",
        "resolution": "640x192",
        "pretrained": "True",
        "modality": "S",
        "use_depth_hints": "True",
        "post_process": "True",
        "eval_protocol": "eigen",
        "dataset": "kitti",
        "row": "S_R50_640x192_hints",
    }
    return ResultRun(run_id, run_id, source, {**base, **params}, metrics)


PAPER = [
    _run("dh", {"abs_rel": 0.102, "a1": 0.880}, "paper"),
    _run("dh-nopp", {"abs_rel": 0.104}, "paper", post_process="False"),
    _run("md2", {"abs_rel": 0.109}, "paper", use_depth_hints="False", row="", backbone="resnet18"),
]


def test_a_run_matches_the_paper_row_evaluated_alike_with_the_same_recipe():
    match = match_paper(_run("a", {}), PAPER)
    assert match.paper.run_id == "dh" and match.exact
    assert match_paper(_run("b", {}, post_process="False"), PAPER).paper.run_id == "dh-nopp"
    baseline = _run("c", {}, use_depth_hints="False", backbone="resnet18", row="x_nohints")
    assert match_paper(baseline, PAPER).paper.run_id == "md2"


def test_a_shrunken_recipe_matches_its_row_by_name_and_lists_what_differs():
    demo = _run("d", {}, backbone="resnet18", pretrained="False", dataset="synthetic")
    match = match_paper(demo, PAPER)
    assert match.paper.run_id == "dh" and match.differs == ["backbone", "pretrained"]
    (row,) = compare([demo], PAPER)
    assert row.caveats == ["recipe differs: backbone, pretrained", "synthetic data"]
    stranger = _run("e", {}, backbone="resnet18", row="something_else")
    assert match_paper(stranger, PAPER) is None


def test_a_row_named_after_what_it_trains_matches_the_paper_row_it_stands_in_for():
    demo = _run(
        "d",
        {},
        backbone="resnet18",
        pretrained="False",
        row="S_R18_640x192_nopt_hints",
        paper_row="S_R50_640x192_hints",
    )
    match = match_paper(demo, PAPER)
    assert match.paper.run_id == "dh" and match.differs == ["backbone", "pretrained"]
    (row,) = compare([demo], PAPER)
    assert row.label == "S_R18_640x192_nopt_hints"


def test_runs_optimising_different_losses_never_share_a_loss_axis():
    hints = {"use_depth_hints": "True", "learning_rate": "0.001", "frame_ids": "[0]"}
    no_hints = {**hints, "use_depth_hints": "False"}
    assert loss_kinds([hints, no_hints]) == ["use_depth_hints=True", "use_depth_hints=False"]
    faster = {**hints, "learning_rate": "0.01"}
    assert loss_kinds([hints, faster]) == ["", ""]  # a swept learning rate: one loss panel

    series = {"train/loss": [(0, 1.6), (6, 1.4)], "eval/abs_rel": [(6, 0.4)]}
    training = [
        TrainingRun("a", "a", "row=x_hints", series, loss_kind="use_depth_hints=True"),
        TrainingRun("b", "b", "row=x_nohints", series, loss_kind="use_depth_hints=False"),
    ]
    runs, panels = curve_panels(training)
    assert list(panels.values()) == [
        "training loss (use_depth_hints=True)",
        "training loss (use_depth_hints=False)",
        "abs rel (validation, after each epoch)",
    ]
    with_hints, without = list(panels)[:2]
    assert with_hints in runs[0][2] and without not in runs[0][2]
    assert without in runs[1][2] and with_hints not in runs[1][2]
    assert all("eval/abs_rel" in series for _, _, series in runs)


def test_differences_are_better_or_worse_by_the_metrics_direction():
    assert verdict("abs_rel", 0.100, 0.102) == "better"
    assert verdict("abs_rel", 0.110, 0.102) == "worse"
    assert verdict("a1", 0.890, 0.880) == "better"
    assert verdict("a1", 0.870, 0.880) == "worse"
    assert verdict("abs_rel", 0.1022, 0.102) == "same"  # within the paper's rounding


def test_seeds_are_averaged_and_compared():
    runs = [_run("s0", {"abs_rel": 0.10, "a1": 0.9}), _run("s1", {"abs_rel": 0.12, "a1": 0.9})]
    runs.append(_run("other", {"abs_rel": 0.2}, resolution="1024x320", row="S_R50_1024x320_hints"))
    rows = {row.label: row for row in compare(runs, PAPER)}
    seeds = rows["S_R50_640x192_hints"]
    assert seeds.seeds == 2 and seeds.mean("abs_rel") == pytest.approx(0.11)
    assert seeds.std("abs_rel") == pytest.approx(0.0141421, rel=1e-4)
    assert seeds.difference("abs_rel") == pytest.approx(0.11 - 0.102)
    assert seeds.verdict("abs_rel") == "worse" and seeds.verdict("a1") == "better"
    assert seeds.evaluation == "eigen_pp"
    assert rows["S_R50_1024x320_hints"].match is None


def test_recipe_params_name_our_configs_as_the_paper_does(tree, tmp_path):
    config = tiny_config(tree, tmp_path, num_layers=50, frame_ids=[0, -1, 1])
    assert recipe_params(config) == {
        "backbone": "resnet50",
        "resolution": "192x64",
        "pretrained": "False",
        "modality": "MS",
        "use_depth_hints": "False",
    }


def test_paper_runs_are_logged_once_and_replaced_when_corrected(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    first = log_paper_runs(uri, "exp")
    assert log_paper_runs(uri, "exp") == first  # idempotent: the same runs, no new ones
    client = MlflowClient(uri)
    papers = result_runs(client, experiment_id(client, "exp"), "paper")
    assert len(papers) == len(PAPER_RESULTS) == len(first)
    for run in papers:
        assert set(COMPARISON_PARAMS) <= set(run.params) and run.tags["provenance"]
    readme = {p.name: p for p in papers}["paper · Depth Hints HR R50 1024x320"]
    assert readme.metrics == {
        "abs_rel": 0.096,
        "sq_rel": 0.710,
        "rmse": 4.393,
        "rmse_log": 0.185,
        "a1": 0.890,
    }
    assert readme.params["post_process"] == "True" and readme.params["eval_protocol"] == "eigen"

    corrected = (dataclasses.replace(PAPER_RESULTS[0], metrics={"abs_rel": 0.5}),)
    again = log_paper_runs(uri, "exp", corrected + PAPER_RESULTS[1:])
    assert again[PAPER_RESULTS[0].key] != first[PAPER_RESULTS[0].key]
    papers = result_runs(client, experiment_id(client, "exp"), "paper")
    assert len(papers) == len(PAPER_RESULTS)
    assert {p.run_id: p for p in papers}[again[PAPER_RESULTS[0].key]].metrics == {"abs_rel": 0.5}


def test_the_newest_sweep_is_selected_unless_one_is_named():
    def run(name: str, sweep: str, sweep_id: str) -> ResultRun:
        return dataclasses.replace(_run(name, {}), tags={"sweep": sweep, "sweep_run_id": sweep_id})

    ours = [run("new", "table_demo", "2"), run("old", "table_demo", "1"), run("x", "other", "3")]
    assert [r.run_id for r in select_sweep(ours, None)] == ["new"]
    assert [r.run_id for r in select_sweep(ours, "1")] == ["old"]
    assert [r.run_id for r in select_sweep(ours, "other")] == ["x"]
    assert len(select_sweep(ours, "all")) == 3 and select_sweep(ours, "nope") == []


def test_benchmark_sections_become_html_tables(tmp_path):
    path = tmp_path / "benchmarks.md"
    path.write_text(
        "# B\n<!-- bench:hints -->\n## Hints\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
        "<!-- /bench:hints -->\n<!-- bench:other -->x<!-- /bench:other -->\n"
    )
    sections = benchmark_sections(path)
    assert list(sections) == ["hints"]
    assert "<h3>Hints</h3>" in sections["hints"] and "<td>2</td>" in sections["hints"]
    assert benchmark_sections(tmp_path / "missing.md") == {}


def test_sample_frames_show_the_hint_mask_only_where_there_is_a_hint(tree, tmp_path):
    import torch

    from depthhints.data.kitti import KittiRawLayout
    from depthhints.evaluate import gt_depth_maps
    from depthhints.samples import load_samples, sample_frames, save_samples
    from depthhints.train.model import build_model

    config = tiny_config(tree, tmp_path, depth_hint_path=str(tree["hints"]))
    model = build_model(config)
    weights = tmp_path / "weights"
    weights.mkdir()
    torch.save({**model.encoder.state_dict(), "height": 64, "width": 192}, weights / "encoder.pth")
    torch.save(model.depth.state_dict(), weights / "depth.pth")
    items = tree["items"]
    gt = gt_depth_maps(KittiRawLayout(tree["root"]), items, "eigen_benchmark")
    saved = save_samples(tmp_path / "s.npz", sample_frames(config, weights, items, gt))
    frames = load_samples(saved)
    assert frames["image"].shape == (3, 64, 192, 3) and frames["image"].dtype == np.uint8
    for name in ("prediction", "hint", "gt"):
        assert frames[name].shape == (3, 64, 192)
    assert (frames["prediction"] > 0).all() and (frames["gt"] > 0).mean() > 0.5
    mask = frames["hint_mask"]
    assert mask.dtype == bool and 0 < mask.mean() < 1
    assert not (mask & (frames["hint"] <= 0)).any()  # an invalid hint never wins
    assert list(frames["names"]) == [items[i].line() for i in (0, 1, 3)]
