"""The training loader alone, per core: the reference's per-sample PIL loader against the cache.

On a 16-core GPU node the loader must deliver what the GPU trains on (the goal there is 1,000
images/s for R18 640×192); the published loader decodes two 1242×375 JPEGs and resizes them with
Lanczos for every sample. Here, with one loader worker (one core): images/s of the reference
loader and of ours (the training cache; the batch then finished on this CPU: flip, colour jitter,
hint resize), for stereo + hints at 640×192 and 1024×320, batch 12, on a KITTI-size synthetic
drive. Also the cache's one-time build rate, and what it means for eigen_full (a model from the
measured rate, not a measurement).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from bench.gpu import Sizes, measure_loader, ours, prepare, reference_style, train_config
from bench.report import table, write_section
from depthhints.train.data import build_datasets

EIGEN_FULL_IMAGES = 46_976  # both sides of 23,488 frames
RESOLUTIONS = ((192, 640), (320, 1024))
BATCHES = 15


def main() -> None:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = prepare(work / "kitti", Sizes(frames=24, end_to_end_samples=48), workers=2)
        rows, builds = [], []
        for height, width in RESOLUTIONS:
            base = train_config(
                data,
                "cpu",
                18,
                height,
                width,
                batch_size=12,
                log_dir=str(work / "runs"),
                cache_dir=str(work / f"cache_{width}"),
            )
            reference = measure_loader(reference_style(base).replace(num_workers=1), BATCHES)
            start = time.perf_counter()
            train_set, _ = build_datasets(ours(base, 1))  # one process builds it (workers=1)
            seconds = time.perf_counter() - start
            images = len(train_set.cache.image_index)
            size = sum(p.stat().st_size for p in train_set.cache.folder.iterdir())
            per_item = size / len(train_set.cache.hint_index)
            cached = measure_loader(ours(base, 1), BATCHES)
            rate = cached["per_core"] / reference["per_core"]
            rows.append(
                [
                    f"{width}×{height}",
                    f"{reference['per_core']:.1f}",
                    f"{cached['per_core']:.1f}",
                    f"{rate:.1f}×",
                    f"{reference['device_side_images_per_second']:.0f}",
                    f"{cached['device_side_images_per_second']:.0f}",
                ]
            )
            build_rate = images / seconds
            builds.append(
                [
                    f"{width}×{height}",
                    f"{build_rate:.1f}",
                    f"{per_item / 2**20:.2f}",
                    f"{EIGEN_FULL_IMAGES / build_rate / 16 / 60:.1f}",
                    f"{EIGEN_FULL_IMAGES * per_item / 2**30:.0f}",
                ]
            )
            print(rows[-1], builds[-1])
    body = (
        "Command: `python -m bench loader`. Stereo + hints, batch 12, one loader worker process "
        "(one core) and one torch thread, KITTI-size synthetic JPEGs (1242×375) and hints at "
        "1024×320. Reference: the published per-sample loader (decode both images, flip, "
        "cascaded Lanczos to 4 scales, PIL colour jitter, hint flip and nearest resize). Ours: "
        "`loader: cache`: the cached pyramids and hint rows copied into the batch, which is then "
        "finished on the training device (here the CPU: flip, colour jitter, hint gather; "
        "on a GPU node the GPU does this, not the loader's cores).\n\n"
        + table(
            [
                "network input",
                "reference images/s/core",
                "ours images/s/core",
                "ratio",
                "reference batch to device, images/s",
                "ours batch to device, images/s",
            ],
            rows,
        )
        + "\nThe cache is built once per split and resolution (decode and pyramid of each image, "
        "its hint rows). Build rate measured here on one core; eigen_full time and size are a "
        "model from it (46,976 images, 16 cores, both sides' images and hints), not a "
        "measurement:\n\n"
        + table(
            [
                "network input",
                "build images/s/core",
                "MiB per item (image pyramid, hint rows)",
                "eigen_full build on 16 cores (min, model)",
                "eigen_full cache GiB (model)",
            ],
            builds,
        )
    )
    write_section("loader", "Training loader per core (CPU)", body)
    print(body)


if __name__ == "__main__":
    main()
