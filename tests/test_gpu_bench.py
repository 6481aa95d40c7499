"""``python -m bench.gpu``, the GPU node's benchmark and checks, at its smoke size (on the CPU
when there is no GPU) and with Ray, MLflow, pandas and scipy made unimportable as on a bare GPU
machine, so that the script a GPU run depends on cannot rot."""

import json
import math

import pytest

from tests.helpers import run_on_a_bare_machine


@pytest.mark.slow
def test_gpu_benchmark_smoke(tmp_path):
    out = tmp_path / "gpu"
    done = run_on_a_bare_machine(
        ["-m", "bench.gpu", "--smoke", "--no-compile", "--out", str(out)], tmp_path, 900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((out / "gpu.json").read_text())
    failed = {k: v for k, v in results.items() if isinstance(v, dict) and "error" in v}
    assert not failed
    expected = {
        "check_train_step",
        "check_checkpoints",
        "check_fusion",
        "check_inference",
        "train R18 192x64 reference",
        "train R18 192x64 ours",
        "end_to_end R18 reference",
        "end_to_end R18 ours",
        "fusion_rate",
        "drift fp32",
        "drift bf16",
        "drift reference loader",
    }
    assert expected <= set(results)
    # on one device, CPU against CPU: the checks must find no difference at all
    assert results["check_train_step"]["grad_rel_diff"] == 0
    assert results["check_fusion"]["identical_hint_share"] == 1
    assert results["check_inference"]["metric_max_abs_diff"] == 0
    for key in ("train R18 192x64 reference", "train R18 192x64 ours"):
        rate = results[key]["images_per_second"]
        assert math.isfinite(rate) and rate > 0
        assert results[key]["loader"]["images_per_second"] > 0
    for key in ("drift fp32", "drift bf16"):
        assert math.isfinite(results[key]["abs_rel"]) and results[key]["steps"] > 0
    markdown = (out / "gpu.md").read_text()
    assert "| R18 192x64 | ours |" in markdown and "failed stage" not in markdown
    assert "| bf16 |" in markdown
