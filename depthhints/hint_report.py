"""Reports on hint computations: what a run wrote (:func:`print_summary`), and the quality and
cost of hint stores, one row per store, logged to MLflow on request.

Quality is coverage, abs rel and δ<1.25 against dense GT or projected LiDAR
(:func:`depthhints.hints.quality.evaluate_store`); cost is the store's ``timing.json`` (seconds
per image on one core). ``depthhints hints-quality`` prints them (:func:`print_quality`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from depthhints.data.kitti import KittiRawLayout
    from hints_worker.actors import Summary

HEADER = (
    f"{'store':40s} {'matchers':>8s} {'fusion':>7s} {'images':>6s} "
    f"{'coverage':>8s} {'abs rel':>8s} {'d<1.25':>7s} {'s/img/core':>10s}"
)


def hint_quality(
    root: str | Path,
    layout: KittiRawLayout,
    limit: int | None = None,
    tracking_uri: str | None = None,
    experiment: str = "depth-hints",
) -> dict[str, Any]:
    """One store's quality (over ``limit`` images evenly spread, default all) and cost, logged
    to MLflow when a ``tracking_uri`` is given."""
    import numpy as np

    from depthhints.data.hint_store import open_store
    from depthhints.hints.quality import evaluate_store
    from hints_worker.actors import read_timing

    store = open_store(root)
    keys = sorted(store.keys())
    if limit and len(keys) > limit:
        keys = [keys[i] for i in np.linspace(0, len(keys) - 1, limit).astype(int)]
    quality = evaluate_store(store, layout, keys).as_dict()
    config = store.manifest.config if store.manifest else {}
    settings = {"matchers": config.get("matchers", "?"), "fusion": config.get("fusion", "?")}
    cost = (read_timing(root) or {}).get("seconds_per_image_per_actor")
    if tracking_uri:
        from depthhints.results import log_hint_quality

        log_hint_quality(tracking_uri, experiment, root, settings, quality, cost)
    return {"store": str(root), **settings, **quality, "seconds_per_image": cost}


def print_quality(
    stores: Sequence[str | Path],
    data_path: str | Path,
    limit: int | None = None,
    tracking_uri: str | None = None,
    experiment: str = "depth-hints",
) -> list[dict[str, Any]]:
    """:func:`hint_quality` of each store (hints of the KITTI tree at ``data_path``), printed as
    a table; the rows."""
    from depthhints.data.kitti import KittiRawLayout

    layout = KittiRawLayout(data_path)
    print(HEADER)
    rows = []
    for root in stores:
        rows.append(hint_quality(root, layout, limit, tracking_uri, experiment))
        print(table_line(rows[-1]))
    if tracking_uri:
        from depthhints.tracking import redact_uri

        print(f"logged to MLflow ({redact_uri(tracking_uri)}, experiment {experiment!r})")
    return rows


def table_line(row: dict[str, Any]) -> str:
    """A :func:`hint_quality` row under :data:`HEADER`."""
    cost = row.get("seconds_per_image")
    return (
        f"{row['store'][-40:]:40s} {row['matchers']:>8s} {row['fusion']:>7s} "
        f"{row['images']:6d} {row['coverage']:8.3f} {row['abs_rel']:8.4f} "
        f"{row['delta1']:7.3f} {'' if cost is None else f'{cost:10.2f}'}"
    )


def print_summary(summary: Summary) -> bool:
    """Print what a hint computation wrote, skipped and failed (failures on stderr), and the
    workers Ray restarted, with why; True if nothing failed."""
    from hints_worker.actors import FAILURES_FILE

    if not summary.written and not summary.failures:
        print(f"nothing to compute: all {summary.skipped} hints are already in {summary.store}")
        return True
    print(
        f"{summary.written} hints written, {summary.skipped} already in {summary.store}, "
        f"{len(summary.failures)} failed ({summary.images_per_second:.2f} hints/s written after "
        f"{summary.startup_seconds:.1f} s of actor start-up)"
    )
    for restart in summary.restarts:
        print(f"  {restart.describe()}")
    for failure in summary.failures[:10]:
        print(f"  failed {failure.key}: {failure.reason}", file=sys.stderr)
    if summary.failures:
        print(f"all failures: {summary.store / FAILURES_FILE}", file=sys.stderr)
    return not summary.failures
