"""MonoDataset: keys and shapes, intrinsics, stereo_T, cascaded resize, flip alignment of images
and hints, reproducible augmentation, shared colour jitter, LiDAR GT and error messages."""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torch.utils.data import DataLoader

from depthhints.data import synthetic as syn
from depthhints.data.dataset import Augmentation, ColorJitterParams, MonoDataset
from depthhints.data.hint_store import NpyHintStore, StoreManifest, hint_key
from depthhints.data.kitti import KittiRawLayout, SplitItem, load_image, read_split_file
from depthhints.errors import ConfigError, MissingDataError

H, W = 64, 128  # network input; 4 scales -> 16x8 at the smallest
NATIVE_H, NATIVE_W = 128, 416
HINT_H, HINT_W = 32, 64  # store resolution: nearest resize to 64x128 is an exact 2x repeat
ALL_FRAMES = (0, -1, 1, "s")


def _hint_for(key: tuple[str, int, str]) -> np.ndarray:
    """A distinctive, left-right asymmetric hint: a ramp plus a key-dependent offset, 0 on the
    left eighth (like SGBM's invalid border) and in one off-centre block."""
    _, frame, side = key
    rows, cols = np.mgrid[0:HINT_H, 0:HINT_W].astype(np.float32)
    hint = 1.0 + cols + 0.01 * rows + 100.0 * frame + (50.0 if side == "r" else 0.0)
    hint[:, : HINT_W // 8] = 0.0
    hint[4:9, 40:47] = 0.0
    return hint


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("kitti")
    config = syn.DatasetConfig(frames_per_drive=6, width=NATIVE_W, height=NATIVE_H, seed=5)
    splits = syn.generate_dataset(root, config)
    train = read_split_file(splits["train"])  # frames 1..3, both sides: all have neighbours
    store = NpyHintStore(
        tmp_path_factory.mktemp("hints"),
        StoreManifest(format="npy", height=HINT_H, width=HINT_W, config={"test": True}),
    )
    for item in train:
        store.write(hint_key(item), _hint_for(hint_key(item)))
    return KittiRawLayout(root), train, store


def _dataset(tree, **kwargs) -> MonoDataset:
    layout, items, store = tree
    options = {"frame_ids": ALL_FRAMES, "hint_store": store, **kwargs}
    return MonoDataset(layout, options.pop("items", items), H, W, **options)


def _pil(color: torch.Tensor) -> Image.Image:
    """Back to the uint8 PIL image a colour tensor was made from (exact: values are k/255)."""
    return Image.fromarray((color * 255).round().byte().permute(1, 2, 0).numpy())


def _lanczos(image: Image.Image, size: tuple[int, int]) -> torch.Tensor:
    return TF.to_tensor(image.resize(size, Image.Resampling.LANCZOS))


def _native(layout: KittiRawLayout, item: SplitItem, frame_id) -> Image.Image:
    side = item.other_side if frame_id == "s" else item.side
    frame = item.frame if frame_id == "s" else item.frame + frame_id
    return Image.fromarray(load_image(layout.image_path(item.folder, frame, side)))


def _jitter_by_hand(image: Image.Image, params: ColorJitterParams) -> torch.Tensor:
    steps = {
        0: lambda im: TF.adjust_brightness(im, params.brightness),
        1: lambda im: TF.adjust_contrast(im, params.contrast),
        2: lambda im: TF.adjust_saturation(im, params.saturation),
        3: lambda im: TF.adjust_hue(im, params.hue),
    }
    for step in params.order:
        image = steps[step](image)
    return TF.to_tensor(image)


def _assert_same_sample(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], torch.Tensor):
            assert torch.equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key


# ------------------------------------------------------------------------ keys and geometry


