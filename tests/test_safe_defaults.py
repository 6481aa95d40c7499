"""Safe defaults: no code runs from a checkpoint or a YAML file, servers bind to 127.0.0.1 unless
asked, no password in what is printed, logged, tracked or written, files follow the umask.

No Ray cluster (``ray.init`` is replaced); the credential tests start one ``mlflow server`` (slow).
Each malicious file is proven live first: an unsafe load of it does create its marker file.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import inspect
import json
import logging
import os
import pickle
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
import ray
import torch
import yaml
from mlflow import MlflowClient
from torch import nn

from dashboards import ui
from depthhints.cli import build_parser, main
from depthhints.cli.dashboards import add_ui_arguments
from depthhints.cluster_config import DRIVER_ENV_VARS, load_yaml
from depthhints.config import TrainConfig
from depthhints.data.hint_store import NpyHintStore, ParquetHintStore, StoreManifest
from depthhints.errors import ConfigError, DataFileError
from depthhints.evaluate import load_gt_depths, save_gt_depths
from depthhints.models.depth_net import load_depth_net
from depthhints.models.encoder import load_imagenet_state_dict
from depthhints.tracking import (
    JOURNAL,
    Tracker,
    journal_uri,
    redact_uri,
    without_credentials,
)
from depthhints.train import checkpoint
from depthhints.train.reporting import (
    RUN_FILE,
    RunReporter,
    TrackingOptions,
    attach_run,
    describe_run,
    open_run,
)
from depthhints.train.trainer import init_ray
from hints_worker.actors import ray_session

REPO = Path(__file__).resolve().parent.parent
SOURCES = [REPO / name for name in ("depthhints", "hints_worker", "dashboards", "experiments")]
SECRET = "s3cr3t-Pw"
CLOSED_PORT = 9  # the discard port: nothing listens, connections are refused at once


def python_files() -> list[Path]:
    return sorted(path for folder in SOURCES for path in folder.rglob("*.py"))


def calls(path: Path, name: str) -> list[ast.Call]:
    """Every call of ``<module>.<name>(...)`` (``torch.load``: name ``load`` on ``torch``)."""
    module, attribute = name.split(".")
    return [
        node
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == attribute
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == module
    ]


def keyword(call: ast.Call, name: str) -> object:
    """The literal value of keyword ``name`` (``...`` when absent or not a literal)."""
    for item in call.keywords:
        if item.arg == name and isinstance(item.value, ast.Constant):
            return item.value.value
    return ...


# ----------------------------------------------------------------------------- pickles
class Payload:
    """Unpickles as ``os.system("touch <marker>")``: code that runs only when loaded unsafely."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


