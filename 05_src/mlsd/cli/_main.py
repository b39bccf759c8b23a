"""The ``mlsd`` parser, built from the command modules, and :func:`main`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mlsd.cli import course, data, db, doctor, grade, mlflow, model, quiz
from mlsd.cli._output import error
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
        return int(func(args) or 0)
    except MLSDError as err:
        error(err)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
