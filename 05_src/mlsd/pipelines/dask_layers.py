"""The silver and gold transforms in Dask, for landing data that outgrows memory.

The same rules as ``05_src/sql/silver`` and ``05_src/sql/gold``, written with Dask
DataFrames over the partitioned Parquet landing files; a test checks that both paths
give the same gold table. Dask runs on a ``LocalCluster`` by default, or on the
cluster at ``DASK_SCHEDULER_ADDRESS``.

Two Dask habits matter here:

* de-duplication and the point-in-time join need every row of a key in one partition:
  ``shuffle`` moves them there (costly, so it is done once per table and key);
* tables shuffled on the same key into the same number of partitions line up
  partition by partition, so a join becomes a pandas ``merge_asof`` per partition;
* partitions are sized from the data (about 24 MiB in memory each, see
  :func:`default_npartitions`) and shuffles use Dask's task-based method: the
  peer-to-peer method keeps buffers Dask cannot spill, and with 1 GiB workers on data
  3x that size its workers were killed (``05_src/benchmarks/bench_out_of_core.py``).

Example
-------
>>> from mlsd.pipelines import dask_layers
>>> with dask_layers.dask_client() as client:  # doctest: +SKIP
...     gold = dask_layers.gold_frame(dask_layers.silver_frames("05_src/data/landing/small_seed42"))
...     gold.to_parquet("gold/")
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import dask.dataframe as dd
import pandas as pd
import pyarrow.parquet as pq
from psycopg2 import sql

from mlsd import db
from mlsd.config import resolve
from mlsd.data import CATEGORY_CANONICAL, CATEGORY_COLUMNS, PRIMARY_KEYS, SENTINEL_CODES

__all__ = [
    "dask_client",
    "default_npartitions",
    "gold_frame",
    "read_landing",
    "read_postgres_by_month",
    "silver_frames",
]

GOLD_COLUMNS = [
    "application_id", "customer_id", "applied_at", "month", "channel", "purpose", "amount", "term_months",
    "region", "snapshot_id", "bureau_pulled_at", "age", "revolving_utilization", "debt_ratio", "monthly_income",
    "open_credit_lines", "real_estate_loans", "dependents", "late_30_59", "late_60_89", "late_90",
    "prior_applications", "prior_repayments", "prior_late_payments", "serious_dlq", "label_observed_at",
]  # fmt: skip
BUREAU_VALUES = [
    "snapshot_id", "pulled_at", "age", "revolving_utilization", "debt_ratio", "monthly_income",
    "open_credit_lines", "real_estate_loans", "dependents", "late_30_59", "late_60_89", "late_90",
]  # fmt: skip


SHUFFLE_METHOD = "tasks"
TARGET_PARTITION_BYTES = 24 * 2**20
IN_MEMORY_PER_PARQUET_BYTE = 1.8  # pandas frames of these tables take ~1.8x Parquet's uncompressed size
JOB_TABLES = ("applications", "bureau", "repayments", "outcomes")


def default_npartitions(landing_dir: str | Path, tables: Sequence[str] = JOB_TABLES) -> int:
    """Partitions for the shuffles: the largest table in pieces of about 24 MiB in memory.

    Read from the Parquet footers (uncompressed sizes), so nothing is loaded. Tiny data
    gives one partition; 6.5 million applications give about 50.
    """
    largest = 0
    for table in tables:
        size = 0
        for path in (Path(landing_dir) / table).glob("month=*/*.parquet"):
            meta = pq.ParquetFile(path).metadata
            size += sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        largest = max(largest, size)
    return max(1, round(largest * IN_MEMORY_PER_PARQUET_BYTE / TARGET_PARTITION_BYTES))


def _distributed() -> tuple[type, type]:
    """Dask's ``Client`` and ``LocalCluster`` (a second or more to import), loaded when a cluster starts."""
    from distributed import Client, LocalCluster

    return Client, LocalCluster


