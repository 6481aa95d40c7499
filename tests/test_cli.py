"""The `depthhints` command: synth and demo end to end on a small drive."""

from __future__ import annotations

import numpy as np
from PIL import Image

from depthhints.cli import main
from depthhints.data.kitti import KittiRawLayout, read_split_file

SMALL = ["--frames", "5", "--width", "416", "--height", "128", "--workers", "1"]


def test_synth_writes_a_readable_tree(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path), "--image-ext", ".jpg", *SMALL]) == 0
    out = capsys.readouterr().out
    assert "stereo frames/s" in out and "split train" in out
    layout = KittiRawLayout(tmp_path)
    assert layout.image_ext == ".jpg"
    items = read_split_file(tmp_path / "splits" / "train_files.txt")
    assert layout.image_path(items[0].folder, items[0].frame, "r").is_file()


def test_demo_renders_its_picture(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), *SMALL]) == 0
    picture = tmp_path / "stereo_preview.png"
    assert str(picture) in capsys.readouterr().out
    pixels = np.asarray(Image.open(picture).convert("L"), dtype=float)
    assert pixels.shape[0] > 400 and pixels.std() > 20  # four panels with real content


def test_bad_values_are_reported_not_raised(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path), "--frames", "3", "--width", "64"]) == 2
    error = capsys.readouterr().err
    assert "at least 4 frames" in error and "--frames" in error
