"""Where runs go: the tracking URI, the local store's folders, experiments, and quiet MLflow calls."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from mlsd.config import get_settings

if TYPE_CHECKING:
    from types import ModuleType

    from mlsd.config import Settings

DEFAULT_EXPERIMENT = "mlsd"
"""Experiment used when a function is given none (MLflow's own ``Default`` would put artifacts in ./mlruns)."""


def _mlflow() -> ModuleType:
    """MLflow, imported on first use: it takes seconds, and ``import mlsd.tracking`` should not."""
    import mlflow

    return mlflow


def tracking_uri(settings: Settings | None = None) -> str:
    """The MLflow tracking URI: ``MLFLOW_TRACKING_URI`` if set, else the course's local SQLite store.

    Parameters
    ----------
    settings : Settings, optional
        Resolved settings (:func:`mlsd.config.get_settings` when omitted).

    Returns
    -------
    str
        E.g. ``http://localhost:5000`` (a tracking server) or
        ``sqlite:////home/me/course/05_src/data/mlflow/mlflow.db``.

    Examples
    --------
    >>> from mlsd.config import get_settings
    >>> tracking_uri(get_settings(mlflow_tracking_uri="http://localhost:5000"))
    'http://localhost:5000'
    """
    settings = settings or get_settings()
    if settings.mlflow_tracking_uri:
        return settings.mlflow_tracking_uri
    return f"sqlite:///{(settings.data_dir / 'mlflow' / 'mlflow.db').as_posix()}"


def _sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (None for other URIs and in-memory databases)."""
    if not uri.startswith("sqlite:///"):
        return None
    path = unquote(uri[len("sqlite:///") :].split("?", 1)[0])
    return None if not path or path == ":memory:" else Path(path)


def artifact_root(uri: str) -> str | None:
    """Where new experiments of a SQLite store keep their artifacts (``None``: the store decides).

    For ``sqlite:///path/to/mlflow.db`` it is ``path/to/artifacts``, as a ``file://`` URI, so the
    database and its artifacts travel together. A tracking server picks its own location.

    Examples
    --------
    >>> artifact_root("sqlite:////tmp/course/mlflow.db")
    'file:///tmp/course/artifacts'
    >>> artifact_root("http://localhost:5000") is None
    True
    """
    path = _sqlite_path(uri)
    return None if path is None else (path.parent / "artifacts").resolve().as_uri()


def _local_dirs(uri: str) -> list[Path]:
    """Folders a SQLite store needs: the database's folder and the artifact root."""
    path = _sqlite_path(uri)
    return [] if path is None else [path.parent, path.parent / "artifacts"]


def configure(settings: Settings | None = None) -> str:
    """Point MLflow at :func:`tracking_uri` (creating the local store's folders) and return the URI.

    Call it once before logging; functions here that log call it when MLflow has no
    tracking URI yet. MLflow also exports the URI as ``MLFLOW_TRACKING_URI``, so
    subprocesses (a model server, ``mlflow ui``) use the same store.

    Examples
    --------
    >>> configure()  # doctest: +SKIP
    'sqlite:////home/me/course/05_src/data/mlflow/mlflow.db'
    """
    mlflow = _mlflow()
    uri = tracking_uri(settings)
    for folder in _local_dirs(uri):
        folder.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    return uri


def _ensure_configured() -> str:
    mlflow = _mlflow()
    if not mlflow.is_tracking_uri_set():
        return configure()
    uri = mlflow.get_tracking_uri()
    for folder in _local_dirs(uri):
        folder.mkdir(parents=True, exist_ok=True)
    return uri


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence MLflow's (and alembic's) log messages below ERROR, its warnings and progress bars, for a block.

    The course's functions use it around their MLflow calls; use it around yours::

        with tracking.quiet():
            mlflow.log_figure(fig, "figures/extra.png")

    Logger levels and the environment are restored afterwards: nothing is configured for good.
    """
    loggers = [logging.getLogger(name) for name in ("mlflow", "alembic")]
    levels = [logger.level for logger in loggers]
    bar = os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    try:
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=r"mlflow(\..*)?$")
            warnings.filterwarnings("ignore", category=FutureWarning, module=r"sklearn(\..*)?$")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
        if bar is None:
            os.environ.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", None)
        else:
            os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = bar


def get_or_create_experiment(name: str, artifact_location: str | None = None) -> str:
    """The id of experiment ``name``, creating it (or restoring it from the bin) if needed.

    Parameters
    ----------
    name : str
        Experiment name, e.g. ``"lending-default"``.
    artifact_location : str, optional
        Where its runs keep artifacts. For a local store it defaults to
        ``<artifact root>/<name>`` beside the database (see :func:`artifact_root`);
        a tracking server chooses its own.

    Returns
    -------
    str
        The experiment id.
    """
    mlflow = _mlflow()
    uri = _ensure_configured()
    with quiet():
        client = mlflow.tracking.MlflowClient()
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            if experiment.lifecycle_stage == "deleted":
                client.restore_experiment(experiment.experiment_id)
            return experiment.experiment_id
        if artifact_location is None:
            root = artifact_root(uri)
            if root:
                artifact_location = f"{root}/{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}"
        return mlflow.create_experiment(name, artifact_location=artifact_location)


@contextlib.contextmanager
def _run(experiment: str | None, run_name: str | None, tags: Mapping[str, Any] | None):
    """A run in ``experiment``, or a child of the active run when there is one."""
    mlflow = _mlflow()
    _ensure_configured()
    active = mlflow.active_run()
    if active is not None:
        with mlflow.start_run(
            experiment_id=active.info.experiment_id, run_name=run_name, nested=True, tags=dict(tags or {})
        ) as run:
            yield run
        return
    experiment_id = get_or_create_experiment(experiment or DEFAULT_EXPERIMENT)
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=dict(tags or {})) as run:
        yield run
