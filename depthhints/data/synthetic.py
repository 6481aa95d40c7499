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
from dataclasses import asdict, dataclass, field
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
from depthhints.errors import ConfigError

GENERATOR_VERSION = "1"

CAMERA_HEIGHT = 1.65  # metres above the road (KITTI)
CAMERA_X = {2: -0.06, 3: 0.48}  # camera centres along the rig's x axis, relative to camera 0
BASELINE = CAMERA_X[3] - CAMERA_X[2]  # 0.54 m
VELO_IN_CAM0 = np.array([0.0, -0.08, -0.27])  # Velodyne origin in camera-0 coordinates (y down)
CAM_FROM_VELO = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])  # x fwd,y left,z up
LIDAR_ELEVATIONS_DEG = np.linspace(2.0, -24.9, 64)  # HDL-64E vertical field of view
LIDAR_AZIMUTHS = 2048
LIDAR_MAX_RANGE = 120.0
LIDAR_RANGE_NOISE = 0.01  # metres (1 sigma)
MAX_RENDER_DISTANCE = 200.0
NEAR = 0.05

# Classes written to semantic/image_0X; thin structures (poles, signs) are where hints matter.
CLASSES = {
    "sky": 0,
    "road": 1,
    "lane_marking": 2,
    "sidewalk": 3,
    "building": 4,
    "wall": 5,
    "car": 6,
    "pole": 7,
    "sign": 8,
    "grass": 9,
}
THIN_STRUCTURE_CLASSES = (CLASSES["pole"], CLASSES["sign"])

_PATTERN_NONE, _PATTERN_WINDOWS, _PATTERN_TILES = 0, 1, 2
_SUN = np.array([0.45, -0.8, -0.4]) / np.linalg.norm([0.45, -0.8, -0.4])  # towards the sun (y down)
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


@dataclass
class Scene:
    """Axis-aligned boxes on a ground plane (world frame: x right, y down, z forward)."""

    lo: np.ndarray  # (N, 3) box minima
    hi: np.ndarray  # (N, 3) box maxima
    label: np.ndarray  # (N,) class id
    color: np.ndarray  # (N, 3) base albedo in [0, 1]
    texture_amplitude: np.ndarray  # (N,)
    texture_scale: np.ndarray  # (N,) metres per texel of the fine noise
    pattern: np.ndarray  # (N,) one of _PATTERN_*
    textures: np.ndarray = field(repr=False)  # (3, S, S) periodic noise in about [-1, 1]


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


