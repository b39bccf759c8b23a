"""Results of grading one notebook: questions, score, flags; ``results.json`` and ``summary.md``.

Scores come from nbgrader's gradebook; messages come from the autograded notebook's error
outputs (the error's name and value, never a traceback: tracebacks quote the source around the
failing line, hidden tests included).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mlsd.grading._common import (
    QuestionSpec,
    first_cell_line,
    grade_id,
    hidden_line_numbers,
    is_grade,
    number,
)

STATUSES = ("graded", "invalid", "missing", "error")
QUESTION_STATUSES = ("passed", "failed", "timed_out", "error", "needs_manual_grade")

# Error names written by GradingExecute (see _preprocessors); kept here so the parent never imports nbgrader.
NOTEBOOK_TIMEOUT = "NotebookTimeout"
CELL_TIMEOUT = "CellTimeoutError"
KERNEL_DIED = "DeadKernelError"
TIMEOUTS = (NOTEBOOK_TIMEOUT, CELL_TIMEOUT)


@dataclass
class Question:
    """One graded cell: an autograder test, a manually graded answer or a task."""

    id: str
    points: float | None  # None while a grader has not read it
    max_points: float
    status: str
    message: str = ""


@dataclass
class Result:
    """The outcome of grading one submitted notebook (see :func:`mlsd.grading.autograde`)."""

    assignment: str
    learner: str
    notebook: str
    status: str
    score: float
    max_score: float
    questions: list[Question]
    flags: list[str] = field(default_factory=list)
    out_dir: Path | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """0 whenever a result was produced (whatever the score); 1 when the grader itself failed."""
        return 1 if self.status == "error" else 0

    def to_dict(self) -> dict:
        """The content of ``results.json`` (no timings, no paths: the same notebook gives the same file)."""
        return {
            "assignment": self.assignment,
            "learner": self.learner,
            "notebook": self.notebook,
            "status": self.status,
            "score": number(self.score),
            "max_score": number(self.max_score),
            "questions": [
                {**asdict(q), "points": number(q.points), "max_points": number(q.max_points)}
                for q in self.questions
            ],
            "flags": list(self.flags),
        }

    def summary_markdown(self) -> str:
        """One row per question, the total and the flags, for the PR comment and ``summary.md``."""
        score = f"{_fmt(self.score)}/{_fmt(self.max_score)}"
        lines = [f"### {self.assignment} / {self.notebook}: {self.learner} ({self.status}, {score})", ""]
        lines += ["| question | points | status | message |", "|---|---:|---|---|"]
        for q in self.questions:
            points = "-" if q.points is None else _fmt(q.points)
            lines.append(f"| {q.id} | {points}/{_fmt(q.max_points)} | {q.status} | {_cell(q.message)} |")
        lines.append(f"| **total** | **{score}** | | |")
        pending = [q for q in self.questions if q.status == "needs_manual_grade"]
        if pending:
            lines += [
                "",
                f"{sum(q.max_points for q in pending):g} points are read by a grader and not counted yet.",
            ]
        if self.flags:
            lines += ["", "**Flags**", ""] + [f"- {_cell(f)}" for f in self.flags]
        return "\n".join(lines) + "\n"

    def write(self, out_dir: Path, feedback_html: str) -> None:
        """Write ``results.json``, ``summary.md`` and ``feedback.html`` into ``out_dir``."""
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "results.json").write_bytes(
            (json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n").encode("utf-8")
        )
        (out_dir / "summary.md").write_bytes(self.summary_markdown().encode("utf-8"))
        (out_dir / "feedback.html").write_bytes(feedback_html.encode("utf-8"))
        self.out_dir = out_dir


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{number(value)}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def ungraded(
    assignment: str, learner: str, notebook: str, status: str, specs: list[QuestionSpec], message: str
) -> Result:
    """A result without grading: ``missing``, ``invalid`` or ``error``; every question gets 0."""
    question_status = "error" if status == "error" else "failed"
    questions = [Question(s.id, 0.0, s.max_points, question_status, message) for s in specs]
    return Result(assignment, learner, notebook, status, 0.0, sum(s.max_points for s in specs), questions)


# -- from the autograded notebook and the gradebook ---------------------------------------


def _errors(cell) -> list[dict]:
    return [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]


def describe_error(error: dict, source: str, clean) -> str:
    """``ename: evalue``, and where in the test cell it happened, never quoting a hidden line."""
    ename, evalue = str(error.get("ename", "Error")), clean(error.get("evalue", ""))
    text = f"{ename}: {evalue}" if evalue else ename
    line = error.get("line") or first_cell_line(error.get("traceback", []))
    if line is None:
        return text
    if line in hidden_line_numbers(source):
        return f"{text} (in a hidden test)"
    lines = source.split("\n")
    if 1 <= line <= len(lines) and lines[line - 1].strip():
        quoted = clean(lines[line - 1].strip(), limit=120)
        return f"{text} (at `{quoted}`)"
    return text


def _span(cells: list, index: int) -> list[tuple[int, dict]]:
    """The code cells a test cell checks: the non-graded cells above it, up to the previous question."""
    i = index - 1
    while i >= 0 and is_grade(cells[i]) and cells[i].get("cell_type") == "code":
        i -= 1  # consecutive test cells share the answer cells above them
    span = []
    while i >= 0 and not is_grade(cells[i]):
        if cells[i].get("cell_type") == "code":
            span.append((i, cells[i]))
        i -= 1
    return list(reversed(span))


def graded_questions(
    specs: list[QuestionSpec], autograded, grades: dict, comments: dict, clean
) -> list[Question]:
    """Questions from the gradebook's grades and the autograded notebook's outputs."""
    cells = list(autograded.cells)
    position = {grade_id(c): i for i, c in enumerate(cells) if grade_id(c)}
    questions = []
    for spec in specs:
        grade = grades.get(spec.id, {})
        if spec.kind != "test":
            if grade.get("needs_manual_grade", True):
                questions.append(
                    Question(spec.id, None, spec.max_points, "needs_manual_grade", "read by a grader")
                )
            else:
                score = float(grade.get("auto_score") or 0)
                status = "passed" if score >= spec.max_points else "failed"
                message = comments.get(spec.id) or ("" if status == "passed" else "no answer")
                questions.append(Question(spec.id, score, spec.max_points, status, clean(message)))
            continue
        score = float(grade.get("auto_score") or 0.0)
        index = position.get(spec.id)
        if index is None:  # cannot happen after add_missing_cells; reported rather than hidden
            questions.append(Question(spec.id, 0.0, spec.max_points, "error", "the test cell was not run"))
            continue
        cell = cells[index]
        status, message = _test_status(cell, _span(cells, index), score, spec.max_points, clean)
        questions.append(Question(spec.id, score, spec.max_points, status, message))
    return questions


def _stop(errors: list[dict]) -> dict | None:
    """The first error that stopped the run (a time limit or a dead kernel), if any."""
    return next((e for e in errors if e.get("ename") in (*TIMEOUTS, KERNEL_DIED)), None)


def _test_status(cell, span, score: float, max_points: float, clean) -> tuple[str, str]:
    errors = _errors(cell)
    own = _stop(errors)
    # The answer cell that was stopped explains more than the test cell that was then not run
    # (or that failed because the answer was never defined).
    for number_, answer in span if score < max_points else []:
        cause = _stop(_errors(answer))
        if (
            cause is None
            or str(cause.get("evalue", "")).startswith("not run")
            or not (own is None or str(own.get("evalue", "")).startswith("not run"))
        ):
            continue
        status = "error" if cause.get("ename") == KERNEL_DIED else "timed_out"
        joint = ":" if status == "error" else " was"
        return status, clean(f"your code in cell {number_ + 1}{joint} {cause.get('evalue', '')}")
    if own is not None:
        status = "error" if own.get("ename") == KERNEL_DIED else "timed_out"
        return status, clean(own.get("evalue", ""))
    if score >= max_points:
        return "passed", ""
    if errors:
        message = describe_error(errors[0], cell.get("source", ""), clean)
    else:
        message = f"partial credit: {_fmt(score)} of {_fmt(max_points)} points"
    answer_errors = [(n, e) for n, a in span for e in _errors(a)]
    if answer_errors:
        n, error = answer_errors[0]
        ename, evalue = error.get("ename", "Error"), clean(error.get("evalue", ""))
        message += f"; your code in cell {n + 1} raised {ename}" + (f": {evalue}" if evalue else "")
    return "failed", clean(message)


def questions_from_progress(
    specs: list[QuestionSpec], records: list[dict], stopped_after: float, clean
) -> list[Question]:
    """Questions when the run was killed: cells that finished keep their score, the rest timed out."""
    by_id = {r["grade_id"]: r for r in records if r.get("grade_id")}
    questions = []
    for spec in specs:
        record = by_id.get(spec.id)
        if spec.kind != "test":
            questions.append(
                Question(spec.id, None, spec.max_points, "needs_manual_grade", "read by a grader")
            )
        elif record is None or record.get("state") == "not_run":
            message = (
                f"not reached: grading was stopped after {stopped_after:.0f} s (the notebook's time limit)"
            )
            questions.append(Question(spec.id, 0.0, spec.max_points, "timed_out", message))
        else:
            score = float(record.get("score") or 0.0)
            fake = {
                "outputs": [{"output_type": "error", **e} for e in record.get("errors", [])],
                "source": "",
            }
            status, message = _test_status(fake, [], score, spec.max_points, clean)
            questions.append(Question(spec.id, score, spec.max_points, status, message))
    return questions


def truncation_flags(autograded) -> list[str]:
    flags = []
    for index, cell in enumerate(autograded.cells, start=1):
        size = cell.get("metadata", {}).get("mlsd", {}).get("truncated_chars")
        if size:
            flags.append(f"output of cell {index} was cut short in the feedback (it had {size:,} characters)")
    return flags
