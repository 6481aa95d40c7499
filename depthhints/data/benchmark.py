"""The fixed synthetic benchmark of the hint ablation: drives anyone regenerates bit for bit.

A benchmark is named, and defined by the generator version and a seed (plus the drive count,
length and image size): :func:`prepare_benchmark` writes it with :mod:`depthhints.data.synthetic`
(or checks that an existing tree is that benchmark), and records a fingerprint of the held-out
test drive — SHA-256 over its decoded left images, dense ground truth and class labels — so a
different machine or library version that renders other pixels is told so instead of silently
scoring another test set.

Drives 1 … n−2 train, drive n−1 validates (its left images give the learning curves) and drive n
is the test drive: each drive has its own seed, so the test street, its poles, signs, cars and
walls, is never seen in training.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from depthhints.data.kitti import KittiRawLayout, SplitItem, read_split_file, write_split_file
from depthhints.data.synthetic import GENERATOR_VERSION, DatasetConfig, generate_dataset
from depthhints.errors import ConfigError

MANIFEST = "benchmark.json"
CURVE_SPLIT = "val_left_files.txt"  # the validation drive's left images: the learning curves


class BenchmarkMismatchWarning(UserWarning):
    """The regenerated test drive differs from the published benchmark's pixels."""


@dataclass(frozen=True)
class Benchmark:
    """A versioned set of synthetic drives: the last one is the held-out test drive."""

    name: str
    seed: int
    drives: int
    frames: int
    width: int = 1242
    height: int = 375
    generator_version: str = GENERATOR_VERSION
    fingerprint: str | None = None  # the test drive's, as rendered on the reference machine

    def dataset(self) -> DatasetConfig:
        if self.drives < 3:
            raise ConfigError(
                f"benchmark {self.name}: needs at least 3 drives (train, validation, test), "
                f"got {self.drives}"
            )
        return DatasetConfig(
            num_drives=self.drives,
            frames_per_drive=self.frames,
            seed=self.seed,
            width=self.width,
            height=self.height,
        )

    def describe(self) -> dict:
        """JSON-able definition (without the expected fingerprint)."""
        values = asdict(self)
        values.pop("fingerprint")
        return values


BENCHMARKS = {
    "synthdrive-v1": Benchmark(
        "synthdrive-v1",
        seed=1,
        drives=4,
        frames=100,
        fingerprint="2b672ef03bf26f7734e2280956bad5882ba5b58bcaa4fbe6401c9c55b0b216c8",
    ),
    "synthdrive-smoke": Benchmark(
        "synthdrive-smoke", seed=1, drives=3, frames=6, width=416, height=128
    ),
}


@dataclass(frozen=True)
class BenchmarkData:
    """A prepared benchmark on disk."""

    root: Path
    benchmark: Benchmark
    fingerprint: str

    def split(self, part: str) -> Path:
        """``train``, ``val``, ``test`` or ``curve`` (validation drive, left images) split file."""
        name = CURVE_SPLIT if part == "curve" else f"{part}_files.txt"
        return self.root / "splits" / name

    def items(self, part: str) -> list[SplitItem]:
        return read_split_file(self.split(part))


def prepare_benchmark(root: str | Path, benchmark: Benchmark, workers: int = 1) -> BenchmarkData:
    """Write ``benchmark`` under ``root`` (or check the tree there is it) and fingerprint it."""
    root = Path(root)
    if benchmark.generator_version != GENERATOR_VERSION:
        raise ConfigError(
            f"benchmark {benchmark.name} was made by synthetic generator version "
            f"{benchmark.generator_version}, this code has version {GENERATOR_VERSION}: use a "
            "release of this project with that generator to regenerate it"
        )
    dataset = benchmark.dataset()
    manifest = root / "synthetic.json"
    if manifest.is_file():
        written = json.loads(manifest.read_text())
        expected = {"generator_version": GENERATOR_VERSION, "dataset": asdict(dataset)}
        found = {key: written.get(key) for key in expected}
        if found != expected:
            raise ConfigError(
                f"{manifest}: this tree is not benchmark {benchmark.name} (it has {found}, the "
                f"benchmark is {expected}); delete {root} or choose another output folder"
            )
    else:
        generate_dataset(root, dataset, workers=workers, progress=True)
    val = read_split_file(root / "splits" / "val_files.txt")
    write_split_file(root / "splits" / CURVE_SPLIT, [item for item in val if item.side == "l"])
    data = BenchmarkData(root, benchmark, "")
    digest = drive_fingerprint(KittiRawLayout(root), data.items("test"))
    (root / MANIFEST).write_text(
        json.dumps({**benchmark.describe(), "test_fingerprint": digest}, indent=2) + "\n"
    )
    if benchmark.fingerprint and digest != benchmark.fingerprint:
        warnings.warn(
            f"benchmark {benchmark.name}: the test drive rendered here (fingerprint {digest[:12]}) "
            f"differs from the published one ({benchmark.fingerprint[:12]}); the renderer's "
            "floating point or the image codecs differ on this machine, so scores are not "
            "exactly comparable with docs/results.md",
            BenchmarkMismatchWarning,
            stacklevel=2,
        )
    return BenchmarkData(root, benchmark, digest)


def drive_fingerprint(layout: KittiRawLayout, items: list[SplitItem]) -> str:
    """SHA-256 over the decoded left image, GT depth and labels of every test item, in order."""
    digest = hashlib.sha256()
    for item in items:
        paths = (
            layout.image_path(item.folder, item.frame, item.side),
            layout.groundtruth_path(item.folder, item.frame, item.side),
            layout.semantic_path(item.folder, item.frame, item.side),
        )
        for path in paths:
            pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if pixels is None:
                raise ConfigError(
                    f"{path}: missing or unreadable; delete the benchmark folder "
                    "and prepare it again"
                )
            digest.update(np.ascontiguousarray(pixels).tobytes())
    return digest.hexdigest()
