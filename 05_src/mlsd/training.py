"""The ``mlsd train`` workflow: a baseline and a tuned model, tracked, compared, registered.

Session 5 (the book's chapter 6) in one function, :func:`train`:

1. read the labelled rows of ``gold.application_features`` up to ``valid_end`` and split
   them by time (train on the past, validate on the months that follow);
2. a **baseline**: logistic regression on the course preprocessing
   (:func:`baseline_pipeline`), cross-validated and logged with
   :func:`mlsd.tracking.cross_validate_and_log`;
3. a **tuned model**: histogram gradient boosting (:func:`tuned_pipeline`), searched with
   :func:`mlsd.tracking.tune`, each candidate a child run;
4. both scored on the validation months (PR-AUC first: about 7% of loans default), with a
   decision threshold chosen by cost (:func:`mlsd.evaluation.threshold_by_cost`);
5. both registered as versions of one model; the better one gets the alias ``champion``,
   the other ``challenger`` (the last champion keeps ``previous``).

The model's input is :func:`model_input`: the ids, the feature columns of
:func:`mlsd.features.course_feature_columns` and ``applied_at`` (naive UTC: MLflow's
signatures do not take time zones), with numbers as floats. The ids and the time are in
the input on purpose: the pipeline drops them (the true label model has neither), and
behavioural tests check that they do not move the score.

Example
-------
>>> from mlsd import db, training
>>> conn = db.connect()  # doctest: +SKIP
>>> training.train(conn, tune_method="random", n_iter=8)  # doctest: +SKIP
      model  cv_pr_auc  pr_auc  roc_auc  threshold  run_id  version       alias
0  baseline      0.31    0.30     0.80       0.16     ...        1  challenger
1     tuned      0.36    0.35     0.83       0.14     ...        2    champion
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from psycopg2 import sql
from scipy.stats import loguniform, randint

# Imported here, they also load OpenMP before train() limits its threads (threadpoolctl
# limits only the libraries already loaded).
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import TimeSeriesSplit, check_cv
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from mlsd import tracking
from mlsd.db import read_sql
from mlsd.errors import MLSDError
from mlsd.evaluation import classification_metrics, threshold_by_cost
from mlsd.features import course_feature_columns, make_preprocessor
from mlsd.sampling import time_split
from mlsd.tracking import SearchOptions

if TYPE_CHECKING:
    from types import ModuleType

    import psycopg2.extensions

    from mlsd.config import Settings

__all__ = [
    "DEFAULT_COSTS",
    "ID_COLUMNS",
    "MONOTONIC_INCREASING",
    "TIME_COLUMN",
    "TrainingData",
    "TrainingDataError",
    "TrainingOptions",
    "baseline_pipeline",
    "load_training_data",
    "model_columns",
    "model_input",
    "param_space",
    "train",
    "tuned_pipeline",
]

ID_COLUMNS = ("application_id", "customer_id")
"""Keys carried in the model input (and dropped by the pipeline)."""

TIME_COLUMN = "applied_at"
"""When the application was made: carried in the model input, not a feature (no date parts)."""

MONOTONIC_INCREASING = ("late_30_59", "late_60_89", "late_90", "revolving_utilization", "prior_late_payments")
"""Features whose increase must never lower the predicted risk; the tuned model is constrained on them."""

DEFAULT_COSTS = {"cost_fp": 1.0, "cost_fn": 5.0}
"""Cost of rejecting a good applicant (lost margin) and of approving a default (lost principal)."""

SCORING = {"pr_auc": "average_precision", "roc_auc": "roc_auc"}


class TrainingDataError(MLSDError, ValueError):
    """The gold table holds too little labelled data for the requested months."""


@dataclass(frozen=True)
class TrainingOptions:
    """What :func:`train` does, as one value: the months, the search, the costs, the registered name.

    :func:`train` takes these as keywords (see there) and passes this value along; ``search``
    goes to :func:`mlsd.tracking.tune` whole, with ``cv=None`` meaning
    ``TimeSeriesSplit(n_splits=3)``.

    Examples
    --------
    >>> options = TrainingOptions(search=SearchOptions(method="grid", cv=None, random_state=0))
    >>> options.search.method, options.register_as
    ('grid', 'lending-default')
    """

    experiment: str = "lending-default"
    train_end: str = "2024-12"
    valid_end: str = "2025-03"
    search: SearchOptions = SearchOptions(method="random", cv=None, n_iter=8, random_state=42)
    register_as: str | None = "lending-default"
    cost_fp: float = DEFAULT_COSTS["cost_fp"]
    cost_fn: float = DEFAULT_COSTS["cost_fn"]
    threads: int | None = 1


def _mlflow() -> ModuleType:
    """MLflow, imported on first use: it takes seconds, and ``import mlsd.training`` should not."""
    import mlflow

    return mlflow


def model_columns() -> list[str]:
    """Columns of the model input, in order: ids, the features by kind, then the application time.

    Examples
    --------
    >>> model_columns()[:3], model_columns()[-1]
    (['application_id', 'customer_id', 'amount'], 'applied_at')
    """
    kinds = course_feature_columns()
    features = [*kinds["numeric"], *kinds["categorical"], *kinds["high_cardinality"], *kinds["dates"]]
    return [*ID_COLUMNS, *dict.fromkeys([*features, TIME_COLUMN])]


def model_input(frame: pd.DataFrame) -> pd.DataFrame:
    """The model's input from gold rows: :func:`model_columns`, with the types the signature expects.

    Numbers become floats (a JSON request may send ``3`` or ``3.0``), categories and ids
    strings (missing stays missing), and timestamps naive UTC (MLflow's schema
    enforcement rejects time-zone-aware datetimes). Other columns are dropped.

    Raises
    ------
    ValueError
        When a model column is missing from ``frame``.

    Examples
    --------
    >>> row = {c: [1] for c in model_columns()} | {"applied_at": ["2025-01-31T23:30:00+01:00"]}
    >>> model_input(pd.DataFrame(row))["applied_at"].iloc[0]
    Timestamp('2025-01-31 22:30:00')
    """
    columns = model_columns()
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"The model input needs columns {missing}: read them from gold.application_features."
        )
    kinds = course_feature_columns()
    out = frame[columns].copy()
    for column in kinds["numeric"]:
        out[column] = pd.to_numeric(out[column], errors="coerce").astype("float64")
    for column in [*ID_COLUMNS, *kinds["categorical"], *kinds["high_cardinality"]]:
        out[column] = out[column].astype(object).where(out[column].notna(), None)
    for column in dict.fromkeys([*kinds["dates"], TIME_COLUMN]):
        out[column] = pd.to_datetime(out[column], utc=True, format="ISO8601").dt.tz_localize(None)
    return out


@dataclass
class TrainingData:
    """Labelled gold rows split by time; ``X_*`` are :func:`model_input` frames."""

    X_train: pd.DataFrame
    y_train: np.ndarray
    X_valid: pd.DataFrame
    y_valid: np.ndarray
    train_months: tuple[str, str]
    valid_months: tuple[str, str]


def load_training_data(
    conn: psycopg2.extensions.connection, *, train_end: str = "2024-12", valid_end: str = "2025-03"
) -> TrainingData:
    """Read labelled gold rows up to ``valid_end`` and split them by month.

    Labelled means ``serious_dlq IS NOT NULL``: outcomes observed by the time the gold
    table was built. Rows are in time order (``applied_at``), so a ``TimeSeriesSplit``
    on the training part never validates on the past.

    Raises
    ------
    TrainingDataError
        When either part is empty or holds a single class.
    """
    wanted = [*dict.fromkeys([*model_columns(), "month", "serious_dlq"])]
    query = sql.SQL(
        "SELECT {} FROM gold.application_features WHERE serious_dlq IS NOT NULL AND month <= %s "
        "ORDER BY applied_at, application_id"
    ).format(sql.SQL(", ").join(sql.Identifier(c) for c in wanted))
    frame = read_sql(conn, query, (valid_end,))
    train, valid, _ = time_split(frame, "month", train_end=train_end, valid_end=valid_end)
    for name, part in (("training", train), ("validation", valid)):
        labels = part["serious_dlq"]
        if len(part) == 0 or labels.nunique() < 2:
            raise TrainingDataError(
                f"The {name} months hold {len(part)} labelled rows with classes {sorted(labels.unique())}: "
                "load the course data (`uv run mlsd data load`) or move train_end / valid_end."
            )
    return TrainingData(
        model_input(train),
        train["serious_dlq"].to_numpy(dtype=int),
        model_input(valid),
        valid["serious_dlq"].to_numpy(dtype=int),
        (train["month"].min(), train["month"].max()),
        (valid["month"].min(), valid["month"].max()),
    )


def baseline_pipeline() -> Pipeline:
    """Logistic regression on the course preprocessing (Yeo-Johnson, then standard scaling).

    The power transform pulls in the heavy tails of utilisation, debt ratio and income,
    which a linear model would otherwise let a few extreme rows dominate.
    """
    prep = make_preprocessor(**course_feature_columns(), power=True, scaler="standard")
    # newton-cholesky: a handful of exact Newton steps on a few dozen features, faster here than lbfgs
    model = LogisticRegression(solver="newton-cholesky", max_iter=200)
    return Pipeline([("prep", prep), ("model", model)])


def tuned_pipeline(random_state: int | None = 42) -> Pipeline:
    """Histogram gradient boosting on the course preprocessing (no scaling: trees do not need it).

    The model is constrained to be monotonic increasing in :data:`MONOTONIC_INCREASING`:
    domain knowledge (more late payments never make a borrower safer) that trees would
    otherwise violate in sparse regions of the data, and that a directional test checks.
    Boosting stops early when 10% of the training rows, held out, stop improving, so the
    number of iterations searched is an upper bound.
    """
    prep = make_preprocessor(**course_feature_columns(), scaler=None)
    model = HistGradientBoostingClassifier(
        early_stopping=True,  # max_iter is a cap: stop when 10% held-out rows stop improving
        monotonic_cst=dict.fromkeys(MONOTONIC_INCREASING, 1),
        random_state=random_state,
    )
    return Pipeline([("prep", prep), ("model", model)])


def param_space(method: str = "random") -> dict[str, Any]:
    """Hyperparameters of :func:`tuned_pipeline` to search: lists for a grid, distributions otherwise."""
    if method == "grid":
        return {
            "model__learning_rate": [0.05, 0.1],
            "model__max_leaf_nodes": [15, 31],
            "model__min_samples_leaf": [20, 80],
        }
    return {
        "model__learning_rate": loguniform(0.02, 0.3),
        "model__max_iter": randint(50, 300),
        "model__max_leaf_nodes": randint(8, 48),
        "model__min_samples_leaf": randint(10, 150),
        "model__l2_regularization": loguniform(1e-3, 10.0),
    }


def _validation_metrics(model, data: TrainingData, cost_fp: float, cost_fn: float) -> tuple[dict, np.ndarray]:
    scores = model.predict_proba(data.X_valid)[:, 1]
    threshold, _ = threshold_by_cost(data.y_valid, scores, cost_fp=cost_fp, cost_fn=cost_fn)
    threshold = float(min(threshold, 1.0))  # "flag nobody" (inf) becomes a threshold of 1
    metrics = classification_metrics(data.y_valid, scores, threshold=threshold)
    return {f"valid_{k}": float(v) for k, v in metrics.items()} | {"valid_threshold": threshold}, scores


def train(
    conn: psycopg2.extensions.connection,
    *,
    experiment: str = "lending-default",
    train_end: str = "2024-12",
    valid_end: str = "2025-03",
    tune_method: str = "random",
    n_iter: int = 8,
    cv: int | Any = None,
    random_state: int = 42,
    register_as: str | None = "lending-default",
    cost_fp: float = DEFAULT_COSTS["cost_fp"],
    cost_fn: float = DEFAULT_COSTS["cost_fn"],
    use_dask: bool | None = None,
    n_jobs: int | None = None,
    threads: int | None = 1,
    settings: Settings | None = None,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Train, track, compare and register the baseline and the tuned model.

    Parameters
    ----------
    conn : psycopg2 connection
        The course database with ``gold.application_features`` loaded.
    experiment : str
        MLflow experiment (created if needed).
    train_end, valid_end : str
        Last training month and last validation month, ``'YYYY-MM'``. The defaults end
        validation in 2025-03, before the drift scenarios begin (2025-04).
    tune_method : {"random", "grid", "halving"}
        The search of :func:`mlsd.tracking.tune`.
    n_iter : int
        Candidates for the random and halving searches.
    cv : int or CV splitter, optional
        Cross-validation inside the training months; ``TimeSeriesSplit(n_splits=3)`` by
        default (rows are in time order, so each fold validates on later months).
    random_state : int
        Seeds the search and the boosting.
    register_as : str or None
        Registered model name; ``None`` skips registration.
    cost_fp, cost_fn : float
        Costs of a false positive and a false negative; the threshold that minimises
        their total on the validation months is logged and stored as the version tag
        ``threshold``, which :func:`mlsd.serving.score_month` uses for decisions.
    use_dask : bool, optional
        Where the search runs (see :func:`mlsd.tracking.tune`).
    n_jobs : int, optional
        Folds and candidates fitted in parallel (joblib processes) when not on Dask.
    threads : int or None
        BLAS and OpenMP threads per fit; ``None`` leaves the libraries' defaults. One by
        default: on data this size a fit gains little from threads, and on a busy 2-core
        machine OpenMP threads waiting for each other slowed gradient boosting 7-40 times.
        Parallelism comes from ``n_jobs`` or Dask instead.
    settings : Settings, optional
        Where to track (:func:`mlsd.tracking.configure`).
    progress : callable, optional
        Called with the name of each stage as it begins (``mlsd train`` shows them).

    Returns
    -------
    pandas.DataFrame
        One row per model: ``model``, ``cv_pr_auc``, ``pr_auc``, ``roc_auc`` (validation),
        ``threshold``, ``run_id``, ``version`` and ``alias`` (``champion`` / ``challenger``;
        ``None`` without registration). ``attrs`` holds ``seconds`` (time taken) and
        ``tracking_uri`` (where the runs are).

    Notes
    -----
    The champion is picked on the same validation months that chose the threshold, so its
    validation scores are slightly optimistic: judge it on later months (a test period,
    or the monitoring of its predictions).
    """
    options = TrainingOptions(
        experiment=experiment,
        train_end=train_end,
        valid_end=valid_end,
        search=SearchOptions(
            method=tune_method,
            cv=cv,
            n_iter=n_iter,
            random_state=random_state,
            use_dask=use_dask,
            n_jobs=n_jobs,
        ),
        register_as=register_as,
        cost_fp=cost_fp,
        cost_fn=cost_fn,
        threads=threads,
    )
    started = time.perf_counter()
    with threadpool_limits(limits=options.threads):
        summary = _train(conn, options, settings, progress or (lambda stage: None))
    summary.attrs["seconds"] = time.perf_counter() - started
    return summary


