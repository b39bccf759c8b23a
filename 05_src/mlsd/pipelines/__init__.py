"""The medallion layers: landing files -> bronze -> silver -> gold, in SQL (and in Dask).

* **bronze**: the landing files as they arrived, loaded with COPY, defects included,
  with the file and line each row came from; malformed rows go to ``bronze.rejects``.
* **silver**: one clean, typed row per entity: duplicates removed, categories spelled
  one way, impossible values and sentinel codes set to NULL (``05_src/sql/silver/``).
* **gold**: one row per application with point-in-time features and the label when it
  has been observed (``05_src/sql/gold/``).

A load runs in one transaction: it either finishes or leaves the previous tables as
they were. Loading the same files again replaces their rows, never duplicates them.
The same silver and gold transforms exist in Dask (:mod:`mlsd.pipelines.dask_layers`) for
data that outgrows memory; a test checks that both give the same tables.

Example
-------
>>> from mlsd import db, pipelines
>>> conn = db.connect()  # doctest: +SKIP
>>> report = pipelines.load(conn, "05_src/data/landing/small_seed42")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from psycopg2.errors import LockNotAvailable
from psycopg2.extensions import TRANSACTION_STATUS_IDLE

from mlsd import db
from mlsd.config import repo_root
from mlsd.data import CATEGORY_CANONICAL, TABLES
from mlsd.errors import MLSDError
from mlsd.pipelines import _bronze

__all__ = [
    "DataLoadError",
    "LoadReport",
    "SILVER_TABLES",
    "build_gold",
    "build_silver",
    "load",
    "quality_report",
    "sql_dir",
    "status",
]

SILVER_TABLES = ("customers", "applications", "bureau", "repayments", "outcomes")
LOCK_TIMEOUT = "30s"


class DataLoadError(MLSDError):
    """A load could not proceed (missing files, nothing loadable)."""


def sql_dir() -> Path:
    """Folder of the SQL files the pipelines run (``05_src/sql``)."""
    return repo_root() / "05_src" / "sql"


def _run_sql_file(cur, path: Path, params: dict | None = None) -> None:
    cur.execute(path.read_text(encoding="utf-8"), params)


@dataclass
class LoadReport:
    """What a load did: rows per table, rejects with sample reasons, time taken."""

    load_id: int
    landing_dir: str
    rows: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    files: int = 0
    seconds: float = 0.0

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    @property
    def total_rejected(self) -> int:
        return sum(self.rejected.values())


def _landing_files(landing: Path, manifest: dict | None) -> list[tuple[str, Path, str]]:
    """(table, path, month) for every landing file, tables in load order."""
    found = []
    for table in TABLES:
        if manifest and manifest.get("files", {}).get(table):
            paths = [landing / rel for rel in manifest["files"][table]]
        else:
            paths = sorted((landing / table).rglob("*.parquet")) + sorted((landing / table).glob("*.csv"))
        for path in paths:
            if path.suffix == ".parquet":
                month = next((p.split("=", 1)[1] for p in path.parts if p.startswith("month=")), "")
            else:
                month = path.stem.rsplit("_", 1)[-1]
            found.append((table, path, month))
    return found


def load(
    conn,
    landing_dir: str | Path,
    *,
    as_of: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> LoadReport:
    """Load landing files into bronze, then rebuild silver and gold, in one transaction.

    Parameters
    ----------
    conn : psycopg2 connection
        The course database; the load commits on success and rolls back on any error.
    landing_dir : path-like
        Folder written by ``mlsd data generate`` (with ``manifest.json``), or any folder
        with ``{table}/month=YYYY-MM/*.parquet`` or ``{table}/{table}_YYYY-MM.csv`` files.
    as_of : str, optional
        When the data set is observed; labels observed later are left out of gold.
        Defaults to the manifest's ``as_of``, else the latest outcome.
    progress : callable, optional
        Called with a short message after each file.

    Raises
    ------
    DataLoadError
        When there are no landing files, or when every row is malformed.
    """
    started = time.perf_counter()
    landing = Path(landing_dir)
    manifest_path = landing / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else None
    except json.JSONDecodeError as err:
        raise DataLoadError(
            f"{manifest_path} is not valid JSON ({err}): regenerate the landing files with "
            "`uv run mlsd data generate --overwrite`."
        ) from None
    files = _landing_files(landing, manifest)
    missing = [str(p) for _, p, _ in files if not p.is_file()]
    if not files or missing:
        raise DataLoadError(
            f"No landing files to load in {landing}"
            + (f" ({len(missing)} listed in manifest.json are missing, e.g. {missing[0]})" if missing else "")
            + ": generate them with `uv run mlsd data generate`, then run `uv run mlsd data load` again."
        )
    as_of = as_of or (manifest or {}).get("as_of")
    db.ensure_schemas(conn)
    try:
        return _load(conn, landing, files, manifest, as_of, progress, started)
    except LockNotAvailable:
        raise DataLoadError(
            f"Another session kept the course tables locked for {LOCK_TIMEOUT}, so the load stopped and "
            "changed nothing. It is usually a notebook with an open transaction: run `conn.rollback()` "
            "there (or restart its kernel), then load again."
        ) from None


def _load(conn, landing, files, manifest, as_of, progress, started) -> LoadReport:
    with conn, conn.cursor() as cur:
        cur.execute("SET LOCAL timezone = 'UTC'")
        cur.execute("SELECT set_config('lock_timeout', %s, true)", (LOCK_TIMEOUT,))
        _bronze.create_bronze_tables(cur)
        cur.execute(
            "INSERT INTO bronze.load_log (landing_dir, seed, scale, as_of) VALUES (%s, %s, %s, %s) RETURNING load_id",
            (str(landing), (manifest or {}).get("seed"), (manifest or {}).get("scale"), as_of),
        )
        report = LoadReport(load_id=cur.fetchone()[0], landing_dir=str(landing), files=len(files))
        for table, path, month in files:
            rel = path.relative_to(landing).as_posix()
            _bronze.forget_file(cur, table, rel)
            if path.suffix == ".parquet":
                result = _bronze.load_parquet(cur, table, path, rel, report.load_id, month)
            else:
                result = _bronze.load_csv(cur, table, path, rel, report.load_id)
            report.rows[table] = report.rows.get(table, 0) + result.rows
            report.rejected[table] = report.rejected.get(table, 0) + result.rejected
            report.reasons += [f"{rel}: {r}" for r in result.reasons][: max(0, 10 - len(report.reasons))]
            if progress:
                progress(
                    f"{rel}: {result.rows} rows"
                    + (f", {result.rejected} rejected" if result.rejected else "")
                )
        # bronze mirrors the landing folder: rows of files that are no longer there go
        loaded_files = {
            t: [p.relative_to(landing).as_posix() for tt, p, _ in files if tt == t] for t in SILVER_TABLES
        }
        for table, rels in loaded_files.items():
            _bronze.forget_other_files(cur, table, rels)
        if report.total_rows == 0:
            raise DataLoadError(
                f"Every row in {landing} was rejected ({report.total_rejected} rows); nothing was loaded and the "
                f"previous tables are unchanged. First reasons: {'; '.join(report.reasons[:3])}"
            )
        build_silver(cur)
        if as_of is None:
            cur.execute("SELECT max(observed_at) + interval '1 second' FROM silver.outcomes")
            as_of = cur.fetchone()[0]
        build_gold(cur, as_of)
        report.seconds = time.perf_counter() - started
        cur.execute(
            "UPDATE bronze.load_log SET finished_at = clock_timestamp(), files = %s, rows_loaded = %s, "
            "rows_rejected = %s, as_of = %s WHERE load_id = %s",
            (report.files, report.total_rows, report.total_rejected, as_of, report.load_id),
        )
    return report


def _load_category_map(cur) -> None:
    cur.execute("DROP TABLE IF EXISTS silver.category_map")
    cur.execute(
        "CREATE TABLE silver.category_map (column_name text, raw_value text, canonical text, "
        "PRIMARY KEY (column_name, raw_value))"
    )
    rows = [
        (col, raw, canon) for col, mapping in CATEGORY_CANONICAL.items() for raw, canon in mapping.items()
    ]
    cur.executemany("INSERT INTO silver.category_map VALUES (%s, %s, %s)", rows)


def build_silver(cur) -> None:
    """Rebuild the silver tables from bronze (``05_src/sql/silver/*.sql``, in name order)."""
    _load_category_map(cur)
    for path in sorted((sql_dir() / "silver").glob("*.sql")):
        _run_sql_file(cur, path)


def build_gold(cur, as_of) -> None:
    """Rebuild the gold tables from silver (``05_src/sql/gold/*.sql``); labels observed before ``as_of``."""
    for path in sorted((sql_dir() / "gold").glob("*.sql")):
        _run_sql_file(cur, path, {"as_of": as_of})


def quality_report(conn):
    """Defects found in bronze per table and kind, as silver resolves them (a DataFrame)."""
    return db.read_sql(conn, (sql_dir() / "quality" / "defects.sql").read_text(encoding="utf-8"))


def status(conn):
    """Row counts of every course table, the last load and its rejects (a DataFrame and a dict)."""
    tables = db.read_sql(
        conn,
        """
        SELECT n.nspname AS schema, c.relname AS table_name, c.oid::regclass::text AS qualified
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%s)
        ORDER BY 1, 2
        """,
        (list(db.SCHEMAS),),
    )
    counts = []
    was_idle = conn.info.transaction_status == TRANSACTION_STATUS_IDLE
    with conn.cursor() as cur:
        for qualified in tables["qualified"]:
            cur.execute(f"SELECT count(*) FROM {qualified}")  # regclass text is already quoted
            counts.append(cur.fetchone()[0])
        last = None
        cur.execute("SELECT to_regclass('bronze.load_log') IS NOT NULL")
        if cur.fetchone()[0]:
            cur.execute(
                "SELECT load_id, finished_at, files, rows_loaded, rows_rejected, landing_dir FROM bronze.load_log "
                "WHERE finished_at IS NOT NULL ORDER BY load_id DESC LIMIT 1"
            )
            row = cur.fetchone()
            if row:
                last = dict(
                    zip(
                        ["load_id", "finished_at", "files", "rows", "rejected", "landing_dir"],
                        row,
                        strict=True,
                    )
                )
    if was_idle:
        conn.commit()  # release the locks taken by the counts
    tables = tables.drop(columns="qualified").assign(rows=counts)
    return tables, last