@contextlib.contextmanager
def dask_client(address: str | None = None, *, n_workers: int = 2, memory_limit: str = "2GiB") -> Iterator:
    """A Dask client: the cluster at ``address`` / ``DASK_SCHEDULER_ADDRESS``, else a local one.

    The local cluster has ``n_workers`` single-threaded worker processes, each with
    ``memory_limit``; beyond it workers spill to disk rather than fail.
    """
    Client, LocalCluster = _distributed()
    target = resolve("DASK_SCHEDULER_ADDRESS", address)
    if target:
        with Client(target) as client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=n_workers, threads_per_worker=1, memory_limit=memory_limit, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def read_landing(landing_dir: str | Path, table: str):
    """One landing table as a lazy Dask DataFrame, one partition per Parquet file.

    The ``month`` column is the hive partition of the file (the month it landed in).
    """
    path = Path(landing_dir) / table
    if not any(path.glob("month=*/*.parquet")):
        raise FileNotFoundError(
            f"No Parquet files under {path}: the Dask path reads Parquet landing files; "
            "generate them with `uv run mlsd data generate --format parquet`."
        )
    frame = dd.read_parquet(str(path), dataset={"partitioning": "hive"})
    return frame.assign(month=frame["month"].astype(str))


def _canonical(series: pd.Series, column: str) -> pd.Series:
    cleaned = series.str.strip().str.lower()
    return cleaned.map(CATEGORY_CANONICAL[column]).fillna(cleaned).fillna("unknown").astype(str)


def _keep_latest(frame: pd.DataFrame, key: Sequence[str]) -> pd.DataFrame:
    """Silver's de-duplication in one partition: the copy ingested last wins."""
    ordered = frame.sort_values([*key, "ingested_at", "month"], kind="stable")
    return ordered.drop_duplicates(list(key), keep="last")


