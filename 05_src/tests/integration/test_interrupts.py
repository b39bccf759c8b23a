"""Ctrl-C and SIGTERM on long commands: a real signal to a real process group, as a terminal sends it.

Each test starts the command in a session of its own (like a shell job), sends the signal to
the whole group once the command is busy, and checks what a person at the terminal sees (exit
code 130 or 143, one line naming where it stopped, no traceback) and what is left behind (no
kernel, no process it started, no half-done load).
"""

from __future__ import annotations

import contextlib
import os
import pty
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import nbformat
import psutil
import pytest

from mlsd import db

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]


class Job:
    """A command in its own process group, with a pseudo-terminal (progress shows) or pipes."""

    def __init__(self, argv: list[str], env: dict[str, str], *, terminal: bool = False):
        self.output = b""
        full_env = {**os.environ, **env}
        if terminal:
            main, child = pty.openpty()
            self.proc = subprocess.Popen(
                argv, stdin=child, stdout=child, stderr=child, env=full_env, cwd=REPO, start_new_session=True
            )
            os.close(child)
            self._reader = threading.Thread(target=self._read_terminal, args=(main,), daemon=True)
            self._reader.start()
        else:
            self.proc = subprocess.Popen(
                argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                env=full_env,
                cwd=REPO,
                start_new_session=True,
            )
            self._reader = None

    def _read_terminal(self, main: int) -> None:
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:
                break
            if not chunk:
                break
            self.output += chunk
        os.close(main)

    def text(self) -> str:
        return self.output.decode(errors="replace")

    def wait_for(self, condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"the command ended ({self.proc.returncode}) before {what}: {self.text()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} within {timeout} s: {self.text()[-2000:]}")
            time.sleep(0.2)

    def descendants(self) -> list[psutil.Process]:
        with contextlib.suppress(psutil.NoSuchProcess):
            return psutil.Process(self.proc.pid).children(recursive=True)
        return []

    def signal_group(self, signum: int) -> None:
        os.killpg(self.proc.pid, signum)  # what a terminal does on Ctrl-C: the whole foreground group

    def finish(self, timeout: float = 120) -> tuple[int, str]:
        if self._reader is None:
            out, err = self.proc.communicate(timeout=timeout)
            self.output = out + err
        else:
            self.proc.wait(timeout=timeout)
            self._reader.join(timeout=10)
        return self.proc.returncode, self.text()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)


def gone(procs: list[psutil.Process], timeout: float = 10) -> list[psutil.Process]:
    """The processes of ``procs`` still running after ``timeout`` (zombies count as gone)."""
    deadline = time.monotonic() + timeout
    alive = procs
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        time.sleep(0.2)
    return alive


def talks_to(proc: psutil.Process, port: int | None) -> bool:
    """Whether ``proc`` has a connection to ``port`` (the test database's)."""
    with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
        return any(c.raddr and c.raddr.port == port for c in proc.net_connections("tcp"))
    return False


def kernels(procs: list[psutil.Process]) -> list[psutil.Process]:
    found = []
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            if "ipykernel_launcher" in " ".join(proc.cmdline()):
                found.append(proc)
    return found


