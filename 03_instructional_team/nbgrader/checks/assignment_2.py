"""Comparisons for assignment 2 (run by the grader, never in a learner's kernel; never released).

Each function scores one autograded test cell of ``source/assignment_2/assignment_2.ipynb``. ``got`` holds
what the cell's hidden part recorded in the learner's kernel: the learner's functions called on held-out
inputs, their results as plain data. ``ref`` holds what the same cell recorded when the instructors'
solution ran on the same inputs in a trusted kernel, and the inputs that the grader needs (labels, raw
rows), read from ``ref`` only. Messages are those of the in-kernel hidden asserts that these comparisons
replace, in the same order, so the first that fails is the one a learner read before.

Where many answers are right, properties are checked instead of equality: the codes an ordinal encoder
gives categories, the order of tied features, the PR-AUC of another advanced model, the SHAP values of
another (additive) explainer. Tolerances, per check:

- numbers a correct answer computes exactly as the reference (scaled columns, PR-AUC of the same scores,
  KS statistics, passed-through values): ``1e-9`` absolute, or NumPy's ``allclose`` where the old assert
  used it;
- cross-validated PR-AUC logged by MLflow: ``1e-6`` (another route sums folds in another order);
- predictions of a model saved and loaded again: ``1e-9``; SHAP additivity: ``1e-6`` in log-odds;
- PSI of a shifted feature: 5 % of the reference's value (binning at repeated quantiles may differ);
  the chi-square statistic: ``1e-6`` relative.
"""

from __future__ import annotations

import builtins
from collections import Counter

import numpy as np
import pandas as pd

from mlsd.grading.checks import CheckFailed, CheckSet, Raised, Unsupported, expect

checks = CheckSet()

_PYTHON_ERRORS = {
    name
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, BaseException)
}


def usable(value, what: str):
    """``value``, unless it stands for an exception or an unreadable type: then the check fails, saying so."""
    if isinstance(value, Raised):
        name = value.name if value.name in _PYTHON_ERRORS else "an exception"
        raise CheckFailed(f"{what} raised {name} on the hidden test's inputs")
    if isinstance(value, Unsupported):
        raise CheckFailed(f"{what} returned a value of a type the grader does not read")
    return value


def table(plain, what: str) -> pd.DataFrame:
    """A transformer's output recorded as plain data (columns, index, values) as a DataFrame."""
    plain = usable(plain, what)
    values = np.asarray(plain["values"], dtype=float).reshape(len(plain["index"]), len(plain["columns"]))
    return pd.DataFrame(values, index=list(plain["index"]), columns=list(plain["columns"]))


def column(frame: pd.DataFrame, name: str) -> np.ndarray:
    """One column's values; a missing or repeated column name gives NaN (so comparisons fail, not crash)."""
    if list(frame.columns).count(name) != 1:
        return np.full(len(frame), np.nan)
    return frame[name].to_numpy(dtype=float)


def scores(values, rows: int, what: str) -> np.ndarray:
    """Recorded probabilities as a 1-d array of ``rows`` numbers."""
    array = np.asarray(usable(values, what), dtype=float)
    expect(array.shape == (rows,), f"{what} should give one probability per row")
    return array


# -- question 1 -------------------------------------------------------------------------------------


