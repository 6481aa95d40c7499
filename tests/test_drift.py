"""bench.drift: the same recipe trained with each speed option, scored, and compared with fp32."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from bench.drift import (
    DRIFT_HEADER,
    DRIFT_VARIANTS,
    base_config,
    drift_rows,
    final_loss,
    prepare,
    train_and_score,
)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def drift_data(tmp_path_factory) -> dict:
    """Three 5-frame drives at 416×128: 6 training items (3 steps of 2), 5 test images."""
    return prepare(tmp_path_factory.mktemp("drift") / "synthetic", 416, 128, 5, workers=1)


def test_prepare_and_base_config(drift_data, tmp_path):
    assert (drift_data["split"] / "train_files.txt").is_file()
    assert (drift_data["split"] / "val_files.txt").is_file()
    assert drift_data["test_split"].is_file()
    manifest = (drift_data["hint_path"] / "manifest.json").read_text()
    assert '"height": 128' in manifest and '"width": 416' in manifest  # native size < 1024×320

    config = base_config(drift_data, "cpu", 18, 64, 192, 2, 7, tmp_path)
    assert config.num_epochs == 2  # 3 steps per epoch: 6 steps, the closest to 7
    assert config.scheduler_step_size > config.num_epochs  # no decay
    assert config.use_stereo and config.use_depth_hints and config.frame_ids == [0]
    assert config.disparity_smoothness == 0 and config.weights_init == "scratch"
    assert config.precision == "fp32" and not config.channels_last


@pytest.mark.slow
def test_bf16_follows_fp32_on_the_same_data(drift_data, tmp_path):
    results = {}
    for name in ("fp32", "bf16"):
        config = base_config(drift_data, "cpu", 18, 64, 192, 2, 3, tmp_path / name)
        config = config.replace(num_workers=0, **DRIFT_VARIANTS[name])
        results[name] = train_and_score(config, drift_data["test_split"])
    for result in results.values():
        assert result["steps"] == 3
        assert all(math.isfinite(v) for v in result.values()), result
        assert result["final_loss"] == result["last_loss"]  # under 10 steps: the last one
        assert 0 <= result["delta1"] <= 1 and result["abs_rel"] > 0
        assert result["images_per_second"] > 0
    fp32, bf16 = results["fp32"]["final_loss"], results["bf16"]["final_loss"]
    assert abs(bf16 - fp32) <= 0.1 * fp32, (fp32, bf16)

    rows = drift_rows(results)
    assert [row[0] for row in rows] == ["fp32", "bf16"]
    assert all(len(row) == len(DRIFT_HEADER) for row in rows)


def test_final_loss_window():
    assert final_loss([5.0] * 450 + [1.0] * 50) == 1.0  # the last 50
    assert final_loss([5.0] * 90 + [2.0] * 10) == 2.0  # under 500 steps: the last 10 %
    assert final_loss([3.0, 2.0, 1.0]) == 1.0  # at least one


def test_drift_rows_against_the_goal():
    base = {"final_loss": 1.0, "abs_rel": 0.1, "delta1": 0.9}
    results = {
        "fp32": base,
        "close": {"final_loss": 1.005, "abs_rel": 0.0995, "delta1": 0.9},  # +0.5 %, −0.5 %
        "abs_rel_off": {"final_loss": 1.0, "abs_rel": 0.102, "delta1": 0.89},  # +2 %
        "loss_off": {"final_loss": 0.98, "abs_rel": 0.1, "delta1": 0.9},  # −2 %
    }
    rows = {row[0]: row for row in drift_rows(results)}
    assert list(rows) == list(results)
    assert rows["fp32"][4:] == ["—", "—", "—"]
    assert rows["close"][4:] == ["+0.50 %", "-0.50 %", "✓"]
    assert rows["abs_rel_off"][4:] == ["+0.00 %", "+2.00 %", "✗"]
    assert rows["loss_off"][4:] == ["-2.00 %", "+0.00 %", "✗"]
    assert rows["abs_rel_off"][1:4] == ["1.00000", "0.1020", "0.8900"]
    assert drift_rows(results, goal=0.03)[2][-1] == "✓"
    assert drift_rows(results, baseline="close")[1][4:] == ["—", "—", "—"]


@pytest.mark.slow
def test_imports_without_ray_or_mlflow():
    code = (
        "import sys\n"
        "for name in ('ray', 'mlflow', 'dashboards'):\n"
        "    sys.modules[name] = None\n"
        "import bench.drift\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
