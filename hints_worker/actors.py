"""Hint precomputation on a pool of Ray actors.

The split's items are grouped by frame, so both sides of a stereo pair come from one decode and
one resize. Frames already in the store are skipped (resume). Batches of frames go to a
``ray.util.ActorPool``; each actor owns its matchers (``cv2.setNumThreads(1)``: one core each)
and writes straight into the store, flushing before it returns, so a reported result is on disk.
Ray restarts a dead actor and retries its batch; each restart is printed and recorded with its
cause (``hints_worker.restarts``). An unreadable image is recorded as a failure
(path and reason) while every other frame completes. A store that takes no more files (disk
full, read-only) stops the run with ``StoreWriteError``; what was stored stays, and a rerun
computes the rest. On a cluster whose every node has GPUs, each GPU gets one worker with its
share of the node's cores: matcher processes on the cores, the fusion batched on the GPU
(``hints_worker.node``); on other clusters nothing changes. A run that starts Ray itself keeps
the terminal for its own lines: Ray's output goes to ``<store>.ray.log`` beside the store
(:func:`ray_log_path`), or, with ``verbose``, to the terminal.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import ray
import torch
from ray.util import ActorPool
from tqdm import tqdm

from depthhints import probes
from depthhints.data.hint_store import (
    HintKey,
    StoreManifest,
    StoreWriteError,
    hint_key,
    open_store,
    write_atomically,
)
from depthhints.data.kitti import KittiRawLayout, SplitItem
from depthhints.hints.compute import (
    Failure,
    FrameJob,
    FrameResult,
    HintConfig,
    compute_frame,
    plan_jobs,
)
from depthhints.hints.sgm import make_matchers
from hints_worker.node import NodeHints
from hints_worker.preflight import preflight
from hints_worker.restarts import Restart, RestartWatch, WorkerProcess

FAILURES_FILE = "failures.json"
TIMING_FILE = "timing.json"
HINTS_RESOURCE = "hints"
"""Custom resource of the nodes meant for hint precomputation (platform/cluster.yaml): when the
cluster advertises it, each actor takes one unit, so actors run on those nodes only."""


class _StoreWorker:
    """What both kinds of worker share: the store, and a restart that reports stored hints.

    Ray retries the batch of an actor that died, possibly after the batch was flushed but
    before the reply got through. A restarted actor therefore reports the hints already in the
    store as written instead of storing them again (a Parquet store would hold the key twice).
    """

    def __init__(self, store_root: str, manifest: StoreManifest) -> None:
        self.store = open_store(store_root, manifest)
        with warnings.catch_warnings():  # Ray 2.60 reads its own deprecated actor_id here
            warnings.simplefilter("ignore", DeprecationWarning)
            self.restarted = bool(ray.get_runtime_context().was_current_actor_reconstructed)

    def ready(self) -> WorkerProcess:
        """Returns once the actor is constructed: the process it runs in."""
        return WorkerProcess.current()

    def run_batch(self, jobs: Sequence[FrameJob]) -> tuple[WorkerProcess, list[FrameResult]]:
        """The worker's ``process(jobs)``, and the process that ran it: a new one means a
        restart."""
        return WorkerProcess.current(), self.process(jobs)

    def _unstored(self, job: FrameJob) -> tuple[FrameJob, list[HintKey]]:
        """``job`` without the sides a restarted actor finds stored, and those keys."""
        probes.crash_at_frame(job.frame)
        keys = [(job.folder, job.frame, side) for side in job.sides]
        stored = [key for key in keys if self.restarted and key in self.store]
        return replace(job, sides=tuple(key[2] for key in keys if key not in stored)), stored


@ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=3)
class HintWorker(_StoreWorker):
    """One core's worth of hint computation (matching and fusion), writing into the store."""

    def __init__(
        self,
        data_root: str,
        image_ext: str,
        store_root: str,
        manifest: StoreManifest,
        config: HintConfig,
    ):
        cv2.setNumThreads(1)
        torch.set_num_threads(1)
        super().__init__(store_root, manifest)
        self.layout = KittiRawLayout(data_root, image_ext)
        self.config = config
        self.matchers = make_matchers(config.matchers)

    def process(self, jobs: Sequence[FrameJob]) -> list[FrameResult]:
        """Compute a batch and flush it, so that every reported hint is on disk."""
        results = []
        for job in jobs:
            job, stored = self._unstored(job)
            try:
                result = (
                    compute_frame(job, self.layout, self.config, self.matchers, self.store)
                    if job.sides
                    else FrameResult()
                )
            except StoreWriteError:  # the store is full or read-only: no frame can succeed
                raise
            except Exception as error:  # any per-frame failure is recorded; the run goes on
                reason = f"{type(error).__name__}: {error}"
                keys = [(job.folder, job.frame, side) for side in job.sides]
                result = FrameResult(failures=[Failure(key, reason) for key in keys])
            result.written[:0] = stored
            results.append(result)
        self.store.flush()
        return results


