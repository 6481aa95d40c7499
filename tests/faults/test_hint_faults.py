"""Hint precomputation under faults: a killed driver (and the temporary files of killed
writers), a killed actor, a batch retried after it was stored, a full disk, a read-only store.
Whatever happens, a rerun (or Ray's retry) must end with every hint stored exactly once, with the
values of an uninterrupted run, and no process left behind. (A node stopped mid-run:
test_node_faults.py; the cause of a restart: test_hint_restarts.py.)"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import threading
import uuid
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
import ray
from ray.util import ActorPool

import hints_worker.actors as actors
from depthhints.data import synthetic as syn
from depthhints.data.hint_store import MANIFEST, HintKey, NpyHintStore, ParquetHintStore, open_store
from depthhints.data.kitti import KittiRawLayout, SplitItem, write_split_file
from hints_worker.actors import HintConfig, HintWorker, plan_jobs, precompute_hints
from hints_worker.restarts import STATE_API_UNAVAILABLE
from tests.faults.drivers import DEADLINE_S, driver, own_ray_env, wait_for

pytestmark = pytest.mark.slow

CONFIG = HintConfig(height=64, width=192)  # the images' own size: no resampling, quick SGBM
RENDERED_FRAMES = 8  # rendered by the generator (slow: ~0.1 s a frame) ...
FRAMES = 40  # ... the rest are copies with their rows rolled (distinct hints, no rendering)


def stored_keys(store_root: Path) -> set[HintKey]:
    """Keys in the store as a fresh reader sees them (none before the manifest exists)."""
    return open_store(store_root).keys() if (store_root / MANIFEST).is_file() else set()


def check_store(store_root: Path, store_format: str, reference: dict[HintKey, np.ndarray]) -> None:
    """Every key once, every final-named file complete, every value that of ``reference``."""
    store = open_store(store_root)
    assert store.format == store_format
    assert store.keys() == set(reference)  # nothing lost, no temporary file taken for a hint
    if isinstance(store, ParquetHintStore):
        for shard in store.shards():  # a shard under its final name is complete
            assert pq.ParquetFile(shard).metadata.num_rows > 0
        rows = list(store.iter_rows())
        assert sorted(key for key, _ in rows) == sorted(reference)  # one row per key
        for key, hint in rows:
            np.testing.assert_array_equal(hint, reference[key])  # stores are exact
    else:
        assert isinstance(store, NpyHintStore)
        files = sorted(store_root.rglob("*.npy"))
        assert files == sorted(store.path(key) for key in reference)
        for path in files:  # np.load fails on a torn file
            assert np.load(path).shape == (1, CONFIG.height, CONFIG.width)
    for key, hint in reference.items():
        np.testing.assert_array_equal(store.read(key), hint)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, Path, list[SplitItem]]:
    """A drive of FRAMES stereo frames and a split listing both sides of every frame."""
    root = tmp_path_factory.mktemp("data")
    config = syn.DatasetConfig(frames_per_drive=RENDERED_FRAMES, width=192, height=64, seed=11)
    syn.generate_dataset(root, config)
    layout = KittiRawLayout(root)
    folder = config.drives()[0].folder
    for frame in range(RENDERED_FRAMES, FRAMES):
        shift = 5 * (frame // RENDERED_FRAMES)  # rows only: each pair stays rectified
        for side in ("l", "r"):
            source = layout.image_path(folder, frame % RENDERED_FRAMES, side)
            image = cv2.imread(str(source), cv2.IMREAD_UNCHANGED)
            cv2.imwrite(str(layout.image_path(folder, frame, side)), np.roll(image, shift, 0))
    items = [SplitItem(folder, frame, side) for frame in range(FRAMES) for side in ("l", "r")]
    split = root / "splits" / "all_files.txt"
    write_split_file(split, items)
    return root, split, items


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def reference(dataset, cluster, tmp_path_factory) -> dict[HintKey, np.ndarray]:
    """Hints of an uninterrupted run (float32, .npy store)."""
    root, _, items = dataset
    store_root = tmp_path_factory.mktemp("reference")
    summary = precompute_hints(items, root, store_root, CONFIG, "npy", workers=2, progress=False)
    assert summary.ok and summary.written == len(items) == FRAMES * 2
    store = open_store(store_root)
    hints = {key: store.read(key) for key in sorted(store.keys())}
    assert len({hint.tobytes() for hint in hints.values()}) == len(hints)  # all distinct
    return hints


# --------------------------------------------------------------------------------------------
# The driver is SIGKILLed mid-run, then the run is repeated
# --------------------------------------------------------------------------------------------


def plant_stale_temporaries(store_root: Path, missing: list[HintKey]) -> None:
    """Torn files under the temporary names the store's writers use, as a writer killed before
    its rename leaves them: next to a stored hint and where hints are still missing."""
    store = open_store(store_root)
    if isinstance(store, ParquetHintStore):
        name = f".part-{uuid.uuid4().hex[:12]}-00000.parquet.tmp"
        (store.shard_dir / name).write_bytes(b"PAR1 torn")
        return
    stored = sorted(store.keys())[:1]
    for key in stored + missing:
        final = store.path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp").write_bytes(b"\x93NUMPY torn")


@pytest.mark.parametrize("store_format", ["npy", "parquet"])
def test_a_driver_killed_mid_run_leaves_no_process_and_a_rerun_completes_the_store(
    dataset, reference, cluster, tmp_path, store_format
):
    root, split, items = dataset
    store_root = tmp_path / "hints"
    command = [*hints_args(root, split), "--out", str(store_root), "--format", store_format]
    with driver(command, tmp_path / "driver.log") as process:
        wait_for(lambda: process.alive() and len(stored_keys(store_root)) >= 6, "first hints")
        process.kill()

    survivors = stored_keys(store_root)
    assert 0 < len(survivors) < len(reference), "the kill did not land mid-run"
    check_store(store_root, store_format, {key: reference[key] for key in survivors})
    plant_stale_temporaries(store_root, sorted(set(reference) - survivors)[:2])
    stale = sorted(store_root.rglob("*.tmp"))
    check_store(store_root, store_format, {key: reference[key] for key in survivors})

    summary = precompute_hints(
        items, root, store_root, CONFIG, store_format, workers=2, progress=False
    )
    assert summary.ok
    assert (summary.skipped, summary.written) == (len(survivors), len(reference) - len(survivors))
    check_store(store_root, store_format, reference)
    assert sorted(store_root.rglob("*.tmp")) == stale  # never taken for hints, nor touched


# --------------------------------------------------------------------------------------------
# An actor is killed from outside mid-run; Ray restarts it and retries its batch
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("store_format", ["npy", "parquet"])
def test_an_actor_killed_from_outside_is_restarted_and_its_batch_retried(
    dataset, reference, cluster, tmp_path, monkeypatch, store_format
):
    root, _, items = dataset
    pools: list[list[ray.actor.ActorHandle]] = []

    class RecordingPool(ActorPool):  # hands the test the run's actors
        def __init__(self, handles):
            super().__init__(handles)
            pools.append(list(handles))

    monkeypatch.setattr(actors, "ActorPool", RecordingPool)
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["summary"] = precompute_hints(
                items, root, tmp_path, CONFIG, store_format, workers=2, frames_per_task=1,
                progress=False,
            )  # fmt: skip
        except BaseException as error:
            outcome["error"] = error

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    wait_for(lambda: len(stored_keys(tmp_path)) >= 4 or not runner.is_alive(), "first hints")
    assert runner.is_alive() and len(pools) == 1 and len(pools[0]) == 2
    victim = pools[0][0]
    ray.kill(victim, no_restart=False)
    assert len(stored_keys(tmp_path)) < len(reference), "the kill did not land mid-run"
    runner.join(timeout=DEADLINE_S)
    assert not runner.is_alive(), "the run did not finish"

    assert "error" not in outcome, outcome.get("error")
    summary = outcome["summary"]
    assert summary.ok and summary.written == len(reference) and summary.skipped == 0
    restarts = {
        handle is victim: ray._private.state.actors(handle._actor_id.hex())["NumRestarts"]
        for handle in pools[0]
    }
    assert restarts == {True: 1, False: 0}
    (restart,) = summary.restarts  # seen by the driver; this cluster has no Ray dashboard
    assert restart.pid != restart.new_pid and restart.cause == STATE_API_UNAVAILABLE
    check_store(tmp_path, store_format, reference)


# --------------------------------------------------------------------------------------------
# A batch re-run by a restarted actor after its predecessor had flushed it
# --------------------------------------------------------------------------------------------


def test_a_batch_rerun_by_a_restarted_actor_is_not_stored_twice(
    dataset, reference, cluster, tmp_path
):
    """Ray runs an actor task at least once: an actor that dies after flushing a batch but before
    its reply reaches the driver has the batch retried on its restart."""
    root, _, items = dataset
    batch = plan_jobs(items[:6], set())  # 3 frames, both sides
    keys = [(job.folder, job.frame, side) for job in batch for side in job.sides]
    worker = HintWorker.remote(
        str(root), KittiRawLayout(root).image_ext, str(tmp_path),
        CONFIG.manifest("parquet", root), CONFIG,
    )  # fmt: skip
    first = ray.get(worker.process.remote(batch))
    assert [key for result in first for key in result.written] == keys
    ray.kill(worker, no_restart=False)  # dies with the batch flushed, as if before replying
    again = ray.get(worker.process.remote(batch))  # the retry, on the restarted actor
    ray.kill(worker)
    assert [key for result in again for key in result.written] == keys  # reported as done
    assert not [failure for result in again for failure in result.failures]
    check_store(tmp_path, "parquet", {key: reference[key] for key in keys})


# --------------------------------------------------------------------------------------------
# The output folder fills up, or is read-only (a mount namespace of the test's own: tmpfs with a
# size limit, a read-only bind mount; `unshare -rm` needs no privilege)
# --------------------------------------------------------------------------------------------

DISK_FULL = """
out="$1"; keep="$2"; shift 2
mount -t tmpfs -o size=400k tmpfs "$out"   # room for the manifest and about 6 hints
"$@" --out "$out/hints" > "$keep/full.log" 2>&1; echo $? > "$keep/full.rc"
cp -r "$out/hints" "$keep/after_full"   # the temporary files too, if any were left
mount -o remount,size=16m "$out"   # space freed
"$@" --out "$out/hints" > "$keep/rerun.log" 2>&1; echo $? > "$keep/rerun.rc"
cp -r "$out/hints" "$keep/final"
"""

READ_ONLY = """
out="$1"; keep="$2"; shift 2
mount --bind "$out" "$out" && mount -o remount,ro,bind "$out"
"$@" --out "$out/hints" > "$keep/ro.log" 2>&1; echo $? > "$keep/ro.rc"
"""


def run_in_namespace(script: str, out: Path, keep: Path, command: list[str]) -> None:
    """``script`` in a user + mount namespace, its ``$@`` the hints command (own Ray cluster)."""
    ray_tmp = tempfile.mkdtemp(prefix="dh-ray-", dir="/tmp")
    try:
        done = subprocess.run(
            ["unshare", "-rm", "bash", "-c", script, "bash", str(out), str(keep), *command],
            env=own_ray_env(ray_tmp),
            timeout=300,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)


def hints_args(root: Path, split: Path) -> list[str]:
    """``depthhints hints`` arguments for the dataset, all but the output."""
    return [
        "hints", "--data-path", str(root), "--split", str(split),
        "--height", str(CONFIG.height), "--width", str(CONFIG.width), "--workers", "2",
    ]  # fmt: skip


def hints_command(root: Path, split: Path) -> list[str]:
    return [sys.executable, "-m", "depthhints.cli", *hints_args(root, split)]


def test_a_full_disk_stops_the_run_with_a_clear_error_and_a_rerun_completes(
    dataset, reference, tmp_path
):
    root, split, _ = dataset
    out, keep = tmp_path / "out", tmp_path / "keep"
    out.mkdir(), keep.mkdir()
    run_in_namespace(DISK_FULL, out, keep, hints_command(root, split))

    assert (keep / "full.rc").read_text().strip() == "2"
    error = (keep / "full.log").read_text().splitlines()[-1]
    assert error.startswith("depthhints: error: cannot write ") and str(out / "hints") in error
    assert "No space left on device" in error and "run the command again" in error
    after_full = keep / "after_full"
    survivors = stored_keys(after_full)
    assert 0 < len(survivors) < len(reference), "the disk did not fill mid-run"
    assert f"({len(survivors)} of the {len(reference)} hints are stored)" in error
    assert not list(after_full.rglob("*.tmp"))  # nothing half-written left
    check_store(after_full, "npy", {key: reference[key] for key in survivors})

    assert (keep / "rerun.rc").read_text().strip() == "0"
    rerun = (keep / "rerun.log").read_text()
    written = len(reference) - len(survivors)
    assert f"{written} hints written, {len(survivors)} already in" in rerun
    check_store(keep / "final", "npy", reference)


def test_a_read_only_store_stops_the_run_and_changes_nothing(dataset, reference, cluster, tmp_path):
    root, split, items = dataset
    out, keep = tmp_path / "out", tmp_path / "keep"
    out.mkdir(), keep.mkdir()
    precompute_hints(items[:8], root, out / "hints", CONFIG, workers=2, progress=False)
    before = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    run_in_namespace(READ_ONLY, out, keep, hints_command(root, split))

    assert (keep / "ro.rc").read_text().strip() == "2"
    error = (keep / "ro.log").read_text().splitlines()[-1]
    assert error.startswith("depthhints: error: cannot write ") and str(out / "hints") in error
    assert "Read-only file system" in error and "(8 of the 80 hints are stored)" in error
    assert {path: path.read_bytes() for path in out.rglob("*") if path.is_file()} == before
