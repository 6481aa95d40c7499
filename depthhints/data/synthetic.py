"""Procedural stereo drives written in the KITTI raw layout, with dense ground truth and LiDAR.

A drive is a straight street lined with building facades, parked cars, thin poles with signs,
plain (textureless) walls and sky at infinity. A stereo rig with KITTI's geometry (0.54 m
baseline, camera 1.65 m above the road, Velodyne 0.27 m behind and 0.08 m above the cameras)
moves forward along it. Every pixel is ray cast against the scene, so the two views and the
LiDAR scan are exactly consistent: surfaces are textured as a function of their world position
and shaded by a fixed sun (no view-dependent effects), and the only difference between the views
is the geometry — occlusions, textureless regions and thin structures are where stereo fails.

The camera intrinsics equal the fixed normalised K that monodepth2/Depth Hints assume for every
KITTI image (fx = 0.58 W, fy = 1.92 H, principal point at (0.5 W, 0.5 H) in pixel-index
coordinates), so the published geometry is exact on this data. The calibration files use
KITTI's own convention (0-based pixel coordinates), so the reference LiDAR projection shows the
same one-pixel shift on this data as on KITTI, and ``corrected=True`` removes it.

Output tree (``<root>`` is what ``KittiRawLayout`` reads)::

    <root>/<date>/calib_{cam_to_cam,velo_to_cam,imu_to_velo}.txt
    <root>/<date>/<drive>/image_0{2,3}/data/%010d.png
    <root>/<date>/<drive>/velodyne_points/data/%010d.bin
    <root>/<date>/<drive>/proj_depth/groundtruth/image_0{2,3}/%010d.png   (uint16, metres x 256)
    <root>/<date>/<drive>/semantic/image_0{2,3}/%010d.png                 (uint8, CLASSES)
    <root>/splits/{train,val,test}_files.txt
    <root>/synthetic.json                                                  (generator settings)

with ``<drive>`` = ``<date>_drive_NNNN_sync``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from depthhints.data.kitti import (
    Calibration,
    SplitItem,
    save_depth_png,
    write_raw_calibration,
    write_split_file,
)
from depthhints.data.render import (
    CLASSES,
    PATTERN_NONE,
    PATTERN_TILES,
    PATTERN_WINDOWS,
    Scene,
    cast_lidar,
    render_image,
)
from depthhints.errors import ConfigError

GENERATOR_VERSION = "1"

CAMERA_HEIGHT = 1.65  # metres above the road (KITTI)
CAMERA_X = {2: -0.06, 3: 0.48}  # camera centres along the rig's x axis, relative to camera 0
BASELINE = CAMERA_X[3] - CAMERA_X[2]  # 0.54 m
VELO_IN_CAM0 = np.array([0.0, -0.08, -0.27])  # Velodyne origin in camera-0 coordinates (y down)
CAM_FROM_VELO = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])  # x fwd,y left,z up
_TEXTURE_SIZE = 256


@dataclass(frozen=True)
class DriveConfig:
    """Settings of one synthetic drive; the same settings and seed give the same files."""

    seed: int = 0
    num_frames: int = 100
    width: int = 1242
    height: int = 375
    date: str = "2011_01_01"
    drive: int = 1
    speed: float = 0.9  # metres per frame (about 32 km/h at KITTI's 10 Hz)
    image_ext: str = ".png"
    sensor_noise: float = 1.0  # grey levels (1 sigma) added to each image

    @property
    def folder(self) -> str:
        return f"{self.date}/{self.date}_drive_{self.drive:04d}_sync"

    def intrinsics(self) -> np.ndarray:
        """3x3 K in pixel-index coordinates (pixel centres at integers)."""
        return np.array(
            [
                [0.58 * self.width, 0.0, 0.5 * self.width],
                [0.0, 1.92 * self.height, 0.5 * self.height],
                [0.0, 0.0, 1.0],
            ]
        )


@dataclass(frozen=True)
class Pose:
    """Camera-0 pose: world position and rotation (camera to world)."""

    position: np.ndarray
    rotation: np.ndarray


def trajectory(config: DriveConfig) -> list[Pose]:
    """Forward drive in the right lane with a gentle lateral sway and varying speed."""
    rng = np.random.default_rng([config.seed, 1])
    speeds = config.speed * (
        1.0 + 0.15 * np.sin(np.arange(config.num_frames) / 17.0 + rng.uniform(0, 6))
    )
    z = np.concatenate([[0.0], np.cumsum(speeds[:-1])])
    phase, period = rng.uniform(0, 2 * np.pi), rng.uniform(60.0, 120.0)
    x = 1.75 + 0.3 * np.sin(2 * np.pi * z / period + phase)
    slope = 0.3 * 2 * np.pi / period * np.cos(2 * np.pi * z / period + phase)
    poses = []
    for xi, zi, yaw in zip(x, z, np.arctan(slope), strict=True):
        c, s = math.cos(yaw), math.sin(yaw)
        rotation = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
        poses.append(Pose(np.array([xi, 0.0, zi]), rotation))
    return poses


def _periodic_noise(rng: np.random.Generator, size: int, beta: float) -> np.ndarray:
    """Tileable noise with a 1/f^beta power spectrum, normalised to about [-1, 1]."""
    freq = np.fft.fftfreq(size)
    radius = np.sqrt(freq[:, None] ** 2 + freq[None, :] ** 2)
    radius[0, 0] = 1.0
    spectrum = (rng.normal(size=(size, size)) + 1j * rng.normal(size=(size, size))) / radius**beta
    spectrum[0, 0] = 0.0
    noise = np.fft.ifft2(spectrum).real
    return np.clip(noise / (3.0 * noise.std()), -1.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class Material:
    """Surface appearance: class, base albedo, noise amplitude, metres per texel, pattern."""

    label: str
    color: tuple[float, float, float]
    amplitude: float
    scale: float
    pattern: int = PATTERN_NONE


SIDEWALK = Material("sidewalk", (0.62, 0.6, 0.57), 0.35, 0.04, PATTERN_TILES)
POLE = Material("pole", (0.55, 0.56, 0.58), 0.25, 0.02)
SIGN_COLORS = ((0.75, 0.1, 0.1), (0.1, 0.25, 0.7), (0.9, 0.9, 0.88), (0.9, 0.75, 0.1))
CAR_CABIN = Material("car", (0.12, 0.14, 0.17), 0.1, 0.03)
CAR_WHEEL = Material("car", (0.06, 0.06, 0.06), 0.15, 0.02)

Box = tuple[tuple[float, float, float], tuple[float, float, float], Material]


def _facades(rng: np.random.Generator, side: float, z: float, z_end: float) -> list[Box]:
    """Buildings (70 % with windows, 30 % plain plaster), some gaps closed by plain walls."""
    ground, boxes = CAMERA_HEIGHT, []
    while z < z_end:
        length, face, height = rng.uniform(6.0, 25.0), rng.uniform(8.5, 12.0), rng.uniform(5, 16)
        x0, x1 = sorted((side * face, side * (face + 10.0)))
        if rng.uniform() < 0.7:
            color = rng.uniform(0.35, 0.85, 3) * np.array([1.0, 0.92, 0.82])
            material = Material("building", tuple(color), 0.45, 0.03, PATTERN_WINDOWS)
        else:  # almost no texture: a classic stereo failure
            material = Material("building", tuple(rng.uniform(0.7, 0.9, 3)), 0.015, 0.05)
        boxes.append(((x0, ground - height, z), (x1, ground, z + length), material))
        z += length
        if rng.uniform() < 0.35:
            gap = rng.uniform(3.0, 9.0)
            if rng.uniform() < 0.5:
                wx0, wx1 = sorted((side * (face + 2.0), side * (face + 2.3)))
                wall = Material("wall", tuple(rng.uniform(0.75, 0.95, 3)), 0.01, 0.05)
                boxes.append(((wx0, ground - 2.2, z), (wx1, ground, z + gap), wall))
            z += gap
    return boxes


def _poles(rng: np.random.Generator, side: float, z: float, z_end: float) -> list[Box]:
    """Thin (12 cm) poles on the sidewalk, some carrying a sign that faces the traffic."""
    ground, boxes = CAMERA_HEIGHT, []
    while z < z_end:
        top = ground - rng.uniform(3.5, 6.0)
        px = side * 6.0
        boxes.append(((px - 0.06, top, z - 0.06), (px + 0.06, ground, z + 0.06), POLE))
        if rng.uniform() < 0.45:
            sx = px - side * 0.3
            sign = Material("sign", SIGN_COLORS[rng.integers(len(SIGN_COLORS))], 0.2, 0.02)
            boxes.append(((sx - 0.35, top, z - 0.11), (sx + 0.35, top + 0.7, z - 0.07), sign))
        z += rng.uniform(9.0, 25.0)
    return boxes


def _parked_cars(rng: np.random.Generator, side: float, z: float, z_end: float) -> list[Box]:
    """Cars in the parking lane: body, dark cabin and four wheels (a gap under the body)."""
    ground, boxes = CAMERA_HEIGHT, []
    while z < z_end:
        if rng.uniform() < 0.6:
            cx, zc = side * 4.5, z + 2.1
            body = Material("car", tuple(rng.uniform(0.05, 0.9, 3)), 0.08, 0.03)
            boxes.append(
                ((cx - 0.88, ground - 1.05, zc - 2.1), (cx + 0.88, ground - 0.3, zc + 2.1), body)
            )
            boxes.append(
                (
                    (cx - 0.75, ground - 1.5, zc - 1.2),
                    (cx + 0.75, ground - 1.05, zc + 0.9),
                    CAR_CABIN,
                )
            )
            for wz in (zc - 1.35, zc + 1.35):
                for wx in (cx - 0.78, cx + 0.78):
                    boxes.append(
                        (
                            (wx - 0.11, ground - 0.62, wz - 0.32),
                            (wx + 0.11, ground, wz + 0.32),
                            CAR_WHEEL,
                        )
                    )
        z += rng.uniform(4.6, 9.0)
    return boxes


def build_scene(config: DriveConfig, length: float) -> Scene:
    """Lay out the street along z in [-40, length + 130] metres (the road is the ground plane)."""
    rng = np.random.default_rng([config.seed, 0])
    z_start, z_end = -40.0, length + 130.0
    boxes: list[Box] = []
    for side in (-1.0, 1.0):
        x0, x1 = sorted((side * 5.5, side * 8.5))  # raised sidewalk between parking and buildings
        boxes.append(((x0, CAMERA_HEIGHT - 0.12, z_start), (x1, CAMERA_HEIGHT, z_end), SIDEWALK))
        boxes += _facades(rng, side, z_start, z_end)
        boxes += _poles(rng, side, z_start + rng.uniform(0.0, 10.0), z_end)
        boxes += _parked_cars(rng, side, z_start + rng.uniform(0.0, 8.0), z_end)
    materials = [material for _, _, material in boxes]
    textures = np.stack([_periodic_noise(rng, _TEXTURE_SIZE, beta) for beta in (1.0, 1.4, 0.6)])
    return Scene(
        lo=np.array([lo for lo, _, _ in boxes], float),
        hi=np.array([hi for _, hi, _ in boxes], float),
        label=np.array([CLASSES[m.label] for m in materials], np.uint8),
        color=np.array([m.color for m in materials], np.float32),
        texture_amplitude=np.array([m.amplitude for m in materials], np.float32),
        texture_scale=np.array([m.scale for m in materials], np.float32),
        pattern=np.array([m.pattern for m in materials], np.uint8),
        textures=textures,
        ground_y=CAMERA_HEIGHT,
    )


@dataclass
class View:
    """One rendered camera image with its ground truth."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    depth: np.ndarray  # (H, W) float32 camera z in metres, 0 = sky (no ground truth)
    label: np.ndarray  # (H, W) uint8 class id


