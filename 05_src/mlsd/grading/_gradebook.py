"""The persistent nbgrader course: every graded submission in one gradebook that formgrader shows.

Each submission is graded in its own temporary course and sandbox (see ``_execute``); its result is
then recorded here, in the instructors' course (``03_instructional_team/nbgrader/`` by default):
the student, the submission with one grade per graded cell (the grader's comparisons as
``auto_score``; written answers wait for a grader, unless left unanswered), the ``flagged`` mark for
``review: required``, and the submitted and autograded notebooks in ``submitted/`` and
``autograded/``, where formgrader (``uv run jupyter lab`` in that folder, Formgrader tab) reads them.
The gradebook and those folders are git-ignored: they hold learners' work, never published.

:func:`decide` turns the gradebook into complete / incomplete / missing with the playbook's rule, and
:func:`feedback` writes each learner's feedback, manual grades and comments included.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from mlsd.grading._common import GradingError, assignment_notebooks, course_dir
from mlsd.grading._results import Result

__all__ = ["Decision", "decide", "feedback_texts", "gradebook_url", "record_result", "register_assignment"]

COMPLETE_SHARE = Fraction(7, 10)  # of the autograded points, with every written answer attempted and graded


def gradebook_url(course: Path) -> str:
    return f"sqlite:///{(Path(course) / 'gradebook.db').resolve().as_posix()}"


def _patch_nbgrader() -> None:
    from mlsd.grading._runner import _patch_nbgrader as patch

    patch()


def _source_hash(course: Path, assignment: str) -> str:
    digest = hashlib.sha256()
    for path in sorted((Path(course) / "source" / assignment).rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and ".ipynb_checkpoints" not in path.parts:
            digest.update(path.relative_to(course).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def register_assignment(course: Path | None = None, assignment: str = "") -> None:
    """Create the assignment in the persistent gradebook (``nbgrader generate_assignment``) when needed.

    It runs again when the sources changed, unless submissions are already recorded: then the
    gradebook keeps the version they were graded against and this raises with what to do.
    """
    from mlsd.grading._workspace import run_child

    course = Path(course) if course is not None else course_dir()
    assignment_notebooks(course, assignment)
    marker = course / ".mlsd" / f"{assignment}.sha256"
    wanted = _source_hash(course, assignment)
    if marker.is_file() and marker.read_text().strip() == wanted:
        return
    if marker.is_file() and _has_submissions(course, assignment):
        raise GradingError(
            f"The sources of {assignment} changed after submissions were recorded in {course / 'gradebook.db'}. "
            "Grade with the version they were collected against (git checkout), or move gradebook.db, "
            "submitted/ and autograded/ aside to start a new gradebook."
        )
    with tempfile.TemporaryDirectory(prefix="mlsd-register-") as folder:
        root = Path(folder)
        job = {
            "mode": "register",
            "course": str(course.resolve()),
            "assignment": assignment,
            "db_url": gradebook_url(course),
            "work": str(root / "work"),
        }
        run = run_child(job, root)
    if not run.outcome.get("ok"):
        raise GradingError(
            f"nbgrader could not register {assignment} in {course}: {run.outcome.get('error')}"
        )
    marker.parent.mkdir(exist_ok=True)
    marker.write_text(wanted + "\n")


def _has_submissions(course: Path, assignment: str) -> bool:
    from nbgrader.api import Gradebook, MissingEntry

    _patch_nbgrader()
    with Gradebook(gradebook_url(course)) as gb:
        try:
            return bool(gb.find_assignment(assignment).submissions)
        except MissingEntry:
            return False


def record_result(course: Path, result: Result, submitted: Path | None = None) -> None:
    """Record one graded submission in the persistent gradebook (replacing an earlier one).

    ``submitted`` is the notebook as the learner handed it in (copied to ``submitted/``); the
    executed one goes to ``autograded/``, where formgrader reads it.
    """

    import nbformat
    from nbgrader.api import Gradebook, MissingEntry

    _patch_nbgrader()
    notebook = Path(result.notebook).stem
    with Gradebook(gradebook_url(course)) as gb:
        gb.update_or_create_student(result.learner)
        with contextlib.suppress(MissingEntry):
            gb.remove_submission(result.assignment, result.learner)
    for folder in ("submitted", "autograded"):
        shutil.rmtree(Path(course) / folder / result.learner / result.assignment, ignore_errors=True)
    if result.status == "missing":
        return
    with Gradebook(gradebook_url(course)) as gb, warnings.catch_warnings():
        # nbgrader's add_submission builds its objects before adding them: SQLAlchemy warns, harmlessly
        warnings.simplefilter("ignore", category=Warning)
        gb.add_submission(result.assignment, result.learner)
        record = gb.find_submission_notebook(notebook, result.assignment, result.learner)
        by_id = {q.id: q for q in result.questions}
        for grade in record.grades:
            question = by_id.get(grade.name)
            if question is None:
                continue
            if question.status == "needs_manual_grade":
                grade.auto_score, grade.needs_manual_grade = None, True
            else:
                grade.auto_score = question.points or 0.0
                grade.needs_manual_grade = False
        for comment in record.comments:
            question = by_id.get(comment.name)
            if question is not None and question.message and question.status != "needs_manual_grade":
                comment.auto_comment = question.message
        record.flagged = bool(result.review.required) or result.status != "graded"
        gb.db.commit()
    folder = Path(course) / "autograded" / result.learner / result.assignment
    folder.mkdir(parents=True, exist_ok=True)
    if result.autograded is not None:
        nbformat.write(result.autograded, folder / result.notebook)
    if result.out_dir is not None and (result.out_dir / "results.json").is_file():
        shutil.copyfile(result.out_dir / "results.json", folder / "results.json")
    if submitted is not None and submitted.is_file():
        target = Path(course) / "submitted" / result.learner / result.assignment / result.notebook
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(submitted, target)


def _waiting_for_review(course: Path, assignment: str, learner: str) -> str:
    path = Path(course) / "autograded" / learner / assignment / "results.json"
    data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    if data.get("status") not in (None, "graded"):
        message = (data.get("questions") or [{}])[0].get("message", "")
        return f"a person should look at the submission ({data['status']}: {message})"
    reasons = "; ".join(data.get("review_reasons", [])[:3])
    return f"review required ({reasons})" if reasons else "review required"


# -- complete / incomplete / missing --------------------------------------------------------------


@dataclass
class Decision:
    """One learner's decision for one assignment, and what it waits on."""

    learner: str
    decision: str  # "complete", "incomplete", "missing", or "" while it waits
    autograded: float = 0.0
    autograded_max: float = 0.0
    waiting: list[str] = field(default_factory=list)


