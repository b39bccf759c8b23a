"""``mlsd grade``: release, autograde, pr, cohort and final (:mod:`mlsd.grading`).

Exit codes: 0 whenever results were produced, whatever the score (``invalid`` and ``missing``
are results); 1 when the grader itself failed (``error``) or the input is unusable (the
message says what to fix); 2 for usage errors.

A new action is one more handler here; options shared by the actions that run notebooks are
in :data:`run_options` (add a sandbox limit there and every such action takes it).
"""

from __future__ import annotations

import argparse
import re
import sys
import warnings
from pathlib import Path

from mlsd.cli._commands import Commands, Option, lazy, options

config = lazy("config")  # package modules load when a command runs, so `mlsd --help` stays fast
grading = lazy("grading")

commands = Commands(
    "grade",
    "Release the assignments, autograde notebooks, pull requests and cohorts, compute final grades.",
    "uv run mlsd grade autograde --assignment assignment_1 --notebook assignment_1.ipynb --learner octocat",
)

BUILD = Path("05_src") / "build" / "grading"
"""Default results folder, under the repository root."""

course_option = Option("--course", help="nbgrader course folder (default: 03_instructional_team/nbgrader)")

run_options = options(
    course_option,
    Option("--cell-timeout", type=int, default=60, metavar="S", help="seconds per cell (default 60)"),
    Option(
        "--notebook-timeout", type=int, default=600, metavar="S", help="seconds per notebook (default 600)"
    ),
    Option(
        "--database-url",
        help="PostgreSQL server for the scratch database (default: DATABASE_URL or the embedded server)",
    ),
)
"""Where and how notebooks run: shared by every action that grades."""


def _course(args: argparse.Namespace) -> Path | None:
    return Path(args.course) if args.course else None


def _options(args: argparse.Namespace) -> dict:
    """The :data:`run_options` other than ``--course``, as keyword arguments of the grading functions."""
    return {
        "cell_timeout": args.cell_timeout,
        "notebook_timeout": args.notebook_timeout,
        "database_url": args.database_url,
    }


def _out(args: argparse.Namespace, *default: str) -> Path:
    return Path(args.out) if args.out else config.repo_root() / BUILD.joinpath(*default)


def _path_part(text: str) -> str:
    """A learner id as a folder name (no separators, no `..`)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "learner"


@commands.command(
    "release",
    "Generate the learner copies into 02_activities/assignments/ with nbgrader (byte-stable).",
    "uv run mlsd grade release --assignment assignment_1",
)
@Option("--assignment", help="one assignment (default: all)")
@Option("--out", help="folder receiving <assignment>/ (default: 02_activities/assignments)")
@course_option
def release(args: argparse.Namespace) -> int:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        written = grading.release(args.assignment, out=args.out, course=_course(args))
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    for path in written:
        print(path)
    print(f"{len(written)} file(s) in the learner copies.")
    return 0


@commands.command(
    "autograde",
    "Grade one notebook in a fresh temporary nbgrader course; write results.json, summary.md, feedback.html.",
    "uv run mlsd grade autograde --assignment assignment_1 --notebook my.ipynb --learner octocat --out out/",
)
@Option("--assignment", required=True, help="the assignment (a folder under source/)")
@Option("--notebook", required=True, help="the submitted .ipynb")
@Option("--learner", required=True, help="the learner's id, e.g. a GitHub user name")
@Option("--out", help="results folder (default: 05_src/build/grading/ASSIGNMENT/LEARNER)")
@run_options
def autograde(args: argparse.Namespace) -> int:
    out = _out(args, args.assignment, _path_part(args.learner))
    result = grading.autograde(
        args.assignment, args.notebook, args.learner, out_dir=out, course=_course(args), **_options(args)
    )
    print(result.summary_markdown())
    print(f"Results, summary and feedback in {out}.")
    return result.exit_code


@commands.command(
    "pr",
    "Grade the assignment notebooks a pull request changes (git diff BASE...HEAD); note other files.",
    "uv run mlsd grade pr --base origin/main --out grading/",
)
@Option("--base", required=True, help="the branch the pull request targets, e.g. origin/main")
@Option("--head", default="HEAD", help="the submission (default HEAD)")
@Option("--learner", help="learner id (default: GITHUB_ACTOR)")
@Option("--repo", help="the git repository (default: this course repository)")
@Option("--out", help="results folder (default: 05_src/build/grading/pr)")
@run_options
def pr(args: argparse.Namespace) -> int:
    out = _out(args, "pr")
    results = grading.grade_pr(
        args.base,
        head=args.head,
        repo=args.repo,
        out_dir=out,
        learner=args.learner,
        course=_course(args),
        **_options(args),
    )
    print((out / "summary.md").read_text(encoding="utf-8"))
    print(f"Results in {out}.")
    return max((r.exit_code for r in results), default=0)


@commands.command(
    "cohort",
    "Grade every learner folder in a submissions folder; write gradebook.csv.",
    "uv run mlsd grade cohort --submissions submissions/ --assignment assignment_1",
)
@Option("--submissions", required=True, help="one folder per learner")
@Option("--assignment", required=True, help="the assignment to grade")
@Option("--out", help="results folder (default: 05_src/build/grading/ASSIGNMENT)")
@Option("--quiet", action="store_true", help="no progress bar")
@Option(
    "--jobs", type=int, default=1, help="submissions graded at the same time (default 1; about one per core)"
)
@run_options
def cohort(args: argparse.Namespace) -> int:
    out = _out(args, args.assignment)
    frame = grading.grade_cohort(
        args.submissions,
        args.assignment,
        out_dir=out,
        progress=not args.quiet,
        course=_course(args),
        jobs=args.jobs,
        **_options(args),
    )
    counts = frame["status"].value_counts().to_dict() if len(frame) else {}
    print(", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "No learner folders found.")
    print(f"Gradebook: {out / 'gradebook.csv'}")
    return 1 if counts.get("error") else 0


@commands.command(
    "final",
    "Apply the grading policy (0.6 quiz average + 0.2 per assignment, pass at 60) and write FINAL.csv.",
    "uv run mlsd grade final --quizzes QUIZZES.csv --assignments ASSIGNMENTS.csv --out FINAL.csv",
)
@Option("--quizzes", required=True, help="learner,quiz_1,...,quiz_6 (0-100, empty = missed)")
@Option(
    "--assignments", required=True, help="learner,assignment_1,assignment_2 (complete/incomplete/missing)"
)
@Option("--out", required=True, help="where to write FINAL.csv")
def final(args: argparse.Namespace) -> int:
    frame = grading.write_final(args.quizzes, args.assignments, args.out)
    passed = int((frame["result"] == "pass").sum())
    print(f"{len(frame)} learners: {passed} pass, {len(frame) - passed} fail. Written to {args.out}.")
    return 0
