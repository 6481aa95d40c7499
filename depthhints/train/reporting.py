"""What a training run reports, on rank 0: ``metrics.jsonl``, the MLflow run, images, artifacts.

One MLflow run per training run (``<log_dir>/<model_name>``). It is created where the training
is launched (``fit`` or the Ray driver) with every config value as a param and the tags of
:func:`depthhints.tracking.run_tags`; its id is kept in ``<run_dir>/mlflow_run.json`` so that a
resumed training (``--resume``) and a restarted Ray worker group continue the same run. Rank 0
then logs, at the reference's log events, ``train/<loss>`` (``loss``, ``loss/<scale>``,
``reproj_loss/<scale>``, ``depth_hint_loss/<scale>``), ``train/lr``,
``train/images_per_second`` (all workers) and ``train/images_per_second_per_worker``,
``val/<loss>`` on one validation batch; after every epoch ``eval/<metric>`` (Eigen protocol,
when ``eval_split_file`` is set), an image grid ``images/epoch_NNN.png`` (input, disparity,
depth hint, hint pixels, automask) and ``eval/epoch_NNN.json``; at the end the last
published-layout weights folder under ``weights/`` (hard links to the run folder's files when
the artifacts are a local folder: the weights are on disk once). Every MLflow step is the
global step.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from depthhints.config import TrainConfig
from depthhints.evaluate import EvalResult
from depthhints.tracking import (
    NullTracker,
    Tracker,
    config_params,
    default_tracking_uri,
    redact_uri,
    run_tags,
)

log = logging.getLogger(__name__)

RUN_FILE = "mlflow_run.json"
DEFAULT_EXPERIMENT = "depth-hints"

LogHook = Callable[[str, dict[str, float], int], None]
"""Called on rank 0 as ``hook(phase, metrics, step)``, phase "train", "val" or "eval"."""


@dataclass
class TrackingOptions:
    """Where (and whether) a training run is tracked in MLflow."""

    enabled: bool = True
    uri: str | None = None  # None → $MLFLOW_TRACKING_URI, else sqlite <log_dir>/mlflow.db
    experiment: str = DEFAULT_EXPERIMENT
    run_id: str | None = None  # continue this MLflow run; None → the recorded one or a new run
    parent_run_id: str | None = None  # a sweep's run: new runs are nested under it in the UI
    tags: dict[str, str] = field(default_factory=dict)  # extra tags of a new run

    def tracking_uri(self, config: TrainConfig) -> str:
        return self.uri or default_tracking_uri(config.log_dir)


def recorded_run_id(config: TrainConfig) -> str | None:
    """The MLflow run id recorded in ``<run_dir>/mlflow_run.json`` (None if there is none)."""
    path = config.run_dir / RUN_FILE
    try:
        return json.loads(path.read_text()).get("run_id")
    except (OSError, ValueError):
        return None


def open_run(
    config: TrainConfig,
    options: TrackingOptions,
    world_size: int,
    resume: bool = False,
    cluster_size: int | None = None,
) -> Tracker | NullTracker:
    """The training's MLflow run, created (params, tags, ``config.yaml``) or, on ``resume``,
    continued; never raises for an unreachable server (see :mod:`depthhints.tracking`)."""
    if not options.enabled:
        return NullTracker()
    run_id = options.run_id or (recorded_run_id(config) if resume else None)
    tracker = Tracker.start(
        options.tracking_uri(config),
        options.experiment,
        run_name=config.model_name,
        tags={
            **run_tags(config, world_size, cluster_size),
            **({"mlflow.parentRunId": options.parent_run_id} if options.parent_run_id else {}),
            **options.tags,
        },
        run_id=run_id,
        fallback_dir=config.run_dir,
    )
    if run_id is None:
        tracker.log_params(
            {
                **config_params(config),
                "world_size": world_size,
                "effective_batch_size": config.batch_size * world_size,
            }
        )
        tracker.log_dict(config.to_dict(), "config.yaml")
    record_run(config, tracker)
    return tracker


def attach_run(config: TrainConfig, options: TrackingOptions) -> Tracker | NullTracker:
    """Rank 0 of a Ray worker group: continue the run the driver created."""
    if not options.enabled:
        return NullTracker()
    return Tracker.start(
        options.tracking_uri(config),
        options.experiment,
        run_name=config.model_name,
        run_id=options.run_id or recorded_run_id(config),
        fallback_dir=config.run_dir,
    )


def describe_run(tracker: Tracker | NullTracker, tracking_uri: str, experiment: str) -> str:
    """One line saying where the MLflow run lives and how to look at it (no password shown)."""
    if isinstance(tracker, NullTracker):
        return "MLflow tracking off"
    tracking_uri = redact_uri(tracking_uri)
    if tracker.run_id is None:
        return (
            f"MLflow: {tracking_uri} does not answer; the records wait in the run folder and are "
            "sent once it does (or with `depthhints sync-tracking <run folder>`)"
        )
    view = tracker.run_url or f"mlflow ui --backend-store-uri {tracking_uri}"
    return f"MLflow run {tracker.run_id} (experiment {experiment!r}, {tracking_uri}); view: {view}"


def record_run(config: TrainConfig, tracker: Tracker | NullTracker) -> None:
    """Write ``<run_dir>/mlflow_run.json`` once the run id is known (it is not while offline)."""
    if tracker.run_id is None or recorded_run_id(config) == tracker.run_id:
        return
    path = config.run_dir / RUN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    info = {
        "run_id": tracker.run_id,
        "experiment_id": tracker.experiment_id,
        "run_url": tracker.run_url,
    }
    path.write_text(json.dumps(info, indent=2) + "\n")


class RunReporter:
    """Rank 0's sink for everything a training run reports (the other ranks report nothing)."""

    def __init__(
        self,
        config: TrainConfig,
        tracker: Tracker | NullTracker,
        hooks: Sequence[LogHook] = (),
    ) -> None:
        self.config = config
        self.tracker = tracker
        self.hooks = list(hooks)
        self.metrics_log = config.run_dir / "metrics.jsonl"
        self.metrics_log.parent.mkdir(parents=True, exist_ok=True)

    @property
    def tracking(self) -> bool:
        """Whether an MLflow run receives the records (else only ``metrics.jsonl``)."""
        return not isinstance(self.tracker, NullTracker)

    def log(self, phase: str, metrics: Mapping[str, float], step: int) -> None:
        """One record in ``metrics.jsonl`` and MLflow (``<phase>/<name>``), then the hooks."""
        metrics = dict(metrics)
        with self.metrics_log.open("a") as handle:
            handle.write(json.dumps({"phase": phase, "step": step, **metrics}) + "\n")
        self.tracker.log_metrics({f"{phase}/{k}": v for k, v in metrics.items()}, step)
        record_run(self.config, self.tracker)
        for hook in self.hooks:
            hook(phase, metrics, step)

    def epoch_end(
        self, epoch: int, step: int, grid: np.ndarray | None, result: EvalResult | None
    ) -> None:
        """The epoch's image grid and Eigen-protocol metrics."""
        if grid is not None:
            self.tracker.log_image(grid, f"images/epoch_{epoch:03d}.png")
        if result is not None:
            self.log("eval", result.metrics, step)
            self.tracker.log_dict(
                {"epoch": epoch, "step": step, **result.as_dict()}, f"eval/epoch_{epoch:03d}.json"
            )

    def finish(self, weights: Path | None) -> None:
        """Upload the last published-layout weights folder and deliver what is pending."""
        if weights is not None:
            # → weights/weights_N/, hard-linked on a local artifact store: no second copy
            self.tracker.log_artifact(weights, "weights", link=True)
        self.tracker.flush()
        record_run(self.config, self.tracker)


