"""mlsd.evaluation: metrics, thresholds by cost, calibration, slices, baselines, behavioural tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from sklearn import metrics
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlsd import evaluation as ev

FEATURES = ["late_30_59", "late_60_89", "late_90", "revolving_utilization", "debt_ratio", "age"]


def applicants(n: int = 4000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Synthetic applicants whose risk rises with late payments, utilisation, debt, youth."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "application_id": [f"A{i:010d}" for i in range(n)],
            "channel": rng.choice(["branch", "web", "mobile"], n),
            "late_30_59": rng.poisson(0.3, n),
            "late_60_89": rng.poisson(0.1, n),
            "late_90": rng.poisson(0.08, n),
            "revolving_utilization": rng.beta(1, 2, n) * 1.2,
            "debt_ratio": rng.lognormal(-1, 0.6, n),
            "age": rng.integers(21, 80, n),
        }
    )
    logit = (
        -3.2
        + 0.6 * X["late_30_59"]
        + 0.9 * X["late_60_89"]
        + 1.2 * X["late_90"]
        + 1.5 * X["revolving_utilization"]
        + 0.5 * X["debt_ratio"]
        - 0.02 * (X["age"] - 45)
    )
    y = (rng.random(n) < expit(logit)).astype(int)
    return X, y


def fitted_logistic(X: pd.DataFrame, y: np.ndarray):
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(X[FEATURES], y)


class ColumnModel:
    """A hand-made 'model' whose score is a function of the frame: easy to break on purpose."""

    def __init__(self, score):
        self.score = score

    def predict_proba(self, X):
        s = np.clip(np.asarray(self.score(X), dtype=float), 0, 1)
        return np.column_stack([1 - s, s])


# -- metrics ---------------------------------------------------------------------------


def test_classification_metrics_match_sklearn():
    rng = np.random.default_rng(1)
    y = (rng.random(500) < 0.1).astype(int)
    s = np.clip(0.1 + 0.3 * y + rng.normal(0, 0.15, 500), 0, 1)
    m = ev.classification_metrics(y, s, threshold=0.3)
    pred = (s >= 0.3).astype(int)
    assert m["pr_auc"] == pytest.approx(metrics.average_precision_score(y, s))
    assert m["roc_auc"] == pytest.approx(metrics.roc_auc_score(y, s))
    assert m["f1"] == pytest.approx(metrics.f1_score(y, pred))
    assert m["precision"] == pytest.approx(metrics.precision_score(y, pred))
    assert m["recall"] == pytest.approx(metrics.recall_score(y, pred))
    assert m["balanced_accuracy"] == pytest.approx(metrics.balanced_accuracy_score(y, pred))
    assert m["log_loss"] == pytest.approx(metrics.log_loss(y, s))
    assert m["brier"] == pytest.approx(metrics.brier_score_loss(y, s))
    assert m["positive_rate"] == pytest.approx(y.mean())
    assert m["predicted_positive_rate"] == pytest.approx(pred.mean())
    assert m["n"] == 500 and m["positives"] == y.sum()


def test_a_score_equal_to_the_threshold_is_flagged():
    m = ev.classification_metrics([0, 1, 1], [0.2, 0.5, 0.7], threshold=0.5)
    assert m["recall"] == 1 and m["predicted_positive_rate"] == pytest.approx(2 / 3)


def test_single_class_gives_nan_aucs_and_finite_rest():
    m = ev.classification_metrics([0, 0, 0], [0.1, 0.7, 0.2])
    assert np.isnan(m["pr_auc"]) and np.isnan(m["roc_auc"])
    assert m["predicted_positive_rate"] == pytest.approx(1 / 3)
    assert np.isfinite(m["log_loss"]) and np.isfinite(m["brier"])


@pytest.mark.parametrize(
    ("y", "s", "message"),
    [
        ([0, 1], [0.5], "one score per label"),
        ([0, 2], [0.1, 0.2], "0/1 labels"),
        ([0, 1], [0.1, 1.2], r"probabilities in \[0, 1\]"),
        ([0, 1], [0.1, np.nan], "missing values"),
        ([], [], "empty"),
    ],
)
def test_bad_inputs_are_explained(y, s, message):
    with pytest.raises(ValueError, match=message):
        ev.classification_metrics(y, s)


# -- thresholds by cost ----------------------------------------------------------------


def graded_scores() -> tuple[np.ndarray, np.ndarray]:
    """Scores 0.05, 0.15, ..., 0.95, 1,000 cases each, with exactly score x 1,000 positives."""
    grid = np.round(np.arange(0.05, 1, 0.1), 2)
    s = np.repeat(grid, 1000)
    y = np.concatenate([np.r_[np.ones(round(g * 1000)), np.zeros(1000 - round(g * 1000))] for g in grid])
    return y.astype(int), s


@pytest.mark.parametrize(("cost_fp", "cost_fn", "expected"), [(1, 4, 0.25), (1, 1, 0.55), (9, 1, 0.95)])
def test_threshold_by_cost_finds_the_analytic_optimum(cost_fp, cost_fn, expected):
    # Calibrated scores: flag when p >= cost_fp / (cost_fp + cost_fn); the first grid score above it wins.
    y, s = graded_scores()
    best, table = ev.threshold_by_cost(y, s, cost_fp=cost_fp, cost_fn=cost_fn)
    assert best == pytest.approx(expected)
    assert best >= cost_fp / (cost_fp + cost_fn)
    row = table.set_index("threshold").loc[best]
    pred = s >= best
    assert row["fp"] == np.sum(pred & (y == 0)) and row["fn"] == np.sum(~pred & (y == 1))
    assert row["cost"] == pytest.approx(cost_fp * row["fp"] + cost_fn * row["fn"])
    assert table["cost"].min() == row["cost"]


def test_threshold_table_covers_flag_nobody_and_everybody():
    y, s = graded_scores()
    _, table = ev.threshold_by_cost(y, s, cost_fp=1, cost_fn=1)
    assert len(table) == 11 and np.isinf(table["threshold"].iloc[-1])
    nobody, everybody = table.iloc[-1], table.iloc[0]
    assert nobody["fn"] == y.sum() and nobody["fp"] == 0
    assert everybody["fp"] == (y == 0).sum() and everybody["flagged_rate"] == 1
    with pytest.raises(ValueError, match="non-negative"):
        ev.threshold_by_cost(y, s, cost_fp=-1, cost_fn=1)


def test_cost_curve_marks_the_best_threshold():
    y, s = graded_scores()
    best, table = ev.threshold_by_cost(y, s, cost_fp=1, cost_fn=4)
    fig = ev.cost_curve(table)
    (ax,) = fig.axes
    assert ax.lines[-1].get_xdata()[0] == pytest.approx(best)
    with pytest.raises(ValueError, match="threshold_by_cost"):
        ev.cost_curve(table.drop(columns="cost_per_case"))


# -- calibration -----------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["quantile", "uniform"])
def test_calibration_table_adds_up(strategy):
    rng = np.random.default_rng(2)
    s = rng.beta(1, 8, 3000)
    y = (rng.random(3000) < s).astype(int)
    table = ev.calibration_table(y, s, n_bins=10, strategy=strategy)
    assert table["n"].sum() == len(y)
    assert table["positives"].sum() == y.sum()
    assert (table["n"] * table["mean_score"]).sum() == pytest.approx(s.sum())
    assert ((table["mean_score"] >= table["lower"]) & (table["mean_score"] <= table["upper"])).all()
    if strategy == "quantile":
        assert table["n"].between(290, 310).all()


def test_expected_calibration_error_tells_calibrated_from_not():
    rng = np.random.default_rng(3)
    s = rng.uniform(size=20_000)
    y = (rng.random(20_000) < s).astype(int)
    good = ev.expected_calibration_error(y, s)
    bad = ev.expected_calibration_error(y, s**2)  # under-predicts risk everywhere
    assert good < 0.02 < 0.1 < bad
    table = ev.calibration_table(y, s**2, strategy="uniform")
    assert bad == pytest.approx(np.average(table["gap"].abs(), weights=table["n"]))


def test_calibrate_prefit_improves_a_miscalibrated_model():
    X, y = applicants(6000, seed=4)
    train, calib, test = np.split(np.arange(len(y)), [3000, 4500])
    # Class weights make the model predict far too much risk: a classic calibration problem.
    model = make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced"))
    model.fit(X[FEATURES].iloc[train], y[train])
    coef = model[-1].coef_.copy()
    calibrated = ev.calibrate(model, X[FEATURES].iloc[calib], y[calib], method="isotonic")
    assert isinstance(calibrated, CalibratedClassifierCV)
    np.testing.assert_array_equal(model[-1].coef_, coef)  # the prefit model was not refitted...
    (pair,) = calibrated.calibrated_classifiers_  # ...nor replaced by clones fitted on the calibration set
    np.testing.assert_array_equal(pair.estimator.predict_proba(X[FEATURES]), model.predict_proba(X[FEATURES]))
    raw = model.predict_proba(X[FEATURES].iloc[test])[:, 1]
    cal = calibrated.predict_proba(X[FEATURES].iloc[test])[:, 1]
    assert metrics.brier_score_loss(y[test], cal) < metrics.brier_score_loss(y[test], raw)
    assert ev.expected_calibration_error(y[test], cal) < ev.expected_calibration_error(y[test], raw) / 2
    fig = ev.calibration_figure(y[test], {"raw": raw, "isotonic": cal})
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 3


def test_calibrate_by_cross_validation_and_errors():
    X, y = applicants(1500, seed=5)
    unfitted = LogisticRegression()
    calibrated = ev.calibrate(unfitted, X[FEATURES], y, method="sigmoid", cv=3)
    assert len(calibrated.calibrated_classifiers_) == 3
    assert not hasattr(unfitted, "classes_")  # a clone was fitted
    with pytest.raises(ValueError, match="fitted model"):
        ev.calibrate(LogisticRegression(), X[FEATURES], y)
    with pytest.raises(ValueError, match="isotonic"):
        ev.calibrate(unfitted, X[FEATURES], y, method="platt", cv=3)


# -- slices ----------------------------------------------------------------------------


def sliced_frame(seed: int = 6) -> pd.DataFrame:
    """Regions north and south are scored well, east badly (random), tiny 'isle' is random too."""
    rng = np.random.default_rng(seed)
    sizes = {"north": 1500, "south": 1500, "east": 1500, "isle": 30}
    frames = []
    for region, n in sizes.items():
        y = (rng.random(n) < 0.2).astype(int)
        informative = region in {"north", "south"}
        s = expit(-1.5 + 2.5 * y + rng.normal(0, 1, n)) if informative else rng.uniform(size=n)
        frames.append(pd.DataFrame({"region": region, "y": y, "score": s, "age": rng.integers(21, 90, n)}))
    return pd.concat(frames, ignore_index=True)


def test_slice_metrics_flags_the_worst_slice_and_marks_small_ones():
    df = sliced_frame()
    table = ev.slice_metrics(df, "y", "score", by=["region"], min_size=100)
    assert table["worst"].sum() == 1
    assert table.loc[table["worst"], "slice"].item() == "region=east"
    isle = table.set_index("slice").loc["region=isle"]
    assert isle["small"] and not isle["worst"]
    assert table["small"].tolist() == [False, False, False, True]  # small slices last, unranked
    ranked = table[~table["small"]]
    assert ranked["roc_auc"].is_monotonic_increasing
    north = df[df["region"] == "north"]
    row = table.set_index("slice").loc["region=north"]
    assert row["n"] == len(north) and row["positives"] == north["y"].sum()
    assert row["roc_auc"] == pytest.approx(metrics.roc_auc_score(north["y"], north["score"]))
    overall = metrics.roc_auc_score(df["y"], df["score"])
    assert row["gap"] == pytest.approx(row["roc_auc"] - overall)


def test_slice_metrics_does_not_rank_a_large_slice_with_few_positives():
    rng = np.random.default_rng(3)
    y = np.r_[np.zeros(400, dtype=int), np.ones(60, dtype=int), np.zeros(300, dtype=int), [1, 1]]
    region = ["big"] * 460 + ["rare"] * 302
    score = np.r_[rng.uniform(0, 0.6, 400), rng.uniform(0.4, 1, 60), rng.uniform(size=302)]
    df = pd.DataFrame({"region": region, "y": y, "score": score})
    table = ev.slice_metrics(df, "y", "score", by="region", min_size=100).set_index("slice")
    rare = table.loc["region=rare"]  # 302 rows, 2 positives
    assert rare["small"] and not rare["worst"]
    assert table.loc["region=big", "worst"]
    loose = ev.slice_metrics(df, "y", "score", by="region", min_size=100, min_positives=1).set_index("slice")
    assert not loose.loc["region=rare", "small"] and loose.loc["region=rare", "worst"]


def test_slice_metrics_with_masks_and_age_bands():
    df = sliced_frame()
    masks = {"east": df["region"] == "east", "not east": df["region"] != "east"}
    table = ev.slice_metrics(df, "y", "score", by=masks, metric="recall")
    recalls = {name: metrics.recall_score(df["y"][m], df["score"][m] >= 0.5) for name, m in masks.items()}
    assert table.set_index("slice")["recall"].to_dict() == pytest.approx(recalls)
    assert table.loc[table["worst"], "slice"].item() == min(recalls, key=recalls.get)
    banded = df.assign(age_band=ev.age_band(df["age"]))
    by_age = ev.slice_metrics(banded, "y", "score", by="age_band")
    assert by_age["n"].sum() == len(df)
    assert set(by_age["slice"]) == {f"age_band={b}" for b in banded["age_band"].unique()}
    with pytest.raises(ValueError, match=r"The frame lacks column\(s\)"):
        ev.slice_metrics(df, "y", "score", by=["segment"])


def test_age_band_edges():
    bands = ev.age_band(pd.Series([21, 29, 30, 39.5, 69, 70, 99, 20, None], index=list("abcdefghi")))
    assert bands.tolist()[:7] == ["21-29", "21-29", "30-39", "30-39", "60-69", "70+", "70+"]
    assert bands.iloc[7:].isna().all()
    assert list(bands.index) == list("abcdefghi") and bands.cat.ordered


# -- baselines -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "baseline", [ev.RandomBaseline(random_state=0), ev.MajorityBaseline(), ev.RuleScorecard()]
)
def test_baselines_run_in_cross_validation(baseline):
    X, y = applicants(3000, seed=7)
    cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    scores = cross_val_score(baseline, X, y, cv=cv, scoring="roc_auc")
    if isinstance(baseline, ev.RuleScorecard):
        assert scores.mean() > 0.65  # the rules carry real signal
    elif isinstance(baseline, ev.MajorityBaseline):
        np.testing.assert_allclose(scores, 0.5)
    else:
        assert abs(scores.mean() - 0.5) < 0.06
    ap = cross_val_score(baseline, X, y, cv=cv, scoring="average_precision")
    assert np.isfinite(ap).all()


def test_baselines_behave_like_classifiers():
    X, y = applicants(1000, seed=8)
    majority = ev.MajorityBaseline().fit(X, y)
    assert majority.prior_ == pytest.approx(y.mean())
    assert (majority.predict(X) == 0).all() and majority.score(X, y) == pytest.approx(1 - y.mean())
    first = ev.RandomBaseline(random_state=3).fit(X, y).predict_proba(X)
    again = ev.RandomBaseline(random_state=3).fit(X, y).predict_proba(X)
    other = ev.RandomBaseline(random_state=4).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)
    np.testing.assert_allclose(first.sum(axis=1), 1)
    labels = np.where(y == 1, "bad", "good")
    card = ev.RuleScorecard(threshold=0.3).fit(X, labels)
    assert set(card.predict(X)) <= {"bad", "good"} and card.get_params()["threshold"] == 0.3
    with pytest.raises(ValueError, match="not fitted"):
        ev.RandomBaseline().predict_proba(X)
    with pytest.raises(ValueError, match="binary"):
        ev.MajorityBaseline().fit(X, np.zeros(len(X)))


def test_rule_scorecard_points():
    rows = pd.DataFrame(
        {
            "late_30_59": [0, 1, 98, np.nan],
            "late_60_89": [0, 0, 98, 0],
            "late_90": [0, 0, 98, 0],
            "revolving_utilization": [0.1, 0.9, 1.5, np.nan],
            "debt_ratio": [0.1, 0.1, 3.0, 0.1],
            "age": [50, 25, 35, 60],
        }
    )
    total = sum(points for *_, points in ev.SCORECARD_RULES)
    score = ev.RuleScorecard().fit(rows, [0, 1, 1, 0]).predict_proba(rows)[:, 1]
    np.testing.assert_allclose(score * total, [0, 1 + 2 + 1, 3 + 2 + 1 + 2 + 1, 0])
    custom = ev.RuleScorecard(rules=(("age", "<", 30, 1),)).fit(rows, [0, 1, 1, 0])
    np.testing.assert_array_equal(custom.predict(rows), [0, 1, 0, 0])
    with pytest.raises(ValueError, match="needs columns"):
        ev.RuleScorecard().fit(rows, [0, 1, 1, 0]).predict_proba(rows.drop(columns="age"))


# -- behavioural tests -----------------------------------------------------------------


def test_directional_test_catches_a_model_that_rewards_late_payments():
    X, y = applicants(2000, seed=9)
    good = fitted_logistic(X, y)
    passed = ev.directional_test(good, X[FEATURES], "late_30_59", delta=1, expect="increase")
    assert passed and passed.n_failed == 0 and passed.max_change > 0
    broken = ColumnModel(lambda d: 0.5 - 0.1 * d["late_30_59"].clip(upper=4) + 0.0 * d["age"])
    failed = ev.directional_test(broken, X, "late_30_59", delta=1, expect="increase")
    assert not failed and failed.n_failed == len(X[X["late_30_59"] < 4])
    assert failed.max_change == pytest.approx(0.1)
    older = ev.directional_test(good, X[FEATURES], "age", values=X["age"] + 10, expect="decrease")
    assert older.passed
    with pytest.raises(ValueError, match="exactly one"):
        ev.directional_test(good, X[FEATURES], "age")


def test_invariance_test_catches_a_model_that_reads_the_application_id():
    X, y = applicants(1000, seed=10)
    good = fitted_logistic(X, y)
    model = ColumnModel(lambda d: good.predict_proba(d[FEATURES])[:, 1])
    result = ev.invariance_test(model, X, "application_id", ["A0000000000", "A9999999999"])
    assert result.passed and result.max_change == 0 and result.n == 2 * len(X)
    leaky = ColumnModel(lambda d: 0.1 + 0.5 * d["application_id"].str[-1].astype(int) / 9)
    caught = ev.invariance_test(leaky, X, "application_id", ["A0000000000"])
    assert not caught.passed
    assert caught.n_failed == (X["application_id"].str[-1] != "0").sum()
    assert caught.max_change == pytest.approx(0.5)
    assert set(caught.failed_index) == set(X.index[X["application_id"].str[-1] != "0"])
    with pytest.raises(ValueError, match="not in X"):
        ev.invariance_test(model, X, "customer_id", ["C1"])


def test_minimum_functionality_on_obvious_cases():
    cases = pd.DataFrame(
        {
            "late_30_59": [0, 6],
            "late_60_89": [0, 4],
            "late_90": [0, 5],
            "revolving_utilization": [0.05, 1.1],
            "debt_ratio": [0.1, 2.5],
            "age": [55, 23],
        },
        index=["spotless", "textbook bad risk"],
    )
    X, y = applicants(3000, seed=11)
    assert ev.minimum_functionality_test(fitted_logistic(X, y), cases, [0, 1])
    inverted = ColumnModel(lambda d: 1 - ev.RuleScorecard().fit(d, [0, 1]).predict_proba(d)[:, 1])
    result = ev.minimum_functionality_test(inverted, cases, [0, 1])
    assert not result.passed and result.n_failed == 2 and result.max_change == pytest.approx(1)
    assert result.failed_index == ["spotless", "textbook bad risk"]
    with pytest.raises(ValueError, match="labels for"):
        ev.minimum_functionality_test(inverted, cases, [0])
