"""mlsd.db against a real PostgreSQL: schemas, COPY helpers, identifiers, status."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from mlsd import db

pytestmark = pytest.mark.integration


def test_ensure_schemas_is_idempotent(fresh_db):
    conn = db.connect(fresh_db)
    db.ensure_schemas(conn)
    db.ensure_schemas(conn)
    with conn.cursor() as cur:
        cur.execute("SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s)", (list(db.SCHEMAS),))
        assert sorted(r[0] for r in cur.fetchall()) == sorted(db.SCHEMAS)
    info = db.status(conn)
    assert info["database"] == fresh_db.rsplit("/", 1)[1]
    assert info["schemas"] == dict.fromkeys(db.SCHEMAS, 0)
    conn.close()


def test_copy_dataframe_round_trip_with_nulls_and_quotes(conn):
    frame = pd.DataFrame(
        {
            "id": [1, 2, 3],
            "name": ["plain", 'has "quotes", and commas', None],
            "amount": [1.5, None, -2.25],
        }
    )
    with conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE copied (id int, name text, amount double precision)")
    assert db.copy_dataframe(conn, frame, "copied", chunk_rows=2) == 3
    back = db.read_sql(conn, "SELECT * FROM copied WHERE id > %s ORDER BY id", (0,))
    assert back["name"].tolist()[:2] == frame["name"].tolist()[:2]
    assert back["name"].isna().tolist() == [False, False, True]
    assert back["amount"].isna().sum() == 1


def test_copy_csv_streams_a_file(conn, tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("id,label\n" + "".join(f"{i},row {i}\n" for i in range(1000)))
    with conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE streamed (id int, label text)")
    assert db.copy_csv(conn, path, "streamed") == 1000
    assert db.copy_csv(conn, io.StringIO("5,five\n"), "streamed", columns=["id", "label"], header=False) == 1
    with conn.cursor() as cur:
        cur.execute("SELECT count(*), sum(id) FROM streamed")
        assert cur.fetchone() == (1001, sum(range(1000)) + 5)


SPREADSHEET_ROWS = [("1", "Zoë", "12.5"), ("2", "Müller, Jürgen", "7"), ("3", "José", "")]


def _spreadsheet_csv(separator: str, line_end: str = "\r\n") -> str:
    """A CSV as Excel or LibreOffice would save these rows (a value with the separator is quoted)."""

    def cell(value: str) -> str:
        return f'"{value}"' if separator in value or "," in value else value

    lines = [separator.join(["id", "name", "score"])]
    lines += [separator.join(cell(v) for v in row) for row in SPREADSHEET_ROWS]
    return line_end.join(lines) + line_end


@pytest.mark.parametrize(
    "encoding, separator",
    [
        ("utf-16", "\t"),  # Excel's "Unicode text": UTF-16 with a byte-order mark, tabs
        ("utf-16-le", ","),  # UTF-16 without a byte-order mark
        ("utf-8-sig", ";"),  # "CSV UTF-8" where the decimal mark is a comma
        ("cp1252", ";"),  # plain "CSV" from Excel on Windows, in much of Europe
        ("latin-1", ","),
    ],
)
def test_copy_csv_reads_what_spreadsheets_save(conn, tmp_path, encoding, separator):
    path = tmp_path / "scores.csv"
    path.write_bytes(_spreadsheet_csv(separator).encode(encoding))
    with conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE scores (id int, name text, score double precision)")
    assert db.copy_csv(conn, path, "scores") == 3
    back = db.read_sql(conn, "SELECT id, name, score FROM scores ORDER BY id")
    assert back["name"].tolist() == [name for _, name, _ in SPREADSHEET_ROWS]
    assert back["score"].tolist()[:2] == [12.5, 7.0] and pd.isna(back["score"][2])


def test_copy_csv_of_a_file_that_changes_encoding_says_how_to_save_it(conn, tmp_path):
    from mlsd._csv import CsvError

    path = tmp_path / "scores.csv"
    text = "id,name,score\n" + "".join(f"{i},learner {i},1\n" for i in range(5000)) + "5000,Zoë,2\n"
    path.write_bytes(text.encode("cp1252"))  # ASCII for the first 64 KiB, then a Windows-1252 byte
    with conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE scores (id int, name text, score double precision)")
    with pytest.raises(CsvError) as info:
        db.copy_csv(conn, path, "scores")
    message = str(info.value)
    assert message.startswith("scores.csv mixes character encodings") and "CSV UTF-8" in message
    assert "\n" not in message


def test_identifier_quotes_hostile_names(conn):
    with conn.cursor() as cur:
        name = 'weird"; DROP TABLE x; --'
        cur.execute(db.identifier("pg_temp", name).as_string(conn).join(["CREATE TABLE ", " (a int)"]))
        cur.execute("SELECT count(*) FROM pg_class WHERE relname = %s", (name,))
        assert cur.fetchone()[0] == 1


def test_database_url_prefers_explicit_then_environment(monkeypatch, isolated_env, pg_url):
    monkeypatch.setenv("DATABASE_URL", pg_url)
    assert db.database_url() == pg_url
    assert db.database_url("postgresql://x@y:1/z") == "postgresql://x@y:1/z"
    engine = db.engine()
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT 1").scalar() == 1
    engine.dispose()


def test_describe_url_hides_password():
    assert db.describe_url("postgresql://u:secret@db.example:6543/course") == "u@db.example:6543/course"
