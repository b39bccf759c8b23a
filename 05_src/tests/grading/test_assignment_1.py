"""Assignment 1 against the real course: the reference scores every point, the blank copy none,
and each plausible wrong answer loses its own question's points and no other question's.

Submissions are built from the committed learner copy (``02_activities/assignments/assignment_1``)
with answers written as a learner would. The correct answers below deliberately take other routes
than the reference solution (TRUNCATE instead of DROP, ``mlsd.db.copy_csv``, a ``VALUES`` spelling map
and ``row_number()``, ``pd.merge_asof``, periods, scikit-learn's stratified split, a lazy Dask result
indexed by month), so every mutation run also shows that the tests accept other correct approaches.
Each autograde at ``tiny`` takes about 12 s (a Python start-up, nbgrader, a kernel, ``course.setup()``).
"""

from __future__ import annotations

import pytest

from mlsd.grading import assignments_dir, course_dir

pytestmark = [pytest.mark.grading, pytest.mark.integration, pytest.mark.slow]

ASSIGNMENT = "assignment_1"
NOTEBOOK = f"{ASSIGNMENT}.ipynb"

# test cell -> points, by question (notebook order)
QUESTIONS = {
    "q1": {"test_q1_load_extract": 5, "test_q1_load_edge_cases": 7},
    "q2": {"test_q2_silver_extract": 8, "test_q2_silver_edge_cases": 10},
    "q3": {"test_q3_features": 9, "test_q3_labels": 7},
    "q4": {"test_q4_time_split": 8},
    "q5": {"test_q5_stratified_sample": 8},
    "q6": {"test_q6_imbalance": 8},
    "q7": {"test_q7_dask": 10},
}
TESTS = {cell: points for cells in QUESTIONS.values() for cell, points in cells.items()}
WRITTEN = {"q8a_defects": 7, "q8b_production": 7, "q8c_elt": 6}
AUTOGRADED_POINTS = 80
TOTAL_POINTS = 100

# -- correct answers, written as a learner would (and by other routes than the reference) -----

Q1 = """
from psycopg2 import sql


def load_extract(conn, csv_path, table):
    with open(csv_path, newline="", encoding="utf-8") as f:
        header = next(csv.reader(f))
    name = sql.Identifier(*table.split("."))
    columns = sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(c)) for c in header)
    with conn:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(name, columns))
            cur.execute(sql.SQL("TRUNCATE {}").format(name))
        n = db.copy_csv(conn, csv_path, table)
    return n
"""

Q2 = '''
from mlsd.data import CATEGORY_CANONICAL


def build_silver(conn, bronze_table, silver_table):
    spelling = sql.SQL(", ").join(
        sql.SQL("({}, {}, {})").format(sql.Literal(col), sql.Literal(raw), sql.Literal(canon))
        for col, mapping in CATEGORY_CANONICAL.items() for raw, canon in mapping.items()
    )
    def category(column):
        return sql.SQL(
            "coalesce((SELECT s.canonical FROM spelling s WHERE s.col = {c} AND s.raw = lower(trim(r.{i}))), "
            "lower(trim(r.{i})), 'unknown') AS {i}"
        ).format(c=sql.Literal(column), i=sql.Identifier(column))
    query = sql.SQL("""
        DROP TABLE IF EXISTS {silver};
        CREATE TABLE {silver} AS
        WITH spelling (col, raw, canonical) AS (VALUES {spelling}),
        ranked AS (
            SELECT b.*, row_number() OVER (PARTITION BY application_id
                                           ORDER BY ingested_at::timestamptz DESC) AS copy_number
            FROM {bronze} b WHERE application_id IS NOT NULL
        )
        SELECT application_id, customer_id, applied_at::timestamptz AS applied_at,
               to_char(applied_at::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM') AS month,
               {channel}, {purpose},
               CASE WHEN amount::float8 <= 0 THEN NULL ELSE amount::float8 END AS amount,
               term_months::int AS term_months, {region}, ingested_at::timestamptz AS ingested_at
        FROM ranked r
        WHERE copy_number = 1
    """).format(
        silver=sql.SQL(silver_table), bronze=sql.SQL(bronze_table), spelling=spelling,
        channel=category("channel"), purpose=category("purpose"), region=category("region"),
    )
    with conn, conn.cursor() as cur:
        cur.execute(query)
        cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.SQL(silver_table)))
        return cur.fetchone()[0]
'''

