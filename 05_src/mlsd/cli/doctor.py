"""``mlsd doctor``: is this machine ready for the course? (:mod:`mlsd.doctor`)."""

from __future__ import annotations

import argparse

from mlsd.cli._commands import Commands, lazy
from mlsd.cli._output import print_table

doctor = lazy("doctor")  # package modules load when a command runs, so `mlsd --help` stays fast

commands = Commands()

MARKS = {"ok": "OK", "warn": "WARN", "fail": "FAIL"}


@commands.command(
    "doctor",
    "Check Python, packages, the Jupyter kernel, the database, Docker and ports.",
    "uv run mlsd doctor",
)
def check(args: argparse.Namespace) -> int:
    checks = doctor.run_checks()
    print_table(
        [(c.name, MARKS[c.status], c.detail, c.fix) for c in checks], ["check", "status", "detail", "fix"]
    )
    failed = [c for c in checks if c.status == "fail" and c.required]
    print(f"\n{len(failed)} required check(s) failed." if failed else "\nAll required checks passed.")
    return 1 if failed else 0
