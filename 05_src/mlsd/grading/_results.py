"""Results of grading one notebook: questions, score, flags, review; ``results.json`` and ``summary.md``.

Scores come from the grader's comparisons (``_score``); messages are the instructors' or the
grader's own words, never text that learner code produced.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mlsd.grading._common import QuestionSpec, number

STATUSES = ("graded", "invalid", "missing", "error")
QUESTION_STATUSES = ("passed", "failed", "timed_out", "error", "needs_manual_grade")


@dataclass
class Review:
    """Whether a person should read the submission's code, and why (the integrity scan's findings)."""

    required: bool = False
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"required": self.required, "reasons": list(self.reasons)}


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
    review: Review = field(default_factory=Review)
    sandbox: str = "bubblewrap"  # or "none" (--no-sandbox)
    autograded: object | None = field(default=None, repr=False)  # the executed notebook, for formgrader

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
            "review": "required" if self.review.required else "none",
            "review_reasons": list(self.review.reasons),
            "sandbox": self.sandbox,
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
        if self.review.required:
            lines += ["", "**Review required**: a person will read this notebook's code.", ""]
            lines += [f"- {_cell(r)}" for r in self.review.reasons]
        if self.sandbox == "none":
            lines += ["", "Graded without a sandbox (`--no-sandbox`): for instructors' own notebooks only."]
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
