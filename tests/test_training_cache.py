"""The training cache (loader='cache'): the batches it finishes on the device are the reference
loader's, bit for bit except the jittered network input, which has the same draws."""

import multiprocessing
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image
from torch.utils.data import default_collate

from depthhints.config import TrainConfig
from depthhints.data.cache import nearest_indices
from depthhints.data.jitter import jitter_batch
from depthhints.errors import DataFileError
from depthhints.train.data import build_datasets, device_batch
from depthhints.train.loop import fit
from depthhints.train.reporting import TrackingOptions
from tests.helpers import tiny_config

KITTI_LEFT = Path(__file__).parent / "fixtures" / "kitti_object_stereo" / "left.png"
CPU = torch.device("cpu")


def _config(tree, tmp_path, **changes) -> TrainConfig:
    """Stereo + hints on the session's drive (``tiny_config``), on the CPU."""
    hints = dict(depth_hint_path=str(tree["hints"]), use_depth_hints=True, device="cpu")
    return tiny_config(tree, tmp_path, **{**hints, **changes})


def _batches(dataset, epoch: int) -> dict:
    dataset.set_epoch(epoch)
    return default_collate([dataset[i] for i in range(len(dataset))])


@pytest.mark.parametrize("frame_ids", [[0], [0, -1, 1]])
def test_cached_batches_equal_the_reference_loader(tree, tmp_path, frame_ids):
    reference, _ = build_datasets(_config(tree, tmp_path, frame_ids=frame_ids))
    cached, _ = build_datasets(_config(tree, tmp_path, frame_ids=frame_ids, loader="cache"))
    flips = set()
    for epoch in range(4):
        expected = device_batch(reference, _batches(reference, epoch), CPU)
        got = device_batch(cached, _batches(cached, epoch), CPU)
        flips |= {reference.augmentation(i).flip for i in range(len(reference))}
        # the networks see scale 0 of the temporal frames only: nothing else is jittered
        unused = {k for k in expected if k[0] == "color_aug" and (k[2] > 0 or k[1] == "s")}
        assert set(got) == set(expected) - unused
        for key, value in got.items():
            if key[0] != "color_aug":
                assert torch.equal(value, expected[key]), key
                continue
            difference = (value - expected[key]).abs()
            for i in range(len(cached)):
                if cached.augmentation(i).color is None:
                    assert torch.equal(value[i], expected[key][i]), key
                else:  # float arithmetic instead of PIL's uint8 steps
                    assert 0 < difference[i].mean() < 2 / 255, key
    assert flips == {False, True}


def test_flip_commutes_with_lanczos_on_a_real_image():
    """Why a cache of unflipped pyramids reproduces the flipped reference images."""
    image = Image.open(KITTI_LEFT).convert("RGB")
    mirrored = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    for size in [(640, 192), (1024, 320), (320, 96)]:
        a = np.asarray(mirrored.resize(size, Image.Resampling.LANCZOS))
        b = np.asarray(image.resize(size, Image.Resampling.LANCZOS))[:, ::-1]
        assert np.array_equal(a, b), size


def test_nearest_indices_are_opencvs():
    import cv2

    source = np.random.default_rng(0).random((320, 1024), dtype=np.float32)
    for width, height in [(640, 192), (1024, 320), (192, 64), (1280, 384)]:
        resized = cv2.resize(source, (width, height), interpolation=cv2.INTER_NEAREST)
        rows, columns = nearest_indices(320, height), nearest_indices(1024, width)
        assert np.array_equal(source[rows][:, columns], resized)


def test_jitter_batch_applies_each_samples_draw_as_torchvision():
    torch.manual_seed(0)
    images = torch.rand(5, 3, 16, 24)
    enabled = torch.tensor([True, True, False, True, True])
    order = torch.stack([torch.randperm(4) for _ in range(5)])
    factors = torch.tensor(
        [[0.8, 1.2, 0.9, 0.05], [1.1, 0.85, 1.15, -0.1], [1.2, 1.2, 1.2, 0.1]] * 2
    )[:5]
    got = jitter_batch(images, enabled, order, factors)
    operations = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue)
    for i in range(5):
        expected = images[i]
        for operation in order[i].tolist() if enabled[i] else []:
            expected = operations[operation](expected, factors[i, operation].item())
        torch.testing.assert_close(got[i], expected, atol=2e-6, rtol=0)
    assert torch.equal(got[2], images[2])


def test_cache_is_built_once_and_per_resolution(tree, tmp_path):
    config = _config(tree, tmp_path, loader="cache")
    first, _ = build_datasets(config)
    folder = first.cache.folder
    stamp = (folder / "images_0.npy").stat().st_mtime_ns
    again, _ = build_datasets(config)
    assert again.cache.folder == folder
    assert (folder / "images_0.npy").stat().st_mtime_ns == stamp
    other, _ = build_datasets(config.replace(height=96, width=320))
    assert other.cache.folder != folder
    assert _caches(config) == sorted([folder.name, other.cache.folder.name])


def _caches(config: TrainConfig) -> list[str]:
    """The cache folders (not the lock files) under the cache path."""
    return sorted(p.name for p in config.cache_path.iterdir() if not p.name.endswith(".lock"))


def _build_in_a_process(config: TrainConfig, results) -> None:
    train, _ = build_datasets(config)
    results.put(str(train.cache.folder))


@pytest.mark.slow
def test_processes_needing_the_same_cache_build_it_once(tree, tmp_path):
    config = _config(tree, tmp_path, loader="cache")
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [context.Process(target=_build_in_a_process, args=(config, results)) for _ in "ab"]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    folders = {results.get(timeout=10) for _ in workers}
    assert len(folders) == 1 and _caches(config) == [Path(folders.pop()).name]


def test_a_failed_build_leaves_no_cache(tree, tmp_path):
    hints = tmp_path / "hints"
    for path in sorted(Path(tree["hints"]).rglob("*")):
        target = hints / path.relative_to(tree["hints"])
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:  # frame 3's hints are corrupt: found while the cache is built
            corrupt = "0000000003" in path.name
            target.write_bytes(b"not a hint" if corrupt else path.read_bytes())
    config = _config(tree, tmp_path, loader="cache", depth_hint_path=str(hints))
    with pytest.raises(DataFileError, match="0000000003"):
        build_datasets(config)
    assert _caches(config) == []


@pytest.mark.slow
def test_training_on_the_cache(tree, tmp_path):
    config = _config(tree, tmp_path, loader="cache", num_epochs=2, num_workers=1)
    result = fit(config, progress=False, tracking=TrackingOptions(enabled=False))
    assert len(result.history) == 4
    assert all(np.isfinite(h["loss"]) for h in result.history)
    assert result.weights and (result.weights[-1] / "encoder.pth").is_file()


def test_cache_refuses_lidar_ground_truth(tree, tmp_path):
    with pytest.raises(Exception, match="load_gt needs loader: reference"):
        _config(tree, tmp_path, loader="cache", load_gt=True)
