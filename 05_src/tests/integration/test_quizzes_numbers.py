"""Every numerical quiz answer, recomputed from the course data, is one the quiz accepts.

A numerical question names its computation (``% recompute: session_NN.name``); the registry below
holds one function per name. Each reads what the learner's notebook reads: the course data at the
`small` scale with the course seed, generated and loaded into the test PostgreSQL once for this
module, through the same pipeline as the notebooks (or, for a formula, the constants in the
notebook's code). When the data generator, the pipeline or a notebook changes a number, the quiz
that quotes it fails here, naming the question and the new value.
"""

from __future__ import annotations

import ast
import json

import pytest

from mlsd import course, db, pipelines
from mlsd.config import repo_root
from mlsd.data import generate
from mlsd.quiz import load_quizzes

pytestmark = [pytest.mark.integration, pytest.mark.quiz, pytest.mark.slow]

SCALE, SEED = "small", course.SEED  # what the notebooks run by default
QUIZZES = load_quizzes()
NUMERICAL = [(quiz, q) for quiz in QUIZZES.values() for q in quiz.questions if q.kind == "numerical"]


def _scalar(conn, query: str, params=None) -> float:
    return float(db.read_sql(conn, query, params).iloc[0, 0])


def notebook_constants(name: str) -> dict:
    """Top-level ``NAME = literal`` (and ``A, B = X, Y``) assignments in a session notebook's code cells."""
    cells = json.loads((repo_root() / "01_materials" / "labs" / name).read_text(encoding="utf-8"))["cells"]
    found: dict = {}

    def value(node):
        if isinstance(node, ast.Name):
            return found[node.id]
        return ast.literal_eval(node)

    for cell in cells:
        source = "".join(cell["source"])
        if cell["cell_type"] != "code" or source.lstrip().startswith("%"):
            continue
        for statement in ast.parse(
            "\n".join(line for line in source.splitlines() if not line.startswith("%"))
        ).body:
            if not isinstance(statement, ast.Assign) or len(statement.targets) != 1:
                continue
            target = statement.targets[0]
            try:
                if isinstance(target, ast.Name):
                    found[target.id] = value(statement.value)
                elif isinstance(target, ast.Tuple) and isinstance(statement.value, ast.Tuple):
                    values = [value(v) for v in statement.value.elts]
                    found.update({t.id: v for t, v in zip(target.elts, values, strict=True)})
            except (ValueError, KeyError, TypeError, AttributeError):
                continue  # not a constant
    return found


def approve_everyone_accuracy(conn):
    """Notebook 1, "Objectives and metrics": one minus the base rate of the months whose labels are
    complete (the manifest's ``complete_through``, six months before the last month)."""
    return _scalar(
        conn,
        """
        SELECT 1 - avg(serious_dlq) FROM gold.application_features
        WHERE serious_dlq IS NOT NULL
          AND month <= (SELECT to_char(to_date(max(month), 'YYYY-MM') - interval '6 months', 'YYYY-MM')
                        FROM gold.application_features)
        """,
    )


def break_even_probability(conn):
    """Notebook 1's profit model: MARGIN / (MARGIN + LOSS_GIVEN_DEFAULT), from the notebook's own constants."""
    constants = notebook_constants("01_ml_system_design.ipynb")
    return constants["MARGIN"] / (constants["MARGIN"] + constants["LOSS_GIVEN_DEFAULT"])


def applications_removed_in_silver(conn):
    """Notebook 2, the layers table: bronze.applications rows minus silver.applications rows."""
    return _scalar(
        conn, "SELECT (SELECT count(*) FROM bronze.applications) - (SELECT count(*) FROM silver.applications)"
    )


def positive_class_weight(conn):
    """Notebook 3, section 3: sampling.class_weights on the labelled months up to 2025-03 (the time split)."""
    from mlsd.features import gold_features
    from mlsd.sampling import class_weights, time_split

    gold = gold_features(conn)
    labelled = gold[gold["serious_dlq"].notna()].astype({"serious_dlq": "int64"})
    train = time_split(labelled, "month", train_end="2025-03", valid_end="2025-08").train
    return class_weights(train["serious_dlq"])[1]