Q3 = """
def training_table(conn, applications, cutoff, schema="silver"):
    apps = applications[["application_id", "customer_id", "applied_at"]].copy()
    apps["applied_at"] = pd.to_datetime(apps["applied_at"], utc=True).astype("datetime64[ns, UTC]")
    bureau = db.read_sql(conn, f"SELECT snapshot_id, customer_id, pulled_at, revolving_utilization, late_90 "
                               f"FROM {schema}.bureau")
    bureau["pulled_at"] = pd.to_datetime(bureau["pulled_at"], utc=True).astype("datetime64[ns, UTC]")
    bureau = bureau.sort_values(["pulled_at", "snapshot_id"])
    table = pd.merge_asof(apps.sort_values("applied_at"), bureau, left_on="applied_at", right_on="pulled_at",
                          by="customer_id", direction="backward")
    late = db.read_sql(conn, f"SELECT l.customer_id, r.ingested_at FROM {schema}.repayments r "
                             f"JOIN {schema}.applications l ON l.application_id = r.application_id "
                             f"WHERE r.days_late > 30")
    late["ingested_at"] = pd.to_datetime(late["ingested_at"], utc=True)
    pairs = apps.merge(late, on="customer_id")
    counts = pairs[pairs["ingested_at"] < pairs["applied_at"]].groupby("application_id").size()
    table["prior_late_payments"] = table["application_id"].map(counts).fillna(0).astype(int)
    labels = db.read_sql(conn, f"SELECT application_id, serious_dlq FROM {schema}.outcomes "
                               f"WHERE observed_at < %s", (cutoff,))
    table = table.merge(labels, on="application_id", how="left")
    return table[["application_id", "snapshot_id", "revolving_utilization", "late_90",
                  "prior_late_payments", "serious_dlq"]]
"""

Q4 = """
def time_split(frame, train_end, valid_end):
    month = frame["applied_at"].dt.tz_convert("UTC").dt.tz_localize(None).dt.to_period("M")
    first, second = pd.Period(train_end, "M"), pd.Period(valid_end, "M")
    return frame[month <= first], frame[(month > first) & (month <= second)], frame[month > second]
"""

Q5 = """
from sklearn.model_selection import train_test_split


def stratified_sample(frame, n, label="serious_dlq", random_state=0):
    if n == len(frame):
        return frame.copy()
    sample, _ = train_test_split(frame, train_size=n, stratify=frame[label], random_state=random_state)
    return sample
"""

Q6 = """
from sklearn.metrics import average_precision_score


def imbalance_summary(y_true, y_score, threshold=0.5):
    y = np.asarray(y_true, dtype=int)
    s = np.asarray(y_score, dtype=float)
    pred = (s >= threshold).astype(int)
    pos, neg = int(y.sum()), int(len(y) - y.sum())
    tp = int(((pred == 1) & (y == 1)).sum())
    tn = int(((pred == 0) & (y == 0)).sum())
    return {
        "positive_rate": pos / len(y),
        "imbalance_ratio": max(pos, neg) / min(pos, neg),
        "class_weights": {0: len(y) / (2 * neg), 1: len(y) / (2 * pos)},
        "accuracy_majority": max(pos, neg) / len(y),
        "accuracy_model": (tp + tn) / len(y),
        "recall_model": tp / pos,
        "balanced_accuracy_model": (tp / pos + tn / neg) / 2,
        "pr_auc_model": average_precision_score(y, s),
    }
"""

Q7 = """
from mlsd.pipelines import dask_layers


def monthly_default_rate(landing_dir):
    outcomes = dask_layers.read_landing(landing_dir, "outcomes")[["application_id", "serious_dlq", "ingested_at"]]
    apps = dask_layers.read_landing(landing_dir, "applications")[["application_id", "applied_at"]]
    latest = outcomes.groupby("application_id")["ingested_at"].max().reset_index()
    outcomes = outcomes.merge(latest, on=["application_id", "ingested_at"]).drop_duplicates(subset=["application_id"])
    df = outcomes.merge(apps.drop_duplicates(), on="application_id")
    df["month"] = df["applied_at"].dt.strftime("%Y-%m")
    result = df.groupby("month")["serious_dlq"].agg(["count", "sum"]).rename(
        columns={"count": "labelled", "sum": "defaults"})
    result["default_rate"] = result["defaults"] / result["labelled"]
    return result   # lazy, indexed by month
"""

