"""The synthetic benchmark and the hint ablation (depthhints/data/benchmark.py, ablation.py)."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
from scipy import stats

from depthhints.config import TrainConfig
from depthhints.data.benchmark import (
    BENCHMARKS,
    BenchmarkMismatchWarning,
    drive_fingerprint,
    prepare_benchmark,
)
from depthhints.data.kitti import KittiRawLayout
from depthhints.data.synthetic import generate_drive, split_items
from depthhints.errors import ConfigError
from depthhints.evaluate import METRICS
from depthhints.experiments import ablation
from depthhints.experiments.runner import Score, Trial
from depthhints.experiments.summary import welch_interval

REPO = Path(__file__).resolve().parent.parent
SMOKE = BENCHMARKS["synthdrive-smoke"]


@pytest.fixture(scope="module")
def smoke_benchmark(tmp_path_factory):
    return prepare_benchmark(tmp_path_factory.mktemp("bench") / "data", SMOKE)


def test_benchmark_regenerates_the_same_test_drive(smoke_benchmark, tmp_path):
    again = prepare_benchmark(tmp_path / "again", SMOKE)
    assert again.fingerprint == smoke_benchmark.fingerprint
    assert len(again.fingerprint) == 64
    # the held-out test drive is the last one and trains nowhere
    test = {item.folder for item in again.items("test")}
    assert test == {"2011_01_01/2011_01_01_drive_0003_sync"}
    assert not test & {item.folder for item in again.items("train") + again.items("val")}
    curve = again.items("curve")
    assert curve and all(item.side == "l" for item in curve)
    manifest = json.loads((again.root / "benchmark.json").read_text())
    assert manifest["test_fingerprint"] == again.fingerprint
    assert manifest["name"] == SMOKE.name and manifest["seed"] == SMOKE.seed


@pytest.mark.slow
def test_the_published_benchmark_renders_to_its_fingerprint(tmp_path):
    """The generator still draws synthdrive-v1's test drive pixel for pixel (a change to the
    generator must bump GENERATOR_VERSION); only the test drive is rendered (~20 s)."""
    published = BENCHMARKS["synthdrive-v1"]
    drives = published.dataset().drives()
    generate_drive(tmp_path, drives[-1], workers=2)
    items = split_items(drives)["test"]
    assert drive_fingerprint(KittiRawLayout(tmp_path), items) == published.fingerprint


def test_benchmark_refuses_a_tree_of_other_settings(smoke_benchmark):
    other = dataclasses.replace(SMOKE, seed=SMOKE.seed + 1)
    with pytest.raises(ConfigError, match=r"synthetic\.json.*not benchmark.*delete"):
        prepare_benchmark(smoke_benchmark.root, other)


def test_benchmark_of_another_generator_version_is_refused(tmp_path):
    old = dataclasses.replace(SMOKE, generator_version="0")
    with pytest.raises(ConfigError, match=r"generator version 0.*release"):
        prepare_benchmark(tmp_path, old)
    assert not any(tmp_path.iterdir())  # nothing written


def test_a_different_rendering_is_reported(smoke_benchmark):
    published = dataclasses.replace(SMOKE, fingerprint="0" * 64)
    with pytest.warns(BenchmarkMismatchWarning, match="differs from the published"):
        data = prepare_benchmark(smoke_benchmark.root, published)
    assert data.fingerprint == smoke_benchmark.fingerprint


def test_welch_interval_matches_scipy():
    a, b = [0.21, 0.25, 0.22], [0.30, 0.41, 0.35, 0.33]
    expected = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert welch_interval(a, b) == pytest.approx((expected.low, expected.high))
    assert all(np.isnan(welch_interval([0.2], b)))


def _trial(variant: str, seed: int, abs_rel: float) -> Trial:
    scores = {
        region: Score(protocol, {m: abs_rel * (2 if region == "thin" else 1) for m in METRICS})
        for region, protocol in ablation.REGIONS.items()
    }
    return Trial(variant, seed, TrainConfig(), scores)


def test_summary_gives_mean_std_and_the_difference_from_no_hints():
    trials = [_trial("no_hints", s, v) for s, v in enumerate((0.4, 0.5, 0.6))]
    trials += [_trial("fused_parity", s, v) for s, v in enumerate((0.2, 0.2, 0.3))]
    table = ablation.summarise(trials, ["no_hints", "fused_parity"])
    assert [(row["variant"], row["region"]) for row in table] == [
        ("no_hints", "all"),
        ("fused_parity", "all"),
        ("no_hints", "thin"),
        ("fused_parity", "thin"),
    ]
    hints = table[1]
    assert hints["abs_rel"] == pytest.approx(0.7 / 3)
    assert hints["abs_rel_std"] == pytest.approx(np.std([0.2, 0.2, 0.3], ddof=1))
    assert hints["abs_rel_diff"] == pytest.approx(0.7 / 3 - 0.5)
    low, high = welch_interval([0.2, 0.2, 0.3], [0.4, 0.5, 0.6])
    assert (hints["abs_rel_diff_low"], hints["abs_rel_diff_high"]) == (low, high)
    assert table[3]["abs_rel_diff"] == pytest.approx(2 * (0.7 / 3 - 0.5))
    assert "abs_rel_diff" not in table[0]
    per_trial = ablation.per_trial_table(trials)
    assert "| fused_parity | 2 | 0.300 | 0.300 | 0.600 | 0.600 |" in per_trial
    markdown = ablation.markdown_table(table, "all")
    assert "| fused_parity | 3 | 0.233 ± 0.058 |" in markdown
    assert f"{0.7 / 3 - 0.5:+.3f} [{low:+.3f}, {high:+.3f}]" in markdown


def test_curve_table_averages_each_epoch_over_seeds():
    trials = [
        Trial(
            "no_hints",
            seed,
            TrainConfig(),
            {},
            curve=[{"step": 98, "abs_rel": 0.4 + seed / 10}, {"step": 196, "abs_rel": 0.3}],
        )
        for seed in range(3)
    ]
    table = ablation.curve_table(trials, ["no_hints", "fused_parity"], "abs_rel")
    assert table.splitlines()[0] == "| variant | step 98 | step 196 |"
    assert "| no_hints | 0.500 ± 0.100 | 0.300 ± 0.000 |" in table
    assert "fused_parity" not in table  # not run: no row


def test_relative_error_is_zero_for_the_truth_and_undefined_without_gt():
    gt = np.full((8, 12), 10.0, np.float32)
    gt[0, :] = 0  # sky
    gt[1, 0] = 90.0  # beyond the protocol's 80 m
    disp = np.full((4, 6), ablation.STEREO_SCALE_FACTOR / 10.0, np.float32)
    error = ablation.relative_error(disp, gt)
    assert np.isnan(error[0]).all() and np.isnan(error[1, 0])
    assert np.nanmax(error) == pytest.approx(0.0, abs=1e-5)
    assert np.nanmean(ablation.relative_error(disp / 2, gt)) == pytest.approx(1.0, rel=1e-5)


def test_publish_rewrites_only_the_generated_section(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    files = {"table_md": results / "table.md"}
    files["table_md"].write_text("| the table |\n")
    for key, name in (("curves", "learning_curves.png"), ("error_maps", "error_maps.png")):
        files[key] = results / name
        files[key].write_bytes(b"png")
    document = tmp_path / "docs" / "results.md"
    document.parent.mkdir()
    document.write_text(f"# Results\nintro\n{ablation.DOCS_BEGIN}\nold\n{ablation.DOCS_END}\nend\n")
    ablation.publish_results(files, document)
    text = document.read_text()
    assert text.startswith("# Results\nintro\n") and text.endswith("end\n")
    assert "old" not in text and "| the table |" in text
    assert "](images/ablation_error_maps.png)" in text
    assert (document.parent / "images" / "ablation_learning_curves.png").read_bytes() == b"png"
    document.write_text("no markers\n")
    with pytest.raises(ConfigError, match="ablation:begin"):
        ablation.publish_results(files, document)


def test_unknown_variants_are_refused_before_anything_runs(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown variants \['magic'\].*choose from"):
        ablation.run_ablation("smoke", tmp_path / "out", variants=["no_hints", "magic"])
    assert not (tmp_path / "out").exists()
    with pytest.raises(ConfigError, match="preset 'large'"):
        ablation.run_ablation("large", tmp_path / "out")
    with pytest.raises(ConfigError, match=r"--set.*learning_rate"):
        ablation.run_ablation("smoke", tmp_path / "out", overrides={"learning_rate": "fast"})
    with pytest.raises(ConfigError, match=r"--set.*unknown option.*'lr'.*learning_rate"):
        ablation.run_ablation("smoke", tmp_path / "out", overrides={"lr": 0.1})
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_smoke_ablation_trains_scores_thin_structures_and_tracks(tmp_path):
    """The one command, CI-sized: 2 variants × 1 seed trained on Ray Tune, scored on the test
    drive (all and thin-structure pixels), figures written, results in MLflow."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    document = tmp_path / "results.md"
    document.write_text(f"# Results\n{ablation.DOCS_BEGIN}\n{ablation.DOCS_END}\n")
    command = [sys.executable, "experiments/ablation_synthetic.py", "--preset", "smoke"]
    command += ["--out", str(tmp_path / "out"), "--publish", str(document)]
    environment = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    done = subprocess.run(
        command, cwd=REPO, env=environment, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # resumed after the end: nothing trains again, nothing is logged twice
    again = subprocess.run(
        [*command, "--resume"], cwd=REPO, env=environment, capture_output=True, text=True
    )
    assert again.returncode == 0, again.stderr[-3000:]
    results = tmp_path / "out" / "results"
    table = json.loads((results / "table.json").read_text())
    assert {(row["variant"], row["region"]) for row in table} == {
        (variant, region) for variant in ("no_hints", "fused_parity") for region in ("all", "thin")
    }
    for row in table:
        assert all(np.isfinite(row[m]) and row[m] >= 0 for m in METRICS)
    thin = {row["variant"]: row for row in table if row["region"] == "thin"}
    full = {row["variant"]: row for row in table if row["region"] == "all"}
    assert thin["no_hints"]["abs_rel"] != full["no_hints"]["abs_rel"]  # another pixel set
    trials = json.loads((results / "trials.json").read_text())
    assert all(trial["curve"] and "abs_rel" in trial["curve"][-1] for trial in trials)
    for name in ("learning_curves.png", "error_maps.png"):
        assert (results / name).read_bytes().startswith(b"\x89PNG")
    assert "Thin structures only" in document.read_text()

    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name("depth-hints")
    runs = client.search_runs([experiment.experiment_id])
    evaluations = [r for r in runs if r.data.tags.get("run_kind") == "evaluation"]
    assert sorted(
        (r.data.params["variant"], r.data.params["eval_protocol"]) for r in evaluations
    ) == [
        ("fused_parity", "dense"),
        ("fused_parity", "dense_thin"),
        ("no_hints", "dense"),
        ("no_hints", "dense_thin"),
    ]
    sweep = next(r for r in runs if r.info.run_name == "ablation_smoke")
    trained = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == sweep.info.run_id]
    assert len(trained) == 2
    assert "fused_parity/thin/abs_rel" in sweep.data.metrics
    artifacts = {a.path for a in client.list_artifacts(sweep.info.run_id, "results")}
    assert "results/table.md" in artifacts and "results/error_maps.png" in artifacts
