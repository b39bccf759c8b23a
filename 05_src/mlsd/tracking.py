"""Experiment tracking with MLflow: where runs go, cross-validation runs, tuning, the model registry.

The book's chapter 6 ("Model Development and Offline Evaluation") asks for every
experiment to be tracked so it can be compared and reproduced. This module is the
course's thin layer over MLflow 3:

- **Where runs go.** :func:`tracking_uri` resolves ``MLFLOW_TRACKING_URI`` (a tracking
  server, e.g. the Docker compose one) or, by default, a local store: a SQLite
  database ``<data_dir>/mlflow/mlflow.db`` with artifacts beside it in
  ``<data_dir>/mlflow/artifacts`` (MLflow 3 refuses the old ``./mlruns`` file store
  unless told otherwise, and recommends a database). :func:`configure` points MLflow
  at it; nothing happens at import.
- **Runs.** :func:`cross_validate_and_log` cross-validates a pipeline and logs its
  parameters, per-fold and mean scores, a precision-recall curve of the out-of-fold
  predictions and the refitted model. :func:`tune` searches hyperparameters (grid,
  random or successive halving, optionally on a Dask cluster) and logs each
  candidate as a child run.
- **Models.** Scikit-learn models are saved with skops (MLflow's safe default), which
  loads only types it is told to trust: :func:`trusted_types` lists them.
  :func:`register_model`, :func:`set_alias`, :func:`promote` and :func:`load_model`
  manage versions with the aliases ``champion`` and ``challenger`` (MLflow's stages
  are deprecated).

Example
-------
>>> from sklearn.linear_model import LogisticRegression
>>> from mlsd import tracking
>>> tracking.configure()  # doctest: +SKIP
>>> result = tracking.cross_validate_and_log(LogisticRegression(), X, y, cv=5, run_name="logreg")  # doctest: +SKIP
>>> version = tracking.register_model(result.model_uri, "lending-default")  # doctest: +SKIP
>>> tracking.promote("lending-default", version)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import numpy as np
import pandas as pd

from mlsd.errors import MLSDError

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.models import ModelSignature

    from mlsd.config import Settings

__all__ = [
    "ALIASES",
    "DEFAULT_EXPERIMENT",
    "DEFAULT_SCORING",
    "TRUSTED_PREFIXES",
    "CVResult",
    "RegistryError",
    "TuneResult",
    "MlflowUI",
    "artifact_root",
    "configure",
    "cross_validate_and_log",
    "flatten_params",
    "get_model_version",
    "get_or_create_experiment",
    "load_model",
    "mlflow_ui",
    "model_signature",
    "pr_curve_figure",
    "promote",
    "quiet",
    "register_model",
    "set_alias",
    "tracking_uri",
    "trusted_types",
    "tune",
]

DEFAULT_EXPERIMENT = "mlsd"
"""Experiment used when a function is given none (MLflow's own ``Default`` would put artifacts in ./mlruns)."""

DEFAULT_SCORING: dict[str, str] = {"pr_auc": "average_precision", "roc_auc": "roc_auc"}
"""Metric name -> scikit-learn scorer. The first one is the main metric (PR-AUC: about 7% positives)."""

ALIASES = ("champion", "challenger", "previous")
"""Registry aliases the course uses: the model in production, the one competing with it, and the last champion."""

TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "mlsd.")
"""Modules whose types :func:`trusted_types` lets skops load; anything else is refused."""

_PARAM_LENGTH = 250


class RegistryError(MLSDError, LookupError):
    """A registered model or alias does not exist."""


# -- where runs go -------------------------------------------------------------------------


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
    from mlsd.config import get_settings

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
    import mlflow

    uri = tracking_uri(settings)
    for folder in _local_dirs(uri):
        folder.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    return uri


def _ensure_configured() -> str:
    import mlflow

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
    import mlflow
    from mlflow.tracking import MlflowClient

    uri = _ensure_configured()
    with quiet():
        client = MlflowClient()
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
    import mlflow

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