def build_scene(config: DriveConfig, length: float) -> Scene:
    """Lay out the street along z in [-40, length + 130] metres."""
    rng = np.random.default_rng([config.seed, 0])
    boxes: list[tuple] = []  # (lo, hi, label, color, amplitude, scale, pattern)
    ground = CAMERA_HEIGHT
    z_start, z_end = -40.0, length + 130.0

    def add(lo, hi, label, color, amplitude, scale, pattern=_PATTERN_NONE):
        boxes.append((lo, hi, CLASSES[label], color, amplitude, scale, pattern))

    for side in (-1.0, 1.0):
        # Raised sidewalk (a long kerb box) between the parking lane and the buildings.
        x0, x1 = sorted((side * 5.5, side * 8.5))
        add(
            (x0, ground - 0.12, z_start),
            (x1, ground, z_end),
            "sidewalk",
            (0.62, 0.6, 0.57),
            0.35,
            0.04,
            _PATTERN_TILES,
        )
        z = z_start
        while z < z_end:  # facades, with gaps filled by plain walls or left open
            length_m = rng.uniform(6.0, 25.0)
            face = rng.uniform(8.5, 12.0)
            x0, x1 = sorted((side * face, side * (face + 10.0)))
            height = rng.uniform(5.0, 16.0)
            if rng.uniform() < 0.7:
                color = rng.uniform(0.35, 0.85, 3) * np.array([1.0, 0.92, 0.82])
                add(
                    (x0, ground - height, z),
                    (x1, ground, z + length_m),
                    "building",
                    tuple(color),
                    0.45,
                    0.03,
                    _PATTERN_WINDOWS,
                )
            else:  # plain plaster: almost no texture, a classic stereo failure
                add(
                    (x0, ground - height, z),
                    (x1, ground, z + length_m),
                    "building",
                    tuple(rng.uniform(0.7, 0.9, 3)),
                    0.015,
                    0.05,
                )
            z += length_m
            if rng.uniform() < 0.35:
                gap = rng.uniform(3.0, 9.0)
                if rng.uniform() < 0.5:
                    wx0, wx1 = sorted((side * (face + 2.0), side * (face + 2.3)))
                    add(
                        (wx0, ground - 2.2, z),
                        (wx1, ground, z + gap),
                        "wall",
                        tuple(rng.uniform(0.75, 0.95, 3)),
                        0.01,
                        0.05,
                    )
                z += gap
        z = z_start + rng.uniform(0.0, 10.0)
        while z < z_end:  # thin poles, some carrying a sign that faces the traffic
            pole_height = rng.uniform(3.5, 6.0)
            px = side * 6.0
            add(
                (px - 0.06, ground - pole_height, z - 0.06),
                (px + 0.06, ground, z + 0.06),
                "pole",
                (0.55, 0.56, 0.58),
                0.25,
                0.02,
            )
            if rng.uniform() < 0.45:
                sx = px - side * 0.3
                color = [(0.75, 0.1, 0.1), (0.1, 0.25, 0.7), (0.9, 0.9, 0.88), (0.9, 0.75, 0.1)][
                    rng.integers(4)
                ]
                add(
                    (sx - 0.35, ground - pole_height, z - 0.11),
                    (sx + 0.35, ground - pole_height + 0.7, z - 0.07),
                    "sign",
                    color,
                    0.2,
                    0.02,
                )
            z += rng.uniform(9.0, 25.0)
        z = z_start + rng.uniform(0.0, 8.0)
        while z < z_end:  # parked cars in the parking lane
            if rng.uniform() < 0.6:
                cx, zc = side * 4.5, z + 2.1
                color = tuple(rng.uniform(0.05, 0.9, 3))
                add(
                    (cx - 0.88, ground - 1.05, zc - 2.1),
                    (cx + 0.88, ground - 0.3, zc + 2.1),
                    "car",
                    color,
                    0.08,
                    0.03,
                )
                add(
                    (cx - 0.75, ground - 1.5, zc - 1.2),
                    (cx + 0.75, ground - 1.05, zc + 0.9),
                    "car",
                    (0.12, 0.14, 0.17),
                    0.1,
                    0.03,
                )
                for wz in (zc - 1.35, zc + 1.35):
                    for wx in (cx - 0.78, cx + 0.78):
                        add(
                            (wx - 0.11, ground - 0.62, wz - 0.32),
                            (wx + 0.11, ground, wz + 0.32),
                            "car",
                            (0.06, 0.06, 0.06),
                            0.15,
                            0.02,
                        )
            z += rng.uniform(4.6, 9.0)

    lo, hi, label, color, amplitude, scale, pattern = zip(*boxes, strict=True)
    textures = np.stack([_periodic_noise(rng, _TEXTURE_SIZE, beta) for beta in (1.0, 1.4, 0.6)])
    return Scene(
        np.array(lo, float),
        np.array(hi, float),
        np.array(label, np.uint8),
        np.array(color, np.float32),
        np.array(amplitude, np.float32),
        np.array(scale, np.float32),
        np.array(pattern, np.uint8),
        textures,
    )


# --------------------------------------------------------------------------- ray casting


@dataclass
class Hits:
    """Nearest hit along each ray: parameter t (inf = sky), object (-1 sky, 0 ground, 1+k box k)."""

    t: np.ndarray
    obj: np.ndarray
    axis: np.ndarray

    @classmethod
    def empty(cls, shape: tuple[int, ...]) -> Hits:
        return cls(
            np.full(shape, np.inf, np.float32),
            np.full(shape, -1, np.int32),
            np.zeros(shape, np.int8),
        )