def render_view(
    scene: Scene, pose: Pose, camera: int, config: DriveConfig, rng: np.random.Generator
) -> View:
    """Render camera 2 (left) or 3 (right) of the rig at ``pose``, with sensor noise."""
    origin = pose.position + pose.rotation @ np.array([CAMERA_X[camera], 0.0, 0.0])
    rgb, depth, label = render_image(
        scene, origin, pose.rotation, config.intrinsics(), config.width, config.height
    )
    image = rgb * 255.0
    if config.sensor_noise > 0:
        image += config.sensor_noise * rng.standard_normal(image.shape, dtype=np.float32)
    return View(np.clip(image + 0.5, 0, 255).astype(np.uint8), depth, label)


def lidar_scan(scene: Scene, pose: Pose, rng: np.random.Generator) -> np.ndarray:
    """The rig's Velodyne scan at ``pose``: (N, 4) float32 in the Velodyne frame."""
    origin = pose.position + pose.rotation @ VELO_IN_CAM0
    return cast_lidar(scene, origin, pose.rotation @ CAM_FROM_VELO, rng)


# --------------------------------------------------------------------------- files


def calibration(config: DriveConfig) -> Calibration:
    """Calibration of the synthetic rig in KITTI raw conventions."""
    K = config.intrinsics()
    P_rect = {}
    for cam, x in {0: 0.0, 1: BASELINE, **CAMERA_X}.items():
        P = np.zeros((3, 4))
        P[:, :3] = K
        P[0, 3] = -K[0, 0] * x
        P_rect[cam] = P
    velo_to_cam = np.eye(4)
    velo_to_cam[:3, :3], velo_to_cam[:3, 3] = CAM_FROM_VELO, VELO_IN_CAM0
    size = (config.width, config.height)
    return Calibration(
        P_rect=P_rect,
        R_rect=np.eye(3),
        velo_to_cam=velo_to_cam,
        image_sizes=dict.fromkeys(range(4), size),
    )


