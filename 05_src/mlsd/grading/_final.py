"""The syllabus' grading policy: quizzes 60 %, assignment 1 20 %, assignment 2 20 %, pass at 60.

Scores are computed exactly (rational numbers, not floating point): ``0.6 * 60 + ...`` is never
``59.99999999999999``. Pass or fail is decided on the exact, unrounded score; the CSV shows it
rounded half-up to two decimals, so a score of 59.996 is written ``60.00`` and still fails.
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass, field
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
    from mlsd._csv import CsvError, read_csv_text

    path = Path(path)
    name = path.name
    try:
        header, body = read_csv_text(path)
    except CsvError as err:
        raise GradingError(str(err)) from None
    expected = ["learner", *columns]
    if sorted(header) != sorted(expected) or len(header) != len(set(header)):
        raise GradingError(
            f"{name} has the columns {','.join(header)}; expected {','.join(expected)} (in any order)."
        )
    rows = []
    seen: dict[str, int] = {}
    for line, values in body:
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


# -- quiz scores: the simple file, or Canvas's gradebook export -----------------------------------

CANVAS_IDENTITY = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
_QUIZ_COLUMN = re.compile(r"quiz\D*(\d+)", re.I)


@dataclass
class QuizScores:
    """Each learner's six quiz scores (0-100, ``None`` when excused) and, from Canvas, their identity."""

    scores: dict[str, tuple[int, list[Fraction | None]]]  # learner -> (line, scores)
    canvas: dict[str, dict[str, str]] = field(default_factory=dict)  # learner -> Canvas identity columns
    name: str = ""


def _is_canvas(header: list[str]) -> bool:
    return "Student" in header and any(_QUIZ_COLUMN.search(h) for h in header)


def read_quizzes(
    path: str | os.PathLike, *, roster: str | os.PathLike | None = None, id_column: str = "SIS User ID"
) -> QuizScores:
    """Quiz scores from ``learner,quiz_1..quiz_6`` or from a Canvas (Quercus) gradebook export.

    A Canvas export has ``Student, ID, SIS User ID, SIS Login ID, Section``, one column per quiz
    (``Quiz 1 (1234)``: the number after "quiz" is the session) and a ``Points Possible`` row; scores
    become percentages of the points possible, an empty cell is a missed quiz (0) and ``EX`` an
    excused one (left out of the average). Learners are matched to the roster (``learner`` and a
    column named ``id_column``) by that Canvas column.
    """
    from mlsd._csv import CsvError, read_csv_text

    path = Path(path)
    try:
        header, _ = read_csv_text(path)
    except CsvError as err:
        raise GradingError(str(err)) from None
    if not _is_canvas(header):
        rows = _read(path, QUIZZES)
        return QuizScores(
            {
                row["learner"]: (line, [_quiz(row[c], path.name, line, row["learner"], c) for c in QUIZZES])
                for line, row in rows
            },
            name=path.name,
        )
    return _read_canvas(path, header, roster, id_column)


def _read_canvas(path: Path, header: list[str], roster, id_column: str) -> QuizScores:
    from mlsd._csv import read_csv_rows

    quiz_columns: dict[int, str] = {}
    for column in header:
        match = _QUIZ_COLUMN.search(column)
        if match and int(match.group(1)) in range(1, 7):
            quiz_columns.setdefault(int(match.group(1)), column)
    if sorted(quiz_columns) != list(range(1, 7)):
        raise GradingError(
            f"{path.name} looks like a Canvas export, but its quiz columns are "
            f"{', '.join(quiz_columns.values()) or 'none'}: it needs one column per session quiz, named "
            "with its number (`Quiz 1 (1234)` ... `Quiz 6 (1239)`). Rename the quizzes in Canvas or the columns."
        )
    if id_column not in header:
        raise GradingError(
            f"{path.name} has no column {id_column!r}: choose --id-column from {', '.join(header)}."
        )
    if roster is None:
        raise GradingError(
            f"{path.name} is a Canvas export: pass --roster with the columns learner and {id_column!r}, so that "
            "Canvas's learners can be matched with the assignment results."
        )
    by_id = {}
    for _, row in read_csv_rows(roster, required=("learner", id_column)):
        by_id[row[id_column]] = row["learner"]
    possible: dict[int, Fraction] | None = None
    scores: dict[str, tuple[int, list[Fraction | None]]] = {}
    canvas: dict[str, dict[str, str]] = {}
    for line, row in read_csv_rows(path):
        student = row["Student"]
        if student == "Points Possible":
            possible = {n: _points(row[c], path.name, line, c) for n, c in quiz_columns.items()}
            continue
        if student in ("Student, Test", "Test Student") or not row[id_column]:
            continue  # Canvas's student view, and rows without an id
        if possible is None:
            raise GradingError(
                f"{path.name} has no `Points Possible` row before line {line}: export it again from Canvas."
            )
        learner = by_id.get(row[id_column])
        if learner is None:
            raise GradingError(
                f"{path.name} line {line}: {student!r} ({id_column} {row[id_column]!r}) is not in the roster: add "
                "them, or remove them from the export if they dropped the course."
            )
        values: list[Fraction | None] = []
        for number in range(1, 7):
            text = row[quiz_columns[number]]
            if text.upper() == "EX":
                values.append(None)
            elif text == "" or text == "-":
                values.append(Fraction(0))
            else:
                points = _points(text, path.name, line, quiz_columns[number])
                if not possible[number] or points > possible[number]:
                    raise GradingError(
                        f"{path.name} line {line}, column {quiz_columns[number]}: {text!r} is more than the "
                        f"{possible[number]} points possible."
                    )
                values.append(points * 100 / possible[number])
        if learner in scores:
            raise GradingError(f"{path.name} line {line}: learner {learner!r} appears twice.")
        scores[learner] = (line, values)
        canvas[learner] = {c: row.get(c, "") for c in CANVAS_IDENTITY}
    return QuizScores(scores, canvas, path.name)