def malicious(path: Path, **state) -> Path:
    """A ``torch.save`` file whose state carries a Payload (marker: ``<path>.ran``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({**state, "model": Payload(marker_of(path))}, path)
    return path


def marker_of(path: Path) -> Path:
    return path.with_name(path.name + ".ran")


def test_the_payload_runs_code_when_loaded_unsafely(tmp_path):
    path = malicious(tmp_path / "state.pt")
    torch.load(path, weights_only=False)
    assert marker_of(path).exists()


def tiny_training() -> tuple[nn.Module, torch.optim.Optimizer, torch.optim.lr_scheduler.StepLR]:
    model = nn.Module()
    model.encoder, model.depth = nn.Linear(2, 3), nn.Linear(3, 1)
    optimizer = torch.optim.Adam(model.parameters())
    return model, optimizer, torch.optim.lr_scheduler.StepLR(optimizer, 5)


def load_state(path: Path) -> None:
    checkpoint.load_state(path, *tiny_training())


def depth_net(path: Path) -> None:
    torch.save(nn.Linear(1, 1).state_dict(), path.with_name("depth.pth"))
    load_depth_net(path.parent)


@pytest.mark.parametrize(
    ("file_name", "load"),
    [
        ("state.pt", checkpoint.read_state),
        ("state.pt", load_state),
        ("state.pt", lambda path: checkpoint.newest_readable([path])),
        ("encoder.pth", depth_net),
        ("resnet18-f37072fd.pth", lambda path: load_imagenet_state_dict(18, path)),
    ],
    ids=["read_state", "load_state", "newest_readable", "load_depth_net", "imagenet_weights"],
)
def test_a_malicious_checkpoint_is_refused_without_running_it(tmp_path, file_name, load):
    path = malicious(tmp_path / "weights_0" / file_name, height=64, width=192)
    with pytest.raises(DataFileError, match=re.escape(str(path))):
        load(path)
    assert not marker_of(path).exists()


def test_sample_frames_refuse_a_malicious_encoder_naming_it(tmp_path):
    """``depthhints.samples`` reads weights as ``load_depth_net`` does: a DataFileError."""
    from depthhints.samples import sample_frames

    path = malicious(tmp_path / "weights_0" / "encoder.pth")
    config = TrainConfig(data_path=str(tmp_path / "kitti"), weights_init="scratch")
    with pytest.raises(DataFileError, match=re.escape(str(path))):
        sample_frames(config, path.parent, [], [])
    assert not marker_of(path).exists()


def test_every_torch_load_in_the_packages_is_weights_only():
    loads = {
        f"{p.relative_to(REPO)}:{c.lineno}": c
        for p in python_files()
        for c in calls(p, "torch.load")
    }
    assert len(loads) >= 3  # checkpoint, depth_net (samples reads through it), encoder
    unsafe = [where for where, call in loads.items() if keyword(call, "weights_only") is not True]
    assert not unsafe, f"torch.load without weights_only=True: {unsafe}"


def test_no_other_unpickling_loader_in_the_packages():
    """No pickle loads at all; the one Unpickler is depthhints/npz.py's (numpy arrays only)."""
    found = []
    for path in python_files():
        where = str(path.relative_to(REPO))
        found += [
            f"{where}:{call.lineno}"
            for call in calls(path, "np.load")
            if keyword(call, "allow_pickle") is True
        ]
        found += [
            f"{where}:{c.lineno}" for c in calls(path, "pickle.load") + calls(path, "pickle.loads")
        ]
        if where != "depthhints/npz.py":
            found += [
                f"{where}:{node.lineno}: pickle.Unpickler"
                for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                if isinstance(node, ast.Attribute) and node.attr == "Unpickler"
            ]
    assert not found, f"pickle loads (can run code): {found}"


def malicious_gt(path: Path) -> Path:
    """A gt_depths .npz whose ragged ``data`` holds a Payload beside a depth map."""
    data = np.empty(2, dtype=object)
    data[0], data[1] = np.ones((4, 6), np.float32), Payload(marker_of(path))
    np.savez_compressed(path, data=data)
    return path


def test_the_gt_payload_runs_code_when_loaded_unsafely(tmp_path):
    path = malicious_gt(tmp_path / "gt_depths.npz")
    with np.load(path, allow_pickle=True) as archive:
        archive["data"]
    assert marker_of(path).exists()


def test_a_malicious_gt_file_is_refused_without_running_it(tmp_path):
    path = malicious_gt(tmp_path / "gt_depths.npz")
    with pytest.raises(DataFileError, match=re.escape(str(path))) as error:
        load_gt_depths(path)
    assert "re-export it with `depthhints export-gt" in str(error.value)
    assert re.search(r"refused to unpickle \w+\.system", str(error.value))
    assert not marker_of(path).exists()


def npz_of_pickle(path: Path, data: np.ndarray, payload: bytes) -> Path:
    """An .npz whose ``data.npy`` holds ``data``'s header and the pickle ``payload``."""
    with zipfile.ZipFile(path, "w") as archive, archive.open("data.npy", "w") as member:
        header = np.lib.format.header_data_from_array_1_0(data)
        np.lib.format.write_array_header_1_0(member, header)
        member.write(payload)
    return path


