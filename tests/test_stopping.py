"""Stopping a training run: Ctrl-C (SIGINT) and SIGTERM (``timeout``, job schedulers) save the
state, end the MLflow run KILLED, print one line saying how to resume, no traceback, and exit
130 / 143; ``--resume`` says which step it continues from, and training then finishes."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from depthhints.cli import build_parser, main, resume_command
from depthhints.errors import Stopped
from depthhints.train.loop import StopSignals, fit
from tests.helpers import REPO, tiny_config

RESUMING = re.compile(r"resuming at step (\d+) \(epoch (\d+), batch (\d+)\)")
RAY_RESUMING = re.compile(r"resuming from the checkpoint saved at step (\d+)")


def test_a_signal_while_deferred_is_recorded_and_a_second_one_stops_at_once():
    before = signal.getsignal(signal.SIGTERM)
    with StopSignals().installed() as stop:
        stop.defer = True
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.received == signal.SIGTERM  # recorded: the loop stops after its step
        with pytest.raises(Stopped) as second:
            os.kill(os.getpid(), signal.SIGINT)
        assert second.value.signum == signal.SIGTERM and second.value.exit_code == 143
    assert signal.getsignal(signal.SIGTERM) is before
    with StopSignals().installed(), pytest.raises(Stopped) as outside:  # not deferred: at once
        os.kill(os.getpid(), signal.SIGINT)
    assert outside.value.exit_code == 130 and str(outside.value) == "stopped by SIGINT"


def test_the_resume_command_is_the_same_command_with_a_plain_resume():
    argv = ["train", "--config", "my run.yaml", "--resume", "old/state.pt", "--num_epochs", "3"]
    args = build_parser().parse_args(argv)
    assert resume_command(argv, args) == (
        "depthhints train --config 'my run.yaml' --num_epochs 3 --resume"
    )
    argv = ["train", "--model_name", "m", "--resume=old.pt"]
    assert resume_command(argv, build_parser().parse_args(argv)).endswith("m --resume")
    argv = ["train", "--resume", "--workers", "2"]
    assert resume_command(argv, build_parser().parse_args(argv)) == (
        "depthhints train --workers 2 --resume"
    )


def test_main_prints_one_line_and_exits_with_the_signal_code(monkeypatch, capsys):
    def stopped(args):
        raise Stopped(signal.SIGTERM, "at step 3 (epoch 1), state saved")

    monkeypatch.setattr("depthhints.cli.train.cmd_train", stopped)
    assert main(["train", "--model_name", "m"]) == 143
    err = capsys.readouterr().err
    assert err == (
        "depthhints: stopped by SIGTERM at step 3 (epoch 1), state saved; resume with: "
        "depthhints train --model_name m --resume\n"
    )


@pytest.mark.slow
def test_a_signal_mid_step_stops_after_it_with_a_state_that_resumes_exactly(tree, tmp_path):
    config = tiny_config(tree, tmp_path, num_epochs=2, log_frequency=1)
    reference = fit(config.replace(model_name="whole"), progress=False)

    def terminate_during_step_1(phase: str, metrics: dict, step: int) -> None:
        if (phase, step) == ("train", 1):  # the step's update is done, its bookkeeping not
            os.kill(os.getpid(), signal.SIGTERM)

    stopped = config.replace(model_name="cut")
    with StopSignals().installed() as stop, pytest.raises(Stopped) as raised:
        fit(stopped, hooks=[terminate_during_step_1], progress=False, stop=stop)
    assert str(raised.value) == "stopped by SIGTERM at step 2 (epoch 0), state saved"
    uri = os.environ["MLFLOW_TRACKING_URI"]  # the suite's store
    assert _run_status(uri, stopped.run_dir) == "KILLED"
    resumed = fit(stopped, resume=True, progress=False)
    assert resumed.history == reference.history[2:]  # the uninterrupted run's losses
    assert _run_status(uri, stopped.run_dir) == "FINISHED"


# ----------------------------------------------------------------------------- end to end
def _start(command: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "depthhints.cli", *command],
        cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"},
        stdout=log.open("w"),
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(ready: Callable[[], bool], process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if process.poll() is not None:
            pytest.fail(f"training ended before it was stopped: {process.stderr.read()}")
        time.sleep(0.1)
    process.kill()
    pytest.fail(f"training not under way within {timeout} s")


def _first_step_logged(run_dir: Path) -> Callable[[], bool]:
    metrics = run_dir / "metrics.jsonl"
    return lambda: metrics.is_file() and '"phase": "train"' in metrics.read_text()


def _stop(
    tmp_path: Path, command: list[str], ready: Callable[[], bool], signum: int
) -> tuple[str, str]:
    """Start ``command``, send ``signum`` once it is ``ready``; (stderr, the resume command it
    printed), after checking what every stopped run must show."""
    process = _start(command, tmp_path / "first.out")
    try:
        _wait_for(ready, process, timeout=300)
        process.send_signal(signum)
        _, err = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 128 + signum, err
    assert "Traceback" not in err, err
    (line,) = [line for line in err.splitlines() if "--resume" in line]
    assert line.startswith(f"depthhints: stopped by {signal.Signals(signum).name}")
    return err, line.split("resume with: ")[1]


def _run_status(uri: str, run_dir: Path) -> str:
    from mlflow import MlflowClient

    run_id = json.loads((run_dir / "mlflow_run.json").read_text())["run_id"]
    return MlflowClient(uri).get_run(run_id).info.status


def _resume(tmp_path: Path, printed: str, *more: str) -> str:
    """Run the printed resume command (with ``more`` flags); its stdout."""
    program, *args = shlex.split(printed)
    assert program == "depthhints" and args[-1] == "--resume"
    process = _start([*args, *more], tmp_path / "resumed.out")
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    return (tmp_path / "resumed.out").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stopped_training_saves_its_state_ends_killed_and_resumes(tree, tmp_path, signum):
    config = tiny_config(tree, tmp_path, num_epochs=30, log_frequency=1)
    config.to_yaml(tmp_path / "train.yaml")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    command = ["train", "--config", str(tmp_path / "train.yaml"), "--tracking-uri", uri]
    ready = _first_step_logged(config.run_dir)
    err, printed = _stop(tmp_path, [*command, "--no-progress"], ready, signum)

    assert _run_status(uri, config.run_dir) == "KILLED"
    saved = torch.load(config.run_dir / "models" / "state.pt", weights_only=True)
    position = saved["train_state"]
    assert f"at step {position['step']} (epoch {position['epoch']})" in err
    assert printed.startswith(f"depthhints {shlex.join(command)}")

    out = _resume(tmp_path, printed, "--num_epochs", str(position["epoch"] + 2))
    (resumed,) = RESUMING.findall(out)
    assert resumed == tuple(str(position[k]) for k in ("step", "epoch", "batch_in_epoch"))
    assert "trained " in out  # the closing line: it ran to the end
    assert _run_status(uri, config.run_dir) == "FINISHED"


@pytest.mark.slow
def test_a_stopped_ray_train_run_ends_killed_and_resumes_from_its_checkpoint(tree, tmp_path):
    from ray.train import Result

    config = tiny_config(tree, tmp_path, num_epochs=30, log_frequency=1, checkpoint_steps=1)
    config.to_yaml(tmp_path / "train.yaml")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    command = ["train", "--config", str(tmp_path / "train.yaml"), "--tracking-uri", uri]
    command += ["--workers", "1"]
    ray_run = Path(config.log_dir) / "ray_results" / config.model_name

    def checkpointed() -> bool:
        try:
            return Result.from_path(ray_run).metrics is not None
        except Exception:  # no run folder yet, or its record half-written
            return False

    err, printed = _stop(tmp_path, command, checkpointed, signal.SIGTERM)
    assert "(its latest checkpoint stays)" in err
    assert _run_status(uri, config.run_dir) == "KILLED"

    step = Result.from_path(ray_run).metrics["step"]
    epochs = step // 2 + 2  # 2 steps an epoch: at least one more to train
    out = _resume(tmp_path, printed, "--num_epochs", str(epochs))
    assert RAY_RESUMING.findall(out) == [str(step)]
    assert f"finished at epoch {epochs - 1} step {2 * epochs}" in out
    assert _run_status(uri, config.run_dir) == "FINISHED"


@pytest.mark.slow
def test_a_stopped_sweep_ends_its_runs_killed_and_says_how_to_resume(tree, tmp_path):
    from mlflow import MlflowClient

    from depthhints.tune import sweep_run_file

    config = tiny_config(tree, tmp_path, num_epochs=30, log_frequency=1, model_name="sw")
    config.to_yaml(tmp_path / "train.yaml")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    command = ["sweep", "--config", str(tmp_path / "train.yaml"), "--tracking-uri", uri]
    command += ["--space", "seed=1,2", "--name", "sw"]

    def trial_logged() -> bool:
        return any(_first_step_logged(run)() for run in Path(config.log_dir).glob("sw_*"))

    _, printed = _stop(tmp_path, command, trial_logged, signal.SIGINT)
    assert printed == f"depthhints {shlex.join(command)} --resume"
    client = MlflowClient(uri)
    parent_id = json.loads(sweep_run_file(config.log_dir, "sw").read_text())["run_id"]
    parent = client.get_run(parent_id)
    trials = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert parent.info.status == "KILLED"
    assert trials and {trial.info.status for trial in trials} == {"KILLED"}


@pytest.mark.slow
def test_a_stopped_experiment_script_ends_killed_and_says_how_to_resume(tmp_path):
    from mlflow import MlflowClient

    from depthhints.tune import sweep_run_file

    out, uri = tmp_path / "table", f"sqlite:///{tmp_path / 'mlflow.db'}"
    script = ["experiments/reproduce_table.py", "--preset", "smoke", "--out", str(out)]
    script += ["--tracking-uri", uri, "--set", "num_epochs=30", "--set", "log_frequency=1"]
    process = subprocess.Popen(
        [sys.executable, *script],
        cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"},
        stdout=(tmp_path / "script.out").open("w"),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(lambda: any((out / "runs").glob("*/metrics.jsonl")), process, timeout=600)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 143, err
    assert "Traceback" not in err, err
    (line,) = [line for line in err.splitlines() if "--resume" in line]
    assert line.startswith("reproduce_table.py: stopped by SIGTERM")
    assert line.endswith(f"resume with: python {shlex.join(script)} --resume")
    parent_id = json.loads(sweep_run_file(out / "runs", "table_smoke").read_text())["run_id"]
    assert MlflowClient(uri).get_run(parent_id).info.status == "KILLED"