ANSWERS = {
    "q1_load_answer": Q1,
    "q2_silver_answer": Q2,
    "q3_training_answer": Q3,
    "q4_split_answer": Q4,
    "q5_sample_answer": Q5,
    "q6_imbalance_answer": Q6,
    "q7_dask_answer": Q7,
    "q8a_defects": "Duplicates, because a copied application can sit in train and test at once.",
    "q8b_production": "A re-run after a failure must not double the rows; count rows per file.",
    "q8c_elt": "ELT: bronze keeps the raw rows, so silver can be rebuilt when a rule changes.",
}


def _mutate(answer: str, old: str, new: str) -> str:
    assert answer.count(old) == 1, f"mutation target not found exactly once: {old!r}"
    return answer.replace(old, new)


# -- plausible wrong answers: (answer cell, wrong source, the test cells that lose their points) ----

MUTATIONS = {
    # a re-run appends a second copy of every row
    "q1_rerun_duplicates": (
        "q1_load_answer",
        _mutate(Q1, '            cur.execute(sql.SQL("TRUNCATE {}").format(name))\n', ""),
        ["test_q1_load_extract", "test_q1_load_edge_cases"],
    ),
    # pandas plus row-by-row INSERTs: passes the visible checks, not COPY's rules nor the COPY check
    "q1_insert_instead_of_copy": (
        "q1_load_answer",
        """
def load_extract(conn, csv_path, table):
    frame = pd.read_csv(csv_path, dtype=str)
    frame = frame.astype(object).where(frame.notna(), None)
    columns = ", ".join(f'"{c}" text' for c in frame.columns)
    with conn, conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {table}")
        cur.execute(f"CREATE TABLE {table} ({columns})")
        marks = ", ".join(["%s"] * frame.shape[1])
        cur.executemany(f"INSERT INTO {table} VALUES ({marks})", frame.values.tolist())
    return len(frame)
""",
        ["test_q1_load_edge_cases"],
    ),
    # forgetting to deduplicate
    "q2_no_dedup": (
        "q2_silver_answer",
        _mutate(Q2, "        WHERE copy_number = 1\n", ""),
        ["test_q2_silver_extract", "test_q2_silver_edge_cases"],
    ),
    # the customer's latest snapshot, whenever it was pulled: leaks the label
    "q3_latest_snapshot_leaks": (
        "q3_training_answer",
        _mutate(
            Q3,
            """    table = pd.merge_asof(apps.sort_values("applied_at"), bureau, left_on="applied_at", right_on="pulled_at",
                          by="customer_id", direction="backward")
""",
            """    table = apps.merge(bureau.drop_duplicates("customer_id", keep="last"), on="customer_id", how="left")
""",
        ),
        ["test_q3_features"],
    ),
    # every outcome in the table, observed before the cut-off or not
    "q3_labels_ignore_cutoff": (
        "q3_training_answer",
        _mutate(
            Q3,
            """    labels = db.read_sql(conn, f"SELECT application_id, serious_dlq FROM {schema}.outcomes "
                               f"WHERE observed_at < %s", (cutoff,))
""",
            """    labels = db.read_sql(conn, f"SELECT application_id, serious_dlq FROM {schema}.outcomes")
""",
        ),
        ["test_q3_labels"],
    ),
    # a random split instead of a split by time
    "q4_random_split": (
        "q4_split_answer",
        """
def time_split(frame, train_end, valid_end):
    shuffled = frame.sample(frac=1.0, random_state=0)
    a, b = int(0.7 * len(frame)), int(0.85 * len(frame))
    return shuffled.iloc[:a], shuffled.iloc[a:b], shuffled.iloc[b:]
""",
        ["test_q4_time_split"],
    ),
    # a simple random sample: the default rate is kept only on average
    "q5_simple_random_sample": (
        "q5_sample_answer",
        """
def stratified_sample(frame, n, label="serious_dlq", random_state=0):
    return frame.sample(n=n, random_state=random_state)
""",
        ["test_q5_stratified_sample"],
    ),
    # the wrong denominator: positives per negative
    "q6_ratio_inverted": (
        "q6_imbalance_answer",
        _mutate(Q6, '"imbalance_ratio": max(pos, neg) / min(pos, neg),', '"imbalance_ratio": pos / neg,'),
        ["test_q6_imbalance"],
    ),
    # every copy of an outcome counted, the stale (flipped) ones included
    "q7_outcomes_not_deduplicated": (
        "q7_dask_answer",
        _mutate(
            Q7,
            """    latest = outcomes.groupby("application_id")["ingested_at"].max().reset_index()
    outcomes = outcomes.merge(latest, on=["application_id", "ingested_at"]).drop_duplicates(subset=["application_id"])
""",
            "",
        ),
        ["test_q7_dask"],
    ),
    # right numbers, but pandas instead of dask.dataframe
    "q7_pandas_not_dask": (
        "q7_dask_answer",
        """
def monthly_default_rate(landing_dir):
    outcomes = pd.read_parquet(Path(landing_dir) / "outcomes", columns=["application_id", "serious_dlq", "ingested_at"])
    apps = pd.read_parquet(Path(landing_dir) / "applications", columns=["application_id", "applied_at"])
    outcomes = outcomes.sort_values("ingested_at").drop_duplicates("application_id", keep="last")
    df = outcomes.merge(apps.drop_duplicates("application_id"), on="application_id")
    df["month"] = df["applied_at"].dt.strftime("%Y-%m")
    result = df.groupby("month")["serious_dlq"].agg(labelled="count", defaults="sum").reset_index()
    result["default_rate"] = result["defaults"] / result["labelled"]
    return result
""",
        ["test_q7_dask"],
    ),
}


