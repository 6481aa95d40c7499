"""A self-contained HTML results report built from the MLflow store (one file, no server).

Sections: the results table (ours vs the paper, differences marked better/worse), training
curves of the sweep's runs grouped by swept value (the training loss on one panel per loss the
runs optimise: with hints it has another term) and each run's loss per scale, sample test
frames (image, prediction, depth hint, hint mask, GT on one colour scale), hint quality per mode
and the throughput figures of ``docs/benchmarks.md``. Figures are PNGs embedded as data URIs.

Which runs: our evaluation runs of one sweep (``--sweep``: a sweep name or run id, ``all`` for
every sweep; default the newest sweep with evaluations), the training runs they evaluate, and all
the paper's reference runs (logged first, see :mod:`dashboards.paper`).
"""

from __future__ import annotations

import base64
import datetime
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dashboards.ui import EXPERIMENT as DEFAULT_EXPERIMENT

if TYPE_CHECKING:  # the CLI imports this module to build its parser: keep that fast
    from dashboards.runs import ResultRun
    from dashboards.table import ComparisonRow

BENCHMARKS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
BENCHMARK_SECTIONS = ("hints", "train", "distributed")  # the <!-- bench:NAME --> blocks shown
LOSS, VALIDATION = "train/loss", "eval/abs_rel"  # the sweep's curves
LOSS_PARAMS = (  # the training options that define the loss (depthhints.losses)
    "use_depth_hints",
    "hint_supervision",
    "use_stereo",
    "frame_ids",
    "scales",
    "v1_multiscale",
    "no_ssim",
    "disable_automasking",
    "avg_reprojection",
    "predictive_mask",
    "disparity_smoothness",
)
SAMPLES_ARTIFACT = "samples/test_frames.npz"
MAX_TRAINING_RUNS = 12
METRIC_LABELS = {
    "abs_rel": "Abs Rel",
    "sq_rel": "Sq Rel",
    "rmse": "RMSE",
    "rmse_log": "RMSE log",
    "a1": "δ<1.25",
    "a2": "δ<1.25²",
    "a3": "δ<1.25³",
}


@dataclass
class TrainingRun:
    """A training run's curves (metric → [(step, value)]) and the swept values it ran with."""

    run_id: str
    name: str
    group: str
    series: dict[str, list[tuple[int, float]]]
    samples_png: bytes | None = None
    loss_kind: str = ""  # the loss options it differs in from the others (:func:`loss_kinds`)


@dataclass
class ReportData:
    """Everything the report shows, read from the store."""

    store: str
    experiment: str
    sweep: str
    rows: list[ComparisonRow]
    metrics: list[str]
    papers: list[ResultRun]
    training: list[TrainingRun] = field(default_factory=list)
    hint_quality: list[dict[str, Any]] = field(default_factory=list)
    benchmarks: dict[str, str] = field(default_factory=dict)  # section → HTML


def select_sweep(ours: Sequence[ResultRun], sweep: str | None) -> list[ResultRun]:
    """Our evaluation runs of one sweep: ``sweep`` a name or run id (None: the newest),
    ``"all"``: every run. ``ours`` is newest first."""
    if sweep == "all":
        return list(ours)
    candidates = [
        run for run in ours if sweep in (None, run.tags.get("sweep"), run.tags.get("sweep_run_id"))
    ]
    if not candidates:
        return []
    chosen = candidates[0].tags.get("sweep_run_id")
    return [run for run in candidates if run.tags.get("sweep_run_id") == chosen]


def collect(
    tracking_uri: str,
    experiment: str = DEFAULT_EXPERIMENT,
    sweep: str | None = None,
    benchmarks: Path | None = BENCHMARKS,
) -> ReportData:
    """Read the report's content from the store (the paper runs are logged first)."""
    from mlflow import MlflowClient

    from dashboards.paper import log_paper_runs
    from dashboards.runs import experiment_id, result_runs
    from dashboards.table import compare, metrics_shown
    from depthhints.tracking import redact_uri

    client = MlflowClient(tracking_uri)
    ours = _chosen_sweep(client, experiment, sweep)  # before the paper runs are logged
    log_paper_runs(tracking_uri, experiment)
    exp = experiment_id(client, experiment)
    papers = result_runs(client, exp, "paper")
    rows = compare(ours, papers)
    sweep_label = ours[0].tags.get("sweep", "") if ours else ""
    return ReportData(
        store=redact_uri(tracking_uri),  # shown in the report
        experiment=experiment,
        sweep="every sweep" if sweep == "all" else sweep_label,
        rows=rows,
        metrics=metrics_shown(rows),
        papers=sorted(papers, key=lambda p: p.name),
        training=_training_runs(client, ours),
        hint_quality=_hint_quality(client, exp),
        benchmarks=benchmark_sections(benchmarks) if benchmarks else {},
    )


def _chosen_sweep(client: Any, experiment: str, sweep: str | None) -> list[ResultRun]:
    """:func:`select_sweep` of our evaluation runs; a ConfigError listing the sweeps there are
    when ``sweep`` names none of them."""
    from dashboards.runs import result_runs
    from depthhints.errors import ConfigError

    found = client.get_experiment_by_name(experiment)
    everything = result_runs(client, found.experiment_id, "ours") if found else []
    chosen = select_sweep(everything, sweep)
    if chosen or sweep in (None, "all"):
        return chosen
    names = sorted({run.tags["sweep"] for run in everything if run.tags.get("sweep")})
    raise ConfigError(
        f"--sweep {sweep!r}: no evaluation runs of a sweep of that name or run id in experiment "
        f"{experiment!r}; give one of: {', '.join(names) or '(none yet)'}, or 'all'"
    )


