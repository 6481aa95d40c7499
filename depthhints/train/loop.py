"""Single-process training loop (CPU or CUDA): Adam + StepLR as the reference, exact resume.

The loop knows steps, epochs and hooks; the method itself lives in ``train.step``/``losses``.
Schedule (SPEC §4.8): one Adam over every parameter, ``StepLR(scheduler_step_size, 0.1)`` stepped
at the *start* of each epoch, so the first decay lands on epoch ``scheduler_step_size − 1``.
Logging follows the reference's rule (batches 0, f, 2f, ... of the first 2000 steps, then every
2000 steps); each log event also evaluates one validation batch.
"""

from __future__ import annotations

import json
import random
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import default_collate
from tqdm import tqdm

from depthhints.config import TrainConfig
from depthhints.errors import ConfigError
from depthhints.evaluate import monitoring_metrics
from depthhints.train.checkpoint import (
    STATE_FILE,
    TrainState,
    load_state,
    models_dir,
    save_options,
    save_state,
    save_weights,
)
from depthhints.train.data import build_datasets, epoch_order, make_loader, steps_per_epoch
from depthhints.train.model import build_model
from depthhints.train.step import (
    StepOutput,
    batch_to_device,
    eval_step_outputs,
    train_step,
    train_step_outputs,
)

LOG_EVERY_LATE = 2000
"""After this many steps the reference logs only every ``LOG_EVERY_LATE`` steps."""

LogHook = Callable[[str, dict[str, float], int], None]
"""Called on rank 0 as ``hook(phase, metrics, step)``, phase "train" or "val", at log events."""
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


class LocalSession:
    """Single process: the full state lives in ``<run_dir>/models/state.pt``.

    The Ray Train session (``depthhints.train.trainer``) has the same four members, so one loop
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
        write_state(self.state_path)


def fit(
    config: TrainConfig,
    resume: bool | str | Path = False,
    hooks: Sequence[LogHook] = (),
    progress: bool = True,
) -> TrainResult:
    """Train in this process; ``resume`` = True continues from ``<run_dir>/models/state.pt``."""
    session = LocalSession(config)
    state = None
    if resume:
        state = session.state_path if resume is True else Path(resume)
    return run_loop(config, session, state, hooks, progress)


def run_loop(
    config: TrainConfig,
    session: LocalSession,
    state: Path | None = None,
    hooks: Sequence[LogHook] = (),
    progress: bool = True,
    step_hooks: Sequence[StepHook] = (),
) -> TrainResult:
    """The training loop on one rank of ``session``, continuing from ``state`` when given.

    Each rank trains on its slice of the epoch's order; rank 0 alone logs, evaluates and writes
    the published weights.
    """
    device, rank, world_size = session.device, session.rank, session.world_size
    seed_everything(config.seed)
    train_set, val_set = build_datasets(config)
    model = build_model(config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), config.learning_rate)
    scheduler = make_scheduler(optimizer, config)
    position = load_state(state, model, optimizer, scheduler) if state else TrainState()
    net = model  # the unwrapped model: checkpoints, validation
    model = session.prepare_model(model)
    lead = rank == 0
    if lead:
        save_options(config)

    result = TrainResult(run_dir=config.run_dir)
    per_epoch = steps_per_epoch(len(train_set), config.batch_size, world_size)
    metrics_log = config.run_dir / "metrics.jsonl"
    start = time.perf_counter()
    first_step = position.step

    def log(phase: str, metrics: dict[str, float], step: int) -> None:
        with metrics_log.open("a") as handle:
            handle.write(json.dumps({"phase": phase, "step": step, **metrics}) + "\n")
        for hook in hooks:
            hook(phase, metrics, step)

    def checkpoint(metrics: dict[str, float]) -> None:
        session.save(
            lambda path: save_state(path, net, optimizer, scheduler, position, config), metrics
        )

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
        bar = tqdm(
            loader,
            total=per_epoch,
            initial=position.batch_in_epoch,
            desc=f"epoch {epoch}",
            disable=not (progress and lead),
            leave=False,
        )
        losses: dict[str, float] = {}
        for batch_idx, batch in enumerate(bar, start=position.batch_in_epoch):
            step = position.step
            batch = batch_to_device(batch, device)
            lr = optimizer.param_groups[0]["lr"]
            if lead and should_log(batch_idx, step, config.log_frequency):
                out = train_step_outputs(model, optimizer, batch, config)
                losses = out.scalars
                done = step - first_step + 1
                rate = done * config.batch_size * world_size / (time.perf_counter() - start)
                bar.write(
                    f"epoch {epoch:>3} | batch {batch_idx:>6} | examples/s {rate:6.2f} | "
                    f"loss {losses['loss']:.5f} | lr {lr:.1e}"
                )
                extra = _depth_metrics(batch, out)
                log("train", {"lr": lr, "examples_per_second": rate, **losses, **extra}, step)
                log("val", _validate(net, val_set, step, config, device), step)
            else:
                losses = train_step(model, optimizer, batch, config)
            result.history.append({"step": step, "epoch": epoch, "lr": lr, **losses})
            for step_hook in step_hooks:
                step_hook(step, net)
            position.step += 1
            position.batch_in_epoch = batch_idx + 1
            if config.checkpoint_steps and position.step % config.checkpoint_steps == 0:
                checkpoint({"epoch": epoch, "step": position.step, **losses})
        position.epoch, position.batch_in_epoch = epoch + 1, 0
        if lead and ((epoch + 1) % config.save_frequency == 0 or epoch + 1 == config.num_epochs):
            result.weights.append(save_weights(config, net, optimizer, epoch))
        checkpoint({"epoch": epoch, "step": position.step, **losses})
    return result


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
    batch = batch_to_device(batch, device)
    out = eval_step_outputs(model, batch, config)
    return {**out.scalars, **_depth_metrics(batch, out)}
