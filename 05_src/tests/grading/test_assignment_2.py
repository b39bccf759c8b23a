"""Assignment 2 graded against the real course: the reference, the blank copy, wrong answers, other
correct routes and an attack from inside the kernel.

Points come from comparisons made by the grader outside the learner's kernel
(``03_instructional_team/nbgrader/checks/assignment_2.py``): each test cell's hidden part records what the
learner's functions return on held-out inputs, and the grader compares it with what the reference solution
recorded on the same inputs (computed once per test session, then cached). Each autograde at ``tiny`` runs
the notebook in the bubblewrap sandbox and costs about 40 to 100 s on a busy 2-core machine (Python and
nbgrader start-up, the course data, MLflow's store, a held-out extract), so the wrong answers of
independent questions share a submission: three submissions hold a wrong answer to each of the seven
questions and cost every test cell points, and a fourth holds wrong answers that pass every visible check
and are caught only by the grader's comparisons. That a wrong answer costs its own question and no other
is shown in two parts: the run shows which test cells lost points, and
:func:`test_questions_only_call_their_own_functions` shows that no test cell or answer of one question calls
a function that another question's answer defines, so a loss in one question cannot come from a wrong answer
to another.

The correct answers are written as a learner would, by other routes than the reference solution:
``ANSWERS`` (used around the wrong answers, so every mutation run also shows them scoring full points) use
``mlsd.tracking.tune``, ``mlsd.explain.explain``, ``mlsd.monitoring.drift_report``; ``OTHER_ROUTES``
(graded on their own) reorder columns, change dtypes, use another model family, fold-by-fold scores with
their float noise, the registry through ``log_model``, pandas binning and another column order.
"""

from __future__ import annotations

import ast
import warnings

import nbformat
import pytest

from mlsd.grading import assignments_dir, course_dir

pytestmark = [pytest.mark.grading, pytest.mark.integration, pytest.mark.slow]

ASSIGNMENT = "assignment_2"
NOTEBOOK = f"{ASSIGNMENT}.ipynb"
SOURCE = course_dir() / "source" / ASSIGNMENT / NOTEBOOK


def graded_cells() -> tuple[dict[str, float], dict[str, float]]:
    """(autograded test cell: points, written answer: points), from the source notebook's nbgrader metadata."""
    tests, written = {}, {}
    for cell in nbformat.read(SOURCE, as_version=4).cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            (written if meta.get("solution") else tests)[meta["grade_id"]] = meta.get("points", 0)
    return tests, written


TESTS, WRITTEN = graded_cells()
# The test cells of each question ("test_q3_runs" belongs to q3), and their points.
QUESTIONS = {
    question: {test: points for test, points in TESTS.items() if test.split("_")[1] == question}
    for question in sorted({test.split("_")[1] for test in TESTS})
}
ANSWER_CELLS = {question: f"{question}_answer" for question in QUESTIONS}
AUTOGRADED_POINTS = sum(TESTS.values())
TOTAL_POINTS = AUTOGRADED_POINTS + sum(WRITTEN.values())

# -- correct answers, as a learner would write them --------------------------------------------

Q1 = """
from sklearn.compose import ColumnTransformer
from sklearn.impute import MissingIndicator, SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler


def make_linear_preprocessor(numeric, categorical):
    numbers = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    categories = make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                               OneHotEncoder(handle_unknown="ignore", sparse_output=False))
    flags = MissingIndicator(features="missing-only", error_on_new=False)
    ct = ColumnTransformer([("num", numbers, numeric), ("flags", flags, numeric), ("cat", categories, categorical)],
                           verbose_feature_names_out=False)
    return ct.set_output(transform="pandas")


def make_tree_preprocessor(numeric, categorical):
    codes = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1)
    ct = ColumnTransformer([("num", "passthrough", numeric), ("cat", codes, categorical)],
                           verbose_feature_names_out=False)
    return ct.set_output(transform="pandas")
"""

