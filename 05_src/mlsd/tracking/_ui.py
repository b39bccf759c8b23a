"""The MLflow UI on the course's store (``mlsd mlflow ui``)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from mlsd.db import port_in_use
from mlsd.tracking._store import _local_dirs, artifact_root, tracking_uri

if TYPE_CHECKING:
    from mlsd.config import Settings


def _ui_command(uri: str, port: int, host: str) -> list[str]:
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri]
    root = artifact_root(uri)
    if root:
        command += ["--default-artifact-root", root]
    return command + ["--host", host, "--port", str(port), "--workers", "1"]


@dataclass(frozen=True)
class MlflowUI:
    """Where to see the course's runs, and how to start the MLflow UI there (see :func:`mlflow_ui`).

    Attributes
    ----------
    store : str
        The tracking URI.
    url : str
        The address to open in a browser.
    command : list of str or None
        The command that serves the UI; ``None`` when ``store`` is a tracking server, which
        already is its own UI.
    port_in_use : bool
        Whether something already listens on the UI's port (another MLflow UI?).
    """

    store: str
    url: str
    command: list[str] | None
    port_in_use: bool = False

    def run(self) -> int:
        """Serve the UI until Ctrl-C (creating the local store's folders); return its exit code (0 on Ctrl-C)."""
        if self.command is None:
            raise ValueError(
                f"{self.store} is a tracking server: open {self.url}, there is nothing to start."
            )
        for folder in _local_dirs(self.store):
            folder.mkdir(parents=True, exist_ok=True)
        # The UI needs no job runner (it serves GenAI evaluation jobs, and would start eight processes).
        env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"} | dict(os.environ)
        try:
            return subprocess.call(self.command, env=env)
        except KeyboardInterrupt:
            return 0


def mlflow_ui(port: int = 5000, host: str = "127.0.0.1", *, settings: Settings | None = None) -> MlflowUI:
    """The MLflow UI on the course's store: its address, and the command that serves it.

    With a local store the command is ``mlflow ui --backend-store-uri <store>
    --default-artifact-root <artifacts> --host HOST --port PORT``; start it with
    :meth:`MlflowUI.run` (``mlsd mlflow ui`` does). When ``MLFLOW_TRACKING_URI`` points at a
    tracking server, that server already is the UI: ``command`` is ``None`` and ``url`` is the server.

    Examples
    --------
    >>> from mlsd.config import get_settings
    >>> ui = mlflow_ui(settings=get_settings(mlflow_tracking_uri="http://tracking.example:5000"))
    >>> ui.url, ui.command
    ('http://tracking.example:5000', None)
    """
    uri = tracking_uri(settings)
    if urlsplit(uri).scheme in {"http", "https"}:
        return MlflowUI(uri, uri, None)
    return MlflowUI(uri, f"http://{host}:{port}", _ui_command(uri, port, host), port_in_use(port, host))