def _points(text: str, name: str, line: int, column: str) -> Fraction:
    try:
        value = Fraction(
            Decimal(text.replace(",", ".") if text.count(",") == 1 and "." not in text else text)
        )
    except (ArithmeticError, ValueError):
        value = None
    if value is None or value < 0:
        raise GradingError(f"{name} line {line}, column {column}: {text!r} is not a number of points.")
    return value


def final_grades(
    quizzes_csv: str | os.PathLike,
    assignments_csv: str | os.PathLike,
    *,
    roster: str | os.PathLike | None = None,
    id_column: str = "SIS User ID",
) -> pd.DataFrame:
    """Apply the grading policy to the quiz scores and ``ASSIGNMENTS.csv``.

    Parameters
    ----------
    quizzes_csv : path-like
        ``learner,quiz_1,...,quiz_6`` with scores from 0 to 100 (an empty cell is a missed quiz, 0),
        or Canvas's gradebook export (see :func:`read_quizzes`; then ``roster`` is needed).
    assignments_csv : path-like
        ``learner,assignment_1,assignment_2`` with ``complete``, ``incomplete`` or ``missing``
        (any case, spaces around ignored), as ``mlsd grade decide`` writes it.
    roster : path-like, optional
        ``learner`` and ``id_column`` for each learner, to match a Canvas export.
    id_column : str
        The Canvas column that identifies a learner in the roster (default ``SIS User ID``).

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

    quizzes = read_quizzes(quizzes_csv, roster=roster, id_column=id_column)
    qname, aname = quizzes.name, Path(assignments_csv).name
    assignments = _read(assignments_csv, ASSIGNMENTS)
    by_learner = {row["learner"]: (line, row) for line, row in assignments}
    only_quizzes = [learner for learner in quizzes.scores if learner not in by_learner]
    only_assignments = [row["learner"] for _, row in assignments if row["learner"] not in quizzes.scores]
    if only_quizzes or only_assignments:
        parts = []
        if only_quizzes:
            parts.append(f"in {qname} but not in {aname}: {', '.join(only_quizzes)}")
        if only_assignments:
            parts.append(f"in {aname} but not in {qname}: {', '.join(only_assignments)}")
        raise GradingError("Every learner must appear in both files; " + "; ".join(parts) + ".")

    records = []
    for learner, (_, scores) in quizzes.scores.items():
        counted = [score for score in scores if score is not None]
        average = sum(counted, Fraction(0)) / len(counted) if counted else Fraction(0)
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
    frame = pd.DataFrame.from_records(records, columns=list(FINAL_COLUMNS))
    frame.attrs["canvas"] = quizzes.canvas
    return frame


def write_final(
    quizzes_csv: str | os.PathLike,
    assignments_csv: str | os.PathLike,
    out: str | os.PathLike,
    *,
    roster: str | os.PathLike | None = None,
    id_column: str = "SIS User ID",
    canvas_out: str | os.PathLike | None = None,
):
    """Compute :func:`final_grades` and write ``FINAL.csv`` (two decimals); returns the DataFrame.

    With ``canvas_out`` (and a Canvas export as the quiz scores), also write a file for Canvas's
    gradebook import: the identity columns, ``Final score`` and ``Result`` (``complete`` for a pass,
    ``incomplete`` for a fail: import it into a Complete/Incomplete assignment).
    """
    frame = final_grades(quizzes_csv, assignments_csv, roster=roster, id_column=id_column)
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
    if canvas_out is not None:
        canvas = frame.attrs.get("canvas") or {}
        if not canvas:
            raise GradingError(
                "A Canvas import file needs the quiz scores as Canvas exported them (with Student, ID, SIS User ID)."
            )
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow([*CANVAS_IDENTITY, "Final score", "Result"])
        for row in frame.itertuples(index=False):
            identity = canvas[row.learner]
            result = "complete" if row.result == "pass" else "incomplete"
            writer.writerow([*(identity[c] for c in CANVAS_IDENTITY), f"{row.final_score:.2f}", result])
        target = Path(canvas_out)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(buffer.getvalue().encode("utf-8"))
    return frame
