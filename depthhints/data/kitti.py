"""Reading (and, for calibration, writing) the KITTI raw layout, split lists and file formats.

The facts implemented here: layout and splits (docs/method.md#kitti-layout, docs/method.md#splits),
cameras (docs/method.md#intrinsics, docs/method.md#stereo-baseline) and LiDAR projection
(docs/method.md#ground-truth-export). Paths follow the raw layout::

    <root>/<date>/calib_cam_to_cam.txt, calib_velo_to_cam.txt
    <root>/<date>/<drive>_sync/image_0{2,3}/data/%010d.{jpg,png}
    <root>/<date>/<drive>_sync/velodyne_points/data/%010d.bin
    <root>/<date>/<drive>_sync/proj_depth/groundtruth/image_0{2,3}/%010d.png
    <root>/<date>/<drive>_sync/semantic/image_0{2,3}/%010d.png  (synthetic drives)
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from numbers import Integral
from pathlib import Path, PurePosixPath, PureWindowsPath

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from depthhints.errors import (
    CalibrationError,
    ConfigError,
    DataFileError,
    DepthHintsError,
    MissingDataError,
    SplitFormatError,
)

SIDE_TO_CAMERA = {"l": 2, "r": 3, "2": 2, "3": 3}
OTHER_SIDE = {"l": "r", "r": "l", "2": "3", "3": "2"}
KINDS = ("raw", "odom", "benchmark")
IMAGE_EXTS = (".jpg", ".png")
SPLITS_DIR = Path(__file__).resolve().parent / "splits"
DATA_PATH_FIX = "check the data root given (--data-path; --data_path of train and sweep)"

_FRAME_RE = re.compile(r"[0-9]+")
_DEPTH_SCALE = 256.0  # KITTI depth PNGs store metres x 256 as uint16

PathLike = str | os.PathLike


# --------------------------------------------------------------------------------------------
# Split lists
# --------------------------------------------------------------------------------------------


def _check_relative(value: str, what: str) -> None:
    """Raise SplitFormatError unless `value` is a non-empty relative path without '..'."""
    if not value:
        raise SplitFormatError(f"{what}: empty path; give a path relative to the data root")
    if PurePosixPath(value).is_absolute() or PureWindowsPath(value).is_absolute():
        raise SplitFormatError(
            f"{what}: {value!r} is an absolute path; split folders must be relative to the "
            "data root (e.g. 2011_09_26/2011_09_26_drive_0002_sync)"
        )
    if ".." in re.split(r"[\\/]", value):
        raise SplitFormatError(
            f"{what}: {value!r} contains '..'; split folders must stay inside the data root, "
            "give them relative to it (e.g. 2011_09_26/2011_09_26_drive_0002_sync)"
        )


@dataclass(frozen=True)
class SplitItem:
    """One line of a split list: a frame of a drive (raw), sequence (odom) or benchmark image."""

    folder: str
    frame: int
    side: str | None
    kind: str = "raw"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise SplitFormatError(f"SplitItem kind {self.kind!r} is not one of {KINDS}")
        if isinstance(self.frame, bool) or not isinstance(self.frame, Integral):
            raise SplitFormatError(f"SplitItem frame {self.frame!r} is not an integer")
        if self.frame < 0:
            raise SplitFormatError(f"SplitItem frame {self.frame} is negative")
        object.__setattr__(self, "frame", int(self.frame))
        if self.side is None:
            if self.kind != "benchmark":
                raise SplitFormatError(
                    f"SplitItem {self.folder!r}: side is required for "
                    f"{self.kind!r} items; use one of {list(SIDE_TO_CAMERA)}"
                )
        elif self.side not in SIDE_TO_CAMERA:
            raise SplitFormatError(
                f"SplitItem side {self.side!r} is not one of {list(SIDE_TO_CAMERA)}"
            )
        _check_relative(self.folder, "SplitItem folder")

    def _side(self) -> str:
        if self.side is None:
            raise SplitFormatError(
                f"split item {self.line()!r} has no side (benchmark 'image N' format), so it has "
                "no camera; load benchmark test images with a dedicated loader"
            )
        return self.side

    @property
    def camera(self) -> int:
        """KITTI camera index: 2 (left colour) or 3 (right colour)."""
        return SIDE_TO_CAMERA[self._side()]

    @property
    def other_side(self) -> str:
        """Side letter of the stereo partner."""
        return OTHER_SIDE[self._side()]

    @property
    def date(self) -> str:
        """Capture date folder (first path component) of a raw item."""
        if self.kind != "raw":
            raise SplitFormatError(
                f"split item {self.line()!r} is a {self.kind} item; only raw items have a date"
            )
        return re.split(r"[\\/]", self.folder)[0]

    def line(self) -> str:
        """The canonical split-file line (frame without zero padding)."""
        if self.kind == "benchmark":
            return f"{self.folder} {self.frame}"
        return f"{self.folder} {self.frame} {self.side}"


def parse_split_line(line: str, source: str = "<string>", lineno: int = 1) -> SplitItem:
    """Parse one split line: '<folder> <frame> <side>', '<seq> <frame> <side>' or 'image <N>'."""
    where = f"{source}:{lineno}"
    fields = line.split()
    fix = "expected '<date>/<drive>_sync <frame> <l|r>', '<sequence> <frame> <l|r>' or 'image <N>'"
    if len(fields) == 2 and fields[0] == "image":
        folder, frame_text, side, kind = "image", fields[1], None, "benchmark"
    elif len(fields) == 3:
        folder, frame_text, side = fields
        kind = "odom" if _FRAME_RE.fullmatch(folder) else "raw"
        if side not in SIDE_TO_CAMERA:
            raise SplitFormatError(
                f"{where}: unknown side {side!r} in {line!r}; use one of {list(SIDE_TO_CAMERA)}"
            )
    else:
        raise SplitFormatError(f"{where}: {len(fields)} fields in {line!r}; {fix}")
    if not _FRAME_RE.fullmatch(frame_text):
        raise SplitFormatError(
            f"{where}: frame {frame_text!r} in {line!r} is not a non-negative integer; {fix}"
        )
    try:
        _check_relative(folder, where)
    except SplitFormatError as err:
        raise SplitFormatError(f"{err} (line {line!r})") from None
    if kind == "odom":
        folder = str(int(folder))
    return SplitItem(folder, int(frame_text), side, kind)


def read_split_file(path: PathLike) -> list[SplitItem]:
    """Read a split list (one item per line; trailing blank lines are ignored)."""
    path = Path(path)
    if not path.is_file():
        raise MissingDataError(f"{path}: split file not found; check the path or the split name")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise SplitFormatError(f"{path}: not UTF-8 text ({err}); give a split list") from None
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise SplitFormatError(
            f"{path}: the split file is empty; list at least one "
            "'<date>/<drive>_sync <frame> <l|r>' line"
        )
    items = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            raise SplitFormatError(f"{path}:{lineno}: blank line inside the split file; remove it")
        items.append(parse_split_line(line, str(path), lineno))
    return items


def write_split_file(path: PathLike, items: Iterable[SplitItem]) -> None:
    """Write split items one canonical line each, with a trailing newline."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(item.line() + "\n" for item in items), encoding="utf-8")


