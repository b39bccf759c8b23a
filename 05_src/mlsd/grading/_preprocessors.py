"""nbgrader preprocessors used by ``mlsd.grading`` during autograde (imported in the child process only).

- :class:`GradingExecute` runs the notebook like nbgrader's ``Execute`` but enforces a whole-notebook
  limit, survives a dead or unresponsive kernel (the cells after it are marked as not run instead of
  failing the whole autograde), and appends one line per executed cell to a progress file so that a
  run killed from outside can still be scored.
- :class:`TruncateOutputs` bounds every output (a 10 MB print is cut to ``max_chars``).
- :class:`SaveAutoGradesIgnoringStderr` scores a test cell on its error output only: nbgrader 0.9
  gives zero to any cell that wrote to stderr, so a warning raised by correct code would cost points.
"""

from __future__ import annotations

import copy
import json
import math
import time

from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbgrader import utils
from nbgrader.preprocessors import Execute, NbGraderPreprocessor, SaveAutoGrades
from traitlets import Integer, Unicode

from mlsd.grading._common import first_cell_line

NOTEBOOK_TIMEOUT = "NotebookTimeout"
CELL_TIMEOUT = "CellTimeoutError"
KERNEL_DIED = "DeadKernelError"


def error_output(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


class GradingExecute(Execute):
    """nbgrader's ``Execute`` with a notebook time limit, dead-kernel handling and a progress log."""

    notebook_timeout = Integer(
        600, help="Seconds the whole notebook may run; cells not reached by then are not run."
    ).tag(config=True)
    progress_file = Unicode("", help="JSON-lines file: one line per code cell, written as it finishes.").tag(
        config=True
    )

    def preprocess(self, nb, resources=None, km=None):
        self._deadline = time.monotonic() + self.notebook_timeout
        self._cell_limit = self.timeout
        self._stopped: tuple[str, str] | None = None
        self._progress = open(self.progress_file, "a", encoding="utf-8") if self.progress_file else None  # noqa: SIM115
        try:
            return super().preprocess(nb, resources, km)
        finally:
            if self._progress is not None:
                self._progress.close()

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code" or not cell.source.strip():
            return cell, resources
        if self._stopped is None and time.monotonic() >= self._deadline:
            self._stopped = (
                NOTEBOOK_TIMEOUT,
                f"not run: the notebook reached its time limit of {self.notebook_timeout} s",
            )
        if self._stopped is not None:
            cell.outputs = [error_output(*self._stopped)]
            cell.execution_count = None
            self._record(cell, index, "not_run")
            return cell, resources

        remaining = self._deadline - time.monotonic()
        cell_limit = self._cell_limit if self._cell_limit and self._cell_limit > 0 else math.inf
        by_notebook = remaining < cell_limit
        limit = max(1, math.ceil(min(remaining, cell_limit)))
        self.timeout = limit
        if by_notebook:
            ename = NOTEBOOK_TIMEOUT
            evalue = f"stopped: the notebook reached its time limit of {self.notebook_timeout} s in this cell"
        else:
            ename = CELL_TIMEOUT
            evalue = f"stopped: the cell ran longer than its limit of {limit} s (an endless loop?)"
        self.error_on_timeout = {"ename": ename, "evalue": evalue, "traceback": [f"{ename}: {evalue}"]}
        state = "ran"
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            cell.outputs.append(
                error_output(
                    KERNEL_DIED,
                    "the kernel died while running this cell (os._exit(), a crash, or running out of memory)",
                )
            )
            self._stopped = (KERNEL_DIED, f"not run: the kernel died in cell {index + 1}")
            state = "died"
        except CellTimeoutError:
            cell.outputs.append(error_output(ename, evalue + " and did not stop when interrupted"))
            self._stopped = (ename, f"not run: the kernel stopped responding in cell {index + 1}")
            state = "unresponsive"
        else:
            if any(o.get("output_type") == "error" and o.get("ename") == ename for o in cell.outputs):
                state = "timed_out"
                if by_notebook:
                    self._stopped = (
                        NOTEBOOK_TIMEOUT,
                        f"not run: the notebook reached its time limit of {self.notebook_timeout} s",
                    )
        self._record(cell, index, state)
        return cell, resources

    def _record(self, cell, index: int, state: str) -> None:
        if self._progress is None:
            return
        meta = cell.metadata.get("nbgrader", {})
        errors = [
            {
                "ename": str(o.get("ename", ""))[:200],
                "evalue": str(o.get("evalue", ""))[:2000],
                "line": first_cell_line(o.get("traceback", [])),
            }
            for o in cell.outputs
            if o.get("output_type") == "error"
        ]
        score = None
        if meta.get("grade") and cell.cell_type == "code" and not meta.get("solution"):
            score = score_test_cell(cell, self.log)[0]
        line = {
            "index": index,
            "grade_id": meta.get("grade_id"),
            "state": state,
            "errors": errors,
            "score": score,
        }
        self._progress.write(json.dumps(line) + "\n")
        self._progress.flush()


def score_test_cell(cell, log=None) -> tuple[float | None, float]:
    """nbgrader's ``determine_grade`` on the cell without its stderr output, never raising.

    A test cell scores zero when it raised an error, the number it displays as partial credit
    (clamped to 0..points), or full points otherwise.
    """
    cleaned = copy.deepcopy(cell)
    if cleaned.cell_type == "code":
        cleaned.outputs = [
            o for o in cleaned.outputs if not (o.get("output_type") == "stream" and o.get("name") == "stderr")
        ]
    try:
        return utils.determine_grade(cleaned, log)
    except (ValueError, KeyError, TypeError):
        max_points = float(cell.metadata["nbgrader"].get("points", 0) or 0)
        failed = any(o.get("output_type") == "error" for o in cleaned.get("outputs", []))
        return (0.0 if failed else max_points), max_points


class SaveAutoGradesIgnoringStderr(SaveAutoGrades):
    """``SaveAutoGrades`` that ignores stderr output (warnings, progress bars) when scoring test cells."""

    def _add_score(self, cell, resources) -> None:
        grade = self.gradebook.find_grade(
            cell.metadata["nbgrader"]["grade_id"], self.notebook_id, self.assignment_id, self.student_id
        )
        auto_score, _ = score_test_cell(cell, self.log)
        grade.auto_score = auto_score
        grade.needs_manual_grade = grade.manual_score is not None or grade.auto_score is None
        self.gradebook.db.commit()


class TruncateOutputs(NbGraderPreprocessor):
    """Bound the size of every output so a flood of prints cannot swamp the results or the feedback."""

    max_chars = Integer(20_000, help="Characters kept of each text output.").tag(config=True)
    max_data_bytes = Integer(200_000, help="Rich outputs (images, HTML) larger than this are dropped.").tag(
        config=True
    )

    def _cut(self, text) -> tuple[str, int]:
        if isinstance(text, list):
            text = "".join(text)
        text = str(text)
        if len(text) <= self.max_chars:
            return text, 0
        kept = text[: self.max_chars]
        return kept + f"\n... output truncated: {len(text):,} characters in total ...\n", len(text)

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type != "code":
            return cell, resources
        truncated = 0
        for output in cell.outputs:
            kind = output.get("output_type")
            if kind == "stream":
                output.text, size = self._cut(output.text)
                truncated = max(truncated, size)
            elif kind == "error":
                output.evalue, size = self._cut(output.get("evalue", ""))
                truncated = max(truncated, size)
                output.traceback = [self._cut(line)[0] for line in output.get("traceback", [])[:200]]
            elif kind in {"execute_result", "display_data"}:
                data = output.get("data", {})
                for mime in list(data):
                    value = data[mime]
                    size = len(json.dumps(value)) if not isinstance(value, str) else len(value)
                    if mime == "text/plain":
                        data[mime], cut = self._cut(value)
                        truncated = max(truncated, cut)
                    elif size > self.max_data_bytes:
                        del data[mime]
                        truncated = max(truncated, size)
                if not data:
                    data["text/plain"] = "[a large output was removed]"
        if truncated:
            cell.metadata.setdefault("mlsd", {})["truncated_chars"] = truncated
        return cell, resources
