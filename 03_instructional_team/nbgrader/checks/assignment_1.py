"""Comparisons for assignment 1 (run by the grader, never in a learner's kernel).

Each test cell of ``source/assignment_1/assignment_1.ipynb`` keeps its visible asserts (the learner's
feedback) and ends with a hidden ``extraction.record(...)``: the values the learner's functions returned
on the visible example and on held-out inputs made at run time (another generator seed, hand-built edge
cases). The function registered here for that cell compares them (``got``) with what the reference
solution recorded on the same inputs (``ref``); tables the learner's functions wrote are read by the
grader from the learner's database after the kernel ended (``got.table(...)``). Where many answers are
right (a stratified sample) it checks properties against the reference's inputs. The messages are the
test cells' own, visible and hidden, so a learner reads the same words as before.

Tolerances, per check: values copied from the input (bronze text, silver columns, point-in-time
features, labels) compare exactly, numbers within ``rtol=1e-6`` (a ``real`` or ``numeric`` column,
an ``Int64`` or ``float`` dtype all pass); computed rates and metrics within ``rtol=1e-6, atol=1e-9``
(float noise of another correct formula); a sample's class counts within one row of ``share * n``.
Row order and column order never matter unless the question asks for them (bronze's column order).
"""

from __future__ import annotations

import builtins
import datetime as dt
from decimal import Decimal

import numpy as np
import pandas as pd

from mlsd.grading.checks import CheckSet, Raised, close, expect, same, same_frame

checks = CheckSet()

RTOL, ATOL = 1e-6, 1e-9
_PYTHON_ERRORS = {
    name
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, BaseException)
}


# -- helpers -----------------------------------------------------------------------------------------


def ran(value: object, what: str) -> None:
    """Fail when the learner's function raised instead of returning (Python's own exception names only:
    a name the learner's code made up is never shown)."""
    if isinstance(value, Raised):
        name = value.name if value.name in _PYTHON_ERRORS else "an exception"
        expect(False, f"{what} raised {name}")


def is_frame(value: object) -> bool:
    return isinstance(value, pd.DataFrame)


def plain(value: object) -> object:
    """A cell of a table or recorded frame as plain data: missing as None, numbers as float, times as UTC text."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(value, (int, float, Decimal, np.integer, np.floating)):
        return float(value)
    if isinstance(value, (pd.Timestamp, dt.datetime)):
        stamp = pd.Timestamp(value)
        return (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")).isoformat()
    return str(value)


def row(table: object, key: str, columns: list[str], by: str = "application_id") -> list | None:
    """The plain values of ``columns`` in the one row whose ``by`` is ``key`` (None when not exactly one)."""
    if not is_frame(table) or by not in table.columns or not set(columns) <= set(table.columns):
        return None
    match = table[table[by].map(plain) == key]
    if len(match) != 1:
        return None
    return [plain(match.iloc[0][column]) for column in columns]


def same_rows(
    got: object, expected: object, cells: list[tuple[str, list[str]]], by: str = "application_id"
) -> bool:
    """Whether ``got`` has the reference's values in these (key, columns) cells (numbers within RTOL)."""
    return all(
        close(row(got, key, columns, by), row(expected, key, columns, by), rtol=RTOL, atol=ATOL)
        for key, columns in cells
    )


def ids(frame: pd.DataFrame, column: str = "application_id") -> list:
    return sorted(map(str, frame[column].map(plain)))


# -- question 1: COPY into bronze ---------------------------------------------------------------------

Q1_EXTRACT = "a1_checks.q1_extract"
Q1_CASES = "a1_checks.q1_cases"


@checks.add("test_q1_load_extract", tables=[Q1_EXTRACT])
def q1_load_extract(got, ref):
    loaded = got["loaded"]
    expect(
        type(loaded) is int and same(loaded, ref["loaded"]),
        "load_extract should return the number of data rows in the file (the header line is not a row)",
    )
    table, expected = got.table(Q1_EXTRACT), ref.table(Q1_EXTRACT)
    expect(
        is_frame(table) and list(table.columns) == list(expected.columns),
        "the bronze table should have one column per header field, named as in the header, in the same order",
    )
    expect(same(got["types"], ref["types"]), "every column of the bronze table should be of type text")
    expect(same(got["stored"], ref["stored"]), "the table should hold one row per data row of the file")
    expect(same(got["channels"], ref["channels"]), "an empty unquoted field should load as NULL")
    expect(
        same(got["again"], ref["again"]) and len(table) == len(expected),
        "running load_extract twice on the same file should leave the same rows, not twice as many",
    )
    expect(same_frame(table, expected), "bronze keeps every value as text, as it arrived")


