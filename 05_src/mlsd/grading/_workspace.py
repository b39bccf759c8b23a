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
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from mlsd.grading._common import KERNEL_NAME, GradingError

# Environment variables passed to nbgrader and the kernel; nothing else (no tokens, no secrets).
_PASSED_ENV = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
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
    "USERPROFILE",
    "APPDATA",
    "LOCALAPPDATA",
    "PROGRAMDATA",
    "XDG_CACHE_HOME",
    "MPLCONFIGDIR",
    "VIRTUAL_ENV",
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


def _kernel_env(root: Path, extra: Mapping[str, str] | None) -> dict[str, str]:
    """A small, explicit environment; Jupyter and IPython settings of the machine are not read."""
    env = {k: os.environ[k] for k in _PASSED_ENV if k in os.environ}
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])  # nbgrader runs `alembic` from PATH
    jupyter = root / "jupyter"
    kernel_dir = jupyter / "data" / "kernels" / KERNEL_NAME
    kernel_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    (kernel_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    env.update(
        {
            "JUPYTER_PATH": str(jupyter / "data"),
            "JUPYTER_DATA_DIR": str(jupyter / "data"),
            "JUPYTER_CONFIG_DIR": str(jupyter / "config"),
            "JUPYTER_RUNTIME_DIR": str(jupyter / "runtime"),
            "IPYTHONDIR": str(root / "ipython"),
            "PYTHONHASHSEED": "0",
            "PYTHONIOENCODING": "utf-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "MPLBACKEND": "Agg",
            "MLSD_DATA_DIR": str(root / "data"),
            "MLSD_LOG_DIR": str(root / "logs"),
            "MLFLOW_TRACKING_URI": f"sqlite:///{(root / 'mlflow.db').as_posix()}",
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


def run_child(
    job: dict,
    root: Path,
    *,
    env: Mapping[str, str] | None = None,
    kill_after: float | None = None,
) -> ChildRun:
    """Run ``python -m mlsd.grading._runner`` for ``job``; kill it when it overruns.

    ``kill_after`` counts from the moment autograde starts (the child writes a ``phase`` file);
    before that, the child has :data:`STARTUP_LIMIT` seconds.
    """
    work = Path(job["work"])
    work.mkdir(parents=True, exist_ok=True)
    job_file = work / "job.json"
    job_file.write_text(json.dumps(job), encoding="utf-8")
    log_path = work / "child.log"
    started = time.monotonic()
    phase_started: float | None = None
    killed = False
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlsd.grading._runner", str(job_file)],
            cwd=str(job["course"]),
            env=_kernel_env(root, env),
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


# -- the scratch database -------------------------------------------------------------


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    """Create an empty database on the server of ``server_url``; yield its URL; drop it afterwards."""
    import psycopg2
    from psycopg2 import sql

    from mlsd.db import describe_url

    name = f"mlsd_grade_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg2.connect(server_url, connect_timeout=10)
    except psycopg2.Error as err:
        raise GradingError(
            f"The grader cannot reach PostgreSQL at {describe_url(server_url)} to create a scratch "
            f"database ({' '.join(str(err).split())[:200]}). Start it (`uv run mlsd db up`) or set "
            "DATABASE_URL to a server where the grader may CREATE DATABASE."
        ) from None
    try:
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg2.Error as err:
        admin.close()
        raise GradingError(
            f"The grader cannot create a scratch database on {describe_url(server_url)} "
            f"({' '.join(str(err).split())[:200]}): its role needs the CREATEDB right."
        ) from None
    try:
        yield _with_database(server_url, name)
    finally:
        try:
            with admin.cursor() as cur:
                cur.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (name,),
                )
                cur.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        except psycopg2.Error:
            pass  # a database left behind costs disk space, never a wrong grade
        finally:
            admin.close()
