"""The cluster definitions in platform/: valid for Ray's validator, as documented, no secrets."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from depthhints.cli import main
from depthhints.cluster_config import (
    DRIVER_ENV_VARS,
    load_yaml,
    node_resources,
    validate_cluster_config,
    validate_runtime_env,
)
from depthhints.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
PLATFORM = REPO / "platform"
AWS = PLATFORM / "cluster.yaml"
LOCAL = PLATFORM / "cluster.local.yaml"
RUNTIME_ENV = PLATFORM / "runtime_env.yaml"
VENV_RAY = "~/depth-hints/.venv/bin/ray"
# vCPUs and GPUs of the instance types the AWS file uses
INSTANCES = {"m5.2xlarge": (8, 0), "c6i.8xlarge": (32, 0), "g5.xlarge": (4, 1)}


@pytest.mark.parametrize("path", [AWS, LOCAL], ids=["aws", "local"])
def test_cluster_yamls_pass_rays_schema_and_validator(path):
    prepared = validate_cluster_config(path)
    assert prepared["cluster_synced_files"] == []  # prepare_config merged Ray's defaults
    assert prepared["head_node_type"] in prepared["available_node_types"]


def test_aws_node_types_advertise_hints_and_train_per_cpu_and_gpu():
    raw = load_yaml(AWS)
    prepared = validate_cluster_config(AWS)
    assert raw["provider"]["type"] == "aws" and raw["auth"]["ssh_user"] == "ubuntu"
    assert "min_workers" not in raw  # Ray's schema refuses it at the top level
    resources = node_resources(prepared)
    assert set(resources) == {"head", "cpu_hints", "gpu_train"}
    assert resources["head"] == {"CPU": 0}  # no hint actors, no training on the head
    nodes = prepared["available_node_types"]
    vcpus, _ = INSTANCES[nodes["cpu_hints"]["node_config"]["InstanceType"]]
    _, gpus = INSTANCES[nodes["gpu_train"]["node_config"]["InstanceType"]]
    assert resources["cpu_hints"] == {"hints": vcpus}
    assert resources["gpu_train"] == {"train": gpus} and gpus >= 1
    for name in ("cpu_hints", "gpu_train"):  # autoscaling from zero
        assert nodes[name]["min_workers"] == 0 < nodes[name]["max_workers"]
    assert nodes["head"]["max_workers"] == 0
    assert raw["idle_timeout_minutes"] > 0


def test_local_start_commands_give_each_machine_its_role():
    raw = load_yaml(LOCAL)
    prepared = validate_cluster_config(LOCAL)
    provider = raw["provider"]
    assert provider["type"] == "local"
    for address in [provider["head_ip"], *provider["worker_ips"]]:
        assert address.startswith("192.0.2.")  # RFC 5737 documentation placeholders
    assert raw["auth"]["ssh_private_key"] == "~/.ssh/id_ed25519"
    node = prepared["available_node_types"]["local.cluster.node"]
    assert node["min_workers"] == node["max_workers"] == len(provider["worker_ips"])
    head = " ".join(raw["head_start_ray_commands"])
    assert "--head" in head and "--num-cpus=0" in head and "--num-gpus=0" in head
    worker = " ".join(raw["worker_start_ray_commands"])
    assert '--resources="$RESOURCES"' in worker
    assert '{\\"train\\": $GPUS}' in worker and '{\\"hints\\": $(nproc --all)}' in worker


@pytest.mark.parametrize("path", [AWS, LOCAL], ids=["aws", "local"])
def test_nodes_install_the_project_and_run_ray_from_its_venv(path):
    raw = load_yaml(path)
    setup = raw["setup_commands"]
    assert any("pip install" in c and "-r requirements.txt" in c for c in setup)
    assert any("pip install" in c and "--no-deps -e ." in c for c in setup)
    assert any("/mnt/shared" in c for c in setup)
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        starts = [c for c in raw[key] if "ray start" in c]
        assert starts and all(f"{VENV_RAY} start" in c for c in starts)
        assert all("RAY_AUTH_MODE=token" in c for c in starts)
    mlflow = " ".join(raw["head_start_ray_commands"])
    assert "mlflow server" in mlflow and "--port 5000" in mlflow and "hostname -I" in mlflow
    assert "sqlite:////mnt/shared/mlflow/mlflow.db" in mlflow


COMMAND_KEYS = (
    "initialization_commands",
    "setup_commands",
    "head_setup_commands",
    "worker_setup_commands",
    "head_start_ray_commands",
    "worker_start_ray_commands",
)


@pytest.mark.parametrize("path", [AWS, LOCAL], ids=["aws", "local"])
def test_every_node_command_is_valid_bash(path):
    """ray up runs each command in bash; a quoting slip would only show on the cluster."""
    raw = load_yaml(path)
    commands = [command for key in COMMAND_KEYS for command in raw.get(key) or []]
    assert len(commands) > 5
    for command in commands:
        result = subprocess.run(["bash", "-n", "-c", command], capture_output=True, text=True)
        assert result.returncode == 0, f"{path}: {command!r}: {result.stderr}"


def test_local_workers_advertise_train_on_gpu_machines_and_hints_elsewhere():
    start = load_yaml(LOCAL)["worker_start_ray_commands"][-1]
    probe = start.split("ulimit")[0] + ' echo "$RESOURCES"'  # the part that picks the resources
    without_gpu = probe.replace("nvidia-smi -L", "false")
    two_gpus = probe.replace("nvidia-smi -L", "printf 'GPU 0: A\\nGPU 1: B\\n'")
    run = [
        subprocess.run(["bash", "-c", c], capture_output=True, text=True).stdout
        for c in (without_gpu, two_gpus)
    ]
    cores = int(subprocess.run(["nproc", "--all"], capture_output=True, text=True).stdout)
    assert json.loads(run[0]) == {"hints": cores}
    assert json.loads(run[1]) == {"train": 2}


@pytest.mark.parametrize("path", [AWS, LOCAL], ids=["aws", "local"])
def test_file_mounts_exist_relative_to_the_repository_and_cover_the_packages(path):
    mounts = load_yaml(path)["file_mounts"]
    code = {remote: local for remote, local in mounts.items() if remote.startswith("~/depth-hints")}
    for remote, local in code.items():
        assert (REPO / local).exists(), f"{remote}: {local} is not in the repository"
        assert remote == "~/depth-hints/" + local.removeprefix("./")
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    needed = [p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]]
    needed += ["experiments", "pyproject.toml", "requirements.txt", "README.md", "LICENSE"]
    assert {f"./{name}" for name in needed} <= set(code.values())
    assert mounts["~/.ray/auth_token"] == "~/.ray/auth_token"
    # `ray submit` runs a script from ~, where a project folder with an importable name
    # (~/depthhints) would hide the installed package
    folder = next(r for r, local in mounts.items() if local == "./pyproject.toml").split("/")[1]
    assert not folder.isidentifier()


CREDENTIALS = re.compile(
    r"AKIA[0-9A-Z]{16}|aws_secret_access_key|aws_access_key_id|password|"
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    re.IGNORECASE,
)


def test_no_credentials_in_platform_files():
    files = [p for p in PLATFORM.rglob("*") if p.is_file()]
    assert {AWS, LOCAL, RUNTIME_ENV} <= set(files)
    assert not (PLATFORM / "__init__.py").exists()  # would shadow the stdlib's platform
    for path in files:
        found = CREDENTIALS.findall(path.read_text(encoding="utf-8"))
        assert not found, f"{path} holds credential-looking text: {found}"


def test_credential_pattern_catches_the_usual_leaks():
    leaks = [
        "AKIAIOSFODNN7EXAMPLE",
        "aws_secret_access_key: x",
        "-----BEGIN OPENSSH PRIVATE KEY-----",
    ]
    assert all(CREDENTIALS.search(text) for text in leaks)


def test_a_broken_copy_is_rejected_naming_the_file_and_each_bad_key(tmp_path):
    config = load_yaml(AWS)
    config["min_workers"] = 1
    config["max_workers"] = "four"
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError) as caught:
        validate_cluster_config(broken)
    message = str(caught.value)
    assert str(broken) in message and "2 error(s)" in message
    assert "'min_workers' was unexpected" in message
    assert "max_workers: 'four' is not of type 'integer'" in message


def test_errors_of_rays_prepare_step_name_the_file(tmp_path):
    config = load_yaml(LOCAL)
    del config["provider"]["worker_ips"]  # schema-valid, refused before ray up connects
    broken = tmp_path / "no_workers.yaml"
    broken.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match=re.escape(str(broken)) + ".*worker_ips"):
        validate_cluster_config(broken)
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match=r"list\.yaml: expected a mapping"):
        validate_cluster_config(tmp_path / "list.yaml")


def test_runtime_env_parses_with_rays_runtime_env():
    env = validate_runtime_env(RUNTIME_ENV, base=REPO)
    assert Path(env["working_dir"]) == REPO
    assert {".venv/", ".git/", "outputs/", "*.pth", "mlruns/", "*.db"} <= set(env["excludes"])
    assert env["env_vars"]["TORCH_HOME"] == "/mnt/shared/torch"
    assert all(isinstance(value, str) for value in env["env_vars"].values())


def test_runtime_env_leaves_the_drivers_own_variables_alone(monkeypatch):
    """init_ray passes these to ray.init; Ray refuses a job whose runtime env sets them too."""
    import depthhints.train.trainer as trainer

    seen = {}
    monkeypatch.setattr(os, "environ", dict(os.environ))  # init_ray's setdefault stays here
    monkeypatch.setattr(trainer.ray, "init", lambda **kwargs: seen.update(kwargs))
    trainer.init_ray("auto")
    assert set(seen["runtime_env"]["env_vars"]) == set(DRIVER_ENV_VARS)
    assert not set(load_yaml(RUNTIME_ENV)["env_vars"]) & set(DRIVER_ENV_VARS)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"env_vars": {"OMP_NUM_THREADS": 1}}, "rejected by Ray's runtime_env validation"),
        ({"env_var": {"A": "b"}}, r"unknown runtime_env field\(s\) \['env_var'\]"),
        ({"env_vars": {DRIVER_ENV_VARS[0]: "1"}}, "set by the driver itself"),
        ({"working_dir": "no/such/folder"}, "rejected by Ray's runtime_env validation"),
    ],
)
def test_a_broken_runtime_env_is_rejected_naming_the_file(tmp_path, change, expected):
    values = {**load_yaml(RUNTIME_ENV), **change}
    path = tmp_path / "runtime_env.yaml"
    path.write_text(yaml.safe_dump(values))
    with pytest.raises(ConfigError, match=expected) as caught:
        validate_runtime_env(path, base=REPO)
    assert str(path) in str(caught.value)


def test_check_cluster_command(tmp_path, capsys):
    assert main(["check-cluster", str(AWS), "--runtime-env", str(RUNTIME_ENV)]) == 0
    out = capsys.readouterr().out
    assert f"{AWS}: valid (aws provider)" in out
    assert 'gpu_train: workers 0..4, resources {"train": 1}' in out
    broken = tmp_path / "broken.yaml"
    shutil.copy(AWS, broken)
    broken.write_text(broken.read_text() + "min_workers: 2\n")
    assert main(["check-cluster", str(broken)]) == 2
    assert "'min_workers' was unexpected" in capsys.readouterr().err


def test_cost_estimate_in_the_docs_is_the_scripts_output():
    from bench.estimate_costs import BLOCK, estimate, hint_images, row_names
    from depthhints.experiments.reproduce import PRESETS

    assert row_names() == PRESETS["kitti"].rows  # what reproduce_table trains
    # docs/method.md#splits: eigen_full/all
    assert hint_images({"eigen_full", "eigen_zhou"}) == 46_976
    block = BLOCK.search((REPO / "docs" / "operations.md").read_text())
    assert block, "docs/operations.md lost its <!-- costs --> block"
    assert estimate().rstrip() in block.group(0), "run: python -m bench.estimate_costs --write"