Q1_CASE_CELLS = [  # (application_id, columns) of the hand-built file, and the message when they differ
    ([("E1", ["channel"])], "spaces inside a quoted value are data: keep them"),
    ([("E1", ["note"])], "a comma inside a quoted value is part of the value"),
    ([("E2", ["note"])], "a doubled quote inside a quoted value is one quote character"),
    ([("E3", ["note"])], "a line break inside a quoted value is part of the value"),
    ([("E2", ["amount"]), ("E3", ["channel"])], "an empty unquoted field should be NULL"),
    (
        [("E4", ["channel", "note"])],
        'a quoted empty string "" is an empty string, not NULL (COPY\'s CSV rule)',
    ),
    ([("E3", ["amount"]), ("E4", ["amount"])], "bronze keeps every value as text, as it arrived"),
]


@checks.add("test_q1_load_edge_cases", tables=[Q1_CASES])
def q1_load_edge_cases(got, ref):
    ran(got["loaded"], "load_extract")
    expect(
        same(got["loaded"], ref["loaded"]),
        "a line break inside a quoted value does not start a new row: the file has 4 rows",
    )
    expect(
        same(got["used_copy"], ref["used_copy"]),
        "load_extract should stream the file with COPY (cursor.copy_expert), not INSERTs",
    )
    rows, expected = got["rows"], ref["rows"]
    expect(
        is_frame(rows) and len(rows) == len(expected),
        "load_extract should commit, so that other connections see the rows",
    )
    for cells, message in Q1_CASE_CELLS:
        expect(all(row(rows, k, c) == row(expected, k, c) for k, c in cells), message)
    ran(got["reloaded"], "load_extract")
    expect(
        same(got["reloaded"], ref["reloaded"]) and same_frame(got.table(Q1_CASES), ref.table(Q1_CASES)),
        "loading another file into the same table should replace its rows",
    )


# -- question 2: silver in SQL ------------------------------------------------------------------------

Q2_EXTRACT, Q2_HELDOUT = "a1_checks.q2_extract_silver", "a1_checks.q2_heldout_silver"
Q2_CASES, Q2_HIDDEN = "a1_checks.q2_cases_silver", "a1_checks.q2_hidden_silver"
TEXT = ["customer_id", "month", "channel", "purpose", "region"]
TIMES = ["applied_at", "ingested_at"]
NUMBERS = ["amount", "term_months"]
SILVER = ["application_id", *TEXT, *TIMES, *NUMBERS]
CATEGORIES = ["channel", "purpose", "region"]
SILVER_TYPES = {
    "applied_at": {"timestamp with time zone", "timestamp without time zone"},
    "ingested_at": {"timestamp with time zone", "timestamp without time zone"},
    "amount": {"double precision", "numeric", "real"},
    "term_months": {"integer", "smallint", "bigint"},
    "month": {"text", "character varying"},
    "channel": {"text", "character varying"},
}


def silver(table: object) -> pd.DataFrame | None:
    """The silver columns in comparable types (None when the table or one of the columns is missing)."""
    if not is_frame(table) or not set(SILVER) <= set(table.columns):
        return None
    out = pd.DataFrame(
        {column: table[column].map(plain).astype(object) for column in ["application_id", *TEXT]}
    )
    for column in TIMES:
        out[column] = pd.to_datetime(table[column], utc=True)
    for column in NUMBERS:
        out[column] = pd.to_numeric(table[column]).astype(float)
    return out


