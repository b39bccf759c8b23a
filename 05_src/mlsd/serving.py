"""Serving the registered model: batch scores into PostgreSQL, online predictions over HTTP.

The book's chapter 7 ("Model Deployment and Prediction Service") contrasts the two ways a
model meets its users, and this module implements both for the course's champion:

- **Batch** (:func:`score_month`): score every application of a month with the version
  that an alias (``champion``) points at, and write the scores and decisions to
  ``monitoring.prediction_log`` in one transaction. A batch is identified by
  ``batch_id`` (``"2025-04:lending-default:v2"`` by default): scoring it again replaces
  its rows, never duplicates them, so a failed or repeated job is safe to re-run.
- **Online** (:func:`serve`): MLflow's model server (``mlflow models serve``) on the
  version behind the alias, as a subprocess; :class:`ServingClient` posts rows to its
  ``/invocations`` endpoint and turns the server's refusals (a missing column, a wrong
  type, broken JSON: HTTP 400 with a message) into a :class:`ServingError` that says why.

The decision threshold is the registered version's ``threshold`` tag (set by
:func:`mlsd.training.train` from the costs of errors), or 0.5 when the tag is missing.

Example
-------
>>> from mlsd import db, serving
>>> conn = db.connect()  # doctest: +SKIP
>>> serving.score_month(conn, "2025-04")  # doctest: +SKIP
BatchResult(batch_id='2025-04:lending-default:v2', rows=1723, ...)
>>> with serving.serve("lending-default") as server:  # doctest: +SKIP
...     serving.ServingClient(server.url).predict(rows)
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import psutil
import requests
from threadpoolctl import threadpool_limits

from mlsd import tracking
from mlsd.config import get_settings
from mlsd.db import free_port, port_in_use
from mlsd.errors import MLSDError
from mlsd.logging import JobLog

if TYPE_CHECKING:
    from types import ModuleType

    import psycopg2.extensions

    from mlsd.config import Settings

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_THRESHOLD",
    "BatchResult",
    "ModelServer",
    "ServingClient",
    "ServingError",
    "score_month",
    "serve",
]

DEFAULT_MODEL = "lending-default"
"""The registered model that ``mlsd train`` creates."""

DEFAULT_THRESHOLD = 0.5
"""Decision threshold when the model version has no ``threshold`` tag."""


class ServingError(MLSDError):
    """The model server refused a request or could not start.

    Attributes
    ----------
    status_code : int or None
        The HTTP status (None when the server never answered).
    message : str
        The server's own explanation.
    """

    def __init__(self, message: str, status_code: int | None = None, server_message: str = ""):
        super().__init__(message)
        self.status_code = status_code
        self.message = server_message or message


# -- batch ---------------------------------------------------------------------------------


@dataclass
class BatchResult:
    """One batch written to the prediction log.

    Attributes
    ----------
    batch_id : str
        The idempotency key: scoring the same batch id again replaces these rows.
    model_name, model_version : str
        What scored it.
    month : str
        The applications' month.
    rows : int
        Predictions written.
    threshold : float
        Score at or above which ``decision`` is 1 (flag / decline).
    flagged : int
        Rows with ``decision = 1``.
    load_seconds, score_seconds, write_seconds : float
        Time to load the model, to score, and to write the log.
    """

    batch_id: str
    model_name: str
    model_version: str
    month: str
    rows: int
    threshold: float
    flagged: int
    load_seconds: float
    score_seconds: float
    write_seconds: float

    @property
    def rows_per_second(self) -> float:
        """Rows scored and written per second (model loading excluded)."""
        return self.rows / max(self.score_seconds + self.write_seconds, 1e-9)


def _mlflow() -> ModuleType:
    """MLflow, imported on first use: it takes seconds, and ``import mlsd.serving`` should not."""
    import mlflow

    return mlflow


def _batch_scoring() -> tuple[ModuleType, ModuleType, ModuleType]:
    """What batch scoring reads, scores and writes with. These modules load scikit-learn, which a client of
    the model server (:class:`ServingClient`) does without, so they are imported when a batch is scored."""
    from mlsd import features, monitoring, training

    return features, monitoring, training


def _threshold(tags: dict[str, str] | None) -> float:
    value = (tags or {}).get("threshold")
    try:
        threshold = float(value)
    except (TypeError, ValueError):
        return DEFAULT_THRESHOLD
    return threshold if 0.0 <= threshold <= 1.0 else DEFAULT_THRESHOLD


def score_month(
    conn: psycopg2.extensions.connection,
    month: str,
    *,
    model_name: str = DEFAULT_MODEL,
    alias: str = "champion",
    batch_id: str | None = None,
    threshold: float | None = None,
    threads: int | None = 1,
) -> BatchResult:
    """Score the applications of ``month`` with ``models:/model_name@alias`` and log the predictions.

    Reads ``gold.application_features`` for the month, scores it with the version the
    alias points at (resolved once, so an alias moved meanwhile cannot mix versions in
    one batch), and writes to ``monitoring.prediction_log`` (via
    :func:`mlsd.monitoring.log_predictions`): ``application_id``, ``score``, ``decision``,
    model name and version, ``batch_id``, ``predicted_at`` (one time for the batch) and
    ``latency_ms`` (the batch's scoring time divided by its rows). The delete of an earlier
    copy of the batch and the insert are one transaction.

    Each step (``load_model``, ``read``, ``score``, ``write``) is a structured record of job
    ``score`` in ``monitoring.job_log`` (:class:`mlsd.logging.JobLog`), keyed by the batch
    id, with the model version, row counts and seconds: query them to see when a batch ran,
    with which version, and how long each step took.

    Parameters
    ----------
    conn : psycopg2 connection
        The course database.
    month : str
        ``'YYYY-MM'``.
    model_name, alias : str
        The registered model and alias to score with.
    batch_id : str, optional
        Idempotency key; ``f"{month}:{model_name}:v{version}"`` by default, so the same
        month scored by another version is another batch.
    threshold : float, optional
        Overrides the version's ``threshold`` tag (0.5 when it has none).
    threads : int or None
        BLAS/OpenMP threads for scoring (``None``: the libraries' default). One by default,
        as in :func:`mlsd.training.train`: a month scores in well under a second on one
        thread, while on a busy machine OpenMP threads that wait for each other slow
        gradient boosting by an order of magnitude.

    Returns
    -------
    BatchResult

    Raises
    ------
    ServingError
        When the month has no applications.
    mlsd.tracking.RegistryError
        When the model or alias does not exist.
    """
    features, monitoring, training = _batch_scoring()
    started = time.perf_counter()
    version = tracking.get_model_version(model_name, alias)
    batch = batch_id or f"{month}:{model_name}:v{version.version}"
    job = JobLog(conn, "score", run_key=batch, model_name=model_name)
    fields = {"model_version": str(version.version), "batch_id": batch}
    with job.step("load_model", **fields, alias=alias), tracking.quiet():
        model = _mlflow().sklearn.load_model(f"models:/{model_name}/{version.version}")
    loaded = time.perf_counter()
    with job.step("read", **fields, month=month) as step:
        frame = features.gold_features(conn, month=month)
        step["rows"] = len(frame)
        if frame.empty:
            raise ServingError(
                f"gold.application_features has no applications in {month!r}: load the data "
                "(`uv run mlsd data load`) or pick a month between 2024-01 and 2026-06 (the default timeline)."
            )
    cut = threshold if threshold is not None else _threshold(version.tags)
    with job.step("score", **fields, rows=len(frame), threshold=float(cut)):
        begin = time.perf_counter()
        with threadpool_limits(limits=threads):
            scores = model.predict_proba(training.model_input(frame))[:, 1]
        score_seconds = time.perf_counter() - begin
    predictions = pd.DataFrame(
        {
            "application_id": frame["application_id"].astype(str),
            "score": scores.astype(float),
            "decision": (scores >= cut).astype(int),
            "predicted_at": pd.Timestamp.now(tz="UTC"),
            "latency_ms": 1000.0 * score_seconds / len(frame),
        }
    )
    flagged = int(predictions["decision"].sum())
    with job.step("write", **fields, flagged=flagged) as step:
        begin = time.perf_counter()
        rows = monitoring.log_predictions(conn, predictions, model_name, str(version.version), batch)
        write_seconds = time.perf_counter() - begin
        step["rows"] = rows
    return BatchResult(
        batch_id=batch,
        model_name=model_name,
        model_version=str(version.version),
        month=month,
        rows=rows,
        threshold=float(cut),
        flagged=flagged,
        load_seconds=loaded - started,
        score_seconds=score_seconds,
        write_seconds=write_seconds,
    )


# -- online --------------------------------------------------------------------------------


def _summary(message: str) -> str:
    """The gist of an MLflow error message, which may start with a dump of the whole input.

    ``"Failed to predict data '<frame>'. Error: ... Error: Model is missing inputs ['age']."``
    becomes ``"Model is missing inputs ['age']."``.
    """
    if message.startswith("Failed to") and "Error: " in message:
        message = message.rsplit("Error: ", 1)[1]
    lines = message.strip().splitlines()
    return lines[0][:500] if lines else ""


def _server_message(response) -> str:
    """The explanation in an MLflow server error response (JSON ``message``, or the body)."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:1000]
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"]).strip()
    return json.dumps(body)[:1000]


class ServingClient:
    """A client for MLflow's model server: ``predict(frame) -> positive-class scores``.

    Parameters
    ----------
    url : str
        The server's base URL, e.g. ``http://127.0.0.1:5001``.
    timeout : float
        Seconds to wait for an answer.

    Examples
    --------
    >>> client = ServingClient("http://127.0.0.1:5001")  # doctest: +SKIP
    >>> client.predict(model_input(rows))  # doctest: +SKIP
    array([0.031, 0.412])
    """

    def __init__(self, url: str, timeout: float = 30.0):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()  # keeps the connection open between requests

    def ping(self) -> bool:
        """True when the server answers ``/ping`` with 200 (the model is loaded)."""
        try:
            return self._session.get(f"{self.url}/ping", timeout=min(self.timeout, 5)).status_code == 200
        except requests.RequestException:
            return False

    def request(self, payload: dict | str) -> Any:
        """POST ``payload`` (a dict, or raw JSON text) to ``/invocations``; return the parsed answer.

        Raises
        ------
        ServingError
            For a 4xx/5xx answer, with the server's message; or when the server is unreachable.
        """
        body = payload if isinstance(payload, str) else json.dumps(payload, allow_nan=False)
        try:
            response = self._session.post(
                f"{self.url}/invocations",
                data=body.encode("utf-8"),
                headers={"Content-Type": "application/json"},
                timeout=self.timeout,
            )
        except requests.RequestException as err:
            raise ServingError(
                f"The model server at {self.url} is not reachable ({type(err).__name__}): start it with "
                "`uv run mlsd serve` and check the URL."
            ) from None
        if response.status_code >= 400:
            message = _server_message(response)
            kind = "rejected the request" if response.status_code < 500 else "failed"
            raise ServingError(
                f"The model server {kind} (HTTP {response.status_code}): {_summary(message)}",
                status_code=response.status_code,
                server_message=message,
            )
        return response.json()

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Scores (probability of the positive class) for the rows of ``frame``.

        The frame is sent as ``{"dataframe_split": ...}``; missing values become JSON
        ``null`` and timestamps ISO strings (time-zone-aware ones are converted to naive
        UTC first, as the model's signature expects). Use
        :func:`mlsd.training.model_input` to build the frame from gold rows.
        """
        frame = frame.copy()
        for column in frame.columns:
            if isinstance(frame[column].dtype, pd.DatetimeTZDtype):
                frame[column] = frame[column].dt.tz_convert("UTC").dt.tz_localize(None)
        split = frame.to_json(orient="split", date_format="iso", index=False, date_unit="us")
        answer = self.request('{"dataframe_split": ' + split + "}")
        predictions = np.asarray(answer["predictions"] if isinstance(answer, dict) else answer, dtype=float)
        return predictions[:, -1] if predictions.ndim == 2 else predictions

    def close(self) -> None:
        """Close the HTTP session."""
        self._session.close()


@dataclass
class ModelServer:
    """A running ``mlflow models serve`` process (see :func:`serve`); a context manager.

    Attributes
    ----------
    url : str
        Base URL, e.g. ``http://127.0.0.1:5001``.
    model_uri : str
        ``models:/<name>/<version>``: the version the alias pointed at when it started.
    version : str
        That version.
    process : subprocess.Popen
        The server process.
    log_path : pathlib.Path
        Its output (uvicorn's access log and any traceback).
    started : float
        ``time.monotonic()`` when the process was launched.
    ready_seconds : float or None
        Seconds from launch until ``/ping`` first answered (``None`` until then).
    """

    url: str
    model_uri: str
    version: str
    process: subprocess.Popen
    log_path: Path
    started: float = field(default_factory=time.monotonic)
    ready_seconds: float | None = None

    def wait(self, timeout: float = 120.0) -> ModelServer:
        """Wait until the server answers ``/ping``; return it.

        Raises
        ------
        ServingError
            When the server exits or does not answer within ``timeout`` seconds (with the end
            of its log); the server is stopped.
        """
        if self.ready_seconds is not None:
            return self
        client = ServingClient(self.url, timeout=5)
        deadline = time.monotonic() + timeout
        try:
            while not client.ping():
                if self.process.poll() is not None:
                    raise ServingError(
                        f"The model server for {self.model_uri} exited with code {self.process.returncode}. "
                        f"End of {self.log_path}:\n{_tail(self.log_path)}"
                    )
                if time.monotonic() > deadline:
                    self.stop()
                    raise ServingError(
                        f"The model server for {self.model_uri} did not answer on {self.url} within "
                        f"{timeout:.0f} s. End of {self.log_path}:\n{_tail(self.log_path)}"
                    )
                time.sleep(0.25)
        finally:
            client.close()
        self.ready_seconds = time.monotonic() - self.started
        return self

    def client(self, timeout: float = 30.0) -> ServingClient:
        """A :class:`ServingClient` for this server."""
        return ServingClient(self.url, timeout=timeout)

    def running(self) -> bool:
        """True while the server process is alive."""
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server and the processes it started (terminate, then kill after ``timeout``)."""
        if self.process.poll() is not None:
            return
        try:
            family = [psutil.Process(self.process.pid)]
            family += family[0].children(recursive=True)
        except psutil.NoSuchProcess:
            family = []
        for proc in family:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.terminate()
        _, alive = psutil.wait_procs(family, timeout=timeout)
        for proc in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        self.process.wait(timeout=timeout)

    def __enter__(self) -> ModelServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def serve(
    model_name: str = DEFAULT_MODEL,
    alias: str = "champion",
    port: int = 5001,
    host: str = "127.0.0.1",
    *,
    settings: Settings | None = None,
    workers: int = 1,
    threads: int | None = 1,
    timeout: float = 120.0,
    wait: bool = True,
) -> ModelServer:
    """Start MLflow's model server on ``models:/model_name@alias`` and wait until it answers.

    Runs ``mlflow models serve -m models:/<name>/<version> --env-manager local --host HOST
    --port PORT --workers N`` as a subprocess, with the version the alias points at now (a
    server loads its model once: restart it to serve a new champion). ``--env-manager
    local`` serves from this environment, which holds the course package the pipeline's
    transformers come from (MLflow 3 would otherwise build a virtualenv, needing the
    network). The server's output goes to ``<log_dir>/model-server-<port>.log``.

    Parameters
    ----------
    model_name, alias : str
        What to serve.
    port, host : int, str
        Where to listen; ``127.0.0.1`` keeps it on this computer. Port 0 picks a free port
        (read it from ``.url``).
    settings : Settings, optional
        Tracking store and log folder.
    workers : int
        Uvicorn worker processes: scale a server with workers, not threads.
    threads : int or None
        BLAS/OpenMP threads per worker (``OMP_NUM_THREADS`` and friends); one by default,
        since a request of a few rows gains nothing from threads and waiting threads
        lengthen the latency tail. ``None`` leaves the environment as it is.
    timeout : float
        Seconds to wait for ``/ping`` to answer 200.
    wait : bool
        Wait for the server here (default). ``False`` returns at once, so that other work runs
        while the server starts (it is a new Python process that imports MLflow and loads the
        model); call :meth:`ModelServer.wait` before the first request.

    Returns
    -------
    ModelServer
        Use ``.url``, ``.client()`` and ``.stop()`` (or a ``with`` block).

    Raises
    ------
    ServingError
        When the port is taken, or the server exits or does not answer in time (with the
        end of its log).
    mlsd.tracking.RegistryError
        When the model or alias does not exist.
    """
    settings = settings or get_settings()
    uri = tracking.tracking_uri(settings)
    version = str(tracking.get_model_version(model_name, alias, uri=uri).version)
    port = port or free_port(host)
    if port_in_use(port, host):
        raise ServingError(
            f"Port {port} on {host} is in use (another model server?): stop it, or pass another port (--port)."
        )
    model_uri = f"models:/{model_name}/{version}"
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.log_dir / f"model-server-{port}.log"
    env = dict(os.environ)
    env["MLFLOW_TRACKING_URI"] = uri
    env["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    if threads is not None:
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[name] = str(threads)
    # MLflow starts the server as `uvicorn ...` found on PATH: put this environment's scripts first.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    command = [
        sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri,
        "--env-manager", "local", "--host", host, "--port", str(port), "--workers", str(workers),
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    server = ModelServer(f"http://{host}:{port}", model_uri, version, process, log_path)
    atexit.register(server.stop)  # a server never outlives the Python process (a kernel) that started it
    return server.wait(timeout) if wait else server
