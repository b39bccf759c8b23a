"""``mlsd grade ...``: release, autograde, pr, cohort and final (registered by ``mlsd.cli``).

Exit codes: 0 whenever results were produced, whatever the score (``invalid`` and ``missing``
are results); 1 when the grader itself failed (``error``) or the input is unusable (the
message says what to fix); 2 for usage errors.
"""

from __future__ import annotations

import argparse
import re
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

__all__ = ["add_grade_commands"]

_BUILD = Path("05_src") / "build" / "grading"


def _course(args: argparse.Namespace) -> Path | None:
    return Path(args.course) if getattr(args, "course", None) else None


def _default_out(*parts: str) -> Path:
    from mlsd.config import repo_root

    return repo_root() / _BUILD.joinpath(*parts)


def _path_part(text: str) -> str:
    """A learner id as a folder name (no separators, no `..`)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "learner"


def _options(args: argparse.Namespace):
    from mlsd.grading import GradingOptions, Limits

    limits = Limits.from_options(cell_timeout=args.cell_timeout, notebook_timeout=args.notebook_timeout)
    return GradingOptions(limits=limits, sandbox=not args.no_sandbox, database_url=args.database_url)


def cmd_grade_release(args: argparse.Namespace) -> int:
    from mlsd.grading import release

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        written = release(args.assignment, out=args.out, course=_course(args))
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    for path in written:
        print(path)
    print(f"{len(written)} file(s) in the learner copies.")
    return 0


def cmd_grade_autograde(args: argparse.Namespace) -> int:
    from mlsd.grading import autograde

    out = Path(args.out) if args.out else _default_out(args.assignment, _path_part(args.learner))
    result = autograde(
        args.assignment,
        args.notebook,
        args.learner,
        out_dir=out,
        course=_course(args),
        options=_options(args),
    )
    print(result.summary_markdown())
    print(f"Results, summary and feedback in {out}.")
    return result.exit_code


def cmd_grade_pr(args: argparse.Namespace) -> int:
    from mlsd.grading import grade_pr

    out = Path(args.out) if args.out else _default_out("pr")
    results = grade_pr(
        args.base,
        head=args.head,
        repo=args.repo,
        out_dir=out,
        learner=args.learner,
        course=_course(args),
        options=_options(args),
    )
    print((out / "summary.md").read_text(encoding="utf-8"))
    print(f"Results in {out}.")
    return max((r.exit_code for r in results), default=0)


def cmd_grade_cohort(args: argparse.Namespace) -> int:
    from mlsd.grading import grade_cohort

    out = Path(args.out) if args.out else _default_out(args.assignment)
    frame = grade_cohort(
        args.submissions,
        args.assignment,
        out_dir=out,
        progress=not args.quiet,
        course=_course(args),
        jobs=args.jobs,
        options=_options(args),
    )
    counts = frame["status"].value_counts().to_dict() if len(frame) else {}
    print(", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "No learner folders found.")
    print(f"Gradebook: {out / 'gradebook.csv'}")
    return 1 if counts.get("error") else 0


def cmd_grade_final(args: argparse.Namespace) -> int:
    from mlsd.grading import write_final

    frame = write_final(args.quizzes, args.assignments, args.out)
    passed = int((frame["result"] == "pass").sum())
    print(f"{len(frame)} learners: {passed} pass, {len(frame) - passed} fail. Written to {args.out}.")
    return 0


def add_grade_commands(commands: argparse._SubParsersAction, add: Callable) -> argparse.ArgumentParser:
    """Register ``mlsd grade`` and its actions; ``add`` is ``mlsd.cli._add``."""
    grade = add(
        commands,
        "grade",
        "Release the assignments, autograde notebooks, pull requests and cohorts, compute final grades.",
        "uv run mlsd grade autograde --assignment assignment_1 --notebook assignment_1.ipynb --learner octocat",
    )
    actions = grade.add_subparsers(dest="grade_command", metavar="ACTION")

    def course_option(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--course", help="nbgrader course folder (default: 03_instructional_team/nbgrader)"
        )

    def run_options(parser: argparse.ArgumentParser) -> None:
        course_option(parser)
        parser.add_argument(
            "--cell-timeout", type=int, default=60, metavar="S", help="seconds per cell (default 60)"
        )
        parser.add_argument(
            "--notebook-timeout",
            type=int,
            default=600,
            metavar="S",
            help="seconds per notebook (default 600)",
        )
        parser.add_argument(
            "--database-url",
            help="PostgreSQL server for the scratch database (default: DATABASE_URL or the embedded server)",
        )
        parser.add_argument(
            "--no-sandbox",
            action="store_true",
            help="run without the sandbox: for the instructors' own notebooks only (results say sandbox: none)",
        )

    release = add(
        actions,
        "release",
        "Generate the learner copies into 02_activities/assignments/ with nbgrader (byte-stable).",
        "uv run mlsd grade release --assignment assignment_1",
        cmd_grade_release,
    )
    release.add_argument("--assignment", help="one assignment (default: all)")
    release.add_argument("--out", help="folder receiving <assignment>/ (default: 02_activities/assignments)")
    course_option(release)

    autograde = add(
        actions,
        "autograde",
        "Grade one notebook in a fresh temporary nbgrader course; write results.json, summary.md, feedback.html.",
        "uv run mlsd grade autograde --assignment assignment_1 --notebook my.ipynb --learner octocat --out out/",
        cmd_grade_autograde,
    )
    autograde.add_argument("--assignment", required=True, help="the assignment (a folder under source/)")
    autograde.add_argument("--notebook", required=True, help="the submitted .ipynb")
    autograde.add_argument("--learner", required=True, help="the learner's id, e.g. a GitHub user name")
    autograde.add_argument("--out", help="results folder (default: 05_src/build/grading/ASSIGNMENT/LEARNER)")
    run_options(autograde)

    pr = add(
        actions,
        "pr",
        "Grade the assignment notebooks a pull request changes (git diff BASE...HEAD); note other files.",
        "uv run mlsd grade pr --base origin/main --out grading/",
        cmd_grade_pr,
    )
    pr.add_argument("--base", required=True, help="the branch the pull request targets, e.g. origin/main")
    pr.add_argument("--head", default="HEAD", help="the submission (default HEAD)")
    pr.add_argument("--learner", help="learner id (default: GITHUB_ACTOR)")
    pr.add_argument("--repo", help="the git repository (default: this course repository)")
    pr.add_argument("--out", help="results folder (default: 05_src/build/grading/pr)")
    run_options(pr)

    cohort = add(
        actions,
        "cohort",
        "Grade every learner folder in a submissions folder; write gradebook.csv.",
        "uv run mlsd grade cohort --submissions submissions/ --assignment assignment_1",
        cmd_grade_cohort,
    )
    cohort.add_argument("--submissions", required=True, help="one folder per learner")
    cohort.add_argument("--assignment", required=True, help="the assignment to grade")
    cohort.add_argument("--out", help="results folder (default: 05_src/build/grading/ASSIGNMENT)")
    cohort.add_argument("--quiet", action="store_true", help="no progress bar")
    cohort.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="submissions graded at the same time (default 1; about one per core)",
    )
    run_options(cohort)

    final = add(
        actions,
        "final",
        "Apply the grading policy (0.6 quiz average + 0.2 per assignment, pass at 60) and write FINAL.csv.",
        "uv run mlsd grade final --quizzes QUIZZES.csv --assignments ASSIGNMENTS.csv --out FINAL.csv",
        cmd_grade_final,
    )
    final.add_argument("--quizzes", required=True, help="learner,quiz_1,...,quiz_6 (0-100, empty = missed)")
    final.add_argument(
        "--assignments", required=True, help="learner,assignment_1,assignment_2 (complete/incomplete/missing)"
    )
    final.add_argument("--out", required=True, help="where to write FINAL.csv")
    return grade