@checks.add("test_q1_linear")
def q1_linear(got, ref):
    expect(got["new_each_call"] is True, "each call should build a new ColumnTransformer")
    fitted = table(got["fitted"], "fit_transform of make_linear_preprocessor's ColumnTransformer")
    expected = table(ref["fitted"], "the reference")
    expect(list(fitted.columns) == got["names_out"], "the output columns should be the feature names out")
    expect(list(fitted.index) == list(expected.index), "the output rows should keep the input's index")
    for name in ("income", "debt", "age"):  # the hidden test's numeric columns
        expect(
            np.allclose(column(fitted, name), column(expected, name), atol=1e-9),
            f"numeric column {name}: fill missing values with the training median, then standardise",
        )
    indicators = sorted(c for c in fitted.columns if c.startswith("missingindicator_"))
    expect(
        indicators == sorted(c for c in expected.columns if c.startswith("missingindicator_")),
        "add a missing indicator for each numeric column with missing values in fit, and only for those",
    )
    for name in indicators:
        expect(np.array_equal(column(fitted, name), column(expected, name)), "the missing indicator is wrong")
    for source in ("purpose", "region"):  # the hidden test's categorical columns
        block = [c for c in expected.columns if c.startswith(f"{source}_")]
        expect(
            len([c for c in fitted.columns if c.startswith(f"{source}_")]) == len(block),
            f"{source}: expected one one-hot column per category seen in fit",
        )
        for name in block:
            expect(
                name in fitted.columns, f"the one-hot column for a category seen in fit is missing ({source})"
            )
            expect(
                np.array_equal(column(fitted, name), column(expected, name)),
                f"one-hot column {name} does not match the data",
            )
    expect(len(fitted.columns) == len(expected.columns), "unexpected number of output columns")

    out = table(got["transformed"], "transform of make_linear_preprocessor's ColumnTransformer")
    expected_out = table(ref["transformed"], "the reference")
    expect(list(out.columns) == list(fitted.columns), "transform should give the same columns as fit")
    expect(list(out.index) == list(expected_out.index), "the output rows should keep the input's index")
    expect(
        not out.isna().to_numpy().any(), "no missing value should be left in the linear preprocessor's output"
    )
    for name, row in (("income", "x"), ("income", "y"), ("income", "z"), ("debt", "y"), ("age", "z")):
        expect(
            abs(out.loc[row, name] - expected_out.loc[row, name]) < 1e-9,
            "a missing value at transform time should get the training median, scaled like the training rows",
        )
    expect(
        np.array_equal(
            column(out, "missingindicator_income"), column(expected_out, "missingindicator_income")
        ),
        "the missing indicator is wrong on new rows",
    )
    regions = [c for c in fitted.columns if c.startswith("region_")]
    purposes = [c for c in fitted.columns if c.startswith("purpose_")]
    expect(out.loc["x", regions + purposes].sum() == 0, "unseen categories should give all zeros")
    expect(out.loc["y", regions].sum() == 0, "a category not seen in fit should give all zeros")
    expect(
        "purpose_car" in out.columns
        and out.loc["y", "purpose_car"] == 1.0
        and out.loc["y", purposes].sum() == 1,
        "one-hot is wrong",
    )
    expect(
        "purpose_missing" in out.columns and out.loc["z", "purpose_missing"] == 1.0,
        "a missing category should become the category 'missing'",
    )


@checks.add("test_q1_tree")
def q1_tree(got, ref):
    expect(got["new_each_call"] is True, "each call should build a new ColumnTransformer")
    fitted = table(got["fitted"], "fit_transform of make_tree_preprocessor's ColumnTransformer")
    expected = table(ref["fitted"], "the reference")
    expect(
        sorted(fitted.columns) == sorted(expected.columns) and fitted.columns.is_unique,
        "one output column per input column, under its name",
    )
    expect(list(fitted.columns) == got["names_out"], "the output columns should be the feature names out")
    expect(list(fitted.index) == list(expected.index), "the output rows should keep the input's index")
    dtypes = usable(got["fitted"], "make_tree_preprocessor")["dtypes"]
    expect(all(_numeric_dtype(t) for t in dtypes), "every output column should be numeric")
    for name in ("income", "age"):  # the hidden test's numeric columns
        expect(
            np.allclose(column(fitted, name), column(expected, name), equal_nan=True),
            f"numeric column {name} should pass through unchanged, missing values included",
        )
    learned = {}
    # The hidden test's categorical input, read from the reference's record.
    for name, values in ref["fit_categories"].items():
        codes = pd.Series(column(fitted, name))
        observed = np.array([v is not None for v in values])
        expect(bool((codes[~observed] == -1).all()), f"{name}: missing values should be coded -1")
        mapping = pd.Series(codes[observed].to_numpy(), index=[v for v in values if v is not None])
        expect(
            bool((mapping.groupby(level=0).nunique(dropna=False) == 1).all()),
            f"{name}: each category should always get the same code",
        )
        first = mapping.groupby(level=0).first()
        expect(
            first.is_unique and bool((first >= 0).all()) and bool((first == first.round()).all()),
            f"{name}: categories seen in fit should get distinct whole codes, 0 or more",
        )
        learned[name] = first.to_dict()

    out = table(got["transformed"], "transform of make_tree_preprocessor's ColumnTransformer")
    expected_out = table(ref["transformed"], "the reference")
    expect(list(out.columns) == list(fitted.columns), "transform should give the same columns as fit")
    expect(list(out.index) == list(expected_out.index), "the output rows should keep the input's index")
    expect(
        np.allclose(column(out, "income"), column(expected_out, "income"), equal_nan=True)
        and np.allclose(column(out, "age"), column(expected_out, "age"), equal_nan=True),
        "numeric columns should pass through unchanged on new rows too",
    )
    expect(
        out.loc["x", "region"] == -1 and out.loc["x", "purpose"] == -1, "unseen categories should be coded -1"
    )
    expect(
        out.loc["y", "region"] == -1 and out.loc["z", "purpose"] == -1, "missing values should be coded -1"
    )
    expect(
        out.loc["y", "purpose"] == learned["purpose"]["car"], "a known category should keep its training code"
    )
    expect(
        out.loc["z", "region"] == learned["region"]["north"], "a known category should keep its training code"
    )


