"""Bronze: landing files copied into PostgreSQL as they arrived, defects included.

Each bronze table has the landing columns (typed) plus lineage: the file a row came
from, its line (CSV) or row number (Parquet) and the load that brought it. Reloading
a file replaces its rows, so loading the same files twice leaves the same rows.

Clean files go straight through COPY. A CSV file that COPY refuses is read again row
by row: rows with the wrong number of fields or values that do not parse go to
``bronze.rejects`` with the reason and the source line, and the rest are loaded.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import psycopg2
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from psycopg2 import sql

from mlsd.data import COLUMNS, TABLES

SQL_TYPES = {
    "string": "text",
    "timestamp": "timestamptz",
    "date": "date",
    "float64": "double precision",
    "int16": "integer",
}
LINEAGE = ("_source_file", "_source_line", "_load_id")
CHUNK_ROWS = 50_000
REJECT_SAMPLE = 5


def landing_columns(table: str) -> list[str]:
    """Columns of a landing file, ``month`` last (as in CSV files)."""
    return [name for name, _ in COLUMNS[table]] + ["month"]


def _line_sequence(table: str) -> sql.Identifier:
    return sql.Identifier("bronze", f"{table}_line_seq")


def create_bronze_tables(cur) -> None:
    """Create the bronze tables, the rejects table and the load log if missing."""
    for table in TABLES:
        columns = [
            sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(SQL_TYPES[kind]))
            for name, kind in COLUMNS[table]
        ]
        cur.execute(sql.SQL("CREATE SEQUENCE IF NOT EXISTS {}").format(_line_sequence(table)))
        cur.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {table} ({columns}, month text, "
                "_source_file text NOT NULL DEFAULT '', _source_line bigint DEFAULT nextval({seq}), "
                "_load_id bigint)"
            ).format(
                table=sql.Identifier("bronze", table),
                columns=sql.SQL(", ").join(columns),
                seq=sql.Literal(f"bronze.{table}_line_seq"),
            )
        )
        cur.execute(
            sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (_source_file)").format(
                sql.Identifier(f"{table}_source_file_idx"), sql.Identifier("bronze", table)
            )
        )
    cur.execute(
        """
        CREATE TABLE IF NOT EXISTS bronze.rejects (
            load_id bigint, table_name text NOT NULL, source_file text NOT NULL,
            source_line bigint, reason text NOT NULL, raw_line text, rejected_at timestamptz DEFAULT now())
        """
    )
    cur.execute(
        """
        CREATE TABLE IF NOT EXISTS bronze.load_log (
            load_id bigserial PRIMARY KEY, landing_dir text, seed integer, scale text, as_of timestamptz,
            started_at timestamptz NOT NULL DEFAULT clock_timestamp(), finished_at timestamptz,
            files integer, rows_loaded bigint, rows_rejected bigint)
        """
    )


@dataclass
class FileResult:
    """What loading one file did."""

    table: str
    file: str
    rows: int = 0
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)


def _set_lineage_defaults(cur, table: str, rel: str, load_id: int, first_line: int) -> None:
    target = sql.Identifier("bronze", table)
    cur.execute(
        sql.SQL(
            "ALTER TABLE {} ALTER COLUMN _source_file SET DEFAULT {}, ALTER COLUMN _load_id SET DEFAULT {}"
        ).format(target, sql.Literal(rel), sql.Literal(load_id))
    )
    cur.execute("SELECT setval(%s, %s, false)", (f"bronze.{table}_line_seq", first_line))


def _copy_statement(table: str, header: bool) -> sql.Composed:
    return sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv, HEADER {}, NULL '')").format(
        sql.Identifier("bronze", table),
        sql.SQL(", ").join(sql.Identifier(c) for c in landing_columns(table)),
        sql.SQL("true" if header else "false"),
    )


def forget_file(cur, table: str, rel: str) -> None:
    """Remove the rows and rejects of an earlier load of the same file."""
    cur.execute(
        sql.SQL("DELETE FROM {} WHERE _source_file = %s").format(sql.Identifier("bronze", table)), (rel,)
    )
    cur.execute("DELETE FROM bronze.rejects WHERE table_name = %s AND source_file = %s", (table, rel))


def forget_other_files(cur, table: str, keep: list[str]) -> None:
    """Remove rows and rejects of files that are not in ``keep`` (an earlier, different landing folder)."""
    cur.execute(
        sql.SQL("DELETE FROM {} WHERE _source_file <> ALL(%s)").format(sql.Identifier("bronze", table)),
        (keep,),
    )
    cur.execute("DELETE FROM bronze.rejects WHERE table_name = %s AND source_file <> ALL(%s)", (table, keep))


def load_csv(cur, table: str, path: Path, rel: str, load_id: int) -> FileResult:
    """Load one CSV landing file: COPY when it is clean, row-by-row checks when it is not."""
    result = FileResult(table, rel)
    _set_lineage_defaults(cur, table, rel, load_id, first_line=2)  # line 1 is the header
    cur.execute("SAVEPOINT csv_file")
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            cur.copy_expert(_copy_statement(table, header=True), handle)
        result.rows = cur.rowcount
        cur.execute("RELEASE SAVEPOINT csv_file")
        return result
    except Exception as err:  # COPY refused the file: find the bad rows one by one
        if not isinstance(
            err, psycopg2.DataError | psycopg2.errors.BadCopyFileFormat | psycopg2.IntegrityError
        ):
            raise
        cur.execute("ROLLBACK TO SAVEPOINT csv_file")
    return _load_csv_checked(cur, table, path, rel, load_id, result)


_PARSERS = {
    "string": str,
    "timestamp": lambda v: datetime.fromisoformat(v.replace(" ", "T", 1)),
    "date": date.fromisoformat,
    "float64": float,
    "int16": lambda v: int(float(v)) if float(v).is_integer() else int(v),
}


def _check_row(row: list[str], kinds: list[tuple[str, str]]) -> str | None:
    """The reason a CSV row cannot be loaded, or None when it can."""
    if len(row) != len(kinds):
        return f"expected {len(kinds)} fields, found {len(row)}"
    for value, (name, kind) in zip(row, kinds, strict=True):
        if value == "":
            continue
        try:
            parsed = _PARSERS[kind](value)
        except (ValueError, OverflowError):
            return f"{name}: cannot read {value[:40]!r} as {kind}"
        if kind == "int16" and not -(2**31) <= parsed < 2**31:
            return f"{name}: {value[:40]!r} is out of range"
    return None


def _load_csv_checked(cur, table: str, path: Path, rel: str, load_id: int, result: FileResult) -> FileResult:
    kinds = list(COLUMNS[table]) + [("month", "string")]
    expected = [name for name, _ in kinds]
    rejects: list[tuple] = []
    with open(path, encoding="utf-8", newline="", errors="replace") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header != expected:
            reason = f"header {header} does not match the {table} columns {expected}"
            data_lines = sum(1 for _ in reader)
            _write_rejects(cur, [(load_id, table, rel, 1, reason, ",".join(header or []))])
            result.rejected, result.reasons = max(data_lines, 1), [reason]
            return result
        for good in _chunks_of_good_rows(reader, kinds, rejects, load_id, table, rel):
            buffer, count, first_line = good
            cur.execute("SELECT setval(%s, %s, false)", (f"bronze.{table}_line_seq", first_line))
            # Good rows keep their own line numbers: load them one run of consecutive lines at a time.
            cur.copy_expert(_copy_statement(table, header=False), buffer)
            result.rows += count
    result.rejected = len(rejects)
    result.reasons = [r[4] for r in rejects[:REJECT_SAMPLE]]
    _write_rejects(cur, rejects)
    return result


def _chunks_of_good_rows(
    reader, kinds, rejects, load_id, table, rel
) -> Iterator[tuple[io.StringIO, int, int]]:
    """Runs of consecutive good rows as CSV buffers, with their first line number."""
    buffer, writer, count, first = io.StringIO(), None, 0, None
    writer = csv.writer(buffer)
    for row in reader:
        line = reader.line_num
        reason = _check_row(row, kinds)
        if reason is not None:
            rejects.append((load_id, table, rel, line, reason, ",".join(row)[:2000]))
            if count:
                buffer.seek(0)
                yield buffer, count, first
                buffer, count, first = io.StringIO(), 0, None
                writer = csv.writer(buffer)
            continue
        if first is None:
            first = line
        writer.writerow(row)
        count += 1
        if count >= CHUNK_ROWS:
            buffer.seek(0)
            yield buffer, count, first
            buffer, count, first = io.StringIO(), 0, None
            writer = csv.writer(buffer)
    if count:
        buffer.seek(0)
        yield buffer, count, first


def _write_rejects(cur, rejects: list[tuple]) -> None:
    if rejects:
        cur.executemany(
            "INSERT INTO bronze.rejects (load_id, table_name, source_file, source_line, reason, raw_line) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            rejects,
        )


def load_parquet(cur, table: str, path: Path, rel: str, load_id: int, month: str) -> FileResult:
    """Load one Parquet landing file in record batches (bounded memory) through COPY."""
    result = FileResult(table, rel)
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as err:  # truncated or not Parquet at all
        reason = f"not a readable Parquet file ({err})"
        _write_rejects(cur, [(load_id, table, rel, None, reason, None)])
        result.rejected, result.reasons = 1, [reason]
        return result
    names = [name for name, _ in COLUMNS[table]]
    missing = [n for n in names if n not in parquet.schema_arrow.names]
    if missing:
        reason = f"missing columns {missing}"
        _write_rejects(cur, [(load_id, table, rel, None, reason, None)])
        result.rejected, result.reasons = parquet.metadata.num_rows or 1, [reason]
        return result
    _set_lineage_defaults(cur, table, rel, load_id, first_line=1)
    for batch in parquet.iter_batches(batch_size=CHUNK_ROWS, columns=names):
        arrow = pa.Table.from_batches([batch]).append_column("month", pa.array([month] * batch.num_rows))
        buffer = io.BytesIO()
        pacsv.write_csv(arrow, buffer, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
        buffer.seek(0)
        cur.copy_expert(_copy_statement(table, header=False), io.TextIOWrapper(buffer, encoding="utf-8"))
        result.rows += batch.num_rows
    return result
