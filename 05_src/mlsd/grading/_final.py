"""The syllabus' grading policy: quizzes 60 %, assignment 1 20 %, assignment 2 20 %, pass at 60.

Scores are computed exactly (rational numbers, not floating point): ``0.6 * 60 + ...`` is never
``59.99999999999999``. Pass or fail is decided on the exact, unrounded score; the CSV shows it
rounded half-up to two decimals, so a score of 59.996 is written ``60.00`` and still fails.
"""

from __future__ import annotations

import csv
import io
import os
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from mlsd.grading._common import GradingError

if TYPE_CHECKING:
    import pandas as pd

QUIZZES = tuple(f"quiz_{n}" for n in range(1, 7))
ASSIGNMENTS = ("assignment_1", "assignment_2")
ASSIGNMENT_POINTS = {"complete": Fraction(100), "incomplete": Fraction(50), "missing": Fraction(0)}
WEIGHTS = {"quizzes": Fraction(3, 5), "assignment_1": Fraction(1, 5), "assignment_2": Fraction(1, 5)}
PASS_MARK = Fraction(60)
FINAL_COLUMNS = ("learner", "quiz_average", *ASSIGNMENTS, "final_score", "result")


def _read(path: str | os.PathLike, columns: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """Rows of a CSV as (line number, {column: trimmed text}); checks the header and the learner ids."""
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise GradingError(f"{path} does not exist.")
    text = path.read_text(encoding="utf-8-sig")
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise GradingError(
            f"{name} is empty: it needs the header {','.join(('learner', *columns))}."
        ) from None
    expected = ["learner", *columns]
    if sorted(header) != sorted(expected) or len(header) != len(set(header)):
        raise GradingError(
            f"{name} has the columns {','.join(header)}; expected {','.join(expected)} (in any order)."
        )
    rows = []
    seen: dict[str, int] = {}
    for line, values in enumerate(reader, start=2):
        if not any(v.strip() for v in values):
            continue  # blank line
        if len(values) != len(header):
            raise GradingError(f"{name} line {line}: {len(values)} values for {len(header)} columns.")
        row = {h: v.strip() for h, v in zip(header, values, strict=True)}
        learner = row["learner"]
        if not learner:
            raise GradingError(f"{name} line {line}: the learner is empty.")
        if learner in seen:
            raise GradingError(
                f"{name} line {line}: learner {learner!r} already appears on line {seen[learner]}."
            )
        seen[learner] = line
        rows.append((line, row))
    return rows


def _quiz(value: str, name: str, line: int, learner: str, column: str) -> Fraction:
    if value == "":
        return Fraction(0)  # a missed quiz
    try:
        number = Fraction(Decimal(value))
    except (ArithmeticError, ValueError):
        number = None
    if number is None or not 0 <= number <= 100:
        raise GradingError(
            f"{name} line {line} (learner {learner!r}), column {column}: {value!r} is not a number "
            "between 0 and 100 (leave the cell empty for a missed quiz)."
        )
    return number


def _assignment(value: str, name: str, line: int, learner: str, column: str) -> Fraction:
    key = value.strip().lower()
    if key not in ASSIGNMENT_POINTS:
        raise GradingError(
            f"{name} line {line} (learner {learner!r}), column {column}: {value!r} is not one of "
            "complete, incomplete or missing."
        )
    return ASSIGNMENT_POINTS[key]


def _two_decimals(value: Fraction) -> float:
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return float(exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def final_grades(quizzes_csv: str | os.PathLike, assignments_csv: str | os.PathLike) -> pd.DataFrame:
    """Apply the grading policy to ``QUIZZES.csv`` and ``ASSIGNMENTS.csv``.

    Parameters
    ----------
    quizzes_csv : path-like
        ``learner,quiz_1,...,quiz_6`` with scores from 0 to 100; an empty cell is a missed quiz (0).
    assignments_csv : path-like
        ``learner,assignment_1,assignment_2`` with ``complete``, ``incomplete`` or ``missing``
        (any case, spaces around ignored).

    Returns
    -------
    pandas.DataFrame
        ``learner, quiz_average, assignment_1, assignment_2, final_score, result``, one row per
        learner in the quizzes file's order. Assignments count complete = 100, incomplete = 50,
        missing = 0; ``final_score = 0.6 * quiz_average + 0.2 * assignment_1 + 0.2 * assignment_2``;
        ``result`` is ``pass`` when the exact final score is 60 or more. ``quiz_average`` and
        ``final_score`` are rounded half-up to two decimals after the decision.

    Raises
    ------
    GradingError
        Naming the file, line and column of a bad value, or the learners found in only one file.

    Examples
    --------
    >>> final_grades("QUIZZES.csv", "ASSIGNMENTS.csv")  # doctest: +SKIP
    """
    import pandas as pd

    qname, aname = Path(quizzes_csv).name, Path(assignments_csv).name
    quizzes = _read(quizzes_csv, QUIZZES)
    assignments = _read(assignments_csv, ASSIGNMENTS)
    by_learner = {row["learner"]: (line, row) for line, row in assignments}
    only_quizzes = [row["learner"] for _, row in quizzes if row["learner"] not in by_learner]
    quiz_learners = {row["learner"] for _, row in quizzes}
    only_assignments = [row["learner"] for _, row in assignments if row["learner"] not in quiz_learners]
    if only_quizzes or only_assignments:
        parts = []
        if only_quizzes:
            parts.append(f"in {qname} but not in {aname}: {', '.join(only_quizzes)}")
        if only_assignments:
            parts.append(f"in {aname} but not in {qname}: {', '.join(only_assignments)}")
        raise GradingError("Every learner must appear in both files; " + "; ".join(parts) + ".")

    records = []
    for line, row in quizzes:
        learner = row["learner"]
        scores = [_quiz(row[c], qname, line, learner, c) for c in QUIZZES]
        average = sum(scores, Fraction(0)) / len(QUIZZES)
        aline, arow = by_learner[learner]
        marks = {c: _assignment(arow[c], aname, aline, learner, c) for c in ASSIGNMENTS}
        final = (
            WEIGHTS["quizzes"] * average
            + WEIGHTS["assignment_1"] * marks["assignment_1"]
            + WEIGHTS["assignment_2"] * marks["assignment_2"]
        )
        records.append(
            {
                "learner": learner,
                "quiz_average": _two_decimals(average),
                "assignment_1": int(marks["assignment_1"]),
                "assignment_2": int(marks["assignment_2"]),
                "final_score": _two_decimals(final),
                "result": "pass" if final >= PASS_MARK else "fail",
            }
        )
    return pd.DataFrame.from_records(records, columns=list(FINAL_COLUMNS))


def write_final(quizzes_csv: str | os.PathLike, assignments_csv: str | os.PathLike, out: str | os.PathLike):
    """Compute :func:`final_grades` and write ``FINAL.csv`` (two decimals); returns the DataFrame."""
    frame = final_grades(quizzes_csv, assignments_csv)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(FINAL_COLUMNS)
    for row in frame.itertuples(index=False):
        writer.writerow(
            [
                row.learner,
                f"{row.quiz_average:.2f}",
                row.assignment_1,
                row.assignment_2,
                f"{row.final_score:.2f}",
                row.result,
            ]
        )
    out.write_bytes(buffer.getvalue().encode("utf-8"))
    return frame