def _points(result) -> dict:
    return {q.id: q.points for q in result.questions}


def _statuses(result) -> dict:
    return {q.id: q.status for q in result.questions}


@pytest.fixture(scope="module")
def grade(grade_assignment):
    """``grade(path, learner)``: autograde against the real course at the ``tiny`` scale."""
    return lambda path, learner: grade_assignment(ASSIGNMENT, path, learner)


@pytest.fixture(scope="module")
def make_submission(fill_learner_copy):
    """``make_submission(name, wrong={answer cell id: source})``: the learner copy with answers filled in."""
    return lambda name, wrong=None: fill_learner_copy(ASSIGNMENT, name, {**ANSWERS, **(wrong or {})})


def test_reference_solution_scores_every_autograded_point(grade):
    result = grade(course_dir() / "source" / ASSIGNMENT / NOTEBOOK, "instructor")
    assert result.status == "graded" and result.exit_code == 0, result.questions
    assert _points(result) == {**TESTS, **dict.fromkeys(WRITTEN)}, [
        (q.id, q.status, q.message) for q in result.questions if q.status != "passed"
    ]
    assert all(_statuses(result)[cell] == "passed" for cell in TESTS)
    assert all(_statuses(result)[cell] == "needs_manual_grade" for cell in WRITTEN)
    assert (result.score, result.max_score) == (AUTOGRADED_POINTS, TOTAL_POINTS)
    assert result.flags == []


def test_blank_learner_copy_scores_zero_without_an_error(grade):
    result = grade(assignments_dir() / ASSIGNMENT / NOTEBOOK, "blank")
    assert result.status == "graded" and result.exit_code == 0
    assert result.score == 0 and result.max_score == TOTAL_POINTS
    for cell in TESTS:
        question = next(q for q in result.questions if q.id == cell)
        assert question.status == "failed" and "NotImplementedError" in question.message, question


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_a_wrong_answer_loses_only_its_own_question(mutation, make_submission, grade):
    cell_id, source, losing = MUTATIONS[mutation]
    result = grade(make_submission(mutation, {cell_id: source}), mutation)
    assert result.status == "graded", result.questions
    expected = {cell: (0 if cell in losing else points) for cell, points in TESTS.items()}
    got = {cell: _points(result)[cell] for cell in TESTS}
    assert got == expected, [(q.id, q.points, q.message) for q in result.questions if q.id in TESTS]
    for cell in losing:
        question = next(q for q in result.questions if q.id == cell)
        assert question.status == "failed" and question.message, question
    assert all(_statuses(result)[cell] == "needs_manual_grade" for cell in WRITTEN)
