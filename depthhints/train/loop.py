"""Single-process training loop (CPU or CUDA): Adam + StepLR as the reference, exact resume.

The loop knows steps, epochs and hooks; the method itself lives in ``train.step``/``losses``.
Schedule (docs/method.md#optimisation): one Adam over every parameter,
``StepLR(scheduler_step_size, 0.1)`` stepped at the *start* of each epoch, so the first decay
lands on epoch ``scheduler_step_size − 1``.
Logging follows the reference's rule (batches 0, f, 2f, ... of the first 2000 steps, then every
2000 steps); each log event also evaluates one validation batch. After every epoch rank 0 logs
an image grid and, with ``eval_split_file``, the Eigen-protocol metrics, which also go into the
epoch's checkpoint report (``train.reporting`` says what goes where).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import default_collate
from tqdm import tqdm

from depthhints.config import TrainConfig
from depthhints.errors import ConfigError, Stopped
from depthhints.evaluate import EvalResult, monitoring_metrics
from depthhints.tracking import NullTracker, Tracker
from depthhints.train.checkpoint import (
    PREVIOUS_STATE_FILE,
    STATE_FILE,
    TrainState,
    load_state,
    models_dir,
    newest_readable,
    save_options,
    save_state,
    save_weights,
)
from depthhints.train.data import (
    build_datasets,
    device_batch,
    epoch_order,
    make_loader,
    steps_per_epoch,
)
from depthhints.train.model import build_model
from depthhints.train.reporting import (
    LogHook,
    RunReporter,
    TrackingOptions,
    describe_run,
    open_run,
    training_grid,
)
from depthhints.train.step import (
    StepOutput,
    eval_step_outputs,
    train_step_outputs,
    train_step_tensors,
)
from depthhints.train.validation import EigenValidator

LOG_EVERY_LATE = 2000
"""After this many steps the reference logs only every ``LOG_EVERY_LATE`` steps."""

StepHook = Callable[[int, torch.nn.Module], None]
"""Called on every rank as ``hook(step, model)`` after each optimisation step."""


def select_device(name: str) -> torch.device:
    """``auto``: CUDA when visible, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device='cuda' but no CUDA device is visible; use device='cpu' or 'auto'")
    return torch.device(name)


def should_log(batch_idx: int, step: int, log_frequency: int) -> bool:
    """The reference's rule: early batches every ``log_frequency``, then every 2000 steps."""
    early = batch_idx % log_frequency == 0 and step < LOG_EVERY_LATE
    return early or step % LOG_EVERY_LATE == 0


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class TrainResult:
    run_dir: Path
    weights: list[Path] = field(default_factory=list)
    history: list[dict[str, float]] = field(default_factory=list)
    """One entry per step run in this call: step, epoch, lr and every loss scalar."""


def make_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig
) -> torch.optim.lr_scheduler.StepLR:
    return torch.optim.lr_scheduler.StepLR(optimizer, config.scheduler_step_size, 0.1)


def _step_scheduler(scheduler: torch.optim.lr_scheduler.LRScheduler) -> None:
    # The reference steps the scheduler before the epoch's optimizer steps; the effective
    # schedule is the same (it counts epochs), so PyTorch's call-order warning is noise here.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step")
        scheduler.step()


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""Ctrl-C, and what ``timeout`` and job schedulers send."""

SignalHandler = Callable[[int, object], None]


@contextlib.contextmanager
def stop_signals_handled(handler: SignalHandler) -> Iterator[bool]:
    """``handler`` answers :data:`STOP_SIGNALS` in this block, the previous handlers after it;
    only in the main thread (where Python delivers signals): yields whether it was installed."""
    if threading.current_thread() is not threading.main_thread():
        yield False
        return
    previous = {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}
    try:
        yield True
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


class StopSignals:
    """SIGINT (Ctrl-C) and SIGTERM (``timeout``, job schedulers) while :meth:`installed`.

    While the loop runs (it sets :attr:`defer`) the first signal is only recorded: the loop
    stops after the step in progress, saves the state and raises :class:`Stopped`. Outside it,
    or for a second signal, :class:`Stopped` is raised at once (the last saved state stays).
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self.defer = False

    @contextlib.contextmanager
    def installed(self) -> Iterator[StopSignals]:
        """Handle the signals (in the main thread; elsewhere Python delivers none)."""
        with stop_signals_handled(self._handle):
            yield self

    def _handle(self, signum: int, frame: object) -> None:
        first = self.received is None
        self.received = self.received or signum
        if not (first and self.defer):
            raise Stopped(self.received)


