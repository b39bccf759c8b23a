"""Assignment 1 against the real course: the reference scores every point, the blank copy none,
each plausible wrong answer loses its own question's points and no other question's, correct answers
by other routes score full marks, and an answer that subverts the checks in its own kernel scores
nothing on the question it touches.

Points come from the comparisons in ``03_instructional_team/nbgrader/checks/assignment_1.py``, made by
the grader outside the learner's kernel; the test cells only record what the learner's functions return.
Submissions are built from the committed learner copy (``02_activities/assignments/assignment_1``)
with answers written as a learner would. The correct answers below deliberately take other routes
than the reference solution (TRUNCATE instead of DROP, ``mlsd.db.copy_csv``, a ``VALUES`` spelling map
and ``row_number()``, ``pd.merge_asof``, periods, scikit-learn's stratified split, a lazy Dask result
indexed by month), so every mutation run also shows that the checks accept other correct approaches;
``OTHER_ROUTES`` is a second set (f-string SQL and ``count(*)``, ``numeric``/``bigint``/``varchar``
columns, arrays and a window function, ``np.select`` and a list, NumPy's generator, a hand-written
average precision, a lazy Dask frame with its columns in another order). The points of each test cell
are read from the source notebook's nbgrader metadata. Each autograde at ``tiny`` takes 15 to 40 s
(a Python start-up, nbgrader, a sandboxed kernel, ``course.setup()``); the reference values are
computed once per test session.
"""

from __future__ import annotations

import nbformat
import pytest

from mlsd.grading import assignments_dir, course_dir

pytestmark = [pytest.mark.grading, pytest.mark.integration, pytest.mark.slow]

ASSIGNMENT = "assignment_1"
NOTEBOOK = f"{ASSIGNMENT}.ipynb"
SOURCE = course_dir() / "source" / ASSIGNMENT / NOTEBOOK


def _graded_cells(path) -> list[tuple[str, float, bool]]:
    """(grade id, points, written answer?) of each graded cell, from the notebook's nbgrader metadata."""
    cells = nbformat.read(path, as_version=4).cells
    graded = [c.metadata["nbgrader"] for c in cells if c.metadata.get("nbgrader", {}).get("grade")]
    return [(meta["grade_id"], meta["points"], bool(meta.get("solution"))) for meta in graded]


TESTS = {cell: points for cell, points, written in _graded_cells(SOURCE) if not written}  # autograded
WRITTEN = {cell: points for cell, points, written in _graded_cells(SOURCE) if written}  # read by a grader
AUTOGRADED_POINTS = sum(TESTS.values())
TOTAL_POINTS = AUTOGRADED_POINTS + sum(WRITTEN.values())

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


# -- a second set of correct answers, by yet other routes (and other dtypes, orders and float noise) --

OTHER_Q1 = """
def load_extract(conn, csv_path, table):
    with open(csv_path, encoding="utf-8", newline="") as f:
        header = next(csv.reader(f))
    quoted = ", ".join('"' + name.replace('"', '""') + '" text' for name in header)
    cur = conn.cursor()
    cur.execute(f"DROP TABLE IF EXISTS {table}; CREATE TABLE {table} ({quoted})")
    with open(csv_path, encoding="utf-8", newline="") as f:
        cur.copy_expert(f"COPY {table} FROM STDIN WITH CSV HEADER", f)
    cur.execute(f"SELECT count(*) FROM {table}")
    (n,) = cur.fetchone()
    conn.commit()
    cur.close()
    return int(n)
"""