def compare_silver(table: object, reference: object) -> None:
    """The visible test's ``_compare_silver``, against the reference solution's table."""
    got, expected = silver(table), silver(reference)
    expect(got is not None, "build_silver should create silver_table with the columns of rule 3")
    expect(got["application_id"].is_unique, "silver should hold one row per application_id")
    expect(
        set(got["application_id"]) == set(expected["application_id"]),
        "silver should keep every application_id of bronze that is not NULL, once",
    )
    got = got.set_index("application_id").sort_index()
    expected = expected.set_index("application_id").sort_index()
    for column in TEXT:
        wrong = int((got[column].astype(str) != expected[column].astype(str)).sum())
        expect(wrong == 0, f"silver's {column} breaks the silver rules in {wrong} rows")
    for column in TIMES:
        equal = (got[column] == expected[column]) | (got[column].isna() & expected[column].isna())
        wrong = int((~equal).sum())
        expect(
            wrong == 0,
            f"silver's {column} differs from bronze's value in {wrong} rows (or the wrong copy was kept)",
        )
    for column in NUMBERS:
        ok = np.isclose(got[column], expected[column], rtol=RTOL, atol=ATOL, equal_nan=True)
        expect(bool(ok.all()), f"silver's {column} breaks the silver rules in {int((~ok).sum())} rows")


@checks.add("test_q2_silver_extract", tables=[Q2_EXTRACT, Q2_HELDOUT])
def q2_silver_extract(got, ref):
    table = got.table(Q2_EXTRACT)
    expect(
        is_frame(table) and same(got["made"], len(table)),
        "build_silver should return the number of rows of the silver table",
    )
    compare_silver(table, ref.table(Q2_EXTRACT))
    ran(got["made_heldout"], "build_silver")
    heldout, expected = got.table(Q2_HELDOUT), ref.table(Q2_HELDOUT)
    expect(
        is_frame(heldout) and same(got["made_heldout"], len(heldout)) and len(heldout) == len(expected),
        "on another extract, silver should drop exactly the duplicated copies",
    )
    compare_silver(heldout, expected)


Q2_VISIBLE_CELLS = [  # ([(application_id, columns)], message), in the test cell's order
    ([("V2", CATEGORIES)], "categories should be canonical: lower(btrim(value)), then the spelling map"),
    ([("V3", ["channel"])], "a NULL category should become 'unknown'"),
    ([("V3", ["amount", "term_months"])], "an amount <= 0 should be NULL, and a NULL term_months stays NULL"),
]
Q2_HIDDEN_CELLS = [
    (
        [("H1", ["amount"]), ("H6", ["amount"])],
        "of a near duplicate, silver should keep the copy with the latest ingested_at",
    ),
    ([("H2", CATEGORIES)], "misspellings in the spelling map should become their canonical value"),
    ([("H3", CATEGORIES)], "misspellings in the spelling map should become their canonical value"),
    (
        [("H4", CATEGORIES)],
        "a NULL category should become 'unknown', a known misspelling its canonical value",
    ),
    ([("H5", ["channel"])], "a value that is not in the spelling map keeps lower(btrim(value))"),
    (
        [("H2", ["amount"]), ("H3", ["amount"])],
        "only an amount <= 0 is impossible: it becomes NULL, a small positive amount stays",
    ),
    ([("H5", ["month"])], "month should be the UTC month of applied_at, not the landing month"),
    ([("H4", ["term_months", "customer_id"])], "the other columns should keep their values"),
]


@checks.add("test_q2_silver_edge_cases", tables=[Q2_CASES, Q2_HIDDEN])
def q2_silver_edge_cases(got, ref):
    expect(
        same(got["made"], ref["made"]) and same(got["made_again"], ref["made_again"]),
        "silver should hold one row per application_id, also when built twice",
    )
    types = got["types"]
    for column, allowed in SILVER_TYPES.items():
        expect(
            isinstance(types, dict) and types.get(column) in allowed,
            f"silver's {column} should be of type {sorted(allowed)[0]}",
        )
    for cells, message in Q2_VISIBLE_CELLS:
        expect(same_rows(got.table(Q2_CASES), ref.table(Q2_CASES), cells), message)
    ran(got["made_hidden"], "build_silver")
    hidden, expected = got.table(Q2_HIDDEN), ref.table(Q2_HIDDEN)
    expect(
        is_frame(hidden)
        and "application_id" in hidden.columns
        and same(got["made_hidden"], len(hidden))
        and ids(hidden) == ids(expected),
        "silver should drop rows without an application_id and keep one row per application_id",
    )
    for cells, message in Q2_HIDDEN_CELLS:
        expect(same_rows(hidden, expected, cells), message)


