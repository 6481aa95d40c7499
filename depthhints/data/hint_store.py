"""Hint stores: where fused depth hints live between precomputation and training.

Two layouts behind one interface:

- ``NpyHintStore``: the published layout, ``<root>/<date>/<drive>_sync/image_0{2,3}/%010d.npy``
  holding float32 (1, H, W), 0 = no hint. Hints written by the published script can be read
  as they are (a store without our manifest is opened read-only), and ours can be read by it.
- ``ParquetHintStore``: Parquet shards under ``<root>/shards/``, one row per image with the key
  columns (date, drive, frame, side), height, width and the valid fraction. Each row is its own
  row group, so a training loader reads one image without decoding its neighbours; Ray Data
  streams the shards. The depth is kept at the manifest's ``precision``:

  - ``"exact"`` (default): what is read back equals the float32 hint written, bit for bit. A hint
    made by this pipeline is the float32 depth of an OpenCV fixed-point disparity (1/16 px), so
    its row holds that disparity (``encoding`` "disparity16", column ``disparity``: uint16, the
    fixed-point disparity + 16, so that OpenCV's "no match" (−1 px) is 0; byte-stream-split)
    and reading recomputes the depth with ``disparity_to_depth`` at ``focal_px(width)``. A hint
    that does not come back bit for bit that way (made elsewhere, e.g. from ground truth) is
    kept as float32 (``encoding`` "float32", column ``depth``, plain encoding).
  - ``"float16"``: the depth as float16 (11 significant bits, byte-stream-split), lossy; the
    layout of Parquet stores written before exact storage (no ``encoding`` column), which open
    and read as they are. Smaller than exact only for hints that are not our disparities.

  ``row_hint`` decodes a row as Ray Data or ``Table.to_pylist()`` gives it. Pages are zstd
  level 3: on the real KITTI pair's hints an exact store is 21 % of the npy store (float16:
  22 %) for ~3 ms of compression per 1024×320 hint (level 19 would give 17 % for ~0.2 s, a
  fifth of what computing the hint costs).

Both keep ``manifest.json`` (format, resolution, matcher/fusion configuration and its hash, the
source data root, the Parquet precision). Opening a store with another format, resolution,
configuration or precision is refused.
Every file is written under a temporary name and renamed, so a killed writer never leaves a torn
file under a final name; a write the file system refuses (disk full, read-only) removes its
temporary file and raises ``StoreWriteError``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from depthhints.data.kitti import SIDE_TO_CAMERA, SplitItem
from depthhints.errors import ConfigError, DataFileError, DepthHintsError, MissingDataError
from depthhints.geometry import STEREO_BASELINE, disparity_to_depth, focal_px

MANIFEST = "manifest.json"
STORE_VERSION = 2

PRECISIONS = ("exact", "float16")
"""How a store keeps depth values: bit for bit, or (Parquet only) as float16."""
LEGACY_PARQUET_PRECISION = "float16"
"""The precision of a Parquet store whose manifest predates the ``precision`` field."""
DISPARITY_SCALE = 16
"""OpenCV SGBM disparities are int16 fixed point with 4 fractional bits."""
DISPARITY_OFFSET = 16
"""Added to the stored fixed-point disparity so that OpenCV's "no match" (−1 px) is 0."""
ZSTD_LEVEL = 3
"""zstd level of the Parquet pages (higher levels shrink them a little for much more CPU)."""

HintKey = tuple[str, int, str]  # (folder "<date>/<drive>_sync", frame, "l" | "r")


class StoreMismatchError(DepthHintsError, ValueError):
    """A hint store made with another format, resolution or configuration than requested."""


class StoreWriteError(DepthHintsError, OSError):
    """The store's folder cannot take a file: disk full, read-only, no permission."""


@contextmanager
def _writing(path: Path, tmp: Path) -> Iterator[None]:
    """Turn an OS error while writing ``path`` (via ``tmp``) into a ``StoreWriteError``; the
    temporary file goes, so nothing half-written stays behind."""
    try:
        yield
    except OSError as error:
        with suppress(OSError):  # a read-only file system refuses this too
            tmp.unlink(missing_ok=True)
        reason = error.strerror or str(error)
        raise StoreWriteError(
            f"cannot write {path}: {reason}. Free space in (or make writable) {path.parent}, or "
            "choose another output folder, and run the command again: hints already stored are "
            "kept and only the rest is computed"
        ) from error


