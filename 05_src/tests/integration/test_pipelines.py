"""Bronze -> silver -> gold on a real PostgreSQL, with the tiny course dataset."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from mlsd import db, pipelines
from mlsd.data import CATEGORY_VALUES, SENTINEL_CODES, generate

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("landing") / "tiny_seed7"
    generate(out, scale="tiny", seed=7, progress=False)
    return out


@pytest.fixture(scope="module")
def loaded(databases, landing):
    """A database holding one load of the tiny landing files."""
    url = databases.create()
    conn = db.connect(url)
    report = pipelines.load(conn, landing)
    yield url, conn, report
    conn.close()
    databases.drop(url)


def scalar(conn, query: str, params=None):
    return db.read_sql(conn, query, params).iloc[0, 0]


def table_checksum(conn, table: str, order: str) -> str:
    return scalar(conn, f"SELECT md5(string_agg(t::text, '|' ORDER BY {order})) FROM {table} t")


def counts(conn) -> dict[str, int]:
    tables, _ = pipelines.status(conn)
    return {f"{s}.{t}": n for s, t, n in tables[["schema", "table_name", "rows"]].itertuples(index=False)}


def test_load_fills_every_layer(loaded, landing):
    _, conn, report = loaded
    manifest = json.loads((landing / "manifest.json").read_text())
    assert report.rows == manifest["rows"]
    assert report.total_rejected == 0
    n = counts(conn)
    assert n["silver.applications"] == manifest["applications"]
    assert n["gold.application_features"] == n["silver.applications"]
    labelled = scalar(conn, "SELECT count(serious_dlq) FROM gold.application_features")
    assert 0 < labelled < n["gold.application_features"]  # recent applications have no label yet


def test_every_injected_defect_is_found_with_the_manifest_count(loaded, landing):
    _, conn, _ = loaded
    manifest = json.loads((landing / "manifest.json").read_text())["defects"]
    found = pipelines.quality_report(conn)
    found = {(t, d): n for t, d, n in found.itertuples(index=False)}
    expected = {(t, d): n for t, kinds in manifest.items() for d, n in kinds.items()}
    assert found == expected
    assert sum(expected.values()) > 100  # defects were injected at all


def test_silver_fixes_what_bronze_carries(loaded):
    _, conn, _ = loaded
    for column in ("channel", "purpose", "region"):
        values = set(db.read_sql(conn, f"SELECT DISTINCT {column} FROM silver.applications")[column])
        assert values <= set(CATEGORY_VALUES[column]) | {"unknown"}, column
    assert scalar(conn, "SELECT count(*) FROM silver.applications WHERE amount <= 0") == 0
    assert scalar(conn, "SELECT count(*) FROM silver.bureau WHERE monthly_income < 0 OR age < 18") == 0
    sentinels = list(SENTINEL_CODES)
    assert (
        scalar(
            conn,
            "SELECT count(*) FROM silver.bureau WHERE late_30_59 = ANY(%s) OR late_60_89 = ANY(%s) OR late_90 = ANY(%s)",
            (sentinels, sentinels, sentinels),
        )
        == 0
    )
    # late-arriving rows keep their own month, not the month of the file that carried them
    assert (
        scalar(conn, "SELECT count(*) FROM silver.applications WHERE month <> to_char(applied_at, 'YYYY-MM')")
        == 0
    )
    late_in_bronze = scalar(
        conn,
        "SELECT count(*) FROM bronze.applications WHERE month > to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM')",
    )
    assert late_in_bronze > 0


def test_near_duplicates_keep_the_copy_ingested_last(loaded):
    _, conn, _ = loaded
    stale = db.read_sql(
        conn,
        """
        SELECT b.application_id, b.amount, b.ingested_at FROM bronze.applications b
        JOIN (SELECT application_id FROM bronze.applications GROUP BY 1
              HAVING count(DISTINCT (amount, channel, ingested_at)) > 1) d USING (application_id)
        """,
    )
    assert len(stale) > 0
    latest = stale.sort_values("ingested_at").groupby("application_id").tail(1).set_index("application_id")
    silver = db.read_sql(
        conn,
        "SELECT application_id, amount FROM silver.applications WHERE application_id = ANY(%s)",
        (list(latest.index),),
    ).set_index("application_id")
    pd.testing.assert_series_equal(
        silver["amount"].sort_index(),
        latest["amount"].where(latest["amount"] > 0).sort_index(),
        check_names=False,
    )


def test_reload_is_idempotent(loaded, landing):
    _, conn, _ = loaded
    before = counts(conn)
    checksums = {
        "silver.applications": table_checksum(conn, "silver.applications", "application_id"),
        "gold.application_features": table_checksum(conn, "gold.application_features", "application_id"),
    }
    pipelines.load(conn, landing)
    after = counts(conn)
    assert {k: v for k, v in after.items() if k != "bronze.load_log"} == {
        k: v for k, v in before.items() if k != "bronze.load_log"
    }
    assert after["bronze.load_log"] == before["bronze.load_log"] + 1
    for table, value in checksums.items():
        assert table_checksum(conn, table, "application_id") == value


def test_a_failure_half_way_leaves_the_previous_tables(loaded, landing, monkeypatch):
    _, conn, _ = loaded
    before = counts(conn)
    gold = table_checksum(conn, "gold.application_features", "application_id")

    def broken_gold(cur, as_of):
        cur.execute("DELETE FROM silver.applications")  # damage done inside the transaction...
        raise RuntimeError("disk full")  # ...then the load fails

    monkeypatch.setattr(pipelines, "build_gold", broken_gold)
    with pytest.raises(RuntimeError, match="disk full"):
        pipelines.load(conn, landing)
    assert counts(conn) == before
    assert table_checksum(conn, "gold.application_features", "application_id") == gold


def test_a_killed_load_leaves_the_previous_tables(loaded, landing, tmp_path):
    url, conn, _ = loaded
    before = counts(conn)
    marker = tmp_path / "in_gold"
    script = f"""