def test_gt_files_as_written_still_load_identically(tmp_path):
    """Ours (numpy 2: protocol 4, numpy._core) ragged or not, and the reference's (numpy 1.x:
    protocol 3, numpy.core) give the maps that an unrestricted load gives."""
    shapes = [(375, 1242), (370, 1226), (376, 1241)]
    ragged = [np.random.default_rng(i).random(shape, np.float32) for i, shape in enumerate(shapes)]
    save_gt_depths(tmp_path / "ragged.npz", ragged)
    save_gt_depths(tmp_path / "equal.npz", ragged[:1] * 2)
    np.savez_compressed(tmp_path / "plain.npz", data=np.stack(ragged[:1] * 2))
    with np.load(tmp_path / "ragged.npz", allow_pickle=True) as archive:
        data = archive["data"]
    numpy1 = pickle.dumps(data, protocol=3).replace(b"numpy._core.", b"numpy.core.")
    assert b"numpy.core.multiarray\n_reconstruct" in numpy1
    npz_of_pickle(tmp_path / "reference.npz", data, numpy1)
    for name in ("ragged", "equal", "plain", "reference"):
        with np.load(tmp_path / f"{name}.npz", allow_pickle=True) as archive:
            expected = list(archive["data"])
        loaded = load_gt_depths(tmp_path / f"{name}.npz")
        assert [m.shape for m in loaded] == [m.shape for m in expected], name
        assert all(m.dtype == np.float32 for m in loaded), name
        assert all(np.array_equal(a, b) for a, b in zip(loaded, expected, strict=True)), name


# ----------------------------------------------------------------------------- YAML
def yaml_payload(marker: Path) -> str:
    return f'!!python/object/apply:os.system ["touch {marker}"]'


def test_the_yaml_payload_runs_code_when_loaded_unsafely(tmp_path):
    marker = tmp_path / "ran"
    yaml.unsafe_load(f"batch_size: {yaml_payload(marker)}\n")
    assert marker.exists()


@pytest.mark.parametrize("where", ["value", "top level"])
@pytest.mark.parametrize(
    "load", [TrainConfig.from_yaml, load_yaml], ids=["TrainConfig.from_yaml", "cluster load_yaml"]
)
def test_a_malicious_yaml_is_a_config_error_naming_the_file(tmp_path, load, where):
    marker = tmp_path / "ran"
    path = tmp_path / "config.yaml"
    payload = yaml_payload(marker)
    path.write_text(f"batch_size: {payload}\n" if where == "value" else f"{payload}\n")
    with pytest.raises(ConfigError, match=re.escape(str(path))):
        load(path)
    assert not marker.exists()


@pytest.mark.parametrize("value", ["payload", "[1", "@x"])
def test_a_bad_sweep_value_is_a_config_error_naming_it_and_runs_nothing(tmp_path, value):
    from depthhints.tune import parse_space

    marker = tmp_path / "ran"
    item = f"batch_size={yaml_payload(marker) if value == 'payload' else value}"
    with pytest.raises(ConfigError, match=re.escape(f"--space {item!r}")) as error:
        parse_space([item])
    assert "NAME=VALUE[,VALUE...]" in str(error.value)
    assert not marker.exists()


def test_no_unsafe_yaml_loader_in_the_packages():
    unsafe = {"load", "unsafe_load", "full_load", "load_all", "unsafe_load_all", "full_load_all"}
    loaders = {"Loader", "UnsafeLoader", "FullLoader"}
    found = []
    for path in python_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "yaml"
                and node.attr in unsafe | loaders
            ):
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: yaml.{node.attr}")
    assert not found, found


