"""``mlsd grade``: the assignments from release to final grades (:mod:`mlsd.grading`).

Before the deadline: ``release`` (the learner copies), ``check`` (a learner's own visible checks),
``autograde`` and ``pr`` (one notebook, a pull request). At the deadline: ``collect`` (every fork's
notebook, with git), ``cohort`` (each in its sandbox, into the persistent nbgrader course that
formgrader shows), ``decide`` (complete / incomplete / missing), ``feedback`` (files, or comments on
the learners' pull requests) and ``final`` (the syllabus's policy, Canvas's export in and out).

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
from mlsd.cli._output import print_table
from mlsd.cli._progress import QUIET, Progress

config = lazy("config")  # package modules load when a command runs, so `mlsd --help` stays fast
grading = lazy("grading")

commands = Commands(
    "grade",
    "Release the assignments, autograde notebooks, pull requests and cohorts, compute final grades.",
    "uv run mlsd grade autograde --assignment assignment_1 --notebook assignment_1.ipynb --learner octocat",
)

GRADING = Path("grading")
"""Where the deadline's files go by default, under the repository root (git-ignored)."""

course_option = Option("--course", help="nbgrader course folder (default: 03_instructional_team/nbgrader)")

run_options = options(
    course_option,
    Option("--cell-timeout", type=int, metavar="S", help="seconds per cell (default 60)"),
    Option("--notebook-timeout", type=int, metavar="S", help="seconds per notebook (default 600)"),
    Option(
        "--memory-mb", type=int, metavar="MB", help="memory of each process in the sandbox (default 4096)"
    ),
    Option(
        "--cpu-seconds", type=int, metavar="S", help="CPU time of each process in the sandbox (default 900)"
    ),
    Option(
        "--file-size-mb", type=int, metavar="MB", help="largest file a submission may write (default 512)"
    ),
    Option("--processes", type=int, metavar="N", help="processes and threads at once (default 256)"),
    Option("--open-files", type=int, metavar="N", help="open files per process (default 1024)"),
    Option(
        "--workspace-mb", type=int, metavar="MB", help="size of the working folder and /tmp (default 1024)"
    ),
    Option(
        "--database-url",
        help="PostgreSQL server for the submissions' databases (default: DATABASE_URL or the embedded server)",
    ),
    Option("--seed", type=int, default=0, help="grading seed for held-out inputs (default 0)"),
    Option(
        "--no-sandbox",
        action="store_true",
        help="run without the sandbox: for the instructors' own notebooks only (results say sandbox: none)",
    ),
    QUIET,
)
"""Where and how notebooks run: shared by every action that grades (a limit added here reaches all)."""

LIMIT_OPTIONS = (
    "cell_timeout",
    "notebook_timeout",
    "memory_mb",
    "cpu_seconds",
    "file_size_mb",
    "processes",
    "open_files",
    "workspace_mb",
)


def _course(args: argparse.Namespace) -> Path | None:
    return Path(args.course) if args.course else None


def _options(args: argparse.Namespace, progress: Progress | None = None):
    """The :data:`run_options` other than ``--course``, as the grading functions' ``GradingOptions``."""
    limits = grading.Limits.from_options(**{name: getattr(args, name) for name in LIMIT_OPTIONS})
    return grading.GradingOptions(
        limits=limits,
        sandbox=not args.no_sandbox,
        database_url=args.database_url,
        seed=args.seed,
        progress=progress.update if progress is not None and progress.enabled else None,
    )


def _out(args: argparse.Namespace, *default: str) -> Path:
    return Path(args.out) if args.out else config.repo_root() / GRADING.joinpath(*default)


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
    "Grade one notebook in its sandbox against the reference solution; write results.json, summary.md, feedback.html.",
    "uv run mlsd grade autograde --assignment assignment_1 --notebook my.ipynb --learner octocat --out out/",
)
@Option("--assignment", required=True, help="the assignment (a folder under source/)")
@Option("--notebook", required=True, help="the submitted .ipynb")
@Option("--learner", required=True, help="the learner's id, e.g. a GitHub user name")
@Option("--out", help="results folder (default: grading/ASSIGNMENT/one/LEARNER)")
@run_options
def autograde(args: argparse.Namespace) -> int:
    out = _out(args, args.assignment, "one", _path_part(args.learner))
    with Progress.for_args(args) as progress:
        progress.start(f"grading {Path(args.notebook).name}")
        result = grading.autograde(
            args.assignment,
            args.notebook,
            args.learner,
            out_dir=out,
            course=_course(args),
            options=_options(args, progress),
        )
        progress.done(f"{result.status}, {result.score:g}/{result.max_score:g}")
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
@Option("--out", help="results folder (default: grading/pr)")
@run_options
def pr(args: argparse.Namespace) -> int:
    out = _out(args, "pr")
    with Progress.for_args(args) as progress:
        progress.start("grading the pull request's notebooks")
        results = grading.grade_pr(
            args.base,
            head=args.head,
            repo=args.repo,
            out_dir=out,
            learner=args.learner,
            course=_course(args),
            options=_options(args, progress),
        )
        progress.done(f"{len(results)} notebook(s)")
    print((out / "summary.md").read_text(encoding="utf-8"))
    print(f"Results in {out}.")
    return max((r.exit_code for r in results), default=0)