def _write_frame(args: tuple[DriveConfig, Scene, Pose, int, Path]) -> None:
    config, scene, pose, frame, drive_dir = args
    rng = np.random.default_rng([config.seed, 2, frame])
    name = f"{frame:010d}"
    for camera in (2, 3):
        view = render_view(scene, pose, camera, config, rng)
        image_path = drive_dir / f"image_0{camera}" / "data" / f"{name}{config.image_ext}"
        params = (
            [cv2.IMWRITE_JPEG_QUALITY, 92]
            if config.image_ext == ".jpg"
            else [cv2.IMWRITE_PNG_COMPRESSION, 1]
        )
        _atomic_imwrite(image_path, cv2.cvtColor(view.image, cv2.COLOR_RGB2BGR), params)
        save_depth_png(
            drive_dir / "proj_depth" / "groundtruth" / f"image_0{camera}" / f"{name}.png",
            view.depth,
        )
        _atomic_imwrite(drive_dir / "semantic" / f"image_0{camera}" / f"{name}.png", view.label, [])
    scan = lidar_scan(scene, pose, rng)
    velo_path = drive_dir / "velodyne_points" / "data" / f"{name}.bin"
    tmp = velo_path.with_suffix(".bin.tmp")
    scan.tofile(tmp)
    os.replace(tmp, velo_path)


