"""``mlsd mlflow``: MLflow tools on the course's tracking store (:mod:`mlsd.tracking`)."""

from __future__ import annotations

import argparse

from mlsd.cli._commands import Commands, Option, lazy
from mlsd.cli._output import fail, say
from mlsd.cli._progress import QUIET, Progress

tracking = lazy("tracking")  # package modules load when a command runs, so `mlsd --help` stays fast

commands = Commands("mlflow", "MLflow tools on the course's tracking store.", "uv run mlsd mlflow ui")

TRAINING_EXPERIMENT = "lending-default"  # what `mlsd train` logs to (its --experiment default)


def _where_the_runs_are(url: str, experiment: str | None) -> None:
    found = tracking.experiment_page(url, experiment or TRAINING_EXPERIMENT)
    if found:
        say(f"  runs of experiment {found[0]!r}: {found[1]}")
    say(f"  {tracking.GENAI_NOTE}")


@commands.command(
    "ui",
    "Run the MLflow UI on the local store (or print the address of the tracking server in "
    "MLFLOW_TRACKING_URI), until Ctrl-C.",
    "uv run mlsd mlflow ui --port 5000",
)
@Option("--port", type=int, default=5000, help="port to listen on (default: 5000)")
@Option("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1, this computer)")
@Option("--experiment", help="experiment to link to (default: lending-default, else the latest one)")
@QUIET
def ui(args: argparse.Namespace) -> int:
    ui = tracking.mlflow_ui(port=args.port, host=args.host)
    if ui.command is None:
        say(f"MLFLOW_TRACKING_URI points at a tracking server: open {ui.url} in a browser.")
        _where_the_runs_are(ui.url, args.experiment)
        return 0
    if ui.port_in_use:
        return fail(f"Port {args.port} is in use (another MLflow UI?): open {ui.url} or pass --port.")
    server = ui.start()
    try:
        with Progress.for_args(args) as progress:
            progress.start(f"starting the MLflow UI (log: {server.log_path})")
            server.wait_until_ready()
            progress.clear()
        say(f"MLflow UI on {ui.url} for {ui.store} (Ctrl-C to stop).")
        _where_the_runs_are(ui.url, args.experiment)
        code = server.wait()
        return (
            fail(f"The MLflow UI stopped with exit code {code}; its log is {server.log_path}.") if code else 0
        )
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (mlsd turns it into the same): the usual way to stop
        say("Stopping the MLflow UI.")
        return 0
    finally:
        server.stop()