# -- parameters, signatures, trusted types --------------------------------------------------


def _holds_estimator(value) -> bool:
    if hasattr(value, "get_params") and not isinstance(value, type):
        return True
    if isinstance(value, (list, tuple)):
        return any(_holds_estimator(v) for v in value)
    return False


def _param_text(value) -> str:
    if callable(value) and hasattr(value, "__qualname__"):
        return f"{getattr(value, '__module__', '')}.{value.__qualname__}".lstrip(".")
    if isinstance(value, np.generic):
        value = value.item()
    return str(value)


def flatten_params(params: Mapping[str, Any], max_length: int = _PARAM_LENGTH) -> dict[str, str]:
    """Turn ``estimator.get_params(deep=True)`` into MLflow parameters (strings).

    Values that are estimators (or lists of them, like a pipeline's ``steps``) are
    dropped: their own parameters are already in the deep listing. Functions are
    named by module and name (not by their memory address, which changes every run),
    and long values are cut to ``max_length`` characters, ending in ``...``.

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn.linear_model import LogisticRegression
    >>> params = flatten_params(make_pipeline(StandardScaler(), LogisticRegression()).get_params())
    >>> params["logisticregression__C"], "steps" in params
    ('1.0', False)
    """
    out = {}
    for key, value in params.items():
        if _holds_estimator(value):
            continue
        text = _param_text(value)
        if len(text) > max_length:
            text = text[: max_length - 3] + "..."
        out[str(key)[:_PARAM_LENGTH]] = text
    return out


def model_signature(X: pd.DataFrame, proba) -> ModelSignature:
    """The MLflow signature of a classifier that maps ``X`` to class probabilities.

    Inferred from a sample of inputs and outputs, with every input column marked
    *required*: a request without a column is then refused by MLflow with a message
    naming it. (MLflow infers columns that had a missing value in the sample as
    optional, and a missing optional column would only fail later, inside the model,
    with a vague error.) Missing *values* stay allowed in numeric columns.
    """
    from mlflow.models import infer_signature
    from mlflow.types.schema import ColSpec, Schema

    with quiet():
        signature = infer_signature(X, np.asarray(proba))
    if signature.inputs is not None and signature.inputs.has_input_names():
        signature.inputs = Schema(
            [ColSpec(spec.type, spec.name, required=True) for spec in signature.inputs.inputs]
        )
    return signature


def trusted_types(estimator, allowed_prefixes: Sequence[str] = TRUSTED_PREFIXES) -> list[str]:
    """The types skops must be told to trust to load ``estimator`` (for ``log_model``).

    skops, MLflow 3's default format for scikit-learn models, refuses to load a type
    it does not know to be safe: fitted trees (``sklearn.tree._tree.Tree``,
    HistGradientBoosting's ``TreePredictor``), ``numpy.dtype`` and the course's own
    transformers (``mlsd.features.DateParts``) among them. This serialises the fitted
    estimator with skops and lists what it would refuse.

    Parameters
    ----------
    estimator : fitted estimator
        Usually a fitted ``Pipeline``; unfitted models have fewer types to trust.
    allowed_prefixes : sequence of str
        Modules whose types may be trusted. A type from anywhere else (a class defined
        in a notebook, a lambda) raises, instead of being trusted blindly.

    Returns
    -------
    list of str
        Sorted type names, e.g. ``['mlsd.features.DateParts', 'numpy.dtype', ...]``.

    Raises
    ------
    ValueError
        When the estimator holds a type outside ``allowed_prefixes``.

    Examples
    --------
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> trusted_types(DecisionTreeClassifier().fit([[0], [1]], [0, 1]))
    ['sklearn.tree._tree.Tree']
    """
    import skops.io

    untrusted = skops.io.get_untrusted_types(data=skops.io.dumps(estimator))
    refused = sorted(t for t in untrusted if not t.startswith(tuple(allowed_prefixes)))
    if refused:
        raise ValueError(
            f"The model holds types skops will not trust: {refused}. Define custom transformers in a "
            "module (e.g. in mlsd), not in a notebook or as a lambda, or pass allowed_prefixes= if you "
            "trust them."
        )
    return sorted(untrusted)