def decide(course: Path | None, assignment: str, learners: list[str] | None = None) -> list[Decision]:
    """Decide every learner's assignment from the gradebook with the playbook's rule.

    **Complete**: at least 70% of the autograded points and every written answer attempted and
    graded; **incomplete**: submitted, but not that; **missing**: no submission (a learner of
    ``learners`` without one). A decision waits (empty) while a written answer has no manual grade
    yet or the submission is flagged for review (``review: required``): those are listed.
    """
    from nbgrader.api import Gradebook, MissingEntry

    _patch_nbgrader()
    course = Path(course) if course is not None else course_dir()
    decisions: dict[str, Decision] = {}
    with Gradebook(gradebook_url(course)) as gb:
        try:
            submissions = list(gb.find_assignment(assignment).submissions)
        except MissingEntry:
            submissions = []
        for submission in submissions:
            learner = submission.student.id
            auto = auto_max = Fraction(0)
            attempted_all = graded_all = True
            waiting = []
            for nb in submission.notebooks:
                if nb.flagged:
                    waiting.append(_waiting_for_review(course, assignment, learner))
                for grade in nb.grades:
                    cell = grade.cell
                    if cell.cell_type == "code" and not _is_manual(grade):
                        auto += Fraction(str(grade.score or 0))
                        auto_max += Fraction(str(grade.max_score or 0))
                        continue
                    unanswered = (
                        grade.auto_score == 0 and not grade.needs_manual_grade and grade.manual_score is None
                    )
                    if unanswered:
                        attempted_all = False
                    elif grade.manual_score is None:
                        graded_all = False
                        waiting.append(f"written answer {grade.name} has no manual grade yet")
            if waiting:
                outcome = ""
            elif auto_max and auto >= COMPLETE_SHARE * auto_max and attempted_all and graded_all:
                outcome = "complete"
            else:
                outcome = "incomplete"
            decisions[learner] = Decision(learner, outcome, float(auto), float(auto_max), waiting)
    for learner in learners or []:
        decisions.setdefault(learner, Decision(learner, "missing"))
    return [decisions[k] for k in sorted(decisions)]


