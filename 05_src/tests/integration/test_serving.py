"""`mlsd train`, batch scoring into the prediction log, and MLflow's model server, on real services.

One module-scoped setup: the tiny course data in a throwaway PostgreSQL database, a throwaway
MLflow store, one training run (registering a champion and a challenger) and one model server.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score

from mlsd import db, pipelines, serving, tracking, training
from mlsd._embedded import free_port
from mlsd.data import generate
from mlsd.features import gold_features

pytestmark = pytest.mark.integration

MODEL = "lending-default"
N_ITER = 3


@pytest.fixture(scope="module")
def trained(databases, tmp_path_factory):
    """Tiny data loaded, `train` run once, MLflow pointed at a throwaway store (reset afterwards)."""
    import mlflow
    from threadpoolctl import threadpool_limits

    root = tmp_path_factory.mktemp("serving")
    generate(root / "landing", scale="tiny", seed=7, progress=False)
    url = databases.create()
    conn = db.connect(url)
    pipelines.load(conn, root / "landing")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{(root / 'mlflow' / 'mlflow.db').as_posix()}")
        mp.setenv("MLSD_DATA_DIR", str(root / "data"))
        mp.setenv("MLSD_LOG_DIR", str(root / "logs"))
        mp.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
        summary = training.train(conn, n_iter=N_ITER, random_state=0)
        with threadpool_limits(limits=1):
            yield SimpleNamespace(conn=conn, summary=summary.set_index("alias"))
        mlflow.set_tracking_uri(None)
    conn.close()
    databases.drop(url)


@pytest.fixture(scope="module")
def champion(trained):
    return tracking.load_model(MODEL, "champion", flavor="sklearn")


@pytest.fixture(scope="module")
def server(trained):
    handle = serving.serve(MODEL, port=0, wait=False)  # any free port; comes up while we go on
    assert not handle.url.endswith(":0")
    assert handle.ready_seconds is None and handle.running()
    assert handle.wait() is handle and handle.ready_seconds > 0  # answers /ping from here on
    yield handle
    handle.stop()
    assert not handle.running()


def logged(conn, batch_id: str | None = None) -> pd.DataFrame:
    query = "SELECT * FROM monitoring.prediction_log" + (" WHERE batch_id = %s" if batch_id else "")
    return db.read_sql(conn, query, (batch_id,) if batch_id else None)


# -- training ------------------------------------------------------------------------------


def test_train_registers_both_models_and_makes_the_better_one_champion(trained):
    summary = trained.summary
    assert set(summary.index) == {"champion", "challenger"}
    assert set(summary["model"]) == {"baseline", "tuned"}
    assert summary.loc["champion", "pr_auc"] >= summary.loc["challenger", "pr_auc"]
    for alias in ("champion", "challenger"):
        version = tracking.get_model_version(MODEL, alias)
        assert str(version.version) == summary.loc[alias, "version"]
        assert float(version.tags["threshold"]) == pytest.approx(summary.loc[alias, "threshold"])
        assert version.tags["role"] == summary.loc[alias, "model"]


def test_train_reports_validation_scores_of_the_registered_models(trained, champion):
    from mlflow.tracking import MlflowClient

    data = training.load_training_data(trained.conn)
    assert data.valid_months == ("2025-01", "2025-03")
    recomputed = average_precision_score(data.y_valid, champion.predict_proba(data.X_valid)[:, 1])
    assert recomputed == pytest.approx(trained.summary.loc["champion", "pr_auc"])
    assert recomputed > 2 * data.y_valid.mean()  # far better than ranking at random
    client = MlflowClient()
    run = client.get_run(trained.summary.loc["champion", "run_id"]).data
    assert run.metrics["valid_pr_auc"] == pytest.approx(recomputed)
    assert run.params["train_months"] == "2024-01..2024-12"
    tuned_run = trained.summary.set_index("model").loc["tuned", "run_id"]
    experiment = client.get_run(tuned_run).info.experiment_id
    children = client.search_runs([experiment], f"tags.mlflow.parentRunId = '{tuned_run}'")
    assert len(children) == N_ITER


# -- batch ---------------------------------------------------------------------------------


def test_score_month_logs_one_prediction_per_application(trained, champion):
    conn = trained.conn
    result = serving.score_month(conn, "2025-04")
    version = trained.summary.loc["champion", "version"]
    assert result.batch_id == f"2025-04:{MODEL}:v{version}"
    gold = gold_features(conn, month="2025-04")
    rows = logged(conn, result.batch_id)
    assert result.rows == len(rows) == len(gold) > 0
    assert set(rows["application_id"]) == set(gold["application_id"])
    expected = pd.Series(
        champion.predict_proba(training.model_input(gold))[:, 1], index=gold["application_id"]
    )
    np.testing.assert_allclose(rows.set_index("application_id")["score"].loc[expected.index], expected)
    threshold = trained.summary.loc["champion", "threshold"]
    assert result.threshold == pytest.approx(threshold)
    assert (rows["decision"] == (rows["score"] >= threshold).astype(int)).all()
    assert result.flagged == rows["decision"].sum()
    assert (rows["model_version"] == version).all() and rows["latency_ms"].gt(0).all()
    assert rows["predicted_at"].nunique() == 1


def test_rescoring_a_batch_replaces_it(trained):
    conn = trained.conn
    first = serving.score_month(conn, "2025-05")
    before = logged(conn, first.batch_id)
    again = serving.score_month(conn, "2025-05")
    after = logged(conn, again.batch_id)
    assert again.batch_id == first.batch_id
    assert len(after) == len(before) == first.rows  # replaced, not duplicated
    assert after["predicted_at"].min() > before["predicted_at"].max()
    assert sorted(after["application_id"]) == sorted(before["application_id"])


def test_another_month_or_batch_id_adds_rows(trained):
    conn = trained.conn
    serving.score_month(conn, "2025-06")
    total = len(logged(conn))
    other = serving.score_month(conn, "2025-07")
    assert len(logged(conn)) == total + other.rows
    challenger = serving.score_month(conn, "2025-07", alias="challenger", batch_id="2025-07:shadow")
    assert len(logged(conn)) == total + other.rows + challenger.rows
    assert set(logged(conn, "2025-07:shadow")["model_version"]) == {
        trained.summary.loc["challenger", "version"]
    }


def test_score_month_without_applications_says_so(trained):
    with pytest.raises(serving.ServingError, match="no applications"):
        serving.score_month(trained.conn, "2031-01")


def test_mlsd_score_logs_the_months_and_prints_their_batches(trained, monkeypatch, capsys):
    from mlsd import cli

    params = trained.conn.get_dsn_parameters()
    monkeypatch.setenv(
        "DATABASE_URL", f"postgresql://{params['user']}@{params['host']}:{params['port']}/{params['dbname']}"
    )
    assert cli.main(["score", "2025-08", "2025-09", "--alias", "challenger"]) == 0
    version = trained.summary.loc["challenger", "version"]
    out = capsys.readouterr().out
    for month in ("2025-08", "2025-09"):
        batch = f"{month}:{MODEL}:v{version}"
        line = next(line for line in out.splitlines() if line.startswith(month))
        assert line.split()[-1] == batch and f"{len(logged(trained.conn, batch)):,}" in line.split()
    assert "monitoring.prediction_log" in out


# -- online --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rows(trained) -> pd.DataFrame:
    return training.model_input(gold_features(trained.conn, month="2025-04")).head(5)


def test_server_answers_like_the_in_process_model(server, champion, rows):
    assert server.version == str(tracking.get_model_version(MODEL, "champion").version)
    client = server.client()
    single = client.predict(rows.head(1))
    assert single.shape == (1,)
    assert single[0] == pytest.approx(champion.predict_proba(rows.head(1))[0, 1], abs=1e-12)
    np.testing.assert_allclose(client.predict(rows), champion.predict_proba(rows)[:, 1], atol=1e-12)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing column", "missing inputs ['age']"),
        ("wrong type", "amount"),
        ("malformed JSON", "valid JSON"),
        ("unknown format", "dataframe_split"),
    ],
)
def test_server_refuses_invalid_requests_with_a_clear_4xx(server, rows, case, expected):
    client = server.client()
    split = json.loads(rows.head(1).to_json(orient="split", date_format="iso", index=False))
    with pytest.raises(serving.ServingError) as refused:
        if case == "missing column":
            client.predict(rows.head(1).drop(columns="age"))
        elif case == "wrong type":
            client.predict(rows.head(1).assign(amount="a lot"))
        elif case == "malformed JSON":
            client.request('{"dataframe_split": {"columns": ["age"], "data": [[1,]]')
        else:
            client.request({"rows": split})
    assert refused.value.status_code == 400
    assert expected in str(refused.value)


def test_serving_an_unknown_alias_fails_before_starting(trained):
    with pytest.raises(tracking.RegistryError, match="no-such-alias"):
        serving.serve(MODEL, alias="no-such-alias", port=free_port())
