"""The test tiers: ``make test`` runs every test, ``make test-fast`` those not marked slow. The fast
tier keeps the core's unit tests and leaves out the heavy ones: fault injection and Ray clusters."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"
FAST = "not slow"
CORE = (
    "test_config.py",
    "test_dataset.py",
    "test_evaluate.py",
    "test_geometry.py",
    "test_hint_store.py",
    "test_hints_core.py",
    "test_losses.py",
    "test_models.py",
)

# Loaded into the collecting pytest: the tests it selects, with every fixture each one uses.
PROBE = """
import json
import os


def pytest_collection_finish(session):
    with open(os.environ["TIERS_PROBE_OUT"], "w") as out:
        json.dump({item.nodeid: list(item.fixturenames) for item in session.items}, out)
"""


def make_rule(target: str) -> tuple[list[str], list[str]]:
    """The prerequisites and recipe lines of ``target`` in the Makefile."""
    lines = (REPO / "Makefile").read_text().splitlines()
    (start,) = [i for i, line in enumerate(lines) if line.startswith(f"{target}:")]
    prerequisites = lines[start].split(":", 1)[1].split("#", 1)[0].split()
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    return prerequisites, recipe


def starts_ray(node: ast.FunctionDef) -> bool:
    """Whether the function calls ``ray.init(...)`` or ``LocalCluster(...)``."""
    return any(
        isinstance(call, ast.Call) and ast.unparse(call.func) in ("ray.init", "LocalCluster")
        for call in ast.walk(node)
    )


def is_fixture(node: ast.FunctionDef) -> bool:
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if isinstance(target, ast.Attribute) and target.attr == "fixture":
            return True
    return False


def cluster_fixtures() -> dict[Path, set[str]]:
    """The fixtures that start a Ray cluster, by the file that defines them."""
    found: dict[Path, set[str]] = {}
    for path in TESTS.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        names = {
            node.name
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef) and is_fixture(node) and starts_ray(node)
        }
        if names:
            found[path.relative_to(REPO)] = names
    return found


def fast_tier(tmp_path: Path) -> dict[str, list[str]]:
    """The tests ``pytest -m "not slow"`` selects, each with the fixtures it uses."""
    (tmp_path / "tiers_probe.py").write_text(PROBE)
    out = tmp_path / "fast.json"
    command = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", FAST]
    command += ["-p", "no:cacheprovider", "-p", "tiers_probe"]
    env = {**os.environ, "TIERS_PROBE_OUT": str(out), "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(out.read_text())


def test_make_test_fast_lints_then_runs_what_is_not_marked_slow():
    prerequisites, recipe = make_rule("test-fast")
    assert "lint" in prerequisites
    assert recipe == [f'$(BIN)/python -m pytest -m "{FAST}"']
    prerequisites, recipe = make_rule("test")
    assert "lint" in prerequisites
    assert recipe == ["$(BIN)/python -m pytest"]  # the full suite, nothing deselected


def test_the_fast_tier_leaves_out_faults_and_ray_clusters_and_keeps_the_core(tmp_path):
    fast = fast_tier(tmp_path)
    files = {nodeid.split("::", 1)[0] for nodeid in fast}
    assert not [f for f in files if f.startswith("tests/faults/")]
    clusters = cluster_fixtures()
    assert clusters  # the scan still finds the suite's cluster fixtures
    for nodeid, fixtures in fast.items():
        path = Path(nodeid.split("::", 1)[0])
        visible = clusters.get(path, set())
        for folder in [path.parent, *path.parent.parents]:  # conftest fixtures reach below
            visible |= clusters.get(folder / "conftest.py", set())
        assert not visible & set(fixtures), f"{nodeid} starts a Ray cluster: mark it slow"
    for name in CORE:
        assert f"tests/{name}" in files, f"{name} has no test left in the fast tier"
