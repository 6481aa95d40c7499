"""CUDA against CPU: the same computations on both devices, and how far apart they land.

Used by the GPU benchmark (``python -m bench.gpu``) and by ``tests/test_cuda.py``. TF32 is off
while a check runs, so CUDA computes in true fp32 as the CPU does; the remaining differences
come from the order of floating-point sums in the two devices' kernels.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import default_collate

from depthhints.config import TrainConfig
from depthhints.data.kitti import KittiRawLayout, load_image, read_split_file
from depthhints.evaluate import EvalImageDataset, evaluate_predictions, gt_depth_maps
from depthhints.evaluate import predict_disparities as eval_disparities
from depthhints.geometry import disparity_to_depth, focal_px
from depthhints.hints.fusion import fuse, resize_for_hints
from depthhints.hints.sgm import candidate_disparities, make_matchers
from depthhints.models import load_depth_net
from depthhints.predict import predict_depth
from depthhints.train.checkpoint import read_state
from depthhints.train.data import build_datasets, device_batch
from depthhints.train.loop import fit
from depthhints.train.model import build_model
from depthhints.train.reporting import TrackingOptions
from depthhints.train.step import forward_losses

NO_TRACKING = TrackingOptions(enabled=False)


@contextlib.contextmanager
def true_fp32() -> Iterator[None]:
    """TF32 off for matmuls and convolutions (restored after)."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@contextlib.contextmanager
def same_noise(seed: int = 0) -> Iterator[None]:
    """``torch.randn_like`` drawn on the CPU from one seed, whatever the device.

    The automasking tie-break noise would otherwise come from two devices' RNGs.
    """
    original = torch.randn_like
    generator = torch.Generator().manual_seed(seed)

    def randn_like(tensor: torch.Tensor, **kwargs) -> torch.Tensor:
        noise = torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype)
        return noise.to(tensor.device)

    torch.randn_like = randn_like
    try:
        yield
    finally:
        torch.randn_like = original


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    scale = b.abs().max().clamp_min(1e-12)
    return float((a.double() - b.double()).abs().max() / scale)


def train_step_difference(config: TrainConfig, device: torch.device) -> dict:
    """One forward and backward on ``device`` and on the CPU, same batch and weights.

    Returns the largest relative difference of every loss scalar and of every gradient
    (each gradient tensor relative to its own largest magnitude).
    """
    torch.manual_seed(config.seed)
    train_set, _ = build_datasets(config)
    train_set.set_epoch(0)
    batch = default_collate([train_set[i] for i in range(config.batch_size)])
    reference = build_model(config)
    results = {}
    with true_fp32():
        for name, dev in (("cpu", torch.device("cpu")), ("device", device)):
            model = build_model(config).to(dev)
            model.load_state_dict(reference.state_dict())
            with same_noise():
                _, losses = forward_losses(model, device_batch(train_set, batch, dev), config)
            losses.total.backward()
            results[name] = (
                {k: v.detach().cpu() for k, v in losses.scalars.items()},
                {k: p.grad.cpu() for k, p in model.named_parameters() if p.grad is not None},
            )
    (cpu_losses, cpu_grads), (dev_losses, dev_grads) = results["cpu"], results["device"]
    return {
        "loss": float(cpu_losses["loss"]),
        "loss_rel_diff": max(_relative(dev_losses[k], cpu_losses[k]) for k in cpu_losses),
        "grad_rel_diff": max(_relative(dev_grads[k], cpu_grads[k]) for k in cpu_grads),
        "parameters": len(cpu_grads),
    }