def income_missing_share(conn):
    """Notebook 4, section 1: the share of applications in gold without a monthly income."""
    return _scalar(conn, "SELECT avg((monthly_income IS NULL)::int) FROM gold.application_features")


def future_snapshot_share(conn):
    """Notebook 4, section 5: applications joined to their customer's latest snapshot, pulled after them."""
    return _scalar(
        conn,
        """
        WITH latest AS (
            SELECT DISTINCT ON (customer_id) customer_id, pulled_at FROM silver.bureau
            ORDER BY customer_id, pulled_at DESC, snapshot_id DESC)
        SELECT avg((l.pulled_at > g.applied_at)::int)
        FROM gold.application_features AS g JOIN latest AS l USING (customer_id)
        """,
    )


def validation_positive_rate(conn):
    """Notebook 5, section 1: the share of defaults in the validation months of load_training_data."""
    from mlsd.training import load_training_data

    return float(load_training_data(conn, train_end="2024-12", valid_end="2025-03").y_valid.mean())


def bayes_threshold(conn):
    """Notebook 5, section 10: COST_FP / (COST_FP + COST_FN), from the notebook's own constants."""
    constants = notebook_constants("05_model_development.ipynb")
    return constants["COST_FP"] / (constants["COST_FP"] + constants["COST_FN"])


def months_not_fully_labelled(conn):
    """Notebook 6, section 6: the months whose label coverage (as of the data's as_of) is below 1."""
    coverage = db.read_sql(
        conn,
        "SELECT month, avg((serious_dlq IS NOT NULL)::int) AS coverage FROM gold.application_features "
        "GROUP BY month ORDER BY month",
    )["coverage"]
    gap = int((coverage < 1).sum())
    assert (coverage.iloc[len(coverage) - gap :] < 1).all(), "the partly labelled months are not the newest"
    return gap


RECOMPUTE = {
    "session_01.approve_everyone_accuracy": approve_everyone_accuracy,
    "session_01.break_even_probability": break_even_probability,
    "session_02.applications_removed_in_silver": applications_removed_in_silver,
    "session_03.positive_class_weight": positive_class_weight,
    "session_04.income_missing_share": income_missing_share,
    "session_04.future_snapshot_share": future_snapshot_share,
    "session_05.validation_positive_rate": validation_positive_rate,
    "session_05.bayes_threshold": bayes_threshold,
    "session_06.months_not_fully_labelled": months_not_fully_labelled,
}


@pytest.fixture(scope="module")
def course_data(databases, tmp_path_factory):
    """A database holding the course data as the notebooks see it: `small` scale, course seed."""
    print(f"\nquiz numbers: course data at scale {SCALE!r}, seed {SEED}")
    landing = tmp_path_factory.mktemp("quiz") / f"{SCALE}_seed{SEED}"
    generate(landing, scale=SCALE, seed=SEED, progress=False)
    url = databases.create()
    conn = db.connect(url)
    pipelines.load(conn, landing)
    yield conn
    conn.close()
    databases.drop(url)


def test_every_numerical_answer_has_exactly_one_recomputation():
    named = [q.recompute for _, q in NUMERICAL]
    assert len(named) == len(set(named)), "two questions name the same computation"
    assert set(named) == set(RECOMPUTE), (
        f"named in the quizzes but not in RECOMPUTE: {sorted(set(named) - set(RECOMPUTE))}; "
        f"in RECOMPUTE but no longer used: {sorted(set(RECOMPUTE) - set(named))}"
    )


@pytest.mark.parametrize(("quiz", "question"), NUMERICAL, ids=[q.recompute for _, q in NUMERICAL])
def test_the_quiz_accepts_the_recomputed_answer(quiz, question, course_data):
    value = RECOMPUTE[question.recompute](course_data)
    answer = question.numerical
    print(f"{question.recompute}: recomputed {value:.6g}; the quiz accepts [{answer.low:g}, {answer.high:g}]")
    assert answer.accepts(value), (
        f"{quiz.source} {question.name}: the course data now give {value:.6g}, outside the accepted "
        f"[{answer.low:g}, {answer.high:g}] of `= {answer.raw}`. Update the answer (and the stem or feedback "
        "if they quote it), or the computation if the notebook changed how it computes the number."
    )