@ray.remote(max_restarts=-1, max_task_retries=3)
class GpuNodeWorker(_StoreWorker):
    """A GPU and its share of a node's cores: matcher processes on the cores, the fusion on
    the GPU in batches (``hints_worker.node``), writing into the store."""

    def __init__(
        self,
        data_root: str,
        image_ext: str,
        store_root: str,
        manifest: StoreManifest,
        config: HintConfig,
        processes: int,
    ):
        super().__init__(store_root, manifest)
        layout = KittiRawLayout(data_root, image_ext)
        self.node = NodeHints(layout, config, processes)  # CUDA when Ray granted a GPU

    def process(self, jobs: Sequence[FrameJob]) -> list[FrameResult]:
        """Compute a batch (its frames matched in parallel) and flush it."""
        todo, results = [], []
        for job in jobs:
            job, stored = self._unstored(job)
            if stored:
                results.append(FrameResult(written=stored))
            if job.sides:
                todo.append(job)
        return results + list(self.node.run(todo, self.store))


def gpu_share(nodes: Iterable[dict]) -> float:
    """GPU fraction to give each one-CPU actor so that the fusion runs on GPUs (``ray.nodes()``).

    Every node's CPUs can then hold an actor: the share is the smallest GPUs-per-CPU ratio over
    the live nodes (at most 1), and 0 — CPU fusion — if any node with CPUs has no GPU.
    """
    ratios = [
        node["Resources"].get("GPU", 0) / node["Resources"]["CPU"]
        for node in nodes
        if node.get("Alive") and node["Resources"].get("CPU", 0) >= 1
    ]
    return min(1.0, *ratios) if ratios else 0.0


def node_workers(nodes: Sequence[dict]) -> tuple[int, int]:
    """(GPU-node workers, cores each) for a pool of nodes (``ray.nodes()``): one worker per GPU
    with its node's cores per GPU when every node with CPUs has a GPU; else (0, 0), and one-core
    actors match and fuse on the CPU."""
    share = gpu_share(nodes)
    if not share:
        return 0, 0
    gpus = sum(int(n["Resources"].get("GPU", 0)) for n in nodes if n.get("Alive"))
    return gpus, max(1, int(1 / share))


@contextmanager
def ray_session(
    address: str | None = None, verbose: bool = False, log_file: Path | None = None
) -> Iterator[None]:
    """Use the connected Ray cluster, or start one (local, or joining ``address``) for the block
    with the project's Ray setup (``depthhints.train.trainer.init_ray``): Ray's own output in
    ``log_file`` (its path printed; a temporary file where that folder takes none), or on the
    terminal if ``verbose``."""
    started = not ray.is_initialized()
    if started:
        from depthhints.train.trainer import init_ray

        log_file = None if verbose or log_file is None else _writable_log(log_file)
        init_ray(address, verbose=verbose, log_file=log_file)
    try:
        yield
    finally:
        if started:
            ray.shutdown()


