"""The mlsd command, run in-process and as a real subprocess."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mlsd import cli
from mlsd._embedded import free_port

pytestmark = pytest.mark.integration


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_embedded_lifecycle(isolated_env, monkeypatch, capsys):
    monkeypatch.setenv("MLSD_DB_PORT", str(free_port()))
    code, out, _ = run(capsys, "db", "status")
    assert code == 1 and "not running" in out and "mlsd db up" in out
    code, out, _ = run(capsys, "db", "up")
    assert code == 0 and "ready" in out
    code, out, _ = run(capsys, "db", "status")
    assert code == 0
    for schema in ("bronze", "silver", "gold", "ml", "monitoring"):
        assert schema in out
    assert "embedded" in out and "PostgreSQL 1" in out
    code, out, _ = run(capsys, "db", "url")
    assert out.strip().startswith("postgresql://postgres@127.0.0.1:")
    code, out, _ = run(capsys, "db", "psql", "--", "-tAc", "SELECT 40 + 2")
    assert code == 0
    code, out, _ = run(capsys, "db", "reset")
    assert code == 1 and "--yes" in out
    assert (isolated_env / "data" / "postgres" / "PG_VERSION").exists()
    code, out, _ = run(capsys, "db", "down")
    assert code == 0 and "Stopped" in out
    code, out, _ = run(capsys, "db", "reset", "--yes")
    assert code == 0 and not (isolated_env / "data" / "postgres").exists()


def test_database_url_switches_every_command(isolated_env, monkeypatch, capsys, fresh_db):
    monkeypatch.setenv("DATABASE_URL", fresh_db)
    code, out, _ = run(capsys, "db", "up")
    assert code == 0
    code, out, _ = run(capsys, "db", "status")
    assert code == 0 and "DATABASE_URL" in out and fresh_db.rsplit("/", 1)[1] in out
    code, out, _ = run(capsys, "db", "url")
    assert out.strip() == fresh_db
    code, out, _ = run(capsys, "db", "down")
    assert "not managed here" in out
    code, out, _ = run(capsys, "db", "reset", "--yes")
    assert code == 1
    assert not (isolated_env / "data" / "postgres").exists()  # no embedded server was started


def test_unreachable_database_is_a_message_not_a_traceback(isolated_env, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", f"postgresql://u:hidden@127.0.0.1:{free_port()}/mlsd")
    code, out, err = run(capsys, "db", "up")
    assert code == 1
    assert err.startswith("error: PostgreSQL is not reachable at 127.0.0.1:")
    assert "Traceback" not in err and "hidden" not in err


def test_doctor_green_on_a_working_database(isolated_env, monkeypatch, capsys, fresh_db):
    monkeypatch.setenv("DATABASE_URL", fresh_db)
    code, out, _ = run(capsys, "doctor")
    assert code == 0, out
    assert "All required checks passed" in out
    assert "database" in out and "OK" in out


def test_doctor_fails_with_a_fix_when_the_database_is_down(isolated_env, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", f"postgresql://u@127.0.0.1:{free_port()}/mlsd")
    code, out, _ = run(capsys, "doctor")
    assert code == 1
    row = next(line for line in out.splitlines() if line.startswith("database"))
    assert "FAIL" in row and "docker compose" in row


def test_unknown_arguments_exit_2_with_usage():
    result = subprocess.run(
        [sys.executable, "-m", "mlsd.cli", "db", "bogus"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "invalid choice: 'bogus'" in result.stderr


def test_console_script_is_installed():
    import shutil

    exe = shutil.which("mlsd")
    assert exe is not None, "run the tests through `uv run`, which puts the mlsd command on PATH"
    result = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True)
    assert "db" in result.stdout and "doctor" in result.stdout


def test_data_generate_load_status(isolated_env, monkeypatch, capsys, fresh_db):
    monkeypatch.setenv("DATABASE_URL", fresh_db)
    code, out, _ = run(capsys, "data", "status")
    assert code == 1 and "mlsd data load" in out
    code, out, _ = run(capsys, "data", "load", "--scale", "tiny", "--seed", "5")
    assert code == 0, out
    assert "generating them first" in out and "0 rejected" in out
    landing = isolated_env / "data" / "landing" / "tiny_seed5"
    assert (landing / "manifest.json").is_file()
    code, out, _ = run(capsys, "data", "status")
    assert code == 0
    gold = next(line for line in out.splitlines() if "application_features" in line)
    assert gold.split()[-1] == "3,000"
    assert "Last load:" in out and "0 rejected" in out
    # a second load of the same files leaves the same rows
    code, again, _ = run(capsys, "data", "load", "--scale", "tiny", "--seed", "5")
    assert code == 0 and "generating" not in again
    code, out2, _ = run(capsys, "data", "status")
    strip = [line for line in out.splitlines() if "load_log" not in line and not line.startswith("Last load")]
    assert strip == [
        line for line in out2.splitlines() if "load_log" not in line and not line.startswith("Last load")
    ]


def test_data_load_of_another_dataset_replaces_the_first(isolated_env, monkeypatch, capsys, fresh_db):
    monkeypatch.setenv("DATABASE_URL", fresh_db)
    assert run(capsys, "data", "load", "--scale", "tiny", "--seed", "1", "--format", "csv")[0] == 0
    assert run(capsys, "data", "load", "--scale", "tiny", "--seed", "2")[0] == 0
    from mlsd import db

    conn = db.connect(fresh_db)
    files = db.read_sql(conn, "SELECT DISTINCT _source_file FROM bronze.applications")["_source_file"]
    conn.close()
    assert files.str.endswith(".parquet").all() and len(files) == 24


def test_data_generate_rejects_bad_arguments(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["data", "generate", "--rows", "lots"])
    assert info.value.code == 2
    assert "'lots' is not a whole number" in capsys.readouterr().err


def test_monitor_without_data_is_a_message(isolated_env, monkeypatch, capsys, fresh_db):
    from mlsd import db as mlsd_db

    conn = mlsd_db.connect(fresh_db)
    with conn, conn.cursor() as cur:
        cur.execute(
            "CREATE SCHEMA gold; CREATE TABLE gold.application_features (application_id text, month text)"
        )
    conn.close()
    monkeypatch.setenv("DATABASE_URL", fresh_db)
    code, out, err = run(capsys, "monitor", "--month", "2025-06")
    assert code == 1
    assert err.startswith("error: gold.application_features has no rows") and "Traceback" not in err
