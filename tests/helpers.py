"""Helpers shared by the training tests."""

from __future__ import annotations

from pathlib import Path

from depthhints.config import TrainConfig


def tiny_config(tree: dict, tmp_path: Path, **changes) -> TrainConfig:
    """Stereo training (frames 0, s) at 64×192 from scratch on the session's synthetic drive."""
    values = dict(
        data_path=str(tree["root"]),
        split=str(tree["split"]),
        log_dir=str(tmp_path / "runs"),
        height=64,
        width=192,
        batch_size=2,
        num_epochs=2,
        weights_init="scratch",
        num_workers=0,
        use_stereo=True,
        frame_ids=[0],
        log_frequency=1000,
    )
    return TrainConfig(**{**values, **changes})
