"""Benchmark serving: batch scoring into PostgreSQL (rows/s) and online latency against in-process predictions.

Sets up a throwaway world: an MLflow store in a temporary folder and, unless ``--database-url``
names a database that already holds the course's gold table, an embedded PostgreSQL server with
freshly generated data (``--scale``, tiny by default: small takes minutes to load). Trains and
registers the models with ``mlsd.training.train``, then measures:

1. **batch**: :func:`mlsd.serving.score_month` for every month of the gold table: rows scored and
   written to ``monitoring.prediction_log`` per second (model loading excluded), and the split
   between scoring and writing;
2. **online**: ``--requests`` single-row requests (300 by default) to MLflow's model server on
   loopback, against the same rows predicted in-process, one at a time, by the scikit-learn pipeline
   and by the MLflow pyfunc model (which also checks the input schema, as the server does).
   Latencies are p50 and p95 in milliseconds, with the ratio to the in-process pipeline.

Run it with::

    uv run python 05_src/benchmarks/bench_serving.py                      # tiny data, throwaway server
    uv run python 05_src/benchmarks/bench_serving.py --database-url "$(uv run mlsd db url)"
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def percentiles(seconds: list[float]) -> tuple[float, float]:
    ms = np.asarray(seconds) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


def time_calls(function, rows) -> list[float]:
    out = []
    for i in range(len(rows)):
        row = rows.iloc[[i]]
        start = time.perf_counter()
        function(row)
        out.append(time.perf_counter() - start)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="a database with gold.application_features loaded")
    parser.add_argument(
        "--scale", choices=("tiny", "small"), default="tiny", help="data to generate otherwise"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--requests", type=int, default=300, help="single-row requests (default 300)")
    parser.add_argument("--n-iter", type=int, default=4, help="tuning candidates when training")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="mlsd-bench-serving-"))
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{(work / 'mlflow' / 'mlflow.db').as_posix()}"
    os.environ["MLSD_LOG_DIR"] = str(work / "logs")
    os.environ.pop("DASK_SCHEDULER_ADDRESS", None)

    from threadpoolctl import threadpool_limits

    from mlsd import db, pipelines, serving, tracking, training
    from mlsd._embedded import EmbeddedPostgres, free_port
    from mlsd.data import generate
    from mlsd.features import gold_features

    server_pg = None
    try:
        if args.database_url:
            url, where = args.database_url, db.describe_url(args.database_url)
        else:
            server_pg = EmbeddedPostgres(work / "pgdata", free_port())
            url = server_pg.start(database="bench")
            start = time.perf_counter()
            generate(work / "landing", scale=args.scale, seed=args.seed, progress=False)
            conn = db.connect(url)
            pipelines.load(conn, work / "landing")
            conn.close()
            where = f"throwaway server, {args.scale} data loaded in {time.perf_counter() - start:.0f} s"
        conn = db.connect(url)
        start = time.perf_counter()
        summary = training.train(conn, n_iter=args.n_iter)
        print(f"database: {where}; trained in {time.perf_counter() - start:.0f} s")
        print(summary[["model", "pr_auc", "version", "alias"]].to_string(index=False), "\n")

        # -- batch -----------------------------------------------------------------------
        months = db.read_sql(conn, "SELECT DISTINCT month FROM gold.application_features ORDER BY 1")["month"]
        results = [serving.score_month(conn, month) for month in months]
        rows = sum(r.rows for r in results)
        score_s = sum(r.score_seconds for r in results)
        write_s = sum(r.write_seconds for r in results)
        print(f"{'batch scoring':<28} {'rows':>8} {'score s':>8} {'write s':>8} {'rows/s':>10}")
        print(
            f"{f'{len(results)} months, one batch each':<28} {rows:>8,} {score_s:>8.2f} {write_s:>8.2f} "
            f"{rows / (score_s + write_s):>10,.0f}"
        )
        print(f"{'(scoring only)':<28} {'':>8} {'':>8} {'':>8} {rows / score_s:>10,.0f}")
        print(f"{'(model load, first batch)':<28} {results[0].load_seconds:>8.2f} s\n")

        # -- online ----------------------------------------------------------------------
        frame = training.model_input(gold_features(conn, month=list(months[-6:])))
        sample = frame.sample(n=min(args.requests, len(frame)), random_state=args.seed)
        sklearn_model = tracking.load_model("lending-default", flavor="sklearn")
        pyfunc_model = tracking.load_model("lending-default", flavor="pyfunc")
        start = time.perf_counter()
        server = serving.serve("lending-default", port=free_port())
        started = time.perf_counter() - start
        try:
            client = server.client()
            client.predict(sample.head(3))  # warm up the connection and the worker
            with threadpool_limits(limits=1):
                sklearn_model.predict_proba(sample.head(3))
                timings = {
                    "in-process sklearn": time_calls(lambda r: sklearn_model.predict_proba(r), sample),
                    "in-process pyfunc": time_calls(lambda r: pyfunc_model.predict(r), sample),
                }
            timings["HTTP model server"] = time_calls(client.predict, sample)
            served = client.predict(sample)
        finally:
            server.stop()
        assert np.allclose(served, sklearn_model.predict_proba(sample)[:, 1]), "server and pipeline disagree"
        base_p50, base_p95 = percentiles(timings["in-process sklearn"])
        print(f"online, {len(sample)} single-row requests (server started in {started:.1f} s)")
        print(f"{'path':<22} {'p50 ms':>8} {'p95 ms':>8} {'p50 ratio':>10} {'p95 ratio':>10}")
        for name, seconds in timings.items():
            p50, p95 = percentiles(seconds)
            print(f"{name:<22} {p50:>8.2f} {p95:>8.2f} {p50 / base_p50:>9.1f}x {p95 / base_p95:>9.1f}x")
        conn.close()
    finally:
        if server_pg is not None:
            server_pg.wipe()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
