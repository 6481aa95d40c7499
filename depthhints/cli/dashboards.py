"""``depthhints ui`` (the MLflow UI with a link comparing our runs to the paper's,
:mod:`dashboards.ui`) and ``depthhints report`` (the static HTML report, :mod:`dashboards.report`).
"""

from __future__ import annotations

import argparse

from dashboards.ui import DEFAULT_HOST, DEFAULT_PORT, EXPERIMENT

STORE_HELP = (
    "MLflow store: sqlite:///<an existing .db file> or http(s)://host:port (default: "
    "$MLFLOW_TRACKING_URI, else outputs/demo/runs/mlflow.db)"
)


def register(commands: argparse._SubParsersAction) -> None:
    ui = commands.add_parser(
        "ui",
        help="the MLflow UI on the project's store, with links comparing our runs to the paper",
        description="Logs the paper's reference runs into the experiment (unless --no-paper), "
        "starts `mlflow server` on the store and prints the runs table of the newest sweep and "
        "one compare page per row (ours beside the paper's). Ctrl-C stops the server.",
    )
    add_ui_arguments(ui)
    ui.set_defaults(func=cmd_ui)

    report = commands.add_parser(
        "report", help="write the static HTML results report (ours vs the paper) from MLflow"
    )
    add = report.add_argument
    add("--tracking-uri", help=STORE_HELP)
    add("--experiment", default=EXPERIMENT, help="MLflow experiment")
    add("--sweep", help="sweep name or MLflow run id ('all': every sweep; default: the newest)")
    add("--out", default="outputs/report.html", help="the HTML file to write")
    add("--screenshot", help="also save a PNG of the report's first screen (needs Chromium)")
    report.set_defaults(func=cmd_report)


def add_ui_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``depthhints ui``."""
    add = parser.add_argument
    add("--tracking-uri", help=f"{STORE_HELP}; a tracking server (http[s]://) is only linked to")
    add("--experiment", default=EXPERIMENT, help="MLflow experiment")
    host = (
        f"interface to bind: {DEFAULT_HOST} is this machine only; 0.0.0.0 exposes the UI, which "
        "has no login, to the network"
    )
    add("--host", default=DEFAULT_HOST, help=host)
    add("--port", type=int, default=DEFAULT_PORT, help="port of the UI")
    add("--no-paper", action="store_true", help="do not log (or update) the paper's runs first")


def cmd_ui(args: argparse.Namespace) -> int:
    from dashboards.ui import serve_ui

    serve_ui(args.tracking_uri, args.experiment, args.host, args.port, not args.no_paper)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from dashboards.report import build_report
    from depthhints.paths import writable_file

    for flag, file in (("--out", args.out), ("--screenshot", args.screenshot)):
        if file:
            writable_file(file, flag)
    path = build_report(args.out, args.tracking_uri, args.experiment, args.sweep)
    print(f"report: {path} (open it in a browser; it needs no server)")
    if args.screenshot:
        from dashboards.browser import screenshot

        print(f"screenshot: {screenshot(path.as_uri(), args.screenshot)}")
    return 0
