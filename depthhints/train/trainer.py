"""Distributed training on Ray Train: a TorchTrainer whose workers run the same loop as ``fit``.

Each worker is one DDP rank (gloo on CPU, NCCL on GPU, set up by Ray); it trains on its slice of
the epoch's seeded order (``train.data.epoch_order``), so the per-worker batch is
``batch_size`` and the effective batch ``batch_size × num_workers``; the learning rate is not
rescaled (set ``learning_rate`` yourself when comparing across worker counts). Rank 0 writes
the full state into a Ray checkpoint at every epoch end (and every ``checkpoint_steps``); when
a worker dies Ray restarts the group (``max_failures``) and every rank resumes from the latest
checkpoint — model, Adam, StepLR, epoch, step and position in the epoch — or, if that one is
unreadable, from the one before it (``num_to_keep`` ≥ 2), with a warning.

The driver creates the MLflow run (``train.reporting.open_run``) and hands its id to the
workers; rank 0 logs to it (its journal, if the server is unreachable, lives in the run folder,
which must be on the driver's file system for an offline start to be continued). Rank 0's
progress bar and lines reach the driver's terminal through its progress board
(:mod:`depthhints.train.console`), or with ``verbose`` through ``ray.experimental.tqdm_ray``
in Ray's forwarded output. A Tune trial's Train checkpoints are deleted once it succeeded
(``keep_checkpoints``): nobody continues a trial that ended.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import posixpath
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.fs
import ray
import ray.train
import ray.train.torch
import torch
from ray.experimental import tqdm_ray
from ray.train import (
    Checkpoint,
    CheckpointConfig,
    FailureConfig,
    LoggingConfig,
    RunConfig,
    ScalingConfig,
    UserCallback,
)
from ray.train.torch import TorchConfig, TorchTrainer

from depthhints import probes
from depthhints.config import TrainConfig
from depthhints.errors import ConfigError, Stopped
from depthhints.tracking import NullTracker
from depthhints.train import console
from depthhints.train.checkpoint import STATE_FILE, newest_readable
from depthhints.train.loop import run_loop, stop_signals_handled
from depthhints.train.reporting import TrackingOptions, attach_run, describe_run, open_run
from depthhints.train.restarts import RestartRecorder

REPORT_INTERVAL_S = "0.05"
"""``RAY_TRAIN_HEALTH_CHECK_INTERVAL_S``: Ray's default (2 s) blocks every report for ~2 s."""


RAY_LOG = "ray.log"
"""The file Ray's and Tune's own output goes to, in ``log_dir`` (or the demo's ``--out``)."""

TRAIN_RESOURCE = "train"
"""Custom resource of the nodes meant for training (platform/cluster.yaml): when the cluster
advertises it, each Train worker takes one unit."""


@dataclass
class RayOptions:
    """How to run on Ray: workers, resources, where results live, failure handling."""

    num_workers: int = 2
    use_gpu: bool = False
    cpus_per_worker: float = 1.0
    storage_path: str | None = None  # None → <log_dir>/ray_results; any URI Ray supports
    max_failures: int = 2
    num_to_keep: int = 2
    address: str | None = None  # an existing cluster ("auto"), else a local one
    log_level: str = "WARNING"  # Ray Train's own console logs (INFO: every report)
    verbose: bool = False  # Ray's and Tune's own output on the terminal, not in <log_dir>/ray.log
    keep_checkpoints: bool = True  # False: a run that succeeded leaves no Train checkpoints

    def __post_init__(self) -> None:
        if self.num_workers < 1:
            raise ConfigError(f"num_workers={self.num_workers}: need at least one Ray worker")
        if self.cpus_per_worker <= 0:
            raise ConfigError(f"cpus_per_worker={self.cpus_per_worker} must be positive")


class RaySession:
    """The loop's view of a Ray Train worker: rank, device, DDP wrapping, checkpoint reports,
    and rank 0's progress bar and lines on the driver's terminal (through the driver's progress
    board, or Ray's forwarded output when it draws none: ``verbose``)."""

    def __init__(self, name: str = "") -> None:
        context = ray.train.get_context()
        self.name = name
        self.rank = context.get_world_rank()
        self.world_size = context.get_world_size()
        self.device = ray.train.torch.get_device()
        self.board = console.board() if self.rank == 0 else None

    def prepare_model(self, model: torch.nn.Module) -> torch.nn.Module:
        return ray.train.torch.prepare_model(model)

    def save(self, write_state: Callable[[Path], None], metrics: dict[str, float]) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            checkpoint = None
            if self.rank == 0:
                write_state(Path(tmp) / STATE_FILE)
                checkpoint = Checkpoint.from_directory(tmp)
            ray.train.report(metrics, checkpoint=checkpoint)

    def progress_bar(
        self, total: int, initial: int, enabled: bool
    ) -> console.BoardBar | _RayBar | _NoBar:
        if not enabled:
            return _NoBar()
        if self.board is not None:
            return console.BoardBar(self.board, self.name, total, initial)
        bar = _RayBar(total=total, unit="step")
        bar.update(initial)
        return bar

    def write(self, text: str) -> None:
        console.say(text, self.board)