def _candidates(method: str, n_iter: int) -> int:
    """How many hyperparameter sets a search of :func:`param_space` tries (first round, for halving)."""
    if method != "grid":
        return n_iter
    return int(np.prod([len(values) for values in param_space("grid").values()]))


def _train(
    conn, options: TrainingOptions, settings: Settings | None, progress: Callable[[str], None]
) -> pd.DataFrame:
    progress("reading the training data")
    uri = tracking.configure(settings)
    data = load_training_data(conn, train_end=options.train_end, valid_end=options.valid_end)
    search = options.search
    if search.cv is None:
        search = replace(search, cv=TimeSeriesSplit(n_splits=3))
    search = replace(search, scoring=SCORING)
    folds = check_cv(search.cv).get_n_splits()
    context = {
        "train_months": "..".join(data.train_months),
        "valid_months": "..".join(data.valid_months),
        "n_train": len(data.y_train),
        "n_valid": len(data.y_valid),
        "train_positive_rate": round(float(data.y_train.mean()), 4),
    }
    tags = {"mlsd.workflow": "mlsd train", "mlsd.register_as": options.register_as or ""}

    progress(f"cross-validating the baseline (logistic regression, {folds} folds)")
    baseline = tracking.cross_validate_and_log(
        baseline_pipeline(),
        data.X_train,
        data.y_train,
        cv=search.cv,
        scoring=search.scoring,
        run_name="baseline-logreg",
        experiment=options.experiment,
        params=context,
        tags=tags | {"mlsd.role": "baseline"},
        n_jobs=search.n_jobs,
    )
    progress(
        f"tuning gradient boosting ({search.method} search, "
        f"{_candidates(search.method, search.n_iter)} candidates x {folds} folds)"
    )
    tuned = tracking.tune(
        tuned_pipeline(search.random_state),
        param_space(search.method),
        data.X_train,
        data.y_train,
        search=search,
        run_name=f"hgb-{search.method}",
        experiment=options.experiment,
        params=context,
        tags=tags | {"mlsd.role": "tuned"},
    )

    progress("scoring the validation months" + (" and registering the models" if options.register_as else ""))
    mlflow = _mlflow()
    costs = {"cost_fp": options.cost_fp, "cost_fn": options.cost_fn}
    rows = []
    for label, result in (("baseline", baseline), ("tuned", tuned)):
        metrics, scores = _validation_metrics(result.model, data, **costs)
        with tracking.quiet(), mlflow.start_run(run_id=result.run_id):
            mlflow.log_metrics(metrics)
            mlflow.log_params(costs)
            title = f"Precision-recall, validation {context['valid_months']}"
            mlflow.log_figure(
                tracking.pr_curve_figure(data.y_valid, scores, title), "figures/valid_pr_curve.png"
            )
        rows.append(
            {
                "model": label,
                "cv_pr_auc": result.metrics["cv_pr_auc_mean"],
                "pr_auc": metrics["valid_pr_auc"],
                "roc_auc": metrics["valid_roc_auc"],
                "threshold": metrics["valid_threshold"],
                "run_id": result.run_id,
                "version": None,
                "alias": None,
                "_uri": result.model_uri,
            }
        )
    summary = pd.DataFrame(rows)
    register_as = options.register_as
    if register_as:
        for i, row in summary.iterrows():
            summary.loc[i, "version"] = tracking.register_model(
                row["_uri"],
                register_as,
                tags={
                    "threshold": row["threshold"],
                    "role": row["model"],
                    "valid_pr_auc": round(row["pr_auc"], 6),
                    "valid_months": context["valid_months"],
                },
            )
        best = int(summary["pr_auc"].idxmax())
        tracking.promote(register_as, summary.loc[best, "version"])
        for i in summary.index.drop(best):
            tracking.set_alias(register_as, "challenger", summary.loc[i, "version"])
        summary["alias"] = ["champion" if i == best else "challenger" for i in summary.index]
    summary = summary.drop(columns="_uri")
    summary.attrs["tracking_uri"] = uri
    return summary
