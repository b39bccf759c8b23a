"""nbgrader preprocessors used by ``mlsd.grading`` during autograde (imported in the child process only).

- :class:`GradingExecute` runs the notebook like nbgrader's ``Execute`` but enforces a whole-notebook
  limit, survives a dead or unresponsive kernel (the cells after it are marked as not run instead of
  failing the whole autograde), keeps each cell's and the notebook's output within limits, takes
  check values (see :mod:`mlsd.grading.extraction`) out of the outputs, ignores widget messages and
  display updates, and appends one line per executed cell to a progress file: the grader's own
  record of how each cell ran and what it sent. Scores are computed from that file by the grader,
  never inside this process's notebook.
- :class:`TruncateOutputs` bounds every output kept for graders (a 10 MB print is cut to ``max_chars``).
"""

from __future__ import annotations

import json
import math
import time

from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbformat.v4 import output_from_msg
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from traitlets import Integer, Unicode

from mlsd.grading._common import first_cell_line
from mlsd.grading.extraction import MIME_TYPE as RECORD_MIME

NOTEBOOK_TIMEOUT = "NotebookTimeout"
CELL_TIMEOUT = "CellTimeoutError"
KERNEL_DIED = "DeadKernelError"


def error_output(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


class GradingExecute(Execute):
    """nbgrader's ``Execute`` with limits, dead-kernel handling and the grader's record of each cell."""

    notebook_timeout = Integer(
        600, help="Seconds the whole notebook may run; cells not reached by then are not run."
    ).tag(config=True)
    progress_file = Unicode("", help="JSON-lines file: one line per code cell, written as it finishes.").tag(
        config=True
    )
    output_limit_cell = Integer(256 * 1024, help="Bytes of output kept per cell.").tag(config=True)
    output_limit_notebook = Integer(2048 * 1024, help="Bytes of output kept per notebook.").tag(config=True)
    record_limit_notebook = Integer(64 * 1024 * 1024, help="Bytes of check values per notebook.").tag(
        config=True
    )

    def preprocess(self, nb, resources=None, km=None):
        self._deadline = time.monotonic() + self.notebook_timeout
        self._cell_limit = self.timeout
        self._stopped: tuple[str, str] | None = None
        self._sizes: dict[int, int] = {}
        self._notebook_size = 0
        self._record_size = 0
        self._dropped: dict[int, int] = {}
        self._records: dict[int, list] = {}
        self._replies: dict[int, str] = {}
        self._progress = open(self.progress_file, "a", encoding="utf-8") if self.progress_file else None  # noqa: SIM115
        try:
            return super().preprocess(nb, resources, km)
        finally:
            if self._progress is not None:
                self._progress.close()

    async def async_start_new_kernel_client(self):
        client = await super().async_start_new_kernel_client()
        close = getattr(self.km, "close_channel_folder", None)
        if close is not None:
            close()  # the kernel's sockets exist now: learner code may not add files there
        return client

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
        self._replies[cell_index] = str(content.get("status", ""))[:20]
        return await super()._check_raise_for_error(cell, cell_index, exec_reply)

    def handle_comm_msg(self, outs, msg, cell_index):
        """Widgets are not graded: their messages cannot redirect or rewrite outputs."""
        return None

    def _update_display_id(self, display_id, msg):
        """An output never changes after its cell: updates of earlier displays are ignored."""
        return None

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
        return cell, resources

    def _record(self, cell, index: int, state: str) -> None:
        if self._progress is None:
            return
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
