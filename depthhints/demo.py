"""The demo: the whole pipeline on a small synthetic drive, printed as it goes.

A synthetic KITTI-style tree and a picture of one stereo pair, fused SGM depth hints on a Ray
actor pool (and the fast preset's, with the quality and cost of both logged to MLflow), the
stereo + hints recipe and its no-hint baseline as a Ray Tune sweep of Ray Train runs, the
results table (``depthhints demo`` adds the HTML report); :func:`synthesize` is also
``depthhints synth``.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from depthhints.data.kitti import KittiRawLayout, SplitItem, read_split_file
from depthhints.data.synthetic import DatasetConfig, generate_dataset
from depthhints.errors import DepthHintsError


def synthesize(root: str | Path, config: DatasetConfig, workers: int = 1) -> dict[str, Path]:
    """Write the synthetic tree under ``root``, print its size and speed; the split files."""
    start = time.perf_counter()
    splits = generate_dataset(root, config, workers=workers, progress=True)
    seconds = time.perf_counter() - start
    root = Path(root)
    files = [p for p in root.rglob("*") if p.is_file()]
    size_mb = sum(p.stat().st_size for p in files) / 1e6
    frames = config.num_drives * config.frames_per_drive
    print(
        f"wrote {len(files)} files ({size_mb:.1f} MB) under {root} in {seconds:.1f} s "
        f"({frames / seconds:.2f} stereo frames/s)"
    )
    for part, path in splits.items():
        print(f"  split {part:5s}: {path} ({len(path.read_text().splitlines())} lines)")
    return splits


def run_demo(
    out: Path,
    dataset: DatasetConfig,
    *,
    workers: int,
    epochs: int,
    learning_rate: float,
    train_workers: int,
    verbose: bool = False,
) -> dict[str, Path] | None:
    """The demo into ``out``; the results table's files, or None when a hint failed (the
    summary printed says which).

    ``workers``: processes rendering frames and hint actors; ``train_workers``: Ray Train
    workers of each trial, trained ``epochs`` epochs at ``learning_rate`` (from scratch: the
    demo runs a few dozen steps without ImageNet weights). Ray's and Tune's own output goes to
    ``<out>/ray.log`` (with ``verbose``, to the terminal).
    """
    out = Path(out)
    root = out / "kitti_synthetic"
    splits = synthesize(root, dataset, workers)
    layout = KittiRawLayout(root)
    item = read_split_file(splits["test"])[0]
    picture = _stereo_preview(layout, item, out / "stereo_preview.png")
    print(f"picture of a stereo pair with its ground-truth depth and LiDAR: {picture}")
    items = [item for path in splits.values() for item in read_split_file(path)]
    from depthhints.train.trainer import RAY_LOG

    with _local_ray(out / RAY_LOG, verbose):
        if not _hints(root, items, layout, tracking_uri(out), workers):
            return None
        return _table(root, out, epochs, learning_rate, train_workers, verbose)


def tracking_uri(out: Path) -> str:
    """The demo's MLflow store: $MLFLOW_TRACKING_URI, else ``<out>/runs/mlflow.db``."""
    from depthhints.config import TrainConfig
    from depthhints.train.reporting import TrackingOptions

    return TrackingOptions().tracking_uri(TrainConfig(log_dir=str(out / "runs")))


def _stereo_preview(layout: KittiRawLayout, item: SplitItem, path: Path) -> Path:
    from depthhints.visualize import stereo_preview

    return stereo_preview(layout, item.folder, item.frame, path)


@contextlib.contextmanager
def _local_ray(log_file: Path, verbose: bool) -> Iterator[None]:
    """One local Ray cluster for the hint actors, Ray Tune and Ray Train (unless one is up),
    its own output in ``log_file`` unless ``verbose``."""
    import ray

    from depthhints.train.trainer import init_ray

    started = not ray.is_initialized()
    if started:
        init_ray(verbose=verbose, log_file=log_file)
    try:
        yield
    finally:
        if started:
            ray.shutdown()


def _hints(
    root: Path, items: list[SplitItem], layout: KittiRawLayout, uri: str, workers: int
) -> bool:
    """The published hints and the fast preset's, their quality and cost logged to MLflow;
    the fast preset's store is removed once measured (training uses the published hints)."""
    from depthhints.hint_report import hint_quality
    from hints_worker.actors import HintConfig, precompute_hints

    summary = precompute_hints(items, root, root / "depth_hints", workers=workers)
    print(
        f"fused SGM depth hints (Ray actor pool, {workers} workers): {summary.written} "
        f"written, {summary.skipped} already there, {len(summary.failures)} failed -> "
        f"{summary.store}"
    )
    if not summary.ok:
        return False
    fast = precompute_hints(
        items, root, root / "depth_hints_fast", HintConfig(matchers="fast"), workers=workers
    )
    if not fast.ok:
        raise DepthHintsError(f"fast hints failed: {fast.failures[:3]}")
    for store in (root / "depth_hints", fast.store):
        row = hint_quality(store, layout, tracking_uri=uri)
        print(
            f"hint quality {row['matchers']}/{row['fusion']}: coverage {row['coverage']:.3f}, "
            f"abs rel {row['abs_rel']:.4f}, d<1.25 {row['delta1']:.3f}"
        )
    shutil.rmtree(fast.store)  # a demo's footprint: its rows in MLflow are what it is kept for
    print(f"removed {fast.store} once measured: the demo trains with the published hints")
    return True


def _table(
    root: Path, out: Path, epochs: int, learning_rate: float, train_workers: int, verbose: bool
) -> dict[str, Path]:
    """The stereo + hints recipe and its no-hint baseline as a Ray Tune sweep, each trial on
    Ray Train with ``train_workers`` workers, evaluated into the results table.

    Each trial keeps one copy of its weights: the last epoch's folder in its run folder (what
    the table and the report score; MLflow's artifact links to the same files), and no Train
    checkpoints once it ended."""
    from depthhints.experiments.reproduce import reproduce
    from depthhints.train.trainer import RayOptions
    from depthhints.tune import SweepOptions

    runs = out / "runs"
    for stale in [runs / "tune" / "table_demo", *runs.glob("table_*")]:  # a demo starts afresh
        shutil.rmtree(stale, ignore_errors=True)
    print(
        f"Ray Tune: stereo training with and without depth hints, {epochs} epochs each, "
        f"on Ray Train with {train_workers} workers ..."
    )
    ray_options = RayOptions(num_workers=train_workers, max_failures=0, verbose=verbose)
    options = SweepOptions(max_concurrent_trials=1, ray=ray_options)
    train_items = len(read_split_file(root / "splits" / "train_files.txt"))
    overrides = {
        "num_epochs": epochs,
        "learning_rate": learning_rate,
        "batch_size": max(1, min(2, train_items // train_workers)),
        "save_frequency": epochs,  # the last epoch's weights only
    }
    outcome = reproduce("demo", out, root, options=options, overrides=overrides)
    if outcome.failed:
        raise DepthHintsError(f"demo trials failed: {outcome.failed}; see the log above")
    return outcome.files