class LocalSession:
    """Single process: the full state lives in ``<run_dir>/models/state.pt`` (the one before
    it in ``state.previous.pt``).

    The Ray Train session (``depthhints.train.trainer``) has the same members, so one loop
    serves both.
    """

    rank = 0
    world_size = 1

    def __init__(self, config: TrainConfig) -> None:
        self.device = select_device(config.device)
        self.state_path = models_dir(config) / STATE_FILE

    def prepare_model(self, model: torch.nn.Module) -> torch.nn.Module:
        return model

    def save(self, write_state: Callable[[Path], None], metrics: dict[str, float]) -> None:
        if self.state_path.is_file():
            os.replace(self.state_path, self.previous_state_path)
        write_state(self.state_path)

    @property
    def previous_state_path(self) -> Path:
        return self.state_path.with_name(PREVIOUS_STATE_FILE)

    def progress_bar(self, total: int, initial: int, enabled: bool) -> tqdm:
        return tqdm(total=total, initial=initial, unit="step", disable=not enabled)

    def write(self, text: str) -> None:
        tqdm.write(text)


def fit(
    config: TrainConfig,
    resume: bool | str | Path = False,
    hooks: Sequence[LogHook] = (),
    progress: bool = True,
    tracking: TrackingOptions | None = None,
    announce: Callable[[str], None] | None = None,
    stop: StopSignals | None = None,
) -> TrainResult:
    """Train in this process; ``resume`` = True continues from ``<run_dir>/models/state.pt``
    (or the previous state when that one is unreadable), a path from that file.

    The MLflow run (``tracking``, default: the embedded store under ``log_dir``) ends FINISHED,
    or FAILED/KILLED when training raises; a resumed training continues its run. ``announce``
    receives a line saying where that run lives and, on resume, the step it continues from.
    With ``stop`` installed, a signal stops training after the step in progress, with the
    state saved (:class:`StopSignals`).
    """
    session = LocalSession(config)
    state = None
    if resume:
        candidates = [session.state_path, session.previous_state_path]
        state = newest_readable(candidates if resume is True else [Path(resume)])
    tracking = tracking or TrackingOptions()
    with open_run(config, tracking, 1, resume=bool(resume)) as tracker:
        if announce:
            announce(describe_run(tracker, tracking.tracking_uri(config), tracking.experiment))
        return run_loop(
            config, session, state, hooks, progress, tracker=tracker, announce=announce, stop=stop
        )


