"""The ``mlsd`` command: a thin layer over the package.

Every command has help text with an example (``mlsd COMMAND --help``).
Expected faults print a message that says what to do next and exit 1;
usage errors exit 2.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence

from mlsd.errors import MLSDError

__all__ = ["main", "build_parser"]


def print_table(rows: Sequence[Sequence[object]], headers: Sequence[str]) -> None:
    """Print rows as an aligned plain-text table."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))


# -- mlsd db -------------------------------------------------------------------------


def cmd_db_up(args: argparse.Namespace) -> int:
    import time

    from mlsd import db

    started = time.perf_counter()
    url = db.up()
    print(f"PostgreSQL is ready at {db.describe_url(url)} ({time.perf_counter() - started:.1f} s).")
    return 0


def cmd_db_status(args: argparse.Namespace) -> int:
    from mlsd import db
    from mlsd.config import get_settings

    settings = get_settings()
    if not settings.database_url and not db.embedded_server(settings).state().running:
        print("The embedded PostgreSQL server is not running: start it with `uv run mlsd db up`.")
        return 1
    conn = db.connect()
    try:
        info = db.status(conn)
    finally:
        conn.close()
    mode = "DATABASE_URL" if settings.database_url else f"embedded (data in {settings.postgres_dir})"
    print(f"server:   {info['server']} ({mode})")
    print(f"version:  PostgreSQL {info['version']}")
    print(f"database: {info['database']} ({info['size']})")
    rows = [(name, "missing" if count is None else count) for name, count in info["schemas"].items()]
    print_table(rows, ["schema", "tables"])
    return 0


def cmd_db_down(args: argparse.Namespace) -> int:
    from mlsd import db

    print(db.down())
    return 0


def cmd_db_url(args: argparse.Namespace) -> int:
    from mlsd import db

    print(db.database_url())
    return 0


def cmd_db_psql(args: argparse.Namespace) -> int:
    from mlsd import db
    from mlsd._embedded import bin_dir

    url = db.database_url()
    candidates = [bin_dir() / ("psql.exe" if os.name == "nt" else "psql")]
    found = next((str(p) for p in candidates if p.is_file()), None) or shutil.which("psql")
    if found is None:
        print(
            "No psql found. Install the PostgreSQL client (macOS: `brew install libpq`; Debian/Ubuntu: "
            f"`sudo apt install postgresql-client`; Windows: the EDB installer), then run: psql {url}"
        )
        return 1
    return subprocess.call([found, url, *args.psql_args])


def cmd_db_reset(args: argparse.Namespace) -> int:
    from mlsd import db
    from mlsd.config import get_settings

    settings = get_settings()
    if settings.database_url:
        print(
            "DATABASE_URL is set: reset only removes the embedded server's data; drop that database yourself."
        )
        return 1
    server = db.embedded_server(settings)
    if not args.yes:
        print(
            f"This deletes every table in the embedded database ({server.pgdata}). Re-run with --yes to proceed."
        )
        return 1
    server.wipe()
    print(f"Deleted {server.pgdata}. `uv run mlsd db up` creates a new, empty database.")
    return 0


# -- mlsd data -----------------------------------------------------------------------


def _landing(args: argparse.Namespace):
    from mlsd.data import landing_dir

    if getattr(args, "out", None):
        from pathlib import Path

        return Path(args.out).expanduser().resolve()
    return landing_dir(scale=args.scale, seed=args.seed, rows=args.rows)


def _generate(args: argparse.Namespace, out) -> dict:
    import time

    from mlsd.config import get_settings
    from mlsd.data import generate

    scale = args.scale or get_settings().scale
    started = time.perf_counter()
    manifest = generate(
        out,
        scale=scale,
        seed=args.seed,
        rows=args.rows,
        fmt=args.format,
        progress=None,
        overwrite=args.overwrite,
    )
    rows = sum(manifest["rows"].values())
    print(
        f"Landing files in {out}: {rows:,} rows in {time.perf_counter() - started:.1f} s ({manifest['format']})."
    )
    return manifest


