"""Training started from the command line, printing what it did: in this process
(:func:`train_here`), on Ray Train (:func:`train_on_ray`) or as a Ray Tune sweep
(:func:`run_sweep`). Ray and torch are imported when a run starts. SIGINT and SIGTERM stop
each of them with what it saved kept and its MLflow run KILLED, raising
:class:`~depthhints.errors.Stopped` (the command line then prints how to resume).
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from depthhints.errors import ConfigError, Stopped

TUNE_SIGINT = "TUNE_DISABLE_SIGINT_HANDLER"
"""Set, Tune leaves SIGINT alone (it always stops gracefully on SIGUSR1)."""

if TYPE_CHECKING:
    from ray import tune

    from depthhints.config import TrainConfig
    from depthhints.train.reporting import TrackingOptions
    from depthhints.train.trainer import RayOptions
    from depthhints.tune import SweepOptions


def train_here(
    config: TrainConfig, resume: bool | str, progress: bool, tracking: TrackingOptions
) -> None:
    """Train in this process (CPU or CUDA), then print the last loss and where the weights are.
    SIGINT and SIGTERM stop it after the step in progress, with the state saved (raising
    :class:`~depthhints.errors.Stopped`)."""
    from depthhints.train.loop import StopSignals, fit

    with StopSignals().installed() as stop:
        result = fit(
            config, resume, progress=progress, tracking=tracking, announce=print, stop=stop
        )
    last = result.history[-1] if result.history else {}
    print(
        f"trained {len(result.history)} steps, last loss {last.get('loss', float('nan')):.5f}; "
        f"weights: {result.weights[-1] if result.weights else 'none written'}; "
        f"metrics: {config.run_dir / 'metrics.jsonl'}"
    )


def train_on_ray(
    config: TrainConfig, options: RayOptions, tracking: TrackingOptions, resume: bool
) -> None:
    """Train on Ray Train; a run of the same name is continued only with ``resume``, from its
    latest checkpoint. SIGINT and SIGTERM abort it (raising :class:`~depthhints.errors.Stopped`)."""
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
    if resume:
        print(_resuming_on_ray(where))
    result = fit_distributed(config, options, tracking=tracking, resume=resume, announce=print)
    metrics = result.metrics or {}
    print(
        f"finished at epoch {metrics.get('epoch')} step {metrics.get('step')}, loss "
        f"{metrics.get('loss', float('nan')):.5f}; checkpoint: {result.checkpoint}; "
        f"weights: {config.run_dir / 'models'}"
    )


def _resuming_on_ray(where: str) -> str:
    """Which checkpoint of the Ray Train run at ``where`` training continues from."""
    from ray.train import Result

    try:
        metrics = Result.from_path(where).metrics
    except RuntimeError:  # no run there, or none that saved a checkpoint
        metrics = None
    if not metrics:
        return f"no checkpoint saved at {where} yet: starting at step 0"
    return (
        f"resuming from the checkpoint saved at step {metrics.get('step')} (epoch "
        f"{metrics.get('epoch')}) of {where}"
    )


def run_sweep(
    base: TrainConfig,
    space: Mapping[str, Sequence[Any]],
    options: SweepOptions,
    tracking: TrackingOptions,
    resume: bool,
) -> bool:
    """The sweep of ``base`` over ``space``, printed as a table; True if every trial ended OK.
    SIGINT and SIGTERM stop it (:func:`sweep_until_stopped`)."""
    from depthhints.tune import trial_table

    grid = sweep_until_stopped(base, space, options, tracking, resume)
    metric = options.metric or ("eval/abs_rel" if base.eval_split_file else "loss")
    rows = trial_table(grid, metric)
    names = [*space, "status", metric]
    print(" | ".join(f"{name:>14}" for name in ["trial", *names]))
    for row in rows:
        cells = [row["trial"], *(row.get(name) for name in names)]
        print(" | ".join(f"{_cell(cell):>14}" for cell in cells), row["error"])
    print(f"sweep results: {grid.experiment_path}")
    return all(row["status"] == "OK" for row in rows)


def sweep_until_stopped(
    base: TrainConfig,
    space: Mapping[str, Sequence[Any]],
    options: SweepOptions,
    tracking: TrackingOptions | None,
    resume: bool,
) -> tune.ResultGrid:
    """:func:`depthhints.tune.sweep`, which SIGINT and SIGTERM stop as Tune stops on Ctrl-C:
    the trials are stopped, their checkpoints and Tune's state stay, the sweep's MLflow runs end
    KILLED and :class:`~depthhints.errors.Stopped` is raised (``resume`` continues the sweep)."""
    import ray

    from depthhints.train.trainer import init_ray, ray_log_file
    from depthhints.tune import reopen_sweep_run, sweep

    if not ray.is_initialized():  # first: ray.init replaces the SIGTERM handler
        init_ray(options.ray.address, verbose=options.ray.verbose, log_file=ray_log_file(base))
    with _tune_stops_on_signals() as received:
        grid = sweep(base, space, options, tracking, resume=resume)
    if received:
        parent = reopen_sweep_run(base.log_dir, options.name, tracking)
        if parent is not None:
            parent.end("KILLED")  # the sweep ended it as if done (its stopped trials KILLED)
        raise Stopped(received[0], "(finished trials stay; the others continue from checkpoints)")
    return grid


@contextlib.contextmanager
def _tune_stops_on_signals() -> Iterator[list[int]]:
    """SIGINT and SIGTERM (listed in the yielded list) ask Tune to stop as on Ctrl-C, through its
    SIGUSR1 handler; before Tune starts, or for a second signal, :class:`Stopped` is raised."""
    from depthhints.train.loop import stop_signals_handled

    received: list[int] = []

    def stop(signum: int, frame: object) -> None:
        received.append(signum)
        if len(received) > 1 or not callable(signal.getsignal(signal.SIGUSR1)):
            raise Stopped(received[0])
        signal.raise_signal(signal.SIGUSR1)

    saved = os.environ.get(TUNE_SIGINT)
    os.environ[TUNE_SIGINT] = "1"
    try:
        with stop_signals_handled(stop):
            yield received
    finally:
        if saved is None:
            os.environ.pop(TUNE_SIGINT, None)
        else:
            os.environ[TUNE_SIGINT] = saved


def _cell(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)
