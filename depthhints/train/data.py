"""Training inputs from a TrainConfig: split lists, datasets, and reproducible batch orders.

The batch order of an epoch is a pure function of (seed, epoch), and the dataset draws its
augmentation from (seed, epoch, index), so a run resumed at any step sees exactly the batches an
uninterrupted run would, with any number of loader workers.
"""

from __future__ import annotations

import signal
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from depthhints.config import TrainConfig
from depthhints.data.cache import CachedDataset, CacheSpec, TrainingCache, open_cache
from depthhints.data.dataset import MonoDataset
from depthhints.data.hint_store import HintStore, open_store
from depthhints.data.kitti import KittiRawLayout, SplitItem, read_split_file, split_lists
from depthhints.errors import ConfigError, MissingDataError
from depthhints.train.step import batch_to_device

MISSING_SHOWN = 5
NUM_SCALES = 4


def split_paths(config: TrainConfig) -> dict[str, Path]:
    """The train/val split files of ``config.split`` (see :func:`split_lists`)."""
    return split_lists(config.split, ("train", "val"))


def open_hint_store(config: TrainConfig) -> HintStore | None:
    """The hint store when ``use_depth_hints``; a missing store names the command to make it."""
    if not config.use_depth_hints:
        return None
    path = config.hint_path
    if not path.is_dir():
        raise MissingDataError(
            f"use_depth_hints is set but there is no hint store at {path}; compute it with "
            f"`depthhints hints --data-path {config.data_path} --out {path}` or set depth_hint_path"
        )
    return open_store(path)


def build_dataset(
    config: TrainConfig, items: Sequence[SplitItem], is_train: bool, store: HintStore | None
) -> MonoDataset:
    dataset = MonoDataset(
        KittiRawLayout(config.data_path),
        items,
        config.height,
        config.width,
        frame_ids=config.all_frame_ids,
        num_scales=NUM_SCALES,
        is_train=is_train,
        hint_store=store,
        load_gt=config.load_gt,
        seed=config.seed,
    )
    missing = dataset.missing_files()
    if missing:
        shown = "\n  ".join(str(p) for p in missing[:MISSING_SHOWN])
        more = f"\n  ... and {len(missing) - MISSING_SHOWN} more" if len(missing) > 5 else ""
        raise MissingDataError(
            f"{len(missing)} input file(s) for the {'train' if is_train else 'val'} split are "
            f"missing under {config.data_path}:\n  {shown}{more}\nCheck data_path and split "
            "(temporal frame_ids need both neighbours of every listed frame)."
        )
    return dataset


def build_datasets(config: TrainConfig) -> tuple[MonoDataset, MonoDataset]:
    """Train (augmented) and val datasets of the configured split, checked for missing files;
    with ``loader='cache'``, read from the training cache (built first if needed)."""
    paths = split_paths(config)
    store = open_hint_store(config)
    train = build_dataset(config, read_split_file(paths["train"]), True, store)
    val = build_dataset(config, read_split_file(paths["val"]), False, store)
    if len(train) < config.batch_size:
        raise ConfigError(
            f"batch_size={config.batch_size} exceeds the {len(train)} training samples of "
            f"{paths['train']}; lower batch_size"
        )
    if config.loader == "cache":
        cache = open_training_cache(config, [*train.items, *val.items], store)
        return CachedDataset(cache, train), CachedDataset(cache, val)
    return train, val


def open_training_cache(
    config: TrainConfig, items: Sequence[SplitItem], store: HintStore | None
) -> TrainingCache:
    """The training cache of ``items`` at the configured resolution under ``cache_path``."""
    spec = CacheSpec(
        data_root=str(Path(config.data_path).resolve()),
        items=tuple(item.line() for item in items),
        frame_ids=tuple(config.all_frame_ids),
        height=config.height,
        width=config.width,
        num_scales=NUM_SCALES,
        hints=_store_identity(store),
    )
    layout = KittiRawLayout(config.data_path)
    return open_cache(spec, layout, items, store, config.cache_path, config.num_workers)


def _store_identity(store: HintStore | None) -> str | None:
    if store is None:
        return None
    manifest = store.manifest.to_json() if store.manifest else "no manifest"
    return f"{store.root.resolve()}: {manifest}"


def device_batch(dataset: MonoDataset, batch: dict, device: torch.device) -> dict:
    """A collated batch of ``dataset`` ready for the model on ``device``."""
    if isinstance(dataset, CachedDataset):
        return dataset.finish(batch, device)
    return batch_to_device(batch, device)


def epoch_order(
    size: int, seed: int, epoch: int, shuffle: bool = True, rank: int = 0, world_size: int = 1
) -> list[int]:
    """Sample indices of one epoch for one rank: a permutation seeded by (seed, epoch).

    Ranks take interleaved slices of the same permutation, truncated to equal length (as
    ``drop_last`` would), so every rank runs the same number of steps.
    """
    if shuffle:
        generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
        order = torch.randperm(size, generator=generator).tolist()
    else:
        order = list(range(size))
    per_rank = size // world_size
    return order[rank::world_size][:per_rank]


def steps_per_epoch(size: int, batch_size: int, world_size: int = 1) -> int:
    return (size // world_size) // batch_size


def make_loader(
    dataset: MonoDataset,
    order: Sequence[int],
    batch_size: int,
    num_workers: int,
    skip_batches: int = 0,
    pin_memory: bool = False,
) -> DataLoader:
    """Batches of ``order`` (full batches only), starting after ``skip_batches`` batches.

    The loader gets its own generator: creating an iterator draws a base seed from it, and
    drawing from the global RNG instead would make a resumed run diverge from an uninterrupted
    one (whose iterator was made before the checkpoint).
    """
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=list(order[skip_batches * batch_size :]),
        num_workers=num_workers,
        pin_memory=pin_memory,
        drop_last=True,
        persistent_workers=False,
        generator=torch.Generator().manual_seed(len(order) * 7919 + skip_batches),
        worker_init_fn=_ignore_stop_signals,
    )


def _ignore_stop_signals(worker_id: int) -> None:
    """A loader worker leaves Ctrl-C and SIGTERM to the training process, which stops after
    the step in progress; a signal sent to the whole process group would kill it mid-batch."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
