"""Helpers shared by the tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from depthhints.config import TrainConfig

REPO = Path(__file__).resolve().parent.parent
UNINSTALLED = ("ray", "mlflow", "pandas", "scipy")  # absent from a bare GPU machine

# sitecustomize: the packages look uninstalled. A None entry in sys.modules makes `import ray`
# raise ModuleNotFoundError and importlib.util.find_spec("ray") return None, as for a missing
# package (torch probes some of them with find_spec; a finder that raised would break that).
BLOCKER = """
import sys

for name in {names!r}:
    sys.modules[name] = None
"""


def tiny_config(tree: dict, tmp_path: Path, **changes) -> TrainConfig:
    """Stereo training (frames 0, s) at 64×192 from scratch on the session's synthetic drive."""
    values = dict(
        data_path=str(tree["root"]),
        split=str(tree["split"]),
        log_dir=str(tmp_path / "runs"),
        height=64,
        width=192,
        batch_size=2,
        num_epochs=2,
        weights_init="scratch",
        num_workers=0,
        use_stereo=True,
        frame_ids=[0],
        log_frequency=1000,
    )
    return TrainConfig(**{**values, **changes})


def run_on_a_bare_machine(
    args: list[str], tmp_path: Path, timeout: float
) -> subprocess.CompletedProcess:
    """``python *args`` in the repository with Ray, MLflow, pandas and scipy unimportable, as on
    a GPU machine that has only torch and its friends."""
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(BLOCKER.format(names=UNINSTALLED))
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": f"{shim}{os.pathsep}{REPO}"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
