"""The core (models, data, training loop, evaluation, prediction, hints) runs without Ray, MLflow
or the dashboards: a GPU machine may have only torch, torchvision, numpy, opencv, pillow,
pyarrow, pyyaml, tqdm and matplotlib."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from depthhints.data import synthetic as syn
from tests.helpers import BLOCKER, UNINSTALLED

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("ray", "mlflow", "dashboards")  # never imported by the core

# Trains one epoch through the Python API with tracking off, predicts with the weights, imports
# the rest of the core, then prints the heavy packages found in sys.modules.
TRAIN_AND_LIST = """
import json, sys

from depthhints.config import TrainConfig
from depthhints.train.loop import fit
from depthhints.train.reporting import TrackingOptions

config = TrainConfig(**json.loads(sys.argv[1]))
result = fit(config, progress=False, tracking=TrackingOptions(enabled=False))
assert result.weights, "no weights written"

import depthhints.data.synthetic
import depthhints.evaluate
import depthhints.hints.fusion
import depthhints.hints.sgm
import depthhints.data.hint_store
from depthhints.data.kitti import KittiRawLayout, load_image, read_split_file
from depthhints.models import load_depth_net
from depthhints.predict import predict_depth

item = read_split_file(f"{config.split}/train_files.txt")[0]
image = load_image(KittiRawLayout(config.data_path).image_path(item.folder, item.frame, item.side))
(depth,) = predict_depth(load_depth_net(result.weights[-1]), [image])
assert depth.shape == image.shape[:2], depth.shape

heavy = sys.argv[2].split(",")
print(json.dumps(sorted(m for m in sys.modules if m.partition(".")[0] in heavy)))
"""


def _env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join([*extra.pop("PYTHONPATH", "").split(os.pathsep), str(REPO)])
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path.strip(os.pathsep), **extra}


@pytest.fixture(scope="module")
def drive(tmp_path_factory) -> Path:
    """A 6-frame synthetic drive at 128×64 with its train/val/test split files."""
    root = tmp_path_factory.mktemp("light") / "kitti"
    syn.generate_dataset(root, syn.DatasetConfig(frames_per_drive=6, width=128, height=64))
    return root


@pytest.mark.slow
def test_training_and_inference_import_no_ray_mlflow_or_dashboards(drive, tmp_path):
    config = dict(
        data_path=str(drive),
        split=str(drive / "splits"),
        log_dir=str(tmp_path / "runs"),
        model_name="light",
        height=64,
        width=128,
        batch_size=2,
        num_epochs=1,
        weights_init="scratch",
        num_workers=0,
        use_stereo=True,
        frame_ids=[0],
        device="cpu",
    )
    done = subprocess.run(
        [sys.executable, "-c", TRAIN_AND_LIST, json.dumps(config), ",".join(HEAVY)],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.splitlines()[-1]) == []


@pytest.mark.slow
def test_cli_train_without_tracking_runs_without_ray_mlflow_pandas_scipy(drive, tmp_path):
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(BLOCKER.format(names=UNINSTALLED))
    env = _env(PYTHONPATH=str(shim))
    for name in UNINSTALLED:  # the shim is in effect
        probe = subprocess.run(
            [sys.executable, "-c", f"import {name}"], env=env, capture_output=True, text=True
        )
        assert probe.returncode != 0 and "ModuleNotFoundError" in probe.stderr, name
    runs = tmp_path / "runs"
    args = [
        "train",
        "--data_path",
        str(drive),
        "--split",
        str(drive / "splits"),
        "--log_dir",
        str(runs),
        "--model_name",
        "light",
        "--height",
        "64",
        "--width",
        "128",
        "--batch_size",
        "2",
        "--num_epochs",
        "1",
        "--weights_init",
        "scratch",
        "--use_stereo",
        "--frame_ids",
        "0",
        "--num_workers",
        "0",
        "--no-progress",
        "--no-tracking",
    ]
    done = subprocess.run(
        [sys.executable, "-m", "depthhints.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    weights = runs / "light" / "models" / "weights_0"
    assert (weights / "encoder.pth").is_file() and (weights / "depth.pth").is_file()
    assert not (runs / "mlflow.db").exists()
    # with tracking on, a missing MLflow is a one-line error naming the fix
    tracked = [a for a in args if a != "--no-tracking"]
    tracked[tracked.index("light")] = "tracked"
    refused = subprocess.run(
        [sys.executable, "-m", "depthhints.cli", *tracked],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert "Traceback" not in refused.stderr
    assert "MLflow is not installed" in refused.stderr and "--no-tracking" in refused.stderr
