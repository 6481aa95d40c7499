"""Offline checks of the Ray cluster-launcher and runtime-env YAMLs (``platform/``).

Ray's own checks, nothing copied, no SSH and no cloud credentials:

- a cluster config is checked raw against Ray's schema (``ray/autoscaler/ray-schema.json``),
  every error collected; then Ray's ``fillout_defaults`` merges the provider's ``defaults.yaml``
  as ``ray up`` does, an on-premise config gets the node type ``ray up`` gives it, and the result
  is checked against the schema again and for what the schema cannot say (the head's node type
  exists, worker bounds are ordered);
- a runtime env is built as ``ray.runtime_env.RuntimeEnv``, which runs Ray's validators for each
  field (``working_dir`` must exist, ``excludes`` a list of strings, ``env_vars`` strings).

``depthhints check-cluster platform/cluster.yaml --runtime-env platform/runtime_env.yaml``.
Ray is imported inside the functions, so the ``depthhints`` command starts fast.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from depthhints.errors import ConfigError

# What depthhints.train.trainer.init_ray passes to ray.init as runtime_env env_vars: a job whose
# own runtime env sets one of them is refused by Ray ("Failed to merge the Job's runtime env").
DRIVER_ENV_VARS = ("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "RAY_TRAIN_ENABLE_PRINT_PATCH")


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """The YAML mapping in ``path``; ConfigError naming the file otherwise."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{path}: cannot read it ({error})") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top, got {type(data).__name__}")
    return data


def schema_errors(config: dict[str, Any]) -> list[str]:
    """Every violation of Ray's cluster-config schema, as ``"<key path>: <message>"``."""
    import importlib.resources

    import jsonschema

    schema = json.loads(
        (importlib.resources.files("ray.autoscaler") / "ray-schema.json").read_text()
    )
    errors = jsonschema.Draft7Validator(schema).iter_errors(config)
    return sorted(
        f"{'.'.join(str(part) for part in error.absolute_path) or '(top level)'}: {error.message}"
        for error in errors
    )


def validate_cluster_config(path: str | os.PathLike) -> dict[str, Any]:
    """Check a cluster-launcher YAML as ``ray up`` would before it connects; returns the
    config completed with the provider's defaults.

    Raises ConfigError naming the file and each error's key path and message.
    """
    from ray.autoscaler.sdk import fillout_defaults

    raw = load_yaml(path)
    errors = schema_errors(raw)
    if errors:
        listed = "\n".join(f"  - {error}" for error in errors)
        raise ConfigError(f"{path}: {len(errors)} error(s) against Ray's cluster schema:\n{listed}")
    prepared = _node_types(fillout_defaults(copy.deepcopy(raw)))
    errors = schema_errors(prepared) + _node_type_errors(prepared)
    if errors:
        raise ConfigError(f"{path}: with Ray's defaults filled in: {'; '.join(errors)}")
    return prepared


LOCAL_NODE_TYPE = "local.cluster.node"
"""The one node type ``ray up`` gives an on-premise (``provider.type: local``) cluster."""


def _node_types(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with the worker bounds ``ray up`` gives every node type (min 0; max 0 for the
    head's type, the cluster's ``max_workers`` for the others); an on-premise config first gets
    its one node type, :data:`LOCAL_NODE_TYPE`, every worker IP a started worker."""
    provider = config["provider"]
    if provider.get("type") == "local" and "available_node_types" not in config:
        workers = len(provider.get("worker_ips") or [])
        node = {"node_config": {}, "resources": {}, "min_workers": workers, "max_workers": workers}
        config = {
            **config,
            "available_node_types": {LOCAL_NODE_TYPE: node},
            "head_node_type": LOCAL_NODE_TYPE,
            "max_workers": workers,
        }
    types = {}
    for name, node in config.get("available_node_types", {}).items():
        default = 0 if name == config.get("head_node_type") else config.get("max_workers", 0)
        types[name] = {"min_workers": 0, "max_workers": default, **node}
    return {**config, "available_node_types": types}


def _node_type_errors(config: dict[str, Any]) -> list[str]:
    """What the schema cannot say: the head's node type exists, worker bounds are ordered, an
    on-premise cluster lists its workers."""
    provider, types = config["provider"], config.get("available_node_types", {})
    errors = []
    if provider.get("type") == "local" and "worker_ips" not in provider:
        errors.append("provider.worker_ips: required for an on-premise cluster (may be [])")
    if config.get("head_node_type") not in types:
        errors.append(
            f"head_node_type: {config.get('head_node_type')!r} is not one of "
            f"available_node_types {sorted(types)}"
        )
    for name, node in types.items():
        if node.get("min_workers", 0) > node.get("max_workers", 0):
            errors.append(f"available_node_types.{name}: min_workers > max_workers")
    return errors


def node_resources(config: dict[str, Any]) -> dict[str, dict[str, int]]:
    """{node type: the resources its YAML declares} (CPU/GPU not given are detected by Ray)."""
    return {
        name: dict(node.get("resources", {}))
        for name, node in config.get("available_node_types", {}).items()
    }


def validate_runtime_env(
    path: str | os.PathLike, base: str | os.PathLike | None = None
) -> dict[str, Any]:
    """Check a ``ray job submit --runtime-env`` YAML; returns Ray's ``RuntimeEnv`` of it.

    A relative ``working_dir`` is resolved against ``base`` (default: the current directory,
    as ``ray job submit`` does).
    """
    from ray.runtime_env import RuntimeEnv

    raw = load_yaml(path)
    unknown = sorted(set(raw) - RuntimeEnv.known_fields)
    if unknown:
        raise ConfigError(
            f"{path}: unknown runtime_env field(s) {unknown}; Ray knows "
            f"{sorted(field for field in RuntimeEnv.known_fields if not field.startswith('_'))}"
        )
    clash = sorted(set(raw.get("env_vars") or {}) & set(DRIVER_ENV_VARS))
    if clash:
        raise ConfigError(
            f"{path}: env_vars {clash} are set by the driver itself (init_ray); Ray refuses a job "
            "whose runtime env sets them too. Remove them from the file."
        )
    values = dict(raw)
    working_dir = values.get("working_dir")
    if isinstance(working_dir, str) and "://" not in working_dir:
        values["working_dir"] = str((Path(base or Path.cwd()) / working_dir).resolve())
    try:
        return RuntimeEnv(**values)
    except Exception as error:  # Ray's validators raise TypeError/ValueError
        raise ConfigError(f"{path}: rejected by Ray's runtime_env validation: {error}") from error


def check_files(clusters: Iterable[str], runtime_envs: Iterable[str]) -> list[str]:
    """Validate each file; the lines to print (raises ConfigError at the first bad file)."""
    lines = []
    for path in clusters:
        prepared = validate_cluster_config(path)
        lines.append(f"{path}: valid ({prepared['provider']['type']} provider)")
        local = prepared["provider"]["type"] == "local"
        for name, resources in node_resources(prepared).items():
            node = prepared["available_node_types"][name]
            bounds = f"{node.get('min_workers', 0)}..{node.get('max_workers', 0)}"
            shown = "set by the start commands" if local else json.dumps(resources)
            lines.append(f"  {name}: workers {bounds}, resources {shown}")
    for path in runtime_envs:
        env = validate_runtime_env(path)
        lines.append(f"{path}: valid runtime env (fields: {', '.join(sorted(env))})")
    return lines
