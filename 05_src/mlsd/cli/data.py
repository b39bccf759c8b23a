"""``mlsd data``: generate, load and inspect the course dataset (:mod:`mlsd.data`, :mod:`mlsd.pipelines`)."""

from __future__ import annotations

import argparse
import time
from contextlib import closing
from pathlib import Path

from mlsd.cli._commands import Commands, Option, lazy, options, positive_int
from mlsd.cli._output import fail, print_table

config = lazy("config")  # package modules load when a command runs, so `mlsd --help` stays fast
data = lazy("data")
db = lazy("db")
pipelines = lazy("pipelines")

commands = Commands("data", "Generate, load and inspect the course dataset.", "uv run mlsd data load")

landing_options = options(
    Option("--scale", choices=["tiny", "small", "full"], help="data size (default: MLSD_SCALE, small)"),
    Option("--rows", type=positive_int, help="number of loan applications; overrides --scale"),
    Option("--seed", type=int, default=42, help="random seed (default 42): same seed, same files"),
    Option("--format", choices=["parquet", "csv"], default="parquet", help="landing file format"),
    Option("--out", help="landing folder (default: 05_src/data/landing/SCALE_seedSEED)"),
    Option("--overwrite", action="store_true", help="replace landing files made with other settings"),
)
"""Which landing files: shared by ``generate`` and ``load``."""


def _landing(args: argparse.Namespace) -> Path:
    if args.out:
        return Path(args.out).expanduser().resolve()
    return data.landing_dir(scale=args.scale, seed=args.seed, rows=args.rows)


def _generate(args: argparse.Namespace, out: Path) -> dict:
    started = time.perf_counter()
    manifest = data.generate(
        out,
        scale=args.scale or config.get_settings().scale,
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


@commands.command(
    "generate",
    "Write the landing files (Parquet or CSV) and manifest.json.",
    "uv run mlsd data generate --scale small --seed 42 --format parquet",
)
@landing_options
def generate(args: argparse.Namespace) -> int:
    manifest = _generate(args, _landing(args))
    print_table(
        [(t, f"{n:,}", sum(manifest["defects"][t].values())) for t, n in manifest["rows"].items()],
        ["table", "rows", "defects injected"],
    )
    return 0


@commands.command(
    "load",
    "Load the landing files into bronze with COPY, then build silver and gold (generates them if missing).",
    "uv run mlsd data load --scale small",
)
@landing_options
@Option("--verbose", action="store_true", help="print one line per file loaded")
def load(args: argparse.Namespace) -> int:
    landing = _landing(args)
    if not (landing / "manifest.json").is_file():
        print(f"No landing files in {landing} yet: generating them first.")
        _generate(args, landing)
    with closing(db.connect()) as conn:
        report = pipelines.load(conn, landing, progress=(lambda m: print("  " + m)) if args.verbose else None)
    print(
        f"Loaded {report.total_rows:,} rows from {report.files} files in {report.seconds:.1f} s "
        f"into bronze, silver and gold ({report.total_rejected} rejected)."
    )
    for reason in report.reasons:
        print(f"  rejected: {reason}")
    return 0


@commands.command(
    "status", "Row counts of every course table, the last load and its rejects.", "uv run mlsd data status"
)
def status(args: argparse.Namespace) -> int:
    with closing(db.connect()) as conn:
        tables, last = pipelines.status(conn)
    if tables.empty:
        return fail("No course tables yet: run `uv run mlsd data load`.")
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
