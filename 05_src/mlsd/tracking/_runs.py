"""Runs: cross-validation and hyperparameter searches, logged to MLflow with their models."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import joblib
import numpy as np
import pandas as pd

from mlsd.config import get_settings
from mlsd.tracking._figures import _figure_makers
from mlsd.tracking._models import _log_sklearn_model
from mlsd.tracking._params import _PARAM_LENGTH, _param_text, _scoring, flatten_params
from mlsd.tracking._store import _mlflow, _run, quiet

if TYPE_CHECKING:
    from types import ModuleType


def _sklearn() -> ModuleType:
    """scikit-learn's model selection, imported by the first run or search: ``import mlsd.tracking`` stays light."""
    import sklearn.base
    import sklearn.model_selection
    import sklearn.utils.multiclass

    return sklearn


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
    mlflow, sklearn = _mlflow(), _sklearn()
    scoring = _scoring(scoring)
    y = np.asarray(y)
    if sklearn.utils.multiclass.type_of_target(y) != "binary":
        raise ValueError("y must hold two classes (0/1): cross_validate_and_log logs binary classifiers.")
    splitter = sklearn.model_selection.check_cv(cv, y, classifier=True)
    makers = _figure_makers(figures)
    with quiet():
        scores = sklearn.model_selection.cross_validate(
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
            model = sklearn.base.clone(pipeline).fit(X, y)
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


METHODS = ("grid", "random", "halving")


@dataclass(frozen=True)
class SearchOptions:
    """How :func:`tune` searches, as one value: pass it on instead of seven keywords.

    Attributes
    ----------
    method : {"grid", "random", "halving"}
        ``GridSearchCV``, ``RandomizedSearchCV`` (``n_iter`` candidates) or
        ``HalvingRandomSearchCV`` (``n_iter`` candidates, more rows for the survivors
        of each round; scores the main metric only).
    cv : int, CV splitter or None
        As in :func:`cross_validate_and_log`.
    scoring : mapping, optional
        Metric name -> scorer; the first is the main metric that picks the winner.
    n_iter : int
        Candidates for ``random`` and ``halving``.
    random_state : int, optional
        Seeds the candidate sampling.
    use_dask : bool, optional
        ``None``: run the fits on the Dask cluster at ``DASK_SCHEDULER_ADDRESS`` when it is
        set, else locally. ``True``: on Dask (that cluster, or a local one of up to two
        workers started for the search). ``False``: locally with ``n_jobs``. Dask goes
        through joblib's ``dask`` backend, so the search code is the same either way.
    n_jobs : int, optional
        Local parallelism (joblib) when not on Dask.

    Examples
    --------
    >>> from dataclasses import replace
    >>> base = SearchOptions(cv=3, random_state=0)
    >>> replace(base, method="grid").method, base.n_iter
    ('grid', 10)
    >>> SearchOptions(method="bayes")
    Traceback (most recent call last):
    ...
    ValueError: Unknown method 'bayes': use 'grid', 'random' or 'halving'.
    """

    method: str = "random"
    cv: int | Any = 5
    scoring: Mapping[str, Any] | None = None
    n_iter: int = 10
    random_state: int | None = None
    use_dask: bool | None = None
    n_jobs: int | None = None

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"Unknown method {self.method!r}: use 'grid', 'random' or 'halving'.")
        if isinstance(self.n_iter, bool) or int(self.n_iter) != self.n_iter or self.n_iter < 1:
            raise ValueError(f"n_iter must be a positive whole number, got {self.n_iter!r}.")


def _distributed() -> tuple[type, type]:
    """Dask's ``Client`` and ``LocalCluster``, imported on first use (a second or more): only searches on Dask need them."""
    from distributed import Client, LocalCluster

    return Client, LocalCluster


@contextlib.contextmanager
def _parallel(use_dask: bool | None, n_jobs: int | None) -> Iterator[int | None]:
    """Run joblib work locally (yield ``n_jobs``) or on a Dask cluster (yield -1)."""
    address = get_settings().dask_scheduler_address
    if use_dask is None:
        use_dask = bool(address)
    if not use_dask:
        yield n_jobs
        return
    Client, LocalCluster = _distributed()

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


def _search(pipeline, space, options: SearchOptions, scoring: dict[str, Any], n_jobs: int | None):
    """The scikit-learn search object for ``options``; the first scorer picks the winner."""
    model_selection = _sklearn().model_selection
    method, cv, n_iter, random_state = options.method, options.cv, options.n_iter, options.random_state
    primary = next(iter(scoring))
    if method == "grid":
        return model_selection.GridSearchCV(
            pipeline, space, cv=cv, scoring=scoring, refit=primary, n_jobs=n_jobs
        )
    if method == "random":
        return model_selection.RandomizedSearchCV(
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
        from sklearn.experimental import enable_halving_search_cv  # noqa: F401  (adds the class below)

        # Successive halving scores a single metric: the main one.
        return model_selection.HalvingRandomSearchCV(
            pipeline,
            space,
            n_candidates=n_iter,
            min_resources="exhaust",  # the first round gets enough rows to hold some positives
            cv=cv,
            scoring=scoring[primary],
            n_jobs=n_jobs,
            random_state=random_state,
        )
    raise AssertionError(f"SearchOptions let an unknown method through: {method!r}")  # pragma: no cover


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
    search: SearchOptions | None = None,
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
    method, cv, scoring, n_iter, random_state, use_dask, n_jobs
        How to search: see :class:`SearchOptions`.
    run_name, experiment, params, tags, log_model, model_name
        As in :func:`cross_validate_and_log`.
    search : SearchOptions, optional
        The seven search settings as one value (as :func:`mlsd.training.train` passes
        them); leave those keywords out when you give it.

    Returns
    -------
    TuneResult
    """
    keywords = SearchOptions(method, cv, scoring, n_iter, random_state, use_dask, n_jobs)
    if search is None:
        search = keywords
    elif keywords != SearchOptions():
        raise ValueError(
            "Give the search settings either as keywords or as search=SearchOptions(...), not both."
        )
    method, cv, random_state = search.method, search.cv, search.random_state
    mlflow = _mlflow()
    scoring = _scoring(search.scoring)
    primary = next(iter(scoring))
    y = np.asarray(y)
    with _parallel(search.use_dask, search.n_jobs) as jobs:
        searcher = _search(pipeline, param_grid_or_distributions, search, scoring, jobs)
        with quiet():
            searcher.fit(X, y)
    results = pd.DataFrame(searcher.cv_results_)
    names = list(scoring) if method != "halving" else [primary]
    suffix = {name: (name if method != "halving" else "score") for name in names}
    n_splits = searcher.n_splits_
    best = int(searcher.best_index_)

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
    best_params = dict(searcher.best_params_)
    logged = flatten_params(searcher.best_estimator_.get_params(deep=True))
    logged |= {f"best.{k}"[:_PARAM_LENGTH]: _param_text(v)[:_PARAM_LENGTH] for k, v in best_params.items()}
    logged |= settings | {k: _param_text(v)[:_PARAM_LENGTH] for k, v in (params or {}).items()}
    metrics = candidate_metrics(best)
    metrics[f"best_cv_{primary}"] = float(searcher.best_score_)

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
            model_uri = _log_sklearn_model(searcher.best_estimator_, X, model_name)
    return TuneResult(
        parent.info.run_id,
        best_params,
        float(searcher.best_score_),
        metrics,
        model_uri,
        results,
        child_ids,
        searcher.best_estimator_,
    )
