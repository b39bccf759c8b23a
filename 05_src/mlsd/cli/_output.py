"""What the ``mlsd`` command prints: tables, messages and the exit codes that go with them.

Exit codes: 0 done; 1 an expected fault, with a message that says what to do next; 2 a usage
error (argparse's own, or :func:`usage_error`); 130 interrupted.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["error", "fail", "print_table", "say", "usage_error"]


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
