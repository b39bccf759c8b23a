"""Comparisons for assignment 2 (run by the grader, never in a learner's kernel; never released).

Each function scores one autograded test cell of ``source/assignment_2/assignment_2.ipynb``. ``got`` holds
what the cell's hidden part recorded in the learner's kernel: the learner's functions called on held-out
inputs, their results as plain data. ``ref`` holds what the same cell recorded when the instructors'
solution ran on the same inputs in a trusted kernel, and the inputs that the grader needs (labels, the
ground truth's features), read from ``ref`` only. Messages are those of the in-kernel hidden asserts that
these comparisons replace, in the same order, so the first that fails is the one a learner read before.

Where many answers are right, properties are checked instead of equality: the codes an ordinal encoder
gives categories, the order of tied features, the PR-AUC of another advanced model, the SHAP values of
another (additive) explainer. Tolerances, per check:

- numbers a correct answer computes exactly as the reference (scaled columns, one-hot and indicator
  columns, PR-AUC of a slice, KS statistics, passed-through values): ``1e-9`` absolute, or NumPy's
  ``allclose`` (``1e-5`` relative, ``1e-8`` absolute) where the old assert used it;
- a candidate's cross-validated PR-AUC logged in MLflow: ``1e-6`` (another route sums the folds in
  another order); predictions of a model saved and loaded again: ``1e-9``; SHAP additivity: ``1e-6`` in
  log-odds against the reference model's output;
- PSI of a shifted feature: 5 % of the reference's value; the chi-square statistic: ``1e-6`` relative.

Only NumPy is imported: the grader scores in a process where pandas and scikit-learn would cost seconds
to import, so :func:`average_precision` is scikit-learn's ``average_precision_score`` in NumPy (the tests
check that they agree).
"""

from __future__ import annotations

import builtins
from collections import Counter

import numpy as np

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


def numbers(values) -> np.ndarray:
    return np.asarray(values, dtype=float)


