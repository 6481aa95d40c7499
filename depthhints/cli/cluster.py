"""``depthhints check-cluster``: Ray cluster YAMLs and runtime envs checked offline with Ray's
own validator (:mod:`depthhints.cluster_config`, which imports Ray only when a check runs)."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "check-cluster",
        help="validate Ray cluster YAMLs (and runtime envs) offline with Ray's own validator",
    )
    parser.add_argument("configs", nargs="*", help="cluster-launcher YAMLs (platform/*.yaml)")
    parser.add_argument(
        "--runtime-env", action="append", help="a `ray job submit --runtime-env` YAML to check"
    )
    parser.set_defaults(func=cmd_check_cluster)


def cmd_check_cluster(args: argparse.Namespace) -> int:
    """Print each file's verdict (an invalid file raises ConfigError: exit 2)."""
    from depthhints.cluster_config import check_files
    from depthhints.errors import ConfigError

    if not args.configs and not args.runtime_env:
        raise ConfigError("check-cluster: give cluster YAMLs and/or --runtime-env FILE")
    for line in check_files(args.configs, args.runtime_env or []):
        print(line)
    return 0