def _training_runs(client: Any, ours: Sequence[ResultRun]) -> list[TrainingRun]:
    from depthhints import plots
    from depthhints.samples import load_samples

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    ids = list(dict.fromkeys(r.params.get("training_run_id") for r in ours))
    runs = [client.get_run(run_id) for run_id in ids if run_id][:MAX_TRAINING_RUNS]
    swept = {
        key
        for run in runs
        for key in run.data.tags
        if key.startswith("sweep.") and key != "sweep.seed"
    }
    varying = sorted(k for k in swept if len({r.data.tags.get(k) for r in runs}) > 1)
    kinds = loss_kinds([run.data.params for run in runs])
    training = []
    for run, loss_kind in zip(runs, kinds, strict=True):
        run_id, tags = run.info.run_id, run.data.tags
        group = ", ".join(f"{k.removeprefix('sweep.')}={tags.get(k)}" for k in varying)
        keys = [k for k in run.data.metrics if k in (LOSS, VALIDATION) or k.startswith(f"{LOSS}/")]
        series = {
            key: [(m.step, m.value) for m in client.get_metric_history(run_id, key)] for key in keys
        }
        name = run.info.run_name or run_id
        item = TrainingRun(run_id, name, group or name, series, loss_kind=loss_kind)
        with tempfile.TemporaryDirectory() as folder:
            try:
                path = client.download_artifacts(run_id, SAMPLES_ARTIFACT, folder)
            except Exception:  # an older run, or one evaluated without samples
                path = None
            if path:
                title = f"{item.name} ({item.group})" if varying else item.name
                item.samples_png = plots.sample_frames(load_samples(path), title)
        training.append(item)
    return training


def loss_kinds(params: Sequence[dict[str, str]]) -> list[str]:
    """Per run (its params), the loss options (:data:`LOSS_PARAMS`) in which the runs differ,
    e.g. ``use_depth_hints=True``; all empty when every run optimises the same loss."""
    varying = [key for key in LOSS_PARAMS if len({p.get(key) for p in params}) > 1]
    return [", ".join(f"{key}={p.get(key)}" for key in varying) for p in params]


def curve_panels(
    training: Sequence[TrainingRun],
) -> tuple[list[tuple[str, str, dict[str, list[tuple[int, float]]]]], dict[str, str]]:
    """The sweep's curves for :func:`depthhints.plots.sweep_curves`: (name, group, series) per run
    and {metric: title}: the training loss on one panel per loss kind (runs optimising different
    losses never share an axis) and the validation abs rel of every run on one."""
    runs, panels = [], {}
    for run in training:
        key = f"{LOSS} · {run.loss_kind}" if run.loss_kind else LOSS
        panels[key] = f"training loss ({run.loss_kind})" if run.loss_kind else "training loss"
        runs.append((run.name, run.group, {**run.series, key: run.series.get(LOSS, [])}))
    panels[VALIDATION] = "abs rel (validation, after each epoch)"
    return runs, panels


def _hint_quality(client: Any, experiment: str) -> list[dict[str, Any]]:
    """The newest quality run of each hint mode."""
    from dashboards.runs import search
    from depthhints.results import HINT_QUALITY_KIND

    rows: dict[str, dict[str, Any]] = {}
    for run in search(client, experiment, f"tags.run_kind = '{HINT_QUALITY_KIND}'"):
        mode = run.data.params.get("mode", "?")
        metrics = {k.removeprefix("hints/"): v for k, v in run.data.metrics.items()}
        rows.setdefault(mode, {"mode": mode, "store": run.data.params.get("store", ""), **metrics})
    return sorted(rows.values(), key=lambda r: r["mode"])


def benchmark_sections(path: Path, names: Sequence[str] = BENCHMARK_SECTIONS) -> dict[str, str]:
    """The ``<!-- bench:NAME -->`` blocks of ``docs/benchmarks.md`` as HTML (absent: left out)."""
    import markdown

    text = path.read_text() if path.is_file() else ""
    sections = {}
    for name in names:
        found = re.search(rf"<!-- bench:{name} -->(.*?)<!-- /bench:{name} -->", text, re.S)
        if found:
            body = re.sub(r"^## ", "### ", found.group(1).strip(), flags=re.M)
            sections[name] = markdown.markdown(body, extensions=["tables"])
    return sections


def render(data: ReportData) -> str:
    """The report as one HTML document."""
    import jinja2

    from depthhints import plots
    from depthhints.evaluate import HIGHER_IS_BETTER

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("dashboards", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["png"] = lambda data: (
        "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    )
    curves = plots.sweep_curves(*curve_panels(data.training)) if data.training else None
    titled = [
        (f"{t.name} ({t.group})" if t.group != t.name else t.name, t.series) for t in data.training
    ]
    scales = plots.scale_losses(titled) if titled else None
    quality = plots.hint_quality(data.hint_quality) if _has_cost(data.hint_quality) else None
    return environment.get_template("report.html.j2").render(
        data=data,
        labels=METRIC_LABELS,
        higher_is_better=HIGHER_IS_BETTER,
        curves=curves,
        scales=scales,
        quality=quality,
        generated=datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
    )


def _has_cost(rows: Sequence[dict[str, Any]]) -> bool:
    return bool(rows) and all("seconds_per_image" in r and "abs_rel" in r for r in rows)


def build_report(
    out: str | Path,
    tracking_uri: str | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
    sweep: str | None = None,
    benchmarks: Path | None = BENCHMARKS,
) -> Path:
    """Write the report to ``out`` (an ``.html`` file) and return its path."""
    from dashboards.runs import resolve_store

    data = collect(resolve_store(tracking_uri), experiment, sweep, benchmarks)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(data), encoding="utf-8")
    return out.resolve()