def average_precision(labels, scores) -> float:
    """``sklearn.metrics.average_precision_score`` of 0/1 ``labels`` (with at least one 1) and ``scores``.

    Precision at each distinct score, weighted by the recall it adds: tied scores form one threshold.
    """
    order = np.argsort(-np.asarray(scores, dtype=float), kind="stable")
    y, s = np.asarray(labels, dtype=float)[order], np.asarray(scores, dtype=float)[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # the last row of each distinct score
    true_positives = np.cumsum(y)[last]
    precision = true_positives / (last + 1)
    recall = true_positives / true_positives[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


class Table:
    """A transformer's output as recorded (column names, row labels, values): read by name."""

    def __init__(self, plain: dict):
        self.columns = [str(c) for c in plain["columns"]]
        self.index = [str(i) for i in plain["index"]]
        self.numeric = list(plain.get("numeric", []))
        self.values = numbers(plain["values"]).reshape(len(self.index), len(self.columns))

    def column(self, name: str) -> np.ndarray:
        """The column's values; a missing or repeated name gives NaN (comparisons then fail)."""
        if self.columns.count(name) != 1:
            return np.full(len(self.index), np.nan)
        return self.values[:, self.columns.index(name)]

    def at(self, row: str, name: str) -> float:
        if self.index.count(row) != 1:
            return float("nan")
        return float(self.column(name)[self.index.index(row)])

    def block(self, prefix: str) -> list[str]:
        return [c for c in self.columns if c.startswith(prefix)]


def table(plain, what: str) -> Table:
    return Table(usable(plain, what))


# -- question 1 -------------------------------------------------------------------------------------


@checks.add("test_q1_linear")
def q1_linear(got, ref):
    expect(got["new_each_call"] is True, "each call should build a new ColumnTransformer")
    fitted = table(got["fitted"], "fit_transform of make_linear_preprocessor's ColumnTransformer")
    expected = Table(ref["fitted"])
    expect(fitted.columns == got["names_out"], "the output columns should be the feature names out")
    expect(fitted.index == expected.index, "the output rows should keep the input's index")
    for name in ("income", "debt", "age"):  # the hidden test's numeric columns
        expect(
            np.allclose(fitted.column(name), expected.column(name), atol=1e-9),
            f"numeric column {name}: fill missing values with the training median, then standardise",
        )
    indicators = sorted(fitted.block("missingindicator_"))
    expect(
        indicators == sorted(expected.block("missingindicator_")),
        "add a missing indicator for each numeric column with missing values in fit, and only for those",
    )
    for name in indicators:
        expect(np.array_equal(fitted.column(name), expected.column(name)), "the missing indicator is wrong")
    for source in ("purpose", "region"):  # the hidden test's categorical columns
        block = expected.block(f"{source}_")
        expect(
            len(fitted.block(f"{source}_")) == len(block),
            f"{source}: expected one one-hot column per category seen in fit",
        )
        for name in block:
            expect(
                name in fitted.columns, f"the one-hot column for a category seen in fit is missing ({source})"
            )
            expect(
                np.array_equal(fitted.column(name), expected.column(name)),
                f"one-hot column {name} does not match the data",
            )
    expect(len(fitted.columns) == len(expected.columns), "unexpected number of output columns")

    out = table(got["transformed"], "transform of make_linear_preprocessor's ColumnTransformer")
    expected_out = Table(ref["transformed"])
    expect(out.columns == fitted.columns, "transform should give the same columns as fit")
    expect(out.index == expected_out.index, "the output rows should keep the input's index")
    expect(
        not np.isnan(out.values).any(), "no missing value should be left in the linear preprocessor's output"
    )
    for name, row in (("income", "x"), ("income", "y"), ("income", "z"), ("debt", "y"), ("age", "z")):
        expect(
            abs(out.at(row, name) - expected_out.at(row, name)) < 1e-9,
            "a missing value at transform time should get the training median, scaled like the training rows",
        )
    expect(
        np.array_equal(out.column("missingindicator_income"), expected_out.column("missingindicator_income")),
        "the missing indicator is wrong on new rows",
    )
    regions, purposes = fitted.block("region_"), fitted.block("purpose_")
    expect(sum(out.at("x", c) for c in regions + purposes) == 0, "unseen categories should give all zeros")
    expect(sum(out.at("y", c) for c in regions) == 0, "a category not seen in fit should give all zeros")
    expect(
        out.at("y", "purpose_car") == 1.0 and sum(out.at("y", c) for c in purposes) == 1, "one-hot is wrong"
    )
    expect(out.at("z", "purpose_missing") == 1.0, "a missing category should become the category 'missing'")


@checks.add("test_q1_tree")
def q1_tree(got, ref):
    expect(got["new_each_call"] is True, "each call should build a new ColumnTransformer")
    fitted = table(got["fitted"], "fit_transform of make_tree_preprocessor's ColumnTransformer")
    expected = Table(ref["fitted"])
    expect(
        sorted(fitted.columns) == sorted(expected.columns),
        "one output column per input column, under its name",
    )
    expect(fitted.columns == got["names_out"], "the output columns should be the feature names out")
    expect(fitted.index == expected.index, "the output rows should keep the input's index")
    expect(all(flag is True for flag in fitted.numeric), "every output column should be numeric")
    for name in ("income", "age"):  # the hidden test's numeric columns
        expect(
            np.allclose(fitted.column(name), expected.column(name), equal_nan=True),
            f"numeric column {name} should pass through unchanged, missing values included",
        )
    learned = {}
    # The hidden test's categorical input, read from the reference's record.
    for name, values in ref["fit_categories"].items():
        codes = fitted.column(name)
        expect(
            all(code == -1 for code, value in zip(codes, values, strict=True) if value is None),
            f"{name}: missing values should be coded -1",
        )
        seen: dict[str, set] = {}
        for code, value in zip(codes, values, strict=True):
            if value is not None:
                seen.setdefault(value, set()).add(code)
        expect(
            all(len(c) == 1 for c in seen.values()), f"{name}: each category should always get the same code"
        )
        first = {value: next(iter(c)) for value, c in seen.items()}
        expect(
            len(set(first.values())) == len(first) and all(c >= 0 and c == round(c) for c in first.values()),
            f"{name}: categories seen in fit should get distinct whole codes, 0 or more",
        )
        learned[name] = first

    out = table(got["transformed"], "transform of make_tree_preprocessor's ColumnTransformer")
    expected_out = Table(ref["transformed"])
    expect(out.columns == fitted.columns, "transform should give the same columns as fit")
    expect(out.index == expected_out.index, "the output rows should keep the input's index")
    expect(
        all(np.allclose(out.column(c), expected_out.column(c), equal_nan=True) for c in ("income", "age")),
        "numeric columns should pass through unchanged on new rows too",
    )
    expect(
        out.at("x", "region") == -1 and out.at("x", "purpose") == -1, "unseen categories should be coded -1"
    )
    expect(out.at("y", "region") == -1 and out.at("z", "purpose") == -1, "missing values should be coded -1")
    expect(
        out.at("y", "purpose") == learned["purpose"]["car"], "a known category should keep its training code"
    )
    expect(
        out.at("z", "region") == learned["region"]["north"], "a known category should keep its training code"
    )


# -- question 2 -------------------------------------------------------------------------------------


def scores(values, rows: int, what: str) -> np.ndarray:
    """Recorded probabilities as a 1-d array of ``rows`` numbers."""
    array = numbers(usable(values, what))
    expect(array.shape == (rows,), f"{what} should give one probability per row")
    return array


@checks.add("test_q2_models")
def q2_models(got, ref):
    labels = numbers(ref["labels"])  # the new months' outcomes, from the trusted run
    baseline = scores(got["baseline"], len(labels), "the baseline fitted on another extract")
    advanced = scores(got["advanced"], len(labels), "the advanced model fitted on another extract")
    expect(
        bool(np.isfinite(advanced).all() and ((advanced >= 0) & (advanced <= 1)).all()),
        "the advanced model's probabilities are not in [0, 1]",
    )
    expect(bool(np.isfinite(baseline).all()), "the baseline's probabilities are not in [0, 1]")
    pr_baseline, pr_advanced = average_precision(labels, baseline), average_precision(labels, advanced)
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
    first_id, second_id = got["first_id"], got["second_id"]
    parents = {r["id"]: r for r in runs if r["parent"] is None}
    expect(
        set(parents) == {first_id, second_id} and first_id != second_id,
        "each call should add one parent run to the experiment (reused when it exists) and return its id",
    )
    children = [r for r in runs if r["parent"] == first_id]
    expected_children = [r for r in ref["runs"] if r["parent"] == ref["first_id"]]
    expect(
        len(children) == len(expected_children) and len(runs) == len(ref["runs"]),
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
    expected_parent = next(r for r in ref["runs"] if r["id"] == ref["first_id"])
    expect(parent["name"] == expected_parent["name"], "the parent run should be named run_name")
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
    keys, expected_keys = list(rows["slice"]), list(ref["table"]["slice"])
    expect(
        len(keys) == len(expected_keys) and sorted(keys) == sorted(expected_keys),
        "expected one row per slice value",
    )
    at = {key: i for i, key in enumerate(keys)}
    column = {name: numbers(rows[name]) for name in ("rows", "positives", "positive_rate", "pr_auc")}
    for j, key in enumerate(expected_keys):
        i = at[key]
        want = {name: numbers(ref["table"][name])[j] for name in column}
        expect(
            column["rows"][i] == want["rows"] and column["positives"][i] == want["positives"],
            "rows or positives are wrong",
        )
        expect(abs(column["positive_rate"][i] - want["positive_rate"]) < 1e-9, "positive_rate is wrong")
        if np.isnan(want["pr_auc"]):
            expect(
                bool(np.isnan(column["pr_auc"][i])), "pr_auc should be NaN for a slice without both classes"
            )
        else:
            expect(
                abs(column["pr_auc"][i] - want["pr_auc"]) < 1e-9,
                "pr_auc should be sklearn's average_precision_score over the slice (ties included)",
            )
    worst = {key for key, flag in zip(keys, rows["worst"], strict=True) if flag is True}
    expected_worst = {
        key for key, flag in zip(expected_keys, ref["table"]["worst"], strict=True) if flag is True
    }
    expect(
        worst == expected_worst,
        "worst should flag every slice tied for the lowest defined pr_auc, and no undefined one",
    )
    ordered = column["pr_auc"]
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
    loaded = numbers(usable(got["loaded"], "loading models:/<name>@champion"))
    new_model = numbers(ref["new_model"])  # the same model, fitted in the trusted run
    old_model = numbers(ref["old_model"])
    expect(
        loaded.shape == new_model.shape and np.abs(loaded - new_model).max() < 1e-9,
        "the champion loaded from the registry should predict exactly as the model in memory, on held-out rows",
    )
    expect(np.abs(loaded - old_model).max() > 1e-6, "the alias still serves the old model")


# -- question 6 -------------------------------------------------------------------------------------


@checks.add("test_q6_shap")
def q6_shap(got, ref):
    from mlsd.data import COEFFICIENTS  # NumPy only

    explained = usable(got["explained"], "shap_values")
    expect(explained["frame"] is True, "shap_values should return a DataFrame of contributions first")
    contributions = Table(explained)
    features = ref["features"]  # the test model's preprocessed features, from the trusted run
    expect(
        contributions.values.shape == (len(ref["index"]), len(features))
        and set(contributions.columns) == set(features),
        "contributions should have one row per row of X and one column per preprocessed feature",
    )
    expect(contributions.index == ref["index"], "contributions should keep the index of X")
    base_value = explained["base_value"]
    expect(isinstance(base_value, float), "the base value should be one number")
    log_odds = numbers(ref["log_odds"])  # the test model's output, from the trusted run
    gap = np.abs(base_value + contributions.values.sum(axis=1) - log_odds).max()
    expect(gap < 1e-6, "base value + contributions should equal the model's output in log-odds (additivity)")
    truth = {
        name: np.abs((numbers(values) - numbers(values).mean()) * COEFFICIENTS[name]).mean()
        for name, values in ref["truth_features"].items()
    }
    strength = np.abs(contributions.values).mean(axis=0)
    model_rank = [contributions.columns[i] for i in np.argsort(-strength, kind="stable")]
    for feature in sorted(truth, key=truth.get, reverse=True)[:2]:  # utilisation, 30-59 days late
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
        np.allclose(numbers([values[f] for f in expected["feature"]]), numbers(expected["mean_abs_shap"])),
        "mean_abs_shap should be the mean of the absolute contributions",
    )
    expect(
        bool((np.diff(numbers(importance["mean_abs_shap"])) <= 1e-12).all()),
        "rows should be sorted, largest first",
    )
    first = usable(got["first"], "reason_codes")
    expect(
        first["feature"] == ref["first"]["feature"]
        and np.allclose(numbers(first["shap"]), numbers(ref["first"]["shap"])),
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


def _by_feature(rows: dict) -> dict[str, dict]:
    """drift_table's recorded columns as one dict per feature."""
    names = list(rows)
    return {feature: {name: rows[name][i] for name in names} for i, feature in enumerate(rows["feature"])}


@checks.add("test_q7_drift")
def q7_drift(got, ref):
    rows = usable(got["table"], "drift_table")
    expected = _by_feature(ref["table"])
    expect(
        sorted(rows["feature"]) == sorted(expected) and len(set(rows["feature"])) == len(rows["feature"]),
        "expected one row per feature",
    )
    table = _by_feature(rows)
    # The premise of the next check (instructors: the hidden data must keep a tiny but significant shift).
    expect(expected["tiny"]["p_value"] < 0.05, "the hidden test's premise does not hold (instructors)")
    expect(
        {f: row["drifted"] for f, row in table.items()} == {f: row["drifted"] for f, row in expected.items()},
        "drifted is wrong: flag a feature only when its test is significant and its PSI reaches min_psi",
    )
    expect(
        all(
            table[f]["test"].lower().startswith("ks")
            for f, row in expected.items()
            if row["kind"] == "numeric"
        ),
        "numeric features use the KS test",
    )
    expect(
        all(
            table[f]["test"].lower().startswith("chi")
            for f, row in expected.items()
            if row["kind"] == "categorical"
        ),
        "categorical features use chi-square",
    )
    for name in ("shifted", "stable", "tiny"):
        expect(
            abs(table[name]["statistic"] - expected[name]["statistic"]) < 1e-9,
            "the statistic of a numeric feature should be the KS statistic",
        )
    want_psi = expected["shifted"]["psi"]
    expect(
        abs(table["shifted"]["psi"] - want_psi) < 0.05 * want_psi, "psi of a shifted numeric feature is wrong"
    )
    expect(
        table["stable"]["psi"] < 0.01 and table["income"]["psi"] < 0.01,
        "psi of an unchanged feature should be near 0",
    )
    expect(table["channel"]["psi"] > 1.0, "a new category with 30% of the rows should give a large psi")
    want_chi2 = expected["channel"]["statistic"]
    expect(
        abs(table["channel"]["statistic"] - want_chi2) < 1e-6 * want_chi2,
        "the statistic of a categorical feature should be the chi-square statistic of the table of counts",
    )
    expect(
        0 <= table["purpose"]["p_value"] <= 1 and table["channel"]["p_value"] < 1e-12,
        "p_value is wrong",
    )
    strict = _by_feature(usable(got["strict"], "drift_table with min_psi=0.001"))
    expect(
        "tiny" in strict and strict["tiny"]["drifted"] == _by_feature(ref["strict"])["tiny"]["drifted"],
        "min_psi should be the PSI bar of the drifted flag",
    )
