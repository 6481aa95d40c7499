"""The ``depthhints`` command's help and shape: every option documented with its default, the
training options documented where TrainConfig declares them, and the package thin (small
command functions and modules; nothing below it imports it)."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path

from depthhints import cli
from depthhints.cli.arguments import CommandParser
from depthhints.config import TrainConfig, field_docs

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "depthhints" / "cli"
MAX_COMMAND_LINES = 30
MAX_FUNCTION_LINES = 50
MAX_MODULE_LINES = 200


# ------------------------------------------------------------------------------------ checkers
def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (commands,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(commands.choices)


def documented_actions(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    """The parser's arguments, less ``--help`` and hidden ones."""
    for action in parser._actions:
        if not isinstance(action, argparse._HelpAction) and action.help != argparse.SUPPRESS:
            yield action


def rendered_help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """The help of one argument as ``--help`` prints it, on one line."""
    formatter = parser.formatter_class(prog=parser.prog, width=100_000)
    formatter.add_argument(action)
    return " ".join(formatter.format_help().split())


def shown(default: object) -> str:
    return " ".join(map(str, default)) if isinstance(default, list | tuple) else str(default)


def help_problems(parser: argparse.ArgumentParser) -> list[str]:
    """Arguments without help, and options whose default the help does not show (flags, which
    are off unless given, and options without default excepted)."""
    problems = []
    for action in documented_actions(parser):
        name = action.option_strings[-1] if action.option_strings else action.dest
        has_default = action.option_strings and action.nargs != 0 and action.default is not None
        text = rendered_help(parser, action)
        if not (action.help or "").strip():
            problems.append(f"{parser.prog} {name}: no help")
        elif has_default and f"(default: {shown(action.default)}" not in text:
            problems.append(f"{parser.prog} {name}: default {action.default!r} not shown")
    return problems


def undocumented_fields(cls: type) -> set[str]:
    docs = field_docs(cls)
    return {f.name for f in dataclasses.fields(cls) if not docs.get(f.name, "").strip()}


def long_functions(source: str, names: set[str] | None, limit: int) -> list[str]:
    """Functions (those in ``names``; all for None) longer than ``limit`` lines."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef) and (names is None or node.name in names):
            length = node.end_lineno - node.lineno + 1
            if length > limit:
                found.append(f"{node.name}: {length} lines")
    return found


# ------------------------------------------------------------------------------------ tests
def test_every_option_of_every_command_has_help_and_shows_its_default():
    parser = cli.build_parser()
    commands = subcommands(parser)
    assert {"synth", "demo", "hints", "train", "evaluate", "ui", "check-cluster"} <= set(commands)
    problems = [p for command in commands.values() for p in help_problems(command)]
    assert problems == []


def test_every_training_option_is_documented_in_trainconfig_and_shown_with_its_default():
    assert undocumented_fields(TrainConfig) == set()
    for command in ("train", "sweep"):
        parser = subcommands(cli.build_parser())[command]
        options = {action.dest: action for action in documented_actions(parser)}
        for field in dataclasses.fields(TrainConfig):
            text = rendered_help(parser, options[field.name])
            assert field_docs(TrainConfig)[field.name].removesuffix(".") in text
            factory = field.default_factory
            default = field.default if factory is dataclasses.MISSING else factory()
            expected = "unset" if default is None else f"(default: {shown(default)})"
            assert expected in text, (command, field.name, text)


def test_the_checks_catch_planted_drift():
    @dataclasses.dataclass
    class Planted:
        documented: int = 1
        """Has a docstring."""
        forgotten: int = 2

    assert undocumented_fields(Planted) == {"forgotten"}

    parser = CommandParser(prog="planted")
    parser.add_argument("--silent", default=3)
    parser.add_argument("--hidden-default", default=4, help="says nothing of it")
    plain = argparse.ArgumentParser(prog="plain")  # the stock formatter shows no defaults
    plain.add_argument("--count", default=5, help="a count")
    assert help_problems(parser) == ["planted --silent: no help"]
    assert help_problems(plain) == ["plain --count: default 5 not shown"]

    body = "\n".join(f"    x = {i}" for i in range(MAX_COMMAND_LINES))
    assert long_functions(f"def cmd_long(args):\n{body}\n", None, MAX_COMMAND_LINES)


def test_commands_are_thin_and_modules_small():
    commands = subcommands(cli.build_parser()).values()
    functions = {command.get_default("func") for command in commands}
    assert all(f.__module__.startswith("depthhints.cli.") for f in functions)
    assert all(f.__name__.startswith("cmd_") for f in functions)
    by_module: dict[str, set[str]] = {}
    for function in functions:
        by_module.setdefault(function.__module__, set()).add(function.__name__)
    for path in sorted(PACKAGE.glob("*.py")):
        source = path.read_text(encoding="utf-8")
        assert len(source.splitlines()) <= MAX_MODULE_LINES, path.name
        names = by_module.get(f"depthhints.cli.{path.stem}", set())
        assert long_functions(source, names, MAX_COMMAND_LINES) == [], path.name
        assert long_functions(source, None, MAX_FUNCTION_LINES) == [], path.name


def test_nothing_below_the_command_imports_it():
    importers = []
    for path in [*(REPO / "depthhints").rglob("*.py"), *(REPO / "hints_worker").rglob("*.py")]:
        if PACKAGE in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            if any(n == "depthhints.cli" or n.startswith("depthhints.cli.") for n in names):
                importers.append(str(path.relative_to(REPO)))
    assert importers == []


def test_console_script_and_module_run_the_same_main():
    (script,) = entry_points(group="console_scripts", name="depthhints")
    assert script.load() is cli.main
    done = subprocess.run(
        [sys.executable, "-m", "depthhints.cli", "train", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    assert "--use_depth_hints" in text and "(default: eigen_zhou)" in text