def cmd_data_generate(args: argparse.Namespace) -> int:
    manifest = _generate(args, _landing(args))
    print_table(
        [(t, f"{n:,}", sum(manifest["defects"][t].values())) for t, n in manifest["rows"].items()],
        ["table", "rows", "defects injected"],
    )
    return 0


def cmd_data_load(args: argparse.Namespace) -> int:
    from mlsd import db, pipelines

    landing = _landing(args)
    if not (landing / "manifest.json").is_file():
        print(f"No landing files in {landing} yet: generating them first.")
        _generate(args, landing)
    conn = db.connect()
    try:
        report = pipelines.load(conn, landing, progress=(lambda m: print("  " + m)) if args.verbose else None)
    finally:
        conn.close()
    print(
        f"Loaded {report.total_rows:,} rows from {report.files} files in {report.seconds:.1f} s "
        f"into bronze, silver and gold ({report.total_rejected} rejected)."
    )
    for reason in report.reasons:
        print(f"  rejected: {reason}")
    return 0


def cmd_data_status(args: argparse.Namespace) -> int:
    from mlsd import db, pipelines

    conn = db.connect()
    try:
        tables, last = pipelines.status(conn)
    finally:
        conn.close()
    if tables.empty:
        print("No course tables yet: run `uv run mlsd data load`.")
        return 1
    print_table(
        [(r.schema, r.table_name, f"{r.rows:,}") for r in tables.itertuples()], ["schema", "table", "rows"]
    )
    if last:
        print(
            f"\nLast load: {last['finished_at']:%Y-%m-%d %H:%M:%S %Z} from {last['landing_dir']}: "
            f"{last['rows']:,} rows from {last['files']} files, {last['rejected']} rejected."
        )
    else:
        print("\nNo completed load yet: run `uv run mlsd data load`.")
    return 0


# -- mlsd course ---------------------------------------------------------------------


def cmd_course_run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mlsd.course import lab_notebooks, run_course

    notebooks = lab_notebooks()
    if not notebooks:
        print("No session notebooks in 01_materials/labs/ yet.", file=sys.stderr)
        return 1
    sessions = sorted(int(p.name[:2]) for p in notebooks)
    unknown = sorted(set(args.only or []) - set(sessions))
    if unknown:
        print(
            f"No session {', '.join(map(str, unknown))}: --only takes session numbers "
            f"{', '.join(map(str, sessions))}, e.g. `uv run mlsd course run --only 2`.",
            file=sys.stderr,
        )
        return 2
    runs = run_course(scale=args.scale, only=args.only, out=Path(args.out) if args.out else None)
    print_table(
        [(r.path.name, f"{r.seconds:.1f}", f"{r.peak_memory_mb:.0f}", r.status) for r in runs],
        ["notebook", "seconds", "peak MB", "status"],
    )
    failed = [r for r in runs if not r.ok]
    total = sum(r.seconds for r in runs)
    print(f"\n{len(runs) - len(failed)}/{len(runs)} notebooks passed in {total:.0f} s.")
    for run in failed:
        print(f"FAILED {run.describe()}", file=sys.stderr)
    return 1 if failed else 0


# -- mlsd doctor ---------------------------------------------------------------------


def cmd_doctor(args: argparse.Namespace) -> int:
    from mlsd.doctor import run_checks

    checks = run_checks()
    marks = {"ok": "OK", "warn": "WARN", "fail": "FAIL"}
    print_table(
        [(c.name, marks[c.status], c.detail, c.fix) for c in checks], ["check", "status", "detail", "fix"]
    )
    failed = [c for c in checks if c.status == "fail" and c.required]
    print(f"\n{len(failed)} required check(s) failed." if failed else "\nAll required checks passed.")
    return 1 if failed else 0


# -- parser --------------------------------------------------------------------------


def _add(
    sub: argparse._SubParsersAction, name: str, help_text: str, example: str, func: Callable | None = None
) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if func is not None:
        parser.set_defaults(func=func)
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be positive")
    return value


def _lazy(module: str, name: str) -> Callable[[argparse.Namespace], int]:
    """A command function imported when the command runs, so that `mlsd --help` stays fast."""

    def run(args: argparse.Namespace) -> int:
        import importlib

        return getattr(importlib.import_module(module), name)(args)

    run.__name__ = name
    return run


