"""``python -m bench.hints_gpu``, the GPU node's hint benchmark, at its smoke size (on the CPU
when there is no GPU, the batched fusion on the CPU) and without Ray, MLflow, pandas or scipy,
as on a bare GPU machine."""

import json

import pytest

from tests.helpers import run_on_a_bare_machine


@pytest.mark.slow
def test_hint_gpu_benchmark_smoke(tmp_path):
    out = tmp_path / "out"
    done = run_on_a_bare_machine(
        ["-m", "bench.hints_gpu", "--smoke", "--out", str(out)], tmp_path, 600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((out / "hints_gpu.json").read_text())
    assert not [k for k, v in results.items() if isinstance(v, dict) and "error" in v]
    for matchers in ("parity", "fast"):
        for fusion in ("cpu", "gpu"):
            stage = results[f"{matchers} {fusion} fusion"]
            assert stage["images"] == 8 and stage["failed"] == 0 and stage["images_per_second"] > 0
        # on one device the batched fusion and the per-process one agree bit for bit
        assert results[f"{matchers} stores"]["identical_hint_share"] == 1
    assert results["kitti_pair_fusion"]["identical_argmin_share"] == 1
    markdown = (out / "hints_gpu.md").read_text()
    assert "| parity |" in markdown and "| fast |" in markdown and "failed stage" not in markdown
