"""Benchmark autograding: the sandbox's and the comparisons' cost against the plain notebook run.

For each assignment in ``03_instructional_team/nbgrader/source/``, on a throwaway embedded PostgreSQL
server (or ``--database-url``) at ``--scale`` (``small`` by default), all in one run:

1. **plain**: the reference notebook executed as a plain notebook in a fresh kernel against an empty
   database (``mlsd.notebooks``): the peer, what running the learner's code costs anyway;
2. **reference values**: the first ``autograde`` computes the reference solution's values (a second,
   sandboxed run of the source notebook) and caches them;
3. **sandboxed**: ``autograde`` of the reference solution with the reference values cached: the time a
   submission costs (a Python start-up, nbgrader, the sandboxed kernel, the grader's database reads and
   comparisons);
4. **no sandbox**: the same with ``--no-sandbox`` (the kernel as the grader's user, no namespaces or limits);
5. **cohort** (``--learners N``): ``grade_cohort`` over N submissions, ``--jobs`` at a time.

Budgets: sandboxed <= 1.2x no sandbox; sandboxed (reference cached) <= 1.3x the plain run; <= 60 s per
submission at ``small`` on 2 cores for assignment 2. Run it as root (the sandbox's dedicated user)::

    uv run python 05_src/benchmarks/bench_autograde.py
    uv run python 05_src/benchmarks/bench_autograde.py --assignment assignment_2 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

BUDGET_S = 60.0
SANDBOX_RATIO = 1.2
PLAIN_RATIO = 1.3


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


def plain_run(source: Path, reference: Path, url: str, env: dict[str, str], work: Path) -> float:
    """Seconds to run the notebook plainly, in a copy of its folder, against an empty database."""
    from mlsd.grading._database import scratch_database
    from mlsd.notebooks import run_notebook

    folder = work / f"plain-{time.monotonic_ns()}"
    shutil.copytree(source, folder)
    with scratch_database(url) as scratch:
        plain_env = {
            **env,
            "DATABASE_URL": scratch.admin_url,
            "MLSD_DATA_DIR": str(folder / "data"),
            "MLSD_LOG_DIR": str(folder / "logs"),
            "MLFLOW_TRACKING_URI": f"sqlite:///{(folder / 'mlflow.db').as_posix()}",
        }
        run = run_notebook(folder / reference.name, env=plain_env, cell_timeout=300)
    if not run.ok:
        raise SystemExit(f"the plain run of {reference.name} failed: {run.describe()}")
    return run.seconds


def graded(assignment: str, reference: Path, options, work: Path) -> tuple[float, object]:
    from mlsd.grading import autograde

    started = time.perf_counter()
    result = autograde(
        assignment, reference, "instructor", out_dir=work / f"out-{time.monotonic_ns()}", options=options
    )
    seconds = time.perf_counter() - started
    if result.status != "graded" or result.score != sum(
        q.max_points for q in result.questions if q.points is not None
    ):
        raise SystemExit(
            f"{assignment}: the reference solution was not graded in full: {result.summary_markdown()}"
        )
    return seconds, result


def bench_assignment(assignment: str, url: str, env: dict[str, str], work: Path, repeat: int) -> dict:
    from mlsd.grading import GradingOptions, course_dir

    source = course_dir() / "source" / assignment
    reference = next(source.glob("*.ipynb"))
    options = GradingOptions(database_url=url, env=env, reference_cache=work / "reference")
    first, _ = graded(assignment, reference, options, work)  # computes and caches the reference values
    plain, sandboxed, unsandboxed, child = [], [], [], []
    for _ in range(repeat):
        plain.append(plain_run(source, reference, url, env, work))
        seconds, result = graded(assignment, reference, options, work)
        sandboxed.append(seconds)
        child.append(result.timings.get("setup", float("nan")))
        unsandboxed.append(graded(assignment, reference, replace(options, sandbox=False), work)[0])
    return {
        "assignment": assignment,
        "first": first,
        "plain": statistics.median(plain),
        "sandboxed": statistics.median(sandboxed),
        "unsandboxed": statistics.median(unsandboxed),
        "setup": statistics.median(child),
    }


def bench_cohort(assignment: str, url: str, env: dict[str, str], work: Path, learners: int, jobs: int) -> str:
    from mlsd.grading import GradingOptions, assignments_dir, course_dir, grade_cohort

    source = course_dir() / "source" / assignment
    reference = next(source.glob("*.ipynb"))
    submissions = work / assignment / "submissions"
    make_cohort(submissions, reference, assignments_dir() / assignment / reference.name, learners)
    options = GradingOptions(database_url=url, env=env, reference_cache=work / "reference")
    started = time.perf_counter()
    book = grade_cohort(
        submissions, assignment, out_dir=work / assignment / "cohort", options=options, jobs=jobs,
        record=False,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    statuses = {k: int(v) for k, v in book["status"].value_counts().items()}
    return f"{assignment}: cohort of {learners} in {seconds:.0f} s with {jobs} job(s) ({seconds / learners:.1f} s each; {statuses})"


def main(argv: list[str] | None = None) -> int:
    from mlsd.grading import course_dir, list_assignments

    known = list_assignments(course_dir())
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", choices=known, action="append", help="default: every assignment")
    parser.add_argument("--scale", choices=("tiny", "small"), default="small")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of each measurement (the median is shown)"
    )
    parser.add_argument("--learners", type=int, default=0, help="cohort size (0: no cohort)")
    parser.add_argument("--jobs", type=int, default=1, help="submissions graded at once in the cohort")
    parser.add_argument("--database-url", help="a PostgreSQL server for the scratch databases")
    args = parser.parse_args(argv)

    from mlsd._embedded import EmbeddedPostgres, free_port

    work = Path(tempfile.mkdtemp(prefix="mlsd-bench-autograde-"))
    server = None
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"{os.cpu_count()} cores, load average {load:.1f} at start; scale {args.scale}; median of {args.repeat}"
    )
    try:
        if args.database_url:
            url = args.database_url
        else:
            server = EmbeddedPostgres(work / "pgdata", free_port())
            url = server.start(database="bench")
        env = {"MLSD_SCALE": args.scale}
        rows = [bench_assignment(a, url, env, work, args.repeat) for a in (args.assignment or known)]
        cohorts = (
            [bench_cohort(a, url, env, work, args.learners, args.jobs) for a in (args.assignment or known)]
            if args.learners
            else []
        )
    finally:
        if server is not None:
            server.wipe()
        shutil.rmtree(work, ignore_errors=True)

    ok = True
    print(
        f"\n{'assignment':<13} {'plain s':>8} {'1st (ref) s':>11} {'sandboxed s':>11} {'no sandbox s':>12} "
        f"{'setup s':>10} {'vs no sandbox':>13} {'vs plain':>9}  verdict"
    )
    for r in rows:
        vs_unsandboxed = r["sandboxed"] / r["unsandboxed"]
        vs_plain = r["sandboxed"] / r["plain"]
        within = vs_unsandboxed <= SANDBOX_RATIO and vs_plain <= PLAIN_RATIO and r["sandboxed"] <= BUDGET_S
        ok &= within
        print(
            f"{r['assignment']:<13} {r['plain']:>8.1f} {r['first']:>11.1f} {r['sandboxed']:>11.1f} "
            f"{r['unsandboxed']:>12.1f} {r['setup']:>10.1f} {vs_unsandboxed:>12.2f}x {vs_plain:>8.2f}x  "
            f"{'PASS' if within else 'OVER'}"
        )
    for line in cohorts:
        print(line)
    print(
        f"\nbudgets: sandboxed <= {SANDBOX_RATIO}x no sandbox, <= {PLAIN_RATIO}x the plain run, "
        f"<= {BUDGET_S:.0f} s: {'PASS' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
