"""`depthhints predict` and `export` with a small random ResNet18 net on a real KITTI frame."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from depthhints.cli import main
from depthhints.errors import ConfigError, MissingDataError
from depthhints.export import export_depth_net, run_onnx, run_torchscript, verify_export
from depthhints.models import DepthDecoder, ResnetEncoder, encoder_checkpoint, load_depth_net
from depthhints.predict import (
    UNIT_METRES,
    UNIT_RELATIVE,
    collect_images,
    output_stems,
    predict_depth,
    predict_disparity,
)

KITTI_LEFT = Path(__file__).parent / "fixtures" / "kitti_object_stereo" / "left.png"
HEIGHT, WIDTH = 64, 192


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """One intra-op thread: tiny convs gain nothing from more, and a busy 2-core box loses a lot."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _write_weights(folder: Path, use_stereo: bool) -> Path:
    torch.manual_seed(0)
    encoder = ResnetEncoder(18)
    decoder = DepthDecoder(encoder.num_ch_enc)
    folder.mkdir(parents=True)
    torch.save(encoder_checkpoint(encoder, HEIGHT, WIDTH, use_stereo), folder / "encoder.pth")
    torch.save(decoder.state_dict(), folder / "depth.pth")
    return folder


@pytest.fixture(scope="module")
def stereo_weights(tmp_path_factory) -> Path:
    return _write_weights(tmp_path_factory.mktemp("stereo") / "weights_0", use_stereo=True)


@pytest.fixture(scope="module")
def mono_weights(tmp_path_factory) -> Path:
    return _write_weights(tmp_path_factory.mktemp("mono") / "weights_0", use_stereo=False)


@pytest.fixture(scope="module")
def kitti_left() -> np.ndarray:
    return np.asarray(Image.open(KITTI_LEFT).convert("RGB"))


