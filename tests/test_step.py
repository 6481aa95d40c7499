"""Training model and step (docs/method.md#pose-networks, docs/method.md#view-synthesis,
docs/method.md#options): forward + backward + Adam step over the ablation flags, checked for
finite losses, the logged keys, parameters that move and a gradient for every trainable
parameter (what DDP without ``find_unused_parameters`` needs)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from depthhints.config import TrainConfig
from depthhints.errors import MissingDataError
from depthhints.geometry import scaled_intrinsics, stereo_T
from depthhints.train.model import DepthHintsModel, build_model
from depthhints.train.step import (
    batch_to_device,
    eval_step,
    eval_step_outputs,
    train_step,
    train_step_outputs,
)

H, W = 64, 96


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one intra-op thread is faster, and much faster on a busy machine (no
    OpenMP spin-waiting against other processes)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_batch(config: TrainConfig, batch: int = 2, seed: int = 0) -> dict:
    """A synthetic batch in the dataset's format: random colours, real K, stereo_T, hints."""
    g = torch.Generator().manual_seed(seed)
    height, width = config.height, config.width
    out: dict = {"index": torch.arange(batch)}
    for f in config.all_frame_ids:
        image = torch.rand(batch, 3, height, width, generator=g)
        for s in range(4):
            scaled = F.interpolate(image, (height // 2**s, width // 2**s), mode="area")
            out[("color", f, s)] = scaled
            out[("color_aug", f, s)] = (scaled * 1.1).clamp(0, 1)
    for s in range(4):
        K, inv_K = scaled_intrinsics(width, height, s)
        out[("K", s)] = torch.from_numpy(K).expand(batch, 4, 4).clone()
        out[("inv_K", s)] = torch.from_numpy(inv_K).expand(batch, 4, 4).clone()
    if config.use_stereo:
        out["stereo_T"] = torch.stack(
            [torch.from_numpy(stereo_T("lr"[b % 2], b % 3 == 0)) for b in range(batch)]
        )
    if config.use_depth_hints:
        hint = torch.rand(batch, 1, height, width, generator=g) * 30 + 0.5
        hint[:, :, :, : width // 8] = 0
        out["depth_hint"] = hint
        out["depth_hint_mask"] = (hint > 0).float()
    return out


STEREO = dict(frame_ids=[0], use_stereo=True)
MONO_STEREO = dict(frame_ids=[0, -1, 1], use_stereo=True)
HINTS = dict(use_depth_hints=True, disparity_smoothness=0.0)

CONFIGS = {
    "mono": dict(),
    "stereo": STEREO,
    "stereo_hints": {**STEREO, **HINTS},
    "mono_stereo": MONO_STEREO,
    "mono_stereo_hints": {**MONO_STEREO, **HINTS},
    "posecnn_pairs": dict(pose_model_type="posecnn"),
    "posecnn_all_mono_stereo": {
        **MONO_STEREO,
        "pose_model_type": "posecnn",
        "pose_model_input": "all",
    },
    "shared_pairs_hints": {**MONO_STEREO, **HINTS, "pose_model_type": "shared"},
    "shared_all": dict(pose_model_type="shared", pose_model_input="all"),
    "separate_all": dict(pose_model_input="all"),
    "v1_multiscale": {**MONO_STEREO, "v1_multiscale": True},
    "avg_reprojection_hints": {**MONO_STEREO, **HINTS, "avg_reprojection": True},
    "no_automask": dict(disable_automasking=True),
    "no_automask_hints": {**STEREO, **HINTS, "disable_automasking": True},
    "predictive_mask": {**MONO_STEREO, "disable_automasking": True, "predictive_mask": True},
    "no_ssim_hints": {**STEREO, **HINTS, "no_ssim": True},
    "align_corners_false": {**MONO_STEREO, **HINTS, "align_corners": False},
    "two_scales_five_frames": dict(frame_ids=[0, -2, -1, 1, 2], scales=[0, 2]),
}


def _check_step(config: TrainConfig, batch_size: int = 2) -> None:
    torch.manual_seed(0)
    model = build_model(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    batch = make_batch(config, batch_size)
    scalars = train_step(model, optimizer, batch, config)

    expected = {"loss"}
    for s in config.scales:
        expected |= {f"loss/{s}", f"reproj_loss/{s}"}
        if config.use_depth_hints:
            expected.add(f"depth_hint_loss/{s}")
    assert set(scalars) == expected
    assert all(isinstance(v, float) and math.isfinite(v) for v in scalars.values()), scalars

    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    missing = [n for n, p in trainable if p.grad is None]
    assert not missing, f"no gradient (DDP would need find_unused_parameters): {missing}"
    for name, p in trainable:
        assert torch.isfinite(p.grad).all(), name
    # (some rows are exactly zero by construction, e.g. the unused second pose of
    # PoseDecoder(…, 1, 2) in pairs mode, or dead ReLUs at this tiny size — never a whole tensor)
    zero = [n for n, p in trainable if p.grad.abs().sum() == 0]
    assert not zero, zero
    # every top-level module moved
    for part, _ in model.named_children():
        changed = any(
            not torch.equal(p.detach(), before[n])
            for n, p in model.named_parameters()
            if n.startswith(part + ".") and p.requires_grad
        )
        assert changed, f"{part} did not change"


@pytest.mark.parametrize("name", list(CONFIGS))
def test_train_step_configurations(name):
    config = TrainConfig(height=H, width=W, weights_init="scratch", **CONFIGS[name])
    _check_step(config)


@pytest.mark.parametrize("batch_size", [1, 3])
def test_any_batch_size(batch_size):
    config = TrainConfig(height=H, width=W, weights_init="scratch", **MONO_STEREO, **HINTS)
    _check_step(config, batch_size)


def test_resnet50_tiny():
    config = TrainConfig(
        height=64, width=64, weights_init="scratch", num_layers=50, scales=[0], **STEREO, **HINTS
    )
    _check_step(config)


def test_module_layout_matches_checkpoint_stems():
    def parts(**kw):
        config = TrainConfig(height=H, width=W, weights_init="scratch", **kw)
        return {n for n, _ in build_model(config).named_children()}

    assert parts() == {"encoder", "depth", "pose_encoder", "pose"}
    assert parts(**STEREO) == {"encoder", "depth"}
    assert parts(pose_model_type="posecnn") == {"encoder", "depth", "pose"}
    assert parts(pose_model_type="shared") == {"encoder", "depth", "pose"}
    assert parts(**MONO_STEREO, disable_automasking=True, predictive_mask=True) == {
        "encoder",
        "depth",
        "pose_encoder",
        "pose",
        "predictive_mask",
    }
    model = build_model(TrainConfig(height=H, width=W, weights_init="scratch", **MONO_STEREO))
    assert model.pose_encoder.num_input_images == 2
    assert model.predictive_mask is None
    assert "encoder.conv1.weight" in model.encoder.state_dict()
    assert "decoder.0.conv.conv.weight" in model.depth.state_dict()
    all_model = build_model(
        TrainConfig(height=H, width=W, weights_init="scratch", pose_model_input="all")
    )
    assert all_model.pose_encoder.num_input_images == 3


def test_forward_outputs_and_pose_conventions():
    config = TrainConfig(height=H, width=W, weights_init="scratch", **MONO_STEREO, **HINTS)
    torch.manual_seed(0)
    model = build_model(config).eval()
    batch = make_batch(config)
    with torch.no_grad():
        outputs = model(batch)
    for s in config.scales:
        assert outputs[("disp", s)].shape == (2, 1, H // 2**s, W // 2**s)
        depth = outputs[("depth", 0, s)]
        assert depth.shape == (2, 1, H, W)
        assert depth.min() >= config.min_depth and depth.max() <= config.max_depth
        for f in (-1, 1, "s"):
            assert outputs[("color", f, s)].shape == (2, 3, H, W)
    assert outputs[("color_depth_hint", "s", 0)].shape == (2, 3, H, W)
    # the pose for f < 0 is the inverse of a prediction on [f, 0]
    from depthhints.models import transformation_from_parameters

    T = outputs[("cam_T_cam", 0, -1)]
    direct = transformation_from_parameters(
        outputs[("axisangle", 0, -1)][:, 0], outputs[("translation", 0, -1)][:, 0]
    )
    torch.testing.assert_close(T @ direct, torch.eye(4).expand(2, 4, 4), atol=1e-5, rtol=0)


def test_hint_warp_uses_the_hint_depth():
    """A hint plane at depth fx·0.1/4 shifts the stereo view by exactly 4 pixels."""
    config = TrainConfig(height=H, width=W, weights_init="scratch", **STEREO, **HINTS)
    model = build_model(config).eval()
    batch = make_batch(config, batch=1)
    batch["stereo_T"] = torch.from_numpy(stereo_T("l")).unsqueeze(0)
    fx = batch[("K", 0)][0, 0, 0].item()
    batch["depth_hint"] = torch.full((1, 1, H, W), fx * 0.1 / 4)
    batch["depth_hint_mask"] = torch.ones(1, 1, H, W)
    with torch.no_grad():
        warped = model(batch)[("color_depth_hint", "s", 0)]
    source = batch[("color", "s", 0)]
    torch.testing.assert_close(warped[..., 4:], source[..., :-4], atol=1e-4, rtol=0)


def test_eval_step_restores_mode_and_needs_no_grad():
    config = TrainConfig(height=H, width=W, weights_init="scratch", **STEREO, **HINTS)
    model = build_model(config)
    model.train()
    batch = make_batch(config)
    torch.manual_seed(0)
    result = eval_step_outputs(model, batch, config)
    torch.manual_seed(0)
    assert eval_step(model, batch, config) == result.scalars
    assert model.training
    assert math.isfinite(result.scalars["loss"])
    assert not result.outputs[("depth", 0, 0)].requires_grad
    assert set(result.masks) == {
        f"{k}/{s}" for k in ("automask", "depth_hint_pixels") for s in range(4)
    }
    assert all(p.grad is None for p in model.parameters())


def test_train_step_outputs_and_batch_to_device():
    config = TrainConfig(height=H, width=W, weights_init="scratch", **STEREO)
    model = build_model(config)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    batch = batch_to_device(make_batch(config), "cpu")
    assert batch["index"].tolist() == [0, 1]
    result = train_step_outputs(model, optimizer, batch, config)
    assert set(result.scalars) >= {"loss", "loss/0"}
    assert not result.outputs[("disp", 0)].requires_grad


def test_pretrained_without_weights_fails_at_construction(tmp_path):
    config = TrainConfig(height=H, width=W, **STEREO, weights_path=str(tmp_path / "missing.pth"))
    with pytest.raises(MissingDataError, match="ImageNet weights for ResNet18 not found"):
        DepthHintsModel(config)


def test_ddp_without_find_unused_parameters(tmp_path):
    """Two steps under DDP (gloo, world size 1) with find_unused_parameters=False."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    config = TrainConfig(height=H, width=W, weights_init="scratch", **MONO_STEREO, **HINTS)
    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        model = DistributedDataParallel(build_model(config), find_unused_parameters=False)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
        for seed in range(2):
            scalars = train_step(model, optimizer, make_batch(config, seed=seed), config)
            assert math.isfinite(scalars["loss"])
        assert model.module.encoder is not None
    finally:
        dist.destroy_process_group()


def test_pretrained_reads_local_weights_for_both_encoders(tmp_path):
    import torchvision.models as tvm

    torch.manual_seed(1)
    state = tvm.resnet18(weights=None).state_dict()
    path = tmp_path / "resnet18.pth"
    torch.save(state, path)
    model = build_model(TrainConfig(height=H, width=W, weights_path=str(path)))
    torch.testing.assert_close(model.encoder.encoder.conv1.weight, state["conv1.weight"])
    torch.testing.assert_close(
        model.pose_encoder.encoder.conv1.weight,
        torch.cat([state["conv1.weight"]] * 2, dim=1) / 2,
    )
