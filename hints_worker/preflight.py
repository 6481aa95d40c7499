"""Checks before a hint run starts Ray: the data, the split and the store.

A run pointed at the wrong data root would otherwise start a cluster, try every image and report
each as a failure. Here, before anything starts: the images the split needs are listed (one
directory listing per folder, nothing decoded); when most are missing the run stops with one
message that counts them, shows a few and names the likely fix; the store at the output folder
must hold hints of the same settings (the differing ones are named) and carry its manifest.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from depthhints.data.hint_store import (
    MANIFEST,
    HintKey,
    StoreManifest,
    StoreMismatchError,
    hint_key,
    open_store,
)
from depthhints.data.kitti import KittiRawLayout, SplitItem
from depthhints.errors import ConfigError, MissingDataError

MOSTLY_MISSING = 0.5
"""Share of missing images above which a run is refused rather than recorded item by item."""
SHOWN = 3


@dataclass(frozen=True)
class Preflight:
    """What a run will do: ``todo`` items lack a hint (``done`` are stored); ``missing`` images
    are absent."""

    todo: list[SplitItem]
    done: set[HintKey]
    missing: list[Path]
    requested: int


def missing_images(layout: KittiRawLayout, items: Sequence[SplitItem]) -> tuple[list[Path], int]:
    """The images (both sides of every item's frame) that do not exist, and how many there are."""
    needed = dict.fromkeys(
        layout.image_path(item.folder, item.frame, side) for item in items for side in "lr"
    )
    listings: dict[Path, frozenset[str]] = {}
    missing = []
    for path in needed:
        if path.parent not in listings:
            try:
                listings[path.parent] = frozenset(os.listdir(path.parent))
            except OSError:
                listings[path.parent] = frozenset()
        if path.name not in listings[path.parent]:
            missing.append(path)
    return missing, len(needed)


def _likely_fix(layout: KittiRawLayout, items: Sequence[SplitItem]) -> str:
    """What the user most probably got wrong: the data root or the split."""
    drives = {item.folder for item in items}
    present = [d for d in sorted(drives) if (layout.root / d).is_dir()]
    found = sorted(p.relative_to(layout.root).as_posix() for p in layout.root.glob("*/*_sync"))
    if not found:
        return (
            f"{layout.root} holds no <date>/<drive>_sync folders: is --data-path the KITTI raw "
            "root (the folder with the date folders)?"
        )
    if not present:
        shown = ", ".join(found[:SHOWN]) + (", ..." if len(found) > SHOWN else "")
        return (
            f"none of the split's {len(drives)} drives is under {layout.root}, which holds "
            f"{len(found)} other drive(s) ({shown}): is --split the list for this data?"
        )
    return (
        f"{len(present)} of the split's {len(drives)} drives are there but their frames are "
        "not: extract the missing image_02/image_03 folders, or pick the split of this data"
    )


def check_store(store_root: Path, manifest: StoreManifest) -> None:
    """Refuse a store of other settings (naming them), or one holding files but no manifest."""
    path = store_root / MANIFEST
    if path.is_file():
        stored = StoreManifest.read(path)
        differences = _differences(stored, manifest)
        if differences:
            raise StoreMismatchError(
                f"{store_root} holds hints of other settings ({'; '.join(differences)}: stored "
                "vs requested); choose another --out for these settings, or delete the store "
                "to recompute it"
            )
        return
    if store_root.is_dir() and any(store_root.iterdir()):
        raise StoreMismatchError(
            f"{store_root} holds files but no {MANIFEST}, so what made them is unknown (another "
            "tool, or hints of other settings); choose an empty --out, or move those files away"
        )


def _differences(stored: StoreManifest, requested: StoreManifest) -> list[str]:
    found = []
    if stored.format != requested.format:
        found.append(f"format {stored.format} vs {requested.format}")
    if stored.precision != requested.precision:
        found.append(f"precision {stored.precision} vs {requested.precision}")
    if (stored.height, stored.width) != (requested.height, requested.width):
        found.append(
            f"resolution {stored.width}x{stored.height} vs {requested.width}x{requested.height}"
        )
    for name in sorted(set(stored.config) | set(requested.config)):
        ours, theirs = stored.config.get(name), requested.config.get(name)
        if ours != theirs and name != "candidates":  # the candidates follow the matchers
            found.append(f"{name} {ours} vs {theirs}")
    if not found and stored.config_hash != requested.config_hash:
        found.append("matcher candidates differ")
    return found


def preflight(
    items: Sequence[SplitItem],
    layout: KittiRawLayout,
    store_root: Path,
    manifest: StoreManifest,
) -> Preflight:
    """What a run over ``items`` has to do, or an error saying why it should not start."""
    if not items:
        raise ConfigError("the split lists no items; check --split")
    check_store(store_root, manifest)
    done = open_store(store_root).keys() if (store_root / MANIFEST).is_file() else set()
    todo = [item for item in items if hint_key(item) not in done]
    missing, needed = missing_images(layout, todo)
    if needed and len(missing) > MOSTLY_MISSING * needed:
        shown = "\n  ".join(str(p) for p in missing[:SHOWN])
        raise MissingDataError(
            f"{len(missing)} of the {needed} images the split needs are missing, e.g.\n  {shown}\n"
            f"{_likely_fix(layout, todo)}"
        )
    return Preflight(todo=todo, done=done, missing=missing, requested=len(items))