def _lists_in(folder: Path) -> dict[str, Path]:
    """A split folder's lists by part (train_files.txt: 'train', test_files_09.txt: 'test_09')."""
    files = sorted(f for f in folder.glob("*_files*.txt") if f.is_file())
    return {f.stem.replace("_files", ""): f for f in files}


def _available_splits() -> dict[str, dict[str, Path]]:
    """Bundled split name -> part -> file (e.g. 'odom' -> 'test_09' -> .../test_files_09.txt)."""
    found = {}
    for folder in sorted(p for p in SPLITS_DIR.iterdir() if p.is_dir()):
        lists = _lists_in(folder)
        if lists:
            found[folder.name] = lists
    return found


def split_file(name: str, part: str) -> Path:
    """Path of a bundled split list, e.g. split_file('eigen_full', 'train'), ('odom', 'test_09')."""
    named = _bundled(f"{name}/{part}")
    if isinstance(named, str):
        raise ConfigError(f"split {name}/{part}: {named}")
    return named[0]


def load_split(name: str, part: str) -> list[SplitItem]:
    """Read a bundled split list (see split_file)."""
    return read_split_file(split_file(name, part))


def split_lists(
    spec: PathLike, parts: Sequence[str] | None = None, what: str = "--split"
) -> dict[str, Path]:
    """The split files that ``spec`` names, by part: those of ``parts`` (e.g. ``("train",
    "val")``; None: every list it names). ConfigError naming ``what`` and the accepted forms.

    ``spec`` is a split file, a folder of ``<part>_files.txt`` lists (a synthetic tree's
    ``splits``) or a bundled split name (``eigen_zhou``; ``eigen/test`` names one list); a path
    wins over a bundled name. One list stands for its set where several parts are needed:
    ``<folder>/train_files.txt`` for ``<folder>``, ``eigen_zhou/train`` for ``eigen_zhou``.
    """
    text = str(spec)
    named = _named_lists(text)
    if isinstance(named, str):
        raise ConfigError(f"{what} {text!r}: {named}; give {_split_forms(parts)}")
    one, lists, where = named
    if one and (parts is None or len(parts) == 1):
        return {parts[0] if parts else one.stem: one}
    wanted = list(lists) if parts is None else list(parts)
    missing = [f"{part}_files.txt" for part in wanted if part not in lists]
    if one and not lists:
        problem = f"one split list, but {' and '.join(wanted)} lists are needed"
    elif not lists:
        problem = f"{where} holds no <part>_files.txt lists"
    elif missing:
        problem = f"{where} has no {' or '.join(missing)} (it has {sorted(lists)})"
    else:
        return {part: lists[part] for part in wanted}
    raise ConfigError(f"{what} {text!r}: {problem}; give {_split_forms(parts)}")