# -- question 3: point-in-time features and delayed labels ---------------------------------------------

NUMERIC_FEATURES = ["revolving_utilization", "late_90", "prior_late_payments"]
Q3_FEATURE_CASES = [
    (
        [("X1", ["snapshot_id"])],
        "the snapshot pulled at the same second as the application counts; one pulled a second later does not",
    ),
    (
        [("X1", ["revolving_utilization", "late_90"])],
        "the bureau features should come from the point-in-time snapshot",
    ),
    (
        [("X2", ["snapshot_id", "revolving_utilization"])],
        "with only a snapshot pulled after the application, the bureau features should be missing",
    ),
    ([("X3", ["snapshot_id"])], "a tie on pulled_at goes to the larger snapshot_id"),
    ([("X1B", ["snapshot_id"])], "a later application should see the snapshots pulled before it"),
    (
        [("X1", ["prior_late_payments"])],
        "prior_late_payments: count days_late > 30, ingested strictly before applied_at (not after)",
    ),
    (
        [("X2", ["prior_late_payments"]), ("X3", ["prior_late_payments"])],
        "prior_late_payments counts the customer's own repayments only, and is 0 when there are none",
    ),
    (
        [("X1B", ["prior_late_payments"])],
        "a later application should count the repayments that arrived before it",
    ),
]


def one_row_per_application(frame: object, expected: pd.DataFrame) -> None:
    expect(
        is_frame(frame) and "application_id" in frame.columns and frame["application_id"].is_unique,
        "training_table should return one row per application",
    )
    expect(ids(frame) == ids(expected), "training_table should return one row per given application")


@checks.add("test_q3_features")
def q3_features(got, ref):
    visible, expected = got["visible"], ref["visible"]
    ran(visible, "training_table")
    one_row_per_application(visible, expected)
    visible = visible.set_index("application_id").sort_index()
    expected = expected.set_index("application_id").sort_index()
    same_snapshot = visible["snapshot_id"].astype(str) == expected["snapshot_id"].astype(str)
    expect(
        bool(same_snapshot.all()),
        f"the bureau snapshot differs from gold's point-in-time snapshot for {int((~same_snapshot).sum())} "
        "applications",
    )
    for column in NUMERIC_FEATURES:
        ok = np.isclose(
            visible[column].astype(float),
            expected[column].astype(float),
            rtol=RTOL,
            atol=ATOL,
            equal_nan=True,
        )
        expect(
            bool(ok.all()),
            f"{column} differs from gold.application_features for {int((~ok).sum())} applications",
        )
    cases = got["cases"]
    ran(cases, "training_table")
    one_row_per_application(cases, ref["cases"])
    for cells, message in Q3_FEATURE_CASES:
        expect(same_rows(cases, ref["cases"], cells), message)


Q3_LABEL_CASES = [
    (
        "cases",
        [("Y1", ["serious_dlq"]), ("Y4", ["serious_dlq"])],
        "a label observed before the cut-off should be kept, 0 as well as 1",
    ),
    (
        "cases",
        [("Y2", ["serious_dlq"])],
        "a label observed one second after the cut-off did not exist yet: it should be missing",
    ),
    (
        "cases",
        [("Y3", ["serious_dlq"])],
        "an application without an outcome should have a missing label, not 0",
    ),
    ("later", [("Y2", ["serious_dlq"])], "with a later cut-off, the label observed in between should appear"),
]


