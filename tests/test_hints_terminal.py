"""What ``depthhints hints`` prints: its own lines and progress, none of Ray's; Ray's output goes
to a log file beside the store (never in it), whose path it names once; ``--verbose`` brings
Ray's output back to the terminal."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from depthhints.data import synthetic as syn
from depthhints.data.kitti import read_split_file, write_split_file
from hints_worker.actors import ray_log_path
from tests.faults.drivers import own_ray_env

pytestmark = pytest.mark.slow

RAY_LINES = (  # what Ray prints on its own when a driver starts a cluster
    "Token authentication",
    "Started a local Ray instance",
    "View the dashboard",
    "worker.py:",
    "(raylet)",
    "pid=",
)


@pytest.fixture(scope="module")
def drive(tmp_path_factory) -> tuple[Path, Path]:
    """A 4-frame synthetic drive at 192×64 and a split file of all its images."""
    root = tmp_path_factory.mktemp("drive")
    splits = syn.generate_dataset(root, syn.DatasetConfig(frames_per_drive=4, width=192, height=64))
    items = [item for part in ("train", "val", "test") for item in read_split_file(splits[part])]
    split = root / "all_files.txt"
    write_split_file(split, items)
    return root, split


def run_hints(root: Path, split: Path, out: Path, *extra: str) -> str:
    """``depthhints hints`` with a Ray cluster of its own; its stdout and stderr."""
    ray_tmp = tempfile.mkdtemp(prefix="dh-ray-", dir="/tmp")
    command = [
        sys.executable, "-m", "depthhints.cli", "hints", "--data-path", str(root),
        "--split", str(split), "--out", str(out), "--height", "64", "--width", "192",
        "--workers", "1", *extra,
    ]  # fmt: skip
    try:
        done = subprocess.run(
            command, env=own_ray_env(ray_tmp), capture_output=True, text=True, timeout=300
        )
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    terminal = done.stdout + done.stderr
    assert done.returncode == 0, terminal
    return terminal


def test_the_terminal_holds_no_ray_lines_and_names_the_ray_log(drive, tmp_path):
    root, split = drive
    out = tmp_path / "hints"
    terminal = run_hints(root, split, out)

    log = ray_log_path(out)
    assert log == tmp_path / "hints.ray.log"  # beside the store: its folder holds the store only
    assert terminal.count(f"Ray's own output: {log}") == 1
    assert "hints written" in terminal
    assert not [line for line in terminal.splitlines() if any(m in line for m in RAY_LINES)]
    assert "\x1b[" not in terminal  # no colour codes in a file
    assert "Started a local Ray instance" in log.read_text()
    assert not [path for path in out.rglob("*") if "log" in path.name]


def test_verbose_brings_rays_output_back(drive, tmp_path):
    root, split = drive
    out = tmp_path / "hints"
    terminal = run_hints(root, split, out, "--verbose")

    assert "Started a local Ray instance" in terminal
    assert "Ray's own output" not in terminal and not ray_log_path(out).exists()
    assert "hints written" in terminal
