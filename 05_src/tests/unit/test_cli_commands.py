"""Command handlers format what the package returns (package calls replaced, no database)."""

from __future__ import annotations

import pandas as pd
import pytest

from mlsd import cli, db, serving, training


class FakeConnection:
    closed = False

    def close(self):
        self.closed = True


@pytest.fixture
def conn(monkeypatch):
    connection = FakeConnection()
    monkeypatch.setattr(db, "connect", lambda *a, **k: connection)
    return connection


def test_train_prints_one_row_per_model_and_where_the_runs_are(monkeypatch, capsys, conn):
    calls = {}

    def train(connection, **kwargs):
        calls.update(kwargs, connection=connection)
        summary = pd.DataFrame(
            {
                "model": ["baseline", "tuned"],
                "cv_pr_auc": [0.31, 0.36],
                "pr_auc": [0.30, 0.351],
                "roc_auc": [0.8, 0.83],
                "threshold": [0.16, 0.14],
                "run_id": ["r1", "r2"],
                "version": ["1", "2"],
                "alias": ["challenger", "champion"],
            }
        )
        summary.attrs.update(seconds=12.34, tracking_uri="sqlite:////store/mlflow.db")
        return summary

    monkeypatch.setattr(training, "train", train)
    assert cli.main(["train", "--method", "grid", "--n-iter", "3", "--seed", "7", "--dask"]) == 0
    out = capsys.readouterr().out
    assert calls["connection"] is conn and conn.closed
    assert (calls["tune_method"], calls["n_iter"], calls["random_state"], calls["use_dask"]) == (
        "grid",
        3,
        7,
        True,
    )
    tuned = next(line for line in out.splitlines() if line.startswith("tuned"))
    assert tuned.split() == ["tuned", "0.360", "0.351", "0.830", "0.140", "2", "champion", "r2"]
    assert "Trained in 12.3 s; runs in experiment 'lending-default' at sqlite:////store/mlflow.db" in out


def _batch(month: str) -> serving.BatchResult:
    return serving.BatchResult(
        batch_id=f"{month}:m:v2",
        model_name="m",
        model_version="2",
        month=month,
        rows=1500,
        threshold=0.14,
        flagged=120,
        load_seconds=1.0,
        score_seconds=0.5,
        write_seconds=0.5,
    )


def test_score_prints_one_row_per_month(monkeypatch, capsys, conn):
    monkeypatch.setattr(serving, "score_month", lambda connection, month, **kwargs: _batch(month))
    assert cli.main(["score", "2025-04", "2025-05", "--model", "m"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("2025-")]
    assert rows == [
        ["2025-04", "m", "v2", "1,500", "120", "0.140", "1,500", "2025-04:m:v2"],
        ["2025-05", "m", "v2", "1,500", "120", "0.140", "1,500", "2025-05:m:v2"],
    ]
    assert conn.closed


def test_score_refuses_one_batch_id_for_several_months(capsys):
    assert cli.main(["score", "2025-04", "2025-05", "--batch-id", "b"]) == 2
    assert "--batch-id names one batch" in capsys.readouterr().err


def test_a_package_error_is_one_line_on_stderr(monkeypatch, capsys, conn):
    def fail(connection, month, **kwargs):
        raise serving.ServingError(
            f"gold.application_features has no applications in {month!r}: load the data."
        )

    monkeypatch.setattr(serving, "score_month", fail)
    assert cli.main(["score", "2031-01"]) == 1
    err = capsys.readouterr().err
    assert err == "error: gold.application_features has no applications in '2031-01': load the data.\n"
    assert conn.closed