import time
from pathlib import Path
from mlsd import db, pipelines
def slow_gold(cur, as_of):
    cur.execute("DELETE FROM silver.bureau")
    Path({str(marker)!r}).write_text("x")
    time.sleep(120)
pipelines.build_gold = slow_gold
pipelines.load(db.connect({url!r}), {str(landing)!r})
"""
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, "the load ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    time.sleep(0.5)  # the server notices the dropped connection and rolls back
    assert counts(conn) == before


def test_gold_uses_only_snapshots_pulled_at_or_before_the_application(loaded):
    _, conn, _ = loaded
    gold = db.read_sql(
        conn, "SELECT application_id, customer_id, applied_at, snapshot_id FROM gold.application_features"
    )
    bureau = db.read_sql(conn, "SELECT snapshot_id, customer_id, pulled_at FROM silver.bureau")
    assert (bureau.groupby("customer_id")["pulled_at"].count() > 1).any()
    expected = point_in_time_snapshots(gold, bureau)
    merged = gold.merge(expected, on="application_id", how="left", suffixes=("", "_expected"))
    mismatched = merged[merged["snapshot_id"].fillna("-") != merged["snapshot_id_expected"].fillna("-")]
    assert mismatched.empty, mismatched.head()


def point_in_time_snapshots(apps: pd.DataFrame, bureau: pd.DataFrame) -> pd.DataFrame:
    """The latest snapshot pulled at or before each application, computed independently in pandas."""
    pairs = apps[["application_id", "customer_id", "applied_at"]].merge(bureau, on="customer_id")
    pairs = pairs[pairs["pulled_at"] <= pairs["applied_at"]]
    pairs = pairs.sort_values(["pulled_at", "snapshot_id"]).groupby("application_id").tail(1)
    return pairs[["application_id", "snapshot_id"]]


def test_the_leakage_check_catches_a_deliberate_off_by_one(loaded, tmp_path, monkeypatch):
    """Shift the point-in-time condition by one day: the same check must fail."""
    _, conn, _ = loaded
    original = (pipelines.sql_dir() / "gold" / "01_application_features.sql").read_text()
    leaky = original.replace("s.pulled_at <= a.applied_at", "s.pulled_at <= a.applied_at + interval '1 day'")
    assert leaky != original
    with conn, conn.cursor() as cur:
        cur.execute("SAVEPOINT leak")
        cur.execute(leaky, {"as_of": "2100-01-01"})
        gold = db.read_sql(
            conn, "SELECT application_id, customer_id, applied_at, snapshot_id FROM gold.application_features"
        )
        bureau = db.read_sql(conn, "SELECT snapshot_id, customer_id, pulled_at FROM silver.bureau")
        cur.execute("ROLLBACK TO SAVEPOINT leak")
    expected = point_in_time_snapshots(gold, bureau)
    merged = gold.merge(expected, on="application_id", how="left", suffixes=("", "_expected"))
    assert (merged["snapshot_id"].fillna("-") != merged["snapshot_id_expected"].fillna("-")).sum() > 0


def test_history_features_count_only_the_past(loaded):
    _, conn, _ = loaded
    apps = db.read_sql(conn, "SELECT application_id, customer_id, applied_at FROM silver.applications")
    gold = db.read_sql(conn, "SELECT application_id, prior_applications FROM gold.application_features")
    pairs = apps.merge(apps, on="customer_id", suffixes=("", "_other"))
    earlier = pairs[pairs["applied_at_other"] < pairs["applied_at"]].groupby("application_id").size()
    expected = gold["application_id"].map(earlier).fillna(0).astype(int)
    assert (gold["prior_applications"] == expected).all()
    assert gold["prior_applications"].max() >= 1


def test_labels_respect_as_of(loaded, landing):
    _, conn, _ = loaded
    as_of = json.loads((landing / "manifest.json").read_text())["as_of"]
    assert (
        scalar(conn, "SELECT count(*) FROM gold.application_features WHERE label_observed_at >= %s", (as_of,))
        == 0
    )
    with conn, conn.cursor() as cur:
        cur.execute("SAVEPOINT early")
        pipelines.build_gold(cur, "2025-01-01")
        cur.execute("SELECT count(serious_dlq), max(label_observed_at) FROM gold.application_features")
        early_count, latest = cur.fetchone()
        cur.execute("ROLLBACK TO SAVEPOINT early")
    assert latest.isoformat() < "2025-01-01"
    assert early_count < scalar(conn, "SELECT count(serious_dlq) FROM gold.application_features")


def test_malformed_csv_rows_go_to_rejects(databases, tmp_path):
    out = tmp_path / "csv_landing"
    generate(out, scale="tiny", seed=3, fmt="csv", progress=False)
    path = out / "applications" / "applications_2024-03.csv"
    lines = path.read_text().splitlines()
    good_rows = len(lines) - 1
    lines.insert(5, "A9999999999,C00000001,2024-03-05T10:00:00Z,web")  # too few fields
    bad_amount = lines[7].split(",")
    bad_amount[5] = "twelve thousand"
    lines[7] = ",".join(bad_amount)  # a number that does not parse
    path.write_text("\n".join(lines) + "\n")
    url = databases.create()
    conn = db.connect(url)
    try:
        report = pipelines.load(conn, out)
        assert report.rejected["applications"] == 2
        rejects = db.read_sql(
            conn, "SELECT source_file, source_line, reason FROM bronze.rejects ORDER BY source_line"
        )
        assert rejects["source_file"].tolist() == ["applications/applications_2024-03.csv"] * 2
        assert rejects["source_line"].tolist() == [6, 8]
        assert "expected 10 fields, found 4" in rejects["reason"][0]
        assert "amount" in rejects["reason"][1] and "twelve thousand" in rejects["reason"][1]
        loaded_rows = scalar(
            conn, "SELECT count(*) FROM bronze.applications WHERE _source_file LIKE %s", ("%2024-03%",)
        )
        assert loaded_rows == good_rows - 1  # the row whose amount was damaged is rejected
        lines_seen = db.read_sql(
            conn,
            "SELECT _source_line FROM bronze.applications WHERE _source_file LIKE %s ORDER BY 1",
            ("%2024-03%",),
        )["_source_line"].tolist()
        assert 6 not in lines_seen and 8 not in lines_seen and lines_seen[0] == 2
    finally:
        conn.close()
        databases.drop(url)


def test_landing_csv_saved_again_by_a_spreadsheet_loads_the_same_rows(databases, tmp_path):
    """A landing file opened in Excel and saved as "Unicode text" (UTF-16, tabs) or as a European
    "CSV" (Windows-1252, semicolons) loads as the original did: same rows, nothing rejected."""
    import csv
    import io

    out = tmp_path / "csv_landing"
    generate(out, scale="tiny", seed=5, fmt="csv", progress=False)
    saved_again = {
        out / "applications" / "applications_2024-03.csv": ("utf-16", "\t"),
        out / "bureau" / "bureau_2024-04.csv": ("cp1252", ";"),
    }
    original = {path: path.read_text(encoding="utf-8") for path in saved_again}
    for path, (encoding, separator) in saved_again.items():
        buffer = io.StringIO()
        csv.writer(buffer, delimiter=separator, lineterminator="\r\n").writerows(
            csv.reader(io.StringIO(original[path]))
        )
        path.write_bytes(buffer.getvalue().encode(encoding))
    url = databases.create()
    conn = db.connect(url)
    try:
        report = pipelines.load(conn, out)
        assert report.total_rejected == 0, report.reasons
        for path in saved_again:
            table = path.parent.name
            rel = f"{table}/{path.name}"
            expected = list(csv.reader(io.StringIO(original[path])))[1:]
            loaded = scalar(conn, f"SELECT count(*) FROM bronze.{table} WHERE _source_file = %s", (rel,))
            assert loaded == len(expected) > 0
    finally:
        conn.close()
        databases.drop(url)


def test_a_load_blocked_by_another_session_says_what_to_do(loaded, landing, monkeypatch):
    url, conn, _ = loaded
    before = counts(conn)
    blocker = db.connect(url)
    with blocker.cursor() as cur:
        cur.execute("SELECT count(*) FROM silver.applications")  # an open read transaction holds a lock
    monkeypatch.setattr(pipelines, "LOCK_TIMEOUT", "1s")
    try:
        with pytest.raises(pipelines.DataLoadError, match="conn.rollback"):
            pipelines.load(conn, landing)
    finally:
        blocker.close()
    assert counts(conn) == before


def test_all_rows_bad_is_an_error_and_changes_nothing(loaded, tmp_path):
    _, conn, _ = loaded
    before = counts(conn)
    folder = tmp_path / "garbage" / "applications"
    folder.mkdir(parents=True)
    (folder / "applications_2024-01.csv").write_text("this is not,the header\n1,2\n3,4\n")
    with pytest.raises(pipelines.DataLoadError, match="Every row") as info:
        pipelines.load(conn, tmp_path / "garbage")
    assert "header" in str(info.value)
    assert counts(conn) == before


def test_missing_landing_files_say_how_to_make_them(fresh_db, tmp_path):
    conn = db.connect(fresh_db)
    with pytest.raises(pipelines.DataLoadError, match="mlsd data generate"):
        pipelines.load(conn, tmp_path / "nothing_here")
    conn.close()


def test_an_unreadable_parquet_file_is_rejected_not_a_traceback(databases, landing, tmp_path):
    import shutil

    copy = tmp_path / "landing"
    shutil.copytree(landing, copy)
    broken = copy / "bureau" / "month=2024-05" / "part-0.parquet"
    broken.write_bytes(b"PAR1 this is not really parquet")
    url = databases.create()
    conn = db.connect(url)
    try:
        report = pipelines.load(conn, copy)
        assert report.rejected["bureau"] == 1
        assert any("bureau/month=2024-05" in r and "not a readable Parquet file" in r for r in report.reasons)
        assert report.rows["applications"] > 0
    finally:
        conn.close()
        databases.drop(url)


def test_a_corrupt_manifest_says_how_to_regenerate(fresh_db, landing, tmp_path):
    import shutil

    copy = tmp_path / "landing"
    shutil.copytree(landing, copy)
    (copy / "manifest.json").write_text("{ not json")
    conn = db.connect(fresh_db)
    with pytest.raises(pipelines.DataLoadError, match="--overwrite"):
        pipelines.load(conn, copy)
    conn.close()
