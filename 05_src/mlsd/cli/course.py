"""``mlsd course``: run the session notebooks before class (:mod:`mlsd.course`) and publish the
learners' repository (:mod:`mlsd.publish`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mlsd.cli._commands import Commands, Option, lazy
from mlsd.cli._output import fail, print_table, say, usage_error
from mlsd.cli._progress import QUIET, Progress

course = lazy("course")  # package modules load when a command runs, so `mlsd --help` stays fast
publishing = lazy("publish")
quoted = lazy("quoted")

commands = Commands(
    "course",
    "Run the session notebooks as a facilitator does before class; publish the learners' repository.",
    "uv run mlsd course run",
)


@commands.command(
    "run",
    "Prepare the database and data, then execute every session notebook in a fresh kernel, in order.",
    "uv run mlsd course run --scale small --only 1 2",
)
@Option("--scale", choices=["tiny", "small", "full"], help="data size (default: MLSD_SCALE, small)")
@Option("--only", type=int, nargs="+", metavar="N", help="run only these sessions (1-6)")
@Option("--out", help="folder for executed notebooks and HTML (default: 05_src/build/course)")
@QUIET
def run(args: argparse.Namespace) -> int:
    with Progress.for_args(args) as progress:
        progress.start("loading the course package")
        return _run(args, progress)


def _run(args: argparse.Namespace, progress: Progress) -> int:
    notebooks = course.lab_notebooks()
    progress.clear()
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

    def each_notebook(index: int, total: int, path: Path, run) -> None:
        if run is None:
            progress.start(f"[{index}/{total}] {path.name}")
        else:
            progress.done(f"{run.status}, peak {run.peak_memory_mb:.0f} MB")

    runs = course.run_course(
        scale=args.scale,
        only=args.only,
        out=Path(args.out) if args.out else None,
        notebooks=notebooks,
        progress=each_notebook,
        on_cell=lambda cell, cells: progress.update(f"cell {cell}/{cells}"),
        on_stage=progress.start,
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
    # Markers name the course's own session notebooks: a run of other notebooks checks none of them.
    labs = (course.repo_root() / "01_materials" / "labs").resolve()
    ran = {r.path.name[:2] for r in runs if r.ok and r.path.resolve().parent == labs}
    out = Path(args.out) if args.out else course.default_out()
    stale = _check_numbers(out / quoted.NUMBERS_NAME, sessions=ran, timings_fail=False)
    return 1 if failed or stale else 0


def _check_numbers(numbers_file: Path, sessions: set[str] | None = None, timings_fail: bool = True) -> int:
    """Print the quoted numbers that the run contradicts or did not check; return how many count.

    With ``timings_fail=False`` (a course run on any laptop) a timing outside its factor is printed
    but not counted: timings depend on the machine, the seeded data's numbers do not.
    """
    run = quoted.read_numbers(numbers_file)
    markers = [m for m in quoted.scan_texts() if sessions is None or m.session in sessions]
    findings = quoted.compare(
        markers, {s: v["numbers"] for s, v in run["sessions"].items()}, scale=run["scale"]
    )
    checked = "by value" if run["scale"] == "small" else "by name (by value only if any-scale)"
    unchecked = sorted({f.marker.session for f in findings if f.problem == "not run"})
    wrong = [f for f in findings if f.problem != "not run"]
    print(f"\nQuoted numbers: {len(markers)} markers, checked against the {run['scale']} run {checked}; "
          f"{len(wrong)} to fix.")  # fmt: skip
    if unchecked:
        count = len(findings) - len(wrong)
        print(f"{count} markers not checked: session {', '.join(unchecked)} not in this run "
              f"(`uv run mlsd course run --only {' '.join(str(int(s)) for s in unchecked)}`).")  # fmt: skip
    if wrong:
        print_table(
            [
                (
                    f.marker.where(),
                    f.marker.key,
                    f.marker.quoted,
                    f.marker.tolerance(),
                    _shown(f.run_value),
                    f.problem,
                )
                for f in wrong
            ],
            ["where", "marker", "quoted", "tolerance", "run", "problem"],
        )
    if timings_fail:
        return len(findings)
    timings = [f for f in wrong if f.problem == "stale" and f.marker.factor]
    if timings:
        print(f"{len(timings)} of them are timings of this machine (a factor tolerance): shown, not counted as "
              "a failure here; `uv run mlsd course numbers` counts them.")  # fmt: skip
    return len(wrong) - len(timings)


def _shown(value) -> str:
    return "" if value is None else f"{value:.6g}" if isinstance(value, float) else str(value)


@commands.command(
    "numbers",
    "Compare every number quoted with a `<!-- run: ... -->` marker in the slides and texts with the last run.",
    "uv run mlsd course numbers",
)
@Option("--out", help="folder of the run to compare with (default: 05_src/build/course)")
def numbers(args: argparse.Namespace) -> int:
    numbers_file = (Path(args.out) if args.out else course.default_out()) / quoted.NUMBERS_NAME
    if not numbers_file.is_file():
        return fail(f"No {numbers_file}: run the notebooks first with `uv run mlsd course run`.")
    return 1 if _check_numbers(numbers_file) else 0


@commands.command(
    "publish",
    "Write the learners' repository: everything learners use, no solution, hidden test, answer key or quiz.",
    "uv run mlsd course publish --out ../mlsd-course-public",
)
@Option(
    "--out",
    required=True,
    help="the learners' repository (a git checkout keeps its history: a commit is added)",
)
@Option("--no-commit", action="store_true", help="write the files only, even into a git checkout")
def publish(args: argparse.Namespace) -> int:
    published = publishing.publish(args.out, commit=not args.no_commit)
    say(f"{len(published.files)} files in {published.out}.")
    if published.commit:
        say(f"Committed {published.commit[:12]}: push it to the public repository.")
    return 0
