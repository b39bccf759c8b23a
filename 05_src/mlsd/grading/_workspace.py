"""The temporary course, the child process that runs nbgrader, and the scratch database.

A grading run never happens inside the repository or the learner's checkout: the course's
``nbgrader_config.py`` and one assignment's sources are copied into a new temporary folder,
the kernel's working directory is inside that copy, and the gradebook lives in a sibling folder
that the kernel's relative paths do not reach.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

# Environment variables the grading child process keeps (nothing else: no tokens, no secrets).
_PASSED_ENV = (
    "PATH",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "TEMP",
    "TMP",
    "LD_LIBRARY_PATH",
    "SYSTEMROOT",
    "SYSTEMDRIVE",
    "WINDIR",
    "COMSPEC",
    "PATHEXT",
)

STARTUP_LIMIT = 300  # seconds for Python, nbgrader and generate_assignment to be ready
KILL_GRACE = 60  # seconds past the notebook limit before the child is killed (kernel start, saving)


@dataclass
class ChildRun:
    """How the child process ended."""

    returncode: int | None
    killed: bool
    seconds: float
    setup_seconds: float  # from start to the beginning of autograde (nbgrader overhead before executing)
    outcome: dict
    log: str


def copy_course(course: Path, assignment: str, root: Path) -> Path:
    """Copy ``nbgrader_config.py`` and ``source/<assignment>`` of ``course`` into ``root/course``."""
    target = root / "course"
    (target / "source").mkdir(parents=True)
    config = Path(course) / "nbgrader_config.py"
    if config.is_file():
        shutil.copy2(config, target / "nbgrader_config.py")
    else:
        (target / "nbgrader_config.py").write_text("c = get_config()  # noqa: F821\n", encoding="utf-8")
    shutil.copytree(
        Path(course) / "source" / assignment,
        target / "source" / assignment,
        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "*.pyc"),
    )
    return target


def _child_env(root: Path, jupyter_path: str, extra: Mapping[str, str] | None) -> dict[str, str]:
    """The grading child's environment: small and explicit; the kernel gets its own (see ``_kernel``)."""
    env = {k: os.environ[k] for k in _PASSED_ENV if k in os.environ}
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])
    env.update(
        {
            "HOME": str(root),
            "JUPYTER_PATH": jupyter_path,
            "JUPYTER_DATA_DIR": str(root / "jupyter-data"),
            "JUPYTER_CONFIG_DIR": str(root / "jupyter-config"),
            "JUPYTER_RUNTIME_DIR": str(root / "jupyter-runtime"),
            "IPYTHONDIR": str(root / "ipython"),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONIOENCODING": "utf-8",
        }
    )
    env.update(dict(extra or {}))
    return env


def _kill_tree(pid: int) -> None:
    """Kill a process and every process it started (the kernel runs in its own session)."""
    import psutil

    try:
        parent = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    procs = [parent]
    with suppress(psutil.NoSuchProcess):
        procs += parent.children(recursive=True)
    for proc in procs:
        with suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(procs, timeout=10)


class _CellCounter:
    """Counts the lines of the progress file as the child appends them, for ``on_cells``."""

    def __init__(self, path: Path, on_cells: Callable[[int], None] | None):
        self.path, self.on_cells, self.size, self.count = path, on_cells, 0, 0

    def poll(self) -> None:
        if self.on_cells is None:
            return
        try:
            size = self.path.stat().st_size
        except OSError:
            return
        if size > self.size:  # read only what was appended since the last look
            with open(self.path, "rb") as lines:
                lines.seek(self.size)
                added = lines.read(size - self.size)
            self.size = size
            if added.count(b"\n"):
                self.count += added.count(b"\n")
                self.on_cells(self.count)


def run_child(
    job: dict,
    root: Path,
    *,
    jupyter_path: str = "",
    env: Mapping[str, str] | None = None,
    kill_after: float | None = None,
    on_cells: Callable[[int], None] | None = None,
) -> ChildRun:
    """Run ``python -m mlsd.grading._runner`` for ``job``; kill it when it overruns.

    ``kill_after`` counts from the moment autograde starts (the child writes a ``phase`` file);
    before that, the child has :data:`STARTUP_LIMIT` seconds. ``on_cells`` hears how many code
    cells have finished, whenever that number changes (for a progress line; it scores nothing).
    """
    work = Path(job["work"])
    work.mkdir(parents=True, exist_ok=True)
    job_file = work / "job.json"
    job_file.write_text(json.dumps(job), encoding="utf-8")
    log_path = work / "child.log"
    started = time.monotonic()
    phase_started: float | None = None
    killed = False
    cells = _CellCounter(work / "progress.jsonl", on_cells)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlsd.grading._runner", str(job_file)],
            cwd=str(job.get("course", work)),
            env=_child_env(root, jupyter_path or str(root / "jupyter"), env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            while proc.poll() is None:
                now = time.monotonic()
                if phase_started is None and (work / "phase").exists():
                    phase_started = now
                if (
                    phase_started is None
                    and now - started > STARTUP_LIMIT
                    or (
                        phase_started is not None
                        and kill_after is not None
                        and now - phase_started > kill_after
                    )
                ):
                    killed = True
                if killed:
                    _kill_tree(proc.pid)
                    break
                cells.poll()
                time.sleep(0.1)
        finally:
            if proc.poll() is None:
                _kill_tree(proc.pid)
            proc.wait()
    seconds = time.monotonic() - started
    outcome_path = work / "outcome.json"
    outcome = json.loads(outcome_path.read_text(encoding="utf-8")) if outcome_path.is_file() else {}
    text = log_path.read_text(encoding="utf-8", errors="replace")
    nb_log = work / "nbgrader.log"
    if nb_log.is_file():
        text += nb_log.read_text(encoding="utf-8", errors="replace")
    setup = (phase_started - started) if phase_started is not None else seconds
    return ChildRun(proc.returncode, killed, seconds, setup, outcome, text)


@contextmanager
def workspace() -> Iterator[Path]:
    """A temporary folder for one grading run, removed afterwards (also on errors)."""
    root = Path(tempfile.mkdtemp(prefix="mlsd-grade-")).resolve()
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)
