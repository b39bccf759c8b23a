"""Scores from comparisons: the learner's recorded values against the reference solution's.

Nothing here runs in, or believes, the learner's kernel. For every autograded test cell the
grader takes the values that the cell's check recorded during that cell's own execution (exactly
one record, named after the cell), decodes them as plain data, and runs the instructors'
comparison (``<course>/checks/<assignment>.py``) against the values the reference solution
recorded on the same inputs. A check whose values are missing, malformed, sent twice or sent by
another cell scores 0 with "this check did not run". Messages are the instructors' words, or the
grader's own; text that learner code produced is never shown (except the message of a failed
*visible* assert, and only when it is literally one of that cell's visible messages).
"""

from __future__ import annotations

import ast
import builtins
import importlib.util
import re
from pathlib import Path
from types import ModuleType

from mlsd.grading._common import GradingError, QuestionSpec, grade_id, is_grade, strip_hidden
from mlsd.grading._limits import Limits
from mlsd.grading._results import Question
from mlsd.grading.checks import CheckFailed, CheckSet, DecodeError, Missing, Values

__all__ = ["load_checks", "score_questions", "visible_messages"]

DID_NOT_RUN = "this check did not run"
_BUILTIN_ERRORS = {
    name
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, BaseException)
} | {"CellTimeoutError", "NotebookTimeout", "DeadKernelError", "UndefinedError"}
_ERRNO = re.compile(r"\[Errno (\d+)\]")


def checks_path(course: Path, assignment: str) -> Path:
    return Path(course) / "checks" / f"{assignment}.py"


def load_checks(course: Path, assignment: str) -> CheckSet:
    """The assignment's comparisons, from ``<course>/checks/<assignment>.py`` (a ``CheckSet`` named ``checks``)."""
    path = checks_path(course, assignment)
    if not path.is_file():
        raise GradingError(
            f"No comparisons for {assignment}: write {path} with a `checks = CheckSet()` and one "
            '`@checks.add("<test cell id>")` function per autograded test cell (see mlsd.grading.checks).'
        )
    spec = importlib.util.spec_from_file_location(f"mlsd_checks_{assignment}", path)
    module: ModuleType = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    checks = getattr(module, "checks", None)
    if not isinstance(checks, CheckSet):
        raise GradingError(f"{path} must define `checks = CheckSet()` (from mlsd.grading.checks).")
    return checks


def visible_messages(source: str) -> set[str]:
    """The string messages of the asserts in a test cell's visible part (hidden regions removed)."""
    try:
        tree = ast.parse(strip_hidden(source, placeholder=None))
    except SyntaxError:
        return set()
    return {
        node.msg.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assert)
        and isinstance(node.msg, ast.Constant)
        and isinstance(node.msg.value, str)
    }


def error_name(name: str) -> str:
    """An exception's name as the learner may read it: Python's own names only."""
    return name if name in _BUILTIN_ERRORS else "an exception"


def limit_reached(error: dict, limits: Limits) -> str | None:
    """The limit named by an error the kernel reported (its type and errno), if it names one."""
    name = error.get("ename", "")
    if name == "MemoryError":
        return limits.describe("memory_mb")
    match = _ERRNO.search(str(error.get("evalue", "")))
    errno = int(match.group(1)) if match else None
    if errno == 27:  # EFBIG
        return limits.describe("file_size_mb")
    if errno == 28:  # ENOSPC
        return limits.describe("workspace_mb")
    if errno == 24:  # EMFILE
        return limits.describe("open_files")
    if errno == 11 and name in ("BlockingIOError", "OSError", "RuntimeError"):
        return limits.describe("processes")
    return None


def died_because(cell: dict, limits: Limits) -> str:
    """Why the kernel died, from how its sandbox process ended."""
    code = cell.get("exit_code")
    if code in (128 + 24, -24):  # SIGXCPU
        return f"it reached {limits.describe('cpu_seconds')}"
    if code in (128 + 9, -9):
        return "it was killed (by the system when memory ran out, or after ignoring the CPU time limit)"
    if code in (128 + 25, -25):  # SIGXFSZ
        return f"it reached {limits.describe('file_size_mb')}"
    return "it crashed or exited (os._exit(), a crash, or running out of memory)"


def _span(cells: list, index: int) -> list[int]:
    """Indexes of the code cells above a test cell, up to the previous graded cell."""
    i = index - 1
    while i >= 0 and is_grade(cells[i]) and cells[i].get("cell_type") == "code":
        i -= 1
    span = []
    while i >= 0 and not is_grade(cells[i]):
        if cells[i].get("cell_type") == "code":
            span.append(i)
        i -= 1
    return list(reversed(span))


