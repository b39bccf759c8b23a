"""Progress of long commands: readable on a terminal, silent otherwise, and named when interrupted."""

from __future__ import annotations

import argparse
import io
import os
import pty
import select
import signal
import subprocess
import sys
import time

import pytest

from mlsd.cli._output import Interrupted, interrupted
from mlsd.cli._progress import Progress


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def lines(text: str) -> list[str]:
    """What a terminal shows: each carriage return and erase starts the line afresh."""
    shown = []
    for line in text.split("\n"):
        shown.append(line.split("\r\x1b[K")[-1])
    return [line for line in shown if line]


def test_stages_leave_one_line_each_with_their_time():
    out = Terminal()
    with Progress.for_args(argparse.Namespace(quiet=False), stream=out) as progress:
        progress.start("database")
        progress.done("ready")
        progress.start("[1/2] 02_data.ipynb")
        progress.update("cell 3/10")
        time.sleep(1.1)
        progress.done("passed")
    shown = lines(out.getvalue())
    assert shown[0].startswith("database: ready (") and shown[0].endswith(" s)")
    assert shown[-1].startswith("[1/2] 02_data.ipynb: passed (1.")
    assert "[1/2] 02_data.ipynb: cell 3/10 ..." in out.getvalue()


def test_a_long_stage_is_redrawn_with_its_elapsed_time():
    out = Terminal()
    progress = Progress(enabled=True, stream=out, interval=0.05)
    progress.start("tuning")
    time.sleep(1.3)
    progress.close()
    assert "tuning ... 1 s" in out.getvalue()
    assert out.getvalue().count("\r\x1b[Ktuning ...") > 10  # redrawn while nothing else happened


@pytest.mark.parametrize(
    "stream, quiet", [(Terminal(), True), (io.StringIO(), False)], ids=["--quiet", "not a terminal"]
)
def test_quiet_with_the_option_or_without_a_terminal(stream, quiet):
    with Progress.for_args(argparse.Namespace(quiet=quiet), stream=stream) as progress:
        progress.start("database")
        progress.update("starting")
        progress.done("ready")
    assert stream.getvalue() == ""


def test_an_interrupt_names_the_stage_it_stopped(capsys):
    with pytest.raises(Interrupted) as info, Progress(enabled=False) as progress:
        progress.start("loading small_seed42")
        progress.update("[3/120] applications/month=2024-03/part-0.parquet")
        raise KeyboardInterrupt
    assert interrupted(info.value) == 130
    err = capsys.readouterr().err
    assert err.startswith("Interrupted (Ctrl-C) in stage 'loading small_seed42' ([3/120] applications/")


def _run_in_terminal(argv: list[str], timeout: float = 120) -> tuple[int, str]:
    """Run a command with a pseudo-terminal as its stdout and stderr; return its code and what it showed."""
    main, child = pty.openpty()
    proc = subprocess.Popen(argv, stdin=child, stdout=child, stderr=child, close_fds=True)
    os.close(child)
    shown, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # the command closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        elif proc.poll() is not None:
            break
    os.close(main)
    return proc.wait(timeout=30), shown.decode(errors="replace")


def test_a_real_command_shows_progress_on_a_terminal_only(tmp_path):
    generate = [sys.executable, "-m", "mlsd.cli", "data", "generate", "--scale", "tiny"]

    code, shown = _run_in_terminal([*generate, "--out", str(tmp_path / "a")])
    assert code == 0, shown
    assert "generating the landing files (tiny, seed 42) ..." in shown
    assert "applications" in shown  # the table, on standard output

    result = subprocess.run(
        [*generate, "--out", str(tmp_path / "b")], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0
    assert result.stderr == ""  # no terminal: no progress
    assert result.stdout.splitlines()[0].startswith("Landing files in ")
    assert "applications" in result.stdout

    code, shown = _run_in_terminal([*generate, "--out", str(tmp_path / "c"), "--quiet"])
    assert code == 0 and "generating" not in shown and "applications" in shown


def test_sigterm_is_an_interrupt_too():
    assert interrupted(Interrupted(signal.SIGTERM)) == 143
