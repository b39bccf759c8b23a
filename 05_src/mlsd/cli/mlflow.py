"""``mlsd mlflow``: MLflow tools on the course's tracking store (:mod:`mlsd.tracking`)."""

from __future__ import annotations

import argparse

from mlsd.cli._commands import Commands, Option, lazy
from mlsd.cli._output import fail, say

tracking = lazy("tracking")  # package modules load when a command runs, so `mlsd --help` stays fast

commands = Commands("mlflow", "MLflow tools on the course's tracking store.", "uv run mlsd mlflow ui")


@commands.command(
    "ui",
    "Run the MLflow UI on the local store (or print the address of the tracking server in "
    "MLFLOW_TRACKING_URI).",
    "uv run mlsd mlflow ui --port 5000",
)
@Option("--port", type=int, default=5000, help="port to listen on (default: 5000)")
@Option("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1, this computer)")
def ui(args: argparse.Namespace) -> int:
    ui = tracking.mlflow_ui(port=args.port, host=args.host)
    if ui.command is None:
        print(f"MLFLOW_TRACKING_URI points at a tracking server: open {ui.url} in a browser.")
        return 0
    if ui.port_in_use:
        return fail(f"Port {args.port} is in use (another MLflow UI?): open {ui.url} or pass --port.")
    say(f"MLflow UI on {ui.url} for {ui.store} (Ctrl-C to stop).")
    return ui.run()
