"""One training step and one evaluation step in plain PyTorch: no logging, files or Ray.

``model`` may be a :class:`~depthhints.train.model.DepthHintsModel` or a DDP wrapper of one;
the steps only call it. Scalars come back as Python floats with a single device sync.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from depthhints.config import TrainConfig
from depthhints.losses import LossResult, compute_losses

Batch = Mapping[Any, Any]


@dataclass
class StepOutput:
    """What a step produced: the float scalars, the model outputs and the loss masks (detached)."""

    scalars: dict[str, float]
    outputs: dict[Any, Any]
    masks: dict[str, Tensor]


def batch_to_device(batch: Batch, device: torch.device | str) -> dict[Any, Any]:
    """A copy of ``batch`` with every tensor on ``device`` (non-blocking); other values as is."""
    return {
        key: value.to(device, non_blocking=True) if isinstance(value, Tensor) else value
        for key, value in batch.items()
    }


def scalars_to_floats(scalars: Mapping[str, Tensor]) -> dict[str, float]:
    """0-d tensors → Python floats in one transfer (one sync instead of one per scalar)."""
    if not scalars:
        return {}
    values = torch.stack([v.detach().float().reshape(()) for v in scalars.values()]).tolist()
    return dict(zip(scalars.keys(), values, strict=True))


def _detached(outputs: Mapping[Any, Any]) -> dict[Any, Any]:
    return {k: v.detach() if isinstance(v, Tensor) else v for k, v in outputs.items()}


def forward_losses(
    model: nn.Module, batch: Batch, config: TrainConfig
) -> tuple[dict[Any, Any], LossResult]:
    """Run the model on ``batch`` and compute the losses (with the autograd graph)."""
    outputs = model(batch)
    return outputs, compute_losses(batch, outputs, config)


def _optimise(
    model: nn.Module, optimizer: torch.optim.Optimizer, batch: Batch, config: TrainConfig
) -> tuple[dict[Any, Any], LossResult]:
    """Forward, losses, zero_grad, backward, optimizer step."""
    model.train()
    outputs, losses = forward_losses(model, batch, config)
    optimizer.zero_grad(set_to_none=True)
    losses.total.backward()
    optimizer.step()
    return outputs, losses


def train_step_outputs(
    model: nn.Module, optimizer: torch.optim.Optimizer, batch: Batch, config: TrainConfig
) -> StepOutput:
    """One optimisation step; returns scalars, outputs, masks.

    For steps whose outputs are logged as images; otherwise use :func:`train_step`.
    """
    outputs, losses = _optimise(model, optimizer, batch, config)
    return StepOutput(scalars_to_floats(losses.scalars), _detached(outputs), losses.masks)


def train_step_tensors(
    model: nn.Module, optimizer: torch.optim.Optimizer, batch: Batch, config: TrainConfig
) -> dict[str, Tensor]:
    """One optimisation step that does not wait for the device: the losses as detached 0-d
    tensors (convert many steps' at once with :func:`scalars_to_floats`)."""
    _, losses = _optimise(model, optimizer, batch, config)
    return {key: value.detach() for key, value in losses.scalars.items()}


def train_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, batch: Batch, config: TrainConfig
) -> dict[str, float]:
    """One optimisation step on ``batch`` (already on the model's device); the losses as floats."""
    return scalars_to_floats(train_step_tensors(model, optimizer, batch, config))


def eval_step_outputs(model: nn.Module, batch: Batch, config: TrainConfig) -> StepOutput:
    """Forward and losses in eval mode under ``no_grad``; the model's mode is restored after."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            outputs, losses = forward_losses(model, batch, config)
    finally:
        model.train(was_training)
    return StepOutput(scalars_to_floats(losses.scalars), _detached(outputs), losses.masks)


def eval_step(model: nn.Module, batch: Batch, config: TrainConfig) -> dict[str, float]:
    """The losses on ``batch`` in eval mode without gradients, as floats (see
    :func:`eval_step_outputs` for the outputs and masks too)."""
    return eval_step_outputs(model, batch, config).scalars
