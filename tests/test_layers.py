"""The import rules of docs/architecture.md, read from the source: layers only point down, no two
units import each other, the core imports neither Ray nor MLflow, nothing imports Ray's private
modules."""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterable
from pathlib import Path

import pytest

from tests.helpers import REPO

PACKAGES = ("depthhints", "hints_worker", "dashboards")
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "core",  # arrays, tensors and files: the method, its data and its hints
        (
            "depthhints",  # the package's own __init__: its version
            "depthhints.errors",
            "depthhints.paths",
            "depthhints.npz",
            "depthhints.config",
            "depthhints.geometry",
            "depthhints.losses",
            "depthhints.models",
            "depthhints.data",
            "depthhints.hints",
            "depthhints.evaluate",
            "depthhints.predict",
            "depthhints.export",
            "depthhints.visualize",
            "depthhints.plots",
            "depthhints.paper",
        ),
    ),
    (
        "orchestration",  # runs the core: processes, Ray, MLflow, experiments
        (
            "depthhints.probes",
            "depthhints.tracking",
            "depthhints.results",
            "depthhints.samples",
            "depthhints.train",
            "depthhints.tune",
            "depthhints.experiments",
            "depthhints.cluster_config",
            "depthhints.training_run",
            "depthhints.evaluation_run",
            "depthhints.hint_report",
            "depthhints.demo",
            "hints_worker",
        ),
    ),
    ("interface", ("dashboards", "depthhints.cli")),  # what users run and look at
)
CORE_MAY_NOT_IMPORT = ("ray", "mlflow")


def module_name(path: Path, root: Path = REPO) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, root: Path = REPO) -> set[str]:
    """Every module ``path`` imports, at any depth of its code (lazy imports too)."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def import_graph(root: Path = REPO) -> dict[str, set[str]]:
    """{module: the modules it imports} for every module of our packages."""
    files = [path for package in PACKAGES for path in sorted((root / package).rglob("*.py"))]
    return {module_name(path, root): imports(path, root) for path in files}


def unit(module: str) -> str | None:
    """The longest unit of LAYERS that ``module`` belongs to (None: first-party but unplaced,
    or not ours)."""
    units = [u for _, names in LAYERS for u in names if module == u or module.startswith(u + ".")]
    return max(units, key=len, default=None)


LAYER_OF = {u: index for index, (_, names) in enumerate(LAYERS) for u in names}


def violations(graph: dict[str, set[str]]) -> list[str]:
    """Every broken rule of ``graph``, as a sentence naming the modules."""
    found = []
    edges: set[tuple[str, str]] = set()
    for module, imported in sorted(graph.items()):
        source = unit(module)
        if source is None:
            found.append(f"{module}: in no layer; add it to LAYERS and docs/architecture.md")
            continue
        for target_module in sorted(imported):
            if target_module.split(".")[0] in CORE_MAY_NOT_IMPORT and LAYER_OF[source] == 0:
                found.append(f"{module} (core) imports {target_module}")
            if target_module.startswith("ray.") and any(
                part.startswith("_") for part in target_module.split(".")
            ):
                found.append(f"{module} imports Ray's private module {target_module}")
            target = unit(target_module)
            if target is None or target == source:
                continue
            if LAYER_OF[target] > LAYER_OF[source]:
                found.append(
                    f"{module} ({LAYERS[LAYER_OF[source]][0]}) imports {target_module} "
                    f"({LAYERS[LAYER_OF[target]][0]}): layers only point down"
                )
            edges.add((source, target))
    found += [f"units import each other: {' -> '.join(cycle)}" for cycle in _cycles(edges)]
    return found


def _cycles(edges: Iterable[tuple[str, str]]) -> list[list[str]]:
    """One cycle through each unit that is on one (depth-first search)."""
    graph: dict[str, set[str]] = {}
    for source, target in edges:
        graph.setdefault(source, set()).add(target)
    cycles, reported = [], set()
    for start in sorted(graph):
        stack = [(start, [start])]
        seen = set()
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph.get(node, ())):
                if nxt == start and not reported & set(path):
                    cycles.append([*path, start])
                    reported |= set(path)
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
    return cycles


def test_the_source_keeps_the_import_rules():
    assert violations(import_graph()) == []


def test_every_unit_exists():
    graph = import_graph()
    missing = [u for _, names in LAYERS for u in names if not any(unit(m) == u for m in graph)]
    assert missing == []


@pytest.mark.parametrize(
    ("module", "planted", "expected"),
    [
        ("depthhints.geometry", "depthhints.tune", "layers only point down"),
        ("depthhints.data.dataset", "hints_worker.actors", "layers only point down"),
        ("depthhints.experiments.runner", "dashboards.report", "layers only point down"),
        ("depthhints.losses", "ray", "(core) imports ray"),
        ("depthhints.train.trainer", "ray.train.v2._internal.execution", "private module"),
        ("hints_worker.node", "depthhints.experiments.ablation", "units import each other"),
        ("depthhints.data.kitti", "depthhints.hints.sgm", "units import each other"),
    ],
)
def test_a_planted_import_is_caught(module, planted, expected):
    graph = import_graph()
    graph[module] = graph[module] | {planted}
    assert any(expected in problem for problem in violations(graph)), violations(graph)


def test_a_new_module_must_be_placed():
    graph = {**import_graph(), "depthhints_extra.tool": set()}
    assert any("in no layer" in problem for problem in violations(graph))


def test_imports_are_resolved_relative_and_lazy(tmp_path):
    package = tmp_path / "depthhints" / "sub"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    source = package / "mod.py"
    source.write_text("from . import sibling\ndef f():\n    from ..other import thing\n")
    found = imports(source, tmp_path)
    assert {"depthhints.sub.sibling", "depthhints.other", "depthhints.other.thing"} <= found


def test_cycles_are_found_once_each():
    edges = {("a", "b"), ("b", "a"), ("c", "d"), ("d", "e"), ("e", "c"), ("f", "a")}
    cycles = _cycles(edges)
    assert sorted(cycle[0] for cycle in cycles) == ["a", "c"]
    assert all(cycle[0] == cycle[-1] for cycle in cycles)
    assert _cycles(itertools.pairwise("abcd")) == []