def _split_forms(parts: Sequence[str] | None = None) -> str:
    """The forms of a split that :func:`split_lists` accepts where ``parts`` are needed."""
    if parts is not None and len(parts) > 1:
        files = " and ".join(f"{part}_files.txt" for part in parts)
        return (
            f"a bundled split name (e.g. eigen_zhou) or a folder holding {files} (or one of those "
            "files)"
        )
    return (
        "a bundled split name (e.g. eigen_zhou, or eigen/test for one list), a split file, or a "
        "folder of <part>_files.txt lists"
    )


def read_split(
    spec: PathLike, parts: Sequence[str] | None = None, what: str = "--split"
) -> list[SplitItem]:
    """The items of the lists that :func:`split_lists` finds, in order; an item of several
    lists once."""
    lists = [read_split_file(path) for path in split_lists(spec, parts, what).values()]
    return lists[0] if len(lists) == 1 else list(dict.fromkeys(itertools.chain(*lists)))


_Named = tuple[Path | None, dict[str, Path], str] | str


def _named_lists(text: str) -> _Named:
    """(the one list that ``text`` names or None, the set of lists it names or belongs to,
    where that set is), or why it names none."""
    path = Path(text)
    if path.is_dir():
        return None, _lists_in(path), f"the folder {path}"
    if path.is_file():
        lists = _lists_in(path.parent)
        if path.resolve() not in {f.resolve() for f in lists.values()}:
            lists = {}  # a list of its own, not one of a split folder's
        return path, lists, f"the folder {path.parent}"
    return _bundled(text)


def _bundled(text: str) -> _Named:
    """:func:`_named_lists` of a bundled ``<name>`` or ``<name>/<part>``."""
    available = _available_splits()
    name, _, part = text.partition("/")
    if name not in available:
        known = ", ".join(available)
        return f"not a split file or folder, and an unknown split name (bundled: {known})"
    lists, where = available[name], f"the bundled split {name!r}"
    key = part.removesuffix(".txt").replace("_files", "")
    if part and key not in lists:
        return f"{where} has no part {part!r} (it has {sorted(lists)})"
    return lists.get(key), lists, where