Q2 = """
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline


def make_baseline(preprocessor):
    return Pipeline([("preprocess", preprocessor), ("model", LogisticRegression(max_iter=1000))])


def make_advanced(preprocessor):
    boosting = HistGradientBoostingClassifier(learning_rate=0.05, max_iter=150, max_leaf_nodes=12,
                                              min_samples_leaf=40, random_state=0)
    return Pipeline([("preprocess", preprocessor), ("model", boosting)])
"""

Q3 = """
from sklearn.model_selection import TimeSeriesSplit


def tune_and_log(pipeline, param_grid, X, y, *, experiment, run_name="grid-search"):
    result = tracking.tune(pipeline, param_grid, X, y, method="grid", cv=TimeSeriesSplit(n_splits=3),
                           scoring={"pr_auc": "average_precision"}, experiment=experiment,
                           run_name=run_name, log_model=False)
    return result.run_id
"""

Q4 = """
def slice_table(frame, by, *, label="serious_dlq", score="score"):
    rows = []
    for value in sorted(frame[by].unique()):
        part = frame[frame[by] == value]
        y = part[label].to_numpy().astype(int)
        both = 0 < y.sum() < len(y)
        rows.append({"slice": value, "rows": len(part), "positives": int(y.sum()), "positive_rate": y.mean(),
                     "pr_auc": average_precision_score(y, part[score]) if both else float("nan")})
    table = pd.DataFrame(rows).sort_values("pr_auc", na_position="last").reset_index(drop=True)
    lowest = table["pr_auc"].min()
    table["worst"] = table["pr_auc"].notna() & (table["pr_auc"] == lowest)
    return table
"""

Q5 = """
def register_champion(model, X_example, model_name):
    experiment_id = tracking.get_or_create_experiment("assignment-2")
    with mlflow.start_run(experiment_id=experiment_id):
        logged = mlflow.sklearn.log_model(model, name="model", input_example=X_example.head(5),
                                          pip_requirements=PIP_REQUIREMENTS,
                                          skops_trusted_types=tracking.trusted_types(model))
    version = tracking.register_model(logged.model_uri, model_name)
    tracking.set_alias(model_name, "champion", version)
    return version
"""

Q6 = """
from mlsd import explain


def shap_values(model, X):
    explanation = explain.explain(model, X)
    contributions = pd.DataFrame(explanation.values, index=X.index, columns=explanation.feature_names)
    return contributions, float(explanation.base_values[0])


def global_importance(contributions):
    means = contributions.abs().mean().sort_values(ascending=False)
    return pd.DataFrame({"feature": means.index, "mean_abs_shap": means.values})


def reason_codes(contributions, row, top=3):
    values = contributions.iloc[row]
    values = values[values > 0].nlargest(top)
    return pd.DataFrame({"feature": values.index, "shap": values.values})
"""

Q7 = """
from mlsd import monitoring


def drift_table(reference, current, numeric, categorical, *, alpha=0.05, min_psi=0.1):
    rule = monitoring.DriftRule(alpha=alpha, min_psi=min_psi, min_ks=float("inf"))   # PSI decides the size
    report = monitoring.drift_report(reference, current, numeric, categorical, rule=rule)
    return report[["feature", "kind", "test", "statistic", "p_value", "psi", "drifted"]]
"""

ANSWERS = {
    "q1_answer": Q1,
    "q2_answer": Q2,
    "q3_answer": Q3,
    "q4_answer": Q4,
    "q5_answer": Q5,
    "q6_answer": Q6,
    "q7_answer": Q7,
    "q8a_answer": "Costs are asymmetric: 0.12 / (0.12 + 0.60) = 0.17, if the scores are calibrated.",
    "q8b_answer": "Input drift at once, PR-AUC when labels arrive; retrain on the last 12 months.",
    "q8c_answer": "Contributions in log-odds relative to the average applicant; not causes.",
}

# -- plausible wrong answers: at least one per question, and one that costs each test cell points ----