def checkpoint_round_trip(config: TrainConfig, device: torch.device, work: Path) -> dict:
    """Train one epoch on one device and resume the next epoch on the other, both ways.

    Each direction reports the steps the resumed run trained, whether its losses are finite and
    whether it moved the saved weights.
    """
    cpu = torch.device("cpu")
    out = {}
    for first, second in ((device, cpu), (cpu, device)):
        name = f"{first.type}_to_{second.type}"
        run = config.replace(log_dir=str(work / name), num_epochs=1, device=first.type)
        fit(run, progress=False, tracking=NO_TRACKING)
        saved = read_state(run.run_dir / "models" / "state.pt")["model"]
        resumed = fit(
            run.replace(num_epochs=2, device=second.type),
            resume=True,
            progress=False,
            tracking=NO_TRACKING,
        )
        state = read_state(run.run_dir / "models" / "state.pt")
        out[name] = {
            "resumed_steps": len(resumed.history),
            "finite": all(np.isfinite(h["loss"]) for h in resumed.history),
            "epoch": state["train_state"]["epoch"],
            "weights_changed": any(
                not torch.equal(state["model"][k], saved[k]) for k in saved if k in state["model"]
            ),
        }
        shutil.rmtree(work / name)
    return out


def inference_difference(
    weights: Path, data_root: Path, test_split: Path, device: torch.device
) -> dict:
    """``evaluate`` (dense protocol) and ``predict`` on ``device`` against the CPU."""
    layout = KittiRawLayout(data_root)
    items = read_split_file(test_split)
    gt = gt_depth_maps(layout, items, "dense")
    loaded = {d: load_depth_net(weights, device=d) for d in ("cpu", device.type)}
    images = EvalImageDataset(layout, items, loaded["cpu"].height, loaded["cpu"].width)
    metrics, disparities = {}, {}
    with true_fp32():
        for name, net in loaded.items():
            disparities[name] = eval_disparities(net.net, images, device=name, batch_size=4)
            metrics[name] = evaluate_predictions(disparities[name], gt, "dense", True).metrics
        photos = [load_image(layout.image_path(i.folder, i.frame, i.side)) for i in items[:2]]
        depth = {name: predict_depth(net, photos, device=name) for name, net in loaded.items()}
    cpu_name, dev_name = "cpu", device.type
    return {
        "disparity_rel_diff": _relative(
            torch.from_numpy(disparities[dev_name]), torch.from_numpy(disparities[cpu_name])
        ),
        "abs_rel": {k: v["abs_rel"] for k, v in metrics.items()},
        "metric_max_abs_diff": max(
            abs(metrics[dev_name][k] - metrics[cpu_name][k]) for k in metrics[cpu_name]
        ),
        "predict_depth_rel_diff": max(
            _relative(torch.from_numpy(a), torch.from_numpy(b))
            for a, b in zip(depth[dev_name], depth[cpu_name], strict=True)
        ),
    }


def fusion_difference(left: np.ndarray, right: np.ndarray, device: torch.device) -> dict:
    """Fused parity hints of one native stereo pair on ``device`` against the CPU.

    The SGBM candidates are computed once (on the CPU, as always); only the fusion moves.
    Shares are over the pixels of both images (left and right base).
    """
    left, right = resize_for_hints(left), resize_for_hints(right)
    fx = focal_px(left.shape[1])
    matchers = make_matchers("parity")
    same_hint = same_argmin = total = 0
    largest = 0.0
    for side, (base, other) in {"l": (left, right), "r": (right, left)}.items():
        depths = disparity_to_depth(candidate_disparities(base, other, side, matchers), fx)
        with true_fp32():
            cpu_hint, cpu_best = fuse(base, other, depths, side, fx, device="cpu")
            dev_hint, dev_best = fuse(base, other, depths, side, fx, device=device)
        same_hint += int((cpu_hint == dev_hint).sum())
        same_argmin += int((cpu_best == dev_best).sum())
        total += cpu_hint.size
        largest = max(largest, float(np.abs(cpu_hint - dev_hint).max()))
    return {
        "pixels": total,
        "identical_hint_share": same_hint / total,
        "identical_argmin_share": same_argmin / total,
        "largest_hint_difference": largest,
    }
