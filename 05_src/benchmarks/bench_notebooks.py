"""Benchmark the session notebooks: wall time and peak memory of each, at each scale, against budgets.

Sets up a throwaway world per scale (an embedded PostgreSQL server, a data folder and an MLflow
store in a temporary folder) unless ``--database-url`` names a server to use, prepares the course
data once (timed apart: a facilitator does it before class), then runs every notebook in
``01_materials/labs/`` in a fresh kernel as ``mlsd course run`` does.

The peer, measured in the same run, is a notebook that only starts a kernel and calls
``course.setup()``: the fixed cost every notebook pays. The ratio shows how much of a notebook's time
is its own work. Budgets (issue "session notebooks"): each notebook <= 60 s and all six <= 4 min at
``small``, peak memory < 2 GB; ``full`` is reported, not budgeted.

Run it with::

    uv run python 05_src/benchmarks/bench_notebooks.py                     # small
    uv run python 05_src/benchmarks/bench_notebooks.py --scales small full
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

EACH_BUDGET_S = 60.0
TOTAL_BUDGET_S = 240.0
MEMORY_BUDGET_MB = 2048.0


def peer_notebook(folder: Path) -> Path:
    """A notebook that starts a kernel and prepares the course session, nothing else."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("from mlsd import course\nsession = course.setup()\nsession")]
    path = folder / "00_kernel_and_setup.ipynb"
    nbformat.write(nb, path)
    return path


def bench_scale(scale: str, database_url: str | None, repeat: int) -> tuple[list[tuple], bool]:
    from mlsd import course, db
    from mlsd._embedded import EmbeddedPostgres, free_port
    from mlsd.notebooks import run_notebook

    work = Path(tempfile.mkdtemp(prefix=f"mlsd-bench-notebooks-{scale}-"))
    saved = dict(os.environ)
    server = None
    try:
        os.environ.update(
            {
                "MLSD_SCALE": scale,
                "MLSD_DATA_DIR": str(work / "data"),
                "MLSD_LOG_DIR": str(work / "logs"),
                "MLFLOW_TRACKING_URI": f"sqlite:///{(work / 'mlflow.db').as_posix()}",
            }
        )
        os.environ.pop("DASK_SCHEDULER_ADDRESS", None)
        if database_url:
            url = database_url
        else:
            server = EmbeddedPostgres(work / "pgdata", free_port())
            url = server.start(database="bench")
        os.environ["DATABASE_URL"] = url

        start = time.perf_counter()
        conn = db.connect(url)
        db.ensure_schemas(conn)
        course.ensure_course_data(conn, scale=scale)
        conn.close()
        print(
            f"\n[{scale}] course data ready in {time.perf_counter() - start:.0f} s ({db.describe_url(url)})"
        )

        env = {
            k: os.environ[k] for k in ("MLSD_SCALE", "MLSD_DATA_DIR", "MLSD_LOG_DIR", "MLFLOW_TRACKING_URI")
        }
        env["DATABASE_URL"] = url
        peer = peer_notebook(work)
        peer_runs = [run_notebook(peer, env=env) for _ in range(repeat)]
        peer_s = min(r.seconds for r in peer_runs)
        rows, ok = [], all(r.ok for r in peer_runs)
        rows.append((scale, peer.name + " (peer)", peer_s, max(r.peak_memory_mb for r in peer_runs), "", ""))
        total = 0.0
        for path in course.lab_notebooks():
            print(f"[{scale}] {path.name} ...", flush=True)
            runs = [run_notebook(path, cell_timeout=600, env=env) for _ in range(repeat)]
            failed = [r for r in runs if not r.ok]
            seconds = min(r.seconds for r in runs)
            peak = max(r.peak_memory_mb for r in runs)
            total += seconds
            within = seconds <= EACH_BUDGET_S and peak < MEMORY_BUDGET_MB
            if scale == "small":
                ok &= within and not failed
            verdict = failed[0].describe() if failed else ("PASS" if within else "OVER")
            rows.append((scale, path.name, seconds, peak, f"{seconds / peer_s:.1f}x", verdict))
        total_verdict = "PASS" if total <= TOTAL_BUDGET_S else "OVER"
        if scale == "small":
            ok &= total <= TOTAL_BUDGET_S
        rows.append(
            (scale, "all six", total, max(r[3] for r in rows), f"{total / peer_s:.1f}x", total_verdict)
        )
        return rows, ok
    finally:
        os.environ.clear()
        os.environ.update(saved)
        if server is not None:
            server.wipe()
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", nargs="+", choices=("tiny", "small", "full"), default=["small"])
    parser.add_argument("--database-url", help="a PostgreSQL server to use instead of a throwaway one")
    parser.add_argument("--repeat", type=int, default=1, help="runs per notebook; the fastest counts")
    args = parser.parse_args(argv)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{os.cpu_count()} cores, load average {load:.1f} at start")
    rows, ok = [], True
    for scale in args.scales:
        scale_rows, scale_ok = bench_scale(scale, args.database_url, args.repeat)
        rows += scale_rows
        ok &= scale_ok
    print(f"\n{'scale':<6} {'notebook':<36} {'seconds':>8} {'peak MB':>8} {'vs peer':>8}  verdict")
    for scale, name, seconds, peak, ratio, verdict in rows:
        print(f"{scale:<6} {name:<36} {seconds:>8.1f} {peak:>8.0f} {ratio:>8}  {verdict}")
    print(
        f"\nbudget at small: each <= {EACH_BUDGET_S:.0f} s, all <= {TOTAL_BUDGET_S:.0f} s, "
        f"peak < {MEMORY_BUDGET_MB:.0f} MB: {'PASS' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
