"""Benchmark the course-data generator: rows per second and peak memory at scale.

Generates ``--rows`` applications (default 20,000,000, about 180 million rows over the five
tables) into a temporary folder, samples the process's resident memory in a thread, and prints
one table row: applications, rows over all tables, seconds, applications/s, rows/s, peak RSS.
The folder is deleted afterwards unless ``--keep`` is given.

``--generate-only`` times the generation of every table (defects included) without encoding or
writing files, to separate the generator's own speed from Parquet's.

Run it with::

    uv run python 05_src/benchmarks/bench_generator.py --rows 5000000
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil


class PeakRSS:
    """Sample this process's resident set size every ``interval`` seconds until stopped."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.peak = 0
        self._process = psutil.Process()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _generate_only(n: int, seed: int) -> int:
    from mlsd.data import resolve_scenarios
    from mlsd.data._generate import iter_units
    from mlsd.data._simulate import DEFAULT_MONTHS, make_plan

    plan = make_plan(n, seed, "2024-01", DEFAULT_MONTHS, resolve_scenarios())
    rows = 0
    with PeakRSS() as rss:
        start = time.perf_counter()
        for unit in iter_units(plan):
            if unit.rows is not None:
                rows += len(unit.rows["ingested_at"])
        seconds = time.perf_counter() - start
    print(
        f"{'applications':>12} {'rows (all)':>12} {'seconds':>8} {'apps/s':>10} {'rows/s':>11} {'peak RSS MB':>11}"
    )
    print(
        f"{n:>12,} {rows:>12,} {seconds:>8.1f} {n / seconds:>10,.0f} {rows / seconds:>11,.0f} {rss.peak / 2**20:>11,.0f}"
    )
    print("generation only: no Arrow conversion, no Parquet encoding, no files")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000_000, help="applications to generate (default 20M)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--format", dest="fmt", choices=("parquet", "csv"), default="parquet")
    parser.add_argument("--out", type=Path, default=None, help="folder to write into (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--progress", action="store_true", help="show the progress bar")
    parser.add_argument("--generate-only", action="store_true", help="generate every table, write nothing")
    args = parser.parse_args(argv)
    if args.generate_only:
        return _generate_only(args.rows, args.seed)

    from mlsd.data import generate  # imported before timing: the import is not generation

    out = args.out or Path(tempfile.mkdtemp(prefix="mlsd-bench-"))
    try:
        with PeakRSS() as rss:
            start = time.perf_counter()
            manifest = generate(
                out, rows=args.rows, seed=args.seed, fmt=args.fmt, progress=args.progress, overwrite=True
            )
            seconds = time.perf_counter() - start
        rows = sum(manifest["rows"].values())
        maxrss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        print(f"{'applications':>12} {'rows (all)':>12} {'seconds':>8} {'apps/s':>10} {'rows/s':>11} "
              f"{'peak RSS MB':>11} {'ru_maxrss MB':>12} {'on disk MB':>10}")  # fmt: skip
        print(
            f"{args.rows:>12,} {rows:>12,} {seconds:>8.1f} {args.rows / seconds:>10,.0f} {rows / seconds:>11,.0f} "
            f"{rss.peak / 2**20:>11,.0f} {maxrss_mb:>12,.0f} {_size(out) / 2**20:>10,.0f}"
        )
        print("rows by table: " + ", ".join(f"{t} {n:,}" for t, n in manifest["rows"].items()))
    finally:
        if not args.keep and args.out is None:
            shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
