"""Progress a person can read while a long command runs: stage names, details, elapsed time.

Shown on standard error, and only when standard error is a terminal and ``--quiet`` was not
given, so standard output stays parseable (tables, URLs) and logs stay clean. A live line is
redrawn every second, so a long stage never looks frozen; a finished stage leaves one line
with its time::

    database: ready (2.8 s)
    [1/2] 02_data_engineering.ipynb: passed (39.1 s, peak 548 MB)
    [2/2] 05_model_development.ipynb: cell 34/80 ... 41 s

A handler makes one with :meth:`Progress.for_args` and uses it as a context manager; the
package reports through callbacks that the handler points at :meth:`Progress.start` and
:meth:`Progress.update`. Ctrl-C (or SIGTERM) inside the block becomes an
:class:`~mlsd.cli._output.Interrupted` that names the stage, which ``mlsd`` prints before
exiting with 130 (143 for SIGTERM).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import threading
import time
from typing import TextIO

from mlsd.cli._commands import Option
from mlsd.cli._output import Interrupted

__all__ = ["QUIET", "Progress"]

QUIET = Option("-q", "--quiet", action="store_true", help="no progress lines on stderr")
"""The ``--quiet`` option of every long command."""

_CLEAR = "\r\x1b[K"  # back to the start of the line and erase it


def _seconds(value: float) -> str:
    return f"{value:.1f} s" if value < 60 else f"{int(value // 60)} min {int(value % 60):02d} s"


class Progress:
    """Stage lines with elapsed time on standard error (see the module docstring).

    Parameters
    ----------
    enabled : bool
        Whether to print at all; stages are tracked either way, for the interrupt message.
    stream : text stream, optional
        Where to print (standard error by default).
    interval : float
        Seconds between redraws of the live line.

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> with Progress(enabled=True, stream=out, interval=60) as progress:
    ...     progress.start("database")
    ...     progress.done("ready")
    >>> out.getvalue().rsplit("\\r\\x1b[K", 1)[-1].split(" (")[0]
    'database: ready'
    """

    def __init__(self, *, enabled: bool, stream: TextIO | None = None, interval: float = 1.0):
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.interval = interval
        self.label: str | None = None
        self.detail = ""
        self.started = time.monotonic()
        self._stage_started = self.started
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def for_args(cls, args: argparse.Namespace, stream: TextIO | None = None) -> Progress:
        """Progress for a command: shown when ``stream`` (stderr) is a terminal and ``--quiet`` is not set."""
        stream = stream or sys.stderr
        interactive = bool(getattr(stream, "isatty", lambda: False)())
        return cls(enabled=interactive and not getattr(args, "quiet", False), stream=stream)

    # -- what a handler calls ---------------------------------------------------------------
    def start(self, label: str, detail: str = "") -> None:
        """Begin a stage (a stage still open is closed first, without a result)."""
        with self._lock:
            if self.label is not None:
                self._finish_line("")
            self.label, self.detail, self._stage_started = label, detail, time.monotonic()
            self._draw()
        self._ensure_ticker()

    def update(self, detail: str) -> None:
        """Change what the current stage says it is doing (``cell 14/87``)."""
        with self._lock:
            self.detail = detail
            self._draw()

    def done(self, result: str = "") -> None:
        """Close the current stage, leaving one line: ``label: result (time)``."""
        with self._lock:
            if self.label is not None:
                self._finish_line(result)
            self.label, self.detail = None, ""

    def clear(self) -> None:
        """Close the current stage without a line (before printing an error or a result)."""
        with self._lock:
            if self.enabled and self.label is not None:
                self.stream.write(_CLEAR)
                self.stream.flush()
            self.label, self.detail = None, ""

    def note(self, text: str) -> None:
        """Print a line of progress of its own (the live line is redrawn under it)."""
        with self._lock:
            if self.enabled:
                self.stream.write(f"{_CLEAR}{text}\n")
                self._draw()

    def echo(self, text: str) -> None:
        """Print a line on standard output, always (a result, not progress), without garbling the live line."""
        with self._lock:
            if self.enabled:
                self.stream.write(_CLEAR)
                self.stream.flush()
            print(text, flush=True)
            self._draw()

    @property
    def where(self) -> str:
        """What the command was doing, for messages: ``in stage 'label' (detail) after 12.3 s``."""
        if self.label is None:
            return ""
        detail = f" ({self.detail})" if self.detail else ""
        return f"in stage '{self.label}'{detail} after {_seconds(time.monotonic() - self._stage_started)}"

    def close(self) -> None:
        """Stop redrawing and clear the live line."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        with self._lock:
            if self.enabled and self.label is not None:
                self.stream.write(_CLEAR)
                self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        where = self.where
        self.close()
        if isinstance(exc, KeyboardInterrupt) and not getattr(exc, "where", ""):
            raise Interrupted(getattr(exc, "signum", None), where) from None

    # -- drawing --------------------------------------------------------------------------------
    def _line(self) -> str:
        elapsed = int(time.monotonic() - self._stage_started)
        text = f"{self.label}: {self.detail}" if self.detail else str(self.label)
        line = f"{text} ... {elapsed} s" if elapsed else f"{text} ..."
        width = shutil.get_terminal_size((100, 20)).columns - 1
        return line if len(line) <= width else line[: max(width - 1, 10)] + "…"

    def _draw(self) -> None:
        if self.enabled and self.label is not None:
            self.stream.write(_CLEAR + self._line())
            self.stream.flush()

    def _finish_line(self, result: str) -> None:
        if not self.enabled:
            return
        took = _seconds(time.monotonic() - self._stage_started)
        text = f"{self.label}: {result}" if result else str(self.label)
        self.stream.write(f"{_CLEAR}{text} ({took})\n")
        self.stream.flush()

    def _ensure_ticker(self) -> None:
        if not self.enabled or self._thread is not None:
            return

        def tick() -> None:
            while not self._stop.wait(self.interval):
                with self._lock:
                    self._draw()

        self._thread = threading.Thread(target=tick, name="mlsd-progress", daemon=True)
        self._thread.start()