# --------------------------------------------------------------------------------------------
# Layout
# --------------------------------------------------------------------------------------------


def _normalise_ext(image_ext: str) -> str:
    ext = image_ext.lower()
    ext = ext if ext.startswith(".") else "." + ext
    if ext not in IMAGE_EXTS:
        raise DepthHintsError(f"image_ext {image_ext!r} is not supported; use '.jpg' or '.png'")
    return ext


def _sorted_dirs(path: Path, pattern: str) -> list[Path]:
    return sorted(p for p in path.glob(pattern) if p.is_dir())


def detect_image_ext(root: PathLike) -> str:
    """Return '.jpg' or '.png': the type of the first image under root/*/*_sync/image_02/data."""
    root = Path(root)
    if not root.is_dir():
        raise MissingDataError(f"{root}: KITTI data root not found; {DATA_PATH_FIX}")
    for data_dir in _sorted_dirs(root, "*/*_sync/image_02/data"):
        with os.scandir(data_dir) as entries:
            for entry in entries:
                ext = os.path.splitext(entry.name)[1].lower()
                if ext in IMAGE_EXTS and entry.is_file():
                    return ext
    raise MissingDataError(
        f"{root}: no .jpg or .png images found under <root>/<date>/<drive>_sync/image_02/data; "
        f"extract the drives' image zips there, or {DATA_PATH_FIX} (code that reads no images "
        "can pass KittiRawLayout(root, image_ext='.png'))"
    )


class KittiRawLayout:
    """Paths and calibration of a KITTI raw tree rooted at `root`."""

    def __init__(self, root: PathLike, image_ext: str | None = None):
        self.root = Path(root)
        self.image_ext = (
            detect_image_ext(self.root) if image_ext is None else _normalise_ext(image_ext)
        )
        self._calibrations: dict[str, Calibration] = {}

    def __repr__(self) -> str:
        return f"KittiRawLayout({str(self.root)!r}, image_ext={self.image_ext!r})"

    def resolve(self, relative: str) -> Path:
        """root / relative, refusing absolute paths and paths that leave the root."""
        _check_relative(str(relative), f"path under {self.root}")
        return self.root / relative

    def _camera_dir(self, side: str | None) -> str:
        if side not in SIDE_TO_CAMERA:
            raise SplitFormatError(f"side {side!r} is not one of {list(SIDE_TO_CAMERA)}")
        return f"image_0{SIDE_TO_CAMERA[side]}"

    def image_path(self, folder: str, frame: int, side: str) -> Path:
        """<root>/<folder>/image_0{2|3}/data/<frame:010d><ext>."""
        name = f"{int(frame):010d}{self.image_ext}"
        return self.resolve(folder) / self._camera_dir(side) / "data" / name

    def velodyne_path(self, folder: str, frame: int) -> Path:
        """<root>/<folder>/velodyne_points/data/<frame:010d>.bin."""
        return self.resolve(folder) / "velodyne_points" / "data" / f"{int(frame):010d}.bin"

    def groundtruth_path(self, folder: str, frame: int, side: str) -> Path:
        """<root>/<folder>/proj_depth/groundtruth/image_0{2|3}/<frame:010d>.png."""
        name = f"{int(frame):010d}.png"
        return self.resolve(folder) / "proj_depth" / "groundtruth" / self._camera_dir(side) / name

    def semantic_path(self, folder: str, frame: int, side: str) -> Path:
        """<root>/<folder>/semantic/image_0{2|3}/<frame:010d>.png (synthetic drives only)."""
        name = f"{int(frame):010d}.png"
        return self.resolve(folder) / "semantic" / self._camera_dir(side) / name

    def calib_dir(self, folder: str) -> Path:
        """<root>/<date>, the folder holding the calibration files of `folder`'s date."""
        return self.resolve(re.split(r"[\\/]", str(folder))[0])

    def calibration(self, folder: str) -> Calibration:
        """Calibration of `folder`'s date (read once per date)."""
        date_dir = self.calib_dir(folder)
        if date_dir.name not in self._calibrations:
            self._calibrations[date_dir.name] = read_raw_calibration(date_dir)
        return self._calibrations[date_dir.name]