@pytest.fixture(scope="module")
def course_env(databases, tmp_path_factory) -> dict[str, str]:
    """A database, data folder and MLflow store of their own, tiny scale, data loaded once."""
    root = tmp_path_factory.mktemp("interrupts")
    env = {
        "DATABASE_URL": databases.create(),
        "MLSD_SCALE": "tiny",
        "MLSD_DATA_DIR": str(root / "data"),
        "MLSD_LOG_DIR": str(root / "logs"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
    }
    loaded = subprocess.run(
        [sys.executable, "-m", "mlsd.cli", "data", "load", "--scale", "tiny"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    return env


MLSD = {
    "python -m mlsd.cli": [sys.executable, "-m", "mlsd.cli"],
    # uv forwards the signal to mlsd too, so mlsd gets Ctrl-C twice: once from the terminal, once from uv
    "uv run mlsd": [shutil.which("uv") or "uv", "run", "--no-sync", "--quiet", "mlsd"],
}


@pytest.mark.parametrize("launcher", list(MLSD))
def test_ctrl_c_in_course_run_stops_the_kernel_and_names_the_notebook(launcher, course_env, tmp_path):
    if launcher.startswith("uv") and shutil.which("uv") is None:
        pytest.skip("uv is not on PATH")
    job = Job([*MLSD[launcher], "course", "run", "--only", "2", "--out", str(tmp_path)], course_env)
    try:
        job.wait_for(lambda: kernels(job.descendants()), 180, "kernel")
        kernel = kernels(job.descendants())[0]
        # Cells are running once the kernel talks to the database (its first cells connect);
        # a fixed delay would be too short on a busy machine.
        port = urlsplit(course_env["DATABASE_URL"]).port
        job.wait_for(lambda: talks_to(kernel, port), 180, "kernel running cells")
        time.sleep(1)
        tree = [kernel, *kernel.children(recursive=True)]
        job.signal_group(signal.SIGINT)
        code, text = job.finish()
    finally:
        job.kill()
    assert code == 130, text
    assert "Interrupted (Ctrl-C) in 02_data_engineering.ipynb at cell " in text
    assert "its kernel is stopped" in text
    for noise in ("Traceback", "ZMQError", "DeadKernelError", "AssertionError"):
        assert noise not in text, text
    assert gone(tree) == [], "the kernel (or a process it started) outlived the interrupted run"


def _notebook(path: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    nbformat.write(nb, path)
    return path


DRIVER = """
import sys
from mlsd.notebooks import NotebookInterrupted, run_notebook
try:
    run_notebook(sys.argv[1])
except NotebookInterrupted as err:
    print(err.where, file=sys.stderr)
    sys.exit(128 + err.signum)
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_notebook_takes_what_its_kernel_started_with_it(signum, tmp_path):
    """A kernel's own child in a session of its own (a server a lesson starts) ends with the run too."""
    pid_file = tmp_path / "child.pid"
    notebook = _notebook(
        tmp_path / "starts_a_server.ipynb",
        "import subprocess, time",
        f"child = subprocess.Popen(['sleep', '600'], start_new_session=True)\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))",
        "time.sleep(600)",
    )
    job = Job([sys.executable, "-c", DRIVER, str(notebook)], {})
    try:
        job.wait_for(pid_file.exists, 120, "child process")
        child = psutil.Process(int(pid_file.read_text()))
        kernel = kernels(job.descendants())[0]
        time.sleep(1)  # into the last cell
        job.proc.send_signal(signum)  # to the parent only, as `kill PID` does
        code, text = job.finish()
    finally:
        job.kill()
    assert code == 128 + signum, text
    assert "in starts_a_server.ipynb at cell 3 of 3" in text and "Traceback" not in text
    assert gone([kernel, child]) == []


def test_ctrl_c_in_data_load_rolls_back_and_says_where(databases, tmp_path):
    url = databases.create()
    env = {"DATABASE_URL": url, "MLSD_DATA_DIR": str(tmp_path / "data"), "MLSD_LOG_DIR": str(tmp_path)}
    job = Job([sys.executable, "-m", "mlsd.cli", "data", "load", "--scale", "small"], env, terminal=True)
    try:
        job.wait_for(lambda: "[2/" in job.text(), 300, "second landing file loading")
        job.signal_group(signal.SIGINT)
        code, text = job.finish()
    finally:
        job.kill()
    assert code == 130, text
    assert "Interrupted (Ctrl-C) in stage 'loading small_seed42'" in text
    assert "Traceback" not in text
    conn = db.connect(url)
    try:
        loaded = db.read_sql(conn, "SELECT to_regclass('bronze.load_log') IS NOT NULL AS loaded").iloc[0, 0]
    finally:
        conn.close()
        databases.drop(url)
    assert not loaded, "an interrupted load must leave nothing behind (one transaction)"


def test_ctrl_c_in_train_says_which_stage_and_leaves_no_worker(course_env):
    job = Job([sys.executable, "-m", "mlsd.cli", "train", "--n-iter", "6"], course_env, terminal=True)
    try:
        job.wait_for(lambda: "tuning gradient boosting" in job.text(), 300, "tuning stage")
        time.sleep(1)
        tree = job.descendants()
        job.signal_group(signal.SIGINT)
        code, text = job.finish()
    finally:
        job.kill()
    assert code == 130, text
    assert "Interrupted (Ctrl-C) in stage 'tuning gradient boosting (random search, 6 candidates" in text
    assert "Traceback" not in text
    assert gone(tree) == []