def config_hash(config: dict) -> str:
    """Stable short hash of a JSON-serialisable configuration."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def hint_key(item: SplitItem) -> HintKey:
    """Store key of a split item: sides '2'/'3' are normalised to 'l'/'r'."""
    side = "l" if SIDE_TO_CAMERA[item.side] == 2 else "r"
    return item.folder, item.frame, side


@dataclass(frozen=True)
class StoreManifest:
    """What a store holds: its layout, resolution and the settings that produced it."""

    format: str
    height: int
    width: int
    config: dict = field(default_factory=dict)
    data_root: str = ""
    version: int = STORE_VERSION
    precision: str = "exact"

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision={self.precision!r}: use one of {list(PRECISIONS)}")
        if self.precision != "exact" and self.format != "parquet":
            raise ConfigError(
                f"precision={self.precision!r} is for Parquet stores; a {self.format!r} store "
                "keeps its hints exactly"
            )

    @property
    def config_hash(self) -> str:
        return config_hash(self.config)

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "config_hash": self.config_hash}, indent=2) + "\n"

    @classmethod
    def read(cls, path: Path) -> StoreManifest:
        try:
            data = json.loads(path.read_text())
            data.pop("config_hash", None)
            if "precision" not in data and data.get("format") == "parquet":
                data["precision"] = LEGACY_PARQUET_PRECISION
            return cls(**data)
        except (OSError, ValueError, TypeError) as error:
            raise DataFileError(
                f"{path}: unreadable hint-store manifest ({error}); delete the store or restore "
                "the file"
            ) from None

    def check_compatible(self, other: StoreManifest, where: Path) -> None:
        """Raise StoreMismatchError unless ``other`` describes the same kind of hints."""
        for name, ours, theirs in (
            ("format", self.format, other.format),
            ("resolution (HxW)", (self.height, self.width), (other.height, other.width)),
            ("configuration hash", self.config_hash, other.config_hash),
            ("hint precision", self.precision, other.precision),
        ):
            if ours != theirs:
                raise StoreMismatchError(
                    f"{where}: the store holds {name} {ours}, but {theirs} was requested; use "
                    "another output folder, or delete this store to recompute it"
                )


def _check_read(hint: np.ndarray, where: str) -> np.ndarray:
    """``hint`` if every value is a finite depth >= 0, else DataFileError naming ``where``."""
    if np.isfinite(hint).all() and not (hint < 0).any():
        return hint
    bad = int((~np.isfinite(hint)).sum())
    negative = int((hint < 0).sum())
    raise DataFileError(
        f"{where}: hint has {bad} NaN/inf and {negative} negative depths; hints are depths >= 0 "
        "(0 = no hint), delete it and recompute it with `depthhints hints`"
    )


def write_atomically(path: Path, data: bytes) -> None:
    """``data`` into ``path`` through a temporary name; ``StoreWriteError`` if it cannot."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with _writing(path, tmp):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        os.replace(tmp, path)


class HintStore(ABC):
    """A keyed collection of (H, W) float32 depth hints in network units, 0 = no hint.

    ``manifest=None`` opens an existing store as it is; a manifest creates the store or checks
    that the existing one matches it.
    """

    format: str

    def __init__(self, root: str | os.PathLike, manifest: StoreManifest | None = None):
        self.root = Path(root)
        path = self.root / MANIFEST
        existing = StoreManifest.read(path) if path.is_file() else None
        if manifest is not None and manifest.format != self.format:
            raise StoreMismatchError(
                f"{self.root}: a {type(self).__name__} needs format {self.format!r}, "
                f"got manifest format {manifest.format!r}"
            )
        if existing is not None and manifest is not None:
            existing.check_compatible(manifest, self.root)
        elif manifest is not None:
            write_atomically(path, manifest.to_json().encode())
            existing = manifest
        elif existing is not None and existing.format != self.format:
            raise StoreMismatchError(
                f"{self.root}: this is a {existing.format!r} store; open it as such"
            )
        self.manifest = existing

    @property
    def writable(self) -> bool:
        return self.manifest is not None

    def _check_hint(self, key: HintKey, hint: np.ndarray) -> np.ndarray:
        if not self.writable:
            raise DepthHintsError(
                f"{self.root}: store has no {MANIFEST} (made by another tool); open it with a "
                "manifest to write"
            )
        hint = np.asarray(hint, dtype=np.float32)
        expected = (self.manifest.height, self.manifest.width)
        if hint.shape != expected:
            raise DataFileError(
                f"hint for {key} has shape {hint.shape}, the store at {self.root} holds {expected}"
            )
        if not np.isfinite(hint).all() or (hint < 0).any():
            raise DataFileError(
                f"hint for {key} has NaN, inf or negative depths; refusing to store it in "
                f"{self.root} (0 marks a pixel without a hint)"
            )
        return hint

    @abstractmethod
    def keys(self) -> set[HintKey]:
        """Every key with a stored hint."""

    def __contains__(self, key: HintKey) -> bool:
        return key in self.keys()

    @abstractmethod
    def read(self, key: HintKey) -> np.ndarray:
        """The hint of ``key``, float32 (H, W)."""

    @abstractmethod
    def write(self, key: HintKey, hint: np.ndarray) -> None:
        """Store (or replace) the hint of ``key``; may buffer until ``flush``."""

    def flush(self) -> None:  # noqa: B027 - optional hook, nothing buffered by default
        """Make buffered writes durable."""

    def __enter__(self) -> HintStore:
        return self

    def __exit__(self, *exc) -> None:
        self.flush()


