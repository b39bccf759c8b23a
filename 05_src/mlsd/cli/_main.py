"""The ``mlsd`` parser, built from the command modules, and :func:`main`."""

from __future__ import annotations

import argparse
import contextlib
import signal
from collections.abc import Iterator, Sequence

from mlsd.cli import course, data, db, doctor, grade, mlflow, model, quiz
from mlsd.cli._output import Interrupted, error, interrupted
from mlsd.errors import MLSDError

__all__ = ["COMMAND_MODULES", "build_parser", "main"]

COMMAND_MODULES = (db, data, course, doctor, model, mlflow, grade, quiz)
"""The modules whose ``commands`` make up ``mlsd``, in the order ``mlsd --help`` lists them."""


def _build() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(
        prog="mlsd",
        description="Design of Machine Learning Systems: course database, data, models and grading.",
        epilog="example:\n  uv run mlsd db up && uv run mlsd db status",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    groups = {}
    for module in COMMAND_MODULES:
        group = module.commands.register(subparsers)
        if group is not None:
            groups[module.commands.group] = group
    return parser, groups


def build_parser() -> argparse.ArgumentParser:
    """The full ``mlsd`` argument parser (tests walk it to check help text)."""
    return _build()[0]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mlsd`` command; returns the exit code."""
    parser, groups = _build()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        # A group without an action: show its help rather than a traceback.
        groups.get(args.command, parser).print_help()
        return 2
    try:
        with _sigterm_interrupts():
            return int(func(args) or 0)
    except MLSDError as err:
        error(err)
        return 1
    except KeyboardInterrupt as err:
        return interrupted(err)


def _raise_interrupted(signum: int, frame) -> None:
    raise Interrupted(signum)


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """Turn SIGTERM into :class:`Interrupted` while a command runs, so ``kill`` cleans up as Ctrl-C does."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_interrupted)
    except ValueError:  # not the main thread (a test calling main() from a worker thread)
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