def _numeric_dtype(name: str) -> bool:
    try:
        return pd.api.types.is_numeric_dtype(pd.api.types.pandas_dtype(name))
    except (TypeError, ValueError):
        return False


# -- question 2 -------------------------------------------------------------------------------------


@checks.add("test_q2_models")
def q2_models(got, ref):
    from sklearn.metrics import average_precision_score

    labels = np.asarray(ref["labels"], dtype=int)  # the new months' outcomes, from the trusted run
    baseline = scores(got["baseline"], len(labels), "the baseline fitted on another extract")
    advanced = scores(got["advanced"], len(labels), "the advanced model fitted on another extract")
    expect(
        bool(np.isfinite(advanced).all() and ((advanced >= 0) & (advanced <= 1)).all()),
        "the advanced model's probabilities are not in [0, 1]",
    )
    expect(bool(np.isfinite(baseline).all()), "the baseline's probabilities are not in [0, 1]")
    pr_baseline = average_precision_score(labels, baseline)
    pr_advanced = average_precision_score(labels, advanced)
    expect(
        pr_advanced >= 2 * labels.mean(),
        "on new months of another extract, the advanced model's PR-AUC is below twice the default rate "
        "(the majority baseline's PR-AUC): it barely ranks defaulters above the others",
    )
    expect(
        pr_advanced > pr_baseline,
        "on new months of another extract, the advanced model's PR-AUC is not higher than the logistic baseline's",
    )


# -- question 3 -------------------------------------------------------------------------------------


@checks.add("test_q3_runs")
def q3_runs(got, ref):
    runs = usable(got["runs"], "reading the runs of tune_and_log")
    expected = ref["runs"]
    first_id, second_id = got["first_id"], got["second_id"]
    parents = {r["id"]: r for r in runs if r["parent"] is None}
    expect(
        set(parents) == {first_id, second_id} and first_id != second_id,
        "each call should add one parent run to the experiment (reused when it exists) and return its id",
    )
    children = [r for r in runs if r["parent"] == first_id]
    expected_children = [r for r in expected if r["parent"] == ref["first_id"]]
    expect(
        len(children) == len(expected_children) and len(runs) == len(expected),
        "expected one child run per candidate of the grid, and no other run",
    )
    keys = sorted({k for r in expected_children for k in r["params"]})  # the grid's parameter names
    expect(
        Counter(tuple(r["params"].get(k) for k in keys) for r in children)
        == Counter(tuple(r["params"].get(k) for k in keys) for r in expected_children),
        "each child run should log its candidate's parameters under their grid names",
    )
    child_scores = [r["metrics"].get("cv_pr_auc_mean") for r in children]
    expect(
        all(isinstance(s, float) for s in child_scores), "each child run should log the metric cv_pr_auc_mean"
    )
    parent = parents[first_id]
    expect(parent["name"] == ref_parent(ref)["name"], "the parent run should be named run_name")
    best_score = parent["metrics"].get("best_cv_pr_auc")
    expect(
        isinstance(best_score, float) and abs(best_score - max(child_scores)) < 1e-9,
        "the parent run should log best_cv_pr_auc, the largest cv_pr_auc_mean of its children",
    )
    best = children[int(np.argmax(child_scores))]["params"]
    expect(
        all(parent["params"].get(k) == best.get(k) for k in keys),
        "the parent run should log the best candidate's parameters",
    )


def ref_parent(ref) -> dict:
    return next(r for r in ref["runs"] if r["id"] == ref["first_id"])


@checks.add("test_q3_metrics")
def q3_metrics(got, ref):
    logged = usable(got["logged"], "reading the child runs of tune_and_log")
    by_candidate = {(r["C"], r["class_weight"]): r["score"] for r in logged}
    expected = {(r["C"], r["class_weight"]): r["score"] for r in ref["logged"]}
    expect(set(by_candidate) == set(expected), "expected one child run per candidate, with its parameters")
    for key, value in expected.items():
        score = by_candidate[key]
        expect(
            isinstance(score, float) and abs(score - value) < 1e-6,
            "a candidate's cv_pr_auc_mean does not match PR-AUC averaged over TimeSeriesSplit(n_splits=3) folds",
        )