@checks.add("test_q3_labels")
def q3_labels(got, ref):
    for name in ("as_of", "last"):  # the visible checks' two cut-offs
        labels, expected = got[name], ref[name]
        ran(labels, "training_table")
        expect(
            is_frame(labels)
            and "application_id" in labels.columns
            and "serious_dlq" in labels.columns
            and ids(labels) == ids(expected)
            and labels["application_id"].is_unique,
            "training_table should return one row per given application",
        )
        labels = labels.set_index("application_id").sort_index()["serious_dlq"].astype(float)
        expected = expected.set_index("application_id").sort_index()["serious_dlq"].astype(float)
        ok = np.isclose(labels.to_numpy(), expected.to_numpy(), rtol=0, atol=ATOL, equal_nan=True)
        expect(
            bool(ok.all()),
            f"with cutoff {ref[name + '_cutoff']}, serious_dlq differs from the labels observed before it for "
            f"{int((~ok).sum())} applications",
        )
    for name in ("cases", "later"):
        ran(got[name], "training_table")
        one_row_per_application(got[name], ref[name])
    for name, cells, message in Q3_LABEL_CASES:
        expect(same_rows(got[name], ref[name], cells), message)


# -- question 4: a split by time ----------------------------------------------------------------------

PARTS = ("train", "valid", "test")


def placed_rows(placed: dict, part: str, columns: list[str]) -> pd.DataFrame:
    rows = placed["placed"]
    return rows.loc[rows["part"] == part, columns]


def three_parts(placed: object, reference: dict) -> None:
    """The visible ``_check_parts``: three parts, every row once with its index label, frame's columns."""
    ran(placed, "time_split")
    expect(isinstance(placed, dict), "time_split should return a tuple (train, valid, test)")
    expect(
        same([placed["rows"], placed["distinct"], placed["in_frame"]], [reference["rows"]] * 3),
        "every row of frame should be in exactly one part, with its index label",
    )
    expect(same(placed["columns"], reference["columns"]), "the parts should keep frame's columns")


@checks.add("test_q4_time_split")
def q4_time_split(got, ref):
    visible, expected = got["visible"], ref["visible"]
    three_parts(visible, expected)
    for part, message in zip(
        PARTS,
        [
            "train should hold every application up to and including the month train_end",
            "valid should hold the months after train_end up to and including valid_end",
            "test should hold the months after valid_end",
        ],
        strict=True,
    ):
        columns = ["month", "rows"]  # rows per application month: the split is unique, so counts decide
        expect(same_frame(placed_rows(visible, part, columns), placed_rows(expected, part, columns)), message)
    edges, expected = got["edges"], ref["edges"]
    three_parts(edges, expected)
    for part in PARTS:
        expect(
            sorted(placed_rows(edges, part, ["row"])["row"])
            == sorted(placed_rows(expected, part, ["row"])["row"]),
            "month boundaries: the last second of train_end's month is train, the first second of the next is not",
        )
    expect(
        same_frame(edges["placed"][["row", "amount"]], expected["placed"][["row", "amount"]]),
        "rows should keep their values",
    )
    for name, message in (
        ("berlin", "the month should be taken in UTC, whatever time zone applied_at carries"),
        ("equal", "train_end == valid_end should give an empty valid"),
    ):
        placed = got[name]
        ran(placed, "time_split")
        expect(
            isinstance(placed, dict)
            and same_frame(placed["placed"][["part", "row"]], ref[name]["placed"][["part", "row"]]),
            message,
        )


# -- question 5: a stratified sample ------------------------------------------------------------------


def class_key(value: object) -> object:
    """A class label as plain data: 1 and 1.0 are one class."""
    value = plain(value)
    return value if not isinstance(value, float) or not value.is_integer() else int(value)


def valid_sample(drawn: object, reference: pd.DataFrame, classes: pd.DataFrame) -> None:
    """The visible ``_check_sample``: n distinct rows of frame, unchanged, each class within one row of its
    share. ``n`` is the reference's sample size, the shares are the reference's input's."""
    ran(drawn, "stratified_sample")
    n = len(reference)
    expect(is_frame(drawn) and len(drawn) == n, "stratified_sample should return exactly n rows")
    expect(
        drawn["row"].is_unique and bool(drawn["in_frame"].notna().all()),
        "the sample should hold distinct rows of frame, with their index labels",
    )
    values, originals = drawn["value"].map(class_key), drawn["in_frame"].map(class_key)
    expect(bool((values == originals).all()), "the rows should keep their values")
    total = classes["rows"].sum()
    for label, rows in zip(classes["class"].map(class_key), classes["rows"], strict=True):
        count = int((originals == label).sum())
        expect(
            abs(count - rows / total * n) <= 1 + 1e-9,
            "each class should keep its share of the rows (within one row)",
        )


