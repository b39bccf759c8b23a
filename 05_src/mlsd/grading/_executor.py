"""Running a graded notebook, cell by cell, and keeping the grader's own record of each cell.

:class:`GradingExecutor` is an ``nbclient`` client (used only in the grading child process) that
enforces a whole-notebook time limit besides each cell's, survives a dead or unresponsive kernel
(the cells after it are marked as not run), keeps each cell's and the notebook's output within
limits (an error output is always kept, cut short), takes check values (see
:mod:`mlsd.grading.extraction`) out of the outputs, ignores widget messages and updates of earlier
displays, and appends one line per code cell to a progress file: how the cell ran, its errors, the
values its checks sent. Scores are computed from that file by the grader, never here.
"""

from __future__ import annotations

import json
import math
import time

from jupyter_core.utils import run_sync
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbformat.v4 import output_from_msg
from traitlets import Integer, Unicode

from mlsd.grading._common import first_cell_line
from mlsd.grading.extraction import MIME_TYPE as RECORD_MIME

__all__ = ["CELL_TIMEOUT", "GradingExecutor", "KERNEL_DIED", "NOTEBOOK_TIMEOUT"]

NOTEBOOK_TIMEOUT = "NotebookTimeout"
CELL_TIMEOUT = "CellTimeoutError"
KERNEL_DIED = "DeadKernelError"


def error_output(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


class GradingExecutor(NotebookClient):
    """Executes a notebook for grading; see the module docstring."""

    notebook_timeout = Integer(600, help="Seconds the whole notebook may run.").tag(config=True)
    progress_file = Unicode("", help="JSON-lines file: one line per code cell, written as it finishes.").tag(
        config=True
    )
    output_limit_cell = Integer(256 * 1024, help="Bytes of output kept per cell.").tag(config=True)
    output_limit_notebook = Integer(2048 * 1024, help="Bytes of output kept per notebook.").tag(config=True)
    record_limit_notebook = Integer(64 * 1024 * 1024, help="Bytes of check values per notebook.").tag(
        config=True
    )

    # -- the run ----------------------------------------------------------------------------------
    def grade(self) -> NotebookNode:
        """Run every code cell in order, within the limits; return the notebook with its outputs."""
        self.reset_execution_trackers()
        self._deadline = time.monotonic() + self.notebook_timeout
        self._cell_limit = self.timeout
        self._stopped: tuple[str, str] | None = None
        self._sizes: dict[int, int] = {}
        self._notebook_size = 0
        self._record_size = 0
        self._dropped: dict[int, int] = {}
        self._records: dict[int, list] = {}
        self._replies: dict[int, str] = {}
        with open(self.progress_file, "a", encoding="utf-8") as self._progress:  # noqa: SIM117
            with self.setup_kernel():
                for index, cell in enumerate(self.nb.cells):
                    self._grade_cell(cell, index)
        return self.nb

    async def async_start_new_kernel_client(self):
        client = await super().async_start_new_kernel_client()
        close = getattr(self.km, "close_channel_folder", None)
        if close is not None:
            close()  # the kernel's sockets exist now: learner code may not add files there
        return client

    start_new_kernel_client = run_sync(async_start_new_kernel_client)

    def _grade_cell(self, cell, index: int) -> None:
        if cell.cell_type != "code" or not cell.source.strip():
            return
        if self._stopped is None and time.monotonic() >= self._deadline:
            self._stopped = (
                NOTEBOOK_TIMEOUT,
                f"not run: the notebook reached its time limit of {self.notebook_timeout} s",
            )
        if self._stopped is not None:
            cell.outputs = [error_output(*self._stopped)]
            cell.execution_count = None
            self._record(cell, index, "not_run")
            return
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
            self.execute_cell(cell, index, store_history=True)
        except DeadKernelError:
            cell.outputs.append(error_output(KERNEL_DIED, "the kernel died while running this cell"))
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

    # -- what the kernel sends ------------------------------------------------------------------
    def output(self, outs, msg, display_id, cell_index):
        """Keep an output within the cell's and the notebook's limits; take check values aside."""
        try:
            out = output_from_msg(msg)
        except ValueError:
            return None
        data = out.get("data", {})
        if RECORD_MIME in data:
            size = len(json.dumps(data[RECORD_MIME]))
            self._record_size += size
            within = self._record_size <= self.record_limit_notebook
            self._records.setdefault(cell_index, []).append(
                data[RECORD_MIME] if within else {"oversized": size}
            )
            return None  # check values never stay in the notebook
        if out.get("output_type") == "error":  # always kept, so an error cannot hide behind a flood
            out["evalue"] = str(out.get("evalue", ""))[:2000]
            out["traceback"] = [str(line)[:500] for line in out.get("traceback", [])[:50]]
            outs.append(out)
            return out
        size = len(json.dumps(out))
        used = self._sizes.get(cell_index, 0)
        if used + size > self.output_limit_cell or self._notebook_size + size > self.output_limit_notebook:
            self._dropped[cell_index] = self._dropped.get(cell_index, 0) + size
            return None
        self._sizes[cell_index] = used + size
        self._notebook_size += size
        if self.clear_before_next_output:
            outs[:] = []
            self.clear_before_next_output = False
        outs.append(out)
        return out

    async def _check_raise_for_error(self, cell, cell_index, exec_reply):
        content = (exec_reply or {}).get("content", {})
        status = str(content.get("status", ""))[:20]
        self._replies[cell_index] = status
        name = str(content.get("ename", "Error"))[:100]
        if status == "error" and not any(
            o.get("output_type") == "error" and o.get("ename") == name for o in cell.outputs
        ):
            # a time limit (the reply is the grader's), or an error whose output was not shown: keep it
            cell.outputs.append(error_output(name, str(content.get("evalue", ""))[:2000]))

    def handle_comm_msg(self, outs, msg, cell_index):
        """Widgets are not graded: their messages cannot redirect or rewrite outputs."""
        return None

    def _update_display_id(self, display_id, msg):
        """An output never changes after its cell: updates of earlier displays are ignored."""
        return None

    # -- the grader's record ----------------------------------------------------------------------
    def _record(self, cell, index: int, state: str) -> None:
        meta = cell.metadata.get("nbgrader", {})
        errors = [
            {
                "ename": str(o.get("ename", ""))[:100],
                "evalue": str(o.get("evalue", ""))[:500],
                "line": first_cell_line(o.get("traceback", [])),
            }
            for o in cell.outputs
            if o.get("output_type") == "error"
        ]
        line = {
            "index": index,
            "grade_id": meta.get("grade_id"),
            "state": state,
            "reply": self._replies.pop(index, None),
            "errors": errors,
            "records": self._records.pop(index, []),
            "dropped_output": self._dropped.get(index, 0),
            "exit_code": getattr(self.km, "exit_code", None) if state == "died" else None,
        }
        self._progress.write(json.dumps(line) + "\n")
        self._progress.flush()
