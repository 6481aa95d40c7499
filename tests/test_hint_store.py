"""Hint stores: the published npy layout and sharded Parquet, with manifests and atomic writes."""

from __future__ import annotations

import numpy as np
import pyarrow.dataset as ds
import pytest

from depthhints.data.kitti import SplitItem
from depthhints.errors import DataFileError, MissingDataError
from hints_worker.store import (
    NpyHintStore,
    ParquetHintStore,
    StoreManifest,
    StoreMismatchError,
    hint_key,
    open_store,
)

H, W = 32, 96
FOLDER = "2011_09_26/2011_09_26_drive_0001_sync"
CONFIG = {"matchers": "parity", "fusion": "parity", "align_corners": True}


def _hint(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    depth = rng.uniform(0.5, 80.0, (H, W)).astype(np.float32)
    depth[:, :8] = 0.0  # no hint in the leftmost columns, as for SGBM
    return depth


def _manifest(fmt: str, **changes) -> StoreManifest:
    return StoreManifest(**{"format": fmt, "height": H, "width": W, "config": CONFIG, **changes})


@pytest.mark.parametrize("fmt", ["npy", "parquet"])
def test_round_trip_and_reopen(tmp_path, fmt):
    keys = [(FOLDER, frame, side) for frame in range(3) for side in ("l", "r")]
    with open_store(tmp_path, _manifest(fmt)) as store:
        for i, key in enumerate(keys):
            store.write(key, _hint(i))
        assert store.read(keys[2]).shape == (H, W)  # readable before the flush, too
    reopened = open_store(tmp_path)
    assert type(reopened).format == fmt and reopened.keys() == set(keys)
    relative_tolerance = 0 if fmt == "npy" else 2**-11  # float16 keeps 11 significant bits
    for i, key in enumerate(keys):
        np.testing.assert_allclose(reopened.read(key), _hint(i), rtol=relative_tolerance, atol=0)
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


def test_parquet_rows_stream_with_arrow_datasets_and_carry_metadata(tmp_path):
    with ParquetHintStore(tmp_path, _manifest("parquet"), rows_per_shard=2) as store:
        for frame in range(5):
            store.write((FOLDER, frame, "l"), _hint(frame))
    assert len(store.shards()) == 3  # 2 + 2 + 1 rows
    table = ds.dataset(store.shard_dir, format="parquet").to_table()
    assert table.num_rows == 5
    assert set(table["drive"].to_pylist()) == {"2011_09_26_drive_0001_sync"}
    assert table["valid_fraction"][0].as_py() == pytest.approx((W - 8) / W)
    assert str(table.schema.field("depth").type) == f"fixed_size_list<element: halffloat>[{H * W}]"
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
    size = {
        fmt: sum(p.stat().st_size for p in (tmp_path / fmt).rglob("*.*"))
        for fmt in ("npy", "parquet")
    }
    assert size["parquet"] < 0.35 * size["npy"]
