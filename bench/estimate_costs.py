"""Time and cost of the paper's table on a cluster, from measured rates and stated assumptions.

    python -m bench.estimate_costs                        # the tables in docs/operations.md
    python -m bench.estimate_costs --write                # ... and rewrite them there
    python -m bench.estimate_costs --hint-nodes 8 --gpus 8 --seeds 3 --baselines
    python -m bench.estimate_costs --gpu-images-per-s 55  # a measured A10G rate instead

The work is counted from the repository: hint images from the bundled split lists that the
kitti preset's rows train on (train + val, both sides), training images from the row configs in
``depthhints/experiments/configs`` (epochs × whole batches of the train split). Every rate is a
:class:`Figure` marked measured (docs/benchmarks.md, on the 2-core benchmark machine) or assumed.
Not included: per-epoch validation and Eigen evaluation, the final evaluation on the head, data
download and copying, and idle time before the autoscaler removes a node.
"""

from __future__ import annotations

import argparse
import heapq
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.report import table
from depthhints.experiments import CONFIGS

REPO = Path(__file__).resolve().parent.parent
OPERATIONS_MD = REPO / "docs" / "operations.md"
BLOCK = re.compile(r"<!-- costs -->\n.*?<!-- /costs -->\n", re.S)


@dataclass(frozen=True)
class Figure:
    """One input of the estimate: its value, unit, and where it comes from."""

    value: float
    unit: str
    source: str
    measured: bool


FIGURES = {
    "hint_s_per_image_core": Figure(
        0.81,
        "s / image / core",
        "parity hints at 1024×320, one core (docs/benchmarks.md, depth-hint precompute)",
        True,
    ),
    "actor_efficiency": Figure(
        0.93,
        "of linear",
        "2 actors vs 1 on 2 cores, actors up: 1.86× (docs/benchmarks.md); assumed to hold "
        "for 32 actors per node",
        True,
    ),
    "vcpu_vs_core": Figure(
        1.0,
        "benchmark cores / vCPU",
        "a c6i vCPU (a hyperthread) matches one core of the benchmark machine (itself a VM)",
        False,
    ),
    "cpu_r18": Figure(
        3.08, "images / s", "ResNet18, 640×192, batch 4, hints, 2 cores (docs/benchmarks.md)", True
    ),
    "cpu_r50": Figure(
        1.90, "images / s", "ResNet50, 640×192, batch 4, hints, 2 cores (docs/benchmarks.md)", True
    ),
    "gpu_r18": Figure(
        40.0,
        "images / s",
        "ResNet18, stereo, 640×192, batch 12 on one A10G: no GPU measurement exists yet; "
        "replace with `train/images_per_second` of a short GPU run (--gpu-images-per-s)",
        False,
    ),
    "r50_vs_r18": Figure(
        1.90 / 3.08,
        "× the ResNet18 rate",
        "the CPU ratio above (measured), assumed to hold on a GPU",
        False,
    ),
    "pixel_exponent": Figure(
        1.0,
        "rate ∝ (1 / pixels) ^ value",
        "rate inversely proportional to pixels: 1024×320 at 0.375× the 640×192 rate",
        False,
    ),
    "mono_stereo": Figure(
        0.6,
        "× the stereo rate",
        "MS (frames 0, -1, 1, s: pose networks, 3 source views) vs stereo only",
        False,
    ),
    "node_start_min": Figure(
        10.0,
        "minutes per node",
        "instance boot + setup_commands (Python, 6.7 GB of requirements)",
        False,
    ),
    "usd_head": Figure(0.384, "USD / h", "m5.2xlarge on-demand, us-west-2 list price", False),
    "usd_hints": Figure(1.36, "USD / h", "c6i.8xlarge on-demand (spot: about a third)", False),
    "usd_gpu": Figure(1.006, "USD / h", "g5.xlarge on-demand, us-west-2 list price", False),
}


@dataclass(frozen=True)
class Cluster:
    hint_nodes: int = 4
    vcpus_per_hint_node: int = 32  # c6i.8xlarge
    gpus: int = 4  # g5.xlarge: one A10G per node, one GPU per trial (the published batch 12)
    seeds: int = 1
    baselines: bool = False


