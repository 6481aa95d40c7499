"""The bundled KITTI split lists parse and match the published counts (docs/method.md#splits)."""

from __future__ import annotations

from collections import Counter
from functools import cache

import numpy as np
import pytest

from depthhints.data.kitti import (
    SPLITS_DIR,
    SplitItem,
    load_split,
    read_split,
    split_file,
    split_lists,
    write_split_file,
)

PARTS = ("train", "val", "test")
# (name, part): lines, distinct (folder, frame) or None, (l, r) or None, sequences or None, kind
EXPECTED = {
    ("eigen", "test"): (697, 697, (697, 0), 28, "raw"),
    ("eigen_benchmark", "test"): (652, 652, (652, 0), 28, "raw"),
    ("eigen_full", "train"): (45200, 22600, (22600, 22600), 33, "raw"),
    ("eigen_full", "val"): (1776, 888, (888, 888), 33, "raw"),
    ("eigen_full", "all"): (46976, 23488, (23488, 23488), 33, "raw"),
    ("eigen_zhou", "train"): (39810, 21880, (19956, 19854), 32, "raw"),
    ("eigen_zhou", "val"): (4424, 4187, (2161, 2263), 31, "raw"),
    ("odom", "train"): (36671, None, (18281, 18390), None, "odom"),
    ("odom", "val"): (4075, None, (2092, 1983), None, "odom"),
    ("odom", "test_09"): (1590, None, (1590, 0), 1, "odom"),
    ("odom", "test_10"): (1200, None, (1200, 0), 1, "odom"),
    ("benchmark", "train"): (72084, None, (36042, 36042), 48, "raw"),
    ("benchmark", "val"): (6060, None, (3030, 3030), 12, "raw"),
    ("benchmark", "test"): (500, None, None, None, "benchmark"),
}


@cache
def _split(name: str, part: str) -> tuple[SplitItem, ...]:
    return tuple(load_split(name, part))


def test_every_bundled_list_is_covered():
    bundled = {(p.parent.name, p.stem.replace("_files", "")) for p in SPLITS_DIR.glob("*/*.txt")}
    assert bundled == set(EXPECTED)


@pytest.mark.parametrize(("name", "part"), sorted(EXPECTED))
def test_split_counts(name, part):
    lines, distinct, sides, sequences, kind = EXPECTED[name, part]
    items = _split(name, part)
    assert len(items) == lines
    assert {item.kind for item in items} == {kind}
    if distinct is not None:
        assert len({(item.folder, item.frame) for item in items}) == distinct
    if sides is not None:
        counts = Counter(item.side for item in items)
        assert (counts["l"], counts["r"]) == sides
        assert sum(counts.values()) == lines
    if sequences is not None:
        assert len({item.folder for item in items}) == sequences


def test_split_files_round_trip_to_canonical_lines():
    path = split_file("eigen_full", "val")
    assert [item.line() for item in _split("eigen_full", "val")] == path.read_text().splitlines()


def test_odometry_sequences():
    assert {int(item.folder) for item in _split("odom", "train")} == set(range(9))
    assert {item.folder for item in _split("odom", "test_09")} == {"9"}
    assert {item.folder for item in _split("odom", "test_10")} == {"10"}


def test_benchmark_test_is_image_n_format():
    items = _split("benchmark", "test")
    assert [item.frame for item in items] == list(range(500))
    assert {item.folder for item in items} == {"image"}
    assert all(item.side is None for item in items)
    assert items[3].line() == "image 3"


def test_eigen_to_benchmark_ids():
    ids = np.load(SPLITS_DIR / "benchmark" / "eigen_to_benchmark_ids.npy")
    assert ids.shape == (652,) and ids.dtype == np.int64
    assert ids.min() >= 0 and ids.max() == 696
    eigen, benchmark = _split("eigen", "test"), _split("eigen_benchmark", "test")
    assert [eigen[i] for i in ids] == list(benchmark)


def test_eigen_full_all_is_train_then_val():
    train, val = _split("eigen_full", "train"), _split("eigen_full", "val")
    assert _split("eigen_full", "all") == train + val


def test_eigen_zhou_lines_are_all_in_eigen_full_all():
    everything = set(_split("eigen_full", "all"))
    assert set(_split("eigen_zhou", "train") + _split("eigen_zhou", "val")) <= everything


def test_eigen_test_frames_are_zero_padded_but_parse_to_int():
    raw = split_file("eigen", "test").read_text().splitlines()
    assert all(len(line.split()[1]) == 10 for line in raw)
    first = _split("eigen", "test")[0]
    assert raw[0].split()[1] == "0000000069" and first.frame == 69
    assert first.line() == "2011_09_26/2011_09_26_drive_0002_sync 69 l"
    assert first.date == "2011_09_26" and first.camera == 2 and first.other_side == "r"


def test_no_eigen_test_sequence_in_eigen_full():
    test_drives = {item.folder for item in _split("eigen", "test")}
    assert not test_drives & {item.folder for item in _split("eigen_full", "all")}


def test_eigen_test_dates():
    dates = Counter(item.date for item in _split("eigen", "test"))
    assert dates == {
        "2011_09_26": 522,
        "2011_09_28": 25,
        "2011_09_29": 25,
        "2011_09_30": 75,
        "2011_10_03": 50,
    }


@pytest.mark.parametrize(
    ("name", "part", "message"),
    [
        ("nope", "train", "eigen_full"),
        ("eigen_full", "test", "['all', 'train', 'val']"),
        ("odom", "test", "test_09"),
    ],
)
def test_unknown_split_names_list_what_exists(name, part, message):
    with pytest.raises(ValueError, match=r"unknown split|has no part") as info:
        split_file(name, part)
    assert message in str(info.value)


def test_a_split_is_a_bundled_name_a_split_file_or_a_folder_of_lists(tmp_path):
    folder = tmp_path / "splits"
    items = {part: [SplitItem("d/x_sync", frame, "l")] for frame, part in enumerate(PARTS)}
    items["val"] += items["train"]  # an item of two lists
    for part, listed in items.items():
        write_split_file(folder / f"{part}_files.txt", listed)
    own = tmp_path / "mine.txt"
    write_split_file(own, items["test"])
    lists = {part: folder / f"{part}_files.txt" for part in PARTS}
    training = {part: lists[part] for part in ("train", "val")}

    # a folder, or one of its lists where the command needs several
    assert split_lists(folder, ("train", "val")) == training
    assert split_lists(lists["train"], ("train", "val")) == training
    assert split_lists(folder, ("test",)) == {"test": lists["test"]}
    assert split_lists(own, ("test",)) == {"test": own}
    every_list = [*items["test"], *items["train"], *items["val"][:1]]  # lists in name order
    assert read_split(folder) == every_list
    # a bundled name, or one of its lists
    bundled = {part: split_file("eigen_zhou", part) for part in ("train", "val")}
    assert split_lists("eigen_zhou", ("train", "val")) == bundled
    assert split_lists("eigen_zhou/train", ("train", "val")) == bundled
    assert split_lists("eigen", ("test",)) == {"test": split_file("eigen", "test")}
    assert split_lists("eigen_full/all") == {"all_files": split_file("eigen_full", "all")}