def _synthetic(height: int, width: int, seed: int) -> np.ndarray:
    """A smooth gradient with noise, so the net sees structure rather than a flat image."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    base = np.stack([xs / width, ys / height, (xs + ys) / (width + height)], axis=-1) * 200
    return np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)


def _reference_depth(weights: Path, image: np.ndarray, scale: float) -> np.ndarray:
    """Independent path: Lanczos to W×H, net, bilinear (torch) back to full size, scale / disp."""
    loaded = load_depth_net(weights)
    small = Image.fromarray(image).resize((loaded.width, loaded.height), Image.Resampling.LANCZOS)
    batch = torch.from_numpy(np.asarray(small, np.float32) / 255).permute(2, 0, 1)[None]
    with torch.no_grad():
        disp = loaded.net(batch)
    full = F.interpolate(disp, size=image.shape[:2], mode="bilinear", align_corners=False)
    return scale / full[0, 0].numpy()


# --------------------------------------------------------------------------- export


@pytest.fixture(scope="module")
def exported(stereo_weights, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export")
    argv = ["export", "--load-weights-folder", str(stereo_weights), "--out", str(out)]
    assert main([*argv, "--verify-image", str(KITTI_LEFT)]) == 0
    return out


def test_export_cli_writes_both_formats_and_metadata(exported, stereo_weights, capsys):
    assert (exported / "depth_net.onnx").is_file()
    assert (exported / "depth_net.torchscript.pt").is_file()
    meta = json.loads((exported / "export.json").read_text())
    assert (meta["height"], meta["width"]) == (HEIGHT, WIDTH)
    assert meta["use_stereo"] is True and meta["num_layers"] == 18
    assert meta["input"]["name"] == "image" and meta["output"]["name"] == "disparity"
    assert meta["input"]["shape"] == ["batch", 3, HEIGHT, WIDTH] and meta["dynamic_batch"]
    assert "0.45" in meta["normalisation"] and "0.225" in meta["normalisation"]
    assert meta["depth_scale"] == 5.4 and "5.4 / disparity" in meta["metres"]
    assert meta["onnx_opset"] == 17
    diffs = meta["verification"]["max_abs_diff_vs_pytorch"]
    assert set(diffs) == {"onnx", "torchscript"} and max(diffs.values()) < 1e-4


@pytest.mark.filterwarnings("ignore:.*torch.jit.load. is deprecated:FutureWarning")
def test_exported_models_match_pytorch_on_kitti_with_dynamic_batch(
    exported, stereo_weights, kitti_left
):
    loaded = load_depth_net(stereo_weights)
    small = Image.fromarray(kitti_left).resize((WIDTH, HEIGHT), Image.Resampling.LANCZOS)
    one = np.asarray(small, np.float32).transpose(2, 0, 1) / 255
    batch = np.stack([one, one[:, :, ::-1], one[:, ::-1, :]]).copy()  # batch 3; traced with 1
    with torch.no_grad():
        expected = loaded.net(torch.from_numpy(batch)).numpy()
    assert expected.std() > 1e-3  # the random net's output is not flat
    for runner, name in [
        (run_onnx, "depth_net.onnx"),
        (run_torchscript, "depth_net.torchscript.pt"),
    ]:
        got = runner(exported / name, batch)
        assert got.shape == (3, 1, HEIGHT, WIDTH)
        assert np.abs(got - expected).max() < 1e-4, name
    extra = {"export.json": ""}
    torch.jit.load(str(exported / "depth_net.torchscript.pt"), _extra_files=extra)
    assert json.loads(extra["export.json"])["width"] == WIDTH
    diffs = verify_export(exported, loaded, kitti_left)
    assert max(diffs.values()) < 1e-4


def test_export_single_format_and_bad_opset(mono_weights, tmp_path, capsys):
    result = export_depth_net(mono_weights, tmp_path / "ts", formats=["torchscript"])
    assert list(result.files) == ["torchscript"]
    assert not (tmp_path / "ts" / "depth_net.onnx").exists()
    meta = json.loads((tmp_path / "ts" / "export.json").read_text())
    assert meta["use_stereo"] is False and meta["depth_scale"] == 1.0 and "onnx_opset" not in meta
    assert "scale unknown" in meta["metres"]
    with pytest.raises(ConfigError, match="opset 9"):
        export_depth_net(mono_weights, tmp_path / "x", opset=9)
    argv = ["export", "--load-weights-folder", str(tmp_path / "nowhere"), "--out", str(tmp_path)]
    assert main(argv) == 2
    assert "encoder.pth" in capsys.readouterr().err


# --------------------------------------------------------------------------- predict


def test_predict_cli_file_folder_and_glob_give_metric_depth(
    stereo_weights, kitti_left, tmp_path, capsys
):
    folder = tmp_path / "folder"
    folder.mkdir()
    synth = _synthetic(150, 100, seed=1)
    Image.fromarray(synth).save(folder / "synth.png")
    globbed = tmp_path / "globbed"
    globbed.mkdir()
    synth_jpg = _synthetic(90, 250, seed=2)
    Image.fromarray(synth_jpg).save(globbed / "cam.jpg")
    (globbed / "notes.txt").write_text("not matched by the glob")
    out = tmp_path / "out"
    argv = ["predict", "--load-weights-folder", str(stereo_weights), str(KITTI_LEFT)]
    argv += [str(folder), str(globbed / "*.jpg"), "--out", str(out), "--batch-size", "2"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "wrote 3 depth maps" in printed and UNIT_METRES in printed

    cam = np.asarray(Image.open(globbed / "cam.jpg"))  # JPEG-decoded pixels, as predict sees
    for stem, image in [("left", kitti_left), ("synth", synth), ("cam", cam)]:
        depth = np.load(out / f"{stem}_depth.npy")
        assert depth.dtype == np.float32 and depth.shape == image.shape[:2]
        assert Image.open(out / f"{stem}_depth.png").size == (image.shape[1], image.shape[0])
        expected = _reference_depth(stereo_weights, image, 5.4)
        np.testing.assert_allclose(depth, expected, rtol=1e-4)
    summary = json.loads((out / "predictions.json").read_text())
    assert summary["unit"] == UNIT_METRES and summary["use_stereo"] is True
    assert summary["written"] == 3 and summary["failed"] == 0

    # Re-running into the input folder does not take its own outputs as inputs.
    rerun = ["predict", "--load-weights-folder", str(stereo_weights), str(folder)]
    assert main([*rerun, "--out", str(folder), "--no-colormap"]) == 0
    assert "wrote 1 depth maps" in capsys.readouterr().out
    assert collect_images([folder]) == [(folder / "synth.png").absolute()]


def test_predict_depth_library_monocular_is_relative(
    mono_weights, stereo_weights, kitti_left, tmp_path, capsys
):
    mono = load_depth_net(mono_weights)
    images = [kitti_left, _synthetic(70, 300, seed=3), _synthetic(64, 192, seed=4)]
    depths = predict_depth(mono, images, batch_size=2, device="cpu")
    assert [d.shape for d in depths] == [i.shape[:2] for i in images]
    disps = predict_disparity(mono, images, batch_size=8)
    for depth, disp in zip(depths, disps, strict=True):
        np.testing.assert_allclose(depth, 1.0 / disp, rtol=1e-6)
    np.testing.assert_allclose(
        depths[0], _reference_depth(mono_weights, kitti_left, 1.0), rtol=1e-4
    )
    stereo = predict_depth(load_depth_net(stereo_weights), images[:1], batch_size=1)
    np.testing.assert_allclose(stereo[0], 5.4 * depths[0], rtol=1e-5)  # same weights, ×5.4

    argv = ["predict", "--load-weights-folder", str(mono_weights), str(KITTI_LEFT)]
    assert main([*argv, "--out", str(tmp_path), "--device", "cpu"]) == 0
    assert UNIT_RELATIVE in capsys.readouterr().out
    summary = json.loads((tmp_path / "predictions.json").read_text())
    assert summary["unit"] == UNIT_RELATIVE and summary["use_stereo"] is False


def test_name_clashes_are_renamed_not_overwritten(stereo_weights, tmp_path, capsys):
    sizes = {"a": (40, 60), "b": (50, 70), "c": (30, 90)}
    for name, size in sizes.items():
        (tmp_path / name).mkdir()
        Image.fromarray(_synthetic(*size, seed=len(name))).save(tmp_path / name / "x.png")
    Image.fromarray(_synthetic(20, 20, seed=9)).save(tmp_path / "c" / "x_2.png")
    paths = collect_images([tmp_path / n for n in "abc"])
    assert output_stems(paths) == ["x", "x_3", "x_4", "x_2"]  # x_2 keeps its own name

    out = tmp_path / "out"
    argv = ["predict", "--load-weights-folder", str(stereo_weights)]
    assert main([*argv, *(str(tmp_path / n) for n in "abc"), "--out", str(out)]) == 0
    assert "name clash" in capsys.readouterr().err
    shapes = {p.name: np.load(p).shape for p in out.glob("*.npy")}
    assert shapes == {
        "x_depth.npy": (40, 60),
        "x_3_depth.npy": (50, 70),
        "x_4_depth.npy": (30, 90),
        "x_2_depth.npy": (20, 20),
    }
    renamed = json.loads((out / "predictions.json").read_text())["renamed"]
    assert [r["stem"] for r in renamed] == ["x_3", "x_4"]


def test_unreadable_image_is_reported_and_others_written(stereo_weights, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("good1.png", "good2.jpg"):
        Image.fromarray(_synthetic(48, 80, seed=5)).save(folder / name)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    out = tmp_path / "out"
    argv = ["predict", "--load-weights-folder", str(stereo_weights), str(folder), "--out", str(out)]
    assert main([*argv, "--batch-size", "1"]) == 1
    captured = capsys.readouterr()
    assert "wrote 2 depth maps" in captured.out
    assert "broken.png" in captured.err and "1 image(s) failed" in captured.err
    assert (out / "good1_depth.npy").is_file() and (out / "good2_depth.npy").is_file()
    assert not (out / "broken_depth.npy").exists()
    failures = json.loads((out / "predictions.json").read_text())["failures"]
    assert len(failures) == 1 and failures[0]["input"].endswith("broken.png")


def test_no_match_names_the_input_and_the_fix(stereo_weights, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "image.bmp").write_bytes(b"")
    with pytest.raises(MissingDataError, match="--ext"):
        collect_images([empty])
    argv = ["predict", "--load-weights-folder", str(stereo_weights), "--out", str(tmp_path / "o")]
    assert main([*argv, str(empty), str(tmp_path / "*.webp"), str(tmp_path / "missing.png")]) == 2
    err = capsys.readouterr().err
    assert f"{empty} (folder)" in err and "*.webp (glob)" in err and "missing.png (path)" in err
    assert "--ext" in err
    assert not (tmp_path / "o").exists()  # fails before loading the model or writing anything
