"""What a fault costs: the same job uninterrupted (baseline) and with a fault injected (ours).

- Training: Ray Train, 2 CPU workers, stereo ResNet18 from scratch at 192×640, batch 2 per
  worker, 3 epochs of 4 steps, a checkpoint at each epoch end. The fault: rank 0's process
  SIGKILLs itself after step 6 (mid-epoch 1); ``FailureConfig`` restarts the worker group from the
  epoch-0 checkpoint. The test suite shows the result is bit-identical; here, the time.
- Hints: 2 actors on 96 images at 192×640 (parity matchers). The fault: one actor ``ray.kill``-ed
  after the first 16 hints are stored; Ray restarts it and retries its batch.

Each run once, in this process, on one local Ray cluster (2 CPUs). Reported: wall time of each,
the ratio, and what was recomputed.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from pathlib import Path

from bench.report import table, write_section

EPOCHS, KILL_AT = 3, 6
FRAMES = 48


def _drive(root: Path) -> Path:
    from depthhints.data import synthetic as syn

    syn.generate_dataset(
        root, syn.DatasetConfig(frames_per_drive=FRAMES, width=640, height=192, seed=7), workers=2
    )
    return root


def _train(root: Path, out: Path, name: str, hooks: dict | None) -> tuple[float, list[int]]:
    from depthhints.config import TrainConfig
    from depthhints.data.kitti import read_split_file, write_split_file
    from depthhints.train.reporting import TrackingOptions
    from depthhints.train.trainer import RayOptions, fit_distributed

    split = out / "split"
    split.mkdir(parents=True, exist_ok=True)
    items = read_split_file(root / "splits" / "train_files.txt")
    write_split_file(split / "train_files.txt", items[:16])  # 16 / 2 workers / batch 2 = 4 steps
    write_split_file(split / "val_files.txt", items[:2])
    config = TrainConfig(
        data_path=str(root), split=str(split), log_dir=str(out / "runs"), model_name=name,
        use_stereo=True, frame_ids=[0], batch_size=2, num_epochs=EPOCHS, weights_init="scratch",
        num_workers=0, log_frequency=1,
    )  # fmt: skip
    start = time.perf_counter()
    fit_distributed(
        config,
        RayOptions(num_workers=2, max_failures=1),
        hooks,
        tracking=TrackingOptions(uri=f"sqlite:///{out / 'mlflow.db'}"),
    )
    seconds = time.perf_counter() - start
    lines = (config.run_dir / "metrics.jsonl").read_text().splitlines()
    return seconds, [r["step"] for r in map(json.loads, lines) if r["phase"] == "train"]


def _hints(root: Path, store: Path, kill: bool) -> tuple[float, int]:
    import ray

    import hints_worker.actors as actors
    from depthhints.data.hint_store import MANIFEST, open_store
    from depthhints.data.kitti import SplitItem
    from hints_worker.actors import HintConfig, precompute_hints

    folder = json.loads((root / "synthetic.json").read_text())["drives"][0]
    items = [SplitItem(folder, f, s) for f in range(FRAMES) for s in "lr"]
    pools: list[list] = []
    original = actors.ActorPool

    class RecordingPool(original):  # hands the bench the run's actors
        def __init__(self, handles):
            super().__init__(handles)
            pools.append(list(handles))

    def killer() -> None:
        while not ((store / MANIFEST).is_file() and len(open_store(store).keys()) >= 16):
            time.sleep(0.01)
        ray.kill(pools[0][0], no_restart=False)

    actors.ActorPool = RecordingPool
    try:
        thread = threading.Thread(target=killer, daemon=True)
        if kill:
            thread.start()
        start = time.perf_counter()
        summary = precompute_hints(
            items, root, store, HintConfig(height=192, width=640), workers=2, frames_per_task=2,
            progress=False,
        )  # fmt: skip
        seconds = time.perf_counter() - start
    finally:
        actors.ActorPool = original
    assert summary.ok and summary.written == len(items)
    restarts = ray._private.state.actors(pools[0][0]._actor_id.hex())["NumRestarts"]
    assert restarts == int(kill), f"expected {int(kill)} restarts, got {restarts}"
    return seconds, restarts


def main() -> None:
    from depthhints.train.trainer import init_ray

    with tempfile.TemporaryDirectory() as tmp:
        root = _drive(Path(tmp) / "kitti")
        init_ray(num_cpus=2, include_dashboard=False, log_to_driver=False)
        base_s, base_steps = _train(root, Path(tmp) / "train_base", "base", None)
        marker = str(Path(tmp) / "killed")
        fault_s, fault_steps = _train(
            root, Path(tmp) / "train_fault", "fault", {"kill_at_step": KILL_AT, "marker": marker}
        )
        hints_base, _ = _hints(root, Path(tmp) / "hints_base", kill=False)
        hints_fault, _ = _hints(root, Path(tmp) / "hints_fault", kill=True)
    retrained = len(fault_steps) - len(base_steps)
    rows = [
        [
            "training: a worker process killed mid-epoch",
            f"{base_s:.1f} s",
            f"{fault_s:.1f} s",
            f"{fault_s / base_s:.2f}× (+{fault_s - base_s:.1f} s)",
            f"{retrained} of {len(base_steps)} steps retrained, plus the worker group's restart",
        ],
        [
            "hints: an actor killed mid-run",
            f"{hints_base:.1f} s",
            f"{hints_fault:.1f} s",
            f"{hints_fault / hints_base:.2f}× (+{hints_fault - hints_base:.1f} s)",
            "the killed actor's batch (2 frames) recomputed, plus the actor's restart",
        ],
    ]
    body = (
        "The same job uninterrupted (baseline) and with the fault injected, in one run on a local "
        f"Ray cluster of 2 CPUs. Training: 2 workers, ResNet18 from scratch at 640×192, batch 2 "
        f"per worker, {EPOCHS} epochs of 4 steps, a checkpoint each epoch; rank 0 SIGKILLed "
        f"after step {KILL_AT}. Hints: 2 actors, {2 * FRAMES} images at 640×192; one actor "
        "killed after 16 hints were stored. Both end equal to the uninterrupted run "
        "(tests/faults/).\n\n"
        + table(["fault", "uninterrupted", "with the fault", "ratio", "recomputed"], rows)
    )
    write_section("faults", "Cost of a fault (bench_faults.py)", body)
    print(body)


if __name__ == "__main__":
    main()
