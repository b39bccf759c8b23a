"""mlsd.explain: SHAP, importance tables, reason codes, PDP/ICE, on data where the answer is known.

The label depends strongly on ``x1``, weakly on ``x2`` (10% missing) and on ``colour`` (red is
riskier), and not at all on ``x3``. Set ``MLSD_TEST_SEED`` to run with another seed; the tests
pass for any seed.
"""

from __future__ import annotations

import os

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from scipy.special import expit
from scipy.stats import spearmanr
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.linear_model import LinearRegression, LogisticRegression, SGDClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from mlsd import explain as ex
from mlsd.features import make_preprocessor

SEED = int(os.environ.get("MLSD_TEST_SEED", "20240611"))
NUMERIC = ["x1", "x2", "x3"]
CATEGORICAL = ["colour"]
COLOUR_EFFECT = {"red": 1.0, "green": 0.0, "blue": -0.3}


def synthetic(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """y depends on x1 strongly, x2 weakly, colour a little, x3 not at all."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.normal(size=n),
            "x3": rng.normal(size=n),
            "colour": rng.choice(list(COLOUR_EFFECT), size=n),
        }
    )
    logit = -0.5 + 2.5 * X["x1"] + 0.8 * X["x2"] + X["colour"].map(COLOUR_EFFECT)
    y = (rng.random(n) < expit(logit)).astype(int).to_numpy()
    X.loc[rng.random(n) < 0.1, "x2"] = np.nan  # missing after drawing y: missingness is noise
    return X, y


def pipeline(estimator) -> Pipeline:
    prep = make_preprocessor(numeric=NUMERIC, categorical=CATEGORICAL, min_frequency=None)
    return Pipeline([("prep", prep), ("model", estimator)])


@pytest.fixture(scope="module", autouse=True)
def agg_backend():
    """Draw off-screen, as in CI."""
    previous = matplotlib.get_backend()
    plt.switch_backend("Agg")
    yield
    plt.switch_backend(previous)


@pytest.fixture(scope="module")
def data():
    print(f"seed: {SEED} (set MLSD_TEST_SEED to change it)")
    X, y = synthetic(3000, SEED)
    return X.iloc[:2000], y[:2000], X.iloc[2000:].reset_index(drop=True), y[2000:]


@pytest.fixture(scope="module")
def boosted(data):
    X, y, _, _ = data
    model = HistGradientBoostingClassifier(max_iter=60, max_depth=3, learning_rate=0.1, random_state=SEED)
    return pipeline(model).fit(X, y)


@pytest.fixture(scope="module")
def logistic(data):
    X, y, _, _ = data
    return pipeline(LogisticRegression()).fit(X, y)


@pytest.fixture(scope="module")
def boosted_explanation(boosted, data):
    _, _, X_test, _ = data
    return ex.explain(boosted, X_test.iloc[:400])


@pytest.fixture(scope="module")
def logistic_explanation(logistic, data):
    _, _, X_test, _ = data
    return ex.explain(logistic, X_test.iloc[:400])


def model_output(fitted: Pipeline, X: pd.DataFrame, scale: str) -> np.ndarray:
    if scale == "probability":
        return fitted.predict_proba(X)[:, 1]
    return fitted.decision_function(X)


# -- choosing the explainer -------------------------------------------------------------


@pytest.mark.parametrize(
    ("estimator", "kind"),
    [
        (HistGradientBoostingClassifier(), "tree"),
        (GradientBoostingClassifier(), "tree"),
        (RandomForestClassifier(), "tree"),
        (DecisionTreeClassifier(), "tree"),
        (LogisticRegression(), "linear"),
        (SGDClassifier(loss="log_loss"), "linear"),
        (LinearRegression(), "linear"),
        (KNeighborsClassifier(), "model-agnostic"),
        (SVC(), "model-agnostic"),
        (CalibratedClassifierCV(LogisticRegression()), "model-agnostic"),
    ],
)
def test_explainer_kind_follows_the_model_family(estimator, kind):
    assert ex.explainer_kind(estimator) == kind


@pytest.mark.parametrize(
    ("estimator", "explainer", "scale"),
    [
        (HistGradientBoostingClassifier(max_iter=30), {"TreeExplainer"}, "log-odds"),
        (GradientBoostingClassifier(n_estimators=30), {"TreeExplainer"}, "log-odds"),
        (RandomForestClassifier(n_estimators=30, max_depth=6), {"TreeExplainer"}, "probability"),
        (LogisticRegression(), {"LinearExplainer"}, "log-odds"),
        (KNeighborsClassifier(n_neighbors=25), {"ExactExplainer", "PermutationExplainer"}, "probability"),
    ],
    ids=["hist-gradient-boosting", "gradient-boosting", "random-forest", "logistic", "k-nn"],
)
def test_explain_picks_the_explainer_and_values_add_up_to_the_model_output(data, estimator, explainer, scale):
    X, y, X_test, _ = data
    if "random_state" in estimator.get_params():
        estimator.set_params(random_state=SEED)
    fitted = pipeline(estimator).fit(X, y)
    rows = X_test.iloc[:8] if explainer != {"TreeExplainer"} else X_test.iloc[:100]
    explanation = ex.explain(fitted, rows, max_background=20, random_state=SEED)
    assert explanation.explainer_name in explainer
    assert explanation.output_names == scale
    assert explanation.values.shape == (len(rows), len(fitted[:-1].get_feature_names_out()))
    total = explanation.base_values + explanation.values.sum(axis=1)
    np.testing.assert_allclose(total, model_output(fitted, rows, scale), atol=1e-6)


def test_feature_names_are_the_preprocessed_columns(boosted_explanation, boosted):
    names = list(boosted[:-1].get_feature_names_out())
    assert boosted_explanation.feature_names == names
    assert {"missingindicator_x2", "colour_red", "colour_blue"} <= set(names)
    assert boosted_explanation.data.shape == boosted_explanation.values.shape


def test_display_data_holds_raw_values(logistic, data):
    _, _, X_test, _ = data
    rows = X_test.iloc[:50]
    explanation = ex.explain(logistic, rows)
    names = explanation.feature_names
    shown = pd.DataFrame(explanation.display_data, columns=names)
    # x1 is standardised for the model, but shown as it was
    assert not np.allclose(explanation.data[:, names.index("x1")], rows["x1"])
    np.testing.assert_allclose(shown["x1"].astype(float), rows["x1"])
    missing = rows["x2"].isna().to_numpy()
    assert missing.any()
    assert (shown["x2"][missing] == "missing").all()
    assert set(shown["colour_red"]) <= {0.0, 1.0}


def test_tree_explanations_need_no_background(boosted, data):
    X, _, X_test, _ = data
    rows = X_test.iloc[:50]
    plain = ex.explain(boosted, rows)
    with_background = ex.explain(boosted, rows, background=X.iloc[:100])
    np.testing.assert_array_equal(plain.values, with_background.values)
    # the base value is the average output over the training rows, as the trees record them
    assert abs(plain.base_values[0] - boosted.decision_function(X).mean()) < 0.05


def test_background_sample_depends_on_random_state(logistic, data):
    X, _, X_test, _ = data
    rows = X_test.iloc[:20]
    first = ex.explain(logistic, rows, background=X, max_background=30, random_state=1)
    again = ex.explain(logistic, rows, background=X, max_background=30, random_state=1)
    other = ex.explain(logistic, rows, background=X, max_background=30, random_state=2)
    np.testing.assert_array_equal(first.values, again.values)
    assert not np.allclose(first.base_values, other.base_values)


# -- global importance ------------------------------------------------------------------


@pytest.mark.parametrize("which", ["boosted_explanation", "logistic_explanation"])
def test_importance_orders_strong_weak_and_irrelevant_features(request, which):
    explanation = request.getfixturevalue(which)
    table = ex.global_importance(explanation).set_index("feature")
    assert (
        table.loc["x1", "mean_abs_shap"] > table.loc["x2", "mean_abs_shap"] > table.loc["x3", "mean_abs_shap"]
    )
    assert table.loc["x1", "rank"] == 1
    assert np.isclose(table["share"].sum(), 1.0)


def test_importance_table_is_sorted_and_ranked(boosted_explanation):
    table = ex.global_importance(boosted_explanation)
    assert list(table.columns) == ["feature", "mean_abs_shap", "share", "rank"]
    assert table["mean_abs_shap"].is_monotonic_decreasing
    assert table["rank"].is_monotonic_increasing
    assert table["rank"].iloc[0] == 1
    expected = np.abs(boosted_explanation.values).mean(axis=0)
    names = boosted_explanation.feature_names
    assert np.isclose(table.set_index("feature").loc["x3", "mean_abs_shap"], expected[names.index("x3")])


def test_grouping_by_source_sums_one_hot_and_indicator_columns(boosted_explanation):
    names = boosted_explanation.feature_names
    values = boosted_explanation.values
    grouped = ex.global_importance(boosted_explanation, group_by_source=True).set_index("feature")
    assert set(grouped.index) == {"x1", "x2", "x3", "colour"}
    colour = [i for i, n in enumerate(names) if n.startswith("colour_")]
    assert len(colour) == 3
    assert np.isclose(grouped.loc["colour", "mean_abs_shap"], np.abs(values[:, colour].sum(axis=1)).mean())
    x2 = [names.index("x2"), names.index("missingindicator_x2")]
    assert np.isclose(grouped.loc["x2", "mean_abs_shap"], np.abs(values[:, x2].sum(axis=1)).mean())
    # summing before the absolute value: never more than the sum of the pieces' importances
    pieces = np.abs(values[:, colour]).mean(axis=0).sum()
    assert grouped.loc["colour", "mean_abs_shap"] <= pieces + 1e-12


def test_aggregate_by_source_keeps_additivity_and_readable_values(boosted_explanation, data):
    _, _, X_test, _ = data
    grouped = ex.aggregate_by_source(boosted_explanation)
    assert grouped.feature_names == ["x1", "x2", "x3", "colour"]
    np.testing.assert_allclose(grouped.values.sum(axis=1), boosted_explanation.values.sum(axis=1))
    np.testing.assert_allclose(grouped.base_values, boosted_explanation.base_values)
    shown = pd.DataFrame(grouped.display_data, columns=grouped.feature_names)
    assert (shown["colour"].to_numpy() == X_test["colour"].iloc[:400].to_numpy()).all()


def test_a_sliced_explanation_groups_with_explicit_sources(boosted_explanation, boosted):
    sliced = boosted_explanation[:100]
    assert not hasattr(sliced, "feature_sources")  # shap drops extra attributes when slicing
    ungrouped = ex.global_importance(sliced, group_by_source=True)
    assert "colour_red" in set(ungrouped["feature"])  # without the map, one-hot columns stay apart
    grouped = ex.global_importance(sliced, group_by_source=True, sources=ex.feature_sources(boosted))
    assert set(grouped["feature"]) == {"x1", "x2", "x3", "colour"}


def test_feature_sources_maps_every_branch_of_make_preprocessor(data):
    X, _, _, _ = data
    frame = X.assign(when=pd.Timestamp("2025-01-01 10:00"), shade=X["colour"], code=X["colour"])
    prep = make_preprocessor(
        numeric=NUMERIC,
        categorical=["colour"],
        high_cardinality=["code"],
        dates=["when"],
        crosses=[("colour", "shade")],
        n_hash_features=2,
        min_frequency=None,
    ).fit(frame)
    sources = ex.feature_sources(prep)
    assert list(sources) == list(prep.get_feature_names_out())
    assert sources["missingindicator_x2"] == "x2"
    assert sources["colour_red"] == "colour"
    assert sources["code_hash_1"] == "code"
    assert sources["when_hour"] == "when"
    assert sources["colour_x_shade_red_x_red"] == "colour_x_shade"
    assert {sources[n] for n in NUMERIC} == set(NUMERIC)


# -- reason codes -----------------------------------------------------------------------


def test_reason_codes_point_at_the_feature_that_raised_the_score(logistic, data):
    _, _, X_test, _ = data
    rows = X_test.iloc[:400].reset_index(drop=True)
    explanation = ex.explain(logistic, rows)
    # the row with the largest x1 among those where nothing else pushes risk up much
    quiet = rows["x2"].fillna(0).abs().lt(0.5) & rows["colour"].ne("red") & rows["x3"].abs().lt(1)
    row = int(rows.loc[quiet, "x1"].idxmax())
    codes = ex.reason_codes(explanation, row, top=3)
    assert codes.loc[0, "feature"] == "x1"
    assert codes.loc[0, "reason"].startswith(f"x1 = {rows.loc[row, 'x1']:.4g} raises risk by +")
    assert codes.loc[0, "reason"].endswith("log-odds")
    assert (codes["shap"] > 0).all() and codes["shap"].is_monotonic_decreasing
    assert len(codes) <= 3 and list(codes["rank"]) == list(range(1, len(codes) + 1))
    # and the row with the smallest x1 has no reason on x1
    low = int(rows["x1"].idxmin())
    assert "x1" not in set(ex.reason_codes(explanation, low, top=5)["feature"])


def test_reason_codes_read_like_adverse_action_reasons():
    import shap

    names = ["late_90", "age", "missingindicator_monthly_income", "channel_web", "channel_branch"]
    explanation = shap.Explanation(
        values=np.array([[0.8, -0.2, 0.3, 0.5, 0.1]]),
        base_values=np.array([-2.5]),
        data=np.array([[0.3, -0.5, 1.0, 1.0, 0.0]]),
        display_data=np.array([[2.0, 45.0, 1.0, 1.0, 0.0]], dtype=object),
        feature_names=names,
        output_names="log-odds",
    )
    explanation.feature_sources = {
        "late_90": "late_90",
        "age": "age",
        "missingindicator_monthly_income": "monthly_income",
        "channel_web": "channel",
        "channel_branch": "channel",
    }
    codes = ex.reason_codes(explanation, 0, top=4)
    assert codes["reason"].tolist() == [
        "late_90 = 2 raises risk by +0.80 log-odds",
        "channel = web raises risk by +0.50 log-odds",
        "monthly_income is missing raises risk by +0.30 log-odds",
        "channel is not branch raises risk by +0.10 log-odds",
    ]
    grouped = ex.reason_codes(explanation, 0, top=4, group_by_source=True)
    assert grouped["reason"].tolist() == [
        "late_90 = 2 raises risk by +0.80 log-odds",
        "channel = web raises risk by +0.60 log-odds",
        "monthly_income = missing raises risk by +0.30 log-odds",
    ]


# -- permutation importance and partial dependence --------------------------------------


def test_permutation_importance_ranks_x1_first_and_x3_near_zero(boosted, data):
    _, _, X_test, y_test = data
    with_id = X_test.assign(application_id=np.arange(len(X_test)))  # a column the model never saw
    table = ex.permutation_importance_table(boosted, with_id, y_test, n_repeats=3, random_state=SEED)
    assert list(table.columns) == ["feature", "importance_mean", "importance_std", "rank"]
    assert set(table["feature"]) == set(NUMERIC + CATEGORICAL)
    assert table.loc[0, "feature"] == "x1"
    assert table["importance_mean"].is_monotonic_decreasing
    imp = table.set_index("feature")["importance_mean"]
    assert imp["x1"] > imp["x2"] > imp["x3"]
    assert abs(imp["x3"]) < 0.1 * imp["x1"]


def test_partial_dependence_rises_with_x1_and_x2_and_is_flat_in_x3(logistic, boosted, data):
    X, _, _, _ = data
    table = ex.partial_dependence_table(logistic, X, "x1", grid_resolution=15)
    assert list(table.columns) == ["feature", "value", "average_prediction"]
    assert len(table) == 15 and table["value"].is_monotonic_increasing
    assert (np.diff(table["average_prediction"]) > 0).all()
    trees = ex.partial_dependence_table(boosted, X, "x1", grid_resolution=15)
    assert trees["average_prediction"].iloc[-1] - trees["average_prediction"].iloc[0] > 0.5
    assert spearmanr(trees["value"], trees["average_prediction"]).statistic > 0.9
    with_missing = ex.partial_dependence_table(logistic, X, "x2", grid_resolution=15)
    assert X["x2"].isna().any() and with_missing["value"].notna().all()  # missing is not a grid point
    assert (np.diff(with_missing["average_prediction"]) > 0).all()
    flat = ex.partial_dependence_table(logistic, X, "x3", grid_resolution=15)["average_prediction"]
    assert flat.max() - flat.min() < 0.2 * (
        table["average_prediction"].max() - table["average_prediction"].min()
    )


def test_partial_dependence_of_a_categorical_column_puts_red_highest(logistic, data):
    X, _, _, _ = data
    table = ex.partial_dependence_table(logistic, X, "colour").set_index("value")["average_prediction"]
    assert set(table.index) == set(COLOUR_EFFECT)
    assert table.idxmax() == "red" and table.idxmin() == "blue"


# -- figures ----------------------------------------------------------------------------


def test_figures_are_figures_with_axes_and_leave_no_pyplot_figure_open(boosted, boosted_explanation, data):
    X, _, _, _ = data
    before = plt.get_fignums()
    figures = [
        ex.beeswarm(boosted_explanation, max_display=4),
        ex.beeswarm(boosted_explanation, group_by_source=True),
        ex.waterfall(boosted_explanation, 3),
        ex.waterfall(boosted_explanation, 3, group_by_source=True),
        ex.pdp_ice(boosted, X, "x1", n_ice=20, grid_resolution=10),
        ex.pdp_ice(boosted, X, "colour"),
    ]
    for fig in figures:
        assert isinstance(fig, Figure)
        assert any(ax.has_data() for ax in fig.axes)
    assert plt.get_fignums() == before
    labels = [t.get_text() for t in figures[1].axes[0].get_yticklabels()]
    assert "colour" in labels and "colour_red" not in labels
    ice = [line for ax in figures[4].axes for line in ax.get_lines()]
    assert len(ice) >= 20  # 20 ICE lines plus the average


# -- bad input --------------------------------------------------------------------------


def test_an_unfitted_pipeline_is_a_clear_error(data):
    X, y, _, _ = data
    unfitted = pipeline(HistGradientBoostingClassifier())
    for call in (
        lambda: ex.explain(unfitted, X),
        lambda: ex.permutation_importance_table(unfitted, X, y),
        lambda: ex.partial_dependence_table(unfitted, X, "x1"),
        lambda: ex.pdp_ice(unfitted, X, "x1"),
    ):
        with pytest.raises(ValueError, match="not fitted"):
            call()


def test_bad_columns_rows_and_options_are_clear_errors(boosted, boosted_explanation, data):
    X, y, _, _ = data
    with pytest.raises(ValueError, match=r"X lacks column\(s\) \['x9'\]"):
        ex.partial_dependence_table(boosted, X, "x9")
    with pytest.raises(ValueError, match=r"X lacks column\(s\) \['x9'\]"):
        ex.pdp_ice(boosted, X, "x9")
    with pytest.raises(ValueError, match=r"X lacks column\(s\) \['x3'\]"):
        ex.explain(boosted, X.drop(columns="x3"))
    with pytest.raises(ValueError, match="DataFrame"):
        ex.explain(boosted, X.to_numpy())
    with pytest.raises(ValueError, match="no rows"):
        ex.explain(boosted, X.iloc[:0])
    with pytest.raises(ValueError, match="row must be a position"):
        ex.reason_codes(boosted_explanation, 400)
    with pytest.raises(ValueError, match="row must be a position"):
        ex.waterfall(boosted_explanation, 1.5)
    with pytest.raises(ValueError, match="top must be"):
        ex.reason_codes(boosted_explanation, 0, top=0)
    with pytest.raises(ValueError, match="Unknown kind"):
        ex.pdp_ice(boosted, X, "x1", kind="lines")
    with pytest.raises(ValueError, match="categorical"):
        ex.pdp_ice(boosted, X, "colour", kind="individual")
    with pytest.raises(ValueError, match="one label per row"):
        ex.permutation_importance_table(boosted, X, y[:10])
    with pytest.raises(ValueError, match="shape"):
        ex.global_importance(boosted_explanation[0])


def test_multiclass_models_are_refused(data):
    X, y, _, _ = data
    three = np.where(X["x3"] > 0.5, 2, y)
    fitted = pipeline(LogisticRegression()).fit(X, three)
    with pytest.raises(ValueError, match="binary"):
        ex.explain(fitted, X.iloc[:10])