class NpyHintStore(HintStore):
    """The published layout: one float32 (1, H, W) ``.npy`` per image."""

    format = "npy"
    _PATH = re.compile(r"(?P<folder>[^/]+/[^/]+)/image_0(?P<cam>[23])/(?P<frame>\d{10})\.npy$")

    def path(self, key: HintKey) -> Path:
        folder, frame, side = key
        return self.root / folder / f"image_0{SIDE_TO_CAMERA[side]}" / f"{frame:010d}.npy"

    def keys(self) -> set[HintKey]:
        found = set()
        for path in self.root.glob("*/*/image_0[23]/*.npy"):
            match = self._PATH.search(path.relative_to(self.root).as_posix())
            if match:
                side = "l" if match["cam"] == "2" else "r"
                found.add((match["folder"], int(match["frame"]), side))
        return found

    def __contains__(self, key: HintKey) -> bool:
        return self.path(key).is_file()

    def read(self, key: HintKey) -> np.ndarray:
        path = self.path(key)
        if not path.is_file():
            raise MissingDataError(
                f"{path}: no depth hint for {key}; run `depthhints hints` for this split or point "
                "the hint path at the right store"
            )
        try:
            array = np.load(path)
        except (OSError, ValueError, EOFError) as error:
            raise DataFileError(f"{path}: unreadable hint ({error}); recompute it") from None
        if array.ndim != 3 or array.shape[0] != 1:
            raise DataFileError(f"{path}: expected a (1, H, W) hint, got shape {array.shape}")
        if self.manifest and array.shape[1:] != (self.manifest.height, self.manifest.width):
            raise DataFileError(
                f"{path}: hint is {array.shape[1:]}, the store manifest says "
                f"{(self.manifest.height, self.manifest.width)}; recompute it"
            )
        return _check_read(array[0].astype(np.float32, copy=False), str(path))

    def write(self, key: HintKey, hint: np.ndarray) -> None:
        hint = self._check_hint(key, hint)
        serialized = io.BytesIO()
        np.save(serialized, hint[None])
        write_atomically(self.path(key), serialized.getvalue())


def _record_key(record: dict) -> HintKey:
    return f"{record['date']}/{record['drive']}", record["frame"], record["side"]


def disparity_hint(stored: np.ndarray, fx: float) -> np.ndarray:
    """The float32 hint of a stored disparity map (fixed point + ``DISPARITY_OFFSET``)."""
    fixed = stored.astype(np.float32) - np.float32(DISPARITY_OFFSET)
    return disparity_to_depth(fixed / np.float32(DISPARITY_SCALE), fx)


def hint_disparity(hint: np.ndarray, fx: float) -> np.ndarray | None:
    """The stored disparity map (uint16) that ``disparity_hint`` turns back into ``hint`` bit for
    bit, or None if there is none (a hint not made from SGBM disparities at focal ``fx``)."""
    hint = np.asarray(hint, dtype=np.float32)
    positive = hint > 0
    scaled = DISPARITY_SCALE * fx * STEREO_BASELINE
    inverse = scaled / np.where(positive, hint, 1).astype(np.float64)
    # depth 0 is disparity 0 (+0.0) or a negative one, OpenCV's "no match" (−0.0)
    fixed = np.where(positive, np.rint(inverse), np.where(np.signbit(hint), -DISPARITY_SCALE, 0))
    stored = np.clip(fixed + DISPARITY_OFFSET, 0, np.iinfo(np.uint16).max).astype(np.uint16)
    recomputed = disparity_hint(stored, fx)
    return stored if np.array_equal(recomputed.view(np.uint32), hint.view(np.uint32)) else None