@checks.add("test_q5_stratified_sample")
def q5_stratified_sample(got, ref):
    valid_sample(got["visible"], ref["visible"], ref["visible_classes"])
    ran(got["again"], "stratified_sample")
    expect(
        is_frame(got["again"]) and sorted(got["again"]["row"]) == sorted(got["visible"]["row"]),
        "the same random_state should give the same rows",
    )
    draws = got["draws"]
    expect(
        isinstance(draws, list) and len(draws) == len(ref["draws"]),
        "stratified_sample should return exactly n rows",
    )
    for drawn, reference in zip(draws, ref["draws"], strict=True):
        valid_sample(drawn, reference, ref["draws_classes"])
    expect(
        len({frozenset(drawn["row"]) for drawn in draws}) == len(draws),
        "another random_state should give another sample",
    )
    for drawn, reference in zip(got["three"], ref["three"], strict=True):
        valid_sample(drawn, reference, ref["three_classes"])


# -- question 6: class imbalance ------------------------------------------------------------------------

SUMMARY_NUMBERS = [
    "positive_rate",
    "imbalance_ratio",
    "accuracy_majority",
    "accuracy_model",
    "recall_model",
    "balanced_accuracy_model",
    "pr_auc_model",
]


def same_summary(summary: object, expected: dict) -> None:
    """The test cell's ``_check_summary``, against the reference's values on the same labels and scores.

    Only plain numbers reach the grader: an object that pretends to be a number arrives as unsupported
    and equals nothing."""
    ran(summary, "imbalance_summary")
    expect(
        isinstance(summary, dict) and set(summary) == set(expected),
        "imbalance_summary should return a dict with exactly the keys listed",
    )
    for key in SUMMARY_NUMBERS:
        expect(
            close(summary[key], expected[key], rtol=RTOL, atol=ATOL),
            f"{key} is not what the table above defines",
        )
    weights, reference = summary["class_weights"], expected["class_weights"]
    expect(
        isinstance(weights, dict)
        and weights.get("keys") is True
        and close(
            [weights.get("0"), weights.get("1")], [reference["0"], reference["1"]], rtol=RTOL, atol=ATOL
        ),
        "class_weights should be {0: n / (2 * n_0), 1: n / (2 * n_1)}",
    )


@checks.add("test_q6_imbalance")
def q6_imbalance(got, ref):
    for name in ("visible", "series", "lists"):
        same_summary(got[name], ref[name])


# -- question 7: a monthly default rate with Dask -------------------------------------------------------

RATES = ["labelled", "defaults", "default_rate"]


def same_rates(rates: object, expected: pd.DataFrame) -> None:
    """The test cell's ``_compare_rates``, against the reference's rates on the same files."""
    expect(
        is_frame(rates),
        "monthly_default_rate should return a DataFrame with the columns month, labelled, defaults and "
        "default_rate",
    )
    expect(
        list(rates["month"]) == list(expected["month"]),
        "the result should have one row per month with a labelled application",
    )
    for column in RATES:
        expect(
            close(
                rates[column].astype(float).tolist(),
                expected[column].astype(float).tolist(),
                rtol=RTOL,
                atol=ATOL,
            ),
            f"{column} differs from the expected monthly values",
        )


@checks.add("test_q7_dask")
def q7_dask(got, ref):
    expect(
        same(got["visible_dask"], ref["visible_dask"]),
        "monthly_default_rate should build its result with dask.dataframe (dd.read_parquet, then lazy steps)",
    )
    same_rates(got["visible"], ref["visible"])
    for name in ("handmade", "generated"):
        result = got[name]
        ran(result, "monthly_default_rate")
        expect(
            isinstance(result, list) and len(result) == 2, "monthly_default_rate should return a DataFrame"
        )
        rates, used = result
        expected_rates, expected_used = ref[name]
        expect(
            is_frame(rates),
            "monthly_default_rate should return a DataFrame with the columns month, labelled, defaults and "
            "default_rate",
        )
        expect(same(used, expected_used), "monthly_default_rate should build its result with dask.dataframe")
        same_rates(rates, expected_rates)
