"""Hints on one node without Ray: every core matches, the fusion runs in batches on the GPU.

``NodeHints`` owns a pool of matcher processes (one per core by default; OpenCV's SGBM is
single-threaded). ``run`` sends the frames to the pool and, in the calling process, fuses
the candidates as they arrive, ``batch`` images per launch on the GPU, and writes the hints:
the cores keep matching while the GPU fuses, so neither waits on the other. Without a GPU each
process fuses its own frames, as the one-core Ray actors do. The Ray GPU-node worker
(``hints_worker.actors``) runs the same class; on a machine without Ray, call it directly.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterable, Iterator
from functools import partial

import cv2
import torch

from depthhints.data.hint_store import HintStore
from depthhints.data.kitti import KittiRawLayout
from depthhints.hints.compute import (
    Candidates,
    Failure,
    FrameJob,
    FrameResult,
    HintConfig,
    fuse_candidates,
    match_frame,
)
from depthhints.hints.sgm import make_matchers

GPU_CHUNK = 48
"""Candidates warped per launch on a GPU (4 images of 12)."""

_worker: dict = {}  # the matcher process's layout, settings and matchers


def _start_matcher(data_root: str, image_ext: str, config: HintConfig) -> None:
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    _worker.update(
        layout=KittiRawLayout(data_root, image_ext),
        config=config,
        matchers=make_matchers(config.matchers),
    )


def _work(job: FrameJob, fuse: bool) -> tuple[list, list[Failure]]:
    """One frame in a matcher process: its candidates, or with ``fuse`` its (key, hint) pairs;
    and its failures."""
    config = _worker["config"]
    try:
        candidates, failures = match_frame(job, _worker["layout"], config, _worker["matchers"])
    except Exception as error:  # any per-frame failure is recorded; the run goes on
        reason = f"{type(error).__name__}: {error}"
        return [], [Failure((job.folder, job.frame, side), reason) for side in job.sides]
    return (fuse_candidates(candidates, config) if fuse else candidates), failures


class NodeHints:
    """Matcher processes, and the fusion: batched on ``device`` when it is a GPU (default:
    CUDA when visible), else in each matcher process, as a one-core actor does it.
    ``batched`` overrides that choice (the GPU's way on a CPU: tests)."""

    def __init__(
        self,
        layout: KittiRawLayout,
        config: HintConfig,
        processes: int | None = None,
        device: str | None = None,
        batch: int = 8,
        batched: bool | None = None,
    ) -> None:
        self.config = config
        self.processes = processes or os.cpu_count() or 1
        # spawned, not forked: a fork of a process whose OpenMP or gRPC threads hold a lock
        # (torch's, Ray's) can hang the child
        self.pool = multiprocessing.get_context("spawn").Pool(
            self.processes, _start_matcher, (str(layout.root), layout.image_ext, config)
        )
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.batch = batch
        self.batched = self.device.type != "cpu" if batched is None else batched

    def run(self, jobs: Iterable[FrameJob], store: HintStore) -> Iterator[FrameResult]:
        """Compute and store the hints of ``jobs``; one result per frame as it is stored."""
        waiting: list[tuple[list[Candidates], list[Failure]]] = []

        def store_waiting() -> Iterator[FrameResult]:
            candidates = [c for frame, _ in waiting for c in frame]
            fused = fuse_candidates(candidates, self.config, self.device, GPU_CHUNK)
            for key, hint in fused:
                store.write(key, hint)
            for frame, failures in waiting:
                yield FrameResult(written=[c.key for c in frame], failures=failures)
            waiting.clear()

        work = partial(_work, fuse=not self.batched)
        for done, failures in self.pool.imap_unordered(work, jobs):
            if self.batched:
                waiting.append((done, failures))
                if sum(len(frame) for frame, _ in waiting) >= self.batch:
                    yield from store_waiting()
            else:
                for key, hint in done:
                    store.write(key, hint)
                yield FrameResult(written=[key for key, _ in done], failures=failures)
        yield from store_waiting()
        store.flush()

    def close(self) -> None:
        self.pool.terminate()
        self.pool.join()

    def __enter__(self) -> NodeHints:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