def _lists(arrays: list[np.ndarray | None], dtype: pa.DataType) -> pa.ListArray:
    """One list per (flattened) array, null where the array is None."""
    sizes = [0 if array is None else array.size for array in arrays]
    offsets = pa.array(np.concatenate([[0], np.cumsum(sizes)]), pa.int32())
    flat = [array.ravel() for array in arrays if array is not None]
    values = pa.array(np.concatenate(flat) if flat else [], dtype)
    return pa.ListArray.from_arrays(offsets, values, mask=pa.array([a is None for a in arrays]))


_ENCODING_COLUMN = {"disparity16": "disparity", "float32": "depth", "float16": "depth"}
_HINT_COLUMNS = ("height", "width", "encoding", "disparity", "depth")


def row_hint(row: Mapping[str, Any], where: str = "") -> np.ndarray:
    """The float32 (H, W) hint of one shard row, given as a mapping of column name to value (a
    row of ``Table.to_pylist()`` or of Ray Data), whatever its encoding."""
    height, width = int(row["height"]), int(row["width"])
    # rows written before exact storage have no encoding column: their depth is float16
    encoding = row.get("encoding") or "float16"
    values = row.get(_ENCODING_COLUMN.get(encoding, ""))
    if values is None or np.size(values) != height * width:
        where = where or "/".join(str(row.get(name)) for name in ParquetHintStore.SCHEMA_KEYS)
        raise DataFileError(
            f"{where}: the row has no {height}x{width} depth for encoding {encoding!r}; delete "
            "its shard and recompute those hints"
        )
    values = np.asarray(values).reshape(height, width)
    if encoding == "disparity16":
        return disparity_hint(values, focal_px(width))
    return values.astype(np.float32, copy=False)


def _row_hint(table: pa.Table, row: int, where: str) -> np.ndarray:
    """``row_hint`` of ``row`` of (part of) a shard, its lists taken as arrays without copies."""
    record = {}
    for name in set(_HINT_COLUMNS) & set(table.column_names):
        scalar = table[name][row]
        if not pa.types.is_list(scalar.type) and not pa.types.is_fixed_size_list(scalar.type):
            record[name] = scalar.as_py()
        elif scalar.is_valid:
            record[name] = scalar.values.to_numpy(zero_copy_only=False)
    return row_hint(record, where)


