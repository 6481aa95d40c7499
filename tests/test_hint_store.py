"""Hint stores: the published npy layout and sharded Parquet, with manifests and atomic writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from depthhints.data.hint_store import (
    NpyHintStore,
    ParquetHintStore,
    StoreManifest,
    StoreMismatchError,
    config_hash,
    hint_key,
    open_store,
    row_hint,
)
from depthhints.data.kitti import SplitItem, load_image
from depthhints.errors import DataFileError, MissingDataError
from depthhints.hints.fusion import fuse_pair, resize_for_hints

H, W = 32, 96
FOLDER = "2011_09_26/2011_09_26_drive_0001_sync"
CONFIG = {"matchers": "parity", "fusion": "parity", "align_corners": True}
FIXTURES = Path(__file__).parent / "fixtures"


def _hint(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    depth = rng.uniform(0.5, 80.0, (H, W)).astype(np.float32)
    depth[:, :8] = 0.0  # no hint in the leftmost columns, as for SGBM
    return depth


def _manifest(fmt: str, **changes) -> StoreManifest:
    return StoreManifest(**{"format": fmt, "height": H, "width": W, "config": CONFIG, **changes})


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal float32 arrays, bit for bit (so -0.0 differs from 0.0)."""
    return a.dtype == b.dtype == np.float32 and a.shape == b.shape and a.tobytes() == b.tobytes()


def _store_bytes(root: Path) -> int:
    return sum(path.stat().st_size for path in root.rglob("*.*"))


@pytest.mark.parametrize(
    ("fmt", "precision"), [("npy", "exact"), ("parquet", "exact"), ("parquet", "float16")]
)
def test_round_trip_and_reopen(tmp_path, fmt, precision):
    keys = [(FOLDER, frame, side) for frame in range(3) for side in ("l", "r")]
    with open_store(tmp_path, _manifest(fmt, precision=precision)) as store:
        for i, key in enumerate(keys):
            store.write(key, _hint(i))
        assert store.read(keys[2]).shape == (H, W)  # readable before the flush, too
    reopened = open_store(tmp_path)
    assert type(reopened).format == fmt and reopened.keys() == set(keys)
    assert reopened.manifest.precision == precision
    relative_tolerance = 0 if precision == "exact" else 2**-11  # float16: 11 significant bits
    for i, key in enumerate(keys):
        np.testing.assert_allclose(reopened.read(key), _hint(i), rtol=relative_tolerance, atol=0)
        assert _same_bits(reopened.read(key), _hint(i)) == (precision == "exact")
    assert not list(tmp_path.rglob("*.tmp")), "temporary files left behind"


def test_npy_layout_is_the_published_one(tmp_path):
    store = NpyHintStore(tmp_path, _manifest("npy"))
    store.write(hint_key(SplitItem(FOLDER, 7, "3")), _hint(0))
    path = tmp_path / FOLDER / "image_03" / "0000000007.npy"
    array = np.load(path)
    assert array.shape == (1, H, W) and array.dtype == np.float32
    assert path.stat().st_size == 128 + 4 * H * W


def test_store_written_by_the_published_script_is_read_as_is(tmp_path):
    path = tmp_path / FOLDER / "image_02" / "0000000003.npy"
    path.parent.mkdir(parents=True)
    np.save(path, _hint(1)[None])
    store = open_store(tmp_path)  # no manifest: the published script writes none
    assert isinstance(store, NpyHintStore) and not store.writable
    np.testing.assert_array_equal(store.read((FOLDER, 3, "l")), _hint(1))
    with pytest.raises(MissingDataError, match=r"0000000004\.npy"):
        store.read((FOLDER, 4, "l"))


def test_format_mismatch_is_refused(tmp_path):
    open_store(tmp_path, _manifest("npy"))
    with pytest.raises(StoreMismatchError, match="npy"):
        ParquetHintStore(tmp_path)


@pytest.mark.parametrize("fmt", ["npy", "parquet"])
@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.full((H, W), np.nan, np.float32), "NaN"),
        (-np.ones((H, W), np.float32), "negative"),
        (np.ones((H, W + 1), np.float32), "shape"),
    ],
)
def test_bad_hints_are_refused_and_nothing_is_written(tmp_path, fmt, bad, message):
    store = open_store(tmp_path, _manifest(fmt))
    with pytest.raises(DataFileError, match=message):
        store.write((FOLDER, 0, "l"), bad)
    store.flush()
    assert open_store(tmp_path).keys() == set()