# -- question 4 -------------------------------------------------------------------------------------


@checks.add("test_q4_slices")
def q4_slices(got, ref):
    rows = usable(got["table"], "slice_table")
    expected = ref["table"].set_index("slice")
    expect(
        len(rows) == len(expected) and rows["slice"].is_unique and set(rows["slice"]) == set(expected.index),
        "expected one row per slice value",
    )
    by_slice = rows.set_index("slice")
    for key, want in expected.iterrows():
        row = by_slice.loc[key]
        expect(
            row["rows"] == want["rows"] and row["positives"] == want["positives"],
            "rows or positives are wrong",
        )
        expect(abs(row["positive_rate"] - want["positive_rate"]) < 1e-9, "positive_rate is wrong")
        if np.isnan(want["pr_auc"]):
            expect(bool(np.isnan(row["pr_auc"])), "pr_auc should be NaN for a slice without both classes")
        else:
            expect(
                abs(row["pr_auc"] - want["pr_auc"]) < 1e-9,
                "pr_auc should be sklearn's average_precision_score over the slice (ties included)",
            )
    expect(
        set(by_slice.index[by_slice["worst"]]) == set(expected.index[expected["worst"]]),
        "worst should flag every slice tied for the lowest defined pr_auc, and no undefined one",
    )
    ordered = rows["pr_auc"].to_numpy(dtype=float)
    defined = ordered[~np.isnan(ordered)]
    expect(
        bool(np.isnan(ordered[len(defined) :]).all() and (np.diff(defined) >= -1e-12).all()),
        "rows should be sorted by pr_auc, lowest first, undefined last",
    )
    lonely = usable(got["lonely_worst"], "slice_table on a slice without positives")
    expect(
        len(lonely) == len(ref["lonely_worst"]) and not any(lonely),
        "no slice is the worst when no pr_auc is defined",
    )


# -- question 5 -------------------------------------------------------------------------------------


def _version(value) -> int | None:
    if type(value) is int:
        return value
    if type(value) is str and value.strip().isdigit():
        return int(value)
    return None


@checks.add("test_q5_champion")
def q5_champion(got, ref):
    old_version = _version(usable(got["old_version"], "register_champion"))
    new_version = _version(usable(got["new_version"], "register_champion"))
    expect(
        old_version is not None and new_version == old_version + 1,
        "each call should register a new version of the model",
    )
    expect(
        got["champion"] == str(got["new_version"]),
        "after a second call, the alias champion should point at the new version",
    )
    aliases = got["old_aliases"]
    expect(
        isinstance(aliases, list) and "champion" not in aliases,
        "the alias champion should name one version only",
    )
    loaded = np.asarray(usable(got["loaded"], "loading models:/<name>@champion"), dtype=float)
    new_model = np.asarray(ref["new_model"], dtype=float)  # the same model, fitted in the trusted run
    old_model = np.asarray(ref["old_model"], dtype=float)
    expect(
        loaded.shape == new_model.shape and np.abs(loaded - new_model).max() < 1e-9,
        "the champion loaded from the registry should predict exactly as the model in memory, on held-out rows",
    )
    expect(np.abs(loaded - old_model).max() > 1e-6, "the alias still serves the old model")


# -- question 6 -------------------------------------------------------------------------------------


@checks.add("test_q6_shap")
def q6_shap(got, ref):
    explained = usable(got["explained"], "shap_values")
    expect(explained["frame"] is True, "shap_values should return a DataFrame of contributions first")
    contributions = table(explained, "shap_values")
    features = ref["features"]  # the test model's preprocessed features, from the trusted run
    expect(
        contributions.shape == (len(ref["index"]), len(features))
        and set(contributions.columns) == set(features),
        "contributions should have one row per row of X and one column per preprocessed feature",
    )
    expect(list(contributions.index) == ref["index"], "contributions should keep the index of X")
    base_value = explained["base_value"]
    expect(isinstance(base_value, float), "the base value should be one number")
    log_odds = np.asarray(ref["log_odds"], dtype=float)  # the test model's output, from the trusted run
    gap = np.abs(base_value + contributions.sum(axis=1).to_numpy() - log_odds).max()
    expect(gap < 1e-6, "base value + contributions should equal the model's output in log-odds (additivity)")
    from mlsd.data import COEFFICIENTS, truth_features

    f = truth_features(ref["bureau"])
    truth = ((f - f.mean()) * pd.Series(COEFFICIENTS)).abs().mean().sort_values(ascending=False)
    model_rank = list(contributions.abs().mean().sort_values(ascending=False).index)
    for feature in truth.index[:2]:  # the truth's two strongest features (utilisation, 30-59 days late)
        expect(
            feature in model_rank[:4],
            "the features the ground truth weighs most should lead the contributions' ranking",
        )


