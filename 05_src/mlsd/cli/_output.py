"""What the ``mlsd`` command prints: tables, messages and the exit codes that go with them.

Exit codes: 0 done; 1 an expected fault, with a message that says what to do next; 2 a usage
error (argparse's own, or :func:`usage_error`); 130 interrupted.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence

__all__ = ["Interrupted", "error", "fail", "interrupted", "print_table", "say", "usage_error"]


def print_table(rows: Sequence[Sequence[object]], headers: Sequence[str]) -> None:
    """Print rows as an aligned plain-text table.

    Examples
    --------
    >>> print_table([("bronze", 4), ("gold", 1)], ["schema", "tables"])
    schema  tables
    ------  ------
    bronze  4
    gold    1
    """
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))


def say(message: str) -> None:
    """Print a progress or result line now (flushed: a long command shows where it is)."""
    print(message, flush=True)


def fail(message: str, code: int = 1) -> int:
    """Print why a command cannot go on and what to do (on standard output); return ``code``."""
    print(message)
    return code


def usage_error(message: str) -> int:
    """Print a usage problem argparse cannot see (on standard error); return 2."""
    print(message, file=sys.stderr)
    return 2


def error(message: object) -> None:
    """Print an error line on standard error: ``error: <message>``."""
    print(f"error: {message}", file=sys.stderr)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) or SIGTERM stopped a command; ``where`` says what it was doing.

    ``mlsd`` turns SIGTERM into this exception too, so a ``kill`` runs the same clean-up
    (``finally`` blocks, context managers that stop servers and kernels) as Ctrl-C.
    """

    def __init__(self, signum: int | None = None, where: str = ""):
        super().__init__(where)
        self.signum = int(signum or signal.SIGINT)
        self.where = where


def interrupted(err: BaseException) -> int:
    """Say that the command was interrupted, and where (on standard error); return 128 + the signal.

    Examples
    --------
    >>> import contextlib, io
    >>> with contextlib.redirect_stderr(io.StringIO()) as err:
    ...     code = interrupted(Interrupted(signal.SIGTERM, "in stage 'loading' after 2.0 s"))
    >>> code, err.getvalue().strip()
    (143, "Interrupted (SIGTERM) in stage 'loading' after 2.0 s.")
    """
    signum = int(getattr(err, "signum", None) or signal.SIGINT)
    name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
    where = str(getattr(err, "where", "") or "").strip()
    print(f"Interrupted ({name}){' ' + where if where else ''}.", file=sys.stderr, flush=True)
    return 128 + signum