class _RayBar(tqdm_ray.tqdm):
    """Ray's worker-side progress bar (drawn by the driver), whose close reaches the driver."""

    def close(self) -> None:
        super().close()
        sys.stdout.flush()  # the state travels in the worker's stdout; unflushed, it is lost


class _NoBar:
    """The progress bar of the ranks that show none."""

    def update(self, n: int = 1) -> None:
        pass

    def set_description(self, desc: str) -> None:
        pass

    def close(self) -> None:
        pass


def _restored_state(local_dir: Path) -> Path | None:
    """The newest readable checkpoint's state file, copied to ``local_dir`` (None on a fresh
    start); older checkpoints are fetched only when a newer one is unreadable."""
    latest = ray.train.get_checkpoint()
    if latest is None:
        return None
    restored = local_dir / f"restored_{ray.train.get_context().get_world_rank()}"
    shutil.rmtree(restored, ignore_errors=True)  # the copies of an earlier restore

    def copies() -> Iterator[Path]:
        for checkpoint in [latest, *_older_checkpoints(latest)]:
            target = restored / Path(checkpoint.path).name / STATE_FILE
            target.parent.mkdir(parents=True, exist_ok=True)
            with checkpoint.as_directory() as folder:
                source = Path(folder) / STATE_FILE
                if source.is_file():
                    shutil.copyfile(source, target)
            yield target

    return newest_readable(copies())


def _older_checkpoints(latest: Checkpoint) -> list[Checkpoint]:
    """The run's checkpoints older than ``latest``, newest first (Ray names them by time)."""
    parent, name = posixpath.split(latest.path.rstrip("/"))
    listing = latest.filesystem.get_file_info(pyarrow.fs.FileSelector(parent))
    older = [
        info.path
        for info in listing
        if info.type == pyarrow.fs.FileType.Directory
        and posixpath.basename(info.path).startswith("checkpoint_")
        and posixpath.basename(info.path) < name
    ]
    return [Checkpoint(path, filesystem=latest.filesystem) for path in sorted(older, reverse=True)]


REPORT_LOGGER = str(Path(ray.train.__file__).parent.joinpath("v2/_internal/execution/context.py"))
"""Ray 2.60 logs every report from a logger named after this source file, which Ray's
LoggingConfig misses (named by its path, so none of Ray's internals is imported)."""


def train_worker(loop_config: dict[str, Any]) -> None:
    """Entry point of every Ray Train worker."""
    config = TrainConfig.from_dict(loop_config["config"])
    torch.set_num_threads(max(1, int(loop_config.get("threads", 1))))
    logging.getLogger(REPORT_LOGGER).setLevel(loop_config.get("log_level", "INFO"))
    session = RaySession(config.model_name)
    state = _restored_state(config.run_dir / "models")
    hooks, step_hooks = probes.from_spec(loop_config.get("test_hooks") or {}, session.rank)
    lead = session.rank == 0
    tracking = TrackingOptions(**loop_config.get("tracking", {"enabled": False}))
    with attach_run(config, tracking) if lead else NullTracker() as tracker:
        run_loop(config, session, state, hooks, lead, step_hooks, tracker)


def absolute_paths(config: TrainConfig) -> TrainConfig:
    """``config`` with every path absolute: Ray workers do not run in the driver's cwd."""

    def resolved(path: str | None) -> str | None:
        return str(Path(path).resolve()) if path is not None and Path(path).exists() else path

    return config.replace(
        data_path=str(Path(config.data_path).resolve()),
        log_dir=str(Path(config.log_dir).resolve()),
        split=resolved(config.split),
        depth_hint_path=str(config.hint_path.resolve()) if config.use_depth_hints else None,
        eval_split_file=resolved(config.eval_split_file),
        weights_path=resolved(config.weights_path),
        cache_dir=str(Path(config.cache_dir).resolve()) if config.cache_dir else None,
    )


