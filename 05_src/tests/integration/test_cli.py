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
    assert files.str.endswith(".parquet").all() and len(files) == 30  # one file per month


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


def _notebook(path, *sources: str):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {path.stem}")]
    nb.cells += [nbformat.v4.new_code_cell(source) for source in sources]
    nbformat.write(nb, path)
    return path


def test_course_run_prints_the_table_and_names_the_failing_cell(isolated_env, monkeypatch, capsys, fresh_db):
    import json

    from mlsd import course

    labs = isolated_env / "labs"
    labs.mkdir()
    ok = _notebook(
        labs / "01_reads_gold.ipynb",
        "from mlsd import course\nsession = course.setup()",
        "rows = session.conn.cursor()\nrows.execute('SELECT count(*) FROM gold.application_features')\n"
        "assert rows.fetchone()[0] == 3000",
    )
    broken = _notebook(labs / "02_broken.ipynb", "x = 1", "y = x / 0", "print('never reached')")
    monkeypatch.setattr(course, "lab_notebooks", lambda root=None: [ok, broken])
    monkeypatch.setenv("DATABASE_URL", fresh_db)
    out_dir = isolated_env / "out"

    code, out, err = run(capsys, "course", "run", "--scale", "tiny", "--out", str(out_dir))
    assert code == 1
    table = [
        line.split() for line in out.splitlines() if line.split()[:1] and line.split()[0].endswith(".ipynb")
    ]
    assert [(row[0], row[-1]) for row in table[-2:]] == [
        ("01_reads_gold.ipynb", "passed"),
        ("02_broken.ipynb", "failed"),
    ]
    assert "1/2 notebooks passed" in out
    assert "02_broken.ipynb, cell 3: ZeroDivisionError" in err
    assert (out_dir / "01_reads_gold.html").is_file() and (out_dir / "02_broken.ipynb").is_file()
    summary = json.loads((out_dir / "summary.json").read_text())
    assert [(s["notebook"], s["status"], s["cell"]) for s in summary] == [
        ("01_reads_gold.ipynb", "passed", None),
        ("02_broken.ipynb", "failed", 3),
    ]

    code, out, _ = run(capsys, "course", "run", "--scale", "tiny", "--only", "1", "--out", str(out_dir))
    assert code == 0 and "1/1 notebooks passed" in out

    code, _, err = run(capsys, "course", "run", "--only", "7")
    assert code == 2 and "No session 7" in err and "--only 2" in err


def test_data_load_with_a_taken_port_fails_before_generating_anything(isolated_env, monkeypatch, capsys):
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other_program:
        other_program.bind(("127.0.0.1", 0))
        other_program.listen()
        port = other_program.getsockname()[1]
        monkeypatch.setenv("MLSD_DB_PORT", str(port))
        code, out, err = run(capsys, "data", "load", "--scale", "tiny")
    assert code == 1
    assert err.startswith(f"error: Port {port} on 127.0.0.1 is already in use by another program")
    assert "MLSD_DB_PORT=" in err and "Traceback" not in err
    assert "generating" not in out
    assert not (isolated_env / "data" / "landing").exists(), (
        "data was generated for a database that cannot start"
    )
