"""Drift detection on the generator's scenarios: flagged after the shift, quiet before it."""

from __future__ import annotations

import pandas as pd
import pytest

from mlsd import db, pipelines
from mlsd.data import generate
from mlsd.features import gold_features
from mlsd.monitoring import (
    MONITORED_CATEGORICAL,
    MONITORED_NUMERIC,
    DriftRule,
    compare_windows,
    monitor_month,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ALPHA = 0.05
REFERENCE = ("2024-01", "2024-06")
NO_DRIFT = [f"2024-{m:02d}" for m in range(7, 13)] + ["2025-01", "2025-02", "2025-03"]
AFTER_COVARIATE_SHIFT = [f"2025-{m:02d}" for m in range(4, 13)]


@pytest.fixture(scope="module")
def gold(databases, tmp_path_factory):
    landing = tmp_path_factory.mktemp("scenarios") / "rows24000"
    generate(landing, rows=24_000, seed=21, progress=False)
    url = databases.create()
    conn = db.connect(url)
    pipelines.load(conn, landing)
    frame = gold_features(conn)
    yield conn, frame.assign(term_months=pd.to_numeric(frame["term_months"]).astype("Int64").astype("string"))
    conn.close()
    databases.drop(url)


@pytest.fixture(scope="module")
def windows(gold):
    _, frame = gold
    return compare_windows(
        frame,
        "month",
        reference=REFERENCE,
        windows=NO_DRIFT + AFTER_COVARIATE_SHIFT,
        numeric=list(MONITORED_NUMERIC),
        categorical=list(MONITORED_CATEGORICAL),
        rule=DriftRule(alpha=ALPHA),
    )


def test_no_drift_period_false_alarm_rate_is_at_most_alpha(windows):
    quiet = windows[windows["window"].astype(str).isin(NO_DRIFT)]
    assert len(quiet) == len(NO_DRIFT) * (len(MONITORED_NUMERIC) + len(MONITORED_CATEGORICAL))
    rate = quiet["drifted"].mean()
    print(f"false-alarm rate in the no-drift period: {rate:.3f} over {len(quiet)} tests")
    assert rate <= ALPHA


def test_covariate_shift_is_flagged_in_every_month_after_it(windows):
    after = windows[windows["window"].astype(str).isin(AFTER_COVARIATE_SHIFT)]
    for feature in ("channel", "age", "monthly_income"):
        flagged = after[after["feature"] == feature].set_index("window")["drifted"]
        assert flagged.all(), f"{feature} not flagged in {flagged[~flagged].index.tolist()}"


def test_prior_shift_shows_in_the_default_rate(gold):
    _, frame = gold
    labelled = frame.dropna(subset=["serious_dlq"])
    rate = labelled.groupby("month")["serious_dlq"].mean()
    before = rate.loc["2024-01":"2025-03"].mean()
    after = rate.loc["2025-07":"2025-09"].mean()
    assert 0.05 < before < 0.085
    assert after > before * 1.25


def test_monitor_month_reports_drift_and_alerts(gold):
    conn, _ = gold
    quiet = monitor_month(conn, "2024-10", reference=REFERENCE)
    shifted = monitor_month(conn, "2025-06", reference=REFERENCE)
    assert set(quiet.drift["feature"]) == set(MONITORED_NUMERIC) | set(MONITORED_CATEGORICAL)
    assert quiet.drift["drifted"].sum() <= 1
    assert shifted.drift.set_index("feature").loc["channel", "drifted"]
    assert "channel" in set(shifted.alerts.get("feature", []))
    with pytest.raises(ValueError, match="no rows for 2031-01"):
        monitor_month(conn, "2031-01", reference=REFERENCE)


def test_mlsd_monitor_prints_the_drift_table(gold, monkeypatch, capsys):
    from mlsd import cli

    conn, _ = gold
    params = conn.get_dsn_parameters()
    monkeypatch.setenv(
        "DATABASE_URL", f"postgresql://{params['user']}@{params['host']}:{params['port']}/{params['dbname']}"
    )
    assert cli.main(["monitor", "--month", "2025-06", "--reference-end", "2024-06"]) == 0
    out = capsys.readouterr().out
    channel = next(line for line in out.splitlines() if line.startswith("channel"))
    assert channel.rstrip().endswith("DRIFT")
    assert "alert" in out