def run_loop(
    config: TrainConfig,
    session: LocalSession,
    state: Path | None = None,
    hooks: Sequence[LogHook] = (),
    progress: bool = True,
    step_hooks: Sequence[StepHook] = (),
    tracker: Tracker | NullTracker | None = None,
    announce: Callable[[str], None] | None = None,
    stop: StopSignals | None = None,
) -> TrainResult:
    """The training loop on one rank of ``session``, continuing from ``state`` when given.

    Each rank trains on its slice of the epoch's order; rank 0 alone logs (to ``tracker`` too),
    evaluates and writes the published weights. ``announce``: where a resumed run continues.
    ``stop``: signals that end the loop after a step, with the state saved (``LocalSession``).
    """
    device, rank, world_size = session.device, session.rank, session.world_size
    seed_everything(config.seed)
    train_set, val_set = build_datasets(config)
    model = build_model(config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), config.learning_rate)
    scheduler = make_scheduler(optimizer, config)
    position = load_state(state, model, optimizer, scheduler) if state else TrainState()
    if state and announce:
        announce(
            f"resuming at step {position.step} (epoch {position.epoch}, batch "
            f"{position.batch_in_epoch}) from {state}"
        )
    net = model  # the unwrapped model: checkpoints, validation
    model = session.prepare_model(model)
    lead = rank == 0
    reporter = RunReporter(config, tracker or NullTracker(), hooks) if lead else None
    validator = EigenValidator(config) if lead and config.eval_split_file else None
    if lead:
        save_options(config)

    result = TrainResult(run_dir=config.run_dir)
    per_epoch = steps_per_epoch(len(train_set), config.batch_size, world_size)
    remaining = (config.num_epochs - position.epoch) * per_epoch - position.batch_in_epoch
    bar = session.progress_bar(position.step + remaining, position.step, progress and lead)
    start = time.perf_counter()
    first_step = position.step

    def checkpoint(metrics: dict[str, float]) -> None:
        session.save(
            lambda path: save_state(path, net, optimizer, scheduler, position, config), metrics
        )

    def stopped(signum: int) -> Stopped:
        bar.close()
        return Stopped(signum, f"at step {position.step} (epoch {position.epoch}), state saved")

    stop = stop or StopSignals()  # one never installed receives nothing
    stop.defer = True  # a signal stops the loop between steps, where the state is whole
    for epoch in range(position.epoch, config.num_epochs):
        if position.batch_in_epoch == 0:
            _step_scheduler(scheduler)
        train_set.set_epoch(epoch)
        order = epoch_order(len(train_set), config.seed, epoch, True, rank, world_size)
        loader = make_loader(
            train_set,
            order,
            config.batch_size,
            config.num_workers,
            skip_batches=position.batch_in_epoch,
            pin_memory=device.type == "cuda",
        )
        model.train()
        bar.set_description(f"epoch {epoch}/{config.num_epochs}")
        losses: dict[str, float] = {}
        pending = PendingLosses(result.history)
        for batch_idx, batch in enumerate(loader, start=position.batch_in_epoch):
            step = position.step
            batch = device_batch(train_set, batch, device)
            lr = optimizer.param_groups[0]["lr"]
            if reporter and should_log(batch_idx, step, config.log_frequency):
                out = train_step_outputs(model, optimizer, batch, config)
                losses = out.scalars
                per_worker = (step - first_step + 1) * config.batch_size
                per_worker /= time.perf_counter() - start
                session.write(
                    f"epoch {epoch:>3} | batch {batch_idx:>6} | images/s "
                    f"{per_worker * world_size:6.2f} | loss {losses['loss']:.5f} | lr {lr:.1e}"
                )
                rates = {
                    "images_per_second": per_worker * world_size,
                    "images_per_second_per_worker": per_worker,
                }
                extra = _depth_metrics(batch, out)
                reporter.log("train", {"lr": lr, **rates, **losses, **extra}, step)
                with _monitoring_rng(device):
                    reporter.log("val", _validate(net, val_set, step, config, device), step)
                scalars = losses
            else:
                scalars = train_step_tensors(model, optimizer, batch, config)
            pending.add({"step": step, "epoch": epoch, "lr": lr}, scalars)
            for step_hook in step_hooks:
                step_hook(step, net)
            position.step += 1
            position.batch_in_epoch = batch_idx + 1
            bar.update(1)
            due = bool(config.checkpoint_steps) and position.step % config.checkpoint_steps == 0
            if due or stop.received:
                losses = pending.flush()
                checkpoint({"epoch": epoch, "step": position.step, **losses})
            if stop.received:
                raise stopped(stop.received)
        losses = pending.flush() or losses
        position.epoch, position.batch_in_epoch = epoch + 1, 0
        report = {"epoch": epoch, "step": position.step, **losses}
        if reporter:
            if (epoch + 1) % config.save_frequency == 0 or epoch + 1 == config.num_epochs:
                result.weights.append(save_weights(config, net, optimizer, epoch))
            with _monitoring_rng(device):
                evaluation = validator(net, device) if validator else None
                grid = _epoch_grid(net, val_set, config, device) if reporter.tracking else None
            reporter.epoch_end(epoch, position.step, grid, evaluation)
            report.update(_eval_report(evaluation))
        checkpoint(report)
        if stop.received:
            raise stopped(stop.received)
    stop.defer = False
    bar.close()
    if reporter:
        reporter.finish(result.weights[-1] if result.weights else None)
    return result