def make_trainer(
    config: TrainConfig,
    options: RayOptions,
    test_hooks: dict | None = None,
    tracking: TrackingOptions | None = None,
    callbacks: Sequence[UserCallback] = (),
) -> TorchTrainer:
    """A TorchTrainer for ``config``; the Train run is named after ``model_name`` (resumable).

    ``tracking``: the MLflow run rank 0 logs to (its ``uri`` resolved here, in the driver);
    None: no tracking. ``callbacks``: Ray Train callbacks (a Tune trial passes
    ``TuneReportCallback``).
    """
    storage = options.storage_path or str(Path(config.log_dir).resolve() / "ray_results")
    config = absolute_paths(config).replace(device="cuda" if options.use_gpu else "cpu")
    tracking_values = {"enabled": False}
    if tracking is not None and tracking.enabled:
        tracking = dataclasses.replace(tracking, uri=tracking.tracking_uri(config))
        tracking_values = dataclasses.asdict(tracking)
    restarts = RestartRecorder(config, tracking, options.max_failures)
    resources = {"CPU": options.cpus_per_worker}
    if options.use_gpu:
        resources["GPU"] = 1
    if ray.is_initialized() and ray.cluster_resources().get(TRAIN_RESOURCE):
        resources[TRAIN_RESOURCE] = 1  # a labelled cluster: train on the training nodes only
    return TorchTrainer(
        train_worker,
        train_loop_config={
            "config": config.to_dict(),
            "threads": options.cpus_per_worker,
            "test_hooks": test_hooks,
            "tracking": tracking_values,
            "log_level": options.log_level,
        },
        scaling_config=ScalingConfig(
            num_workers=options.num_workers,
            use_gpu=options.use_gpu,
            resources_per_worker=resources,
        ),
        torch_config=TorchConfig(backend="nccl" if options.use_gpu else "gloo"),
        run_config=RunConfig(
            name=config.model_name,
            storage_path=storage,
            checkpoint_config=CheckpointConfig(num_to_keep=options.num_to_keep),
            failure_config=FailureConfig(max_failures=options.max_failures),
            logging_config=LoggingConfig(log_level=options.log_level),
            callbacks=[restarts, *callbacks],
        ),
    )


def init_ray(
    address: str | None = None,
    *,
    verbose: bool = False,
    log_file: str | Path | None = None,
    **kwargs: Any,
) -> Path | None:
    """``ray.init`` with the worker settings training needs (set before the cluster starts) and
    the terminal kept for our own output; returns the log file of Ray's (None: none set up).

    Unless ``verbose``, workers' output is not forwarded (``log_to_driver=False``: it stays in
    Ray's session folder) and, given a ``log_file``, the driver's Ray logs and Tune's reporting
    go there (:mod:`depthhints.train.console`), its path printed once. ``kwargs`` go to
    ``ray.init``.

    ``RAY_TRAIN_HEALTH_CHECK_INTERVAL_S``: Ray's 2 s default blocks every report for ~2 s.
    ``RAY_TRAIN_ENABLE_PRINT_PATCH=0``: Train V2 re-routes a worker's ``print`` through a logger
    and, on a wrapped stdout, prints twice, which duplicates every line and revives closed
    ``tqdm_ray`` bars on the driver (seen with Ray 2.60).

    Without ``address`` (and ``$RAY_ADDRESS``) a new local cluster starts, even where another
    runs, and its processes' state queries go to its own dashboard (:func:`_own_state_api`).
    """
    env = {
        name: os.environ.setdefault(name, value)
        for name, value in (
            ("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", REPORT_INTERVAL_S),
            ("RAY_TRAIN_ENABLE_PRINT_PATCH", "0"),
        )
    }
    if address is None and not os.environ.get("RAY_ADDRESS"):
        address = "local"
        env.update(_own_state_api(kwargs))
    log_file = None if verbose or log_file is None else console.log_ray_to(Path(log_file))
    if not verbose:
        kwargs.setdefault("log_to_driver", False)
    context = ray.init(address=address, runtime_env={"env_vars": env}, **kwargs)
    if log_file is not None:
        info = getattr(context, "address_info", None) or {}
        console.note_session(log_file, info.get("session_dir"))
        print(f"Ray's own output: {log_file} (--verbose shows it here)", flush=True)
    return log_file