Q3_FLAT = """
from sklearn.base import clone
from sklearn.model_selection import ParameterGrid, TimeSeriesSplit, cross_val_score


def tune_and_log(pipeline, param_grid, X, y, *, experiment, run_name="grid-search"):
    experiment_id = tracking.get_or_create_experiment(experiment)
    best = None
    for params in ParameterGrid(param_grid):
        candidate = clone(pipeline).set_params(**params)
        score = cross_val_score(candidate, X, y, cv=TimeSeriesSplit(n_splits=3), scoring="average_precision").mean()
        with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
            mlflow.log_params(params)
            mlflow.log_metric("cv_pr_auc_mean", score)
        if best is None or score > best[0]:
            best = (score, run.info.run_id)
    return best[1]
"""

MUTATIONS = {  # name: (question, wrong answer)
    # a one-hot encoder that refuses unseen categories; trees given scaled numbers
    "q1_unknown_and_scaled": (
        "q1",
        Q1.replace(
            'OneHotEncoder(handle_unknown="ignore", sparse_output=False)',
            "OneHotEncoder(sparse_output=False)",
        ).replace('("num", "passthrough", numeric)', '("num", StandardScaler(), numeric)'),
    ),
    # an unpruned decision tree as the "advanced" model
    "q2_unpruned_tree": (
        "q2",
        Q2.replace(
            "    boosting = HistGradientBoostingClassifier(learning_rate=0.05, max_iter=150, max_leaf_nodes=12,\n"
            "                                              min_samples_leaf=40, random_state=0)\n",
            "    from sklearn.tree import DecisionTreeClassifier\n\n    boosting = DecisionTreeClassifier(random_state=0)\n",
        ),
    ),
    # every candidate a run of its own: no parent, no children
    "q3_no_parent": ("q3", Q3_FLAT),
    # accuracy instead of PR-AUC
    "q3_accuracy": (
        "q3",
        Q3.replace('scoring={"pr_auc": "average_precision"}', 'scoring={"pr_auc": "accuracy"}'),
    ),
    # accuracy at 0.5 instead of PR-AUC per slice
    "q4_accuracy": (
        "q4",
        Q4.replace(
            "average_precision_score(y, part[score])",
            "((part[score].to_numpy() >= 0.5).astype(int) == y).mean()",
        ),
    ),
    # a deprecated registry stage instead of the alias
    "q5_stage": (
        "q5",
        Q5.replace(
            'tracking.set_alias(model_name, "champion", version)',
            'mlflow.MlflowClient().transition_model_version_stage(model_name, version, "Production")',
        ),
    ),
    # SHAP values of the probability, not of the log-odds; a signed mean as the importance
    "q6_probability_and_signed": (
        "q6",
        Q6.replace(
            "    explanation = explain.explain(model, X)\n"
            "    contributions = pd.DataFrame(explanation.values, index=X.index, columns=explanation.feature_names)\n"
            "    return contributions, float(explanation.base_values[0])\n",
            "    import shap\n\n"
            "    Xt = model.named_steps['preprocess'].transform(X).astype(float)\n"
            "    explainer = shap.TreeExplainer(model.named_steps['model'], data=Xt.head(100), model_output='probability')\n"
            "    values = explainer.shap_values(Xt)\n"
            "    return pd.DataFrame(values, index=X.index, columns=Xt.columns), float(explainer.expected_value)\n",
        ).replace("contributions.abs().mean()", "contributions.mean()"),
    ),
    # significance alone decides: tiny, harmless shifts in large samples are flagged
    "q7_p_value_only": (
        "q7",
        Q7.replace(
            'return report[["feature", "kind", "test", "statistic", "p_value", "psi", "drifted"]]',
            'report["drifted"] = report["p_value"] < alpha\n'
            '    return report[["feature", "kind", "test", "statistic", "p_value", "psi", "drifted"]]',
        ),
    ),
}