def ray_log_path(store_root: str | os.PathLike) -> Path:
    """Where a run that starts Ray sends Ray's own output: ``<store>.ray.log`` beside the store,
    so that it is kept with the hints it is about while the store's folder holds only the store
    (a log inside would be copied, listed and checked with it)."""
    store_root = Path(store_root).resolve()
    return store_root.with_name(f"{store_root.name}.ray.log")


def _writable_log(path: Path) -> Path:
    """``path`` if a log can be written there, else a file of the temporary folder (a store in a
    read-only folder still reports its own error, not the log's)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8"):
            return path
    except OSError:
        return Path(tempfile.gettempdir()) / f"depthhints-hints-{os.getpid()}.ray.log"


@dataclass
class Summary:
    """Outcome of a precompute run."""

    written: int
    skipped: int
    failures: list[Failure]
    store: Path
    startup_seconds: float = 0.0
    """From the start of the run until every actor was ready."""
    compute_seconds: float = 0.0
    """From then until the last result."""
    actors: int = 0
    nodes: list[str] = field(default_factory=list)
    """The ids of the Ray nodes the actors ran on."""
    restarts: list[Restart] = field(default_factory=list)
    """The hint workers Ray restarted (their batches retried), with why."""

    @property
    def metrics(self) -> dict[str, int]:
        """The run's counts as MLflow metrics (``hints/restarts``: workers Ray restarted)."""
        return {
            "hints/written": self.written,
            "hints/skipped": self.skipped,
            "hints/failed": len(self.failures),
            "hints/restarts": len(self.restarts),
        }

    @property
    def seconds_per_image_per_actor(self) -> float | None:
        """What one image costs one actor (one core for the matching), once actors are up."""
        done = self.written + len(self.failures)
        return self.compute_seconds * self.actors / done if done and self.actors else None

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def images_per_second(self) -> float:
        """Hints written per second once the actors are up (failures do not count)."""
        return self.written / self.compute_seconds if self.compute_seconds else 0.0


