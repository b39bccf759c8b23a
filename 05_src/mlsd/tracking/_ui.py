"""The MLflow UI on the course's store (``mlsd mlflow ui``): start it, know when it answers, stop it whole."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import psutil

from mlsd.config import get_settings
from mlsd.db import port_in_use
from mlsd.errors import MLSDError
from mlsd.tracking._store import _local_dirs, artifact_root, tracking_uri

if TYPE_CHECKING:
    from mlsd.config import Settings

GENAI_NOTE = (
    'MLflow 3 opens on its "GenAI" view: the course\'s runs are under "Model training" (the switch at '
    "the top left), or follow the experiment's link, which opens its runs there."
)
"""Where the course's runs are in MLflow 3's UI, for whoever prints the address."""


def _ui_command(uri: str, port: int, host: str) -> list[str]:
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri]
    root = artifact_root(uri)
    if root:
        command += ["--default-artifact-root", root]
    return command + ["--host", host, "--port", str(port), "--workers", "1"]


def _get_json(url: str, timeout: float = 5.0, data: dict | None = None) -> dict:
    body = None if data is None else json.dumps(data).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (the course's own UI)
        return json.loads(response.read() or b"{}")


def experiment_page(url: str, name: str | None = None, timeout: float = 5.0) -> tuple[str, str] | None:
    """The runs of an experiment on the MLflow server at ``url``: ``(name, page URL)``, or ``None``.

    ``name`` when it exists; otherwise the experiment updated last that is not MLflow's empty
    ``Default``. Read over MLflow's REST API, so it works for any tracking server. The page is
    the experiment's runs in MLflow 3's "Model training" view (its "GenAI" view, where the UI
    opens, shows traces and no runs).
    """
    api = f"{url.rstrip('/')}/api/2.0/mlflow/experiments"
    found = None
    with contextlib.suppress(urllib.error.URLError, OSError, ValueError):
        if name:
            query = urllib.parse.urlencode({"experiment_name": name})
            found = _get_json(f"{api}/get-by-name?{query}", timeout).get("experiment")
        if not found:
            search = {"max_results": 5, "order_by": ["last_update_time DESC"], "view_type": "ACTIVE_ONLY"}
            candidates = _get_json(f"{api}/search", timeout, data=search).get("experiments", [])
            found = next((e for e in candidates if e.get("name") != "Default"), None)
    if not found:
        return None
    page = f"{url.rstrip('/')}/#/experiments/{found['experiment_id']}/runs?workflowType=machine_learning"
    return found["name"], page


@dataclass
class UIServer:
    """A running MLflow UI: its process (the leader of its own process group), address and log."""

    process: subprocess.Popen
    url: str
    log_path: Path
    _stopped: bool = field(default=False, repr=False)

    def answers(self) -> bool:
        """Whether the UI answers HTTP requests (``/health``)."""
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:  # noqa: S310
                return response.status == 200
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def wait_until_ready(
        self, timeout: float = 180.0, on_wait: Callable[[float], None] | None = None
    ) -> None:
        """Block until the UI answers; ``on_wait(seconds)`` is called while waiting.

        Raises
        ------
        MLSDError
            When the server exits first or does not answer within ``timeout`` (with its log's end).
        """
        started = time.monotonic()
        while not self.answers():
            waited = time.monotonic() - started
            if self.process.poll() is not None or waited > timeout:
                self.stop()
                happened = (
                    f"exited with code {self.process.returncode}"
                    if self.process.returncode is not None and waited <= timeout
                    else f"did not answer within {timeout:.0f} s"
                )
                raise MLSDError(
                    f"The MLflow UI {happened}. Its log ({self.log_path}) ends with:\n{self.log_tail()}"
                )
            if on_wait:
                on_wait(waited)
            time.sleep(0.5)

    def log_tail(self, characters: int = 1500) -> str:
        """The end of the server's log."""
        if not self.log_path.is_file():
            return "(no log)"
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-characters:].strip()

    def wait(self) -> int:
        """Wait for the server to exit; return its exit code."""
        return self.process.wait()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server and every process it started (``mlflow ui`` runs uvicorn as a child)."""
        if self._stopped:
            return
        self._stopped = True
        try:
            procs = [psutil.Process(self.process.pid)]
            procs += procs[0].children(recursive=True)
        except psutil.NoSuchProcess:
            procs = []
        _signal_group(self.process.pid, signal.SIGTERM, procs)
        _, alive = psutil.wait_procs(procs, timeout=timeout)
        if alive:
            _signal_group(self.process.pid, getattr(signal, "SIGKILL", signal.SIGTERM), alive)
            psutil.wait_procs(alive, timeout=5)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=1)


def _signal_group(leader: int, signum: int, procs: list[psutil.Process]) -> None:
    """Send ``signum`` to the process group ``leader`` leads (POSIX) and to each of ``procs``."""
    if hasattr(os, "killpg"):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(leader, signum)
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(signum)


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
    log_path : Path or None
        Where :meth:`start` writes the server's output.
    """

    store: str
    url: str
    command: list[str] | None
    port_in_use: bool = False
    log_path: Path | None = None

    def start(self) -> UIServer:
        """Start the UI in a process group of its own (creating the local store's folders); do not wait.

        Stop it with :meth:`UIServer.stop`, which ends the whole group: a UI left listening on
        the port after its parent was stopped makes the next ``mlsd mlflow ui`` fail.
        """
        if self.command is None:
            raise ValueError(
                f"{self.store} is a tracking server: open {self.url}, there is nothing to start."
            )
        for folder in _local_dirs(self.store):
            folder.mkdir(parents=True, exist_ok=True)
        log_path = self.log_path or Path(os.devnull)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        # The UI needs no job runner (it serves GenAI evaluation jobs, and would start eight processes).
        env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"} | dict(os.environ)
        group = {"start_new_session": True} if os.name != "nt" else {"creationflags": 0x00000200}
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                self.command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, **group
            )
        return UIServer(process, self.url, log_path)

    def run(self) -> int:
        """Serve the UI until Ctrl-C or SIGTERM; the server and its children end with it (0 on Ctrl-C)."""
        server = self.start()
        try:
            return server.wait()
        except KeyboardInterrupt:
            return 0
        finally:
            server.stop()


def mlflow_ui(port: int = 5000, host: str = "127.0.0.1", *, settings: Settings | None = None) -> MlflowUI:
    """The MLflow UI on the course's store: its address, and the command that serves it.

    With a local store the command is ``mlflow ui --backend-store-uri <store>
    --default-artifact-root <artifacts> --host HOST --port PORT``; start it with
    :meth:`MlflowUI.start` (``mlsd mlflow ui`` does), which logs to ``<log dir>/mlflow-ui.log``.
    When ``MLFLOW_TRACKING_URI`` points at a tracking server, that server already is the UI:
    ``command`` is ``None`` and ``url`` is the server.

    Examples
    --------
    >>> from mlsd.config import get_settings
    >>> ui = mlflow_ui(settings=get_settings(mlflow_tracking_uri="http://tracking.example:5000"))
    >>> ui.url, ui.command
    ('http://tracking.example:5000', None)
    """
    settings = settings or get_settings()
    uri = tracking_uri(settings)
    if urlsplit(uri).scheme in {"http", "https"}:
        return MlflowUI(uri, uri, None)
    return MlflowUI(
        uri,
        f"http://{host}:{port}",
        _ui_command(uri, port, host),
        port_in_use(port, host),
        settings.log_dir / "mlflow-ui.log",
    )