def training_grid(
    batch: Mapping[Any, Any],
    outputs: Mapping[Any, Any],
    masks: Mapping[str, torch.Tensor],
    max_rows: int = 4,
) -> np.ndarray:
    """An (H, W, 3) uint8 picture, one row per image: input, predicted disparity, depth hint (as
    disparity, black where none), hint pixels used (m_h) and the automask, at scale 0.

    Columns without data (no hints, automasking off) are left out; tiles wider than 320 pixels
    are halved to keep the files small.
    """
    import cv2
    from matplotlib import colormaps

    magma = colormaps["magma"]

    def colour(values: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
        valid = np.ones(values.shape, bool) if valid is None else valid
        top = np.percentile(values[valid], 95) if valid.any() else 1.0
        rgb = magma(np.clip(values / max(top, 1e-6), 0, 1))[..., :3]
        rgb[~valid] = 0
        return rgb

    def grey(values: np.ndarray) -> np.ndarray:
        return np.repeat(values[..., None], 3, axis=2)

    def plane(tensor: torch.Tensor, row: int) -> np.ndarray:
        return tensor[row].detach().float().cpu().numpy()

    rows = []
    for row in range(min(max_rows, batch[("color", 0, 0)].shape[0])):
        tiles = [plane(batch[("color", 0, 0)], row).transpose(1, 2, 0)]
        tiles.append(colour(plane(outputs[("disp", 0)], row)[0]))
        if "depth_hint" in batch:
            hint = plane(batch["depth_hint"], row)[0]
            valid = hint > 0
            tiles.append(colour(np.where(valid, 1.0 / np.maximum(hint, 1e-6), 0.0), valid))
        for name in ("depth_hint_pixels/0", "automask/0"):
            if name in masks:
                tiles.append(grey(plane(masks[name], row)[0]))
        rows.append(np.concatenate([t for t in tiles if t.shape == tiles[0].shape], axis=1))
    grid = np.clip(np.concatenate(rows, axis=0) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if batch[("color", 0, 0)].shape[-1] > 320:
        size = (grid.shape[1] // 2, grid.shape[0] // 2)
        grid = cv2.resize(grid, size, interpolation=cv2.INTER_AREA)
    return grid
