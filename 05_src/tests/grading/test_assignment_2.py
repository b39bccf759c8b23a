"""Assignment 2 graded against the real course: the reference, the blank copy and wrong answers.

Each autograde run at ``tiny`` costs about 15 to 30 s (Python and nbgrader start-up, the course data,
MLflow's store, a held-out extract), so the wrong answers of independent questions share a submission:
three submissions hold a wrong answer to each of the seven questions and cost every test cell points.
That a wrong answer costs its own question and no other is shown in two parts: the run shows which test
cells lost points, and :func:`test_questions_only_call_their_own_functions` shows that no test cell or
answer of one question calls a function that another question's answer defines, so a loss in one
question cannot come from a wrong answer to another. The correct answers below are written as a learner
would, some of them by another route than the reference solution (``mlsd.tracking.tune``,
``mlsd.explain.explain``, ``mlsd.monitoring.drift_report``): every run shows that those score full
points too.
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

# The test cells of each question, and their points.
QUESTIONS = {
    "q1": {"test_q1_linear": 8, "test_q1_tree": 5},
    "q2": {"test_q2_models": 10},
    "q3": {"test_q3_runs": 5, "test_q3_metrics": 7},
    "q4": {"test_q4_slices": 10},
    "q5": {"test_q5_champion": 10},
    "q6": {"test_q6_shap": 6, "test_q6_importance": 8},
    "q7": {"test_q7_drift": 11},
}
ANSWER_CELLS = {f"q{n}": f"q{n}_answer" for n in range(1, 8)}
WRITTEN = {"q8a_answer": 8, "q8b_answer": 6, "q8c_answer": 6}
TESTS = {test: points for tests in QUESTIONS.values() for test, points in tests.items()}

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
    """``make_submission(name, wrong={answer cell id: source})``: the learner copy with answers filled in."""
    return lambda name, wrong=None: fill_learner_copy(ASSIGNMENT, name, {**ANSWERS, **(wrong or {})})


@pytest.fixture(scope="module")
def grade(grade_assignment):
    """``grade(path, learner)``: autograde against the real course at the ``tiny`` scale."""
    return lambda path, learner: grade_assignment(ASSIGNMENT, path, learner)


# -- the reference and the blank copy ----------------------------------------------------------


@pytest.fixture(scope="module")
def reference(grade):
    return grade(course_dir() / "source" / ASSIGNMENT / NOTEBOOK, "instructor")


def test_reference_solution_scores_every_autograded_point(reference):
    assert reference.status == "graded" and reference.exit_code == 0, reference.questions
    assert points(reference) == {**TESTS, **dict.fromkeys(WRITTEN)}, [
        (q.id, q.points, q.message) for q in reference.questions
    ]
    assert all(by_id(reference)[test].status == "passed" for test in TESTS)
    assert all(by_id(reference)[answer].status == "needs_manual_grade" for answer in WRITTEN)
    assert (reference.score, reference.max_score) == (80, 100)
    assert reference.flags == []
    print(f"reference at tiny: {reference.timings}")


def test_blank_learner_copy_scores_zero_without_an_error(grade, learner_copy):
    result = grade(learner_copy, "blank")
    assert result.status == "graded" and result.exit_code == 0
    assert result.score == 0 and result.max_score == 100
    for test in TESTS:
        question = by_id(result)[test]
        assert question.status == "failed" and "NotImplementedError" in question.message, question
    assert result.flags == []


# -- wrong answers -------------------------------------------------------------------------------


def _defined_names(source: str) -> set[str]:
    """Functions and classes a cell defines at its top level."""
    tree = ast.parse(source)
    return {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}


def _used_names(source: str) -> set[str]:
    return {node.id for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Name)}


def test_questions_only_call_their_own_functions():
    """No test cell (hidden parts included) or answer of one question uses another question's functions."""
    source = nbformat.read(course_dir() / "source" / ASSIGNMENT / NOTEBOOK, as_version=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        defined = {q: _defined_names(ANSWERS[cell]) for q, cell in ANSWER_CELLS.items()}
        for question, cell in ANSWER_CELLS.items():
            reference_names = _defined_names(cell_by_id(source, cell).source)
            assert defined[question] == reference_names, f"{question}: the answers define other functions"
        for question in QUESTIONS:
            used = set()
            for test in QUESTIONS[question]:
                used |= _used_names(cell_by_id(source, test).source)
            for version in [
                ANSWERS[ANSWER_CELLS[question]],
                *(m for q, m in MUTATIONS.values() if q == question),
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


@pytest.mark.parametrize("group", list(GROUPS))
def test_a_wrong_answer_loses_its_own_points_and_no_other(group, make_submission, grade):
    names, must_lose = GROUPS[group]
    wrong = {ANSWER_CELLS[MUTATIONS[name][0]]: MUTATIONS[name][1] for name in names}
    result = grade(make_submission(f"wrong_{group}", wrong), f"wrong_{group}")
    assert result.status == "graded" and result.exit_code == 0
    got = points(result)
    mutated = {MUTATIONS[name][0] for name in names}
    for test in must_lose:
        assert got[test] < TESTS[test], f"{test} kept its points despite a wrong answer: {got}"
    for question, tests in QUESTIONS.items():
        if question not in mutated:
            kept = {test: got[test] for test in tests}
            assert kept == tests, f"{question} lost points for another question's wrong answer: " + str(
                [(q.id, q.points, q.message) for q in result.questions if q.id in tests]
            )
