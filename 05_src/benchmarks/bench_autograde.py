"""Benchmark autograding: one submission's time split into nbgrader overhead and execution, and a cohort.

For each assignment in ``03_instructional_team/nbgrader/source/``, on a throwaway embedded PostgreSQL
server (or ``--database-url``) at ``--scale`` (``small`` by default, as on pull requests):

1. **one submission**: ``mlsd.grading.autograde`` of the reference solution, with the engine's own
   timings: nbgrader's start-up and ``generate_assignment`` before the notebook runs, then execution
   and scoring;
2. **peer**: the same notebook executed as a plain notebook in a fresh kernel (``mlsd.notebooks``),
   measured in the same run; the ratio is what grading adds to running the learner's code;
3. **cohort**: ``mlsd.grading.grade_cohort`` over ``--learners`` submissions (20 by default: the reference,
   the blank learner copy and a notebook with one answer missing, in turn), ``--jobs`` at a time, total and
   per learner.

Budget (issue "graded assignments"): one submission <= 60 s at ``small`` on 2 cores.

Run it with::

    uv run python 05_src/benchmarks/bench_autograde.py
    uv run python 05_src/benchmarks/bench_autograde.py --assignment assignment_1 --learners 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

BUDGET_S = 60.0


def make_cohort(folder: Path, reference: Path, blank: Path, learners: int) -> None:
    """``learners`` submission folders cycling through full marks, nothing done and one answer missing."""
    import nbformat

    partial = nbformat.read(reference, as_version=4)
    answer = next(
        c
        for c in reversed(partial.cells)
        if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")
    )
    answer.source = "raise NotImplementedError()"
    for index in range(learners):
        target = folder / f"learner_{index + 1:02d}" / reference.name
        target.parent.mkdir(parents=True)
        kind = index % 3
        if kind == 0:
            shutil.copy2(reference, target)
        elif kind == 1:
            shutil.copy2(blank, target)
        else:
            nbformat.write(partial, target)


def bench_assignment(
    assignment: str, url: str, env: dict[str, str], learners: int, work: Path, jobs: int = 1
) -> dict:
    from mlsd.grading import assignments_dir, autograde, course_dir, grade_cohort
    from mlsd.notebooks import run_notebook

    source = course_dir() / "source" / assignment
    reference = next(source.glob("*.ipynb"))
    blank = assignments_dir() / assignment / reference.name

    start = time.perf_counter()
    result = autograde(
        assignment, reference, "instructor", out_dir=work / assignment / "one", database_url=url, env=env
    )
    one_s = time.perf_counter() - start
    if result.status != "graded":
        raise SystemExit(f"{assignment}: the reference solution was not graded: {result.status}")
    timings = result.timings

    # The peer: the same notebook, run plainly in a copy of its folder (it may write files there).
    plain_dir = work / assignment / "plain"
    shutil.copytree(source, plain_dir)
    from mlsd.grading._workspace import scratch_database

    with scratch_database(url) as plain_url:  # the same kind of empty database the grader gives
        plain_env = {
            **env,
            "DATABASE_URL": plain_url,
            "MLSD_DATA_DIR": str(plain_dir / "data"),
            "MLFLOW_TRACKING_URI": f"sqlite:///{(plain_dir / 'mlflow.db').as_posix()}",
        }
        plain = run_notebook(plain_dir / reference.name, env=plain_env, cell_timeout=120)

    row = {
        "assignment": assignment,
        "score": f"{result.score:g}/{result.max_score:g}",
        "autograde_s": one_s,
        "nbgrader_setup_s": timings.get("nbgrader_setup", float("nan")),
        "execution_s": timings.get("execution_and_scoring", float("nan")),
        "plain_s": plain.seconds if plain.ok else float("nan"),
        "plain_status": plain.status,
        "cohort_s": float("nan"),
        "learners": learners,
    }
    if learners:
        submissions = work / assignment / "submissions"
        make_cohort(submissions, reference, blank, learners)
        start = time.perf_counter()
        book = grade_cohort(
            submissions,
            assignment,
            out_dir=work / assignment / "cohort",
            progress=True,
            database_url=url,
            env=env,
            jobs=jobs,
        )
        row["cohort_s"] = time.perf_counter() - start
        row["cohort_statuses"] = {k: int(v) for k, v in book["status"].value_counts().items()}
    return row


def main(argv: list[str] | None = None) -> int:
    from mlsd.grading import course_dir, list_assignments

    known = list_assignments(course_dir())
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", choices=known, action="append", help="default: every assignment")
    parser.add_argument("--scale", choices=("tiny", "small"), default="small")
    parser.add_argument("--learners", type=int, default=20, help="cohort size (0: skip the cohort)")
    parser.add_argument("--jobs", type=int, default=1, help="submissions graded at once in the cohort")
    parser.add_argument("--database-url", help="a PostgreSQL server for the scratch databases")
    args = parser.parse_args(argv)

    from mlsd._embedded import EmbeddedPostgres, free_port

    work = Path(tempfile.mkdtemp(prefix="mlsd-bench-autograde-"))
    server = None
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{os.cpu_count()} cores, load average {load:.1f} at start; scale {args.scale}")
    try:
        if args.database_url:
            url = args.database_url
        else:
            server = EmbeddedPostgres(work / "pgdata", free_port())
            url = server.start(database="bench")
        env = {"MLSD_SCALE": args.scale}
        rows = [
            bench_assignment(a, url, env, args.learners, work, args.jobs) for a in (args.assignment or known)
        ]
    finally:
        if server is not None:
            server.wipe()
        shutil.rmtree(work, ignore_errors=True)

    ok = True
    print(
        f"\n{'assignment':<14} {'score':>9} {'autograde s':>12} {'nbgrader s':>11} {'execution s':>12} "
        f"{'plain run s':>12} {'vs plain':>9}  verdict"
    )
    for r in rows:
        within = r["autograde_s"] <= BUDGET_S
        ok &= within
        ratio = r["autograde_s"] / r["plain_s"] if r["plain_s"] == r["plain_s"] else float("nan")
        print(
            f"{r['assignment']:<14} {r['score']:>9} {r['autograde_s']:>12.1f} {r['nbgrader_setup_s']:>11.1f} "
            f"{r['execution_s']:>12.1f} {r['plain_s']:>12.1f} {ratio:>8.2f}x  {'PASS' if within else 'OVER'}"
            + ("" if r["plain_status"] == "passed" else f" (plain run {r['plain_status']})")
        )
    for r in rows:
        if r["learners"]:
            print(
                f"{r['assignment']}: cohort of {r['learners']} graded in {r['cohort_s']:.0f} s with {args.jobs} job(s) "
                f"({r['cohort_s'] / r['learners']:.1f} s per learner; {r['cohort_statuses']})"
            )
    print(f"\nbudget: one submission <= {BUDGET_S:.0f} s at {args.scale}: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
