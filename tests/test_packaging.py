"""A non-editable install carries what the package reads at run time: row configs, split lists,
report templates."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile

import pytest

from depthhints.experiments import CONFIGS
from tests.helpers import REPO

NOT_PACKAGED = (".*", "build", "outputs", "tests", "docs", "bench", "*.egg-info", "__pycache__")


@pytest.mark.slow
def test_wheel_installs_and_reads_the_bundled_row_configs(tmp_path):
    source = tmp_path / "source"  # setuptools builds in the source tree: build a copy
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*NOT_PACKAGED))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(tmp_path / "dist"),
            str(source),
        ],
        cwd=source,
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = (tmp_path / "dist").glob("depthhints-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for config in CONFIGS.glob("*.yaml"):
        assert f"depthhints/experiments/configs/{config.name}" in names
    assert "depthhints/data/splits/eigen/test_files.txt" in names
    assert any(name.startswith("dashboards/templates/") for name in names)

    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    probe = (
        "import depthhints.experiments.reproduce as r; "
        f"assert r.__file__.startswith({str(site)!r}), r.__file__; "
        "print(len(r.row_configs(list(r.PAPER), True, {})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "10"
