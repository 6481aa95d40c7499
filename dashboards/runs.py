"""Reading the project's MLflow store: which store, and its evaluation, training and sweep runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Run

from depthhints.errors import ConfigError
from depthhints.results import EVALUATION_KIND, METRIC_PREFIX
from depthhints.tracking import check_store_uri
from depthhints.train.reporting import DEFAULT_EXPERIMENT

DEMO_STORE = Path("outputs") / "demo" / "runs" / "mlflow.db"  # where `make demo` tracks


def resolve_store(uri: str | None = None) -> str:
    """``uri``, else ``$MLFLOW_TRACKING_URI``, else the demo's store under the current folder;
    a SQLite file must exist (a mistyped path would make an empty store)."""
    uri = check_store_uri(uri, existing=True)
    if uri:
        return uri
    if DEMO_STORE.is_file():
        return f"sqlite:///{DEMO_STORE.resolve()}"
    raise ConfigError(
        f"no MLflow store given and no demo store at {DEMO_STORE}: run `make demo` first, or "
        "pass --tracking-uri (e.g. sqlite:///path/to/mlflow.db or http://host:5000)"
    )


@dataclass
class ResultRun:
    """An evaluation run (ours or the paper's): comparison params and ``test/*`` metrics."""

    run_id: str
    name: str
    source: str  # "ours" or "paper"
    params: dict[str, str]
    metrics: dict[str, float]  # without the "test/" prefix
    tags: dict[str, str] = field(default_factory=dict)
    start_time: int = 0

    @classmethod
    def from_mlflow(cls, run: Run) -> ResultRun:
        return cls(
            run_id=run.info.run_id,
            name=run.info.run_name or run.info.run_id,
            source=run.data.tags.get("source", ""),
            params=dict(run.data.params),
            metrics={
                key.removeprefix(METRIC_PREFIX): value
                for key, value in run.data.metrics.items()
                if key.startswith(METRIC_PREFIX)
            },
            tags=dict(run.data.tags),
            start_time=run.info.start_time or 0,
        )


def experiment_id(client: MlflowClient, name: str = DEFAULT_EXPERIMENT) -> str:
    """The id of experiment ``name``; a clear error when the store has no such experiment."""
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        names = [e.name for e in client.search_experiments()]
        raise ConfigError(f"no MLflow experiment {name!r} in this store; it has {names}")
    return experiment.experiment_id


def search(client: MlflowClient, experiment: str, query: str) -> list[Run]:
    """Every active run of ``experiment`` (an id) matching ``query``, newest first."""
    runs, token = [], None
    while True:
        page = client.search_runs(
            [experiment],
            query,
            max_results=1000,
            order_by=["attributes.start_time DESC"],
            page_token=token,
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def result_runs(client: MlflowClient, experiment: str, source: str) -> list[ResultRun]:
    """The evaluation runs of ``source`` ("ours" or "paper"), newest first."""
    query = f"tags.source = '{source}' and tags.run_kind = '{EVALUATION_KIND}'"
    return [ResultRun.from_mlflow(run) for run in search(client, experiment, query)]
