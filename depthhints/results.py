"""Test-set results in MLflow: one *evaluation run* per (trained model, protocol, post-processing).

An evaluation run carries the params that say which published result it compares with
(:data:`COMPARISON_PARAMS`: ``backbone``, ``resolution``, ``pretrained``, ``modality``,
``use_depth_hints``, ``post_process``, ``eval_protocol``, ``dataset``) and the metrics
``test/<name>`` (:data:`depthhints.evaluate.METRICS`). The paper's numbers are logged the same way
(``dashboards/paper.py``, tag ``source=paper``), so the MLflow UI and the report compare the two
by params. Ours are tagged ``source=ours`` and nested under the training run they evaluate.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from depthhints.config import TrainConfig
from depthhints.evaluate import METRICS
from depthhints.tracking import Tracker, login_hidden

COMPARISON_PARAMS = (
    "backbone",
    "resolution",
    "pretrained",
    "modality",
    "use_depth_hints",
    "post_process",
    "eval_protocol",
    "dataset",
)
METRIC_PREFIX = "test/"
EVALUATION_KIND = "evaluation"  # the ``run_kind`` tag of evaluation runs (ours and the paper's)


def modality(config: TrainConfig) -> str:
    """``S`` (stereo pairs), ``M`` (monocular video) or ``MS`` (both), as the paper names them."""
    temporal = any(f != 0 for f in config.frame_ids)
    if config.use_stereo:
        return "MS" if temporal else "S"
    return "M"


def dataset_name(data_path: str | Path) -> str:
    """``synthetic`` for a drive made by ``depthhints synth`` (it has ``synthetic.json``), else
    ``kitti``."""
    return "synthetic" if (Path(data_path) / "synthetic.json").is_file() else "kitti"


def recipe_params(config: TrainConfig) -> dict[str, str]:
    """The comparison params a training recipe fixes (MLflow params are strings)."""
    return {
        "backbone": f"resnet{config.num_layers}",
        "resolution": f"{config.width}x{config.height}",
        "pretrained": str(config.weights_init == "pretrained"),
        "modality": modality(config),
        "use_depth_hints": str(config.use_depth_hints),
    }


def evaluation_key(protocol: str, post_process: bool) -> str:
    """``eigen``, ``eigen_pp``, ``eigen_benchmark``, ``eigen_benchmark_pp``."""
    return f"{protocol}{'_pp' if post_process else ''}"


def log_evaluation(
    tracking_uri: str,
    experiment: str,
    config: TrainConfig,
    protocol: str,
    post_process: bool,
    metrics: Mapping[str, float],
    training_run_id: str | None = None,
    extra_params: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
) -> str | None:
    """One evaluation run (nested under ``training_run_id`` when given); returns its id."""
    tags = {**(tags or {}), "source": "ours", "run_kind": EVALUATION_KIND}
    if training_run_id:
        tags["mlflow.parentRunId"] = training_run_id
    tracker = Tracker.start(
        tracking_uri,
        experiment,
        run_name=f"{config.model_name} · {evaluation_key(protocol, post_process)}",
        tags=tags,
        fallback_dir=config.run_dir / "evaluations" / evaluation_key(protocol, post_process),
    )
    tracker.log_params(
        {
            **recipe_params(config),
            "post_process": str(post_process),
            "eval_protocol": protocol,
            "dataset": dataset_name(config.data_path),
            "model_name": config.model_name,
            "training_run_id": training_run_id or "",
            **(extra_params or {}),
        }
    )
    tracker.log_metrics(
        {f"{METRIC_PREFIX}{name}": metrics[name] for name in METRICS if name in metrics}, 0
    )
    tracker.end("FINISHED")
    return tracker.run_id


def logged_evaluations(
    tracking_uri: str, experiment: str, training_run_id: str
) -> set[tuple[str, bool]]:
    """(protocol, post-processing) of the evaluation runs already nested under a training run."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    with login_hidden(tracking_uri):
        found = client.get_experiment_by_name(experiment)
        if found is None:
            return set()
        runs = client.search_runs(
            [found.experiment_id], f"tags.mlflow.parentRunId = '{training_run_id}'"
        )
    return {
        (run.data.params.get("eval_protocol", ""), run.data.params.get("post_process") == "True")
        for run in runs
    }


HINT_QUALITY_KIND = "hint_quality"  # the ``run_kind`` tag of a hint store's quality run


def log_hint_quality(
    tracking_uri: str,
    experiment: str,
    store: str | Path,
    settings: Mapping[str, Any],
    quality: Mapping[str, float],
    seconds_per_image: float | None = None,
) -> str | None:
    """One run per hint store: its ``matchers``/``fusion`` settings as params and ``hints/*``
    metrics (coverage, abs_rel, delta1, images; ``seconds_per_image``: cost on one core)."""
    mode = f"{settings.get('matchers', '?')}/{settings.get('fusion', '?')}"
    tracker = Tracker.start(
        tracking_uri,
        experiment,
        run_name=f"hints · {mode}",
        tags={"source": "ours", "run_kind": HINT_QUALITY_KIND},
        fallback_dir=Path(store) / "tracking",
    )
    tracker.log_params(
        {
            "mode": mode,
            "matchers": settings.get("matchers", "?"),
            "fusion": settings.get("fusion", "?"),
            "store": str(Path(store).resolve()),
        }
    )
    metrics = {f"hints/{name}": float(value) for name, value in quality.items()}
    if seconds_per_image is not None:
        metrics["hints/seconds_per_image"] = seconds_per_image
    tracker.log_metrics(metrics, 0)
    tracker.end("FINISHED")
    return tracker.run_id
