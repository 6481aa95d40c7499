"""Dashboards: the paper's results as MLflow reference runs, the MLflow UI launcher and the
static HTML report (ours vs the paper, training curves, sample frames, hint quality)."""