def _atomic_imwrite(path: Path, image: np.ndarray, params: list[int]) -> None:
    ok, encoded = cv2.imencode(path.suffix, image, params)
    if not ok:
        raise OSError(f"could not encode {path}")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(encoded.tobytes())
    os.replace(tmp, path)


def generate_drive(
    root: str | Path, config: DriveConfig, workers: int = 1, progress: bool = False
) -> Path:
    """Write one drive (images, LiDAR, ground truth) and its date's calibration under ``root``."""
    root = Path(root)
    drive_dir = root / config.folder
    for sub in (
        "image_02/data",
        "image_03/data",
        "velodyne_points/data",
        "proj_depth/groundtruth/image_02",
        "proj_depth/groundtruth/image_03",
        "semantic/image_02",
        "semantic/image_03",
    ):
        (drive_dir / sub).mkdir(parents=True, exist_ok=True)
    write_raw_calibration(root / config.date, calibration(config))
    poses = trajectory(config)
    scene = build_scene(config, float(poses[-1].position[2]))
    jobs = [(config, scene, pose, frame, drive_dir) for frame, pose in enumerate(poses)]
    bar = tqdm(total=len(jobs), desc=config.folder, unit="frame", disable=not progress)
    if workers <= 1:
        for job in jobs:
            _write_frame(job)
            bar.update()
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for _ in pool.map(_write_frame, jobs):
                bar.update()
    bar.close()
    return drive_dir


