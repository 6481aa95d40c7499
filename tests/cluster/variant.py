"""The test variant of ``platform/cluster.local.yaml``: the file itself with only the addresses,
the SSH user and key, and the local paths replaced, so that what the test launches is what a
lab launches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

TOKEN_MOUNT = "~/.ray/auth_token"


def cluster_variant(
    source: Path,
    head: str,
    workers: list[str],
    user: str,
    key: Path,
    token: Path,
) -> dict[str, Any]:
    """``source`` with the head's and the workers' addresses, ``user`` and ``key`` for SSH, and
    the Ray token read from ``token``."""
    config = yaml.safe_load(source.read_text())
    config["provider"].update(head_ip=head, worker_ips=list(workers))
    config["auth"].update(ssh_user=user, ssh_private_key=str(key))
    config["file_mounts"][TOKEN_MOUNT] = str(token)
    return config


def changed_keys(before: Any, after: Any, prefix: str = "") -> set[str]:
    """The dotted paths at which two parsed YAML documents differ."""
    if isinstance(before, dict) and isinstance(after, dict):
        return {
            key
            for name in before.keys() | after.keys()
            for key in changed_keys(before.get(name), after.get(name), f"{prefix}{name}.")
        }
    return set() if before == after else {prefix.rstrip(".")}