@commands.command(
    "check",
    "Run your notebook's visible checks in a fresh kernel and a fresh database, one row per question.",
    "uv run mlsd grade check --assignment assignment_1",
)
@Option("--assignment", help="the assignment (default: the folder of --notebook)")
@Option(
    "--notebook",
    help="the notebook to check (default: 02_activities/assignments/ASSIGNMENT/ASSIGNMENT.ipynb)",
)
@Option(
    "--database-url",
    help="PostgreSQL server for the fresh database (default: DATABASE_URL or the embedded server)",
)
@Option("--out", help="also write check.json and summary.md into this folder (the Autograde workflow does)")
@QUIET
def check(args: argparse.Namespace) -> int:
    with Progress.for_args(args) as progress:
        progress.start("running the visible checks")
        assignment, path, rows = grading.check_notebook(
            args.assignment,
            args.notebook,
            database_url=args.database_url,
            progress=progress.update if progress.enabled else None,
        )
        progress.clear()
    print_table(
        [(r.question, f"{r.points:g}", r.status, r.message) for r in rows],
        ["question", "points", "status", "message"],
    )
    passed = sum(r.status == "passed" for r in rows)
    print(f"\n{passed}/{len(rows)} visible checks passed in {path.name}. {grading.HIDDEN_NOTE}")
    if args.out:
        grading.write_check(Path(args.out), assignment, path, rows)
    return 0 if passed == len(rows) else 1


@commands.command(
    "collect",
    "Fetch each learner's notebook from their fork with git (running nothing), at the branch head or before a time.",
    "uv run mlsd grade collect --roster grading/roster.csv --assignment assignment_1 --before 2026-12-18T23:59-05:00",
)
@Option("--roster", required=True, help="CSV with learner,repository (a git URL of the learner's fork)")
@Option("--assignment", required=True, help="the assignment to collect")
@Option("--out", help="submissions folder (default: grading/ASSIGNMENT/submissions)")
@Option("--branch", help="the branch learners submit on (default: assignment-1 for assignment_1)")
@Option("--before", help="an ISO time: take the last commit before it instead of the branch head")
@course_option
def collect(args: argparse.Namespace) -> int:
    out = _out(args, args.assignment, "submissions")
    collected = grading.collect(
        args.roster,
        args.assignment,
        out_dir=out,
        branch=args.branch,
        before=args.before,
        course=_course(args),
    )
    print_table(
        [(c.learner, c.status, c.commit[:12], c.commit_time, "; ".join(c.notes)) for c in collected],
        ["learner", "status", "commit", "commit time", "notes"],
    )
    taken = sum(c.status in ("collected", "flagged") for c in collected)
    print(
        f"\n{taken}/{len(collected)} notebooks collected into {out}. Commit times are set by learners; "
        "the snapshot is what the branches held when this ran."
    )
    return 0