def _pip_requirements() -> list[str]:
    """Pinned requirements for a logged model (explicit, so MLflow skips its slow inference)."""
    from importlib.metadata import PackageNotFoundError, version

    pins = []
    for package in ("mlflow", "scikit-learn", "skops", "pandas", "numpy", "scipy"):
        try:
            pins.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            pins.append(package)
    return pins


def _log_sklearn_model(model, X: pd.DataFrame, name: str) -> str:
    """Log a fitted classifier with its signature, an input example and trusted types; return its URI."""
    import mlflow.sklearn

    sample = X.head(100)
    signature = model_signature(sample, model.predict_proba(sample))
    with quiet():
        info = mlflow.sklearn.log_model(
            model,
            name=name,
            signature=signature,
            input_example=X.head(5),
            pyfunc_predict_fn="predict_proba",
            skops_trusted_types=trusted_types(model),
            pip_requirements=_pip_requirements(),
        )
    return info.model_uri


# -- figures -------------------------------------------------------------------------------


def pr_curve_figure(y_true, scores, title: str = "Precision-recall curve") -> Figure:
    """Precision-recall curve(s) with the positive rate as the no-skill line.

    Parameters
    ----------
    y_true : array-like of 0/1
        Labels.
    scores : array-like or mapping of name -> array-like
        Scores of one model, or of several to compare. Rows with a missing score
        (e.g. never in a test fold) are left out.
    title : str
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure
    from sklearn.metrics import average_precision_score, precision_recall_curve

    y = np.asarray(y_true).astype(int)
    curves = dict(scores) if isinstance(scores, Mapping) else {"model": scores}
    fig = Figure(figsize=(6, 4.5))
    ax = fig.subplots()
    for name, values in curves.items():
        s = np.asarray(values, dtype=float)
        keep = ~np.isnan(s)
        precision, recall, _ = precision_recall_curve(y[keep], s[keep])
        ap = average_precision_score(y[keep], s[keep])
        ax.plot(recall, precision, drawstyle="steps-post", label=f"{name} (AP {ap:.3f})")
    ax.axhline(y.mean(), color="grey", linestyle=":", label=f"no skill ({y.mean():.3f})")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title=title)
    ax.legend(loc="upper right")
    return fig


def _figure_makers(figures) -> dict[str, Callable]:
    from mlsd.evaluation import calibration_figure

    builtin = {
        "pr_curve": lambda y, s: pr_curve_figure(y, s, "Precision-recall, out-of-fold"),
        "calibration": lambda y, s: calibration_figure(y, s),
    }
    if isinstance(figures, Mapping):
        return dict(figures)
    unknown = [f for f in figures if f not in builtin]
    if unknown:
        raise ValueError(
            f"Unknown figure(s) {unknown}: use {list(builtin)} or a mapping name -> f(y, scores)."
        )
    return {name: builtin[name] for name in figures}


# -- cross-validation runs -----------------------------------------------------------------


@dataclass
class CVResult:
    """What :func:`cross_validate_and_log` logged.

    Attributes
    ----------
    run_id : str
        The MLflow run.
    metrics : dict of str to float
        ``cv_<metric>_mean`` and ``cv_<metric>_std`` for each scorer, and ``fit_time_mean``.
    model_uri : str or None
        ``models:/<model id>`` of the refitted model (None when ``log_model=False``).
    model : estimator or None
        The refitted model, in memory.
    oof_scores : numpy.ndarray
        Out-of-fold positive-class scores (NaN for rows in no test fold).
    """

    run_id: str
    metrics: dict[str, float]
    model_uri: str | None = None
    model: Any = field(default=None, repr=False)
    oof_scores: np.ndarray | None = field(default=None, repr=False)


def _scoring(scoring: Mapping[str, Any] | None) -> dict[str, Any]:
    scoring = dict(DEFAULT_SCORING if scoring is None else scoring)
    if not scoring:
        raise ValueError(
            "scoring is empty: pass a mapping name -> scorer, e.g. {'pr_auc': 'average_precision'}."
        )
    return scoring


def cross_validate_and_log(
    pipeline,
    X: pd.DataFrame,
    y,
    *,
    cv: int | Any = 5,
    scoring: Mapping[str, Any] | None = None,
    run_name: str | None = None,
    experiment: str | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    log_model: bool = True,
    model_name: str = "model",
    figures: Sequence[str] | Mapping[str, Callable] = ("pr_curve",),
    n_jobs: int | None = None,
) -> CVResult:
    """Cross-validate a classifier and log the run to MLflow: parameters, scores, figures, model.

    One MLflow run holds:

    - **parameters**: ``pipeline.get_params()`` flattened (:func:`flatten_params`), then ``params``;
    - **metrics**: ``cv_<metric>_mean`` and ``cv_<metric>_std``, and ``cv_<metric>`` per fold
      (``step`` = fold number, so the UI plots folds), plus ``fit_time_mean``;
    - **figures**: by default a precision-recall curve of the out-of-fold predictions
      (each row scored by the fold model that did not see it), under ``figures/``;
    - **the model**: the pipeline refitted on all of ``X``, logged with
      :func:`mlflow.sklearn.log_model` (skops format, :func:`trusted_types`), its
      signature (:func:`model_signature`) and an input example. Its pyfunc flavour
      predicts probabilities (``predict_proba``), which is what serving needs.

    Out-of-fold predictions come from the fold models that ``cross_validate`` already
    fitted (``return_estimator=True``), so nothing is fitted twice, and the splitter
    need not cover every row: ``TimeSeriesSplit`` works (rows in no test fold get NaN).

    Parameters
    ----------
    pipeline : classifier
        Unfitted; it is cloned for every fit.
    X : pandas.DataFrame
        Features (and any columns the pipeline drops, such as ids).
    y : array-like of 0/1
        Labels.
    cv : int or CV splitter
        Folds; an int means stratified k-fold. For data ordered in time, pass
        ``sklearn.model_selection.TimeSeriesSplit``.
    scoring : mapping of str to scorer, optional
        Metric name -> scikit-learn scorer (name or callable); :data:`DEFAULT_SCORING`
        (PR-AUC and ROC-AUC) when omitted.
    run_name : str, optional
        Name shown in the MLflow UI.
    experiment : str, optional
        Experiment name (created if needed); :data:`DEFAULT_EXPERIMENT` when omitted.
        Ignored inside an active run: the run becomes its child.
    params, tags : mapping, optional
        Extra parameters and tags (e.g. the data's time range).
    log_model : bool
        Refit on all the data and log the model.
    model_name : str
        Name of the logged model within the run.
    figures : sequence of str or mapping
        Built-in figures (``"pr_curve"``, ``"calibration"``) or ``{name: f(y, scores) -> Figure}``.
    n_jobs : int, optional
        Parallel folds (joblib).

    Returns
    -------
    CVResult
    """
    import mlflow
    from sklearn.base import clone
    from sklearn.model_selection import check_cv, cross_validate
    from sklearn.utils.multiclass import type_of_target

    scoring = _scoring(scoring)
    y = np.asarray(y)
    if type_of_target(y) != "binary":
        raise ValueError("y must hold two classes (0/1): cross_validate_and_log logs binary classifiers.")
    splitter = check_cv(cv, y, classifier=True)
    makers = _figure_makers(figures)
    with quiet():
        scores = cross_validate(
            pipeline,
            X,
            y,
            cv=splitter,
            scoring=scoring,
            return_train_score=False,
            return_estimator=True,
            return_indices=True,
            n_jobs=n_jobs,
            error_score="raise",
        )
    oof = np.full(len(y), np.nan)
    for estimator, test in zip(scores["estimator"], scores["indices"]["test"], strict=True):
        oof[test] = estimator.predict_proba(X.iloc[test])[:, 1]

    metrics: dict[str, float] = {"fit_time_mean": float(np.mean(scores["fit_time"]))}
    for name in scoring:
        folds = np.asarray(scores[f"test_{name}"], dtype=float)
        metrics[f"cv_{name}_mean"] = float(folds.mean())
        metrics[f"cv_{name}_std"] = float(folds.std())
    logged = dict(flatten_params(pipeline.get_params(deep=True)))
    logged |= {"cv": _param_text(splitter)[:_PARAM_LENGTH], "cv_n_splits": str(splitter.get_n_splits())}
    logged |= {k: _param_text(v)[:_PARAM_LENGTH] for k, v in (params or {}).items()}

    with _run(experiment, run_name, tags) as run, quiet():
        mlflow.log_params(logged)
        mlflow.log_metrics(metrics)
        for name in scoring:
            for fold, value in enumerate(scores[f"test_{name}"]):
                mlflow.log_metric(f"cv_{name}", float(value), step=fold)
        scored = ~np.isnan(oof)  # rows in no test fold (e.g. the first block of a TimeSeriesSplit)
        for name, make in makers.items():
            mlflow.log_figure(make(y[scored], oof[scored]), f"figures/{name}.png")
        model = model_uri = None
        if log_model:
            model = clone(pipeline).fit(X, y)
            model_uri = _log_sklearn_model(model, X, model_name)
    return CVResult(run.info.run_id, metrics, model_uri, model, oof)


# -- tuning --------------------------------------------------------------------------------


@dataclass
class TuneResult:
    """What :func:`tune` logged.

    Attributes
    ----------
    run_id : str
        The parent run.
    best_params : dict
        The winning candidate's parameters.
    best_score : float
        Its mean CV score on the main (first) metric.
    metrics : dict of str to float
        The winner's ``cv_<metric>_mean`` / ``_std``, as logged on the parent run.
    model_uri : str or None
        The refitted best model (None when ``log_model=False``).
    cv_results : pandas.DataFrame
        The search's ``cv_results_``, one row per candidate (and halving iteration).
    child_run_ids : list of str
        One child run per row of ``cv_results``.
    model : estimator
        The best model, refitted on all the data.
    """

    run_id: str
    best_params: dict[str, Any]
    best_score: float
    metrics: dict[str, float]
    model_uri: str | None
    cv_results: pd.DataFrame = field(repr=False)
    child_run_ids: list[str] = field(default_factory=list, repr=False)
    model: Any = field(default=None, repr=False)


@contextlib.contextmanager
def _parallel(use_dask: bool | None, n_jobs: int | None) -> Iterator[int | None]:
    """Run joblib work locally (yield ``n_jobs``) or on a Dask cluster (yield -1)."""
    from mlsd.config import get_settings

    address = get_settings().dask_scheduler_address
    if use_dask is None:
        use_dask = bool(address)
    if not use_dask:
        yield n_jobs
        return
    import joblib
    from distributed import Client, LocalCluster

    with contextlib.ExitStack() as stack:
        try:
            Client.current()  # a client the caller already made: use it
        except ValueError:
            if address:
                stack.enter_context(Client(address, set_as_default=True))
            else:
                cluster = stack.enter_context(
                    LocalCluster(
                        n_workers=min(2, os.cpu_count() or 1),
                        threads_per_worker=1,
                        dashboard_address=":0",  # any free port: 8787 may be taken
                        silence_logs=logging.ERROR,
                    )
                )
                stack.enter_context(Client(cluster, set_as_default=True))
        stack.enter_context(joblib.parallel_config(backend="dask"))
        yield -1


def _search(method, pipeline, space, *, cv, scoring, primary, n_iter, random_state, n_jobs):
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV

    if method == "grid":
        return GridSearchCV(pipeline, space, cv=cv, scoring=scoring, refit=primary, n_jobs=n_jobs)
    if method == "random":
        return RandomizedSearchCV(
            pipeline,
            space,
            n_iter=n_iter,
            cv=cv,
            scoring=scoring,
            refit=primary,
            n_jobs=n_jobs,
            random_state=random_state,
        )
    if method == "halving":
        from sklearn.experimental import enable_halving_search_cv  # noqa: F401
        from sklearn.model_selection import HalvingRandomSearchCV

        # Successive halving scores a single metric: the main one.
        return HalvingRandomSearchCV(
            pipeline,
            space,
            n_candidates=n_iter,
            min_resources="exhaust",  # the first round gets enough rows to hold some positives
            cv=cv,
            scoring=scoring[primary],
            n_jobs=n_jobs,
            random_state=random_state,
        )
    raise ValueError(f"Unknown method {method!r}: use 'grid', 'random' or 'halving'.")


def tune(
    pipeline,
    param_grid_or_distributions: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    X: pd.DataFrame,
    y,
    *,
    method: str = "random",
    cv: int | Any = 5,
    scoring: Mapping[str, Any] | None = None,
    n_iter: int = 10,
    random_state: int | None = None,
    run_name: str | None = "tune",
    experiment: str | None = None,
    use_dask: bool | None = None,
    n_jobs: int | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    log_model: bool = True,
    model_name: str = "model",
) -> TuneResult:
    """Search hyperparameters and log every candidate as a child run of one parent run.

    The parent run holds the search settings, the winner's parameters (the refitted
    pipeline's, plus ``best.<name>`` for each searched one), its CV scores (same names
    as :func:`cross_validate_and_log`, so runs compare in the UI) with per-fold values,
    and the refitted best model. Each child run holds one candidate's parameters,
    ``cv_<metric>_mean`` / ``_std``, ``rank`` and ``fit_time_mean``. Children are logged
    after the search, from its ``cv_results_``, so the search itself can run anywhere.

    Parameters
    ----------
    pipeline : classifier
        Unfitted.
    param_grid_or_distributions : mapping or list of mappings
        Lists of values for ``method="grid"``; lists or ``scipy.stats`` distributions
        otherwise. Keys are ``step__param`` (e.g. ``model__learning_rate``).
    X, y
        Training data.
    method : {"grid", "random", "halving"}
        ``GridSearchCV``, ``RandomizedSearchCV`` (``n_iter`` candidates) or
        ``HalvingRandomSearchCV`` (``n_iter`` candidates, more rows for the survivors
        of each round; scores the main metric only).
    cv : int or CV splitter
        As in :func:`cross_validate_and_log`.
    scoring : mapping, optional
        Metric name -> scorer; the first is the main metric that picks the winner.
    n_iter : int
        Candidates for ``random`` and ``halving``.
    random_state : int, optional
        Seeds the candidate sampling.
    run_name, experiment, params, tags, log_model, model_name
        As in :func:`cross_validate_and_log`.
    use_dask : bool, optional
        ``None``: run the fits on the Dask cluster at ``DASK_SCHEDULER_ADDRESS`` when it is
        set, else locally. ``True``: on Dask (that cluster, or a local one of up to two
        workers started for the search). ``False``: locally with ``n_jobs``. Dask goes
        through joblib's ``dask`` backend, so the search code is the same either way.
    n_jobs : int, optional
        Local parallelism (joblib) when not on Dask.

    Returns
    -------
    TuneResult
    """
    import mlflow

    scoring = _scoring(scoring)
    primary = next(iter(scoring))
    y = np.asarray(y)
    with _parallel(use_dask, n_jobs) as jobs:
        search = _search(
            method,
            pipeline,
            param_grid_or_distributions,
            cv=cv,
            scoring=scoring,
            primary=primary,
            n_iter=n_iter,
            random_state=random_state,
            n_jobs=jobs,
        )
        with quiet():
            search.fit(X, y)
    results = pd.DataFrame(search.cv_results_)
    names = list(scoring) if method != "halving" else [primary]
    suffix = {name: (name if method != "halving" else "score") for name in names}
    n_splits = search.n_splits_
    best = int(search.best_index_)

    def candidate_metrics(i: int) -> dict[str, float]:
        row = results.iloc[i]
        out = {"fit_time_mean": float(row["mean_fit_time"])}
        for name in names:
            out[f"cv_{name}_mean"] = float(row[f"mean_test_{suffix[name]}"])
            out[f"cv_{name}_std"] = float(row[f"std_test_{suffix[name]}"])
        return out

    settings = {
        "search.method": method,
        "search.n_candidates": str(len(results)),
        "search.cv": _param_text(cv)[:_PARAM_LENGTH],
        "search.scoring": primary,
        "search.random_state": str(random_state),
    }
    best_params = dict(search.best_params_)
    logged = flatten_params(search.best_estimator_.get_params(deep=True))
    logged |= {f"best.{k}"[:_PARAM_LENGTH]: _param_text(v)[:_PARAM_LENGTH] for k, v in best_params.items()}
    logged |= settings | {k: _param_text(v)[:_PARAM_LENGTH] for k, v in (params or {}).items()}
    metrics = candidate_metrics(best)
    metrics[f"best_cv_{primary}"] = float(search.best_score_)

    child_ids = []
    with _run(experiment, run_name, tags) as parent, quiet():
        mlflow.log_params(logged)
        mlflow.log_metrics(metrics)
        for name in names:
            for fold in range(n_splits):
                value = float(results.iloc[best][f"split{fold}_test_{suffix[name]}"])
                mlflow.log_metric(f"cv_{name}", value, step=fold)
        for i in range(len(results)):
            row = results.iloc[i]
            child_params = {k: _param_text(v)[:_PARAM_LENGTH] for k, v in row["params"].items()}
            for extra in ("iter", "n_resources"):
                if extra in results.columns:
                    child_params[extra] = str(row[extra])
            child_metrics = candidate_metrics(i) | {"rank": float(row[f"rank_test_{suffix[primary]}"])}
            with mlflow.start_run(
                experiment_id=parent.info.experiment_id,  # else MLflow files children under "Default"
                run_name=f"{run_name or 'tune'}-{i:03d}",
                nested=True,
            ) as child:
                mlflow.log_params(child_params)
                mlflow.log_metrics(child_metrics)
                child_ids.append(child.info.run_id)
        model_uri = None
        if log_model:
            model_uri = _log_sklearn_model(search.best_estimator_, X, model_name)
    return TuneResult(
        parent.info.run_id,
        best_params,
        float(search.best_score_),
        metrics,
        model_uri,
        results,
        child_ids,
        search.best_estimator_,
    )


# -- the model registry --------------------------------------------------------------------


def register_model(model_uri: str, name: str, *, tags: Mapping[str, Any] | None = None) -> str:
    """Register a logged model as a new version of ``name`` (created if needed).

    Parameters
    ----------
    model_uri : str
        ``models:/<model id>`` (from :class:`CVResult` / :class:`TuneResult`) or ``runs:/<run>/<path>``.
    name : str
        Registered model name, e.g. ``"lending-default"``.
    tags : mapping, optional
        Version tags, e.g. ``{"threshold": 0.18}``.

    Returns
    -------
    str
        The new version number, e.g. ``"3"``.
    """
    import mlflow

    _ensure_configured()
    with quiet(), contextlib.redirect_stderr(io.StringIO()):  # MLflow prints "Created version ..."
        version = mlflow.register_model(
            model_uri, name, tags={k: _param_text(v) for k, v in (tags or {}).items()}
        )
    return str(version.version)


def set_alias(name: str, alias: str, version: str | int) -> None:
    """Point ``alias`` (e.g. ``champion``) of registered model ``name`` at ``version``.

    An alias names one version at a time: setting it moves it from the version that
    had it. Aliases replace MLflow's deprecated stages (``Staging``, ``Production``).
    """
    from mlflow.tracking import MlflowClient

    _ensure_configured()
    with quiet():
        MlflowClient().set_registered_model_alias(name, alias, str(version))


def get_model_version(name: str, alias: str = "champion", *, uri: str | None = None) -> ModelVersion:
    """The version of ``name`` that ``alias`` points at (its ``.version``, ``.tags``, ``.aliases``...).

    Parameters
    ----------
    name, alias : str
        Registered model and alias.
    uri : str, optional
        Tracking URI to ask; MLflow's current one when omitted.

    Raises
    ------
    RegistryError
        When the model or the alias does not exist, saying how to create it.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    uri = uri or _ensure_configured()
    try:
        with quiet():
            return MlflowClient(tracking_uri=uri, registry_uri=uri).get_model_version_by_alias(name, alias)
    except MlflowException as err:
        raise RegistryError(
            f"No version of model {name!r} has the alias {alias!r} in the MLflow store at {uri}: "
            "train and register one first (`uv run mlsd train`), or check the name and alias."
        ) from err