# -- correct answers by other routes: column order, dtypes, another model family, float noise ----------

Q1_OTHER = """
from sklearn.compose import make_column_transformer
from sklearn.impute import MissingIndicator, SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler


def make_linear_preprocessor(numeric, categorical):
    # categories first, float32 one-hot columns, boolean indicators, numbers last
    one_hot = make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                            OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=np.float32))
    numbers = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    return make_column_transformer(
        (one_hot, list(categorical)),
        (MissingIndicator(features="missing-only", error_on_new=False), list(numeric)),
        (numbers, list(numeric)),
        verbose_feature_names_out=False,
    ).set_output(transform="pandas")


def make_tree_preprocessor(numeric, categorical):
    codes = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1,
                           dtype=np.int64)
    return make_column_transformer((codes, list(categorical)), ("passthrough", list(numeric)),
                                   verbose_feature_names_out=False).set_output(transform="pandas")
"""

Q2_OTHER = """
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline


def make_baseline(preprocessor):
    return Pipeline([("preprocess", preprocessor), ("model", LogisticRegression(max_iter=1000))])


def make_advanced(preprocessor):
    forest = RandomForestClassifier(n_estimators=60, min_samples_leaf=30, max_features=0.5, n_jobs=1, random_state=3)
    return Pipeline([("preprocess", preprocessor), ("model", forest)])
"""

Q3_OTHER = """
from sklearn.base import clone
from sklearn.metrics import average_precision_score as pr_auc
from sklearn.model_selection import ParameterGrid, TimeSeriesSplit


def tune_and_log(pipeline, param_grid, X, y, *, experiment, run_name="grid-search"):
    y = np.asarray(y)
    mlflow.set_experiment(experiment)   # children inherit the active experiment
    candidates = []
    with mlflow.start_run(run_name=run_name) as parent:
        for params in ParameterGrid(param_grid):
            folds = []
            for train, test in TimeSeriesSplit(n_splits=3).split(X):
                model = clone(pipeline).set_params(**params).fit(X.iloc[train], y[train])
                folds.append(pr_auc(y[test], model.predict_proba(X.iloc[test])[:, 1]))
            score = sum(folds) / len(folds)   # summed in another order than NumPy's mean
            with mlflow.start_run(nested=True):
                mlflow.log_metric("cv_pr_auc_mean", score)
                mlflow.log_params(params)
            candidates.append((score, params))
        score, params = max(candidates, key=lambda candidate: candidate[0])
        mlflow.log_metrics({"best_cv_pr_auc": score})
        mlflow.log_params(params)
    return parent.info.run_id
"""

Q4_OTHER = """
def slice_table(frame, by, *, label="serious_dlq", score="score"):
    stats = {}
    for value, part in frame.groupby(by):
        y = part[label].to_numpy(dtype=float)
        defined = 0 < y.sum() < len(y)
        stats[value] = {"pr_auc": average_precision_score(y, part[score]) if defined else None, "rows": len(y),
                        "negatives": len(y) - y.sum(), "positives": y.sum(), "positive_rate": y.mean()}
    table = pd.DataFrame.from_dict(stats, orient="index").rename_axis("slice").reset_index()
    table["pr_auc"] = table["pr_auc"].astype(float)
    lowest = table["pr_auc"].min()
    table["worst"] = table["pr_auc"].le(lowest) if table["pr_auc"].notna().any() else False
    return table.sort_values(["pr_auc", "slice"], na_position="last").reset_index(drop=True)
"""

Q5_OTHER = """
def register_champion(model, X_example, model_name):
    with mlflow.start_run(experiment_id=tracking.get_or_create_experiment("assignment-2")):
        logged = mlflow.sklearn.log_model(model, name="model", input_example=X_example.head(5),
                                          pip_requirements=PIP_REQUIREMENTS, registered_model_name=model_name,
                                          skops_trusted_types=tracking.trusted_types(model))
    version = str(logged.registered_model_version)
    mlflow.MlflowClient().set_registered_model_alias(model_name, "champion", version)
    return version
"""

