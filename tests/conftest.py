"""Test-wide settings and shared fixtures."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from depthhints.data import synthetic as syn
from depthhints.data.hint_store import NpyHintStore
from depthhints.data.kitti import KittiRawLayout, SplitItem, write_split_file
from depthhints.hints.compute import FrameJob, HintConfig, compute_frame
from depthhints.hints.sgm import make_matchers

REPO = Path(__file__).resolve().parent.parent


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--cluster",
        action="store_true",
        help="run tests/cluster: the cluster launcher on SSH hosts made here (make test-cluster)",
    )


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """``tests/cluster`` needs root and takes minutes: only ``--cluster`` collects it."""
    if collection_path == REPO / "tests" / "cluster" and not config.getoption("--cluster"):
        return True
    return None


TRAIN_FRAMES = (2, 3)

# Ray runs its worker processes at niceness 15. Beside other CPU-bound work (a loaded CI machine)
# they would get a few per cent of a core and every Ray test would crawl into its timeouts; at
# the suite's own niceness they share the machine like the rest of it.
os.environ.setdefault("RAY_worker_niceness", "0")

# The tests use tiny tensors: one intra-op thread avoids OpenMP spin-waiting on the 2-core CI
# machine (measured: tests/test_step.py 55 s with 2 threads, 15 s with 1).
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tree(tmp_path_factory) -> dict:
    """A 6-frame synthetic drive, a 2-frame split (both sides) and SGM hints for it."""
    base = tmp_path_factory.mktemp("train")
    root = base / "kitti"
    syn.generate_dataset(root, syn.DatasetConfig(frames_per_drive=6, width=416, height=128, seed=5))
    folder = syn.DatasetConfig().drives()[0].folder
    items = [SplitItem(folder, f, s) for f in TRAIN_FRAMES for s in "lr"]
    split = base / "split"
    split.mkdir()
    write_split_file(split / "train_files.txt", items)
    write_split_file(split / "val_files.txt", items[:2])
    hint_config = HintConfig(height=128, width=416)
    store = NpyHintStore(base / "hints", hint_config.manifest("npy", root))
    matchers = make_matchers(hint_config.matchers)
    layout = KittiRawLayout(root)
    for frame in TRAIN_FRAMES:
        result = compute_frame(
            FrameJob(folder, frame, ("l", "r")), layout, hint_config, matchers, store
        )
        assert not result.failures
    return {"root": root, "split": split, "hints": base / "hints", "items": items}


@pytest.fixture(scope="session", autouse=True)
def mlflow_store(tmp_path_factory) -> str:
    """One embedded MLflow store for every training in the suite (trainings track by default)."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        yield uri


@pytest.fixture(scope="session")
def smoke_table(tmp_path_factory) -> dict:
    """``experiments/reproduce_table.py --preset smoke`` run once, in its own MLflow store:
    two rows trained on a synthetic drive, evaluated, tabulated and tracked (about a minute)."""
    out = tmp_path_factory.mktemp("smoke")
    uri = f"sqlite:///{out / 'mlflow.db'}"
    done = subprocess.run(
        [sys.executable, "experiments/reproduce_table.py", "--preset", "smoke", "--out", str(out)],
        cwd=REPO,
        env={**os.environ, "MLFLOW_TRACKING_URI": uri},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return {"out": out, "uri": uri, "stdout": done.stdout}