OTHER_Q2 = '''
def build_silver(conn, bronze_table, silver_table):
    def canonical(column, value):
        return (f"coalesce((SELECT m.canonical FROM silver.category_map m WHERE m.column_name = '{column}' "
                f"AND m.raw_value = {value}), {value}, 'unknown')")

    query = f"""
        DROP TABLE IF EXISTS {silver_table};
        CREATE TABLE {silver_table} AS
        WITH latest AS (
            SELECT DISTINCT b.*
            FROM {bronze_table} b
            WHERE b.application_id IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM {bronze_table} newer
                              WHERE newer.application_id = b.application_id
                                AND newer.ingested_at::timestamptz > b.ingested_at::timestamptz)
        ),
        clean AS (
            SELECT l.*, lower(btrim(l.channel)) AS c, lower(btrim(l.purpose)) AS p, lower(btrim(l.region)) AS r
            FROM latest l
        )
        SELECT application_id, customer_id, applied_at::timestamptz AS applied_at,
               to_char(applied_at::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM')::varchar AS month,
               {canonical('channel', 'c')}::varchar AS channel,
               {canonical('purpose', 'p')} AS purpose,
               CASE WHEN amount::numeric > 0 THEN amount::numeric END AS amount,
               term_months::bigint AS term_months,
               {canonical('region', 'r')} AS region,
               ingested_at::timestamptz AS ingested_at
        FROM clean
    """
    with conn, conn.cursor() as cur:
        cur.execute(query)
        cur.execute(f"SELECT count(*) FROM {silver_table}")
        return cur.fetchone()[0]
'''

OTHER_Q3 = """
def training_table(conn, applications, cutoff, schema="silver"):
    keys = applications.reset_index(drop=True)
    stamps = [stamp.to_pydatetime() for stamp in pd.to_datetime(keys["applied_at"], utc=True)]
    query = sql.SQL('''
        WITH k AS (
            SELECT * FROM unnest(%(ids)s::text[], %(customers)s::text[], %(stamps)s::timestamptz[])
                AS k(application_id, customer_id, applied_at)
        ),
        ranked AS (
            SELECT k.application_id, b.snapshot_id, b.revolving_utilization, b.late_90,
                   row_number() OVER (PARTITION BY k.application_id
                                      ORDER BY b.pulled_at DESC, b.snapshot_id DESC) AS rank
            FROM k JOIN {bureau} b ON b.customer_id = k.customer_id AND b.pulled_at <= k.applied_at
        )
        SELECT o.serious_dlq, k.customer_id, k.application_id,
               (SELECT count(*) FROM {repayments} r JOIN {loans} l USING (application_id)
                WHERE l.customer_id = k.customer_id AND r.days_late > 30
                  AND r.ingested_at < k.applied_at) AS prior_late_payments,
               s.late_90, s.revolving_utilization, s.snapshot_id
        FROM k
        LEFT JOIN ranked s ON s.application_id = k.application_id AND s.rank = 1
        LEFT JOIN {outcomes} o ON o.application_id = k.application_id AND o.observed_at < %(cutoff)s::timestamptz
    ''').format(bureau=sql.Identifier(schema, "bureau"), repayments=sql.Identifier(schema, "repayments"),
                loans=sql.Identifier(schema, "applications"), outcomes=sql.Identifier(schema, "outcomes"))
    params = {"ids": list(keys["application_id"]), "customers": list(keys["customer_id"]), "stamps": stamps,
              "cutoff": cutoff}
    return db.read_sql(conn, query, params)   # columns in another order, psycopg2's types as they come
"""

OTHER_Q4 = """
def time_split(frame, train_end, valid_end):
    month = frame["applied_at"].dt.tz_convert("UTC").dt.strftime("%Y-%m")
    part = np.select([month <= train_end, month <= valid_end], ["train", "valid"], default="test")
    return [frame.loc[part == name] for name in ("train", "valid", "test")]
"""

OTHER_Q5 = """
def stratified_sample(frame, n, label="serious_dlq", random_state=0):
    rng = np.random.default_rng(random_state)
    sizes = frame.groupby(label).size()
    quota = sizes / sizes.sum() * n
    counts = np.floor(quota).astype(int)
    extra = (quota - counts).sort_values(ascending=False).index[: n - counts.sum()]
    counts.loc[extra] += 1
    picks = []
    for value, k in counts.items():
        picks.extend(rng.choice(frame.index[frame[label] == value], size=k, replace=False))
    return frame.loc[picks]
"""