class Scorer:
    """Scores one execution against the reference; see the module docstring."""

    def __init__(self, checks: CheckSet, reference, limits: Limits, source_nb):
        self.checks, self.reference, self.limits = checks, reference, limits
        self.sources = {grade_id(c): c.get("source", "") for c in source_nb.cells if grade_id(c)}

    def question(self, spec: QuestionSpec, execution, notebook_cells: list) -> Question:
        if spec.kind != "test":
            if spec.id in execution.unanswered:
                return Question(spec.id, 0.0, spec.max_points, "failed", "no answer")
            return Question(spec.id, None, spec.max_points, "needs_manual_grade", "read by a grader")
        status, message = self._test(spec, execution, notebook_cells)
        points = spec.max_points if status == "passed" else 0.0
        return Question(spec.id, points, spec.max_points, status, message)

    def _test(self, spec: QuestionSpec, execution, notebook_cells: list) -> tuple[str, str]:
        cell = execution.cell(spec.id)
        check = self.checks.checks.get(spec.id)
        if check is None:
            return "error", "no comparison is defined for this check (instructors: see checks/)"
        stopped = self._stopped(spec, cell, execution, notebook_cells)
        if stopped is not None:
            return stopped
        records = [r for r in cell.get("records", []) if isinstance(r, dict)]
        mine = [r for r in records if r.get("check") == spec.id]
        if cell.get("errors") or cell.get("reply") == "error":
            return "failed", self._did_not_run(spec, cell)
        if len(records) != 1 or len(mine) != 1:
            reason = "its values were sent more than once" if len(mine) > 1 else "it sent no values"
            if len(records) > len(mine):
                reason = "values of another check were sent from this cell"
            return "failed", f"{DID_NOT_RUN} ({reason})"
        reference_cell = self.reference.cell(spec.id) or {}
        reference_records = [r for r in reference_cell.get("records", []) if r.get("check") == spec.id]
        try:
            got = Values.from_record(mine[0], {t: _frame(execution.tables.get(t)) for t in check.tables})
        except (DecodeError, RecursionError, TypeError, ValueError):
            return "failed", f"{DID_NOT_RUN} (its values were not valid plain data)"
        ref = Values.from_record(
            reference_records[0], {t: _frame(self.reference.tables.get(t)) for t in check.tables}
        )
        try:
            check.function(got, ref)
        except CheckFailed as failed:
            return "failed", str(failed)
        except Missing:
            return "failed", f"{DID_NOT_RUN} (some of its values are missing)"
        except Exception as err:  # a comparison that cannot handle these values: never a pass
            return "failed", f"the comparison could not use your values ({type(err).__name__})"
        return "passed", ""

    def _stopped(self, spec, cell, execution, notebook_cells) -> tuple[str, str] | None:
        """A time limit, a dead kernel or a run stopped before the cell, as status and message."""
        position = next((i for i, c in enumerate(notebook_cells) if grade_id(c) == spec.id), None)
        by_index = {c.get("index"): c for c in execution.cells}
        # An answer cell above that was stopped explains more than the test cell it starved.
        for index in _span(notebook_cells, position) if position is not None else []:
            above = by_index.get(index)
            if above and above.get("state") in ("timed_out", "unresponsive"):
                return "timed_out", f"your code in cell {index + 1} was stopped: {self._timeout_text(above)}"
            if above and above.get("state") == "died":
                why = died_because(above, self.limits)
                return "error", f"the kernel died in your code in cell {index + 1}: {why}"
            for error in (above or {}).get("errors", []):
                limit = limit_reached(error, self.limits)
                if limit:
                    return "error", f"your code in cell {index + 1} reached {limit}"
        if cell is None:
            if execution.killed:
                return "timed_out", (
                    f"not reached: grading was stopped after {execution.kill_after:.0f} s "
                    "(the notebook's time limit)"
                )
            return "failed", f"{DID_NOT_RUN} (the cell was not run)"
        state = cell.get("state")
        if state in ("timed_out", "unresponsive"):
            return "timed_out", self._timeout_text(cell)
        if state == "died":
            return "error", f"the kernel died in this cell: {died_because(cell, self.limits)}"
        if state == "not_run":  # the grader's own words (GradingExecute), not the kernel's
            error = (cell.get("errors") or [{}])[0]
            reason = str(error.get("evalue", "not run"))[:200]
            return ("error" if error.get("ename") == "DeadKernelError" else "timed_out"), reason
        for error in cell.get("errors", []):
            limit = limit_reached(error, self.limits)
            if limit:
                return "error", f"the check reached {limit}"
        return None

    def _timeout_text(self, cell: dict) -> str:
        names = {e.get("ename") for e in cell.get("errors", [])}
        if "NotebookTimeout" in names:
            text = f"the notebook reached its time limit of {self.limits.notebook_timeout} s"
        else:
            text = f"it ran longer than its limit of {self.limits.cell_timeout} s (an endless loop?)"
        if cell.get("state") == "unresponsive":
            text += " and did not stop when interrupted"
        return text

    def _did_not_run(self, spec: QuestionSpec, cell: dict) -> str:
        error = (cell.get("errors") or [{}])[0]
        name = str(error.get("ename", ""))
        if name == "AssertionError" and str(error.get("evalue", "")) in visible_messages(
            self.sources.get(spec.id, "")
        ):
            return f"{DID_NOT_RUN}: a visible check failed: {error['evalue']}"
        if name:
            return f"{DID_NOT_RUN}: the cell stopped with {error_name(name)}"
        return DID_NOT_RUN


def _frame(value):
    """A table as read by the grader, or None when it could not be read (a reason string)."""
    return None if isinstance(value, str) or value is None else value


def score_questions(
    specs, execution, reference, checks: CheckSet, limits: Limits, source_nb
) -> list[Question]:
    """One :class:`Question` per graded cell of ``specs``, from ``execution`` against ``reference``."""
    scorer = Scorer(checks, reference, limits, source_nb)
    cells = list(execution.autograded.cells) if execution.autograded is not None else list(source_nb.cells)
    return [scorer.question(spec, execution, cells) for spec in specs]