@commands.command(
    "cohort",
    "Grade every learner's folder, each in its sandbox, into the course's nbgrader gradebook; write gradebook.csv.",
    "uv run mlsd grade cohort --assignment assignment_1 --jobs 2",
)
@Option("--assignment", required=True, help="the assignment to grade")
@Option("--submissions", help="one folder per learner (default: grading/ASSIGNMENT/submissions)")
@Option("--out", help="results folder (default: grading/ASSIGNMENT/results)")
@Option(
    "--jobs", type=int, default=1, help="submissions graded at the same time (default 1; about one per core)"
)
@Option(
    "--no-record", action="store_true", help="do not record the results in the course's nbgrader gradebook"
)
@run_options
def cohort(args: argparse.Namespace) -> int:
    out = _out(args, args.assignment, "results")
    submissions = Path(args.submissions) if args.submissions else out.parent / "submissions"
    with Progress.for_args(args) as progress:
        progress.start(f"grading {args.assignment}")
        frame = grading.grade_cohort(
            submissions,
            args.assignment,
            out_dir=out,
            progress=progress.update if progress.enabled else None,
            course=_course(args),
            jobs=args.jobs,
            options=_options(args),
            record=not args.no_record,
        )
        progress.done(f"{len(frame)} submission(s)")
    counts = frame["status"].value_counts().to_dict() if len(frame) else {}
    print(", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "No learner folders found.")
    review = [str(r.learner) for r in frame.itertuples() if r.review == "required"] if len(frame) else []
    if review:
        print(f"Review required (a person reads their code): {', '.join(review)}.")
    print(f"Gradebook: {out / 'gradebook.csv'}. Written answers wait in formgrader (see the playbook).")
    return 1 if counts.get("error") else 0


@commands.command(
    "decide",
    "Decide complete / incomplete / missing from the gradebook (70% autograded, every written answer graded).",
    "uv run mlsd grade decide --assignment assignment_1 --roster grading/roster.csv",
)
@Option("--assignment", required=True, help="the assignment to decide")
@Option("--roster", help="CSV with learner,...: a learner without a submission is missing")
@Option("--out", help="ASSIGNMENTS.csv to update (default: grading/ASSIGNMENTS.csv)")
@course_option
def decide(args: argparse.Namespace) -> int:
    learners = [learner for learner, _ in grading.read_roster(args.roster)] if args.roster else []
    decisions = grading.decide(_course(args), args.assignment, learners)
    out = Path(args.out) if args.out else config.repo_root() / GRADING / "ASSIGNMENTS.csv"
    grading.write_decisions(decisions, args.assignment, out)
    print_table(
        [
            (d.learner, d.decision or "waits", f"{d.autograded:g}/{d.autograded_max:g}", "; ".join(d.waiting))
            for d in decisions
        ],
        ["learner", "decision", "autograded", "waits on"],
    )
    waiting = [d.learner for d in decisions if not d.decision]
    note = f" {len(waiting)} decision(s) wait: {', '.join(waiting)}." if waiting else ""
    print(f"\nWritten to {out}.{note}")
    return 0


@commands.command(
    "feedback",
    "Write each learner's feedback (results, manual grades, comments); with --post, comment on their pull request.",
    "uv run mlsd grade feedback --assignment assignment_1 --post",
)
@Option("--assignment", required=True, help="the assignment")
@Option("--out", help="folder for LEARNER.md (default: grading/ASSIGNMENT/feedback)")
@Option(
    "--roster", help="CSV with learner,repository for --post (default: the collected submission.json files)"
)
@Option("--branch", help="the branch of the pull requests (default: assignment-1 for assignment_1)")
@Option("--post", action="store_true", help="comment on each learner's pull request (token in GITHUB_TOKEN)")
@course_option
def feedback(args: argparse.Namespace) -> int:
    out = _out(args, args.assignment, "feedback")
    written = grading.write_feedback(_course(args), args.assignment, out)
    print(f"{len(written)} feedback file(s) in {out}.")
    if not args.post:
        return 0
    repositories = grading.repositories(args.roster, out.parent / "submissions")
    branch = args.branch or grading.branch_name(args.assignment)
    rows = []
    for learner, path in written.items():
        body = path.read_text(encoding="utf-8")
        posted = grading.post_feedback(learner, repositories.get(learner, ""), branch, args.assignment, body)
        rows.append((learner, posted.url or "-", posted.note))
    print_table(rows, ["learner", "comment", "note"])
    return 0


@commands.command(
    "final",
    "Apply the grading policy (0.6 quiz average + 0.2 per assignment, pass at 60) and write FINAL.csv.",
    "uv run mlsd grade final --quizzes canvas_export.csv --roster grading/roster.csv --canvas-out canvas_import.csv",
)
@Option("--quizzes", required=True, help="Canvas's gradebook export, or learner,quiz_1,...,quiz_6 (0-100)")
@Option("--assignments", help="learner,assignment_1,assignment_2 (default: grading/ASSIGNMENTS.csv)")
@Option("--out", help="where to write FINAL.csv (default: grading/FINAL.csv)")
@Option(
    "--roster", help="CSV with learner and the --id-column: matches Canvas's learners with the assignments'"
)
@Option(
    "--id-column",
    default="SIS User ID",
    help="the Canvas column that identifies a learner (default: SIS User ID)",
)
@Option("--canvas-out", help="also write a file for Canvas's gradebook import")
def final(args: argparse.Namespace) -> int:
    grading_dir = config.repo_root() / GRADING
    out = Path(args.out) if args.out else grading_dir / "FINAL.csv"
    frame = grading.write_final(
        args.quizzes,
        args.assignments or grading_dir / "ASSIGNMENTS.csv",
        out,
        roster=args.roster,
        id_column=args.id_column,
        canvas_out=args.canvas_out,
    )
    passed = int((frame["result"] == "pass").sum())
    print(f"{len(frame)} learners: {passed} pass, {len(frame) - passed} fail. Written to {out}.")
    if args.canvas_out:
        print(
            f"Canvas import: {args.canvas_out} (Grades > Import; Result goes to a Complete/Incomplete column)."
        )
    return 0