OTHER_Q6 = """
def imbalance_summary(y_true, y_score, threshold=0.5):
    y = np.asarray(list(y_true)).astype(int)
    s = np.asarray(list(y_score), dtype=float)
    classes, counts = np.unique(y, return_counts=True)
    n, neg, pos = len(y), counts[classes == 0][0], counts[classes == 1][0]
    predicted = s >= threshold
    tp, tn = np.sum(predicted & (y == 1)), np.sum(~predicted & (y == 0))
    order = np.argsort(-s, kind="mergesort")   # average precision by hand: the sum of (R_k - R_k-1) * P_k
    ranked, hits = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(ranked)), n - 1]
    true_pos = np.cumsum(hits)[last]
    precision, recall = true_pos / (last + 1), true_pos / pos
    return {
        "positive_rate": pos / n,
        "imbalance_ratio": max(neg, pos) / min(neg, pos),
        "class_weights": dict(zip(classes, n / (2 * counts))),   # NumPy keys and values
        "accuracy_majority": max(neg, pos) / n,
        "accuracy_model": (tp + tn) / n,
        "recall_model": tp / pos,
        "balanced_accuracy_model": 0.5 * (tp / pos + tn / neg),
        "pr_auc_model": np.sum(np.diff(np.r_[0.0, recall]) * precision),
    }
"""

OTHER_Q7 = """
def monthly_default_rate(landing_dir):
    import dask.dataframe as dd

    root = Path(landing_dir)
    outcomes = dd.read_parquet(str(root / "outcomes"), columns=["application_id", "serious_dlq", "ingested_at"])
    apps = dd.read_parquet(str(root / "applications"), columns=["application_id", "applied_at"])
    latest = outcomes.set_index("application_id").map_partitions(
        lambda part: part.sort_values("ingested_at").groupby(level=0).tail(1))
    joined = latest.reset_index().merge(apps.drop_duplicates(subset=["application_id"]), on="application_id")
    joined["month"] = joined["applied_at"].dt.tz_convert("UTC").dt.strftime("%Y-%m")
    counts = joined.groupby("month")["serious_dlq"].agg(["sum", "count"])
    counts = counts.rename(columns={"sum": "defaults", "count": "labelled"})
    counts["default_rate"] = counts["defaults"] / counts["labelled"]
    return counts.reset_index()[["default_rate", "defaults", "labelled", "month"]]   # lazy
"""

OTHER_ROUTES = {
    "q1_load_answer": OTHER_Q1,
    "q2_silver_answer": OTHER_Q2,
    "q3_training_answer": OTHER_Q3,
    "q4_split_answer": OTHER_Q4,
    "q5_sample_answer": OTHER_Q5,
    "q6_imbalance_answer": OTHER_Q6,
    "q7_dask_answer": OTHER_Q7,
}

# -- an answer that subverts the checks in its own kernel (the example, question 6) ----------

# It patches NumPy's comparisons for the rest of the notebook and returns numbers that read the
# expected value from the checking code's frame. Before the checks moved out of the kernel this scored
# all 8 points of question 6, hidden checks included; now only plain numbers reach the grader.
SUBVERTED_Q6 = '''
import sys

import numpy as np

np.isclose = lambda a, b, *args, **kwargs: np.ones(np.broadcast(a, b).shape, dtype=bool)
np.allclose = lambda *args, **kwargs: True


class Agreeable(float):
    """Equal to anything; as a number, whatever the caller's frame expects."""

    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    __hash__ = float.__hash__

    def __float__(self):
        frame = sys._getframe(1)
        while frame is not None:
            for name in ("value", "expected"):
                found = frame.f_locals.get(name)
                if isinstance(found, (int, float, np.floating)) and not isinstance(found, bool):
                    return float(found)
            frame = frame.f_back
        return 0.0


class Weights(dict):
    def __getitem__(self, key):
        return Agreeable(0)


def imbalance_summary(y_true, y_score, threshold=0.5):
    keys = ["positive_rate", "imbalance_ratio", "accuracy_majority", "accuracy_model", "recall_model",
            "balanced_accuracy_model", "pr_auc_model"]
    summary = {key: Agreeable(0) for key in keys}
    summary["class_weights"] = Weights({0: 0.0, 1: 0.0})
    return summary
'''


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


