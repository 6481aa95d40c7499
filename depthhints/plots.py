"""Figures of results (matplotlib) as PNG bytes: the report's and the ablation's.

Colours: the Okabe–Ito palette for categories (readable with colour-vision deficiencies) and
``magma_r`` for depth (near is bright); pixels without a value are grey, not a colour of the scale.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap

OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
NO_VALUE = "#9a9a9a"
DEPTH_CMAP = matplotlib.colormaps["magma_r"].with_extremes(bad=NO_VALUE)
MASK_CMAP = ListedColormap(["#303030", "#E69F00"])  # hint lost / hint won
LINESTYLES = ("-", "--", ":", "-.")
MAX_DEPTH = 80.0  # the Eigen evaluation's cap (metres)

Series = Mapping[str, Sequence[tuple[int, float]]]  # metric → [(step, value)]


def to_png(figure: plt.Figure) -> bytes:
    """The figure as PNG bytes (and closed)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def sweep_curves(runs: Sequence[tuple[str, str, Series]], metrics: Mapping[str, str]) -> bytes:
    """One panel per metric ({name: title}) with the runs that have it; one line per run (name,
    group, series), coloured by its group (the swept value), runs of the same group told apart
    by line style."""
    groups = list(dict.fromkeys(group for _, group, _ in runs))
    figure, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 3.4), squeeze=False)
    for axis, metric in zip(axes[0], metrics, strict=True):
        seen: dict[str, int] = {}
        for _, group, series in runs:
            points = series.get(metric, [])
            if not points:
                continue
            index = seen[group] = seen.get(group, -1) + 1
            steps, values = zip(*points, strict=True)
            axis.plot(
                steps,
                values,
                color=OKABE_ITO[groups.index(group) % len(OKABE_ITO)],
                linestyle=LINESTYLES[index % len(LINESTYLES)],
                marker="o" if len(points) < 12 else None,
                markersize=3,
                label=group if index == 0 else None,
            )
        axis.set_title(metrics[metric], fontsize=10)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
    legend: dict[str, object] = {}  # label → handle, every group once
    for axis in axes[0]:
        for handle, label in zip(*axis.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    if legend:
        figure.legend(
            list(legend.values()),
            list(legend),
            loc="upper center",
            ncol=min(len(legend), 4),
            frameon=False,
        )
        figure.subplots_adjust(top=0.8)
    return to_png(figure)


def scale_losses(runs: Sequence[tuple[str, Series]], scales: Sequence[int] = (0, 1, 2, 3)) -> bytes:
    """Small multiples: for each run (title, series), the training loss of every scale against
    the step, each run on its own y axis (runs of a sweep may optimise different losses: with
    hints the loss has another term)."""
    columns = min(len(runs), 3)
    rows = -(-len(runs) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 2.9 * rows), squeeze=False)
    for axis, (name, series) in zip(axes.flat, runs, strict=False):
        for scale in scales:
            points = series.get(f"train/loss/{scale}", [])
            if points:
                steps, values = zip(*points, strict=True)
                axis.plot(
                    steps,
                    values,
                    color=OKABE_ITO[scale],
                    marker="o" if len(points) < 12 else None,
                    markersize=3,
                    label=f"scale {scale}",
                )
        axis.set_title(name, fontsize=9)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
    for axis in list(axes.flat)[len(runs) :]:
        axis.set_visible(False)
    for row in axes:
        row[0].set_ylabel("train loss")
    axes[0][0].legend(fontsize=8, frameon=False)
    return to_png(figure)


def sample_frames(frames: Mapping[str, np.ndarray], title: str) -> bytes:
    """Rows of test frames: image, prediction, depth hint, hint mask, GT; the three depth
    columns share one colour scale (metres), with its colour bar."""
    columns = [c for c in ("image", "prediction", "hint", "hint_mask", "gt") if c in frames]
    headings = {
        "image": "image",
        "prediction": "prediction",
        "hint": "depth hint",
        "hint_mask": "hint won (m_h)",
        "gt": "ground truth",
    }
    # the scale follows the ground truth (capped at the evaluation's 80 m): a bad prediction
    # saturates instead of washing out the other columns
    reference = frames["gt"] if "gt" in frames else frames["prediction"]
    valid = reference[reference > 0]
    top = min(float(np.percentile(valid, 98)), MAX_DEPTH) if valid.size else MAX_DEPTH
    count, height, width = frames["image"].shape[:3]
    aspect = height / width
    figure, axes = plt.subplots(
        count,
        len(columns),
        figsize=(3.6 * len(columns), 3.6 * aspect * count + 1.0),
        squeeze=False,
    )
    shown = None
    for row in range(count):
        for axis, column in zip(axes[row], columns, strict=True):
            data = frames[column][row]
            if column == "image":
                axis.imshow(data)
            elif column == "hint_mask":
                axis.imshow(data.astype(np.uint8), cmap=MASK_CMAP, vmin=0, vmax=1)
            else:
                masked = np.ma.masked_where(data <= 0, data)
                shown = axis.imshow(masked, cmap=DEPTH_CMAP, vmin=0, vmax=top)
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(headings[column], fontsize=9)
    figure.suptitle(title, fontsize=10)
    if shown is not None:
        bar = figure.colorbar(shown, ax=axes, orientation="horizontal", fraction=0.04, pad=0.03)
        bar.set_label(f"depth (m), {top:.0f} m and beyond at the end of the scale; grey: no value")
    return to_png(figure)