# ----------------------------------------------------------------------------- hosts
def parsed(arguments: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_ui_arguments(parser)
    return parser.parse_args(arguments)


def host_of(command: list[str]) -> str:
    return command[command.index("--host") + 1]


def test_the_mlflow_ui_binds_to_localhost_unless_told(tmp_path):
    store = f"sqlite:///{tmp_path}/mlflow.db"
    default = parsed([])
    assert default.host == ui.DEFAULT_HOST == "127.0.0.1"
    assert build_parser().parse_args(["ui"]).host == "127.0.0.1"  # the depthhints command
    assert host_of(ui.server_command(store, default.host, default.port)) == "127.0.0.1"
    chosen = parsed(["--host", "10.1.2.3"])
    assert host_of(ui.server_command(store, chosen.host, chosen.port)) == "10.1.2.3"


@pytest.mark.parametrize(
    "store", ["sqlite:///{tmp}/mlflow.db", f"postgresql://alice:{SECRET}@db.internal/mlflow"]
)
def test_the_started_server_binds_to_localhost_with_no_password_in_its_command(
    tmp_path, monkeypatch, store
):
    """What ``depthhints ui`` really starts: the command and environment given to Popen. A
    password would be readable by every local user in the command line (``ps``)."""
    started = []

    class FakePopen:
        def __init__(self, command, **kwargs):
            started.append((command, kwargs["env"]))

    monkeypatch.setattr(ui.subprocess, "Popen", FakePopen)
    monkeypatch.delenv("MLFLOW_BACKEND_STORE_URI", raising=False)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = store.format(tmp=tmp_path)
    server = ui._Server(store, parsed([]).host, port)
    server.log_path.unlink()
    [(command, env)] = started
    assert host_of(command) == "127.0.0.1" and server.url == f"http://127.0.0.1:{port}"
    if SECRET in store:
        assert SECRET not in " ".join(command) and "--backend-store-uri" not in command
        assert env["MLFLOW_BACKEND_STORE_URI"] == store
    else:
        assert command[command.index("--backend-store-uri") + 1] == store
        assert "MLFLOW_BACKEND_STORE_URI" not in env


@pytest.fixture
def ray_init_calls(monkeypatch) -> list[dict]:
    """``ray.init`` replaced by a recorder (no cluster starts); the driver's variables restored."""
    recorded: list[dict] = []
    for name in DRIVER_ENV_VARS:  # init_ray sets them with setdefault: undo that afterwards
        monkeypatch.setenv(name, "placeholder")
        monkeypatch.delenv(name)
    monkeypatch.setattr(ray, "init", lambda *args, **kwargs: recorded.append(kwargs))
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "shutdown", lambda: None)
    return recorded


def test_ray_is_started_with_its_localhost_dashboard(ray_init_calls):
    init_ray()
    init_ray("auto")
    for address in (None, "auto"):
        with ray_session(address):
            pass
    assert len(ray_init_calls) == 4
    for kwargs in ray_init_calls:
        assert kwargs.get("dashboard_host", "127.0.0.1") == "127.0.0.1", kwargs


def test_no_code_asks_ray_for_another_dashboard_host():
    """Neither ray.init nor init_ray(**kwargs) gets a dashboard_host but Ray's default."""
    found = []
    for path in [*python_files(), *sorted((REPO / "bench").rglob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.keyword) and node.arg == "dashboard_host":
                value = node.value
                if not (isinstance(value, ast.Constant) and value.value == "127.0.0.1"):
                    found.append(f"{path.relative_to(REPO)}:{value.lineno}: dashboard_host")
    assert found == [], found
    assert inspect.signature(ray.init).parameters["dashboard_host"].default == "127.0.0.1"


# ----------------------------------------------------------------------------- credentials
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"http://alice:{SECRET}@host:5000", "http://alice:***@host:5000"),
        (f"https://alice:{SECRET}@host/mlflow/", "https://alice:***@host/mlflow/"),
        (f"postgresql://alice:{SECRET}@db/mlflow", "postgresql://alice:***@db/mlflow"),
        ("http://alice:p@ss@host:5000", "http://alice:***@host:5000"),  # an @ in the password
        (
            f"API request to http://u:{SECRET}@h:9/api/2.0/x failed; retry http://h:9/y",
            "API request to http://u:***@h:9/api/2.0/x failed; retry http://h:9/y",
        ),
        ("http://alice@host:5000", "http://alice@host:5000"),  # a user alone is no secret
        ("http://host:5000/a@b", "http://host:5000/a@b"),
        ("sqlite:////runs/mlflow.db", "sqlite:////runs/mlflow.db"),
        ("file:///tmp/mlruns", "file:///tmp/mlruns"),
    ],
)
def test_redact_uri(text, expected):
    assert redact_uri(text) == expected