def _clean(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    out = frame.copy()
    for column in CATEGORY_COLUMNS.get(table, ()):
        out[column] = _canonical(out[column], column)
    if table == "applications":
        out["amount"] = out["amount"].where(out["amount"] > 0)
        out["month"] = out["applied_at"].dt.tz_convert("UTC").dt.strftime("%Y-%m")
    if table == "bureau":
        out["monthly_income"] = out["monthly_income"].where(out["monthly_income"] >= 0)
        out["age"] = out["age"].where(out["age"] >= 18)
        for column in ("late_30_59", "late_60_89", "late_90"):
            out[column] = out[column].where(~out[column].isin(SENTINEL_CODES))
    return out.drop(columns=[] if table == "applications" else ["month"])


def silver_frames(landing_dir: str | Path, *, npartitions: int | None = None) -> dict:
    """The silver tables as lazy Dask DataFrames (same rules as ``05_src/sql/silver``)."""
    parts = npartitions or default_npartitions(landing_dir)
    frames = {}
    for table, key in PRIMARY_KEYS.items():
        raw = read_landing(landing_dir, table)
        shuffled = raw.shuffle(on=list(key), npartitions=parts, shuffle_method=SHUFFLE_METHOD)
        frames[table] = shuffled.map_partitions(_keep_latest, list(key)).map_partitions(_clean, table)
    return frames


def _pit_partition(apps: pd.DataFrame, bureau: pd.DataFrame, repay: pd.DataFrame) -> pd.DataFrame:
    """Point-in-time features for the applications of one customer partition."""
    apps = apps.sort_values("applied_at", kind="stable").reset_index(drop=True)
    snaps = bureau[["customer_id", *BUREAU_VALUES]].sort_values(["pulled_at", "snapshot_id"], kind="stable")
    # the latest snapshot pulled at or before the application (exact matches allowed)
    out = pd.merge_asof(
        apps, snaps, left_on="applied_at", right_on="pulled_at", by="customer_id", direction="backward"
    ).rename(columns={"pulled_at": "bureau_pulled_at"})
    # applications the customer made strictly earlier
    out["prior_applications"] = (
        out.groupby("customer_id")["applied_at"].rank(method="min").astype("int64") - 1
    )
    # repayments of the customer's loans ingested strictly before the application
    history = repay.sort_values("ingested_at", kind="stable").copy()
    history["prior_repayments"] = history.groupby("customer_id").cumcount() + 1
    history["prior_late_payments"] = (
        (history["days_late"] > 30).astype("int64").groupby(history["customer_id"]).cumsum()
    )
    out = pd.merge_asof(
        out.sort_values("applied_at", kind="stable"),
        history[["customer_id", "ingested_at", "prior_repayments", "prior_late_payments"]],
        left_on="applied_at",
        right_on="ingested_at",
        by="customer_id",
        direction="backward",
        allow_exact_matches=False,
        suffixes=("", "_repayment"),
    )
    for column in ("prior_repayments", "prior_late_payments"):
        out[column] = out[column].fillna(0).astype("int64")
    return out.drop(columns=["ingested_at_repayment"], errors="ignore")


def gold_frame(silver: dict, *, as_of: str | pd.Timestamp | None = None, npartitions: int | None = None):
    """The gold feature table as a lazy Dask DataFrame (same rules as ``05_src/sql/gold``).

    Parameters
    ----------
    silver : dict
        Output of :func:`silver_frames`.
    as_of : str or Timestamp, optional
        Labels observed at or after it are left out; by default every label is kept.
    npartitions : int, optional
        Partitions of the customer shuffle; by default that of the applications.
    """
    apps, bureau, outcomes = silver["applications"], silver["bureau"], silver["outcomes"]
    parts = npartitions or apps.npartitions
    owners = apps[["application_id", "customer_id"]]
    repay = silver["repayments"][["application_id", "ingested_at", "days_late"]].merge(
        owners, on="application_id", shuffle_method=SHUFFLE_METHOD
    )

    def by_customer(frame):
        return frame.shuffle(on="customer_id", npartitions=parts, shuffle_method=SHUFFLE_METHOD)

    apps_by_customer = by_customer(apps.drop(columns=["ingested_at"]))
    bureau_by_customer = by_customer(bureau)
    repay_by_customer = by_customer(repay)
    meta = _pit_partition(apps_by_customer._meta, bureau_by_customer._meta, repay_by_customer._meta)
    features = dd.map_partitions(
        _pit_partition,
        apps_by_customer,
        bureau_by_customer,
        repay_by_customer,
        meta=meta,
        align_dataframes=False,
    )
    labels = outcomes[["application_id", "serious_dlq", "observed_at"]].rename(
        columns={"observed_at": "label_observed_at"}
    )
    if as_of is not None:
        cutoff = pd.Timestamp(as_of)
        cutoff = cutoff.tz_localize("UTC") if cutoff.tzinfo is None else cutoff.tz_convert("UTC")
        labels = labels[labels["label_observed_at"] < cutoff]
    gold = features.merge(labels, on="application_id", how="left", shuffle_method=SHUFFLE_METHOD)
    return gold[GOLD_COLUMNS]


def read_postgres_by_month(
    url: str, table: str, months: Sequence[str], *, columns: Sequence[str] | None = None
):
    """A table from PostgreSQL as a Dask DataFrame with one partition per month.

    Each partition runs its own query (``WHERE month = %s``), so workers read in
    parallel and no single process holds the whole table.
    """
    schema, _, name = table.rpartition(".")
    if not months:
        raise ValueError("months is empty: pass the months to read, e.g. ['2024-01', '2024-02'].")

    def read_month(month: str) -> pd.DataFrame:
        select = sql.SQL(", ").join(sql.Identifier(c) for c in columns) if columns else sql.SQL("*")
        query = sql.SQL("SELECT {} FROM {} WHERE month = %s ORDER BY 1").format(
            select, sql.Identifier(schema or "public", name)
        )
        conn = db.connect(url)
        try:
            return db.read_sql(conn, query, (month,))
        finally:
            conn.close()

    meta = read_month(months[0]).iloc[:0]
    return dd.from_map(read_month, list(months), meta=meta, enforce_metadata=False)
