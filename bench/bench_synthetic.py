"""Synthetic drive generator: a 100-frame full-resolution stereo drive, and its renderer.

Baseline (same run, same scene and poses): the straightforward renderer that tests every box
against every pixel. Ours restricts each box to the image rectangle its (near-clipped) corners
project to. The whole generator (both views, LiDAR, ground truth, files) is timed with 1 and 2
worker processes against the goal of 100 frames in under 60 s.
"""

from __future__ import annotations

import tempfile
import time

import numpy as np

from bench.report import table, write_section
from depthhints.data import render
from depthhints.data import synthetic as syn

FRAMES = 100
RENDER_SAMPLES = 3


def _unculled_camera(scene: syn.Scene, origin, rotation, K, width, height) -> render.Hits:
    """Baseline ray caster: every box within render distance against every pixel."""
    directions = render.camera_rays(K, rotation, width, height)
    inv_directions = render._safe_inverse(directions)
    hits = render.Hits.empty((height, width))
    render._intersect_ground(scene, origin, directions, hits)
    distance = np.linalg.norm(np.clip(origin, scene.lo, scene.hi) - origin, axis=1)
    everything = (slice(None), slice(None))
    for k in np.flatnonzero(distance < render.MAX_RENDER_DISTANCE):
        render._intersect_box(
            origin, inv_directions, scene.lo[k], scene.hi[k], hits, everything, k + 1
        )
    return hits


def _time_renderers(config: syn.DriveConfig) -> tuple[float, float]:
    poses = syn.trajectory(config)
    scene = syn.build_scene(config, float(poses[-1].position[2]))
    K = config.intrinsics()
    frames = np.linspace(0, len(poses) - 1, RENDER_SAMPLES).astype(int)
    timings = {"baseline": 0.0, "ours": 0.0}
    for frame in frames:
        pose = poses[frame]
        start = time.perf_counter()
        base = _unculled_camera(scene, pose.position, pose.rotation, K, config.width, config.height)
        timings["baseline"] += time.perf_counter() - start
        start = time.perf_counter()
        ours, _ = render.cast_camera(
            scene, pose.position, pose.rotation, K, config.width, config.height
        )
        timings["ours"] += time.perf_counter() - start
        assert np.array_equal(base.t, ours.t), "culling changed the rendered depth"
    return timings["baseline"] / len(frames), timings["ours"] / len(frames)


def _time_generator(workers: int) -> float:
    config = syn.DatasetConfig(num_drives=1, frames_per_drive=FRAMES)
    with tempfile.TemporaryDirectory() as root:
        start = time.perf_counter()
        syn.generate_dataset(root, config, workers=workers)
        return time.perf_counter() - start


def main() -> None:
    config = syn.DriveConfig(num_frames=FRAMES)
    baseline_view, ours_view = _time_renderers(config)
    print(f"ray casting one 1242x375 view: baseline {baseline_view:.2f} s, ours {ours_view:.3f} s")
    generator = {workers: _time_generator(workers) for workers in (1, 2)}
    for workers, seconds in generator.items():
        print(f"{FRAMES} frames with {workers} worker(s): {seconds:.1f} s")

    body = f"""
Command: `python -m bench synthetic`. A {FRAMES}-frame stereo drive at 1242×375 (KITTI size):
per frame two rendered views, a simulated 64-beam LiDAR scan (~130k points), two dense
ground-truth depth PNGs, two semantic PNGs and the files in the KITTI raw layout.

Ray casting one view (mean of {RENDER_SAMPLES} frames; identical depth from both):

{
        table(
            ["renderer", "s / view", "speed-up"],
            [
                ["baseline: every box against every pixel", f"{baseline_view:.2f}", "1.0×"],
                [
                    "ours: each box only in its projected rectangle",
                    f"{ours_view:.3f}",
                    f"{baseline_view / ours_view:.0f}×",
                ],
            ],
        )
    }
Whole generator, {FRAMES} frames (goal: under 60 s):

{
        table(
            ["worker processes", "seconds", "stereo frames / s", "vs 1 worker"],
            [
                [w, f"{s:.1f}", f"{FRAMES / s:.2f}", f"{generator[1] / s:.2f}×"]
                for w, s in generator.items()
            ],
        )
    }
"""
    write_section("synthetic", "Synthetic stereo drives", body)


if __name__ == "__main__":
    main()