def test_links_and_journals_carry_no_login():
    uri = f"http://alice:{SECRET}@host:5000"
    assert without_credentials(uri + "/") == "http://host:5000/"
    assert without_credentials("sqlite:////x/mlflow.db") == "sqlite:////x/mlflow.db"
    recorded = redact_uri(uri)
    assert journal_uri(recorded, (None, "http://bob:x@host:5000", uri)) == uri
    assert journal_uri(recorded) == "http://host:5000"  # MLflow's env login then applies
    assert journal_uri("http://host:5000") == "http://host:5000"
    assert journal_uri(uri) == uri  # a journal written before URIs were redacted


def files_mentioning(folder: Path, text: str) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and text.encode() in p.read_bytes()]


def test_an_unreachable_server_is_reported_without_its_password(tmp_path, caplog):
    uri = f"http://alice:{SECRET}@127.0.0.1:{CLOSED_PORT}"
    config = TrainConfig(log_dir=str(tmp_path / "runs"), model_name="offline")
    options = TrackingOptions(uri=uri, experiment="safe")
    with caplog.at_level(logging.WARNING, logger="depthhints.tracking"):
        tracker = open_run(config, options, world_size=1)
        line = describe_run(tracker, options.tracking_uri(config), options.experiment)
        assert tracker.end() > 0
    assert tracker.run_id is None and tracker.tracking_uri == uri  # the login is still used
    assert f"alice:***@127.0.0.1:{CLOSED_PORT} does not answer" in line
    assert "unreachable" in caplog.text and "could not be delivered" in caplog.text
    assert f"alice:***@127.0.0.1:{CLOSED_PORT}" in caplog.text
    assert SECRET not in line + caplog.text
    journal = json.loads((config.run_dir / JOURNAL).read_text().splitlines()[0])
    assert journal["tracking_uri"] == redact_uri(uri)
    assert files_mentioning(tmp_path, SECRET) == []


class Server:
    """A plain ``mlflow server`` (no auth: it ignores the login a client sends)."""

    def __init__(self, root: Path):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.uri = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--workers", "1"]
        command += ["--backend-store-uri", f"sqlite:///{root / 'server.db'}"]
        command += ["--artifacts-destination", str(root / "artifacts")]
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        with open(root / "server.log", "w") as log:
            self.process = subprocess.Popen(
                command, cwd=root, env=env, stdout=log, stderr=log, start_new_session=True
            )
        self.log = root / "server.log"

    def wait(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=1):
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"mlflow server did not answer on {self.uri}")

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("server"))
    try:
        server.wait()
        yield server
    finally:
        server.stop()


@pytest.mark.slow
def test_a_tracked_run_records_no_password(server, tmp_path, monkeypatch, capsys):
    uri = server.uri.replace("http://", f"http://alice:{SECRET}@")
    config = TrainConfig(log_dir=str(tmp_path / "runs"), model_name="online")
    options = TrackingOptions(uri=uri, experiment="safe")
    tracker = open_run(config, options, world_size=1)
    line = describe_run(tracker, options.tracking_uri(config), options.experiment)
    # a Ray worker gets the options as a dict, uri included (it needs it), and logs no params
    worker_options = {**dataclasses.asdict(options), "run_id": tracker.run_id}
    with attach_run(config, TrackingOptions(**worker_options)) as worker:
        RunReporter(config, worker).log("train", {"loss": 1.0}, step=0)
    tracker.end()

    assert tracker.run_id is not None
    page = f"{server.uri}/#/experiments/{tracker.experiment_id}/runs/{tracker.run_id}"
    assert tracker.run_url == page and line.endswith(f"view: {page}")
    assert f"alice:***@127.0.0.1:{server.port}" in line and SECRET not in line
    run = MlflowClient(server.uri).get_run(tracker.run_id)
    assert run.data.params["world_size"] == "1" and run.data.metrics == {"train/loss": 1.0}
    recorded = json.dumps([run.data.params, run.data.tags, str(run.info.to_proto())])
    assert SECRET not in recorded and "alice" not in recorded
    assert json.loads((config.run_dir / RUN_FILE).read_text())["run_url"] == page
    assert files_mentioning(tmp_path, SECRET) == []

    # `depthhints ui` on a tracking server links to it: without the login
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert main(["ui"]) == 0  # logs the paper runs first (MLflow would print their URLs)
    printed = capsys.readouterr().out
    assert f"MLflow UI: {server.uri}/#/experiments/" in printed
    assert SECRET not in printed and "alice" not in printed


