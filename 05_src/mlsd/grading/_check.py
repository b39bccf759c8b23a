"""The learner's own check before submitting: the learner copy's visible checks, in a fresh kernel.

It needs nothing private and no sandbox (it runs the learner's own notebook on their own computer,
macOS, Windows or Linux): a fresh kernel, a fresh database on the course's server (dropped
afterwards), the same time limits as grading. Each test cell is one row: ``passed``, ``failed``
(with its message) or ``not run``. Hidden checks are not there: they run when the assignment is
collected.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlsd.grading._common import (
    GradingError,
    assignments_dir,
    grade_id,
    is_grade,
    is_solution,
    strip_ansi,
)
from mlsd.grading._limits import Limits

__all__ = ["CheckRow", "HIDDEN_NOTE", "check_notebook", "find_learner_notebook", "write_check"]

HIDDEN_NOTE = (
    "Hidden checks run when your assignment is collected: passing these does not guarantee the points."
)


@dataclass(frozen=True)
class CheckRow:
    """One visible check: its test cell, what happened, the message."""

    question: str
    points: float
    status: str  # "passed", "failed" or "not run"
    message: str = ""


def find_learner_notebook(assignment: str | None, notebook: str | os.PathLike | None) -> tuple[str, Path]:
    """The assignment and the notebook to check: ``--notebook``, else the learner copy in ``02_activities``."""
    known = (
        sorted(p.name for p in assignments_dir().iterdir() if p.is_dir())
        if assignments_dir().is_dir()
        else []
    )
    if notebook is not None:
        path = Path(notebook).expanduser().resolve()
        if not path.is_file():
            raise GradingError(f"{path} does not exist: pass the .ipynb you want to check.")
        assignment = assignment or path.parent.name
        return assignment, path
    if assignment is None:
        listed = ", ".join(known) or "none"
        raise GradingError(
            f"Name the assignment to check: --assignment {known[0] if known else 'assignment_1'} (known: {listed})."
        )
    if known and assignment not in known:
        raise GradingError(f"Unknown assignment {assignment!r}: the assignments are {', '.join(known)}.")
    path = assignments_dir() / assignment / f"{assignment}.ipynb"
    if not path.is_file():
        candidates = sorted((assignments_dir() / assignment).glob("*.ipynb"))
        if len(candidates) != 1:
            raise GradingError(f"No notebook {path.name} in {path.parent}: pass --notebook PATH.")
        path = candidates[0]
    return assignment, path


def _rows(nb, stopped: str | None) -> list[CheckRow]:
    rows = []
    for cell in nb.cells:
        if not (is_grade(cell) and not is_solution(cell) and cell.get("cell_type") == "code"):
            continue
        points = float(cell.metadata.get("nbgrader", {}).get("points", 0) or 0)
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if errors:
            error = errors[0]
            text = strip_ansi(f"{error.get('ename', 'Error')}: {error.get('evalue', '')}").strip().rstrip(":")
            rows.append(CheckRow(grade_id(cell), points, "failed", " ".join(text.split())[:500]))
        elif cell.get("execution_count") is None:
            rows.append(CheckRow(grade_id(cell), points, "not run", stopped or "not reached"))
        else:
            rows.append(CheckRow(grade_id(cell), points, "passed"))
    return rows


def check_notebook(
    assignment: str | None = None,
    notebook: str | os.PathLike | None = None,
    *,
    database_url: str | None = None,
    limits: Limits | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[str, Path, list[CheckRow]]:
    """Run the notebook's visible checks; return the assignment, the notebook and one row per test cell.

    ``progress`` hears ``cell 12/80`` before each code cell runs.

    Examples
    --------
    >>> check_notebook("assignment_1")  # doctest: +SKIP
    ('assignment_1', PosixPath('.../assignment_1.ipynb'), [CheckRow(question='test_q1_load_extract', ...)])
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    from mlsd import db
    from mlsd.grading._database import scratch_database

    limits = limits or Limits()
    assignment, path = find_learner_notebook(assignment, notebook)
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as err:  # a broken file: say so in one line
        raise GradingError(
            f"{path.name} cannot be opened as a notebook ({type(err).__name__}): open and save it in VS Code."
        ) from None
    server = db.database_url(database_url)
    stopped = None
    with scratch_database(server) as scratch:
        client = NotebookClient(
            nb,
            timeout=limits.cell_timeout,
            kernel_name="python3",
            allow_errors=True,
            interrupt_on_timeout=True,
            resources={"metadata": {"path": str(path.parent)}},
            extra_arguments=["--IPKernelApp.log_level=ERROR"],
        )
        env = {**os.environ, "DATABASE_URL": scratch.admin_url, "OMP_WAIT_POLICY": "passive"}
        env.pop("JPY_PARENT_PID", None)
        started = time.monotonic()
        try:
            with client.setup_kernel(env=env):
                code = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
                for index, cell in enumerate(nb.cells):
                    if progress is not None and cell.cell_type == "code":
                        progress(f"cell {code.index(index) + 1}/{len(code)}")
                    if time.monotonic() - started > limits.notebook_timeout:
                        stopped = (
                            f"not run: the notebook reached its time limit of {limits.notebook_timeout} s"
                        )
                        break
                    client.execute_cell(cell, index)
        except DeadKernelError:
            stopped = "not run: the kernel died (os._exit(), a crash, or running out of memory)"
        except CellTimeoutError:
            stopped = "not run: a cell did not stop when interrupted"
    return assignment, path, _rows(nb, stopped)


def write_check(out: Path, assignment: str, path: Path, rows: list[CheckRow]) -> None:
    """``check.json`` (the shape of ``results.json``, for the comment workflow) and ``summary.md``."""
    import json

    out.mkdir(parents=True, exist_ok=True)
    passed = sum(r.status == "passed" for r in rows)
    data = {
        "assignment": assignment,
        "notebook": path.name,
        "status": f"{passed}/{len(rows)} visible checks passed",
        "questions": [
            {
                "id": r.question,
                "points": None,
                "max_points": r.points,
                "status": r.status,
                "message": r.message,
            }
            for r in rows
        ],
        "flags": [],
        "note": HIDDEN_NOTE,
    }
    (out / "check.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    lines = [
        f"### {assignment} / {path.name}: {data['status']}",
        "",
        "| question | status | message |",
        "|---|---|---|",
    ]
    lines += [f"| {r.question} | {r.status} | {r.message.replace('|', '/')} |" for r in rows]
    lines += ["", HIDDEN_NOTE]
    (out / "summary.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
