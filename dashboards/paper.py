"""The published KITTI results (:mod:`depthhints.paper`) as MLflow reference runs, tag
``source=paper``.

Each result becomes one finished run with the comparison params and ``test/*`` metrics of our
evaluation runs (:mod:`depthhints.results`), so the MLflow UI lists them beside ours and the
report matches them by params.

Logging is idempotent: a run is identified by its ``paper_key`` tag and re-created only when its
content (``paper_hash``) changed.
"""

from __future__ import annotations

from mlflow import MlflowClient
from mlflow.entities import Metric, Param

from depthhints.paper import PAPER_RESULTS, PaperResult
from depthhints.results import EVALUATION_KIND, METRIC_PREFIX
from depthhints.tracking import default_artifact_location, ensure_experiment, login_hidden


def log_paper_runs(
    tracking_uri: str, experiment: str, results: tuple[PaperResult, ...] = PAPER_RESULTS
) -> dict[str, str]:
    """Log (or keep) one run per published result; returns {paper_key: run_id}."""
    client = MlflowClient(tracking_uri)
    experiment_id = ensure_experiment(client, experiment, default_artifact_location(tracking_uri))
    existing = {
        run.data.tags.get("paper_key"): run
        for run in client.search_runs([experiment_id], "tags.source = 'paper'", max_results=1000)
    }
    ids = {}
    for result in results:
        run = existing.get(result.key)
        if run is not None and run.data.tags.get("paper_hash") == result.content_hash():
            ids[result.key] = run.info.run_id
            continue
        if run is not None:  # the published numbers were corrected: replace the run
            client.delete_run(run.info.run_id)
        ids[result.key] = _create(client, experiment_id, result)
    return ids


def _create(client: MlflowClient, experiment_id: str, result: PaperResult) -> str:
    tags = {
        "source": "paper",
        "run_kind": EVALUATION_KIND,
        "paper_key": result.key,
        "paper_hash": result.content_hash(),
        "method": result.method,
        "provenance": result.provenance,
        "mlflow.note.content": f"{result.method}, published numbers. Source: {result.provenance}.",
    }
    run = client.create_run(experiment_id, run_name=result.name, tags=tags)
    run_id = run.info.run_id
    client.log_batch(
        run_id,
        metrics=[
            Metric(f"{METRIC_PREFIX}{name}", value, run.info.start_time, 0)
            for name, value in result.metrics.items()
        ],
        params=[Param(k, v) for k, v in result.params().items()],
    )
    with login_hidden(client.tracking_uri):  # MLflow would print the URI, password included
        client.set_terminated(run_id, "FINISHED")
    return run_id