def test_an_mlflow_error_is_printed_masked_not_as_a_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    uri = f"http://alice:{SECRET}@127.0.0.1:{CLOSED_PORT}"
    assert main(["report", "--tracking-uri", uri, "--out", str(tmp_path / "r.html")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("depthhints: MLflow error: ") and "Traceback" not in err
    assert f"alice:***@127.0.0.1:{CLOSED_PORT}" in err and SECRET not in err


@pytest.mark.slow
def test_ending_stopped_trials_shows_no_password(server, tmp_path, monkeypatch, caplog, capsys):
    """The sweep ends its stopped trials' runs KILLED without printing the login MLflow would
    show (its ``View run ... at: <uri>``), and masks it in the warning of an unreachable one."""
    from depthhints.tune import _end_stopped_children

    client = MlflowClient(server.uri)
    experiment = client.create_experiment(f"tune-{tmp_path.name}")
    parent = client.create_run(experiment, run_name="sweep")
    child = client.create_run(
        experiment, run_name="trial", tags={"mlflow.parentRunId": parent.info.run_id}
    )
    login = server.uri.replace("http://", f"http://alice:{SECRET}@")
    stopped = dataclasses.make_dataclass("Parent", ["tracking_uri", "run_id", "experiment_id"])
    _end_stopped_children(stopped(login, parent.info.run_id, experiment))
    assert client.get_run(child.info.run_id).info.status == "KILLED"
    printed = capsys.readouterr()
    assert SECRET not in printed.out + printed.err

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    unreachable = f"http://alice:{SECRET}@127.0.0.1:{CLOSED_PORT}"
    with caplog.at_level(logging.WARNING, logger="depthhints.tune"):
        _end_stopped_children(stopped(unreachable, parent.info.run_id, experiment))
    assert f"alice:***@127.0.0.1:{CLOSED_PORT}" in caplog.text and SECRET not in caplog.text


CONFIG_FILES = sorted(
    [
        *(REPO / "experiments").rglob("*.yaml"),
        *(REPO / "depthhints").rglob("*.yaml"),
        *(REPO / "hints_worker").rglob("*.yaml"),
        *(REPO / "dashboards").rglob("*.yaml"),
        *(REPO / "platform").glob("*.yaml"),
    ]
)
SECRET_KEY = re.compile(r"pass(word|wd)?|secret|token|api[_-]?key|access[_-]?key", re.IGNORECASE)
URL_LOGIN = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@")
REFERENCE = re.compile(r"^(~?/|\./|\$)")  # a file (~/.ray/auth_token) or $VARIABLE, no value


def secret_values(data: object, path: str = "") -> list[str]:
    """``key path = value`` of each literal value under a secret-looking key, and of each
    string holding a URL with a password."""
    if isinstance(data, dict):
        found = []
        for key, value in data.items():
            where = f"{path}.{key}" if path else str(key)
            text = str(value) if isinstance(value, str | int) else ""
            if SECRET_KEY.search(str(key)) and text and not REFERENCE.match(text):
                found.append(f"{where} = {value}")
            found += secret_values(value, where)
        return found
    if isinstance(data, list):
        return [hit for i, item in enumerate(data) for hit in secret_values(item, f"{path}[{i}]")]
    return [f"{path} = {data}"] if isinstance(data, str) and URL_LOGIN.search(data) else []


def test_the_credential_check_catches_the_usual_leaks():
    leaks = {
        "env_vars": {"MLFLOW_TRACKING_PASSWORD": "x", "AWS_SECRET_ACCESS_KEY": "y"},
        "tracking_uri": "http://alice:pw@10.0.0.1:5000",
        "list": ["postgresql://u:p@db/mlflow"],
    }
    assert len(secret_values(leaks)) == 4
    references = {"~/.ray/auth_token": "~/.ray/auth_token", "token": "$RAY_AUTH_TOKEN"}
    assert secret_values({"ssh_user": "ubuntu", "uri": "http://10.0.0.1:5000", **references}) == []


def test_no_credentials_in_the_config_files():
    assert len(CONFIG_FILES) > 10  # depthhints/experiments/configs and platform/ at least
    for path in CONFIG_FILES:
        assert not secret_values(load_yaml(path)), f"{path}: {secret_values(load_yaml(path))}"
        assert not URL_LOGIN.search(path.read_text(encoding="utf-8")), path  # comments too


# ----------------------------------------------------------------------------- umask
@pytest.fixture
def umask_027():
    previous = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(previous)


def modes(root: Path) -> dict[str, str]:
    """``{relative path: octal mode}`` of ``root`` and everything under it."""
    paths = [root, *root.rglob("*")]
    return {str(p.relative_to(root)): oct(p.stat().st_mode & 0o777) for p in paths}


def assert_umask_modes(root: Path) -> None:
    found = modes(root)
    wrong = {
        path: mode
        for path, mode in found.items()
        if mode != ("0o750" if (root / path).is_dir() else "0o640")
    }
    assert not wrong, f"not 0o640 files / 0o750 folders under {root}: {wrong}"


KEY = ("2011_09_26/2011_09_26_drive_0001_sync", 5, "l")


@pytest.mark.parametrize("store_type", [NpyHintStore, ParquetHintStore])
def test_a_hint_store_follows_the_umask(tmp_path, umask_027, store_type):
    root = tmp_path / "out" / "hints"
    manifest = StoreManifest(format=store_type.format, height=4, width=6)
    with store_type(root, manifest) as store:
        store.write(KEY, np.ones((4, 6), np.float32))
    assert (root / "manifest.json").is_file() and len(modes(root)) >= 3
    assert_umask_modes(tmp_path / "out")


def test_training_checkpoints_follow_the_umask(tmp_path, umask_027):
    config = TrainConfig(log_dir=str(tmp_path / "out"), model_name="m")
    model, optimizer, scheduler = tiny_training()
    state = checkpoint.models_dir(config) / checkpoint.STATE_FILE
    checkpoint.save_state(state, model, optimizer, scheduler, checkpoint.TrainState(), config)
    folder = checkpoint.save_weights(config, model, optimizer, epoch=0)
    checkpoint.save_options(config)
    assert {p.name for p in folder.iterdir()} == {"encoder.pth", "depth.pth", "adam.pth"}
    assert_umask_modes(tmp_path / "out")


def test_tracking_files_follow_the_umask(tmp_path, umask_027):
    """The embedded store and its artifacts, metrics.jsonl, mlflow_run.json, the journal."""
    store = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    config = TrainConfig(log_dir=str(tmp_path / "runs"), model_name="m")
    with open_run(config, TrackingOptions(uri=store, experiment="safe"), 1) as tracker:
        RunReporter(config, tracker).log("train", {"loss": 1.0}, step=0)
    offline = Tracker.start(
        f"http://127.0.0.1:{CLOSED_PORT}", "safe", fallback_dir=tmp_path / "offline"
    )
    offline.log_dict({"a": 1}, "eval/summary.json")  # journal + stashed artifact
    assert (tmp_path / "offline" / JOURNAL).is_file()
    assert (tmp_path / "store" / "mlartifacts").is_dir()
    assert {p.name for p in config.run_dir.iterdir()} == {"metrics.jsonl", RUN_FILE}
    for folder in ("store", "runs", "offline"):
        assert_umask_modes(tmp_path / folder)