class PendingLosses:
    """Each step's losses, kept on the device until they are needed, then fetched in one
    transfer: fetching them every step would make the host wait for the device once a step."""

    LIMIT = 100

    def __init__(self, history: list[dict[str, float]]) -> None:
        self.history = history
        self.waiting: list[tuple[dict[str, float], dict]] = []

    def add(self, entry: dict[str, float], losses: dict) -> None:
        """Record ``entry`` (step, epoch, lr) with its losses (floats or 0-d tensors)."""
        self.waiting.append((entry, losses))
        if len(self.waiting) >= self.LIMIT:
            self.flush()

    def flush(self) -> dict[str, float]:
        """Append the waiting steps to the history; the last step's losses as floats."""
        tensors = [v for _, losses in self.waiting for v in losses.values() if _is_tensor(v)]
        numbers = iter(torch.stack([t.float() for t in tensors]).tolist() if tensors else [])
        last: dict[str, float] = {}
        for entry, losses in self.waiting:
            last = {k: next(numbers) if _is_tensor(v) else v for k, v in losses.items()}
            self.history.append({**entry, **last})
        self.waiting.clear()
        return last


def _is_tensor(value: object) -> bool:
    return isinstance(value, torch.Tensor)


def _monitoring_rng(device: torch.device) -> contextlib.AbstractContextManager:
    """Random numbers drawn by monitoring (validation, grids, evaluation: rank 0 only) come from
    a fork of the RNG, so every rank's training stream stays the same and the RNG state that
    rank 0 checkpoints resumes every rank exactly."""
    return torch.random.fork_rng(devices=[device] if device.type == "cuda" else [])


def _eval_report(evaluation: EvalResult | None) -> dict[str, float]:
    return {f"eval/{k}": v for k, v in evaluation.metrics.items()} if evaluation else {}


def _epoch_grid(
    model: torch.nn.Module,
    val_set: torch.utils.data.Dataset,
    config: TrainConfig,
    device: torch.device,
) -> np.ndarray:
    """The image grid of the first validation images (the same ones every epoch)."""
    batch = default_collate([val_set[i] for i in range(min(4, len(val_set)))])
    batch = device_batch(val_set, batch, device)
    out = eval_step_outputs(model, batch, config)
    return training_grid(batch, out.outputs, out.masks)


def _depth_metrics(batch: dict, out: StepOutput) -> dict[str, float]:
    if "depth_gt" not in batch:
        return {}
    return monitoring_metrics(out.outputs[("depth", 0, 0)], batch["depth_gt"])


def _validate(
    model: torch.nn.Module,
    val_set: torch.utils.data.Dataset,
    step: int,
    config: TrainConfig,
    device: torch.device,
) -> dict[str, float]:
    """Losses on one validation batch; successive log events walk through the val split."""
    size = min(config.batch_size, len(val_set))
    first = (step // config.log_frequency) * size
    batch = default_collate([val_set[(first + i) % len(val_set)] for i in range(size)])
    batch = device_batch(val_set, batch, device)
    out = eval_step_outputs(model, batch, config)
    return {**out.scalars, **_depth_metrics(batch, out)}
