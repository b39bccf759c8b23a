"""Monitoring in PostgreSQL: the prediction log, performance from logged scores, and one month as ``mlsd monitor`` shows it."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
from psycopg2 import sql

from mlsd._validation import check_columns
from mlsd.db import copy_dataframe, identifier, read_sql
from mlsd.errors import MLSDError
from mlsd.features import gold_features
from mlsd.monitoring._alerts import default_alert_rules, evaluate_alerts
from mlsd.monitoring._drift import DriftRule, ReferenceProfile
from mlsd.monitoring._performance import _utc, performance_over_time

if TYPE_CHECKING:
    import psycopg2.extensions

PREDICTION_LOG = "monitoring.prediction_log"

_CREATE_LOG = """
CREATE SCHEMA IF NOT EXISTS monitoring;
CREATE TABLE IF NOT EXISTS monitoring.prediction_log (
    id             bigserial PRIMARY KEY,
    model_name     text NOT NULL,
    model_version  text NOT NULL,
    batch_id       text NOT NULL,
    application_id text NOT NULL,
    features       jsonb,
    score          double precision NOT NULL,
    decision       smallint,
    predicted_at   timestamptz NOT NULL DEFAULT now(),
    latency_ms     double precision,
    deployment     text NOT NULL DEFAULT 'live'
);
-- logs made before the column existed get it, every row 'live'
ALTER TABLE monitoring.prediction_log ADD COLUMN IF NOT EXISTS deployment text NOT NULL DEFAULT 'live';
CREATE INDEX IF NOT EXISTS prediction_log_batch_idx ON monitoring.prediction_log (model_name, batch_id);
CREATE INDEX IF NOT EXISTS prediction_log_application_idx ON monitoring.prediction_log (application_id);
CREATE INDEX IF NOT EXISTS prediction_log_predicted_at_idx ON monitoring.prediction_log (predicted_at);
"""

_LOG_COLUMNS = ["application_id", "score", "decision", "predicted_at", "latency_ms", "features"]

DEPLOYMENTS = ("live", "shadow")
"""How a logged score was used: ``live`` decided, ``shadow`` was only recorded (testing in production)."""


def ensure_prediction_log(conn: psycopg2.extensions.connection) -> None:
    """Create ``monitoring.prediction_log`` and its indexes if they are missing (idempotent).

    Columns: ``id``, ``model_name``, ``model_version``, ``batch_id``,
    ``application_id``, ``features`` (jsonb, optional: the inputs, or leave NULL
    and join the gold tables on ``application_id``), ``score``, ``decision``
    (0/1), ``predicted_at`` (defaults to the time of logging), ``latency_ms`` and
    ``deployment``: ``'live'`` for the scores the business acts on, ``'shadow'`` for a
    model scoring the same applications beside it, whose decisions nobody acts on (see
    :data:`DEPLOYMENTS`).
    """
    with conn, conn.cursor() as cur:
        cur.execute(_CREATE_LOG)


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def log_predictions(
    conn: psycopg2.extensions.connection,
    frame: pd.DataFrame,
    model_name: str,
    model_version: str,
    batch_id: str,
    *,
    deployment: str = "live",
) -> int:
    """Write one batch of predictions to the log, replacing any earlier copy of the batch.

    In one transaction: create the log if needed, delete the rows of
    ``(model_name, batch_id)``, COPY the new ones. Logging the same batch twice
    leaves one copy; if anything fails the transaction is rolled back and the log
    is as it was.

    Parameters
    ----------
    conn : psycopg2 connection
    frame : pandas.DataFrame
        ``application_id`` and ``score`` (required); ``decision``, ``predicted_at``,
        ``latency_ms`` and ``features`` (dicts, stored as jsonb) if available.
        Other columns are ignored.
    model_name, model_version, batch_id : str
        Which model scored the batch, and the batch's identifier (e.g. the month).
    deployment : {"live", "shadow"}
        Whether the batch's decisions were acted on (``live``) or only recorded beside the
        live model's (``shadow``).

    Returns
    -------
    int
        Rows written.
    """
    check_columns(frame, ["application_id", "score"], what="The predictions frame")
    if not (model_name and model_version and batch_id):
        raise ValueError("model_name, model_version and batch_id must be non-empty strings.")
    if deployment not in DEPLOYMENTS:
        raise ValueError(f"deployment must be one of {DEPLOYMENTS}, got {deployment!r}.")
    if frame["application_id"].isna().any():
        raise ValueError("Some predictions have no application_id: every logged score needs one.")
    if not pd.api.types.is_numeric_dtype(frame["score"]) or frame["score"].isna().any():
        raise ValueError("score must be numeric with no missing values.")
    rows = frame[[c for c in _LOG_COLUMNS if c in frame.columns]].assign(
        model_name=model_name, model_version=str(model_version), batch_id=batch_id, deployment=deployment
    )
    if "decision" in rows.columns:
        rows["decision"] = pd.array(rows["decision"], dtype="Int64")  # "1", not "1.0", in the COPY
    if "predicted_at" in rows.columns:  # naive times are UTC, whatever the server's time zone
        rows["predicted_at"] = pd.to_datetime(rows["predicted_at"], utc=True)
    if "features" in rows.columns:
        rows["features"] = [None if _is_missing(f) else json.dumps(f, default=str) for f in rows["features"]]
    with conn:
        with conn.cursor() as cur:
            cur.execute(_CREATE_LOG)
            cur.execute(
                "DELETE FROM monitoring.prediction_log WHERE model_name = %s AND batch_id = %s",
                (model_name, batch_id),
            )
        return copy_dataframe(conn, rows, PREDICTION_LOG)


def read_predictions(
    conn: psycopg2.extensions.connection,
    *,
    model_name: str | None = None,
    model_version: str | None = None,
    batch_id: str | None = None,
    start: Any = None,
    end: Any = None,
    deployment: str | None = "live",
) -> pd.DataFrame:
    """Read logged predictions, optionally filtered; ``start <= predicted_at < end`` (naive times are UTC).

    ``deployment`` keeps the ``live`` scores by default, so a shadow model's scores never
    mix into the monitoring of the live one; ``"shadow"`` reads those, ``None`` both.

    Returns
    -------
    pandas.DataFrame
        The log's columns, in logging order.
    """
    filters = {"model_name = %s": model_name, "model_version = %s": model_version, "batch_id = %s": batch_id}
    filters["deployment = %s"] = deployment
    filters |= {
        "predicted_at >= %s": None if start is None else _utc(start).to_pydatetime(),
        "predicted_at < %s": None if end is None else _utc(end).to_pydatetime(),
    }
    used = {clause: value for clause, value in filters.items() if value is not None}
    where = sql.SQL(" AND ").join(sql.SQL(clause) for clause in used) if used else sql.SQL("true")
    query = sql.SQL("SELECT * FROM monitoring.prediction_log WHERE {} ORDER BY id").format(where)
    return read_sql(conn, query, list(used.values()))


def read_performance_over_time(
    conn: psycopg2.extensions.connection,
    *,
    label_table: str = "silver.outcomes",
    as_of: Any = None,
    model_name: str | None = None,
    model_version: str | None = None,
    id_col: str = "application_id",
    label_col: str = "serious_dlq",
    observed_col: str = "observed_at",
    time_col: str = "applied_at",
    applications_table: str = "silver.applications",
    deployment: str | None = "live",
    **kwargs,
) -> pd.DataFrame:
    """:func:`performance_over_time` on the prediction log and a label table in PostgreSQL.

    Periods are the months the applications were made (``time_col="applied_at"``, read
    from ``applications_table``), so a batch that back-fills a year of scores still
    shows a year of months; ``time_col="predicted_at"`` groups by scoring time instead.

    Parameters
    ----------
    conn : psycopg2 connection
    label_table : str
        ``schema.table`` with one row per observed outcome.
    as_of, id_col, label_col, observed_col, **kwargs
        Passed to :func:`performance_over_time`; only labels observed on or before
        ``as_of`` are read.
    model_name, model_version : str, optional
        Which predictions to read.
    deployment : {"live", "shadow"} or None
        The live scores (default), a shadow model's, or both (``None``).
    """
    predictions = read_predictions(
        conn, model_name=model_name, model_version=model_version, deployment=deployment
    )
    if time_col == "applied_at" and not predictions.empty:
        # Group by when the application was made, not when it was scored: a back-filled
        # batch scores many months at once.
        applied = read_sql(
            conn,
            sql.SQL("SELECT {id}, applied_at FROM {table} WHERE {id} = ANY(%s)").format(
                id=identifier(id_col), table=identifier(*applications_table.split(".", 1))
            ),
            (predictions[id_col].unique().tolist(),),
        )
        predictions = predictions.merge(applied, on=id_col, how="inner")
    query = sql.SQL("SELECT {}, {}, {} FROM {}").format(
        identifier(id_col),
        identifier(label_col),
        identifier(observed_col),
        identifier(*label_table.split(".", 1)),
    )
    params = []
    if as_of is not None:
        query += sql.SQL(" WHERE {} <= %s").format(identifier(observed_col))
        params.append(_utc(as_of).to_pydatetime())
    labels = read_sql(conn, query, params)
    return performance_over_time(
        predictions,
        labels,
        as_of=as_of,
        id_col=id_col,
        label_col=label_col,
        observed_col=observed_col,
        time_col=time_col,
        **kwargs,
    )


# -- one month, as `mlsd monitor` shows it ----------------------------------------------

MONITORED_NUMERIC = (
    "amount", "age", "revolving_utilization", "debt_ratio", "monthly_income", "open_credit_lines",
    "real_estate_loans", "dependents", "late_30_59", "late_60_89", "late_90",
)  # fmt: skip
MONITORED_CATEGORICAL = ("channel", "purpose", "region", "term_months")


class MonitoringError(MLSDError, ValueError):
    """The data a monitoring report needs is not there (say which, and what to load)."""


@dataclass
class MonthReport:
    """Drift of one month against a reference window, performance so far, and fired alerts."""

    month: str
    reference: tuple[str, str]
    drift: pd.DataFrame
    performance: pd.DataFrame
    alerts: pd.DataFrame


def monitor_month(
    conn: psycopg2.extensions.connection,
    month: str,
    *,
    reference: tuple[str, str] = ("2024-01", "2024-12"),
    model_name: str | None = None,
    rule: DriftRule | None = None,
) -> MonthReport:
    """Compare one month of gold features (and logged scores) with a reference window.

    Parameters
    ----------
    conn : psycopg2 connection
        The course database with ``gold.application_features``.
    month : str
        ``YYYY-MM`` to check.
    reference : (str, str)
        First and last month of the reference window (inclusive), e.g. the training months.
    model_name : str, optional
        When given and the prediction log holds its scores, the score is monitored
        too and performance over time is computed from the labels known so far.
    rule : DriftRule, optional
        When to call a feature drifted (default :class:`DriftRule`).
    """
    start, end = reference
    months = pd.period_range(start, end, freq="M").strftime("%Y-%m").tolist()
    ref = gold_features(conn, month=months)
    cur = gold_features(conn, month=month)
    if ref.empty or cur.empty:
        missing = "the reference window" if ref.empty else month
        raise MonitoringError(
            f"gold.application_features has no rows for {missing}: load the data or pick other months."
        )
    numeric, categorical = list(MONITORED_NUMERIC), list(MONITORED_CATEGORICAL)
    performance = pd.DataFrame()
    has_log = read_sql(conn, "SELECT to_regclass(%s) IS NOT NULL", (PREDICTION_LOG,)).iloc[0, 0]
    if model_name is not None and has_log:
        scores = read_predictions(conn, model_name=model_name)
        if not scores.empty:
            latest = scores.sort_values("predicted_at").drop_duplicates("application_id", keep="last")
            by_id = latest.set_index("application_id")["score"]
            ref = ref.assign(score=ref["application_id"].map(by_id))
            cur = cur.assign(score=cur["application_id"].map(by_id))
            if ref["score"].notna().any() and cur["score"].notna().any():
                numeric.append("score")
            performance = read_performance_over_time(conn, model_name=model_name)
    for frame in (ref, cur):
        # a term is a category; going through Int64 keeps "36" from becoming "36.0" when NULLs exist
        frame["term_months"] = pd.to_numeric(frame["term_months"]).astype("Int64").astype("string")
    profile = ReferenceProfile.fit(ref, numeric=numeric, categorical=categorical)
    drift = profile.compare(cur, rule=rule)
    alerts = evaluate_alerts(drift, default_alert_rules())
    return MonthReport(month, (start, end), drift, performance, alerts)
