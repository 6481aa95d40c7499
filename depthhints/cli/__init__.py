"""The ``depthhints`` command.

Each module of this package is one group of sub-commands: its ``register(commands)`` adds their
parsers, and each command parses and checks its arguments, then calls a library function.
Heavy packages (torch, Ray, MLflow) are imported when a command runs, so ``--help`` is fast.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence

from depthhints.cli import cluster, dashboards, data, evaluate, hints, predict, train
from depthhints.cli.arguments import CommandParser
from depthhints.errors import DepthHintsError, Stopped

COMMAND_GROUPS = (data, hints, train, predict, evaluate, dashboards, cluster)


def build_parser() -> argparse.ArgumentParser:
    """The ``depthhints`` parser with every sub-command of :data:`COMMAND_GROUPS`."""
    parser = argparse.ArgumentParser(prog="depthhints", description=__doc__.partition("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=CommandParser)
    for group in COMMAND_GROUPS:
        group.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one sub-command; its exit status. Our errors (:class:`DepthHintsError`) print one
    line and exit 2; an MLflow error prints one line with any password masked and exits 1; a
    run stopped by SIGINT or SIGTERM prints how to resume it and exits 130 or 143."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except Stopped as stop:
        resume = f"; resume with: {resume_command(argv, args)}" if "resume" in args else ""
        print(f"depthhints: {stop}{resume}", file=sys.stderr)
        return stop.exit_code
    except KeyboardInterrupt:
        print("depthhints: interrupted", file=sys.stderr)
        return 130
    except DepthHintsError as error:
        print(f"depthhints: error: {_redacted(error)}", file=sys.stderr)
        return 2
    except Exception as error:
        if not type(error).__module__.startswith("mlflow."):
            raise
        # "API request to http://user:password@host/... failed": masked, not in a traceback
        print(f"depthhints: MLflow error: {_redacted(error)}", file=sys.stderr)
        return 1


def resume_command(
    argv: Sequence[str], args: argparse.Namespace, program: Sequence[str] = ("depthhints",)
) -> str:
    """The command line that continues the run of ``argv`` (of ``program``): the same, with a
    plain ``--resume`` (a state file given to ``--resume`` is dropped: the stopped run saved a
    newer one)."""
    kept: list[str] = []
    tokens = iter(argv)
    for token in tokens:
        if token == "--resume" and isinstance(args.resume, str):
            next(tokens, None)  # its value
        elif token != "--resume" and not token.startswith("--resume="):
            kept.append(token)
    return shlex.join([*program, *kept, "--resume"])


def _redacted(error: Exception) -> str:
    """The error's message with any password in a URI masked."""
    text = str(error)
    if "://" not in text or "@" not in text:
        return text  # nothing to mask: spare the import of MLflow
    from depthhints.tracking import redact_uri

    return redact_uri(text)