def _intersect_ground(origin: np.ndarray, directions: np.ndarray, hits: Hits) -> None:
    dy = directions[..., 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(dy > 1e-9, (CAMERA_HEIGHT - origin[1]) / dy, np.inf)
    closer = t < hits.t
    hits.t[closer], hits.obj[closer], hits.axis[closer] = t[closer], 0, 1


def _intersect_box(origin, inv_directions, lo, hi, hits: Hits, index, obj_id) -> None:
    """Slab test of one box against the rays selected by ``index``; updates ``hits`` in place.

    ``inv_directions`` is axis-first (3, ...) so that each axis is a contiguous array.
    """
    inv = inv_directions[(slice(None), *index)]
    near_axes = []
    t_near = t_far = None
    for a in range(3):
        t1 = np.float32(lo[a] - origin[a]) * inv[a]
        t2 = np.float32(hi[a] - origin[a]) * inv[a]
        near, far = np.minimum(t1, t2), np.maximum(t1, t2)
        near_axes.append(near)
        t_near = near if t_near is None else np.maximum(t_near, near)
        t_far = far if t_far is None else np.minimum(t_far, far)
    current = hits.t[index]
    closer = (t_near <= t_far) & (t_near > NEAR) & (t_near < current)
    if not closer.any():
        return
    t_hit = t_near[closer]
    current[closer] = t_hit
    hits.t[index] = current
    obj = hits.obj[index]
    obj[closer] = obj_id
    hits.obj[index] = obj
    axis = hits.axis[index]
    axis[closer] = np.where(
        near_axes[0][closer] == t_hit, 0, np.where(near_axes[1][closer] == t_hit, 1, 2)
    )
    hits.axis[index] = axis


_BOX_EDGES = [
    (0, 1),
    (2, 3),
    (4, 5),
    (6, 7),
    (0, 2),
    (1, 3),
    (4, 6),
    (5, 7),
    (0, 4),
    (1, 5),
    (2, 6),
    (3, 7),
]


def _box_corners(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """(N, 8, 3) corners; bit k of the corner index selects hi on axis k."""
    bits = np.array([[(k >> a) & 1 for a in range(3)] for k in range(8)], bool)
    return np.where(bits[None], hi[:, None, :], lo[:, None, :])


def _image_rectangles(scene: Scene, origin, rotation, K, width, height) -> list[tuple]:
    """Image-space bounding rectangle (r0, r1, c0, c1) of each box in front of the camera."""
    corners = (_box_corners(scene.lo, scene.hi) - origin) @ rotation  # camera coordinates
    z = corners[..., 2]
    near_enough = np.linalg.norm(np.clip(origin, scene.lo, scene.hi) - origin, axis=1)
    rectangles = []
    for k in np.flatnonzero((z.max(axis=1) > NEAR) & (near_enough < MAX_RENDER_DISTANCE)):
        points = corners[k]
        if z[k].min() <= NEAR:  # clip the box against the near plane
            front = [points[z[k] > NEAR]]
            for a, b in _BOX_EDGES:
                za, zb = z[k, a], z[k, b]
                if (za > NEAR) != (zb > NEAR):
                    front.append(
                        (points[a] + (NEAR - za) / (zb - za) * (points[b] - points[a]))[None]
                    )
            points = np.concatenate(front)
        u = K[0, 0] * points[:, 0] / points[:, 2] + K[0, 2]
        v = K[1, 1] * points[:, 1] / points[:, 2] + K[1, 2]
        c0, c1 = max(0, math.floor(u.min())), min(width, math.ceil(u.max()) + 1)
        r0, r1 = max(0, math.floor(v.min())), min(height, math.ceil(v.max()) + 1)
        if c0 < c1 and r0 < r1:
            rectangles.append((k, r0, r1, c0, c1))
    return rectangles


def _safe_inverse(directions: np.ndarray) -> np.ndarray:
    """Axis-first (3, ...) inverse of (..., 3) directions, with zeros nudged to 1e-12."""
    axis_first = np.moveaxis(directions, -1, 0)
    return np.ascontiguousarray(
        1.0 / np.where(np.abs(axis_first) < 1e-12, 1e-12, axis_first), dtype=np.float32
    )


def camera_rays(K: np.ndarray, rotation: np.ndarray, width: int, height: int) -> np.ndarray:
    """World directions (H, W, 3) of the pixel rays, scaled so that t along them is camera z."""
    cols, rows = np.meshgrid(
        np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)
    )
    camera_dirs = np.stack(
        [(cols - K[0, 2]) / K[0, 0], (rows - K[1, 2]) / K[1, 1], np.ones_like(cols)], axis=-1
    )
    return (camera_dirs @ rotation.T.astype(np.float32)).astype(np.float32)


def cast_camera(scene: Scene, origin, rotation, K, width, height) -> tuple[Hits, np.ndarray]:
    """Ray cast one image. Returns hits (t = camera z depth) and world ray directions (H, W, 3)."""
    directions = camera_rays(K, rotation, width, height)
    inv_directions = _safe_inverse(directions)
    hits = Hits.empty((height, width))
    _intersect_ground(origin, directions, hits)
    for k, r0, r1, c0, c1 in _image_rectangles(scene, origin, rotation, K, width, height):
        _intersect_box(
            origin,
            inv_directions,
            scene.lo[k],
            scene.hi[k],
            hits,
            (slice(r0, r1), slice(c0, c1)),
            k + 1,
        )
    return hits, directions


def _lidar_directions(velo_to_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit ray directions (64, A, 3) in the Velodyne frame and in the world frame."""
    elev = np.radians(LIDAR_ELEVATIONS_DEG)[:, None]
    azim = (np.arange(LIDAR_AZIMUTHS) * 2 * np.pi / LIDAR_AZIMUTHS)[None, :]
    velo = np.stack(
        [
            np.cos(elev) * np.cos(azim),
            np.cos(elev) * np.sin(azim),
            np.sin(elev) * np.ones_like(azim),
        ],
        axis=-1,
    )
    return velo, velo @ velo_to_world.T


def _lidar_window(lo, hi, origin, world_to_velo) -> tuple[slice, np.ndarray] | None:
    """Beams and azimuth indices whose rays can hit the box (conservative)."""
    corners = (_box_corners(lo[None], hi[None])[0] - origin) @ world_to_velo.T
    centre = corners.mean(axis=0)
    half_diagonal = np.linalg.norm(corners[:, :2] - centre[:2], axis=1).max()
    distance = np.linalg.norm(centre[:2])
    if distance <= half_diagonal:
        return None  # the sensor is above/inside the footprint: test every ray
    r_min, r_max = distance - half_diagonal, distance + half_diagonal
    if r_min > LIDAR_MAX_RANGE:
        return slice(0, 0), np.zeros(0, int)
    z_lo, z_hi = corners[:, 2].min(), corners[:, 2].max()
    elev_hi = math.degrees(math.atan2(z_hi, r_min if z_hi > 0 else r_max))
    elev_lo = math.degrees(math.atan2(z_lo, r_max if z_lo > 0 else r_min))
    beams = np.flatnonzero(
        (elev_lo - 0.5 <= LIDAR_ELEVATIONS_DEG) & (elev_hi + 0.5 >= LIDAR_ELEVATIONS_DEG)
    )
    if beams.size == 0:
        return slice(0, 0), np.zeros(0, int)
    angle = np.arctan2(centre[1], centre[0])
    spread = np.angle(np.exp(1j * (np.arctan2(corners[:, 1], corners[:, 0]) - angle)))
    step = 2 * np.pi / LIDAR_AZIMUTHS
    first = math.floor((angle + spread.min()) / step) - 1
    last = math.ceil((angle + spread.max()) / step) + 1
    return slice(beams[0], beams[-1] + 1), np.arange(first, last + 1) % LIDAR_AZIMUTHS


def cast_lidar(scene: Scene, pose: Pose, rng: np.random.Generator) -> np.ndarray:
    """Simulated 64-beam scan: (N, 4) float32 x, y, z, reflectance in the Velodyne frame."""
    velo_to_world = pose.rotation @ CAM_FROM_VELO
    origin = pose.position + pose.rotation @ VELO_IN_CAM0
    velo_dirs, directions = _lidar_directions(velo_to_world)
    inv_directions = _safe_inverse(directions)
    hits = Hits.empty(directions.shape[:2])
    _intersect_ground(origin, directions, hits)
    near = np.linalg.norm(np.clip(origin, scene.lo, scene.hi) - origin, axis=1) < LIDAR_MAX_RANGE
    for k in np.flatnonzero(near):
        window = _lidar_window(scene.lo[k], scene.hi[k], origin, velo_to_world.T)
        index = (
            (slice(None), slice(None))
            if window is None
            else np.ix_(np.arange(directions.shape[0])[window[0]], window[1])
        )
        _intersect_box(origin, inv_directions, scene.lo[k], scene.hi[k], hits, index, k + 1)
    valid = hits.t < LIDAR_MAX_RANGE
    points = (origin + directions[valid] * hits.t[valid, None]).astype(np.float32)
    colors, _ = shade(scene, points, hits.obj[valid], hits.axis[valid], directions[valid])
    ranges = hits.t[valid] + rng.normal(0.0, LIDAR_RANGE_NOISE, valid.sum())
    xyz = velo_dirs[valid] * ranges[:, None]
    return np.column_stack([xyz, colors.mean(axis=1)]).astype(np.float32)


# --------------------------------------------------------------------------- appearance


def _sample(texture: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bilinear lookup in a tileable power-of-two texture at texel coordinates (a, b)."""
    size = texture.shape[0]
    mask = size - 1
    a0, b0 = np.floor(a), np.floor(b)
    fa, fb = a - a0, b - b0
    i0, j0 = a0.astype(np.int32) & mask, b0.astype(np.int32) & mask
    row0, row1 = i0 * size, ((i0 + 1) & mask) * size
    j1 = (j0 + 1) & mask
    flat = texture.ravel()
    top = flat[row0 + j0] * (1 - fb) + flat[row0 + j1] * fb
    bottom = flat[row1 + j0] * (1 - fb) + flat[row1 + j1] * fb
    return top * (1 - fa) + bottom * fa


def _ground_material(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Albedo, texture amplitude and class of ground points, by lateral position."""
    x, z = points[:, 0], points[:, 2]
    n = len(points)
    color = np.tile(np.float32([0.3, 0.3, 0.31]), (n, 1))
    amplitude = np.full(n, 0.45, np.float32)
    label = np.full(n, CLASSES["road"], np.uint8)
    dashed = (np.abs(x) < 0.07) & (np.mod(z, 9.0) < 3.0)
    solid = np.abs(np.abs(x) - 3.5) < 0.06
    marking = dashed | solid
    color[marking], amplitude[marking], label[marking] = (
        (0.85, 0.85, 0.82),
        0.08,
        CLASSES["lane_marking"],
    )
    grass = np.abs(x) > 8.5
    color[grass], amplitude[grass], label[grass] = (0.25, 0.38, 0.16), 0.6, CLASSES["grass"]
    return color, amplitude, label


def shade(scene: Scene, points, obj, axis, directions) -> tuple[np.ndarray, np.ndarray]:
    """Colour (M, 3) in [0, 1] and class (M,) of surface points; view-independent (Lambertian)."""
    m = len(points)
    color = np.empty((m, 3), np.float32)
    amplitude = np.empty(m, np.float32)
    scale = np.full(m, 0.04, np.float32)
    label = np.empty(m, np.uint8)
    pattern = np.zeros(m, np.uint8)
    ground = obj == 0
    color[ground], amplitude[ground], label[ground] = _ground_material(points[ground])
    box = ~ground
    k = obj[box] - 1
    color[box], amplitude[box], scale[box] = (
        scene.color[k],
        scene.texture_amplitude[k],
        scene.texture_scale[k],
    )
    label[box], pattern[box] = scene.label[k], scene.pattern[k]

    # In-surface coordinates: the two world axes other than the face normal.
    first = np.where(axis == 0, points[:, 2], points[:, 0])
    second = np.where(axis == 1, points[:, 2], points[:, 1])
    offset = np.where(box, obj.astype(np.float32) * np.float32(37.0), np.float32(0.0))
    a, b = (first + offset) / scale, (second + offset) / scale
    noise = 0.6 * _sample(scene.textures[0], a, b) + 0.4 * _sample(scene.textures[1], a / 9, b / 9)
    albedo = color * (1.0 + amplitude * noise)[:, None]

    windows = pattern == _PATTERN_WINDOWS
    if windows.any():
        wa, wb = np.mod(first[windows], 3.0), np.mod(second[windows], 3.2)
        pane = (wa > 0.8) & (wa < 2.2) & (wb > 0.8) & (wb < 2.4) & (axis[windows] == 0)
        glass = 0.18 + 0.06 * _sample(scene.textures[2], a[windows] / 4, b[windows] / 4)
        albedo[windows] = np.where(
            pane[:, None], glass[:, None] * np.float32([0.8, 0.9, 1.0]), albedo[windows]
        )
    tiles = pattern == _PATTERN_TILES
    if tiles.any():
        joint = (np.mod(first[tiles], 0.5) < 0.03) | (np.mod(second[tiles], 0.5) < 0.03)
        albedo[tiles] *= np.where(joint, 0.7, 1.0)[:, None]

    normal_sign = -np.sign(directions[np.arange(m), axis])
    cosine = np.clip(normal_sign * _SUN[axis], 0.0, None)
    shading = (0.55 + 0.45 * cosine).astype(np.float32)
    return np.clip(albedo * shading[:, None], 0.0, 1.0), label


def _sky(directions: np.ndarray) -> np.ndarray:
    up = -directions[:, 1] / np.linalg.norm(directions, axis=1)
    mix = np.clip(up * 3.0, 0.0, 1.0)[:, None]
    return (1 - mix) * np.float32([0.8, 0.86, 0.95]) + mix * np.float32([0.36, 0.55, 0.86])


@dataclass
class View:
    """One rendered camera image with its ground truth."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    depth: np.ndarray  # (H, W) float32 camera z in metres, 0 = sky (no ground truth)
    label: np.ndarray  # (H, W) uint8 class id


def render_view(
    scene: Scene, pose: Pose, camera: int, config: DriveConfig, rng: np.random.Generator
) -> View:
    """Render camera 2 (left) or 3 (right) of the rig at ``pose``."""
    K = config.intrinsics()
    origin = pose.position + pose.rotation @ np.array([CAMERA_X[camera], 0.0, 0.0])
    hits, directions = cast_camera(scene, origin, pose.rotation, K, config.width, config.height)
    flat_t, flat_obj, flat_axis = hits.t.ravel(), hits.obj.ravel(), hits.axis.ravel()
    flat_dirs = directions.reshape(-1, 3)
    hit = np.isfinite(flat_t)
    rgb = np.empty((flat_t.size, 3), np.float32)
    label = np.full(flat_t.size, CLASSES["sky"], np.uint8)
    points = (origin + flat_dirs[hit] * flat_t[hit, None]).astype(np.float32)
    rgb[hit], label[hit] = shade(scene, points, flat_obj[hit], flat_axis[hit], flat_dirs[hit])
    rgb[~hit] = _sky(flat_dirs[~hit])
    image = rgb.reshape(config.height, config.width, 3) * 255.0
    if config.sensor_noise > 0:
        image += config.sensor_noise * rng.standard_normal(image.shape, dtype=np.float32)
    depth = np.where(np.isfinite(hits.t), hits.t, 0.0).astype(np.float32)
    return View(
        np.clip(image + 0.5, 0, 255).astype(np.uint8),
        depth,
        label.reshape(config.height, config.width),
    )


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
    scan = cast_lidar(scene, pose, rng)
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
