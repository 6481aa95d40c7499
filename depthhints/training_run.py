"""Training started from the command line, printing what it did: in this process
(:func:`train_here`), on Ray Train (:func:`train_on_ray`) or as a Ray Tune sweep
(:func:`run_sweep`). Ray and torch are imported when a run starts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from depthhints.errors import ConfigError

if TYPE_CHECKING:
    from depthhints.config import TrainConfig
    from depthhints.train.reporting import TrackingOptions
    from depthhints.train.trainer import RayOptions
    from depthhints.tune import SweepOptions


def train_here(
    config: TrainConfig, resume: bool | str, progress: bool, tracking: TrackingOptions
) -> None:
    """Train in this process (CPU or CUDA), then print the last loss and where the weights are."""
    from depthhints.train.loop import fit

    result = fit(config, resume=resume, progress=progress, tracking=tracking, announce=print)
    last = result.history[-1] if result.history else {}
    print(
        f"trained {len(result.history)} steps, last loss {last.get('loss', float('nan')):.5f}; "
        f"weights: {result.weights[-1] if result.weights else 'none written'}; "
        f"metrics: {config.run_dir / 'metrics.jsonl'}"
    )


def train_on_ray(
    config: TrainConfig, options: RayOptions, tracking: TrackingOptions, resume: bool
) -> None:
    """Train on Ray Train; a run of the same name is continued only with ``resume``."""
    from depthhints.train.trainer import fit_distributed, run_path

    where = run_path(config, options)
    if Path(where).exists() and not resume:
        raise ConfigError(
            f"a run named {config.model_name!r} already exists at {where}; pass --resume to "
            "continue it (with more --num_epochs to extend it) or choose another --model_name"
        )
    print(
        f"Ray Train: {options.num_workers} workers ({'GPU' if options.use_gpu else 'CPU'}), "
        f"per-worker batch {config.batch_size}, effective batch "
        f"{config.batch_size * options.num_workers}; Ray result: {where}"
    )
    result = fit_distributed(config, options, tracking=tracking, resume=resume, announce=print)
    metrics = result.metrics or {}
    print(
        f"finished at epoch {metrics.get('epoch')} step {metrics.get('step')}, loss "
        f"{metrics.get('loss', float('nan')):.5f}; checkpoint: {result.checkpoint}; "
        f"weights: {config.run_dir / 'models'}"
    )


def run_sweep(
    base: TrainConfig,
    space: Mapping[str, Sequence[Any]],
    options: SweepOptions,
    tracking: TrackingOptions,
    resume: bool,
) -> bool:
    """The sweep of ``base`` over ``space``, printed as a table; True if every trial ended OK."""
    from depthhints.tune import sweep, trial_table

    grid = sweep(base, space, options, tracking, resume=resume)
    metric = options.metric or ("eval/abs_rel" if base.eval_split_file else "loss")
    rows = trial_table(grid, metric)
    names = [*space, "status", metric]
    print(" | ".join(f"{name:>14}" for name in ["trial", *names]))
    for row in rows:
        cells = [row["trial"], *(row.get(name) for name in names)]
        print(" | ".join(f"{_cell(cell):>14}" for cell in cells), row["error"])
    print(f"sweep results: {grid.experiment_path}")
    return all(row["status"] == "OK" for row in rows)


def _cell(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)
