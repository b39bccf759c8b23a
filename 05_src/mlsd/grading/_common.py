"""Shared pieces of the grading package: the course layout, questions, hidden-test regions.

Nothing here imports nbgrader: the parent process reads notebooks with ``nbformat`` only,
and nbgrader runs in a child process (see ``_runner``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mlsd.config import repo_root
from mlsd.errors import MLSDError

KERNEL_NAME = "python3"
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": KERNEL_NAME}
BEGIN_HIDDEN = "BEGIN HIDDEN TESTS"
END_HIDDEN = "END HIDDEN TESTS"
NBGRADER_STUDENT = "learner"  # the id used inside the temporary course, whatever the learner's name
ASSIGNMENTS_FOLDER = Path("02_activities") / "assignments"
COURSE_FOLDER = Path("03_instructional_team") / "nbgrader"


class GradingError(MLSDError):
    """Bad input for grading (unknown assignment, unreadable CSV, git failure): says what to fix."""


def course_dir() -> Path:
    """The instructors' nbgrader course: ``03_instructional_team/nbgrader``.

    It holds ``nbgrader_config.py`` and ``source/<assignment>/<notebook>.ipynb`` with
    solutions and hidden tests, next to the assignment's support files.
    ``MLSD_NBGRADER_DIR`` points elsewhere, e.g. at a checkout of a private
    solutions repository (see the instructional-team playbook).
    """
    from mlsd.config import resolve

    override = resolve("MLSD_NBGRADER_DIR")
    if override:
        path = Path(override).expanduser()
        return path if path.is_absolute() else repo_root() / path
    return repo_root() / COURSE_FOLDER


def assignments_dir() -> Path:
    """Where the learner copies live: ``02_activities/assignments``."""
    return repo_root() / ASSIGNMENTS_FOLDER


def list_assignments(course: Path | None = None) -> list[str]:
    """Names of the assignments in ``course/source`` (folders holding at least one notebook)."""
    source = Path(course or course_dir()) / "source"
    if not source.is_dir():
        return []
    return sorted(
        p.name
        for p in source.iterdir()
        if p.is_dir() and not p.name.startswith(".") and any(p.glob("*.ipynb"))
    )


def check_assignment(course: Path, assignment: str) -> None:
    """Raise :class:`GradingError` naming the known assignments when ``assignment`` is not one."""
    known = list_assignments(course)
    if assignment not in known:
        listed = ", ".join(known) if known else "none yet"
        raise GradingError(
            f"Unknown assignment {assignment!r} in the nbgrader course {course}: the known assignments "
            f"are {listed}. Assignments are the folders under {Path(course) / 'source'}."
        )


def assignment_notebooks(course: Path, assignment: str) -> list[Path]:
    """The source notebooks of one assignment, sorted by name."""
    check_assignment(course, assignment)
    return sorted((Path(course) / "source" / assignment).glob("*.ipynb"))


def branch_name(assignment: str) -> str:
    """The branch learners submit on: ``assignment_1`` -> ``assignment-1``."""
    return assignment.replace("_", "-")


# -- nbgrader cell metadata, read without nbgrader ------------------------------------


def nbgrader_meta(cell) -> dict:
    """The cell's ``nbgrader`` metadata, or an empty dict (also when it is not a dict)."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta if isinstance(meta, dict) else {}


def grade_id(cell) -> str | None:
    value = nbgrader_meta(cell).get("grade_id")
    return value if isinstance(value, str) and value else None


def is_grade(cell) -> bool:
    return bool(nbgrader_meta(cell).get("grade"))


def is_solution(cell) -> bool:
    return bool(nbgrader_meta(cell).get("solution"))


def is_task(cell) -> bool:
    return bool(nbgrader_meta(cell).get("task"))


def is_locked(cell) -> bool:
    """nbgrader's rule: answer cells are never locked, test cells always, others when marked."""
    if is_solution(cell):
        return False
    if is_grade(cell):
        return True
    return bool(nbgrader_meta(cell).get("locked"))


def describe_cell(cell) -> str:
    """``test cell``, ``answer cell``, ``task cell`` or ``read-only cell`` for messages."""
    if is_task(cell):
        return "task cell"
    if is_solution(cell):
        return "answer cell"
    if is_grade(cell):
        return "test cell"
    return "read-only cell"


@dataclass(frozen=True)
class QuestionSpec:
    """One graded cell of an assignment notebook: a test, a manually graded answer or a task."""

    id: str
    max_points: float
    kind: str  # "test" (autograded), "manual" (answer read by a grader) or "task"
    cell_type: str


def question_specs(nb) -> list[QuestionSpec]:
    """The graded cells of a notebook in notebook order (nbgrader ``grade`` or ``task`` cells)."""
    specs = []
    for cell in nb.cells:
        cid = grade_id(cell)
        if cid is None or not (is_grade(cell) or is_task(cell)):
            continue
        kind = "task" if is_task(cell) else ("manual" if is_solution(cell) else "test")
        if kind == "test" and cell.cell_type != "code":
            kind = "manual"  # a graded markdown cell that is not an answer: nbgrader leaves it to a grader
        points = float(nbgrader_meta(cell).get("points", 0) or 0)
        specs.append(QuestionSpec(cid, points, kind, cell.cell_type))
    return specs


# -- hidden tests -----------------------------------------------------------------------


def hidden_line_numbers(source: str) -> set[int]:
    """1-based line numbers inside ``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS`` (inclusive)."""
    hidden: set[int] = set()
    inside = False
    for number, line in enumerate(source.split("\n"), start=1):
        if BEGIN_HIDDEN in line:
            inside = True
        if inside:
            hidden.add(number)
        if END_HIDDEN in line:
            inside = False
    return hidden


def strip_hidden(source: str, placeholder: str | None = "# (hidden tests)") -> str:
    """The source with hidden-test regions removed (replaced by ``placeholder`` when given)."""
    hidden = hidden_line_numbers(source)
    lines = []
    previous_hidden = False
    for number, line in enumerate(source.split("\n"), start=1):
        if number in hidden:
            if not previous_hidden and placeholder is not None:
                indent = line[: len(line) - len(line.lstrip())]
                lines.append(indent + placeholder)
            previous_hidden = True
            continue
        previous_hidden = False
        lines.append(line)
    return "\n".join(lines)


# -- deterministic, safe messages --------------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_ADDRESS = re.compile(r"\b0x[0-9a-fA-F]{6,}\b")


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


_CELL_LINE = re.compile(r"Cell In\[\d*\], line (\d+)")
_OLD_CELL_LINE = re.compile(r"<ipython-input-[^>]*> in <module>.*?\n-+> *(\d+)", re.S)


def first_cell_line(traceback: list[str] | None) -> int | None:
    """Line of the executed cell where an error started, read from an IPython traceback."""
    for entry in traceback or []:
        text = strip_ansi(str(entry))
        match = _CELL_LINE.search(text) or _OLD_CELL_LINE.search(text)
        if match:
            return int(match.group(1))
    return None


def clean_message(text: str, *, replace: dict[str, str] | None = None, limit: int = 500) -> str:
    """One tidy line for results: no colours, no memory addresses, no temporary paths, bounded length."""
    text = strip_ansi(str(text))
    for old, new in (replace or {}).items():
        if old:
            text = text.replace(old, new)
    text = _ADDRESS.sub("0x...", text)
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 3].rstrip() + "..."
    return text


def number(value: float | None) -> float | int | None:
    """Points as people write them: 2 rather than 2.0, at most two decimals."""
    if value is None:
        return None
    value = round(float(value), 2)
    return int(value) if value.is_integer() else value
