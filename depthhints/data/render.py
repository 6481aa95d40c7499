"""Ray casting and shading of box scenes: images with exact depth, and LiDAR scans.

A scene is a ground plane plus axis-aligned boxes, each with a material (class, albedo, noise
texture, pattern). Every pixel ray is intersected with the scene (each box only inside the image
rectangle its near-clipped corners project to), and surfaces are textured from tileable noise at
their world coordinates and lit by a fixed sun, so any two views of a point agree exactly.
World frame: x right, y down, z forward (KITTI camera axes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

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

PATTERN_NONE, PATTERN_WINDOWS, PATTERN_TILES = 0, 1, 2
_SUN = np.array([0.45, -0.8, -0.4]) / np.linalg.norm([0.45, -0.8, -0.4])  # towards the sun (y down)


@dataclass
class Scene:
    """Axis-aligned boxes on a ground plane (world frame: x right, y down, z forward)."""

    lo: np.ndarray  # (N, 3) box minima
    hi: np.ndarray  # (N, 3) box maxima
    label: np.ndarray  # (N,) class id
    color: np.ndarray  # (N, 3) base albedo in [0, 1]
    texture_amplitude: np.ndarray  # (N,)
    texture_scale: np.ndarray  # (N,) metres per texel of the fine noise
    pattern: np.ndarray  # (N,) one of PATTERN_*
    textures: np.ndarray = field(repr=False)  # (3, S, S) tileable noise in about [-1, 1], S = 2^n
    ground_y: float = 1.65  # height of the ground plane below the world origin


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


def _intersect_ground(scene: Scene, origin: np.ndarray, directions: np.ndarray, hits: Hits) -> None:
    dy = directions[..., 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(dy > 1e-9, (scene.ground_y - origin[1]) / dy, np.inf)
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
    _intersect_ground(scene, origin, directions, hits)
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


def cast_lidar(
    scene: Scene, origin: np.ndarray, velo_to_world: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Simulated 64-beam scan: (N, 4) float32 x, y, z, reflectance in the Velodyne frame."""
    velo_dirs, directions = _lidar_directions(velo_to_world)
    inv_directions = _safe_inverse(directions)
    hits = Hits.empty(directions.shape[:2])
    _intersect_ground(scene, origin, directions, hits)
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

    windows = pattern == PATTERN_WINDOWS
    if windows.any():
        wa, wb = np.mod(first[windows], 3.0), np.mod(second[windows], 3.2)
        pane = (wa > 0.8) & (wa < 2.2) & (wb > 0.8) & (wb < 2.4) & (axis[windows] == 0)
        glass = 0.18 + 0.06 * _sample(scene.textures[2], a[windows] / 4, b[windows] / 4)
        albedo[windows] = np.where(
            pane[:, None], glass[:, None] * np.float32([0.8, 0.9, 1.0]), albedo[windows]
        )
    tiles = pattern == PATTERN_TILES
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


def render_image(
    scene: Scene, origin: np.ndarray, rotation: np.ndarray, K: np.ndarray, width: int, height: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RGB (H, W, 3) float32 in [0, 1], camera-z depth (H, W) with 0 for sky, and class (H, W)."""
    hits, directions = cast_camera(scene, origin, rotation, K, width, height)
    flat_t, flat_obj, flat_axis = hits.t.ravel(), hits.obj.ravel(), hits.axis.ravel()
    flat_dirs = directions.reshape(-1, 3)
    hit = np.isfinite(flat_t)
    rgb = np.empty((flat_t.size, 3), np.float32)
    label = np.full(flat_t.size, CLASSES["sky"], np.uint8)
    points = (origin + flat_dirs[hit] * flat_t[hit, None]).astype(np.float32)
    rgb[hit], label[hit] = shade(scene, points, flat_obj[hit], flat_axis[hit], flat_dirs[hit])
    rgb[~hit] = _sky(flat_dirs[~hit])
    depth = np.where(np.isfinite(hits.t), hits.t, 0.0).astype(np.float32)
    return rgb.reshape(height, width, 3), depth, label.reshape(height, width)