# --------------------------------------------------------------------------------------------
# Data files
# --------------------------------------------------------------------------------------------


def _require_file(path: Path, what: str) -> None:
    if not path.is_file():
        raise MissingDataError(
            f"{path}: {what} not found; check the data root and that the drive is downloaded"
        )


_GREY_BANDS = {"1", "L", "A", "I", "F"}  # PIL bands of greyscale modes (1, L, LA, I, I;16, F)


def load_image(path: PathLike, require_colour: bool = False) -> np.ndarray:
    """Decode an image fully; return RGB uint8 (H, W, 3).

    Greyscale images are expanded to RGB, unless ``require_colour``: then they raise, since
    KITTI's image_02/image_03 are the colour cameras (image_00/01 are the greyscale ones).
    """
    path = Path(path)
    _require_file(path, "image")
    if path.stat().st_size == 0:
        raise DataFileError(f"{path}: image file is empty (0 bytes); re-extract or re-download it")
    try:
        with Image.open(path) as img:
            img.load()
            grey = set(img.getbands()) <= _GREY_BANDS
            rgb = img if img.mode == "RGB" else img.convert("RGB")
            array = np.array(rgb, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DataFileError(
            f"{path}: cannot decode image ({err}); the file is truncated or corrupt, "
            "re-extract or re-download it"
        ) from None
    if grey and require_colour:
        raise DataFileError(
            f"{path}: greyscale image (mode {img.mode}); image_02/image_03 hold the colour "
            "cameras, so re-extract the colour images there (not image_00/image_01)"
        )
    return array


def load_velodyne(path: PathLike) -> np.ndarray:
    """Read a Velodyne scan: float32 (N, 4) = x forward, y left, z up, reflectance."""
    path = Path(path)
    _require_file(path, "Velodyne scan")
    size = path.stat().st_size
    if size % 16:
        raise DataFileError(
            f"{path}: {size} bytes is not a multiple of 16 (4 float32 per point); "
            "the scan is truncated or not a KITTI .bin, re-extract it"
        )
    return np.fromfile(path, dtype=np.float32).reshape(-1, 4)


def load_depth_png(path: PathLike) -> np.ndarray:
    """Read a KITTI depth PNG (uint16, metres x 256) as float32 metres; 0 means no depth."""
    path = Path(path)
    _require_file(path, "depth PNG")
    raw = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise DataFileError(f"{path}: cannot decode depth PNG; the file is corrupt, re-create it")
    if raw.dtype != np.uint16 or raw.ndim != 2:
        raise DataFileError(
            f"{path}: depth PNG must be single-channel 16-bit, got {raw.dtype} with shape "
            f"{raw.shape}; KITTI depth maps store uint16 metres x 256"
        )
    return raw.astype(np.float32) / np.float32(_DEPTH_SCALE)


def save_depth_png(path: PathLike, depth: np.ndarray) -> None:
    """Write float metres as a KITTI uint16 depth PNG (x 256, rounded, clipped; <=0/NaN -> 0)."""
    path = Path(path)
    depth = np.asarray(depth, dtype=np.float64)
    if depth.ndim != 2:
        raise DepthHintsError(f"{path}: depth map must be 2-D (h, w), got shape {depth.shape}")
    scaled = np.nan_to_num(np.round(depth * _DEPTH_SCALE), nan=0.0, posinf=65535.0, neginf=0.0)
    ok, encoded = cv2.imencode(".png", np.clip(scaled, 0, 65535).astype(np.uint16))
    if not ok:
        raise DataFileError(f"{path}: OpenCV could not encode the depth map as PNG")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_bytes(encoded.tobytes())
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------------------------


def _as_matrix(value: object, shape: tuple[int, int], what: str) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.shape == (3, 4) and shape == (4, 4):
        array = np.vstack([array, [0.0, 0.0, 0.0, 1.0]])
    if array.size != shape[0] * shape[1]:
        raise CalibrationError(f"{what}: expected {shape[0]}x{shape[1]} values, got {array.shape}")
    return array.reshape(shape)


@dataclass
class Calibration:
    """Rectified camera projections and the Velodyne-to-camera transform of one capture date."""

    P_rect: dict[int, np.ndarray]
    R_rect: np.ndarray
    velo_to_cam: np.ndarray
    image_sizes: dict[int, tuple[int, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.P_rect = {
            int(c): _as_matrix(P, (3, 4), f"P_rect[{c}]") for c, P in self.P_rect.items()
        }
        self.R_rect = _as_matrix(self.R_rect, (3, 3), "R_rect")
        self.velo_to_cam = _as_matrix(self.velo_to_cam, (4, 4), "velo_to_cam")
        self.image_sizes = {int(c): (int(w), int(h)) for c, (w, h) in self.image_sizes.items()}

    def projection(self, cam: int) -> np.ndarray:
        """P_rect of camera `cam` (3x4)."""
        if cam not in self.P_rect:
            raise CalibrationError(
                f"no rectified projection for camera {cam}; have cameras {sorted(self.P_rect)}"
            )
        return self.P_rect[cam]

    @property
    def focal(self) -> float:
        """Focal length of camera 2 in pixels."""
        return float(self.projection(2)[0, 0])

    @property
    def baseline(self) -> float:
        """Distance between cameras 2 and 3 in metres."""
        return float((self.projection(2)[0, 3] - self.projection(3)[0, 3]) / self.focal)

    def velo_to_image(self, cam: int) -> np.ndarray:
        """3x4 matrix P_rect[cam] @ R_rect (as 4x4) @ velo_to_cam."""
        rect = np.eye(4)
        rect[:3, :3] = self.R_rect
        return self.projection(cam) @ rect @ self.velo_to_cam


def read_calib_file(path: PathLike) -> dict[str, np.ndarray | str]:
    """Parse 'key: values' lines; numeric values become float64 arrays, others stay strings."""
    path = Path(path)
    if not path.is_file():
        raise MissingDataError(
            f"{path}: calibration file not found; download and extract the calibration zip of "
            "this date next to its drives"
        )
    data: dict[str, np.ndarray | str] = {}
    for lineno, line in enumerate(
        path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1
    ):
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        if not sep or not key.strip():
            raise CalibrationError(
                f"{path}:{lineno}: expected 'key: values', got {line!r}; fix or re-download it"
            )
        value = value.strip()
        try:
            data[key.strip()] = np.array(value.split(), dtype=np.float64) if value else value
        except ValueError:
            data[key.strip()] = value
    return data


def _get(data: dict, path: Path, key: str, size: int, required: bool = True) -> np.ndarray | None:
    """Numeric entry `key` with `size` values, or CalibrationError naming file and key."""
    if key not in data:
        if not required:
            return None
        raise CalibrationError(
            f"{path}: missing entry {key!r}; the file is incomplete, "
            "re-download the calibration of this date"
        )
    value = data[key]
    if isinstance(value, str) or value.size != size:
        raise CalibrationError(
            f"{path}: entry {key!r} must have {size} numbers, got {value!r}; fix or re-download it"
        )
    return value


def read_raw_calibration(date_dir: PathLike) -> Calibration:
    """Read <date_dir>/calib_cam_to_cam.txt and calib_velo_to_cam.txt (KITTI raw format)."""
    date_dir = Path(date_dir)
    cam_path = date_dir / "calib_cam_to_cam.txt"
    velo_path = date_dir / "calib_velo_to_cam.txt"
    cam, velo = read_calib_file(cam_path), read_calib_file(velo_path)
    P_rect, sizes = {}, {}
    for c in range(4):
        P = _get(cam, cam_path, f"P_rect_0{c}", 12, required=c in (2, 3))
        if P is not None:
            P_rect[c] = P.reshape(3, 4)
        size = _get(cam, cam_path, f"S_rect_0{c}", 2, required=False)
        if size is not None:
            sizes[c] = (round(size[0]), round(size[1]))
    R_rect = _get(cam, cam_path, "R_rect_00", 9).reshape(3, 3)
    velo_to_cam = np.eye(4)
    velo_to_cam[:3, :3] = _get(velo, velo_path, "R", 9).reshape(3, 3)
    velo_to_cam[:3, 3] = _get(velo, velo_path, "T", 3)
    return Calibration(P_rect=P_rect, R_rect=R_rect, velo_to_cam=velo_to_cam, image_sizes=sizes)


def read_object_calibration(path: PathLike) -> Calibration:
    """Read a KITTI object-benchmark calib.txt (P0..P3, R0_rect, Tr_velo_to_cam)."""
    path = Path(path)
    data = read_calib_file(path)
    P_rect = {}
    for c in range(4):
        P = _get(data, path, f"P{c}", 12, required=c in (2, 3))
        if P is not None:
            P_rect[c] = P.reshape(3, 4)
    R_rect = _get(data, path, "R0_rect", 9).reshape(3, 3)
    velo_to_cam = _get(data, path, "Tr_velo_to_cam", 12).reshape(3, 4)
    return Calibration(P_rect=P_rect, R_rect=R_rect, velo_to_cam=velo_to_cam)


def _fmt(values: Iterable[float]) -> str:
    return " ".join(f"{float(v):e}" for v in np.ravel(values))


def _camera_lines(c: int, P: np.ndarray, R_rect: np.ndarray, size: tuple[int, int] | None):
    """Lines for camera c: plausible unrectified S/K/D/R/T derived from P, then the rectified."""
    K = P[:, :3]
    T = np.linalg.solve(K, P[:, 3])  # camera-0 origin expressed in camera c
    lines = []
    if size is not None:
        lines.append(f"S_0{c}: {_fmt(size)}")
    lines += [
        f"K_0{c}: {_fmt(K)}",
        f"D_0{c}: {_fmt(np.zeros(5))}",
        f"R_0{c}: {_fmt(np.eye(3))}",
        f"T_0{c}: {_fmt(T)}",
    ]
    if size is not None:
        lines.append(f"S_rect_0{c}: {_fmt(size)}")
    lines += [f"R_rect_0{c}: {_fmt(R_rect)}", f"P_rect_0{c}: {_fmt(P)}"]
    return lines


def write_raw_calibration(
    date_dir: PathLike, calib: Calibration, calib_time: str = "01-Jan-2011 00:00:00"
) -> None:
    """Write calib_cam_to_cam/velo_to_cam/imu_to_velo.txt in the KITTI raw text format."""
    date_dir = Path(date_dir)
    date_dir.mkdir(parents=True, exist_ok=True)
    for c in (2, 3):
        calib.projection(c)
    cam = [f"calib_time: {calib_time}", f"corner_dist: {_fmt([0.0995])}"]
    for c in sorted(calib.P_rect):
        cam += _camera_lines(c, calib.P_rect[c], calib.R_rect, calib.image_sizes.get(c))
    velo = [
        f"calib_time: {calib_time}",
        f"R: {_fmt(calib.velo_to_cam[:3, :3])}",
        f"T: {_fmt(calib.velo_to_cam[:3, 3])}",
        f"delta_f: {_fmt([0, 0])}",
        f"delta_c: {_fmt([0, 0])}",
    ]
    # Not used by this project; a typical KITTI IMU-to-Velodyne placement.
    imu = [f"calib_time: {calib_time}", f"R: {_fmt(np.eye(3))}", f"T: {_fmt([-0.81, 0.32, -0.8])}"]
    for name, lines in (
        ("calib_cam_to_cam.txt", cam),
        ("calib_velo_to_cam.txt", velo),
        ("calib_imu_to_velo.txt", imu),
    ):
        (date_dir / name).write_text("\n".join(lines) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------------------------
# LiDAR -> depth map
# --------------------------------------------------------------------------------------------


def velodyne_to_depth_map(
    points: np.ndarray,
    calib: Calibration,
    cam: int = 2,
    image_shape: tuple[int, int] | None = None,
    vel_depth: bool = False,
    corrected: bool = False,
) -> np.ndarray:
    """Project a Velodyne scan into camera `cam` as a sparse float32 (h, w) depth map.

    The steps are docs/method.md#ground-truth-export.

    By default this follows the reference exactly: points with x >= 0 are projected with
    calib.velo_to_image(cam), pixel = round(u) - 1, round(v) - 1 (numpy's half-to-even rounding),
    as if P_rect mapped to 1-based (MATLAB) pixel coordinates. Depth is the camera-side z, or the
    LiDAR x with vel_depth=True (the Eigen-evaluation quirk). Pixels hit by several points keep
    the minimum depth, found with the reference's non-injective index (see below); negative
    depths become 0. image_shape (h, w) defaults to camera 2's S_rect size, even for cam 3, as in
    the reference.

    corrected=True drops the "- 1" (KITTI's P_rect maps to 0-based pixels: on the real frame in
    tests/fixtures SGBM agrees with the LiDAR within 1 px more often without it) and finds
    duplicates with the true index row * w + col.
    """
    if image_shape is None:
        if 2 not in calib.image_sizes:
            raise CalibrationError(
                "velodyne_to_depth_map: the calibration has no S_rect_02 image size (object-format "
                "calib); pass image_shape=(h, w) from the image"
            )
        w, h = calib.image_sizes[2]
    else:
        h, w = (int(s) for s in image_shape)
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] < 3:
        raise DataFileError(f"velodyne_to_depth_map: points must be (N, >=3), got {points.shape}")
    xyz = points[points[:, 0] >= 0, :3].astype(np.float64)
    proj = np.hstack([xyz, np.ones((len(xyz), 1))]) @ calib.velo_to_image(cam).T
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = 0 if corrected else 1
        u = np.round(proj[:, 0] / proj[:, 2]) - shift
        v = np.round(proj[:, 1] / proj[:, 2]) - shift
    z = xyz[:, 0] if vel_depth else proj[:, 2]
    keep = (u >= 0) & (v >= 0) & (u < w) & (v < h)
    u, v, z = u[keep].astype(np.int64), v[keep].astype(np.int64), z[keep]

    depth = np.zeros((h, w), dtype=np.float64)
    # Plain write: where several points share a pixel, the last one in scan order lands.
    pixel = v * w + u
    _, first_of_reversed = np.unique(pixel[::-1], return_index=True)
    last = len(pixel) - 1 - first_of_reversed
    depth[v[last], u[last]] = z[last]

    # Duplicate rule. The reference groups points by a "linear index" row*(w-1) + col - 1, which
    # is not injective: (r, w-1) and (r+1, 0) share an index. For every index held by more than
    # one point it writes the minimum depth of the whole group at the pixel of the group's FIRST
    # point (in scan order); other pixels of the group keep their plain-write value. We do the
    # same per group here; corrected=True uses the true index row*w + col, so each group is
    # exactly one pixel and every multiply-hit pixel gets its own minimum.
    key = pixel if corrected else v * (w - 1) + u - 1
    _, first, inverse, counts = np.unique(
        key, return_index=True, return_inverse=True, return_counts=True
    )
    group_min = np.full(len(first), np.inf)
    np.minimum.at(group_min, inverse, z)
    dup = counts > 1
    depth[v[first[dup]], u[first[dup]]] = group_min[dup]

    depth[depth < 0] = 0
    return depth.astype(np.float32)