@dataclass(frozen=True)
class Trial:
    row: str
    split: str
    images: int  # training images over all epochs
    epochs: int
    gpu_rate: float  # images / s on one GPU
    cpu_rate: float  # images / s on the 2-core benchmark machine


def hint_images(splits: set[str]) -> int:
    """Distinct images (both sides of every frame) of the train and val lists of ``splits``."""
    from depthhints.data.hint_store import hint_key
    from depthhints.data.kitti import load_split

    keys = {
        hint_key(item)
        for split in splits
        for part in ("train", "val")
        for item in load_split(split, part)
    }
    return len(keys)


def row_names() -> tuple[str, ...]:
    """The paper's rows (the bundled ``<row>_hints.yaml`` configs), in the table's order."""
    order = ["S_R50_640x192", "S_R50_640x192_nopt", "S_R50_1024x320", "S_R50_1024x320_nopt"]
    rows = sorted(p.name.removesuffix("_hints.yaml") for p in CONFIGS.glob("*_hints.yaml"))
    return (*[r for r in order if r in rows], *[r for r in rows if r not in order])


def trials(cluster: Cluster, figures: dict[str, Figure]) -> list[Trial]:
    """One trial per row, seed (and baseline), as reproduce_table schedules them."""
    from depthhints.config import TrainConfig
    from depthhints.data.kitti import load_split

    result = []
    variants = ["hints", "nohints"] if cluster.baselines else ["hints"]
    for variant in variants:
        for row in row_names():
            config = TrainConfig.from_yaml(CONFIGS / f"{row}_{variant}.yaml")
            steps = len(load_split(config.split, "train")) // config.batch_size
            images = config.num_epochs * steps * config.batch_size
            pixels = (640 * 192) / (config.width * config.height)
            scale = pixels ** figures["pixel_exponent"].value
            if len(config.frame_ids) > 1:
                scale *= figures["mono_stereo"].value
            r50 = config.num_layers == 50
            gpu = figures["gpu_r18"].value * (figures["r50_vs_r18"].value if r50 else 1.0)
            cpu = figures["cpu_r50" if r50 else "cpu_r18"].value
            name = f"{row}_{variant}"
            for _ in range(cluster.seeds):
                result.append(
                    Trial(name, config.split, images, config.num_epochs, gpu * scale, cpu * scale)
                )
    return result


def makespan(durations: list[float], slots: int) -> float:
    """Wall time of jobs started in order, each on the first free slot (Tune's FIFO)."""
    free = [0.0] * max(slots, 1)
    for duration in durations:
        start = heapq.heappop(free)
        heapq.heappush(free, start + duration)
    return max(free)


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:,.1f} h"


