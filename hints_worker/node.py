"""Hints on one node without Ray: every core matches, the fusion runs in batches on the GPU.

``NodeHints`` owns a pool of matcher processes (one per core by default; OpenCV's SGBM is
single-threaded). ``run`` sends the frames to the pool and, in the calling process, fuses
the candidates as they arrive, ``batch`` images per launch on ``device``, and writes the
hints: the cores keep matching while the GPU fuses, so neither waits on the other. The Ray
GPU-node worker (``hints_worker.actors``) runs the same class; on a machine without Ray, call
it directly.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterable, Iterator

import cv2
import torch

from depthhints.data.kitti import KittiRawLayout
from hints_worker.compute import (
    Candidates,
    Failure,
    FrameJob,
    FrameResult,
    HintConfig,
    fuse_candidates,
    match_frame,
)
from hints_worker.fusion import CANDIDATE_CHUNK
from hints_worker.sgm import make_matchers
from hints_worker.store import HintStore

GPU_CHUNK = 48
"""Candidates warped per launch on a GPU (4 images of 12); a CPU takes cache-sized chunks."""

_worker: dict = {}  # the matcher process's layout, settings and matchers


def _start_matcher(data_root: str, image_ext: str, config: HintConfig) -> None:
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    _worker.update(
        layout=KittiRawLayout(data_root, image_ext),
        config=config,
        matchers=make_matchers(config.matchers),
    )


def _match(job: FrameJob) -> tuple[FrameJob, list[Candidates], list[Failure]]:
    try:
        candidates, failures = match_frame(
            job, _worker["layout"], _worker["config"], _worker["matchers"]
        )
    except Exception as error:  # any per-frame failure is recorded; the run goes on
        reason = f"{type(error).__name__}: {error}"
        candidates, failures = [], [Failure((job.folder, job.frame, s), reason) for s in job.sides]
    return job, candidates, failures


class NodeHints:
    """Matcher processes and a batched fuser on ``device`` (default: CUDA when visible)."""

    def __init__(
        self,
        layout: KittiRawLayout,
        config: HintConfig,
        processes: int | None = None,
        device: str | None = None,
        batch: int = 8,
    ) -> None:
        self.config = config
        self.processes = processes or os.cpu_count() or 1
        # forked before this process touches CUDA; the matchers never do
        self.pool = multiprocessing.get_context("fork").Pool(
            self.processes, _start_matcher, (str(layout.root), layout.image_ext, config)
        )
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.batch = batch

    def run(self, jobs: Iterable[FrameJob], store: HintStore) -> Iterator[FrameResult]:
        """Compute and store the hints of ``jobs``; one result per frame as it is stored."""
        chunk = GPU_CHUNK if self.device.type == "cuda" else CANDIDATE_CHUNK
        waiting: list[tuple[FrameJob, list[Candidates], list[Failure]]] = []

        def fuse_waiting() -> Iterator[FrameResult]:
            candidates = [c for _, frame, _ in waiting for c in frame]
            for key, hint in fuse_candidates(candidates, self.config, self.device, chunk):
                store.write(key, hint)
            for _, frame, failures in waiting:
                yield FrameResult(written=[c.key for c in frame], failures=failures)
            waiting.clear()

        for matched in self.pool.imap_unordered(_match, jobs):
            waiting.append(matched)
            if sum(len(frame) for _, frame, _ in waiting) >= self.batch:
                yield from fuse_waiting()
        yield from fuse_waiting()
        store.flush()

    def close(self) -> None:
        self.pool.terminate()
        self.pool.join()

    def __enter__(self) -> NodeHints:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
