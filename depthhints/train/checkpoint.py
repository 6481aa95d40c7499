"""Training checkpoints: the published weights folders and a full state that resumes exactly.

Published layout (docs/method.md#checkpoints), for use by every monodepth-family tool::

    <run_dir>/models/opt.json
    <run_dir>/models/weights_<epoch>/{encoder,depth,pose_encoder,pose,predictive_mask,adam}.pth

``encoder.pth`` carries the extra ``height``/``width``/``use_stereo`` keys. The full state
(``<run_dir>/models/state.pt``, the one before it kept as ``state.previous.pt``) adds what the
reference never saved: scheduler, epoch, step and every RNG state, so a resumed run continues
with identical losses on CPU. All files are written to a temporary name and renamed into place;
states are loaded with ``weights_only=True`` (no code runs from a checkpoint file), and a resume
whose newest state is unreadable falls back to the previous one with a
``CheckpointFallbackWarning``.
"""

from __future__ import annotations

import json
import os
import random
import uuid
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from depthhints.config import TrainConfig
from depthhints.errors import DataFileError
from depthhints.models.checkpoint import encoder_checkpoint

STATE_FILE = "state.pt"
PREVIOUS_STATE_FILE = "state.previous.pt"
"""The state before the newest, kept so that a damaged newest one costs one interval."""
PUBLISHED_PARTS = ("encoder", "depth", "pose_encoder", "pose", "predictive_mask")


def models_dir(config: TrainConfig) -> Path:
    return config.run_dir / "models"


def _atomic_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def save_options(config: TrainConfig) -> Path:
    """``opt.json`` as the reference writes it (frame_ids include 's' for stereo)."""
    path = models_dir(config) / "opt.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {**config.to_dict(), "frame_ids": config.all_frame_ids}
    path.write_text(json.dumps(options, indent=2) + "\n")
    return path


def save_weights(
    config: TrainConfig, model: nn.Module, optimizer: torch.optim.Optimizer, epoch: int
) -> Path:
    """Write ``weights_<epoch>/`` in the published layout; returns the folder."""
    folder = models_dir(config) / f"weights_{epoch}"
    for part in PUBLISHED_PARTS:
        module = getattr(model, part, None)
        if module is None:
            continue
        if part == "encoder":
            state = encoder_checkpoint(module, config.height, config.width, config.use_stereo)
        else:
            state = module.state_dict()
        _atomic_save(state, folder / f"{part}.pth")
    _atomic_save(optimizer.state_dict(), folder / "adam.pth")
    return folder


@dataclass
class TrainState:
    """Where a run stands: the next epoch and how many of its batches are done."""

    epoch: int = 0
    batch_in_epoch: int = 0
    step: int = 0


def rng_states() -> dict[str, Any]:
    """Every RNG state, as tensors and plain values (loadable with ``weights_only=True``)."""
    kind, keys, *rest = np.random.get_state()
    states = {
        "torch": torch.get_rng_state(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), *rest),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    kind, keys, *rest = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_state(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    state: TrainState,
    config: TrainConfig,
) -> None:
    """Everything needed to continue the run bit for bit."""
    _atomic_save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "train_state": vars(state).copy(),
            "rng": rng_states(),
            "config": config.to_dict(),
        },
        path,
    )


def read_state(path: Path) -> dict[str, Any]:
    """A ``save_state`` file, loaded without running code (``weights_only``)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # garbage fails anywhere in the unpickler (IndexError, ...)
        raise DataFileError(
            f"cannot resume from {path}: {exc}. The file is incomplete or not a training state; "
            "delete it to start afresh or point resume at another state file."
        ) from exc


def load_state(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> TrainState:
    """Restore ``save_state`` output into the given objects (and the RNGs); returns the position."""
    saved = read_state(path)
    try:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        set_rng_states(saved["rng"])
        return TrainState(**saved["train_state"])
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:
        raise DataFileError(
            f"cannot resume from {path}: {exc}. The state is from another model configuration; "
            "resume with the configuration that wrote it, or delete it to start afresh."
        ) from exc


class CheckpointFallbackWarning(UserWarning):
    """The newest checkpoint was unreadable and an older one is used instead."""


def newest_readable(candidates: Iterable[Path]) -> Path:
    """The first candidate (newest first) that loads; warns when it is not the first.

    Candidates are produced lazily, so a remote checkpoint is fetched only when the newer ones
    failed. Raises ``DataFileError`` listing every failure when none loads.
    """
    failures: list[str] = []
    for path in candidates:
        if not path.is_file():
            failures.append(f"{path}: missing")
            continue
        try:
            read_state(path)
        except DataFileError as exc:
            failures.append(f"{path}: {exc.__cause__}")
            continue
        if failures:
            warnings.warn(
                f"the newest checkpoint is unreadable ({'; '.join(failures)}); resuming from "
                f"the previous one, {path}: the steps since then are trained again",
                CheckpointFallbackWarning,
                stacklevel=2,
            )
        return path
    raise DataFileError(
        f"cannot resume: no readable training state ({'; '.join(failures) or 'none saved'}); "
        "train without resume to start afresh, or point resume at another state file"
    )
