"""Execute notebooks top to bottom in a fresh kernel, as CI and `mlsd course run` do.

A run records wall time, the kernel's peak memory and, on failure, the cell that
failed with its error, so a broken notebook is reported as
``labs/02_data_engineering.ipynb, cell 14: KeyError: 'month'``.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from mlsd.config import repo_root

if TYPE_CHECKING:
    from types import ModuleType


def _nbclient() -> tuple[ModuleType, ModuleType]:
    """nbformat and nbclient (half a second or more), imported when a notebook runs: every session
    notebook imports mlsd.course, which imports this module, and none of them runs notebooks."""
    import nbclient
    import nbclient.exceptions
    import nbformat

    return nbformat, nbclient


__all__ = ["NotebookRun", "discover_notebooks", "run_notebook", "NOTEBOOK_FOLDERS"]

NOTEBOOK_FOLDERS = ("01_materials", "03_instructional_team")
# Assignment sources run under the autograder (see mlsd.grading), not as plain notebooks.
SKIPPED_FOLDERS = ("nbgrader",)
KERNEL_NAME = "python3"


@dataclass
class NotebookRun:
    """Outcome of one notebook execution."""

    path: Path
    status: str = "passed"  # "passed", "failed" or "timed_out"
    seconds: float = 0.0
    peak_memory_mb: float = 0.0
    cell: int | None = None  # 1-based index among all cells of the failing cell
    error: str = ""
    notebook: object = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.status == "passed"

    def describe(self) -> str:
        """One line for tables and assertion messages."""
        try:
            name = self.path.relative_to(repo_root())
        except ValueError:
            name = self.path
        if self.ok:
            return f"{name}: passed in {self.seconds:.1f} s"
        return f"{name}, cell {self.cell}: {self.error}"


def discover_notebooks(root: Path | None = None, folders: tuple[str, ...] = NOTEBOOK_FOLDERS) -> list[Path]:
    """Every ``.ipynb`` under the given top-level folders, sorted; checkpoints and assignment sources skipped."""
    root = root or repo_root()
    skipped = {".ipynb_checkpoints", *SKIPPED_FOLDERS}
    found = []
    for folder in folders:
        found += [p for p in (root / folder).rglob("*.ipynb") if not skipped & set(p.relative_to(root).parts)]
    return sorted(found)


class _PeakMemory(threading.Thread):
    """Samples the resident memory of a process and its children."""

    def __init__(self, pid: int, interval: float = 0.1):
        super().__init__(daemon=True)
        self.pid, self.interval, self.peak = pid, interval, 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        try:
            proc = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self._stop_event.is_set():
            try:
                rss = proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                rss = 0
            self.peak = max(self.peak, rss)
            self._stop_event.wait(self.interval)

    def stop(self) -> float:
        self._stop_event.set()
        self.join(timeout=2)
        return self.peak / 2**20


def run_notebook(
    path: str | os.PathLike,
    *,
    cell_timeout: int = 300,
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike | None = None,
    output_path: str | os.PathLike | None = None,
) -> NotebookRun:
    """Execute a notebook in a fresh kernel and report how it went.

    Parameters
    ----------
    path : path-like
        The notebook to run; it is not modified.
    cell_timeout : int
        Seconds one cell may take before the run counts as ``timed_out``.
    env : dict, optional
        Extra environment variables for the kernel (e.g. ``DATABASE_URL``).
    cwd : path-like, optional
        Working directory of the kernel; the notebook's folder by default, as in VS Code.
    output_path : path-like, optional
        Where to write the executed notebook (with outputs).
    """
    nbformat, nbclient = _nbclient()
    NotebookClient = nbclient.NotebookClient
    CellExecutionError, CellTimeoutError, DeadKernelError = (
        nbclient.exceptions.CellExecutionError,
        nbclient.exceptions.CellTimeoutError,
        nbclient.exceptions.DeadKernelError,
    )
    path = Path(path).resolve()
    run = NotebookRun(path=path)
    nb = nbformat.read(path, as_version=4)
    sampler: list[_PeakMemory] = []

    def on_start(**_):
        provisioner = getattr(client.km, "provisioner", None)
        pid = getattr(getattr(provisioner, "process", None), "pid", None)
        if pid:
            sampler.append(_PeakMemory(pid))
            sampler[0].start()

    client = NotebookClient(
        nb,
        timeout=cell_timeout,
        kernel_name=KERNEL_NAME,
        resources={"metadata": {"path": str(Path(cwd) if cwd else path.parent)}},
        on_notebook_start=on_start,
        # ipykernel 7 warns on every start that local TCP is unencrypted; errors still show.
        extra_arguments=["--IPKernelApp.log_level=ERROR"],
    )
    # Idle OpenMP threads spin by default; on a busy 2-core machine that slows tree models 50-fold.
    kernel_env = {"OMP_WAIT_POLICY": "passive", **os.environ, **(env or {})}
    kernel_env.pop("JPY_PARENT_PID", None)
    started = time.perf_counter()
    try:
        client.execute(env=kernel_env)
    except CellTimeoutError as err:
        run.status, run.error = "timed_out", f"a cell ran longer than {cell_timeout} s ({err})"
    except DeadKernelError as err:
        run.status, run.error = "failed", f"the kernel died: {err}"
    except CellExecutionError as err:
        run.status = "failed"
        run.error = f"{err.ename}: {err.evalue}"
    finally:
        run.seconds = time.perf_counter() - started
        if sampler:
            run.peak_memory_mb = sampler[0].stop()
    if not run.ok:
        run.cell = _failing_cell(nb)
    run.notebook = nb
    if output_path is not None:
        Path(output_path).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, output_path)
    return run


def _failing_cell(nb) -> int | None:
    """1-based index of the first cell with an error output, else the last executed cell."""
    last = None
    for index, cell in enumerate(nb.cells, start=1):
        if cell.cell_type != "code":
            continue
        if any(out.get("output_type") == "error" for out in cell.get("outputs", [])):
            return index
        if cell.get("execution_count"):
            last = index
    # A timed-out cell has no error output: it is the one after the last finished cell.
    code_indices = [i for i, c in enumerate(nb.cells, start=1) if c.cell_type == "code"]
    later = [i for i in code_indices if last is None or i > last]
    return later[0] if later else last
