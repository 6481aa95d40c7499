"""Hint worker restarts say why: a worker that dies at a frame is restarted by Ray and its batch
retried; the run prints the restart with the cause Ray recorded, keeps it in its summary, its
metrics and the store's timing.json, and stores every hint as an uninterrupted run does. (Where
Ray's state API is unavailable the cause is said to be unknown: test_hint_faults.py.)"""

from __future__ import annotations

import numpy as np
import pytest
import ray

from depthhints.data import synthetic as syn
from depthhints.data.hint_store import open_store
from depthhints.data.kitti import SplitItem, read_split_file
from depthhints.errors import first_sentence
from depthhints.hint_report import print_summary
from depthhints.probes import CRASH_ONCE_ENV
from hints_worker.actors import HintConfig, precompute_hints, read_timing

pytestmark = pytest.mark.slow

CONFIG = HintConfig(height=64, width=192)  # the images' own size: no resampling, quick SGBM


@pytest.fixture(scope="module")
def drive(tmp_path_factory) -> tuple[object, list[SplitItem]]:
    root = tmp_path_factory.mktemp("drive")
    config = syn.DatasetConfig(frames_per_drive=6, width=192, height=64, seed=7)
    splits = syn.generate_dataset(root, config)
    items = [item for part in ("train", "val", "test") for item in read_split_file(splits[part])]
    return root, items


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A cluster with Ray's dashboard, which serves the state API that knows why a worker died;
    its workers die once at the frame the arm file names."""
    arm = tmp_path_factory.mktemp("crash") / "arm"
    ray.init(
        num_cpus=2,
        include_dashboard=True,
        log_to_driver=False,
        runtime_env={"env_vars": {CRASH_ONCE_ENV: str(arm)}},
    )
    yield arm
    ray.shutdown()


def test_a_worker_that_died_is_reported_with_its_cause_and_every_hint_is_right(
    drive, cluster, tmp_path, capsys
):
    root, items = drive
    reference = precompute_hints(items, root, tmp_path / "reference", CONFIG, progress=False)
    assert reference.ok and reference.restarts == []
    assert reference.metrics["hints/restarts"] == 0

    cluster.write_text(str(sorted({item.frame for item in items})[2]))  # that frame's worker dies
    capsys.readouterr()
    store_root = tmp_path / "hints"
    summary = precompute_hints(
        items, root, store_root, CONFIG, workers=2, frames_per_task=1, progress=False
    )
    terminal = capsys.readouterr().out
    assert not cluster.exists(), "the crash hook did not fire"

    # every hint stored once, with the values of the uninterrupted run
    assert summary.ok and summary.written == reference.written
    expected, got = open_store(tmp_path / "reference"), open_store(store_root)
    assert got.keys() == expected.keys()
    for key in sorted(expected.keys()):
        np.testing.assert_array_equal(got.read(key), expected.read(key))
    assert not list(store_root.rglob("*.tmp"))

    # the restart, with the cause Ray recorded for the process that exited
    (restart,) = summary.restarts
    assert restart.pid != restart.new_pid
    assert restart.node == ray.nodes()[0]["NodeManagerAddress"] and not restart.new_node
    assert restart.cause.startswith("SYSTEM_ERROR: "), restart.cause
    assert "exits" in restart.cause and restart.detail, restart
    assert "\n" not in restart.cause
    line = restart.line()
    assert line.startswith(f"hint worker on node {restart.node} restarted ")
    assert f"(pid {restart.pid} → {restart.new_pid}): SYSTEM_ERROR: " in line
    assert line.endswith("; its batch is retried")
    assert terminal.splitlines().count(line) == 1  # printed once, as it happened

    # kept: the summary's metrics, the store's timing.json, the printed summary
    assert summary.metrics["hints/restarts"] == 1
    assert read_timing(store_root)["restarts"] == [restart.as_dict()]
    assert print_summary(summary)
    assert f"  {restart.describe()}" in capsys.readouterr().out.splitlines()


def test_a_cause_is_shown_as_its_first_sentence_on_one_short_line() -> None:
    account = "Worker exited unexpectedly.\n  It was killed (SIGKILL). Check the logs."
    assert first_sentence(account) == "Worker exited unexpectedly"
    assert first_sentence("no full stop") == "no full stop"
    long = first_sentence("x" * 300, max_chars=20)
    assert len(long) == 20 and long.endswith("…")
