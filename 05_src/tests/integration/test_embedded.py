"""The embedded PostgreSQL server: start, reuse from another process, restart, expected faults."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import psycopg2
import pytest

from mlsd import db
from mlsd._embedded import EmbeddedPostgres, binary_major_version, free_port
from mlsd.errors import DatabaseError

pytestmark = pytest.mark.integration


@pytest.fixture
def server(tmp_path):
    srv = EmbeddedPostgres(tmp_path / "pgdata", free_port())
    yield srv
    srv.wipe()


def test_start_creates_database_and_reports_url(server):
    started = time.perf_counter()
    url = server.start()
    elapsed = time.perf_counter() - started
    print(f"embedded start (initdb included): {elapsed:.2f} s")
    assert url.endswith(f":{server.port}/mlsd")
    conn = db.connect(url)
    with conn.cursor() as cur:
        cur.execute("SELECT current_database()")
        assert cur.fetchone()[0] == "mlsd"
    conn.close()
    assert server.state().running


def test_second_process_reuses_the_running_server(server):
    server.start()
    pid = server.state().pid
    other_port = free_port()
    code = (
        "from mlsd._embedded import EmbeddedPostgres; import sys;"
        f"s = EmbeddedPostgres(sys.argv[1], {other_port}); print(s.start()); print(s.state().pid)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(server.pgdata)], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[0] == server.url()  # the running server's port, not the other process's setting
    assert int(out[1]) == pid


def test_restart_keeps_data(server):
    url = server.start()
    conn = db.connect(url)
    with conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE kept (x int); INSERT INTO kept VALUES (41), (1)")
    conn.close()
    assert server.stop() is True
    assert not server.state().running
    assert server.stop() is False
    conn = db.connect(server.start())
    with conn.cursor() as cur:
        cur.execute("SELECT sum(x) FROM kept")
        assert cur.fetchone()[0] == 42
    conn.close()


def test_port_taken_by_another_program(tmp_path):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        srv = EmbeddedPostgres(tmp_path / "pgdata", port)
        with pytest.raises(DatabaseError) as info:
            srv.start()
    message = str(info.value)
    assert f"Port {port}" in message and "MLSD_DB_PORT=" in message
    assert not (tmp_path / "pgdata" / "PG_VERSION").exists()


def test_data_directory_from_another_major_version(server):
    server.start()
    server.stop()
    (server.pgdata / "PG_VERSION").write_text("14\n")
    with pytest.raises(DatabaseError) as info:
        server.start()
    message = str(info.value)
    assert "PostgreSQL 14" in message and f"PostgreSQL {binary_major_version()}" in message
    assert "mlsd db reset" in message
    assert (server.pgdata / "PG_VERSION").read_text() == "14\n"  # nothing deleted


def test_unreachable_server_names_host_and_port_but_not_password():
    port = free_port()
    with pytest.raises(DatabaseError) as info:
        db.connect(f"postgresql://learner:s3cret-pw@127.0.0.1:{port}/mlsd", connect_timeout=2)
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message and "not reachable" in message
    assert "s3cret-pw" not in message
    assert "mlsd db up" in message


def test_missing_database(pg_url):
    base = pg_url.rsplit("/", 1)[0]
    with pytest.raises(DatabaseError, match="has no database 'no_such_db'"):
        db.connect(f"{base}/no_such_db")


@pytest.fixture
def password_server(tmp_path):
    """A server that asks for passwords over TCP, as Docker's postgres image does."""
    srv = EmbeddedPostgres(tmp_path / "pgdata", free_port())
    url = srv.start()
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("CREATE ROLE learner LOGIN PASSWORD 'right-pw'")
        cur.execute("SHOW hba_file")
        hba = cur.fetchone()[0]
    with open(hba, "r+") as handle:
        rules = handle.read()
        handle.seek(0)
        handle.write("host all learner 127.0.0.1/32 scram-sha-256\n" + rules)
    with conn.cursor() as cur:
        cur.execute("SELECT pg_reload_conf()")
    conn.close()
    time.sleep(0.2)
    yield srv
    srv.wipe()


def test_wrong_password(password_server):
    port = password_server.port
    good = db.connect(f"postgresql://learner:right-pw@127.0.0.1:{port}/mlsd")
    good.close()
    with pytest.raises(DatabaseError) as info:
        db.connect(f"postgresql://learner:wrong-pw@127.0.0.1:{port}/mlsd")
    message = str(info.value)
    assert "rejected the password" in message and "learner" in message
    assert "wrong-pw" not in message and "right-pw" not in message
