"""State-dict helpers for the published checkpoint layout (docs/method.md#checkpoints)."""

from __future__ import annotations

from typing import Any

from torch import nn


def filter_state_dict(model: nn.Module, state: dict[str, Any]) -> dict[str, Any]:
    """Keep only keys the model has (drops ``height``/``width``/``use_stereo`` from encoder.pth)."""
    own = model.state_dict()
    return {k: v for k, v in state.items() if k in own}


def encoder_checkpoint(
    encoder: nn.Module, height: int, width: int, use_stereo: bool
) -> dict[str, Any]:
    """The ``encoder.pth`` payload: the encoder state dict plus the training resolution and mode."""
    state: dict[str, Any] = dict(encoder.state_dict())
    state.update(height=height, width=width, use_stereo=use_stereo)
    return state