@pytest.mark.parametrize("precision", ["exact", "float16"])
def test_parquet_rows_stream_with_arrow_datasets_and_carry_metadata(tmp_path, precision):
    manifest = _manifest("parquet", precision=precision)
    with ParquetHintStore(tmp_path, manifest, rows_per_shard=2) as store:
        for frame in range(5):
            store.write((FOLDER, frame, "l"), _hint(frame))
    assert len(store.shards()) == 3  # 2 + 2 + 1 rows
    table = ds.dataset(store.shard_dir, format="parquet").to_table()
    assert table.num_rows == 5
    assert set(table["drive"].to_pylist()) == {"2011_09_26_drive_0001_sync"}
    assert table["valid_fraction"][0].as_py() == pytest.approx((W - 8) / W)
    if precision == "float16":
        depth_type = f"fixed_size_list<element: halffloat>[{H * W}]"
        assert str(table.schema.field("depth").type) == depth_type
    else:  # random floats are not depths of SGBM disparities: kept as float32
        assert str(table.schema.field("depth").type) == "list<element: float>"
        assert str(table.schema.field("disparity").type) == "list<element: uint16>"
        assert table["encoding"].to_pylist() == ["float32"] * 5
    assert sorted(key[1] for key, _ in store.iter_rows()) == list(range(5))


def test_parquet_is_much_smaller_than_npy(tmp_path):
    # A smooth depth map (a tilted plane with holes), like a real hint.
    rows, cols = np.mgrid[0:H, 0:W]
    depth = (5.0 + rows * 0.3 + cols * 0.05).astype(np.float32)
    depth[:, :8] = 0
    for fmt in ("npy", "parquet"):
        with open_store(tmp_path / fmt, _manifest(fmt)) as store:
            for frame in range(8):
                store.write((FOLDER, frame, "l"), depth + frame)
    size = {fmt: _store_bytes(tmp_path / fmt) for fmt in ("npy", "parquet")}
    assert size["parquet"] <= 0.25 * size["npy"]


# --- exact Parquet storage --------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_hints() -> dict[tuple, np.ndarray]:
    """Parity hints of the real KITTI pair (both sides, as `depthhints hints` computes them) and
    the published script's hints of the same pair, keyed as a store keys them."""
    pair = FIXTURES / "kitti_object_stereo"
    left, right = (resize_for_hints(load_image(pair / name)) for name in ("left.png", "right.png"))
    ours = {(FOLDER, 0, side): hint for side, (hint, _) in fuse_pair(left, right).items()}
    published = FIXTURES / "reference_hints" / "align_corners_true"
    theirs = {(FOLDER, 1, s): np.load(published / f"hint_{s}.npy")[0] for s in ("l", "r")}
    return ours | theirs


def _write_store(root: Path, manifest: StoreManifest, hints: dict) -> int:
    """``hints`` into a new store at ``root``; its size on disk in bytes."""
    with open_store(root, manifest) as store:
        for key, hint in hints.items():
            store.write(key, hint)
    return _store_bytes(root)


def _real(fmt: str, **changes) -> StoreManifest:
    return StoreManifest(format=fmt, height=320, width=1024, config=CONFIG, **changes)


def test_parquet_keeps_real_hints_bit_for_bit_in_a_quarter_of_npy(tmp_path, real_hints):
    npy_bytes = _write_store(tmp_path / "npy", _real("npy"), real_hints)
    parquet_bytes = _write_store(tmp_path / "parquet", _real("parquet"), real_hints)
    npy, parquet = open_store(tmp_path / "npy"), open_store(tmp_path / "parquet")
    assert isinstance(parquet, ParquetHintStore) and parquet.keys() == set(real_hints)
    for key, hint in real_hints.items():
        assert (hint == 0).any() and np.signbit(hint[hint == 0]).any()  # -0.0 where no match
        assert _same_bits(npy.read(key), hint)
        assert _same_bits(parquet.read(key), npy.read(key)), key
    assert all(_same_bits(hint, real_hints[key]) for key, hint in parquet.iter_rows())
    table = ds.dataset(parquet.shard_dir, format="parquet").to_table()
    assert table["encoding"].to_pylist() == ["disparity16"] * len(real_hints)
    for row in table.to_pylist():  # rows as Ray Data streams them
        key = (f"{row['date']}/{row['drive']}", row["frame"], row["side"])
        assert _same_bits(row_hint(row), real_hints[key]), key
    share = parquet_bytes / npy_bytes
    print(f"Parquet store of the real KITTI pair's hints: {share:.1%} of npy")  # measured: 20.6 %
    assert share <= 0.25


def test_a_hint_not_made_from_disparities_is_kept_exactly(tmp_path, real_hints):
    rng = np.random.default_rng(3)
    foreign = rng.uniform(1e-3, 100.0, (H, W)).astype(np.float32)
    foreign[rng.random((H, W)) < 0.3] = 0.0
    foreign[0, :4] = -0.0
    real = next(iter(real_hints.values()))[:H, -W:]  # our disparities, but at another width
    hints = {(FOLDER, 0, "l"): foreign, (FOLDER, 0, "r"): real, (FOLDER, 1, "l"): np.zeros((H, W))}
    _write_store(tmp_path, _manifest("parquet"), hints)
    store = open_store(tmp_path)
    for key, hint in hints.items():
        assert _same_bits(store.read(key), hint.astype(np.float32)), key
    table = ds.dataset(store.shard_dir, format="parquet").to_table()
    assert table["encoding"].to_pylist() == ["float32", "float32", "disparity16"]
    with pytest.raises(DataFileError, match="no 32x96 depth for encoding 'disparity16'"):
        row_hint({"height": H, "width": W, "encoding": "disparity16", "disparity": None})