def cmd_monitor(args: argparse.Namespace) -> int:
    from mlsd import db
    from mlsd.monitoring import monitor_month

    conn = db.connect()
    try:
        report = monitor_month(
            conn, args.month, reference=(args.reference_start, args.reference_end), model_name=args.model
        )
    finally:
        conn.close()
    drift = report.drift
    print(f"Drift of {args.month} against {args.reference_start}..{args.reference_end}:")
    print_table(
        [
            (
                r.feature,
                r.test,
                f"{r.statistic:.3f}",
                f"{r.p_value:.2g}",
                f"{r.psi:.3f}",
                "DRIFT" if r.drifted else "",
            )
            for r in drift.itertuples()
        ],
        ["feature", "test", "statistic", "p", "psi", "flag"],
    )
    if not report.performance.empty:
        print("\nPerformance by month (labels known so far):")
        perf = report.performance
        print(perf.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if report.alerts.empty:
        print("\nNo alerts.")
    else:
        print(f"\n{len(report.alerts)} alert(s):")
        print(report.alerts.to_string(index=False))
    return 0


# -- mlsd quiz -----------------------------------------------------------------------


def cmd_quiz_export(args: argparse.Namespace) -> int:
    from mlsd import quiz

    quizzes = quiz.load_quizzes(args.session)
    problems = quiz.course_problems(quizzes.values())
    if problems:
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
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


def cmd_quiz_preview(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mlsd import quiz
    from mlsd.config import repo_root

    one = quiz.load_quizzes([args.session])[args.session]
    problems = quiz.course_problems([one])
    out = (
        Path(args.out)
        if args.out
        else repo_root() / "05_src" / "build" / "quizzes" / f"quiz_{args.session:02d}.html"
    )
    path = quiz.write_preview(one, out, problems=problems)
    counts = ", ".join(f"{n} {quiz.KIND_LABELS[k]}" for k, n in one.kind_counts().items() if n)
    print(f"{one.title}: {len(one.questions)} questions ({counts}).")
    print(f"Preview with answers and feedback (do not share with learners): {path}")
    if problems:
        print(f"{len(problems)} problem(s), listed at the top of the preview:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The full ``mlsd`` argument parser (tests walk it to check help text)."""
    parser = argparse.ArgumentParser(
        prog="mlsd",
        description="Design of Machine Learning Systems: course database, data, models and grading.",
        epilog="example:\n  uv run mlsd db up && uv run mlsd db status",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    db = _add(
        commands, "db", "Start, inspect and stop the course PostgreSQL database.", "uv run mlsd db status"
    )
    db_commands = db.add_subparsers(dest="db_command", metavar="ACTION")
    _add(
        db_commands,
        "up",
        "Start the database (embedded unless DATABASE_URL is set) and create the schemas.",
        "uv run mlsd db up",
        cmd_db_up,
    )
    _add(
        db_commands,
        "status",
        "Show the server, its version, the course schemas and their table counts.",
        "uv run mlsd db status",
        cmd_db_status,
    )
    _add(
        db_commands,
        "down",
        "Stop the embedded server (its data is kept).",
        "uv run mlsd db down",
        cmd_db_down,
    )
    _add(
        db_commands,
        "url",
        "Print a connection URL for other tools (psql, DBeaver, pandas).",
        'psql "$(uv run mlsd db url)"',
        cmd_db_url,
    )
    psql = _add(
        db_commands,
        "psql",
        "Open a psql shell on the course database.",
        "uv run mlsd db psql -- -c 'SELECT 1'",
        cmd_db_psql,
    )
    psql.add_argument("psql_args", nargs=argparse.REMAINDER, help="arguments passed on to psql")
    reset = _add(
        db_commands,
        "reset",
        "Delete the embedded database's data directory (asks for --yes).",
        "uv run mlsd db reset --yes",
        cmd_db_reset,
    )
    reset.add_argument("--yes", action="store_true", help="confirm that the local database may be deleted")

    data = _add(commands, "data", "Generate, load and inspect the course dataset.", "uv run mlsd data load")
    data_commands = data.add_subparsers(dest="data_command", metavar="ACTION")

    def size_options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--scale", choices=["tiny", "small", "full"], help="data size (default: MLSD_SCALE, small)"
        )
        parser.add_argument(
            "--rows", type=_positive_int, help="number of loan applications; overrides --scale"
        )
        parser.add_argument(
            "--seed", type=int, default=42, help="random seed (default 42): same seed, same files"
        )
        parser.add_argument(
            "--format", choices=["parquet", "csv"], default="parquet", help="landing file format"
        )
        parser.add_argument("--out", help="landing folder (default: 05_src/data/landing/SCALE_seedSEED)")
        parser.add_argument(
            "--overwrite", action="store_true", help="replace landing files made with other settings"
        )

    generate = _add(
        data_commands,
        "generate",
        "Write the landing files (Parquet or CSV) and manifest.json.",
        "uv run mlsd data generate --scale small --seed 42 --format parquet",
        cmd_data_generate,
    )
    size_options(generate)
    load = _add(
        data_commands,
        "load",
        "Load the landing files into bronze with COPY, then build silver and gold (generates them if missing).",
        "uv run mlsd data load --scale small",
        cmd_data_load,
    )
    size_options(load)
    load.add_argument("--verbose", action="store_true", help="print one line per file loaded")
    _add(
        data_commands,
        "status",
        "Row counts of every course table, the last load and its rejects.",
        "uv run mlsd data status",
        cmd_data_status,
    )

    course = _add(
        commands,
        "course",
        "Run the session notebooks as a facilitator does before class.",
        "uv run mlsd course run",
    )
    course_commands = course.add_subparsers(dest="course_command", metavar="ACTION")
    run = _add(
        course_commands,
        "run",
        "Prepare the database and data, then execute every session notebook in a fresh kernel, in order.",
        "uv run mlsd course run --scale small --only 1 2",
        cmd_course_run,
    )
    run.add_argument(
        "--scale", choices=["tiny", "small", "full"], help="data size (default: MLSD_SCALE, small)"
    )
    run.add_argument("--only", type=int, nargs="+", metavar="N", help="run only these sessions (1-6)")
    run.add_argument("--out", help="folder for executed notebooks and HTML (default: 05_src/build/course)")

    _add(
        commands,
        "doctor",
        "Check Python, packages, the Jupyter kernel, the database, Docker and ports.",
        "uv run mlsd doctor",
        cmd_doctor,
    )
    train = _add(
        commands,
        "train",
        "Train a baseline and a tuned model on the gold table, track both in MLflow and register "
        "the better one as champion.",
        "uv run mlsd train --method random --n-iter 8",
        _lazy("mlsd.training", "cmd_train"),
    )
    train.add_argument(
        "--experiment", default="lending-default", help="MLflow experiment (default: lending-default)"
    )
    train.add_argument(
        "--train-end", default="2024-12", help="last training month, YYYY-MM (default: 2024-12)"
    )
    train.add_argument(
        "--valid-end", default="2025-03", help="last validation month, YYYY-MM (default: 2025-03)"
    )
    train.add_argument(
        "--method", choices=["random", "grid", "halving"], default="random", help="hyperparameter search"
    )
    train.add_argument(
        "--n-iter",
        type=_positive_int,
        default=8,
        help="candidates of the random or halving search (default: 8)",
    )
    train.add_argument("--seed", type=int, default=42, help="random seed (default: 42)")
    train.add_argument(
        "--register-as", default="lending-default", help="registered model name (default: lending-default)"
    )
    train.add_argument(
        "--dask", action="store_true", help="search on Dask: DASK_SCHEDULER_ADDRESS, or a local cluster"
    )

    score = _add(
        commands,
        "score",
        "Score the applications of one or more months with a registered model into "
        "monitoring.prediction_log (re-running a batch replaces it).",
        "uv run mlsd score 2025-04 2025-05",
        _lazy("mlsd.serving", "cmd_score"),
    )
    score.add_argument("months", nargs="+", metavar="MONTH", help="months to score, YYYY-MM")
    score.add_argument(
        "--model", default="lending-default", help="registered model (default: lending-default)"
    )
    score.add_argument("--alias", default="champion", help="model alias (default: champion)")
    score.add_argument("--batch-id", help="batch identifier for one month (default: MONTH:MODEL:vVERSION)")

    monitor = _add(
        commands,
        "monitor",
        "Drift of one month against a reference window, performance with the labels known so far, alerts.",
        "uv run mlsd monitor --month 2025-06",
        cmd_monitor,
    )
    monitor.add_argument("--month", required=True, help="month to check, YYYY-MM")
    monitor.add_argument(
        "--reference-start", default="2024-01", help="first reference month (default: 2024-01)"
    )
    monitor.add_argument("--reference-end", default="2024-12", help="last reference month (default: 2024-12)")
    monitor.add_argument(
        "--model",
        default="lending-default",
        help="registered model whose logged scores to watch (default: lending-default)",
    )

    serve = _add(
        commands,
        "serve",
        "Serve a registered model over HTTP with MLflow's model server, until Ctrl-C.",
        "uv run mlsd serve --port 5001",
        _lazy("mlsd.serving", "cmd_serve"),
    )
    serve.add_argument(
        "--model", default="lending-default", help="registered model (default: lending-default)"
    )
    serve.add_argument("--alias", default="champion", help="model alias (default: champion)")
    serve.add_argument(
        "--port", type=int, default=5001, help="port to listen on (default: 5001; 0: any free port)"
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1, this computer)"
    )

    mlflow_group = _add(
        commands, "mlflow", "MLflow tools on the course's tracking store.", "uv run mlsd mlflow ui"
    )
    mlflow_commands = mlflow_group.add_subparsers(dest="mlflow_command", metavar="ACTION")
    ui = _add(
        mlflow_commands,
        "ui",
        "Run the MLflow UI on the local store (or print the address of the tracking server in "
        "MLFLOW_TRACKING_URI).",
        "uv run mlsd mlflow ui --port 5000",
        _lazy("mlsd.tracking", "cmd_mlflow_ui"),
    )
    ui.add_argument("--port", type=int, default=5000, help="port to listen on (default: 5000)")
    ui.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1, this computer)"
    )

    quiz_group = _add(
        commands,
        "quiz",
        "The session quizzes (03_instructional_team/quizzes/): export them for the LMS, preview them.",
        "uv run mlsd quiz export --format qti --out build/quizzes",
    )
    quiz_commands = quiz_group.add_subparsers(dest="quiz_command", metavar="ACTION")
    quiz_export = _add(
        quiz_commands,
        "export",
        "Check the quizzes, then write one Canvas QTI zip (or Moodle GIFT file) per session quiz.",
        "uv run mlsd quiz export --format qti --out build/quizzes --session 1 2",
        cmd_quiz_export,
    )
    quiz_export.add_argument(
        "--format",
        choices=["qti", "gift"],
        default="qti",
        help="qti: Canvas/Quercus zip (default); gift: Moodle",
    )
    quiz_export.add_argument("--out", required=True, help="folder for the files (created if missing)")
    quiz_export.add_argument(
        "--session", type=int, nargs="+", metavar="N", help="only these sessions' quizzes (default: all)"
    )
    quiz_preview = _add(
        quiz_commands,
        "preview",
        "Write a facilitator's HTML preview of one quiz, with the answers, feedback and pointers.",
        "uv run mlsd quiz preview --session 3",
        cmd_quiz_preview,
    )
    quiz_preview.add_argument("--session", type=int, required=True, metavar="N", help="the session (1-6)")
    quiz_preview.add_argument("--out", help="HTML file to write (default: 05_src/build/quizzes/quiz_NN.html)")

    from mlsd.grading._cli import add_grade_commands

    add_grade_commands(commands, _add)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mlsd`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        # A group without an action: show its help rather than a traceback.
        target = parser
        if args.command:
            target = next(
                p
                for a in parser._subparsers._group_actions
                for n, p in a.choices.items()
                if n == args.command
            )
        target.print_help()
        return 2
    if getattr(args, "psql_args", None) and args.psql_args[:1] == ["--"]:
        args.psql_args = args.psql_args[1:]
    try:
        return int(func(args) or 0)
    except MLSDError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