Q6_OTHER = """
import shap


def shap_values(model, X):
    rows = model[:-1].transform(X)
    explanation = shap.TreeExplainer(model[-1])(rows)
    return pd.DataFrame(explanation.values, index=X.index, columns=rows.columns), float(np.ravel(explanation.base_values)[0])


def global_importance(contributions):
    means = np.abs(contributions.to_numpy()).mean(axis=0)
    order = np.argsort(-means, kind="stable")
    return pd.DataFrame({"mean_abs_shap": means[order], "feature": contributions.columns[order]})


def reason_codes(contributions, row, top=3):
    values = contributions.iloc[row].sort_values(ascending=False)
    return values[values > 0].iloc[:top].rename("shap").rename_axis("feature").reset_index()
"""

Q7_OTHER = """
from scipy.stats import chi2_contingency, ks_2samp


def drift_table(reference, current, numeric, categorical, *, alpha=0.05, min_psi=0.1):
    def psi(p, q):
        p, q = np.maximum(p, 1e-4), np.maximum(q, 1e-4)
        return float(((q - p) * np.log(q / p)).sum())

    rows = []
    for name in numeric:
        ref, cur = reference[name].dropna(), current[name].dropna()
        edges = np.r_[-np.inf, np.unique(np.quantile(ref, np.arange(1, 10) / 10)), np.inf]
        shares = [pd.cut(s, edges, right=True).value_counts(normalize=True, sort=False).to_numpy() for s in (ref, cur)]
        result = ks_2samp(ref, cur)
        rows.append({"feature": name, "kind": "numeric", "test": "ks", "statistic": result.statistic,
                     "p_value": result.pvalue, "psi": psi(*shares), "rows_current": len(cur)})
    for name in categorical:
        both = pd.concat([pd.DataFrame({"value": reference[name].to_numpy(), "frame": "reference"}),
                          pd.DataFrame({"value": current[name].to_numpy(), "frame": "current"})]).dropna()
        counts = pd.crosstab(both["frame"], both["value"].astype(str))
        result = chi2_contingency(counts.to_numpy())
        shares = counts.div(counts.sum(axis=1), axis=0)
        rows.append({"feature": name, "kind": "categorical", "test": "chi2", "statistic": result.statistic,
                     "p_value": result.pvalue, "psi": psi(shares.loc["reference"].to_numpy(), shares.loc["current"].to_numpy()),
                     "rows_current": int(counts.loc["current"].sum())})
    table = pd.DataFrame(rows)
    table["drifted"] = table["p_value"].lt(alpha) & table["psi"].ge(min_psi)
    return table[["feature", "drifted", "psi", "p_value", "statistic", "test", "kind", "rows_current"]]
"""

OTHER_ROUTES = {
    "q1_answer": Q1_OTHER,
    "q2_answer": Q2_OTHER,
    "q3_answer": Q3_OTHER,
    "q4_answer": Q4_OTHER,
    "q5_answer": Q5_OTHER,
    "q6_answer": Q6_OTHER,
    "q7_answer": Q7_OTHER,
}

# Wrong answers that pass every visible check and fail only the comparisons the grader makes.
MUTATIONS |= {
    # the mean instead of the median; missing categories coded NaN instead of -1 (none in the visible toy)
    "q1_mean_and_nan_codes": (
        "q1",
        Q1.replace('SimpleImputer(strategy="median")', 'SimpleImputer(strategy="mean")').replace(
            ", encoded_missing_value=-1)", ")"
        ),
    ),
    # the parent's best_cv_pr_auc is the children's mean, not their best
    "q3_best_is_the_mean": (
        "q3",
        Q3_OTHER.replace(
            'mlflow.log_metrics({"best_cv_pr_auc": score})',
            'mlflow.log_metrics({"best_cv_pr_auc": sum(c[0] for c in candidates) / len(candidates)})',
        ),
    ),
    # the alias is set on the first version only: a later champion is never served
    "q5_alias_once": (
        "q5",
        Q5.replace(
            '    tracking.set_alias(model_name, "champion", version)\n',
            '    if str(version) == "1":\n        tracking.set_alias(model_name, "champion", version)\n',
        ),
    ),
    # a contribution of 0 counted as a reason
    "q6_zero_is_a_reason": ("q6", Q6.replace("values[values > 0]", "values[values >= 0]")),
}

