"""``mlsd course``: run the session notebooks as a facilitator does before class (:mod:`mlsd.course`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mlsd.cli._commands import Commands, Option, lazy
from mlsd.cli._output import print_table, say, usage_error

course = lazy("course")  # package modules load when a command runs, so `mlsd --help` stays fast

commands = Commands(
    "course", "Run the session notebooks as a facilitator does before class.", "uv run mlsd course run"
)


def _progress(index: int, total: int, path: Path, run) -> None:
    if run is None:
        say(f"[{index}/{total}] {path.name} ...")
    else:
        say(f"      {run.status} in {run.seconds:.1f} s, peak {run.peak_memory_mb:.0f} MB")


@commands.command(
    "run",
    "Prepare the database and data, then execute every session notebook in a fresh kernel, in order.",
    "uv run mlsd course run --scale small --only 1 2",
)
@Option("--scale", choices=["tiny", "small", "full"], help="data size (default: MLSD_SCALE, small)")
@Option("--only", type=int, nargs="+", metavar="N", help="run only these sessions (1-6)")
@Option("--out", help="folder for executed notebooks and HTML (default: 05_src/build/course)")
def run(args: argparse.Namespace) -> int:
    notebooks = course.lab_notebooks()
    if not notebooks:
        print("No session notebooks in 01_materials/labs/ yet.", file=sys.stderr)
        return 1
    sessions = sorted(int(p.name[:2]) for p in notebooks)
    unknown = sorted(set(args.only or []) - set(sessions))
    if unknown:
        return usage_error(
            f"No session {', '.join(map(str, unknown))}: --only takes session numbers "
            f"{', '.join(map(str, sessions))}, e.g. `uv run mlsd course run --only 2`."
        )
    runs = course.run_course(
        scale=args.scale,
        only=args.only,
        out=Path(args.out) if args.out else None,
        notebooks=notebooks,
        progress=_progress,
    )
    print_table(
        [(r.path.name, f"{r.seconds:.1f}", f"{r.peak_memory_mb:.0f}", r.status) for r in runs],
        ["notebook", "seconds", "peak MB", "status"],
    )
    failed = [r for r in runs if not r.ok]
    total = sum(r.seconds for r in runs)
    print(f"\n{len(runs) - len(failed)}/{len(runs)} notebooks passed in {total:.0f} s.")
    for failure in failed:
        print(f"FAILED {failure.describe()}", file=sys.stderr)
    return 1 if failed else 0
