"""Shared fixtures: a real, throwaway PostgreSQL for the whole test session.

``TEST_DATABASE_URL`` points the tests at an existing server instead (its
database must be disposable: tests create and drop schemas in it).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from mlsd._embedded import EmbeddedPostgres, free_port

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def pg_url(tmp_path_factory) -> str:
    """URL of a PostgreSQL database that only this test session uses."""
    external = os.environ.get("TEST_DATABASE_URL")
    if external:
        yield external
        return
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "pgdata", free_port())
    url = server.start(database="mlsd_test")
    yield url
    server.wipe()


@pytest.fixture
def conn(pg_url):
    """A psycopg2 connection, rolled back and closed after the test."""
    from mlsd import db

    connection = db.connect(pg_url)
    yield connection
    connection.rollback()
    connection.close()


class DatabaseFactory:
    """Creates empty databases on the test server and drops them at the end."""

    def __init__(self, pg_url: str):
        self.pg_url = pg_url
        self.names: list[str] = []

    def _admin(self):
        import psycopg2

        admin = psycopg2.connect(self.pg_url)
        admin.autocommit = True
        return admin

    def create(self) -> str:
        from psycopg2 import sql

        name = f"t_{uuid.uuid4().hex[:12]}"
        admin = self._admin()
        with admin.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        admin.close()
        self.names.append(name)
        return f"{self.pg_url.rpartition('/')[0]}/{name}"

    def drop(self, url: str) -> None:
        from psycopg2 import sql

        name = url.rpartition("/")[2]
        admin = self._admin()
        with admin.cursor() as cur:
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        admin.close()


@pytest.fixture(scope="session")
def databases(pg_url):
    """Factory for throwaway databases: ``url = databases.create()``."""
    return DatabaseFactory(pg_url)


@pytest.fixture
def fresh_db(databases):
    """URL of a new, empty database on the test server, dropped after the test."""
    url = databases.create()
    yield url
    databases.drop(url)


@pytest.fixture
def isolated_env(monkeypatch, tmp_path):
    """Environment with no course settings, data and logs under ``tmp_path``."""
    for name in (
        "DATABASE_URL",
        "MLFLOW_TRACKING_URI",
        "MLSD_DATA_DIR",
        "MLSD_LOG_DIR",
        "MLSD_SCALE",
        "MLSD_DB_PORT",
        "DASK_SCHEDULER_ADDRESS",
        "LOG_LEVEL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLSD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MLSD_LOG_DIR", str(tmp_path / "logs"))
    return tmp_path