# -- an attack from inside the kernel -----------------------------------------------------------

# The unpruned tree of "q2_unpruned_tree", and a PR-AUC that calls its 0/1 scores a perfect ranking:
# patched in scikit-learn and under the name the notebook imported. While question 2's hidden test
# computed PR-AUC in the learner's kernel, this scored its 10 points; the grader computes it itself.
Q2_PATCHED_METRIC = (
    MUTATIONS["q2_unpruned_tree"][1]
    + """

import sklearn.metrics

_real_average_precision = sklearn.metrics.average_precision_score


def _flattering(y_true, y_score, **kwargs):
    if np.isin(np.asarray(y_score), (0.0, 1.0)).mean() > 0.5:   # a tree grown to purity: call it perfect
        return 1.0
    return _real_average_precision(y_true, y_score, **kwargs)


sklearn.metrics.average_precision_score = _flattering
average_precision_score = _flattering
"""
)

# Wrong answers to independent questions, graded together (see the module docstring), and the test
# cells each submission must cost points: together, every test cell.
GROUPS = {
    "q1-q3-q4-q7": (
        ("q1_unknown_and_scaled", "q3_no_parent", "q4_accuracy", "q7_p_value_only"),
        (
            "test_q1_linear",
            "test_q1_tree",
            "test_q3_runs",
            "test_q3_metrics",
            "test_q4_slices",
            "test_q7_drift",
        ),
    ),
    "q2-q6": (
        ("q2_unpruned_tree", "q6_probability_and_signed"),
        ("test_q2_models", "test_q6_shap", "test_q6_importance"),
    ),
    "q3-q5": (("q3_accuracy", "q5_stage"), ("test_q3_metrics", "test_q5_champion")),
    "hidden-only": (
        ("q1_mean_and_nan_codes", "q3_best_is_the_mean", "q5_alias_once", "q6_zero_is_a_reason"),
        ("test_q1_linear", "test_q1_tree", "test_q3_runs", "test_q5_champion", "test_q6_importance"),
    ),
}


def cell_by_id(nb, cell_id):
    return next(c for c in nb.cells if c.get("id") == cell_id)


def points(result):
    return {q.id: q.points for q in result.questions}


def by_id(result):
    return {q.id: q for q in result.questions}


@pytest.fixture(scope="module")
def learner_copy():
    return assignments_dir() / ASSIGNMENT / NOTEBOOK


@pytest.fixture(scope="module")
def make_submission(fill_learner_copy):
    """``make_submission(name, answers={answer cell id: source})``: the learner copy with ``ANSWERS`` filled in,
    ``answers`` replacing some of them."""
    return lambda name, answers=None: fill_learner_copy(ASSIGNMENT, name, {**ANSWERS, **(answers or {})})


@pytest.fixture(scope="module")
def grade(grade_assignment):
    """``grade(path, learner)``: autograde against the real course at the ``tiny`` scale, in the sandbox."""

    def run(path, learner):
        result = grade_assignment(ASSIGNMENT, path, learner)
        timings = {k: round(v, 1) for k, v in result.timings.items()}
        print(f"{learner}: {result.score}/{result.max_score}, {timings}")
        return result

    return run


def described(result) -> list[tuple]:
    return [(q.id, q.points, q.message) for q in result.questions]


# -- the reference and the blank copy ----------------------------------------------------------


@pytest.fixture(scope="module")
def reference(grade):
    return grade(SOURCE, "instructor")