def test_keys_shapes_and_ranges(tree):
    dataset = _dataset(tree)
    assert len(dataset) == len(tree[1]) == 6
    sample = dataset[1]
    expected = {"index", "stereo_T", "depth_hint", "depth_hint_mask"}
    for f in ALL_FRAMES:
        for s in range(4):
            expected |= {("color", f, s), ("color_aug", f, s)}
    expected |= {(name, s) for name in ("K", "inv_K") for s in range(4)}
    assert set(sample) == expected and sample["index"] == 1
    for f in ALL_FRAMES:
        for s in range(4):
            color = sample[("color", f, s)]
            assert color.shape == (3, H >> s, W >> s) and color.dtype == torch.float32
            assert color.min() >= 0.0 and color.max() <= 1.0 and color.max() > 0.2
            assert torch.equal(sample[("color_aug", f, s)], color)  # no augmentation in eval
    for key in ("depth_hint", "depth_hint_mask"):
        assert sample[key].shape == (1, H, W) and sample[key].dtype == torch.float32
    assert sample["stereo_T"].shape == (4, 4) and sample["stereo_T"].dtype == torch.float32
    assert "stereo_T" not in _dataset(tree, frame_ids=(0, -1, 1))[0]


def test_batches_collate(tree):
    batch = next(iter(DataLoader(_dataset(tree, is_train=True), batch_size=3)))
    assert batch[("color_aug", "s", 3)].shape == (3, 3, H // 8, W // 8)
    assert batch[("K", 0)].shape == (3, 4, 4) and batch["index"].tolist() == [0, 1, 2]


def test_intrinsics_per_scale(tree):
    sample = _dataset(tree, frame_ids=(0,))[0]
    for s in range(4):
        K, inv_K = sample[("K", s)], sample[("inv_K", s)]
        assert K.dtype == inv_K.dtype == torch.float32 and K.shape == (4, 4)
        w, h = W // 2**s, H // 2**s
        assert K[0, 0].item() == pytest.approx(0.58 * w)
        assert K[1, 1].item() == pytest.approx(1.92 * h)
        assert K[0, 2].item() == pytest.approx(0.5 * w) and K[1, 2].item() == pytest.approx(0.5 * h)
        assert K[2, 2] == 1 and K[3, 3] == 1 and K[0, 1] == 0 and K[2, :2].abs().sum() == 0
        torch.testing.assert_close(inv_K @ K, torch.eye(4), atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("side", "flip", "tx"),
    [("l", False, -0.1), ("r", False, 0.1), ("l", True, 0.1), ("r", True, -0.1)],
)
def test_stereo_T_sign(tree, side, flip, tx):
    dataset = _dataset(tree, frame_ids=(0, "s"), hint_store=None)
    index = next(i for i, item in enumerate(dataset.items) if item.side == side)
    T = dataset.load(index, Augmentation(flip=flip))["stereo_T"]
    expected = torch.eye(4)
    expected[0, 3] = tx
    torch.testing.assert_close(T, expected)


def test_scales_are_cascaded_lanczos(tree):
    dataset = _dataset(tree, frame_ids=(0, "s"), hint_store=None)
    sample = dataset[3]
    item = dataset.items[3]
    for f in (0, "s"):
        native = _native(dataset.layout, item, f)
        assert torch.equal(sample[("color", f, 0)], _lanczos(native, (W, H)))
        for s in range(1, 4):
            previous = _pil(sample[("color", f, s - 1)])
            assert torch.equal(sample[("color", f, s)], _lanczos(previous, (W >> s, H >> s)))
        # ... which is not what resizing the native image straight to scale 3 gives.
        assert not torch.equal(sample[("color", f, 3)], _lanczos(native, (W // 8, H // 8)))


# ------------------------------------------------------------------------ flip


def test_flip_keeps_images_and_hints_aligned(tree):
    dataset = _dataset(tree, is_train=True)
    index = 4
    item = dataset.items[index]
    plain = dataset.load(index, Augmentation(flip=False))
    flipped = dataset.load(index, Augmentation(flip=True))

    hint = _hint_for(hint_key(item))
    np.testing.assert_array_equal(plain["depth_hint"][0].numpy(), hint.repeat(2, 0).repeat(2, 1))
    np.testing.assert_array_equal(
        flipped["depth_hint"][0].numpy(), np.fliplr(plain["depth_hint"][0].numpy())
    )
    assert torch.equal(flipped["depth_hint_mask"], flipped["depth_hint"].gt(0).float())
    assert flipped["depth_hint_mask"][0, :, -W // 8 :].sum() == 0  # invalid border moved right

    for f in ALL_FRAMES:  # every frame, the stereo partner too, is flipped before resizing
        native = _native(dataset.layout, item, f).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        assert torch.equal(flipped[("color", f, 0)], _lanczos(native, (W, H)))
        # Lanczos is mirror-symmetric up to rounding: flipped ~ mirror of the unflipped image.
        for s in range(4):
            mirror = plain[("color", f, s)].flip(-1)
            assert (flipped[("color", f, s)] - mirror).abs().max() <= 2.5 / 255


def test_hint_resize_to_another_resolution_and_mask(tree):
    layout, items, store = tree
    dataset = MonoDataset(layout, items, 32, 32, frame_ids=(0,), num_scales=1, hint_store=store)
    for index in (0, 5):
        sample = dataset.load(index, Augmentation(flip=index == 5))
        hint = _hint_for(hint_key(items[index]))
        if index == 5:
            hint = np.fliplr(hint)
        expected = hint[:, ::2]  # cv2 nearest: 32x64 -> 32x32 takes source columns 0, 2, 4, ...
        np.testing.assert_array_equal(sample["depth_hint"][0].numpy(), expected)
        np.testing.assert_array_equal(sample["depth_hint_mask"][0].numpy(), expected > 0)
        assert 0 < sample["depth_hint_mask"].mean() < 1


def test_lidar_ground_truth(tree):
    dataset = _dataset(tree, frame_ids=(0,), hint_store=None, load_gt=True)
    plain = dataset.load(2, Augmentation(flip=False))["depth_gt"]
    flipped = dataset.load(2, Augmentation(flip=True))["depth_gt"]
    assert plain.shape == (1, 375, 1242) and plain.dtype == torch.float32
    assert (plain > 0).sum() > 100 and plain.min() >= 0
    assert torch.equal(flipped, plain.flip(-1))
    assert "depth_gt" not in _dataset(tree, frame_ids=(0,))[2]


# ------------------------------------------------------------------------ randomness


def test_augmentation_draws(tree):
    dataset = _dataset(tree, is_train=True)
    assert _dataset(tree).augmentation(0) == Augmentation()  # never in eval
    draws = []
    for epoch in range(60):
        dataset.set_epoch(epoch)
        draws += [dataset.augmentation(i) for i in range(len(dataset))]
    combos = {(a.flip, a.color is not None) for a in draws}
    assert combos == {(False, False), (False, True), (True, False), (True, True)}
    assert 0.4 < np.mean([a.flip for a in draws]) < 0.6
    assert 0.4 < np.mean([a.color is not None for a in draws]) < 0.6
    params = [a.color for a in draws if a.color is not None]
    for name in ("brightness", "contrast", "saturation"):
        values = [getattr(p, name) for p in params]
        assert 0.8 <= min(values) < 0.85 and 1.15 < max(values) <= 1.2
    hues = [p.hue for p in params]
    assert -0.1 <= min(hues) < -0.08 and 0.08 < max(hues) <= 0.1
    assert len({p.order for p in params}) > 10 and all(
        sorted(p.order) == [0, 1, 2, 3] for p in params
    )


def test_same_seed_epoch_index_gives_identical_samples(tree):
    first, second = _dataset(tree, is_train=True, seed=3), _dataset(tree, is_train=True, seed=3)
    first.set_epoch(2)
    second.set_epoch(2)
    for index in (0, 5):
        _assert_same_sample(first[index], second[index])
    augs = [first.augmentation(i) for i in range(len(first))]
    first.set_epoch(3)
    assert [first.augmentation(i) for i in range(len(first))] != augs
    other_seed = _dataset(tree, is_train=True, seed=4)
    other_seed.set_epoch(2)
    assert [other_seed.augmentation(i) for i in range(len(first))] != augs


def test_samples_do_not_depend_on_loader_workers(tree):
    dataset = _dataset(tree, is_train=True, frame_ids=(0, "s"), seed=9)
    dataset.set_epoch(1)
    in_process = [dataset[i] for i in (2, 4)]
    loader = DataLoader(dataset, batch_size=None, sampler=[2, 4], num_workers=1)
    for expected, got in zip(in_process, loader, strict=True):
        _assert_same_sample(expected, got)


def test_getitem_applies_the_drawn_augmentation(tree):
    dataset = _dataset(tree, is_train=True)
    found = set()
    for epoch in range(12):
        dataset.set_epoch(epoch)
        aug = dataset.augmentation(epoch % len(dataset))
        key = (aug.flip, aug.color is not None)
        if key in found:
            continue
        found.add(key)
        _assert_same_sample(dataset[epoch % len(dataset)], dataset.load(epoch % len(dataset), aug))
    assert (True, True) in found and len(found) >= 3


def test_colour_jitter_is_shared_by_frames_and_scales(tree):
    dataset = _dataset(tree, is_train=True)
    params = ColorJitterParams(
        order=(3, 1, 0, 2), brightness=1.15, contrast=0.85, saturation=1.2, hue=0.07
    )
    sample = dataset.load(1, Augmentation(flip=True, color=params))
    for f in ALL_FRAMES:
        for s in range(4):
            color = sample[("color", f, s)]
            expected = _jitter_by_hand(_pil(color), params)
            assert torch.equal(sample[("color_aug", f, s)], expected), (f, s)
            assert not torch.equal(sample[("color_aug", f, s)], color)
    # The order matters, so the test above really pins it.
    other = replace(params, order=(0, 1, 2, 3))
    assert not torch.equal(
        _jitter_by_hand(_pil(sample[("color", 0, 0)]), other), sample[("color_aug", 0, 0)]
    )
    # Colour aug never touches the un-jittered colour.
    plain = dataset.load(1, Augmentation(flip=True))
    for key in plain:
        if key[0] == "color":
            assert torch.equal(plain[key], sample[key])


# ------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"height": 100}, "height=100 must be a positive multiple of 32"),
        ({"width": 650}, "width=650"),
        ({"frame_ids": (-1, 0, 1)}, "must start with 0"),
        ({"frame_ids": (0, "x")}, "'x' is not a frame id"),
        ({"frame_ids": (0, 1, 1)}, "twice"),
        ({"items": []}, "no split items"),
        ({"items": [SplitItem("9", 3, "l", "odom")]}, "'odom' item"),
    ],
)
def test_bad_configuration(tree, kwargs, match):
    layout, items, _ = tree
    args = {"layout": layout, "items": items, "height": H, "width": W, **kwargs}
    with pytest.raises(ConfigError, match=match):
        MonoDataset(**args)


def test_missing_neighbour_and_missing_hint_are_named(tree):
    layout, items, store = tree
    last = SplitItem(items[0].folder, 5, "l")  # the drive's last frame: no +1 neighbour
    dataset = MonoDataset(layout, [last], H, W, frame_ids=(0, -1, 1))
    with pytest.raises(MissingDataError, match=r"0000000006\.png.*frame_ids 0 s") as error:
        dataset[0]
    assert "temporal neighbour +1" in str(error.value)
    assert dataset.missing_files() == [layout.image_path(last.folder, 6, "l")]

    no_hint = MonoDataset(layout, [last], H, W, frame_ids=(0,), hint_store=store)
    with pytest.raises(MissingDataError, match=r"no depth hint for .*5, 'l'\).*depthhints hints"):
        no_hint[0]
    assert no_hint.missing_files() == [store.path(hint_key(last))]
    assert _dataset(tree).missing_files() == []


def test_missing_files_lists_absent_images_only(tree, tmp_path):
    layout, items, _ = tree
    root = tmp_path / "copy"
    shutil.copytree(
        layout.root,
        root,
        ignore=shutil.ignore_patterns("velodyne_points", "proj_depth", "semantic"),
    )
    copy = KittiRawLayout(root)
    folder = items[0].folder
    gone = copy.image_path(folder, 2, "r")
    gone.unlink()
    broken = copy.image_path(folder, 3, "l")
    broken.write_bytes(broken.read_bytes()[:200])

    all_frames = MonoDataset(copy, items, H, W, frame_ids=ALL_FRAMES)
    assert all_frames.missing_files() == [gone]  # corrupt files exist; only decoding finds them
    assert all_frames.missing_files(limit=1) == [gone]
    # What reading them raises is in test_bad_inputs.py.