def _is_manual(grade) -> bool:
    """A written answer (a graded solution cell): read by a grader, not compared by the autograder."""
    from nbgrader.api import SolutionCell

    notebook = grade.notebook.notebook
    return any(isinstance(c, SolutionCell) and c.name == grade.name for c in notebook.solution_cells)


def write_decisions(decisions: list[Decision], assignment: str, path: str | os.PathLike) -> None:
    """Update ``ASSIGNMENTS.csv`` (``learner,assignment_1,assignment_2``): this assignment's column only."""
    import csv
    import io

    from mlsd.grading._final import ASSIGNMENTS

    if assignment not in ASSIGNMENTS:
        raise GradingError(f"{assignment} is not one of the graded assignments {', '.join(ASSIGNMENTS)}.")
    path = Path(path)
    rows: dict[str, dict[str, str]] = {}
    if path.is_file():
        from mlsd._csv import read_csv_rows

        for _, row in read_csv_rows(path, required=("learner", *ASSIGNMENTS)):
            rows[row["learner"]] = row
    for decision in decisions:
        row = rows.setdefault(decision.learner, {"learner": decision.learner, **{a: "" for a in ASSIGNMENTS}})
        row[assignment] = decision.decision
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["learner", *ASSIGNMENTS])
    for learner in sorted(rows):
        writer.writerow([learner, *(rows[learner][a] for a in ASSIGNMENTS)])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(buffer.getvalue(), encoding="utf-8")


# -- feedback ---------------------------------------------------------------------------------------


def feedback_texts(course: Path | None, assignment: str) -> dict[str, str]:
    """Each learner's feedback in Markdown: the autograded results, manual grades and graders' comments."""
    from nbgrader.api import Gradebook, MissingEntry

    _patch_nbgrader()
    course = Path(course) if course is not None else course_dir()
    texts = {}
    with Gradebook(gradebook_url(course)) as gb:
        try:
            submissions = list(gb.find_assignment(assignment).submissions)
        except MissingEntry:
            return {}
        for submission in submissions:
            learner = submission.student.id
            results_file = Path(course) / "autograded" / learner / assignment / "results.json"
            results = json.loads(results_file.read_text(encoding="utf-8")) if results_file.is_file() else {}
            messages = {q["id"]: q for q in results.get("questions", [])}
            lines = [f"## {assignment}: feedback for {learner}", ""]
            lines += ["| question | points | status | message |", "|---|---:|---|---|"]
            total = maximum = 0.0
            for nb in submission.notebooks:
                comments = {c.name: c for c in nb.comments}
                for grade in nb.grades:
                    question = messages.get(grade.name, {})
                    points = grade.manual_score if grade.manual_score is not None else grade.auto_score
                    total += points or 0.0
                    maximum += grade.max_score or 0.0
                    status = question.get("status", "")
                    if grade.manual_score is not None:
                        status = "graded by a grader"
                    elif grade.needs_manual_grade:
                        status = "waiting for a grader"
                    comment = comments.get(grade.name)
                    message = question.get("message", "")
                    if comment is not None and comment.manual_comment:
                        message = f"{message} {comment.manual_comment}".strip()
                    shown = "-" if points is None else f"{points:g}"
                    lines.append(
                        f"| {grade.name} | {shown}/{grade.max_score:g} | {status} | {_cell(message)} |"
                    )
            lines.append(f"| **total** | **{total:g}/{maximum:g}** | | |")
            flags = results.get("flags", [])
            if flags:
                lines += ["", "**Flags**", ""] + [f"- {_cell(f)}" for f in flags]
            texts[learner] = "\n".join(lines) + "\n"
    return texts


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def write_feedback(course: Path | None, assignment: str, out: str | os.PathLike) -> dict[str, Path]:
    """Write ``<out>/<learner>.md`` for every learner with a submission; return ``{learner: path}``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for learner, text in sorted(feedback_texts(course, assignment).items()):
        path = out / f"{learner}.md"
        path.write_text(text, encoding="utf-8")
        written[learner] = path
    return written


def repositories(roster: str | os.PathLike | None, submissions: Path) -> dict[str, str]:
    """Each learner's fork: from the roster, else from the ``submission.json`` files ``collect`` wrote."""
    from mlsd.grading._collect import read_roster

    if roster:
        return dict(read_roster(roster))
    found = {}
    for path in sorted(Path(submissions).glob("*/submission.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        found[data["learner"]] = data["repository"]
    return found