def promote(
    name: str, version: str | int, *, previous_alias: str | None = "previous"
) -> dict[str, str | None]:
    """Make ``version`` the ``champion`` of ``name``; the old champion keeps the alias ``previous``.

    Keeping ``previous`` makes a rollback one call: ``promote(name, previous_version)``.
    If the promoted version was the ``challenger``, that alias is removed (a version is
    not its own challenger). Promoting the current champion changes nothing.

    Returns
    -------
    dict
        ``{"champion": version, "previous": old champion's version or None}``.
    """
    from mlflow.tracking import MlflowClient

    version = str(version)
    try:
        old = get_model_version(name, "champion")
    except RegistryError:
        old = None
    client = MlflowClient()
    with quiet():
        target = client.get_model_version(name, version)  # raises if the version does not exist
        if old is not None and str(old.version) != version and previous_alias:
            client.set_registered_model_alias(name, previous_alias, str(old.version))
        client.set_registered_model_alias(name, "champion", version)
        if "challenger" in (target.aliases or []):
            client.delete_registered_model_alias(name, "challenger")
    previous = None if old is None or str(old.version) == version else str(old.version)
    return {"champion": version, "previous": previous}


def load_model(name: str, alias: str = "champion", *, flavor: str = "pyfunc"):
    """Load the version of ``name`` that ``alias`` points at (``models:/name@alias``).

    Parameters
    ----------
    name, alias : str
        Registered model and alias.
    flavor : {"pyfunc", "sklearn"}
        ``pyfunc``: MLflow's generic model (checks inputs against the signature;
        ``predict`` returns class probabilities for course models). ``sklearn``: the
        pipeline itself, with ``predict_proba``.
    """
    import mlflow.pyfunc
    import mlflow.sklearn

    get_model_version(name, alias)  # a clear error when the alias is missing
    uri = f"models:/{name}@{alias}"
    with quiet():
        if flavor == "pyfunc":
            return mlflow.pyfunc.load_model(uri)
        if flavor == "sklearn":
            return mlflow.sklearn.load_model(uri)
    raise ValueError(f"flavor must be 'pyfunc' or 'sklearn', got {flavor!r}.")


# -- the UI --------------------------------------------------------------------------------


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
    from mlsd.db import port_in_use

    uri = tracking_uri(settings)
    if urlsplit(uri).scheme in {"http", "https"}:
        return MlflowUI(uri, uri, None)
    return MlflowUI(uri, f"http://{host}:{port}", _ui_command(uri, port, host), port_in_use(port, host))
