"""mlsd.monitoring without a database: drift statistics, the drift rule, windows, delayed labels, alerts."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import expit
from sklearn import metrics

from mlsd import monitoring as mon

ALPHA = 0.05
CHANNELS = ["branch", "web", "mobile", "broker"]


def applications(rng: np.random.Generator, n: int = 2000) -> pd.DataFrame:
    """Twelve features shaped like the course data: skewed, zero-inflated, missing, long-tailed."""
    income = rng.lognormal(8, 0.5, n)
    income[rng.random(n) < 0.2] = np.nan  # about 20% missing, as in the course data
    late = rng.poisson(0.2, n).astype(float)
    late[rng.random(n) < 0.01] = 98  # the sentinel code
    tail = np.r_[np.full(8, 0.1), np.full(40, 0.005)]
    return pd.DataFrame(
        {
            "age": rng.integers(21, 90, n),
            "amount": rng.lognormal(9, 0.8, n),
            "utilization": rng.lognormal(-1, 1, n),
            "debt_ratio": rng.lognormal(-1, 0.7, n),
            "monthly_income": income,
            "late_30_59": late,
            "open_lines": rng.poisson(8, n),
            "score": expit(rng.normal(-2.6, 0.8, n)),
            "channel": rng.choice(CHANNELS, n, p=[0.4, 0.3, 0.2, 0.1]),
            "purpose": rng.choice(list("abcdefghij"), n),
            "region": rng.choice([f"r{i}" for i in range(48)], n, p=tail),
            "term_months": rng.choice(["12", "24", "36", "48", "60"], n),
        }
    )


# -- the statistics --------------------------------------------------------------------


def test_ks_test_matches_scipy_and_drops_missing():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=300), rng.normal(0.2, 1, 400)
    expected = stats.ks_2samp(a, b)
    result = mon.ks_test(np.r_[a, np.nan], pd.Series(b))
    assert result.statistic == pytest.approx(expected.statistic)
    assert result.p_value == pytest.approx(expected.pvalue)
    with pytest.raises(ValueError, match="numeric"):
        mon.ks_test(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="non-missing"):
        mon.ks_test([np.nan], [1.0])


def test_psi_by_hand():
    # Reference 25/25/25/25, current 10/20/30/40: sum((c - r) * ln(c / r)).
    ref = np.repeat([1, 2, 3, 4], 25)
    cur = np.repeat([1, 2, 3, 4], [10, 20, 30, 40])
    r, c = np.full(4, 0.25), np.array([0.1, 0.2, 0.3, 0.4])
    by_hand = np.sum((c - r) * np.log(c / r))
    assert by_hand == pytest.approx(0.2282, abs=1e-4)
    assert mon.psi(ref, cur, bins=[1, 2, 3]) == pytest.approx(by_hand)
    assert mon.psi(ref, cur, bins=4) == pytest.approx(by_hand)  # quantile cuts fall between the values
    assert mon.psi(ref, ref, bins=4) == 0


def test_psi_empty_bin_uses_epsilon_and_missing_is_a_bin():
    ref = np.repeat([1.0, 2.0], 50)
    cur = np.r_[np.repeat(2.0, 50), np.full(50, np.nan)]
    eps = 1e-4
    # Bins: (-inf, 1], (1, inf), missing -> ref 0.5/0.5/0, cur 0/0.5/0.5.
    by_hand = (eps - 0.5) * np.log(eps / 0.5) + (0.5 - eps) * np.log(0.5 / eps)
    assert mon.psi(ref, cur, bins=[1.0], eps=eps) == pytest.approx(by_hand)
    assert np.isfinite(mon.psi(ref, cur, bins=2))


def test_psi_of_a_normal_mean_shift_matches_the_textbook_value():
    # On the reference's decile bins, PSI of N(0.5, 1) against N(0, 1) is known exactly from the CDF.
    rng = np.random.default_rng(1)
    ref, cur = rng.normal(size=200_000), rng.normal(0.5, 1, 200_000)
    cuts = stats.norm.ppf(np.linspace(0, 1, 11)[1:-1])
    p = np.full(10, 0.1)
    q = np.diff(np.r_[0, stats.norm.cdf(cuts - 0.5), 1])
    textbook = np.sum((q - p) * np.log(q / p))
    assert mon.psi(ref, cur, bins=10) == pytest.approx(textbook, abs=0.005)
    assert 0.2 < textbook < 0.25  # close to the continuous limit, delta squared = 0.25
    assert mon.psi(ref, rng.normal(size=200_000)) < 0.001


def test_js_distance():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=5000), rng.normal(1, 1, 5000)
    assert mon.js_distance(a, a) == 0
    assert 0.1 < mon.js_distance(a, b) < 1
    assert mon.js_distance(a, b) > mon.js_distance(a, rng.normal(0.5, 1, 5000))
    assert mon.js_distance(["a"] * 5, ["b"] * 5) == pytest.approx(1)
    # By hand on bins (-inf, 1], (1, 2], (2, 3], (3, inf): JSD = H(m) - (H(p) + H(q)) / 2, in bits.
    p, q = np.array([0.5, 0.5, 0, 0]), np.full(4, 0.25)
    jsd = stats.entropy((p + q) / 2, base=2) - (stats.entropy(p, base=2) + stats.entropy(q, base=2)) / 2
    assert mon.js_distance([1, 1, 2, 2], [1, 2, 3, 4], bins=[1, 2, 3]) == pytest.approx(np.sqrt(jsd))


def test_chi2_with_unseen_categories_matches_scipy_on_the_full_table():
    ref = ["web"] * 60 + ["branch"] * 40
    cur = ["web"] * 40 + ["branch"] * 30 + ["partner_app"] * 30 + [None] * 20
    # Every category of either sample, plus missing: web, branch, partner_app, (missing).
    table = np.array([[60, 40, 0, 0], [40, 30, 30, 20]])
    expected = stats.chi2_contingency(table)
    result = mon.chi2_test(ref, cur)
    assert result.statistic == pytest.approx(expected.statistic)
    assert result.p_value == pytest.approx(expected.pvalue)
    assert mon.chi2_test(ref, ref) == (0.0, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert mon.chi2_test(["a", "b"], ["c", "d"]) == (0.0, 1.0)  # too few cases to test anything
    # In PSI the unseen category and the missing values fall in bins the reference leaves empty.
    assert mon.psi(ref, cur) > 1


def test_chi2_merges_sparse_bins_so_a_long_tail_is_not_drift():
    rng = np.random.default_rng(3)
    shares = np.r_[np.full(10, 0.08), np.full(200, 0.001)]
    names = [f"c{i}" for i in range(len(shares))]
    p_values = [
        mon.chi2_test(
            rng.choice(names, 2000, p=shares / shares.sum()), rng.choice(names, 2000, p=shares / shares.sum())
        ).p_value
        for _ in range(300)
    ]
    assert np.mean(np.array(p_values) < ALPHA) <= ALPHA + 0.03


# -- the drift rule: false alarms and real shifts --------------------------------------


def test_no_drift_false_alarm_rate_stays_below_alpha():
    seed = 20240101
    print(f"seed {seed}")
    rng = np.random.default_rng(seed)
    reports = []
    for repetition in range(200):
        report = mon.ReferenceProfile.fit(applications(rng)).compare(applications(rng))
        report["bonferroni"] = mon.DriftRule(correction="bonferroni").flag(report)
        reports.append(report.assign(repetition=repetition))
    runs = pd.concat(reports, ignore_index=True)
    assert len(runs) == 200 * 12
    margin = 0.02  # about 2.5 standard errors of a rate of 0.05 over 400 tests, per feature
    per_feature = runs.groupby("feature")["drifted"].mean()
    assert (per_feature <= ALPHA + margin).all(), per_feature
    assert runs["drifted"].mean() <= ALPHA
    # The p-values are valid (near-uniform): about alpha of them fall below alpha...
    assert ALPHA / 2 <= (runs["p_value"] < ALPHA).mean() <= ALPHA + 0.01
    # ...and Bonferroni keeps the chance of any false alarm in a window near alpha.
    assert runs.groupby("repetition")["bonferroni"].any().mean() <= ALPHA + 0.03


def test_real_shifts_are_flagged():
    rng = np.random.default_rng(4)
    ref, cur = applications(rng), applications(rng)
    sd = ref["amount"].std()
    new_channel = rng.random(len(cur)) < 0.3
    logit = rng.normal(size=len(cur))
    cur = cur.assign(
        amount=cur["amount"] + 0.3 * sd,  # a mean shift of 0.3 standard deviations
        channel=np.where(new_channel, "partner_app", cur["channel"]),  # a new channel takes 30%
        score=expit(-2.6 + 2 * 0.8 * logit),  # the coefficient behind the score doubles
    )
    report = mon.drift_report(ref, cur).set_index("feature")
    assert report["drifted"].to_dict() == {
        name: name in {"amount", "channel", "score"} for name in report.index
    }
    assert report.loc["channel", "psi"] > mon.PSI_MAJOR
    assert report.loc["amount", "statistic"] >= 0.05
    bonferroni = mon.drift_report(ref, cur, rule=mon.DriftRule(correction="bonferroni"))
    assert set(bonferroni.loc[bonferroni["drifted"], "feature"]) == {"amount", "channel", "score"}


def test_a_shift_in_missing_share_is_tested_and_a_tiny_effect_is_not_flagged():
    rng = np.random.default_rng(5)
    n = 50_000
    income = rng.lognormal(8, 0.5, n)
    more_missing = np.where(rng.random(n) < 0.45, np.nan, income)
    ref = pd.DataFrame({"income": np.where(rng.random(n) < 0.2, np.nan, rng.lognormal(8, 0.5, n))})
    report = mon.drift_report(ref, pd.DataFrame({"income": more_missing})).iloc[0]
    assert report["test"] == "ks+missing" and report["drifted"]
    assert report["missing_cur"] == pytest.approx(0.45, abs=0.01)
    # A shift of 0.03 sd in a large sample is significant but too small to matter.
    tiny = mon.drift_report(ref, ref.assign(income=ref["income"] * 1.015)).iloc[0]
    assert tiny["p_value"] < ALPHA and tiny["statistic"] < 0.05 and not tiny["drifted"]


def test_profile_input_checks_and_inference():
    rng = np.random.default_rng(6)
    frame = applications(rng, 500).assign(application_id=[f"A{i}" for i in range(500)])
    profile = mon.ReferenceProfile.fit(frame)
    assert "application_id" not in profile.features
    assert set(profile.numeric) == set(frame.select_dtypes("number").columns)
    with pytest.raises(ValueError, match=r"lacks column\(s\)"):
        profile.compare(frame.drop(columns="age"))
    with pytest.raises(ValueError, match="empty"):
        profile.compare(frame.iloc[:0])
    with pytest.raises(ValueError, match="numeric"):
        mon.ReferenceProfile.fit(frame, numeric=["channel"])
    with pytest.raises(ValueError, match="correction"):
        mon.DriftRule(correction="holm")


# -- windows ---------------------------------------------------------------------------


def monthly(seed: int = 7, rows: int = 1500) -> pd.DataFrame:
    """Twelve months; from 2024-10 a new channel takes 30% and amounts rise by 0.3 sd."""
    rng = np.random.default_rng(seed)
    months = pd.period_range("2024-01", "2024-12", freq="M").astype(str)
    frames = []
    for month in months:
        frame = applications(rng, rows)
        if month >= "2024-10":
            frame["channel"] = np.where(rng.random(rows) < 0.3, "partner_app", frame["channel"])
            frame["amount"] += 0.3 * frame["amount"].std()
        frames.append(frame.assign(month=month))
    return pd.concat(frames, ignore_index=True)


def test_compare_windows_month_by_month():
    df = monthly()
    report = mon.compare_windows(df, "month", reference=("2024-01", "2024-03"))
    assert report["window"].unique().tolist() == [f"2024-{m:02d}" for m in range(4, 13)]
    assert len(report) == 9 * 12
    flagged = report[report["drifted"]]
    assert set(flagged["window"]) == {"2024-10", "2024-11", "2024-12"}
    late = report[report["window"] >= "2024-10"].set_index(["window", "feature"])["drifted"]
    assert late.xs("channel", level="feature").all() and late.xs("amount", level="feature").all()
    assert report.loc[report["window"] < "2024-10", "drifted"].mean() <= ALPHA


def test_compare_windows_with_timestamps_and_explicit_windows():
    df = monthly(rows=800)
    stamps = pd.to_datetime(df["month"]) + pd.to_timedelta(np.arange(len(df)) % 20, unit="D")
    df = df.assign(applied_at=stamps.dt.tz_localize("UTC")).drop(columns="month")
    report = mon.compare_windows(
        df,
        "applied_at",
        reference=("2024-01", "2024-06"),
        windows=[("2024-07", "2024-09"), "2024-12"],
        numeric=["amount"],
        categorical=["channel"],
    )
    assert report["window"].tolist() == ["2024-07..2024-09"] * 2 + ["2024-12"] * 2
    assert report.loc[report["n_cur"].idxmax(), "n_cur"] == 3 * 800
    assert report.groupby("window")["drifted"].any().to_dict() == {"2024-07..2024-09": False, "2024-12": True}


def test_drift_figure():
    rng = np.random.default_rng(8)
    report = mon.drift_report(applications(rng), applications(rng).assign(age=lambda d: d["age"] + 10))
    fig = mon.drift_figure(report)
    (ax,) = fig.axes
    assert len(ax.patches) == len(report)
    assert {line.get_xdata()[0] for line in ax.lines} == {mon.PSI_MODERATE, mon.PSI_MAJOR}
    windows = mon.compare_windows(monthly(rows=300), "month", ("2024-01", "2024-06"), numeric=["amount"])
    assert len(mon.drift_figure(windows).axes[0].lines) == 1 + 2


# -- delayed labels --------------------------------------------------------------------


def scored_history(seed: int = 9) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Six months of predictions; each outcome is observed 3 to 8 months after its prediction."""
    rng = np.random.default_rng(seed)
    n = 3000
    predicted_at = pd.Timestamp("2025-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 181, n), unit="D")
    y = (rng.random(n) < 0.1).astype(int)
    predictions = pd.DataFrame(
        {
            "application_id": [f"A{i:010d}" for i in range(n)],
            "score": expit(-2.5 + 2 * y + rng.normal(0, 1, n)),
            "predicted_at": predicted_at,
        }
    )
    delay = pd.to_timedelta(rng.integers(90, 240, n), unit="D")
    labels = pd.DataFrame(
        {
            "application_id": predictions["application_id"],
            "serious_dlq": y,
            "observed_at": predicted_at + delay,
        }
    )
    return predictions, labels


def test_performance_over_time_counts_only_labels_known_at_as_of():
    predictions, labels = scored_history()
    as_of = pd.Timestamp("2025-08-01", tz="UTC")
    table = mon.performance_over_time(predictions, labels, as_of=as_of)
    assert table["window"].tolist() == [f"2025-{m:02d}" for m in range(1, 7)]
    assert table["n"].sum() == len(predictions)
    known = labels["observed_at"] <= as_of
    month = predictions["predicted_at"].dt.strftime("%Y-%m")
    expected = known.groupby(month).mean()
    np.testing.assert_allclose(table["label_coverage"], expected.to_numpy())
    assert table["label_coverage"].is_monotonic_decreasing and table["label_coverage"].iloc[-1] < 0.2
    january = month == "2025-01"
    rows = january & known
    assert table.loc[0, "roc_auc"] == pytest.approx(
        metrics.roc_auc_score(labels["serious_dlq"][rows], predictions["score"][rows])
    )
    everything = mon.performance_over_time(predictions, labels)
    assert (everything["label_coverage"] == 1).all()
    # A naive as_of is UTC; an outcome observed twice counts once, at its first observation.
    doubled = pd.concat([labels, labels.assign(observed_at=labels["observed_at"] + pd.Timedelta(days=400))])
    again = mon.performance_over_time(predictions, doubled, as_of="2025-08-01")
    pd.testing.assert_frame_equal(again, table)


def test_performance_over_time_without_labels_yet():
    predictions, labels = scored_history()
    table = mon.performance_over_time(predictions, labels, as_of="2025-01-15")
    assert (table["label_coverage"] == 0).all() and table["pr_auc"].isna().all()
    with pytest.raises(ValueError, match=r"lacks column\(s\)"):
        mon.performance_over_time(predictions.drop(columns="score"), labels)


# -- alerts ----------------------------------------------------------------------------


def test_alerts_fire_on_drift_and_performance_reports():
    report = pd.DataFrame(
        {
            "window": ["2025-04"] * 3,
            "feature": ["age", "channel", "score"],
            "psi": [0.05, 0.6, 0.12],
            "drifted": [False, True, True],
        }
    )
    fired = mon.evaluate_alerts(report, mon.default_alert_rules(reference_pr_auc=0.4))
    assert sorted(zip(fired["rule"], fired["feature"], strict=True)) == [
        ("feature_drift", "channel"),
        ("feature_drift", "score"),
        ("feature_psi_major", "channel"),
        ("score_drift", "score"),
    ]
    performance = pd.DataFrame({"window": ["2025-01", "2025-02", "2025-03"], "pr_auc": [0.41, 0.36, np.nan]})
    drop = mon.evaluate_alerts(
        performance, mon.default_alert_rules(reference_pr_auc=0.4, max_pr_auc_drop=0.03)
    )
    assert drop[["rule", "window", "value"]].to_numpy().tolist() == [["pr_auc_drop", "2025-02", 0.36]]
    quiet = mon.evaluate_alerts(report.assign(psi=0.0, drifted=False))
    assert quiet.empty and "rule" in quiet.columns
    custom = mon.evaluate_alerts(report, [mon.AlertRule("age_moves", "psi", ">=", 0.05, feature="age")])
    assert custom["feature"].tolist() == ["age"]
    with pytest.raises(ValueError, match="op must be"):
        mon.AlertRule("bad", "psi", "=>", 0.1)
