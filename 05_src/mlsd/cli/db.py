"""``mlsd db``: start, inspect and stop the course database (:mod:`mlsd.db`)."""

from __future__ import annotations

import argparse
import subprocess
import time

from mlsd.cli._commands import Commands, Option, lazy
from mlsd.cli._output import fail, print_table

config = lazy("config")  # package modules load when a command runs, so `mlsd --help` stays fast
db = lazy("db")

commands = Commands("db", "Start, inspect and stop the course PostgreSQL database.", "uv run mlsd db status")


@commands.command(
    "up",
    "Start the database (embedded unless DATABASE_URL is set) and create the schemas.",
    "uv run mlsd db up",
)
def up(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    url = db.up()
    print(f"PostgreSQL is ready at {db.describe_url(url)} ({time.perf_counter() - started:.1f} s).")
    return 0


@commands.command(
    "status",
    "Show the server, its version, the course schemas and their table counts.",
    "uv run mlsd db status",
)
def status(args: argparse.Namespace) -> int:
    settings = config.get_settings()
    if not settings.database_url and not db.embedded_server(settings).state().running:
        return fail("The embedded PostgreSQL server is not running: start it with `uv run mlsd db up`.")
    conn = db.connect()
    try:
        info = db.status(conn)
    finally:
        conn.close()
    mode = "DATABASE_URL" if settings.database_url else f"embedded (data in {settings.postgres_dir})"
    print(f"server:   {info['server']} ({mode})")
    print(f"version:  PostgreSQL {info['version']}")
    print(f"database: {info['database']} ({info['size']})")
    rows = [(name, "missing" if count is None else count) for name, count in info["schemas"].items()]
    print_table(rows, ["schema", "tables"])
    return 0


@commands.command("down", "Stop the embedded server (its data is kept).", "uv run mlsd db down")
def down(args: argparse.Namespace) -> int:
    print(db.down())
    return 0


@commands.command(
    "url", "Print a connection URL for other tools (psql, DBeaver, pandas).", 'psql "$(uv run mlsd db url)"'
)
def url(args: argparse.Namespace) -> int:
    print(db.database_url())
    return 0


@commands.command("psql", "Open a psql shell on the course database.", "uv run mlsd db psql -- -c 'SELECT 1'")
@Option("psql_args", nargs=argparse.REMAINDER, help="arguments passed on to psql")
def psql(args: argparse.Namespace) -> int:
    target = db.database_url()
    found = db.psql_path()
    if found is None:
        return fail(
            "No psql found. Install the PostgreSQL client (macOS: `brew install libpq`; Debian/Ubuntu: "
            f"`sudo apt install postgresql-client`; Windows: the EDB installer), then run: psql {target}"
        )
    passed = args.psql_args[1:] if args.psql_args[:1] == ["--"] else args.psql_args
    return subprocess.call([found, target, *passed])


@commands.command(
    "reset", "Delete the embedded database's data directory (asks for --yes).", "uv run mlsd db reset --yes"
)
@Option("--yes", action="store_true", help="confirm that the local database may be deleted")
def reset(args: argparse.Namespace) -> int:
    settings = config.get_settings()
    if settings.database_url:
        return fail(
            "DATABASE_URL is set: reset only removes the embedded server's data; drop that database yourself."
        )
    server = db.embedded_server(settings)
    if not args.yes:
        return fail(
            f"This deletes every table in the embedded database ({server.pgdata}). Re-run with --yes to proceed."
        )
    server.wipe()
    print(f"Deleted {server.pgdata}. `uv run mlsd db up` creates a new, empty database.")
    return 0