# An answer cell that removes every assert from the cells that run after it (an AST transformer): the
# visible checks no longer stop a wrong answer, so only the comparisons outside the kernel decide.
WITHOUT_ASSERTS = """


import ast


class _NoAsserts(ast.NodeTransformer):
    def visit_Assert(self, node):
        return ast.copy_location(ast.Pass(), node)


get_ipython().ast_transformers.append(_NoAsserts())
"""
# one wrong answer per question
WRONG_EVERYWHERE = [
    "q1_rerun_duplicates",
    "q2_no_dedup",
    "q3_latest_snapshot_leaks",
    "q4_random_split",
    "q5_simple_random_sample",
    "q6_ratio_inverted",
    "q7_outcomes_not_deduplicated",
]


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


def test_correct_answers_by_other_routes_score_every_point(make_submission, grade):
    result = grade(make_submission("other-routes", OTHER_ROUTES), "other-routes")
    assert result.status == "graded", result.questions
    assert {cell: _points(result)[cell] for cell in TESTS} == TESTS, [
        (q.id, q.status, q.message) for q in result.questions if q.id in TESTS and q.status != "passed"
    ]


def test_an_answer_that_subverts_the_checks_in_its_kernel_scores_nothing(make_submission, grade):
    """Patched np.isclose/np.allclose and numbers that read the caller's frame: the visible checks pass in
    the kernel, but the grader compares plain values, so question 6 scores 0 and the others keep theirs."""
    result = grade(make_submission("subverted", {"q6_imbalance_answer": SUBVERTED_Q6}), "subverted")
    assert result.status == "graded", result.questions
    expected = {cell: (0 if cell == "test_q6_imbalance" else points) for cell, points in TESTS.items()}
    assert {cell: _points(result)[cell] for cell in TESTS} == expected, [
        (q.id, q.points, q.message) for q in result.questions if q.id in TESTS
    ]
    question = next(q for q in result.questions if q.id == "test_q6_imbalance")
    assert (question.status, question.message) == (
        "failed",
        "positive_rate is not what the table above defines",
    )
    reasons = "\n".join(result.review.reasons)
    assert result.review.required and "assigns to np.isclose" in reasons and "_getframe" in reasons, reasons


def test_wrong_answers_lose_their_points_with_the_visible_checks_removed(make_submission, grade):
    """Every check that a test cell made in the kernel is also made outside it: with all asserts
    removed, each wrong answer still loses its question's points (with the test cell's own message, or
    "did not run" where the visible code cannot go on without its asserts: silver's duplicates)."""
    answers = {MUTATIONS[name][0]: MUTATIONS[name][1] for name in WRONG_EVERYWHERE}
    answers["q1_load_answer"] += WITHOUT_ASSERTS
    result = grade(make_submission("without-asserts", answers), "without-asserts")
    assert result.status == "graded", result.questions
    losing = {cell for name in WRONG_EVERYWHERE for cell in MUTATIONS[name][2]}
    expected = {cell: (0 if cell in losing else points) for cell, points in TESTS.items()}
    assert {cell: _points(result)[cell] for cell in TESTS} == expected, [
        (q.id, q.points, q.message) for q in result.questions if q.id in TESTS
    ]
    compared = [q for q in result.questions if q.id in losing and not q.message.startswith("this check")]
    assert all(q.status == "failed" for q in result.questions if q.id in losing)
    assert len(compared) >= len(losing) - 1, compared  # the comparisons outside the kernel decided