@checks.add("test_q6_importance")
def q6_importance(got, ref):
    importance = usable(got["importance"], "global_importance")
    expected = ref["importance"]
    expect(
        len(importance["feature"]) == len(expected["feature"])
        and set(importance["feature"]) == set(expected["feature"]),
        "expected one row per feature",
    )
    values = dict(zip(importance["feature"], importance["mean_abs_shap"], strict=True))
    expect(
        np.allclose([values[f] for f in expected["feature"]], expected["mean_abs_shap"]),
        "mean_abs_shap should be the mean of the absolute contributions",
    )
    expect(
        bool((np.diff(np.asarray(importance["mean_abs_shap"], dtype=float)) <= 1e-12).all()),
        "rows should be sorted, largest first",
    )
    first = usable(got["first"], "reason_codes")
    expect(
        first["feature"] == ref["first"]["feature"]
        and np.allclose(np.asarray(first["shap"], dtype=float), ref["first"]["shap"]),
        "reason codes: the top positive contributions, largest first",
    )
    second = usable(got["second"], "reason_codes")
    expect(
        second["feature"] == ref["second"]["feature"],
        "only contributions above 0 are reasons; row is a position, not an index label",
    )
    expect(
        got["none_at_top_0"] == ref["none_at_top_0"] and got["none_positive"] == ref["none_positive"],
        "no reasons when top is 0 or no contribution is positive",
    )


# -- question 7 -------------------------------------------------------------------------------------


@checks.add("test_q7_drift")
def q7_drift(got, ref):
    rows = usable(got["table"], "drift_table")
    expected = ref["table"].set_index("feature")
    expect(
        sorted(rows["feature"]) == sorted(expected.index) and rows["feature"].is_unique,
        "expected one row per feature",
    )
    by_feature = rows.set_index("feature")
    # The premise of the next check (instructors: the hidden data must keep a tiny but significant shift).
    expect(expected.loc["tiny", "p_value"] < 0.05, "the hidden test's premise does not hold (instructors)")
    expect(
        by_feature["drifted"].to_dict() == expected["drifted"].to_dict(),
        "drifted is wrong: flag a feature only when its test is significant and its PSI reaches min_psi",
    )
    numeric = list(expected.index[expected["kind"] == "numeric"])
    categorical = list(expected.index[expected["kind"] == "categorical"])
    expect(
        all(by_feature.loc[c, "test"].lower().startswith("ks") for c in numeric),
        "numeric features use the KS test",
    )
    expect(
        all(by_feature.loc[c, "test"].lower().startswith("chi") for c in categorical),
        "categorical features use chi-square",
    )
    for name in ("shifted", "stable", "tiny"):
        expect(
            abs(by_feature.loc[name, "statistic"] - expected.loc[name, "statistic"]) < 1e-9,
            "the statistic of a numeric feature should be the KS statistic",
        )
    want_psi = expected.loc["shifted", "psi"]
    expect(
        abs(by_feature.loc["shifted", "psi"] - want_psi) < 0.05 * want_psi,
        "psi of a shifted numeric feature is wrong",
    )
    expect(
        by_feature.loc["stable", "psi"] < 0.01 and by_feature.loc["income", "psi"] < 0.01,
        "psi of an unchanged feature should be near 0",
    )
    expect(
        by_feature.loc["channel", "psi"] > 1.0, "a new category with 30% of the rows should give a large psi"
    )
    want_chi2 = expected.loc["channel", "statistic"]
    expect(
        abs(by_feature.loc["channel", "statistic"] - want_chi2) < 1e-6 * want_chi2,
        "the statistic of a categorical feature should be the chi-square statistic of the table of counts",
    )
    expect(
        0 <= by_feature.loc["purpose", "p_value"] <= 1 and by_feature.loc["channel", "p_value"] < 1e-12,
        "p_value is wrong",
    )
    strict = usable(got["strict"], "drift_table with min_psi=0.001").set_index("feature")
    expect(
        "tiny" in strict.index
        and bool(strict.loc["tiny", "drifted"]) == bool(ref["strict"]["drifted"].iloc[0]),
        "min_psi should be the PSI bar of the drifted flag",
    )
