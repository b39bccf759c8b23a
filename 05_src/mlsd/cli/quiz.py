"""``mlsd quiz``: the session quizzes, checked, exported for the LMS and previewed (:mod:`mlsd.quiz`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mlsd.cli._commands import Commands, Option, lazy
from mlsd.cli._output import print_table

config = lazy("config")  # package modules load when a command runs, so `mlsd --help` stays fast
quiz = lazy("quiz")

commands = Commands(
    "quiz",
    "The session quizzes (03_instructional_team/quizzes/): export them for the LMS, preview them.",
    "uv run mlsd quiz export --format qti --out build/quizzes",
)


def _problems(problems: list) -> None:
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)


@commands.command(
    "export",
    "Check the quizzes, then write one Canvas QTI zip (or Moodle GIFT file) per session quiz.",
    "uv run mlsd quiz export --format qti --out build/quizzes --session 1 2",
)
@Option(
    "--format", choices=["qti", "gift"], default="qti", help="qti: Canvas/Quercus zip (default); gift: Moodle"
)
@Option("--out", required=True, help="folder for the files (created if missing)")
@Option("--session", type=int, nargs="+", metavar="N", help="only these sessions' quizzes (default: all)")
def export(args: argparse.Namespace) -> int:
    quizzes = quiz.load_quizzes(args.session)
    problems = quiz.course_problems(quizzes.values())
    if problems:
        _problems(problems)
        print(
            f"{len(problems)} problem(s) in the quizzes: nothing exported. Fix them, then check with "
            "`uv run mlsd quiz preview --session N` or `uv run pytest -m quiz`.",
            file=sys.stderr,
        )
        return 1
    written = quiz.export(quizzes.values(), args.out, args.format)
    print_table(
        [
            (
                q.session,
                path,
                len(q.questions),
                ", ".join(f"{n} {quiz.KIND_LABELS[k]}" for k, n in q.kind_counts().items() if n),
            )
            for q, path in zip(quizzes.values(), written, strict=True)
        ],
        ["session", "file", "questions", "kinds"],
    )
    if args.format == "qti":
        print("\nCanvas: Settings > Import Course Content > QTI .zip file, one zip per quiz.")
    else:
        print("\nMoodle: Question bank > Import > GIFT format, one file per quiz.")
    return 0


@commands.command(
    "preview",
    "Write a facilitator's HTML preview of one quiz, with the answers, feedback and pointers.",
    "uv run mlsd quiz preview --session 3",
)
@Option("--session", type=int, required=True, metavar="N", help="the session (1-6)")
@Option("--out", help="HTML file to write (default: 05_src/build/quizzes/quiz_NN.html)")
def preview(args: argparse.Namespace) -> int:
    one = quiz.load_quizzes([args.session])[args.session]
    problems = quiz.course_problems([one])
    default = config.repo_root() / "05_src" / "build" / "quizzes" / f"quiz_{args.session:02d}.html"
    path = quiz.write_preview(one, Path(args.out) if args.out else default, problems=problems)
    counts = ", ".join(f"{n} {quiz.KIND_LABELS[k]}" for k, n in one.kind_counts().items() if n)
    print(f"{one.title}: {len(one.questions)} questions ({counts}).")
    print(f"Preview with answers and feedback (do not share with learners): {path}")
    if problems:
        print(f"{len(problems)} problem(s), listed at the top of the preview:", file=sys.stderr)
        _problems(problems)
        return 1
    return 0
