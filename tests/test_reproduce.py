"""experiments/reproduce_table.py: the table's arithmetic, and the smoke preset end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient

from depthhints.config import TrainConfig
from depthhints.errors import ConfigError
from depthhints.experiments.reproduce import PAPER, row_configs, summarise
from depthhints.experiments.runner import Score, Trial

REPO = Path(__file__).resolve().parent.parent


def _scores(abs_rel: float) -> dict[str, Score]:
    metrics = {"abs_rel": abs_rel, "sq_rel": 1.0, "rmse": 4.0, "rmse_log": 0.2, "a1": 0.8}
    return {"eigen_pp": Score("eigen", {**metrics, "a2": 0.9, "a3": 0.9}, post_process=True)}


def test_rows_are_averaged_over_seeds_and_compared_with_the_paper():
    trials = [
        Trial("S_R50_640x192_hints", seed, TrainConfig(), _scores(value))
        for seed, value in enumerate([0.10, 0.12])
    ]
    (line,) = summarise(trials)
    assert line["seeds"] == 2 and line["abs_rel"] == pytest.approx(0.11)
    assert line["abs_rel_std"] == pytest.approx(0.0141421, rel=1e-4)  # sample std
    assert line["abs_rel_paper"] == PAPER["S_R50_640x192"]["abs_rel"] == 0.102
    assert line["abs_rel_diff"] == pytest.approx(0.11 - 0.102)


def test_row_configs_apply_overrides_and_reject_unknown_rows():
    bundles = row_configs(["MS_R18_1024x320"], True, {"num_epochs": 1})
    assert list(bundles) == ["MS_R18_1024x320_hints", "MS_R18_1024x320_nohints"]
    assert bundles["MS_R18_1024x320_hints"]["num_epochs"] == 1
    assert bundles["MS_R18_1024x320_nohints"]["use_depth_hints"] is False
    with pytest.raises(ConfigError, match="unknown rows"):
        row_configs(["S_R18_640x192"], False, {})


@pytest.mark.slow
def test_smoke_preset_trains_evaluates_and_writes_the_table(smoke_table):
    out, done = smoke_table["out"], smoke_table
    assert "| row | evaluation |" in done["stdout"]
    table = json.loads((out / "table" / "table.json").read_text())
    lines = {(line["row"], line["evaluation"]): line for line in table}
    evaluations = ("eigen", "eigen_pp", "eigen_benchmark", "eigen_benchmark_pp")
    # rows named after what they train (ResNet18 from scratch at 192x64), each beside its paper row
    stands_in_for = {
        "S_R18_192x64_nopt_hints": "S_R50_640x192",
        "MS_R18_192x64_nopt_hints": "MS_R18_1024x320",
    }
    for row, paper_row in stands_in_for.items():
        for evaluation in evaluations:
            assert 0 < lines[row, evaluation]["abs_rel"] < 10
        pp = lines[row, "eigen_pp"]
        paper = PAPER[paper_row]
        assert pp["paper_row"] == f"{paper_row}_hints"
        assert pp["abs_rel_diff"] == pytest.approx(pp["abs_rel"] - paper["abs_rel"])
    assert (out / "table" / "table.csv").read_text().startswith("row,")

    client = MlflowClient(smoke_table["uri"])
    parent = client.search_runs(
        [client.get_experiment_by_name("depth-hints").experiment_id],
        "attributes.run_name = 'table_smoke'",
    )[0]
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "table")}
    assert artifacts == {"table/table.md", "table/table.csv", "table/table.json"}
    assert "S_R18_192x64_nopt_hints/eigen_pp/abs_rel" in parent.data.metrics
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert len(children) == 2 and all(c.info.status == "FINISHED" for c in children)

    # each trained row: four evaluation runs nested under its training run, and sample frames
    ours = client.search_runs(
        [parent.info.experiment_id], "tags.source = 'ours' and tags.run_kind = 'evaluation'"
    )
    assert len(ours) == 2 * len(evaluations)
    for child in children:
        row = child.data.tags["sweep.row"]
        mine = [e for e in ours if e.data.tags["mlflow.parentRunId"] == child.info.run_id]
        assert sorted(_evaluation(e) for e in mine) == sorted(evaluations)
        for run in mine:
            params = run.data.params
            assert params["row"] == row and params["dataset"] == "synthetic"
            assert params["paper_row"] == f"{stands_in_for[row]}_hints"
            assert (params["backbone"], params["resolution"]) == ("resnet18", "192x64")
            table_value = lines[row, _evaluation(run)]["abs_rel"]
            assert run.data.metrics["test/abs_rel"] == pytest.approx(table_value)
        samples = client.list_artifacts(child.info.run_id, "samples")
        assert [a.path for a in samples] == ["samples/test_frames.npz"]


def _evaluation(run) -> str:
    pp = "_pp" if run.data.params["post_process"] == "True" else ""
    return run.data.params["eval_protocol"] + pp
