"""The Dask path gives the same silver and gold tables as the SQL path."""

from __future__ import annotations

import dask
import numpy as np
import pandas as pd
import pytest

from mlsd import db, pipelines
from mlsd.data import generate
from mlsd.pipelines import dask_layers

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    out = tmp_path_factory.mktemp("dask_landing") / "tiny_seed11"
    generate(out, scale="tiny", seed=11, progress=False)
    return out


@pytest.fixture(scope="module")
def sql_gold(databases, landing):
    url = databases.create()
    conn = db.connect(url)
    pipelines.load(conn, landing)
    yield url, conn
    conn.close()
    databases.drop(url)


def comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """Same row order, numbers as floats, timestamps as UTC microseconds, text as text."""
    out = frame.sort_values("application_id").reset_index(drop=True).copy()
    for column in out.columns:
        values = out[column]
        if column.endswith("_at"):
            out[column] = pd.to_datetime(values, utc=True).dt.as_unit("us")
        elif (
            values.dtype.kind in "iufb"
            or values.dtype == object
            and values.map(type).isin([int, float]).all()
        ):
            out[column] = pd.to_numeric(values).astype("float64")
        else:
            out[column] = values.astype("str").where(values.notna(), np.nan)
    return out


def assert_same(sql_frame: pd.DataFrame, dask_frame: pd.DataFrame) -> None:
    left, right = comparable(sql_frame), comparable(dask_frame[sql_frame.columns])
    assert len(left) == len(right)
    for column in left.columns:
        a, b = left[column], right[column]
        if a.dtype.kind == "f":
            same = np.isclose(a, b, rtol=0, atol=1e-9, equal_nan=True)
        else:
            same = (a == b) | (a.isna() & b.isna())
        assert same.all(), (
            f"{column}: {(~same).sum()} rows differ, e.g. {a[~same].head(3).tolist()} vs {b[~same].head(3).tolist()}"
        )


def test_dask_gold_equals_sql_gold(sql_gold, landing):
    _, conn = sql_gold
    as_of = db.read_sql(conn, "SELECT as_of FROM bronze.load_log ORDER BY load_id DESC LIMIT 1").iloc[0, 0]
    with dask.config.set(scheduler="synchronous"):
        gold = dask_layers.gold_frame(dask_layers.silver_frames(landing), as_of=as_of).compute()
    expected = db.read_sql(
        conn, f"SELECT {', '.join(dask_layers.GOLD_COLUMNS)} FROM gold.application_features"
    )
    assert gold["serious_dlq"].notna().sum() > 100
    assert_same(expected, gold)


def test_dask_silver_equals_sql_silver(sql_gold, landing):
    _, conn = sql_gold
    with dask.config.set(scheduler="synchronous"):
        silver = dask_layers.silver_frames(landing)["applications"].compute()
    expected = db.read_sql(conn, "SELECT * FROM silver.applications").drop(columns=["_source_file"])
    assert_same(expected, silver[expected.columns])


def test_a_broken_rule_is_caught(sql_gold, landing, monkeypatch):
    """Drop the sentinel rule from the Dask path: the comparison must notice."""
    _, conn = sql_gold
    monkeypatch.setattr(dask_layers, "SENTINEL_CODES", ())
    with dask.config.set(scheduler="synchronous"):
        gold = dask_layers.gold_frame(dask_layers.silver_frames(landing)).compute()
    expected = db.read_sql(
        conn, f"SELECT {', '.join(dask_layers.GOLD_COLUMNS)} FROM gold.application_features"
    )
    with pytest.raises(AssertionError, match="late_"):
        assert_same(expected.drop(columns=["serious_dlq", "label_observed_at"]), gold)


def test_runs_on_a_local_cluster_and_reads_postgres_by_month(sql_gold):
    url, _ = sql_gold
    months = ["2024-03", "2024-04", "2024-05"]
    with dask_layers.dask_client(n_workers=1, memory_limit="1GiB") as client:
        frame = dask_layers.read_postgres_by_month(url, "gold.application_features", months)
        assert frame.npartitions == 3
        counts = frame.groupby("month").size().compute()
        assert client.scheduler_info()["workers"]
    conn = db.connect(url)
    expected = db.read_sql(
        conn,
        "SELECT month, count(*) AS n FROM gold.application_features WHERE month = ANY(%s) GROUP BY 1",
        (months,),
    )
    conn.close()
    assert counts.sort_index().tolist() == expected.sort_values("month")["n"].tolist()


def test_missing_parquet_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="mlsd data generate --format parquet"):
        dask_layers.read_landing(tmp_path, "applications")


def test_partitions_are_sized_from_the_data(landing, monkeypatch):
    assert dask_layers.default_npartitions(landing) == 1  # tiny data: one partition
    monkeypatch.setattr(dask_layers, "TARGET_PARTITION_BYTES", 2**16)
    many = dask_layers.default_npartitions(landing)
    monkeypatch.setattr(dask_layers, "TARGET_PARTITION_BYTES", 2**17)
    assert many > dask_layers.default_npartitions(landing) > 1