def _own_state_api(init_kwargs: dict[str, Any]) -> dict[str, str]:
    """The workers' environment that points Ray's state API at the dashboard of the local
    cluster about to start (its port chosen here, set in ``init_kwargs``). Not this process's
    environment: the commands it starts (``ray job submit``, another cluster's driver) must
    not inherit it.

    Left alone, a state query goes to the port the cluster advertises, Ray's default 8265 even
    with the dashboard off, where another cluster's dashboard may answer. Ray Train's
    placement-group cleaner asks that way whether the run's controller is alive; told by
    another cluster that no such actor exists, it removes the placement group of a healthy
    run: its workers die and the run restarts or fails, with nothing but
    ``INTENDED_SYSTEM_EXIT`` to say why. Asked here (a dashboard that is off does not answer),
    the cleaner waits instead.
    """
    port = init_kwargs.setdefault("dashboard_port", _free_port())
    return {"RAY_API_SERVER_ADDRESS": f"http://127.0.0.1:{port}"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def ray_log_file(config: TrainConfig) -> Path:
    """Where a training's (or a sweep's) Ray and Tune output goes: ``<log_dir>/ray.log``."""
    return Path(config.log_dir).resolve() / RAY_LOG


def run_path(config: TrainConfig, options: RayOptions) -> str:
    """Where Ray Train keeps the run's checkpoints (a folder or a URI)."""
    storage = options.storage_path or str(Path(config.log_dir).resolve() / "ray_results")
    return f"{storage.rstrip('/')}/{config.model_name}"


def fit_distributed(
    config: TrainConfig,
    options: RayOptions,
    test_hooks: dict | None = None,
    tracking: TrackingOptions | None = None,
    resume: bool = False,
    announce: Callable[[str], None] | None = None,
    callbacks: Sequence[UserCallback] = (),
) -> ray.train.Result:
    """Train on Ray (starting a local cluster unless ``options.address``); returns Ray's result.

    The MLflow run (``tracking``, default: the embedded store under ``log_dir``) is created
    here, or continued when ``resume``; ``announce`` receives a line saying where it lives. It
    ends FAILED when training fails, KILLED when SIGINT or SIGTERM stops it
    (:func:`fit_until_stopped`: :class:`Stopped` is raised; ``resume`` continues from the
    latest checkpoint).
    """
    if not ray.is_initialized():
        init_ray(options.address, verbose=options.verbose, log_file=ray_log_file(config))
    config = absolute_paths(config)
    tracking = tracking or TrackingOptions()
    if tracking.enabled:
        nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
        tracker = open_run(config, tracking, options.num_workers, resume, cluster_size=nodes)
        tracker.flush()
        tracking = dataclasses.replace(tracking, run_id=tracker.run_id)
        if announce:
            announce(describe_run(tracker, tracking.tracking_uri(config), tracking.experiment))
    try:
        with console.show_progress(enabled=not options.verbose):
            trainer = make_trainer(config, options, test_hooks, tracking, callbacks)
            result = fit_until_stopped(trainer)
    except Stopped:
        _end_run(config, tracking, "KILLED")
        raise
    except Exception:
        _end_run(config, tracking, "KILLED" if _resources_withdrawn() else "FAILED")
        raise
    if result.error is not None:
        _end_run(config, tracking, "KILLED" if _resources_withdrawn() else "FAILED")
        raise result.error
    if not options.keep_checkpoints:
        drop_checkpoints(result)
    return result


def drop_checkpoints(result: ray.train.Result) -> None:
    """Delete a finished Train run's folder, checkpoints and all: a run whose weights are
    written (``<run_dir>/models``) and that nobody continues (a Tune trial that ended) needs
    them no more. The whole folder goes, as Ray refuses to continue a run whose record names
    a checkpoint that is gone; continuing it starts afresh."""
    try:
        result.filesystem.delete_dir(result.path)
    except OSError as error:  # the checkpoints stay: only space is lost
        logging.getLogger(__name__).warning("could not delete %s: %s", result.path, error)


KEPT = "(its latest checkpoint stays)"


def fit_until_stopped(trainer: TorchTrainer) -> ray.train.Result:
    """``trainer.fit()``; in the main thread SIGINT and SIGTERM abort the run and raise
    :class:`Stopped` (elsewhere, as in a Tune trial, the signals are Tune's).

    Ray Train answers SIGINT itself while it trains: it aborts the worker group, then leaves
    with SystemExit. SIGTERM is handed to that same handler; before training starts (or after)
    either signal raises :class:`Stopped` at once.
    """
    received: list[int] = []

    def stop(signum: int, frame: object) -> None:
        received.append(signum)
        handler = signal.getsignal(signal.SIGINT)
        if handler is not stop and callable(handler):  # Ray Train's: it aborts the run
            handler(signal.SIGINT, frame)
        raise Stopped(received[0], KEPT)

    # the handlers before it come back after fit(), which leaves Ray Train's for SIGINT
    with stop_signals_handled(stop) as installed:
        try:
            return trainer.fit()
        except SystemExit:  # how Ray Train's SIGINT handler leaves, once the run is aborted
            if not installed:
                raise
            raise Stopped(received[0] if received else signal.SIGINT, KEPT) from None


def _resources_withdrawn() -> bool:
    """Whether the placement group this process runs in is gone: a Tune trial that the sweep
    stops (ASHA, or the sweep's own stop) loses its resources, and with them its Train run,
    before its process is ended. Such a run was stopped, not failed."""
    group = ray.util.get_current_placement_group()
    return group is not None and ray.util.placement_group_table(group).get("state") == "REMOVED"


def _end_run(config: TrainConfig, tracking: TrackingOptions, status: str) -> None:
    """End the MLflow run FAILED or KILLED: its workers, stopped or killed with their group,
    may not have said so."""
    if tracking.enabled and tracking.run_id:
        attach_run(config, tracking).end(status)