def hint_quality(rows: Sequence[Mapping[str, float | str]]) -> bytes:
    """Cost (seconds per image on one core) against accuracy (abs rel), one point per mode,
    its size the coverage."""
    figure, axis = plt.subplots(figsize=(5.5, 3.4))
    for index, row in enumerate(rows):
        axis.scatter(
            row["seconds_per_image"],
            row["abs_rel"],
            s=40 + 260 * float(row["coverage"]),
            color=OKABE_ITO[index % len(OKABE_ITO)],
            label=f"{row['mode']} (coverage {float(row['coverage']):.2f})",
            alpha=0.85,
        )
    axis.margins(0.3)
    axis.set_xlabel("seconds per image per core")
    axis.set_ylabel("abs rel of the hints")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, frameon=False)
    return to_png(figure)


def ablation_curves(
    curves: Mapping[str, Sequence[Series]],
    metrics: Mapping[str, str],
    xlabel: str = "step",
    log_scale: Sequence[str] = (),
) -> bytes:
    """One panel per metric ({name: title}); one line per run, coloured by its variant: a mean
    would hide a run that failed (``log_scale``: metrics shown on a log axis)."""
    figure, axes = plt.subplots(1, len(metrics), figsize=(5.4 * len(metrics), 3.6), squeeze=False)
    for axis, metric in zip(axes[0], metrics, strict=True):
        for index, (variant, runs) in enumerate(curves.items()):
            for number, run in enumerate(runs):
                points = run.get(metric, [])
                if not points:
                    continue
                steps, values = zip(*points, strict=True)
                axis.plot(
                    steps,
                    values,
                    color=OKABE_ITO[index % len(OKABE_ITO)],
                    marker="o",
                    markersize=2.5,
                    linewidth=1.1,
                    alpha=0.85,
                    label=f"{variant} (n={len(runs)})" if number == 0 else None,
                )
        if metric in log_scale:
            axis.set_yscale("log")
        axis.set_title(metrics[metric], fontsize=10)
        axis.set_xlabel(xlabel)
        axis.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        figure.legend(handles, labels, loc="upper center", ncol=min(len(labels), 3), frameon=False)
        figure.subplots_adjust(top=0.78)
    return to_png(figure)


def error_maps(rows: Sequence[Mapping[str, object]], vmax: float = 0.5) -> bytes:
    """Per test frame: image, GT depth and each model's abs rel error map (same scale, capped at
    ``vmax``; grey where there is no GT). ``rows``: ``image``, ``gt``, ``errors`` ({name: map}),
    ``title``."""
    names = list(rows[0]["errors"])  # type: ignore[arg-type]
    columns = 2 + len(names)
    height, width = np.asarray(rows[0]["gt"]).shape
    figure, axes = plt.subplots(
        len(rows),
        columns,
        figsize=(3.8 * columns, 3.8 * height / width * len(rows) + 1.2),
        squeeze=False,
    )
    error_cmap = matplotlib.colormaps["inferno"].with_extremes(bad=NO_VALUE)
    shown = None
    for axes_row, row in zip(axes, rows, strict=True):
        gt = np.asarray(row["gt"])
        axes_row[0].imshow(row["image"])
        axes_row[0].set_ylabel(str(row["title"]), fontsize=8)
        valid = gt[gt > 0]
        top = min(float(np.percentile(valid, 98)), MAX_DEPTH) if valid.size else MAX_DEPTH
        axes_row[1].imshow(np.ma.masked_where(gt <= 0, gt), cmap=DEPTH_CMAP, vmin=0, vmax=top)
        for axis, name in zip(axes_row[2:], names, strict=True):
            error = np.asarray(row["errors"][name])  # type: ignore[index]
            mean = float(np.nanmean(error))
            shown = axis.imshow(np.ma.masked_invalid(error), cmap=error_cmap, vmin=0, vmax=vmax)
            axis.set_title(f"{name}: mean abs rel {mean:.3f}", fontsize=8)
        for axis in axes_row:
            axis.set_xticks([])
            axis.set_yticks([])
    for axis, heading in zip(axes[0][:2], ("image", "ground truth depth"), strict=True):
        axis.set_title(heading, fontsize=9)
    if shown is not None:
        bar = figure.colorbar(shown, ax=axes, orientation="horizontal", fraction=0.04, pad=0.03)
        bar.set_label(
            f"abs rel error |pred − gt| / gt ({vmax:g} and above at the end; grey: no GT)"
        )
    return to_png(figure)
