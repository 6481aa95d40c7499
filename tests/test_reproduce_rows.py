"""The table's rows are named after what they train, and keep the paper's row they stand in for."""

from __future__ import annotations

import pytest

from depthhints.config import TrainConfig
from depthhints.errors import ConfigError
from depthhints.experiments.reproduce import PAPER, PRESETS, markdown, planned_rows, summarise
from depthhints.experiments.runner import Score, Trial


def _planned(preset: str) -> dict[str, str]:
    chosen = PRESETS[preset]
    planned = planned_rows(chosen.rows, chosen.baselines, dict(chosen.overrides))
    return {name: paper_row for name, paper_row, _ in planned}


def test_the_published_recipes_keep_the_papers_names():
    planned = planned_rows(list(PAPER), True, {"num_epochs": 1})
    assert [name for name, _, _ in planned] == [paper_row for _, paper_row, _ in planned]
    assert {name.rsplit("_", 1)[0] for name, _, _ in planned} == set(PAPER)


def test_the_shrunken_presets_name_what_they_train():
    assert _planned("demo") == {
        "S_R18_640x192_nopt_hints": "S_R50_640x192_hints",
        "S_R18_640x192_nopt_nohints": "S_R50_640x192_nohints",
    }
    assert _planned("smoke") == {
        "S_R18_192x64_nopt_hints": "S_R50_640x192_hints",
        "MS_R18_192x64_nopt_hints": "MS_R18_1024x320_hints",
    }


def test_two_rows_that_train_the_same_recipe_are_refused():
    with pytest.raises(ConfigError, match="both train S_R18_192x64_nopt_hints"):
        planned_rows(
            ["S_R50_640x192", "S_R50_640x192_nopt"], False, dict(PRESETS["smoke"].overrides)
        )


def test_a_renamed_row_is_compared_with_the_paper_row_it_stands_in_for():
    metrics = {"abs_rel": 0.4, "sq_rel": 5.0, "rmse": 12.0, "rmse_log": 0.5, "a1": 0.4}
    scores = {"eigen_pp": Score("eigen", {**metrics, "a2": 0.7, "a3": 0.8}, post_process=True)}
    trial = Trial("S_R18_640x192_nopt_hints", 0, TrainConfig(), scores)
    (line,) = summarise([trial], {trial.row: "S_R50_640x192_hints"})
    assert line["paper_row"] == "S_R50_640x192_hints"
    assert line["abs_rel_diff"] == pytest.approx(0.4 - PAPER["S_R50_640x192"]["abs_rel"])
    row = markdown([line]).splitlines()[-1]
    assert row.startswith("| S_R18_640x192_nopt_hints | eigen_pp | 1 |")
    assert "| S_R50_640x192: 0.102 / 0.762 / 0.880 | +0.298 |" in row
