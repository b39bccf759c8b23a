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
    performance_over_time,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ALPHA = 0.05
REFERENCE = ("2024-01", "2024-06")
NO_DRIFT = [f"2024-{m:02d}" for m in range(7, 13)] + ["2025-01", "2025-02", "2025-03"]
AFTER_COVARIATE_SHIFT = [f"2025-{m:02d}" for m in range(4, 13)]
LABEL_SHIFT_QUARTERS = {"before": ("2025-04", "2025-06"), "after": ("2025-07", "2025-09")}
AS_OF = "2026-07-01"


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


def test_label_shift_shows_in_the_default_rate(gold):
    _, frame = gold
    labelled = frame.dropna(subset=["serious_dlq"])
    rate = labelled.groupby("month")["serious_dlq"].mean()
    before = rate.loc["2024-01":"2025-03"].mean()
    after = rate.loc["2025-07":"2025-09"].mean()
    assert 0.05 < before < 0.085
    assert after > before * 1.5  # the odds of default double


@pytest.fixture(scope="module")
def scored(gold):
    """A champion trained on the drift-free months, scored on every month."""
    from mlsd import training

    _, frame = gold
    frame = frame.sort_values(["applied_at", "application_id"])
    fit = frame[(frame["month"] <= "2025-03") & frame["serious_dlq"].notna()]
    model = training.tuned_pipeline(random_state=0).set_params(model__max_iter=100, model__max_leaf_nodes=15)
    model.fit(training.model_input(fit), fit["serious_dlq"].astype(int))
    return frame.assign(score=model.predict_proba(training.model_input(frame))[:, 1])


@pytest.fixture(scope="module")
def performance(scored):
    """The champion's performance per application month, on the labels known at ``as_of``."""
    labels = scored.dropna(subset=["serious_dlq"]).rename(columns={"label_observed_at": "observed_at"})
    predictions = scored[["application_id", "applied_at", "score"]]
    return performance_over_time(predictions, labels, as_of=AS_OF, time_col="applied_at").set_index("window")


def test_label_shift_moves_the_scores_before_any_label_arrives(scored):
    """Unlike a concept drift, a label shift moves P(x): more applicants look like defaulters."""
    from scipy import stats

    before, after = (scored.loc[scored["month"].between(*q), "score"] for q in LABEL_SHIFT_QUARTERS.values())
    print(f"mean score {before.mean():.4f} -> {after.mean():.4f}")
    assert after.mean() > before.mean()
    assert stats.mannwhitneyu(before, after, alternative="less").pvalue < 0.01


def test_concept_drift_lowers_the_champions_performance_on_delayed_labels(performance):
    # the label-shift quarter has as many defaults, so ranking metrics compare like with like
    shifted, drifted = performance.loc["2025-07":"2025-09"], performance.loc["2025-10":"2025-12"]
    assert (drifted["label_coverage"] > 0.8).all()  # their performance window has closed
    assert abs(drifted["positive_rate"].mean() - shifted["positive_rate"].mean()) < 0.04
    print(f"ROC-AUC {shifted['roc_auc'].mean():.3f} -> {drifted['roc_auc'].mean():.3f}, "
          f"PR-AUC {shifted['pr_auc'].mean():.3f} -> {drifted['pr_auc'].mean():.3f}")  # fmt: skip
    assert drifted["roc_auc"].mean() < shifted["roc_auc"].mean() - 0.05
    assert drifted["pr_auc"].mean() < shifted["pr_auc"].mean()


def test_the_newest_labels_are_the_defaults(performance):
    """Defaults are known 4-6 months after the application, repaid loans only after 6: label bias."""
    newest = performance.loc["2026-01":"2026-02"]
    assert (newest["label_coverage"] < 0.3).all() and (newest["positive_rate"] == 1.0).all()
    assert performance.loc["2026-04":, "n_labelled"].eq(0).all()


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