def estimate(cluster: Cluster = Cluster(), figures: dict[str, Figure] = FIGURES) -> str:
    """The Markdown tables of docs/operations.md's cost section."""
    f = {name: figure.value for name, figure in figures.items()}
    runs = trials(cluster, figures)
    start = f["node_start_min"] * 60

    images = hint_images({run.split for run in runs})
    core_seconds = images * f["hint_s_per_image_core"]
    vcpus = cluster.hint_nodes * cluster.vcpus_per_hint_node
    hint_wall = core_seconds / (vcpus * f["actor_efficiency"] * f["vcpu_vs_core"])
    hint_usd = cluster.hint_nodes * f["usd_hints"] * (hint_wall + start) / 3600

    gpu_seconds = [run.images / run.gpu_rate for run in runs]
    train_wall = makespan(gpu_seconds, cluster.gpus)
    nodes = min(cluster.gpus, len(runs))
    gpu_usd = f["usd_gpu"] * (sum(gpu_seconds) + nodes * start) / 3600
    total_wall = hint_wall + train_wall + 2 * start
    head_usd = f["usd_head"] * total_wall / 3600

    inputs = table(
        ["input", "value", "unit", "measured or assumed", "source"],
        [
            [
                name,
                f"{figure.value:.4g}",
                figure.unit,
                "measured" if figure.measured else "**assumed**",
                figure.source,
            ]
            for name, figure in figures.items()
        ],
    )
    hints = table(
        ["hint precomputation", "value"],
        [
            [
                "images (splits "
                + ", ".join(sorted({r.split for r in runs}))
                + ": train + val, both sides)",
                f"{images:,} (counted)",
            ],
            ["CPU time, parity hints at 1024×320", f"{core_seconds / 3600:,.1f} core-hours"],
            [
                f"wall on {cluster.hint_nodes} × c6i.8xlarge ({vcpus} vCPUs)",
                f"{hint_wall / 60:,.1f} min + {f['node_start_min']:.0f} min node start",
            ],
            ["cost of the hint nodes (on-demand)", f"${hint_usd:,.2f}"],
        ],
    )
    per_row: dict[str, list[Trial]] = {}
    for run in runs:
        per_row.setdefault(run.row, []).append(run)
    rows = [
        [
            name,
            f"{group[0].split}, {group[0].epochs} epochs, {group[0].images:,} images",
            len(group),
            f"{group[0].gpu_rate:.1f} (assumed)",
            f"{sum(r.images / r.gpu_rate for r in group) / 3600:,.1f}",
            f"{sum(r.images / r.cpu_rate for r in group) / 86400:,.0f} days",
        ]
        for name, group in per_row.items()
    ]
    rows.append(["**total**", "", len(runs), "", f"**{sum(gpu_seconds) / 3600:,.1f}**", ""])
    training = table(
        [
            "trial",
            "training work",
            "runs",
            "A10G images/s",
            "GPU-hours",
            "CPU only: the 2-core benchmark machine",
        ],
        rows,
    )
    summary = table(
        [f"the table on {cluster.gpus} × g5.xlarge (one GPU per trial)", "value"],
        [
            [
                "training wall time (trials first come, first served)",
                f"{_hours(train_wall)} + {f['node_start_min']:.0f} min node start",
            ],
            [
                "longest single trial (the wall time with one GPU per trial)",
                _hours(max(gpu_seconds)),
            ],
            ["whole run: hints, then training", _hours(total_wall)],
            [
                "cost: GPU nodes + hint nodes + head (on-demand)",
                f"${gpu_usd:,.0f} + ${hint_usd:,.0f} + ${head_usd:,.0f} = "
                f"${gpu_usd + hint_usd + head_usd:,.0f}",
            ],
        ],
    )
    seeds = f"{cluster.seeds} seed{'s' if cluster.seeds > 1 else ''}"
    return (
        f"Inputs (`python -m bench.estimate_costs`; {seeds}, "
        f"{'with' if cluster.baselines else 'without'} the no-hint baselines):\n\n{inputs}\n"
        f"{hints}\n{training}\n{summary}"
    )


def write_block(text: str, path: Path = OPERATIONS_MD) -> None:
    """Replace the ``<!-- costs -->`` block of ``path`` with ``text``."""
    document = path.read_text()
    if not BLOCK.search(document):
        sys.exit(f"{path}: no <!-- costs --> ... <!-- /costs --> block to replace")
    block = f"<!-- costs -->\n{text.rstrip()}\n<!-- /costs -->\n"
    path.write_text(BLOCK.sub(lambda _: block, document))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = Cluster()
    parser.add_argument("--hint-nodes", type=int, default=defaults.hint_nodes)
    parser.add_argument("--vcpus-per-hint-node", type=int, default=defaults.vcpus_per_hint_node)
    parser.add_argument("--gpus", type=int, default=defaults.gpus, help="GPUs, one per trial")
    parser.add_argument("--seeds", type=int, default=defaults.seeds)
    parser.add_argument("--baselines", action="store_true", help="also each row without hints")
    parser.add_argument(
        "--gpu-images-per-s", type=float, help="a measured ResNet18 640×192 rate on one GPU"
    )
    parser.add_argument(
        "--write", action="store_true", help=f"rewrite the block in {OPERATIONS_MD}"
    )
    args = parser.parse_args(argv)
    figures = dict(FIGURES)
    if args.gpu_images_per_s:
        figures["gpu_r18"] = Figure(args.gpu_images_per_s, "images / s", "given", True)
    cluster = Cluster(
        args.hint_nodes, args.vcpus_per_hint_node, args.gpus, args.seeds, args.baselines
    )
    text = estimate(cluster, figures)
    print(text)
    if args.write:
        write_block(text)


if __name__ == "__main__":
    main()