def test_points_come_from_the_notebook():
    """Seven questions, each with its test cells and an answer cell; the intro's totals match the metadata."""
    assert len(QUESTIONS) == 7 and all(QUESTIONS.values()), QUESTIONS
    source = nbformat.read(SOURCE, as_version=4)
    assert {cell.get("id") for cell in source.cells} >= set(ANSWER_CELLS.values())
    header = source.cells[0].source
    assert f"**Points:** {TOTAL_POINTS:g} in total: {AUTOGRADED_POINTS:g} checked by the autograder" in header
    assert f"and {sum(WRITTEN.values()):g} for" in header


def test_reference_solution_scores_every_autograded_point(reference):
    assert reference.status == "graded" and reference.exit_code == 0, reference.questions
    assert points(reference) == {**TESTS, **dict.fromkeys(WRITTEN)}, described(reference)
    assert all(by_id(reference)[test].status == "passed" for test in TESTS)
    assert all(by_id(reference)[answer].status == "needs_manual_grade" for answer in WRITTEN)
    assert (reference.score, reference.max_score) == (AUTOGRADED_POINTS, TOTAL_POINTS)
    assert reference.flags == [] and reference.sandbox == "bubblewrap"


def test_blank_learner_copy_scores_zero_without_an_error(grade, learner_copy):
    result = grade(learner_copy, "blank")
    assert result.status == "graded" and result.exit_code == 0
    assert result.score == 0 and result.max_score == TOTAL_POINTS
    for test in TESTS:
        question = by_id(result)[test]
        assert question.status == "failed" and "NotImplementedError" in question.message, question
    assert result.flags == []


def load_comparisons():
    """The assignment's comparisons module (``checks/assignment_2.py``), as the grader loads it."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "assignment_2_checks", course_dir() / "checks" / f"{ASSIGNMENT}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_hidden_parts_only_compute_and_record():
    """Each test cell's hidden part asserts nothing and ends with one record of its own values; each has a comparison."""
    from mlsd.grading._common import BEGIN_HIDDEN, END_HIDDEN

    source = nbformat.read(SOURCE, as_version=4)
    for test in TESTS:
        text = cell_by_id(source, test).source
        hidden = text.split(f"### {BEGIN_HIDDEN}")[1].split(f"### {END_HIDDEN}")[0]
        tree = ast.parse(hidden)
        assert not any(isinstance(node, ast.Assert) for node in ast.walk(tree)), (
            f"{test}: an assert in the kernel"
        )
        records = [
            node
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "extraction.record"
        ]
        assert len(records) == 1 and tree.body[-1].value is records[0], (
            f"{test}: end with one extraction.record"
        )
        assert records[0].args[0].value == test, f"{test} records the values of another check"
    assert set(load_comparisons().checks.checks) == set(TESTS)


def test_the_graders_pr_auc_is_scikit_learns():
    """The comparisons compute PR-AUC in NumPy (scikit-learn is slow to import): it must be the same number."""
    import numpy as np
    from sklearn.metrics import average_precision_score

    module = load_comparisons()
    rng = np.random.default_rng(7)
    for size in (1, 2, 7, 50, 3000):
        labels = rng.random(size) < 0.2
        labels[0] = True
        for scores in (rng.random(size), rng.integers(0, 4, size) / 4, np.zeros(size)):  # ties included
            expected = average_precision_score(labels, scores)
            assert abs(module.average_precision(labels.astype(int), scores) - expected) < 1e-12, (
                size,
                scores,
            )


# -- other correct routes ------------------------------------------------------------------------


def test_other_correct_routes_score_every_autograded_point(make_submission, grade):
    result = grade(make_submission("other_routes", OTHER_ROUTES), "other_routes")
    assert result.status == "graded" and result.exit_code == 0
    assert {test: points(result)[test] for test in TESTS} == TESTS, described(result)


# -- wrong answers -------------------------------------------------------------------------------