@dataclass(frozen=True)
class DatasetConfig:
    """A set of drives and their train/val/test split."""

    num_drives: int = 1
    frames_per_drive: int = 100
    seed: int = 0
    width: int = 1242
    height: int = 375
    image_ext: str = ".png"

    def drives(self) -> list[DriveConfig]:
        return [
            DriveConfig(
                seed=self.seed * 1000 + i,
                num_frames=self.frames_per_drive,
                width=self.width,
                height=self.height,
                drive=i + 1,
                image_ext=self.image_ext,
            )
            for i in range(self.num_drives)
        ]


def split_items(drives: Sequence[DriveConfig]) -> dict[str, list[SplitItem]]:
    """Train/val/test lists in the standard format.

    With three or more drives the last is the test drive and the one before it validation;
    otherwise each drive is cut into contiguous blocks (about 70 % train, 10 % val and 20 % test,
    at least one frame each, so a drive needs 4 frames or more). Train and val list both sides
    of frames that have both temporal neighbours (like ``eigen_full``); test lists left images
    only (like ``eigen/test_files.txt``).
    """
    parts: dict[str, list[SplitItem]] = {"train": [], "val": [], "test": []}

    def add(part: str, drive: DriveConfig, frames: range) -> None:
        sides = ("l",) if part == "test" else ("l", "r")
        inner = [f for f in frames if 0 < f < drive.num_frames - 1] if part != "test" else frames
        parts[part] += [SplitItem(drive.folder, f, s, "raw") for f in inner for s in sides]

    if len(drives) >= 3:
        for drive in drives[:-2]:
            add("train", drive, range(drive.num_frames))
        add("val", drives[-2], range(drives[-2].num_frames))
        add("test", drives[-1], range(drives[-1].num_frames))
    else:
        for drive in drives:
            n = drive.num_frames
            if n < 4:
                raise ConfigError(
                    f"{drive.folder}: a single drive needs at least 4 frames to "
                    f"split into train/val/test, got {n}; use --frames 4 or more"
                )
            val_end = n - max(1, round(0.2 * n))
            train_end = val_end - max(1, round(0.1 * n))
            add("train", drive, range(train_end))
            add("val", drive, range(train_end, val_end))
            add("test", drive, range(val_end, n))
    return parts


def generate_dataset(
    root: str | Path, config: DatasetConfig, workers: int = 1, progress: bool = False
) -> dict[str, Path]:
    """Write every drive, the split files and ``synthetic.json``; returns the split file paths."""
    root = Path(root)
    drives = config.drives()
    for drive in drives:
        generate_drive(root, drive, workers=workers, progress=progress)
    split_dir = root / "splits"
    split_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for part, items in split_items(drives).items():
        paths[part] = split_dir / f"{part}_files.txt"
        write_split_file(paths[part], items)
    manifest = {
        "generator_version": GENERATOR_VERSION,
        "dataset": asdict(config),
        "drives": [d.folder for d in drives],
        "classes": CLASSES,
    }
    (root / "synthetic.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return paths