def test_float16_precision_is_lossy_and_recorded(tmp_path, real_hints):
    lossy = _write_store(tmp_path / "float16", _real("parquet", precision="float16"), real_hints)
    exact = _write_store(tmp_path / "exact", _real("parquet"), real_hints)
    store = open_store(tmp_path / "float16")
    assert store.manifest.precision == "float16"
    for key, hint in real_hints.items():
        np.testing.assert_allclose(store.read(key), hint, rtol=2**-11, atol=0)
        assert not np.array_equal(store.read(key), hint)
    assert exact < lossy  # our hints: their disparities are smaller than float16 depths
    rng = np.random.default_rng(4)
    foreign = {(FOLDER, f, "l"): rng.uniform(0.5, 80.0, (H, W)).astype(np.float32) for f in (0, 1)}
    sizes = {
        precision: _write_store(tmp_path / f"foreign-{precision}", manifest, foreign)
        for precision, manifest in (
            ("float16", _manifest("parquet", precision="float16")),
            ("exact", _manifest("parquet")),
        )
    }
    assert sizes["float16"] < sizes["exact"]  # other hints: float16 is smaller

    with pytest.raises(StoreMismatchError, match="precision float16, but exact was requested"):
        open_store(tmp_path / "float16", _real("parquet"))
    with pytest.raises(StoreMismatchError, match="precision exact, but float16 was requested"):
        open_store(tmp_path / "exact", _real("parquet", precision="float16"))
    with pytest.raises(ValueError, match="precision='float16' is for Parquet stores"):
        _manifest("npy", precision="float16")
    with pytest.raises(ValueError, match="precision='float64'"):
        _manifest("parquet", precision="float64")


def _write_legacy_store(root: Path, hints: dict) -> None:
    """A Parquet store as written before exact storage: a manifest without precision, one shard
    with the depth as float16 and no encoding column."""
    manifest = {"format": "parquet", "height": H, "width": W, "config": CONFIG, "data_root": ""}
    manifest |= {"version": 1, "config_hash": config_hash(CONFIG)}
    (root / "shards").mkdir(parents=True)
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    keys = list(hints)
    flat = np.concatenate([hint.astype(np.float16).ravel() for hint in hints.values()])
    table = pa.table(
        {
            "date": pa.array([key[0].split("/")[0] for key in keys], pa.string()),
            "drive": pa.array([key[0].split("/")[1] for key in keys], pa.string()),
            "frame": pa.array([key[1] for key in keys], pa.int32()),
            "side": pa.array([key[2] for key in keys], pa.string()),
            "height": pa.array([H] * len(keys), pa.int32()),
            "width": pa.array([W] * len(keys), pa.int32()),
            "valid_fraction": pa.array(
                [float((h > 0).mean()) for h in hints.values()], pa.float32()
            ),
            "depth": pa.FixedSizeListArray.from_arrays(pa.array(flat), H * W),
        }
    )
    pq.write_table(
        table,
        root / "shards" / "part-0123456789ab-00000.parquet",
        row_group_size=1,
        compression="zstd",
        use_dictionary=["date", "drive", "side"],
        use_byte_stream_split=["depth.list.element"],
    )


def test_a_float16_store_of_the_previous_layout_opens_reads_and_grows(tmp_path):
    old = {(FOLDER, frame, "l"): _hint(frame) for frame in range(3)}
    _write_legacy_store(tmp_path, old)
    store = open_store(tmp_path)
    assert isinstance(store, ParquetHintStore) and store.manifest.precision == "float16"
    for key, hint in old.items():
        assert _same_bits(store.read(key), hint.astype(np.float16).astype(np.float32))
    assert sorted(key for key, _ in store.iter_rows()) == sorted(old)
    with pytest.raises(StoreMismatchError, match="precision float16, but exact was requested"):
        open_store(tmp_path, _manifest("parquet"))

    with open_store(tmp_path, _manifest("parquet", precision="float16")) as store:
        store.write((FOLDER, 3, "l"), _hint(3))
    table = ds.dataset(store.shard_dir, format="parquet").to_table()  # one schema in every shard
    assert table.num_rows == 4 and "encoding" not in table.column_names
    for row in table.to_pylist():
        expected = _hint(row["frame"]).astype(np.float16).astype(np.float32)
        assert _same_bits(row_hint(row), expected)
    reopened = open_store(tmp_path)
    np.testing.assert_allclose(reopened.read((FOLDER, 3, "l")), _hint(3), rtol=2**-11, atol=0)