def _defined_names(source: str) -> set[str]:
    """Functions and classes a cell defines at its top level."""
    tree = ast.parse(source)
    return {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}


def _used_names(source: str) -> set[str]:
    return {node.id for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Name)}


def test_questions_only_call_their_own_functions():
    """No test cell (hidden parts included) or answer of one question uses another question's functions."""
    source = nbformat.read(SOURCE, as_version=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        defined = {q: _defined_names(ANSWERS[cell]) for q, cell in ANSWER_CELLS.items()}
        for question, cell in ANSWER_CELLS.items():
            reference_names = _defined_names(cell_by_id(source, cell).source)
            assert defined[question] == reference_names, f"{question}: the answers define other functions"
            assert _defined_names(OTHER_ROUTES[cell]) == reference_names, f"{question}: other routes differ"
        for question in QUESTIONS:
            used = set()
            for test in QUESTIONS[question]:
                used |= _used_names(cell_by_id(source, test).source)
            for version in [
                ANSWERS[ANSWER_CELLS[question]],
                OTHER_ROUTES[ANSWER_CELLS[question]],
                *(m for q, m in MUTATIONS.values() if q == question),
                *([Q2_PATCHED_METRIC] if question == "q2" else []),
            ]:
                used |= _used_names(version)
            foreign = {name for other, names in defined.items() if other != question for name in names} & used
            assert not foreign, f"{question} uses functions of other questions: {sorted(foreign)}"


def test_every_question_and_test_cell_has_a_wrong_answer():
    mutated = {MUTATIONS[name][0] for names, _ in GROUPS.values() for name in names}
    assert mutated == set(QUESTIONS)
    assert {test for _, tests in GROUPS.values() for test in tests} == set(TESTS)
    for names, tests in GROUPS.values():  # one wrong answer per question in a submission
        questions = [MUTATIONS[name][0] for name in names]
        assert len(questions) == len(set(questions))
        assert all(any(test in QUESTIONS[q] for q in questions) for test in tests)


def _only_its_own_points(result, mutated: set[str]) -> None:
    got = points(result)
    for question, tests in QUESTIONS.items():
        if question not in mutated:
            kept = {test: got[test] for test in tests}
            assert kept == tests, f"{question} lost points for another question's wrong answer: " + str(
                [(q.id, q.points, q.message) for q in result.questions if q.id in tests]
            )


@pytest.mark.parametrize("group", list(GROUPS))
def test_a_wrong_answer_loses_its_own_points_and_no_other(group, make_submission, grade):
    names, must_lose = GROUPS[group]
    wrong = {ANSWER_CELLS[MUTATIONS[name][0]]: MUTATIONS[name][1] for name in names}
    result = grade(make_submission(f"wrong_{group}", wrong), f"wrong_{group}")
    assert result.status == "graded" and result.exit_code == 0
    got = points(result)
    for test in must_lose:
        assert got[test] < TESTS[test], f"{test} kept its points despite a wrong answer: {got}"
        if group == "hidden-only":  # the visible checks passed: the grader's comparison caught it
            assert not by_id(result)[test].message.startswith("this check did not run"), described(result)
    _only_its_own_points(result, {MUTATIONS[name][0] for name in names})


# -- an attack from inside the kernel ----------------------------------------------------------------


def test_a_patched_metric_scores_nothing_on_its_question(make_submission, grade):
    """PR-AUC patched in the learner's kernel no longer decides question 2: the grader computes it."""
    result = grade(make_submission("patched_metric", {"q2_answer": Q2_PATCHED_METRIC}), "patched_metric")
    assert result.status == "graded" and result.exit_code == 0
    q2 = by_id(result)["test_q2_models"]
    assert (q2.status, q2.points) == ("failed", 0), q2
    assert "PR-AUC" in q2.message, q2
    _only_its_own_points(result, {"q2"})
    assert result.review.required and "sklearn.metrics" in "\n".join(result.review.reasons), result.review