class ParquetHintStore(HintStore):
    """Sharded Parquet: one row (and row group) per image, depth exact or float16."""

    format = "parquet"
    SCHEMA_KEYS = ("date", "drive", "frame", "side")

    def __init__(
        self,
        root: str | os.PathLike,
        manifest: StoreManifest | None = None,
        rows_per_shard: int = 64,
    ):
        super().__init__(root, manifest)
        self.rows_per_shard = rows_per_shard
        self._writer_id = uuid.uuid4().hex[:12]
        self._shard_count = 0
        self._buffer: list[tuple[HintKey, np.ndarray]] = []
        self._index: dict[HintKey, tuple[Path, int]] | None = None

    @property
    def shard_dir(self) -> Path:
        return self.root / "shards"

    def shards(self) -> list[Path]:
        return sorted(self.shard_dir.glob("*.parquet"))

    def _build_index(self) -> dict[HintKey, tuple[Path, int]]:
        index = {}
        for shard in self.shards():
            table = pq.read_table(shard, columns=list(self.SCHEMA_KEYS))
            for row, record in enumerate(table.to_pylist()):
                index[_record_key(record)] = (shard, row)
        return index

    def _lookup(self) -> dict[HintKey, tuple[Path, int]]:
        if self._index is None:
            self._index = self._build_index()
        return self._index

    def keys(self) -> set[HintKey]:
        return set(self._lookup()) | {key for key, _ in self._buffer}

    def __contains__(self, key: HintKey) -> bool:
        return key in self._lookup() or any(k == key for k, _ in self._buffer)

    def read(self, key: HintKey) -> np.ndarray:
        for buffered_key, hint in reversed(self._buffer):
            if buffered_key == key:
                return hint.copy()
        if key not in self._lookup():
            self._index = None  # another writer may have added shards since
        if key not in self._lookup():
            raise MissingDataError(
                f"{self.root}: no depth hint for {key}; run `depthhints hints` for this split"
            )
        shard, row = self._lookup()[key]
        parquet = pq.ParquetFile(shard)
        columns = [name for name in _HINT_COLUMNS if name in parquet.schema_arrow.names]
        table = parquet.read_row_group(row, columns=columns)
        return _check_read(_row_hint(table, 0, f"{shard} {key}"), f"{shard} {key}")

    def write(self, key: HintKey, hint: np.ndarray) -> None:
        self._buffer.append((key, self._check_hint(key, hint)))
        if len(self._buffer) >= self.rows_per_shard:
            self.flush()

    def _depth_columns(self, hints: list[np.ndarray]) -> tuple[dict[str, pa.Array], dict]:
        """The depth columns of ``hints`` at the store's precision, and their Parquet encodings."""
        if self.manifest.precision == "float16":
            flat = np.concatenate([hint.astype(np.float16).ravel() for hint in hints])
            depth = pa.FixedSizeListArray.from_arrays(pa.array(flat), hints[0].size)
            return {"depth": depth}, {"depth.list.element": "BYTE_STREAM_SPLIT"}
        fx = focal_px(hints[0].shape[1])
        disparities = [hint_disparity(hint, fx) for hint in hints]
        exact = [hint if d is None else None for hint, d in zip(hints, disparities, strict=True)]
        columns = {
            "encoding": pa.array(
                ["float32" if d is None else "disparity16" for d in disparities], pa.string()
            ),
            "disparity": _lists(disparities, pa.uint16()),
            "depth": _lists(exact, pa.float32()),
        }
        return columns, {
            "disparity.list.element": "BYTE_STREAM_SPLIT",
            "depth.list.element": "PLAIN",
        }

    def flush(self) -> None:
        if not self._buffer:
            return
        rows, self._buffer = self._buffer, []
        hints = [hint for _, hint in rows]
        height, width = hints[0].shape
        dates, drives = zip(*(key[0].split("/", 1) for key, _ in rows), strict=True)
        depth_columns, encodings = self._depth_columns(hints)
        table = pa.table(
            {
                "date": pa.array(dates, pa.string()),
                "drive": pa.array(drives, pa.string()),
                "frame": pa.array([key[1] for key, _ in rows], pa.int32()),
                "side": pa.array([key[2] for key, _ in rows], pa.string()),
                "height": pa.array([height] * len(rows), pa.int32()),
                "width": pa.array([width] * len(rows), pa.int32()),
                "valid_fraction": pa.array([float((h > 0).mean()) for h in hints], pa.float32()),
                **depth_columns,
            }
        )
        name = f"part-{self._writer_id}-{self._shard_count:05d}.parquet"
        self._shard_count += 1
        path = self.shard_dir / name
        tmp = path.with_name(f".{name}.tmp")
        with _writing(path, tmp):
            self.shard_dir.mkdir(parents=True, exist_ok=True)
            pq.write_table(
                table,
                tmp,
                row_group_size=1,
                compression="zstd",
                compression_level=ZSTD_LEVEL,
                use_dictionary=[
                    c for c in ("date", "drive", "side", "encoding") if c in table.column_names
                ],
                column_encoding=encodings,
            )
            os.replace(tmp, path)
        if self._index is not None:
            for row, (key, _) in enumerate(rows):
                self._index[key] = (path, row)

    def iter_rows(self) -> Iterator[tuple[HintKey, np.ndarray]]:
        """Every stored (key, hint), shard by shard (a key written twice appears twice)."""
        self.flush()
        for shard in self.shards():
            table = pq.read_table(shard)
            for row, record in enumerate(table.select(list(self.SCHEMA_KEYS)).to_pylist()):
                key = _record_key(record)
                yield key, _row_hint(table, row, f"{shard} {key}")


def open_store(
    root: str | os.PathLike, manifest: StoreManifest | None = None, format: str | None = None
) -> HintStore:
    """Open (or create, given a manifest) the store at ``root`` in its format."""
    root = Path(root)
    if format is None:
        if manifest is not None:
            format = manifest.format
        elif (root / MANIFEST).is_file():
            format = StoreManifest.read(root / MANIFEST).format
        else:
            format = "npy"  # the published script's stores carry no manifest
    stores = {"npy": NpyHintStore, "parquet": ParquetHintStore}
    if format not in stores:
        raise StoreMismatchError(f"unknown hint store format {format!r}; use one of {list(stores)}")
    return stores[format](root, manifest)