def precompute_hints(
    items: Sequence[SplitItem],
    data_root: str | os.PathLike,
    store_root: str | os.PathLike,
    config: HintConfig | None = None,
    store_format: str = "npy",
    workers: int | None = None,
    frames_per_task: int = 2,
    image_ext: str | None = None,
    progress: bool = True,
    address: str | None = None,
    precision: str = "exact",
    verbose: bool = False,
) -> Summary:
    """Compute the hints of ``items`` that ``store_root`` lacks, on a Ray actor pool.

    Checks the data, the split and the store first (``hints_worker.preflight``): a run that
    would mostly fail, or whose store holds other settings, stops before Ray starts, and one
    with nothing left to compute never starts it. Then uses the connected Ray cluster, or starts
    one for the run (local, or joining ``address``; Ray's output in :func:`ray_log_path`, or on
    the terminal if ``verbose``). ``workers`` defaults to one actor per CPU of the cluster.
    Failed items are listed in ``<store_root>/failures.json``; each actor restart is printed
    (above the progress bar) and kept in the summary and ``<store_root>/timing.json``.
    """
    config = config or HintConfig()
    layout = KittiRawLayout(data_root, image_ext)
    manifest = config.manifest(store_format, data_root, precision)
    store_root = Path(store_root)
    requested = {hint_key(item) for item in items}
    plan = preflight(items, layout, store_root, manifest)
    jobs = plan_jobs(plan.todo, plan.done)
    todo = sum(len(job.sides) for job in jobs)
    written, failures, startup, compute, count, nodes = 0, [], 0.0, 0.0, 0, []
    watch = RestartWatch([])
    if jobs:
        open_store(store_root, manifest)  # creates the store and its manifest
        start = time.perf_counter()
        with ray_session(address, verbose, ray_log_path(store_root)):
            labelled = ray.cluster_resources().get(HINTS_RESOURCE, 0)
            capacity = labelled or ray.cluster_resources().get("CPU", 1)
            count = min(workers or int(capacity) or 1, len(jobs))
            pool_nodes = [
                n for n in ray.nodes() if not labelled or HINTS_RESOURCE in n["Resources"]
            ]
            arguments = (str(layout.root), layout.image_ext, str(store_root), manifest, config)
            gpu_workers, cores = node_workers(pool_nodes)
            if gpu_workers:  # matcher processes on every core, the fusion batched on the GPU
                count = min(workers or gpu_workers, len(jobs))
                frames_per_task = max(frames_per_task, 2 * cores)
                actors = [
                    GpuNodeWorker.options(
                        num_cpus=cores,
                        num_gpus=1,
                        scheduling_strategy="SPREAD",
                        resources={HINTS_RESOURCE: cores} if labelled else {},
                    ).remote(*arguments, cores)
                    for _ in range(count)
                ]
            else:
                actors = [
                    HintWorker.options(
                        scheduling_strategy="SPREAD",  # over every node: a lost node costs a share
                        resources={HINTS_RESOURCE: 1} if labelled else {},
                    ).remote(*arguments)
                    for _ in range(count)
                ]
            watch = RestartWatch(ray.get([actor.ready.remote() for actor in actors]))
            nodes = sorted({process.node for process in watch.current.values()})
            startup = time.perf_counter() - start
            batches = [jobs[i : i + frames_per_task] for i in range(0, len(jobs), frames_per_task)]
            tasks = ActorPool(actors).map_unordered(
                lambda a, batch: a.run_batch.remote(batch), batches
            )
            try:
                with tqdm(total=todo, unit="img", desc="depth hints", disable=not progress) as bar:
                    for process, results in tasks:
                        if restart := watch.seen(process):
                            tqdm.write(restart.line())
                        for result in results:
                            written += len(result.written)
                            failures += result.failures
                            bar.update(len(result.written) + len(result.failures))
            except StoreWriteError as error:  # the store takes no more: stop, keep what is stored
                with suppress(OSError):  # the failures list may not fit either
                    _write_failures(store_root, failures)
                stored = len(requested & open_store(store_root).keys())
                raise StoreWriteError(
                    f"{getattr(error, 'cause', error)} ({stored} of the {len(requested)} hints "
                    "are stored)"
                ) from None
            finally:
                for actor in actors:
                    ray.kill(actor)
            compute = time.perf_counter() - start - startup
    if jobs:
        _write_failures(store_root, failures)
    skipped = len(requested) - todo
    summary = Summary(
        written, skipped, failures, store_root, startup, compute, count, nodes, watch.restarts
    )
    if jobs:
        _write_timing(summary)
    return summary


def _write_timing(summary: Summary) -> None:
    """``<store>/timing.json``: what the last run that computed hints cost (the hint-quality
    report's cost column), and the worker restarts it saw."""
    record = {
        "written": summary.written,
        "failed": len(summary.failures),
        "actors": summary.actors,
        "startup_seconds": round(summary.startup_seconds, 3),
        "compute_seconds": round(summary.compute_seconds, 3),
        "seconds_per_image_per_actor": summary.seconds_per_image_per_actor,
        "restarts": [restart.as_dict() for restart in summary.restarts],
    }
    write_atomically(summary.store / TIMING_FILE, (json.dumps(record, indent=2) + "\n").encode())


def read_timing(store_root: str | os.PathLike) -> dict | None:
    """The store's ``timing.json`` (None if no run computed hints there)."""
    try:
        return json.loads((Path(store_root) / TIMING_FILE).read_text())
    except (OSError, ValueError):
        return None


def _write_failures(store_root: Path, failures: list[Failure]) -> None:
    path = store_root / FAILURES_FILE
    if not failures:
        path.unlink(missing_ok=True)
        return
    records = [{"key": list(f.key), "reason": f.reason} for f in failures]
    write_atomically(path, (json.dumps(records, indent=2) + "\n").encode())
