"""CUDA against the CPU; these run where a CUDA device is visible (``python -m bench.gpu`` runs
the same checks on a GPU node and reports the numbers)."""

from pathlib import Path

import pytest
import torch

from bench import gpu_checks
from depthhints.config import TrainConfig
from depthhints.data.kitti import load_image
from tests.helpers import tiny_config

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
KITTI_PAIR = Path(__file__).parent / "fixtures" / "kitti_object_stereo"
CUDA = torch.device("cuda")


def _config(tree, tmp_path, **changes) -> TrainConfig:
    """Stereo + hints on the session's drive (``tiny_config``), on the CUDA."""
    hints = dict(depth_hint_path=str(tree["hints"]), use_depth_hints=True, device="cuda")
    return tiny_config(tree, tmp_path, **{**hints, **changes})


@pytest.mark.parametrize("loader", ["reference", "cache"])
def test_training_step_on_cuda_matches_the_cpu(tree, tmp_path, loader):
    result = gpu_checks.train_step_difference(_config(tree, tmp_path, loader=loader), CUDA)
    assert result["loss_rel_diff"] < 1e-4
    assert result["grad_rel_diff"] < 1e-2


def test_checkpoints_resume_across_devices(tree, tmp_path):
    result = gpu_checks.checkpoint_round_trip(_config(tree, tmp_path), CUDA, tmp_path / "work")
    for direction in ("cuda_to_cpu", "cpu_to_cuda"):
        assert result[direction]["finite"] and result[direction]["weights_changed"]
        assert result[direction]["epoch"] == 2


def test_fusion_on_cuda_matches_the_cpu():
    left, right = (load_image(KITTI_PAIR / f"{side}.png") for side in ("left", "right"))
    result = gpu_checks.fusion_difference(left, right, CUDA)
    assert result["identical_argmin_share"] > 0.999
    assert result["identical_hint_share"] > 0.999


def test_bf16_training_on_cuda(tree, tmp_path):
    config = _config(tree, tmp_path, precision="bf16", channels_last=True, loader="cache")
    result = gpu_checks.train_step_difference(config, CUDA)
    assert result["loss_rel_diff"] < 0.05
