"""Each graded submission's own database, owned by its own role, and the grader's reads of it.

The role is an ordinary one: not a superuser, no ``CREATEDB``/``CREATEROLE``/``REPLICATION``/
``BYPASSRLS``, no membership of ``pg_execute_server_program``, ``pg_read_server_files`` or
``pg_write_server_files`` (so no ``COPY ... FROM PROGRAM`` and no server files; client-side COPY,
``cursor.copy_expert`` with ``FROM STDIN``, still works). It owns only the submission's database,
which nobody else may connect to. Both are dropped when grading ends.

After the kernel has finished, the grader reads the tables that checks name with its own
connection; it reads plain tables only (never a view, a function or a foreign table, which would
run learner-defined code with the grader's rights).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

from mlsd.grading._common import GradingError

__all__ = ["ScratchDatabase", "read_tables", "scratch_database"]


def with_database(url: str, name: str) -> str:
    """``url`` pointing at another database on the same server.

    Examples
    --------
    >>> with_database("postgresql://u:p@localhost:5432/mlsd?sslmode=disable", "other")
    'postgresql://u:p@localhost:5432/other?sslmode=disable'
    """
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@dataclass(frozen=True)
class ScratchDatabase:
    """A submission's database: its name, its role, and the URLs to reach it."""

    name: str
    role: str
    password: str
    admin_url: str  # the grader's role, on this database

    def learner_url(self, socket_dir: str, port: int = 5432) -> str:
        """The URL learner code uses: this role, this database, through the proxy's Unix socket."""
        return (
            f"postgresql://{quote(self.role)}:{quote(self.password)}@/{quote(self.name)}"
            f"?host={quote(socket_dir)}&port={port}"
        )


def _explain(server_url: str, err: Exception, what: str) -> GradingError:
    from mlsd.db import describe_url

    return GradingError(
        f"The grader cannot {what} at {describe_url(server_url)} ({' '.join(str(err).split())[:200]}). "
        "Start the server (`uv run mlsd db up`) or set DATABASE_URL to a server where the grader's role "
        "may CREATE DATABASE and CREATE ROLE."
    )


@contextmanager
def scratch_database(server_url: str, *, temp_file_limit_mb: int = 1024) -> Iterator[ScratchDatabase]:
    """Create a database owned by a new, unprivileged role; yield it; drop both afterwards."""
    import psycopg2
    from psycopg2 import sql

    token = uuid.uuid4().hex[:12]
    name, role, password = f"mlsd_grade_{token}", f"mlsd_learner_{token}", secrets.token_urlsafe(18)
    try:
        admin = psycopg2.connect(server_url, connect_timeout=10)
    except psycopg2.Error as err:
        raise _explain(server_url, err, "reach PostgreSQL to create a scratch database") from None
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(
                sql.SQL(
                    "CREATE ROLE {} LOGIN PASSWORD %s NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
                    "NOBYPASSRLS NOINHERIT CONNECTION LIMIT 32"
                ).format(sql.Identifier(role)),
                (password,),
            )
            cur.execute(
                sql.SQL("ALTER ROLE {} SET temp_file_limit = %s").format(sql.Identifier(role)),
                (f"{int(temp_file_limit_mb)}MB",),
            )
            cur.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(role))
            )
            cur.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(name)))
    except psycopg2.Error as err:
        _drop(admin, name, role)
        admin.close()
        raise _explain(server_url, err, "create a scratch database and its role on PostgreSQL") from None
    try:
        yield ScratchDatabase(name, role, password, with_database(server_url, name))
    finally:
        _drop(admin, name, role)
        admin.close()


def _drop(admin, name: str, role: str) -> None:
    import psycopg2
    from psycopg2 import sql

    statements = [
        (
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE (datname = %s OR usename = %s) AND pid <> pg_backend_pid()",
            (name, role),
        ),
        (sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)), None),
        (sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)), None),
    ]
    for statement, params in statements:
        try:
            with admin.cursor() as cur:
                cur.execute(statement, params)
        except psycopg2.Error:
            pass  # a database or role left behind costs disk space, never a wrong grade


# -- the grader's reads ------------------------------------------------------------------------


def read_tables(admin_url: str, tables: Sequence[str], *, max_rows: int = 200_000) -> dict:
    """Read plain tables ``schema.table`` with the grader's own connection, after the kernel ended.

    Returns ``{name: DataFrame}``; a name that is missing, not a plain table (a view, a foreign
    table...) or larger than ``max_rows`` maps to a short reason (str) instead.
    """
    import pandas as pd
    import psycopg2
    from psycopg2 import sql

    out: dict[str, object] = {}
    if not tables:
        return out
    conn = psycopg2.connect(admin_url, connect_timeout=10)
    try:
        conn.set_session(readonly=True)
        with conn.cursor() as cur:
            cur.execute("SET search_path = pg_catalog, pg_temp")
            cur.execute("SET statement_timeout = '60s'")
            for name in tables:
                schema, _, table = name.rpartition(".")
                cur.execute(
                    "SELECT c.relkind, c.relrowsecurity FROM pg_catalog.pg_class c "
                    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = %s AND c.relname = %s",
                    (schema or "public", table),
                )
                found = cur.fetchone()
                if found is None:
                    out[name] = "the table does not exist"
                    continue
                if found[0] not in ("r", "p") or found[1]:
                    out[name] = "it is not a plain table"
                    continue
                target = sql.Identifier(schema or "public", table)
                cur.execute(sql.SQL("SELECT count(*) FROM ONLY {}").format(target))
                if cur.fetchone()[0] > max_rows:
                    out[name] = f"it has more than {max_rows:,} rows"
                    continue
                cur.execute(sql.SQL("SELECT * FROM {}").format(target))
                columns = [d.name for d in cur.description]
                out[name] = pd.DataFrame.from_records(cur.fetchall(), columns=columns)
        conn.rollback()
    finally:
        conn.close()
    return out
