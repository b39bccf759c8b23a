"""mlsd.monitoring against a real PostgreSQL: the prediction log and delayed labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import psycopg2
import pytest

from mlsd import db
from mlsd import monitoring as mon

pytestmark = pytest.mark.integration


@pytest.fixture
def log_conn(fresh_db):
    """A connection to an empty database of its own (logging commits), closed after the test."""
    connection = db.connect(fresh_db)
    yield connection
    connection.close()


def batch(n: int, start: int = 0, score: float = 0.1, month: str = "2025-01") -> pd.DataFrame:
    ids = [f"A{i:010d}" for i in range(start, start + n)]
    return pd.DataFrame(
        {
            "application_id": ids,
            "score": np.linspace(score, score + 0.5, n),
            "decision": [i % 2 for i in range(n)],
            "predicted_at": pd.Timestamp(f"{month}-15 12:00") + pd.to_timedelta(np.arange(n), unit="min"),
            "latency_ms": 3.5,
            "features": [{"age": 30 + i, "channel": "web"} for i in range(n)],
            "ignored": "not a log column",
        }
    )


def count(conn, where: str = "true", params=()) -> int:
    with conn.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM monitoring.prediction_log WHERE {where}", params)
        (n,) = cur.fetchone()
    conn.rollback()
    return n


def test_prediction_log_is_created_idempotently(log_conn):
    mon.ensure_prediction_log(log_conn)
    mon.ensure_prediction_log(log_conn)
    columns = db.read_sql(
        log_conn,
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'monitoring' AND table_name = 'prediction_log' ORDER BY ordinal_position",
    )
    assert dict(columns.itertuples(index=False)) == {
        "id": "bigint",
        "model_name": "text",
        "model_version": "text",
        "batch_id": "text",
        "application_id": "text",
        "features": "jsonb",
        "score": "double precision",
        "decision": "smallint",
        "predicted_at": "timestamp with time zone",
        "latency_ms": "double precision",
        "deployment": "text",
    }
    indexes = db.read_sql(log_conn, "SELECT indexname FROM pg_indexes WHERE tablename = 'prediction_log'")
    assert len(indexes) == 4  # primary key + batch, application, time


def test_logging_a_batch_twice_leaves_one_copy(log_conn):
    assert mon.log_predictions(log_conn, batch(100), "pd_model", "1", "2025-01") == 100
    assert mon.log_predictions(log_conn, batch(100, score=0.3), "pd_model", "1", "2025-01") == 100
    assert count(log_conn) == 100
    logged = mon.read_predictions(log_conn, batch_id="2025-01")
    assert logged["score"].min() == pytest.approx(0.3)  # the second copy replaced the first
    assert logged.loc[0, "features"] == {"age": 30, "channel": "web"}
    assert logged["decision"].tolist()[:3] == [0, 1, 0]
    assert logged.loc[0, "predicted_at"] == pd.Timestamp("2025-01-15 12:00", tz="UTC")  # naive means UTC

    mon.log_predictions(log_conn, batch(50, start=100, month="2025-02"), "pd_model", "1", "2025-02")
    mon.log_predictions(log_conn, batch(100)[["application_id", "score"]], "challenger", "7", "2025-01")
    assert count(log_conn) == 250
    assert len(mon.read_predictions(log_conn, model_name="pd_model")) == 150
    assert len(mon.read_predictions(log_conn, model_name="challenger", batch_id="2025-01")) == 100
    february = mon.read_predictions(log_conn, start="2025-02-01", end="2025-03-01")
    assert set(february["batch_id"]) == {"2025-02"} and len(february) == 50
    assert mon.read_predictions(log_conn, model_name="challenger")["features"].isna().all()


def test_shadow_scores_stay_out_of_the_live_reads(log_conn):
    mon.log_predictions(log_conn, batch(100), "pd_model", "1", "2025-01")
    mon.log_predictions(
        log_conn, batch(100, score=0.3), "pd_model", "2", "2025-01:shadow", deployment="shadow"
    )
    assert count(log_conn) == 200
    live = mon.read_predictions(log_conn, model_name="pd_model")
    assert len(live) == 100 and set(live["model_version"]) == {"1"} and set(live["deployment"]) == {"live"}
    shadow = mon.read_predictions(log_conn, model_name="pd_model", deployment="shadow")
    assert len(shadow) == 100 and set(shadow["model_version"]) == {"2"}
    assert len(mon.read_predictions(log_conn, deployment=None)) == 200
    with pytest.raises(ValueError, match="deployment"):
        mon.log_predictions(log_conn, batch(5), "pd_model", "2", "x", deployment="canary")


def test_a_log_made_before_the_deployment_column_gets_it(log_conn):
    with log_conn, log_conn.cursor() as cur:
        cur.execute(
            "CREATE SCHEMA monitoring; CREATE TABLE monitoring.prediction_log (id bigserial PRIMARY KEY, "
            "model_name text NOT NULL, model_version text NOT NULL, batch_id text NOT NULL, "
            "application_id text NOT NULL, features jsonb, score double precision NOT NULL, decision smallint, "
            "predicted_at timestamptz NOT NULL DEFAULT now(), latency_ms double precision)"
        )
        cur.execute(
            "INSERT INTO monitoring.prediction_log (model_name, model_version, batch_id, application_id, score) "
            "VALUES ('old', '1', 'b', 'A1', 0.5)"
        )
    mon.ensure_prediction_log(log_conn)
    assert mon.read_predictions(log_conn)["deployment"].tolist() == ["live"]


def test_a_failure_mid_batch_leaves_the_log_as_it_was(log_conn):
    mon.log_predictions(log_conn, batch(100), "pd_model", "1", "2025-01")
    before = mon.read_predictions(log_conn)
    log_conn.rollback()
    broken = batch(100, score=0.3)
    broken.loc[60, "decision"] = 100_000  # out of range for smallint: COPY fails after the DELETE ran
    with pytest.raises(psycopg2.DataError):
        mon.log_predictions(log_conn, broken, "pd_model", "1", "2025-01")
    with pytest.raises(psycopg2.DataError):
        mon.log_predictions(log_conn, broken, "pd_model", "1", "2025-02")
    after = mon.read_predictions(log_conn)
    pd.testing.assert_frame_equal(after, before)
    with pytest.raises(ValueError, match="score"):
        mon.log_predictions(log_conn, batch(5).drop(columns="score"), "pd_model", "1", "2025-01")
    with pytest.raises(ValueError, match="batch_id"):
        mon.log_predictions(log_conn, batch(5), "pd_model", "1", "")
    assert count(log_conn) == 100


def test_performance_over_time_with_delayed_labels(log_conn):
    # Three monthly batches of 10. By the as-of date, 8 of January's outcomes are known,
    # 4 of February's and none of March's; one January outcome is recorded twice.
    for month, start in (("2025-01", 0), ("2025-02", 10), ("2025-03", 20)):
        mon.log_predictions(log_conn, batch(10, start=start, month=month), "pd_model", "1", month)
    as_of = pd.Timestamp("2025-06-01", tz="UTC")
    ids = [f"A{i:010d}" for i in range(30)]
    known = set(range(8)) | set(range(10, 14))
    outcomes = pd.DataFrame(
        {
            "application_id": ids + [ids[0]],
            "serious_dlq": [i % 3 == 0 for i in range(30)] + [True],
            "observed_at": [
                as_of - pd.Timedelta(days=1) if i in known else as_of + pd.Timedelta(days=30)
                for i in range(30)
            ]
            + [as_of - pd.Timedelta(days=2)],
        }
    ).assign(serious_dlq=lambda d: d["serious_dlq"].astype(int))
    with log_conn, log_conn.cursor() as cur:
        cur.execute("CREATE SCHEMA silver")
        cur.execute(
            "CREATE TABLE silver.outcomes (application_id text, observed_at timestamptz, serious_dlq int)"
        )
    applications = pd.DataFrame(
        {"application_id": ids, "applied_at": [f"2025-{1 + i // 10:02d}-10 09:00+00" for i in range(30)]}
    )
    with log_conn, log_conn.cursor() as cur:
        cur.execute("CREATE TABLE silver.applications (application_id text, applied_at timestamptz)")
    with log_conn:
        db.copy_dataframe(log_conn, outcomes, "silver.outcomes")
        db.copy_dataframe(log_conn, applications, "silver.applications")

    table = mon.read_performance_over_time(log_conn, label_table="silver.outcomes", as_of=as_of)
    assert table["window"].tolist() == ["2025-01", "2025-02", "2025-03"]
    assert table["n"].tolist() == [10, 10, 10]
    assert table["n_labelled"].tolist() == [8, 4, 0]
    np.testing.assert_allclose(table["label_coverage"], [0.8, 0.4, 0.0])
    assert table.loc[0, "positive_rate"] == pytest.approx(np.mean([i % 3 == 0 for i in range(8)]))
    assert np.isnan(table.loc[2, "roc_auc"]) and not np.isnan(table.loc[0, "roc_auc"])
    later = mon.read_performance_over_time(
        log_conn, as_of=as_of + pd.Timedelta(days=60), model_name="pd_model"
    )
    np.testing.assert_allclose(later["label_coverage"], [1.0, 1.0, 1.0])
    by_scoring_time = mon.read_performance_over_time(log_conn, as_of=as_of, time_col="predicted_at")
    assert by_scoring_time["window"].tolist() == ["2025-01", "2025-02", "2025-03"]


def test_a_back_filled_batch_keeps_the_application_months(log_conn):
    """All of a year scored today: performance is still reported per application month."""
    ids = [f"A{i:010d}" for i in range(40)]
    log = batch(40, month="2026-11").assign(application_id=ids)
    mon.log_predictions(log_conn, log, "pd_model", "1", "backfill")
    with log_conn, log_conn.cursor() as cur:
        cur.execute("CREATE SCHEMA silver")
        cur.execute(
            "CREATE TABLE silver.outcomes (application_id text, observed_at timestamptz, serious_dlq int)"
        )
        cur.execute("CREATE TABLE silver.applications (application_id text, applied_at timestamptz)")
    applications = pd.DataFrame(
        {"application_id": ids, "applied_at": [f"2025-{1 + i // 10:02d}-10 09:00+00" for i in range(40)]}
    )
    with log_conn:
        db.copy_dataframe(log_conn, applications, "silver.applications")
    table = mon.read_performance_over_time(log_conn, model_name="pd_model")
    assert table["window"].tolist() == ["2025-01", "2025-02", "2025-03", "2025-04"]
    assert table["n"].tolist() == [10, 10, 10, 10]
    scoring_time = mon.read_performance_over_time(log_conn, model_name="pd_model", time_col="predicted_at")
    assert scoring_time["window"].tolist() == ["2026-11"]
