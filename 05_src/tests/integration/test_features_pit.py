"""Point-in-time feature retrieval against a real PostgreSQL: never a snapshot from the future."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlsd.features import gold_features, point_in_time_features

pytestmark = pytest.mark.integration

UTC = "UTC"
FEATURES = ["revolving_utilization", "late_90"]


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=UTC)


# Snapshots per customer; C3's only snapshot is after its application, C4 has none.
SNAPSHOTS = [
    ("S1", "C1", "2025-01-01 00:00:00", 0.10, 0),
    ("S2", "C1", "2025-02-01 00:00:00", 0.20, 1),
    ("S3", "C1", "2025-03-01 00:00:00", 0.30, 2),  # after A1, exactly at A2's as-of time
    ("S4", "C1", "2025-04-01 00:00:00", 0.40, 3),  # after every C1 application
    ("S5", "C2", "2025-01-05 00:00:00", 0.50, 0),
    ("S6", "C2", "2025-01-10 00:00:00.000001", 0.60, 5),  # one microsecond after A3's as-of time
    ("S7", "C3", "2025-06-01 00:00:00", 0.70, 0),
    ("S9", "C5", "2025-01-01 00:00:00", 0.90, 2),  # two snapshots at the same moment:
    ("S8", "C5", "2025-01-01 00:00:00", 0.80, 1),  # the larger snapshot_id wins, as in gold
]

APPLICATIONS = pd.DataFrame(
    {
        "application_id": ["A1", "A2", "A3", "A4", "A5", "A6"],
        "customer_id": ["C1", "C1", "C2", "C3", "C4", "C5"],
        "as_of_timestamp": [
            ts("2025-02-15 12:00"),
            ts("2025-03-01 00:00:00"),
            ts("2025-01-10 00:00:00"),
            ts("2025-05-31 23:59:59.999999"),
            ts("2025-06-01"),
            ts("2025-02-01"),
        ],
    },
    index=[50, 40, 30, 20, 10, 0],  # a non-default index that the result must keep
)


def make_bureau(conn, name: str = "bureau_pit", time_type: str = "timestamptz", rows=SNAPSHOTS) -> None:
    with conn.cursor() as cur:
        cur.execute(
            f"CREATE TEMP TABLE {name} (snapshot_id text, customer_id text, pulled_at {time_type}, "
            "revolving_utilization double precision, late_90 integer)"
        )
        # Snapshot times are UTC wall-clock text; both column types must hold that UTC instant.
        stamp = "%s::timestamp" if time_type == "timestamp" else "(%s || '+00')::timestamptz"
        cur.executemany(f"INSERT INTO {name} VALUES (%s, %s, {stamp}, %s, %s)", rows)


def retrieve(conn, applications=APPLICATIONS, **kwargs) -> pd.DataFrame:
    return point_in_time_features(
        conn,
        applications,
        columns=kwargs.pop("columns", FEATURES),
        schema="pg_temp",
        table="bureau_pit",
        **kwargs,
    )


@pytest.mark.parametrize("time_type", ["timestamptz", "timestamp"])
def test_latest_snapshot_at_or_before_as_of(conn, time_type):
    # A session time zone far from UTC must not shift any comparison.
    with conn.cursor() as cur:
        cur.execute("SET TIME ZONE 'Asia/Kolkata'")
    make_bureau(conn, time_type=time_type)
    out = retrieve(conn)

    assert out.index.tolist() == APPLICATIONS.index.tolist()
    assert out["application_id"].tolist() == APPLICATIONS["application_id"].tolist()
    by_app = out.set_index("application_id")
    # A1: S2 (S3 and S4 come later); A2: S3 taken exactly at the as-of time is allowed;
    # A3: S6 is one microsecond late, so S5; A4: C3's only snapshot is later; A5: C4 has none;
    # A6: S8 and S9 tie on pulled_at, S9 wins.
    assert by_app.loc[["A1", "A2", "A3", "A6"], "revolving_utilization"].tolist() == [0.20, 0.30, 0.50, 0.90]
    assert by_app.loc[["A1", "A2", "A3", "A6"], "late_90"].tolist() == [1, 2, 0, 2]
    assert by_app.loc[["A4", "A5"], FEATURES].isna().all().all()
    pulled = pd.to_datetime(by_app["pulled_at"])
    if pulled.dt.tz is None:
        pulled = pulled.dt.tz_localize(UTC)
    assert pulled.loc["A1"] == ts("2025-02-01")
    assert pulled.loc["A2"] == ts("2025-03-01")
    assert pulled.loc["A3"] == ts("2025-01-05")
    assert pulled.loc[["A4", "A5"]].isna().all()


def test_naive_as_of_is_read_as_utc_and_strings_work(conn):
    make_bureau(conn)
    naive = APPLICATIONS.assign(as_of_timestamp=APPLICATIONS["as_of_timestamp"].dt.tz_localize(None))
    text = APPLICATIONS.assign(as_of_timestamp=APPLICATIONS["as_of_timestamp"].map(lambda t: t.isoformat()))
    expected = retrieve(conn)["revolving_utilization"]
    pd.testing.assert_series_equal(retrieve(conn, naive)["revolving_utilization"], expected)
    pd.testing.assert_series_equal(retrieve(conn, text)["revolving_utilization"], expected)


def test_matches_a_brute_force_pandas_join(conn):
    rng = np.random.default_rng(7)
    start = ts("2025-01-01").value // 1000  # microseconds
    span = 200 * 86_400 * 1_000_000
    snapshots = pd.DataFrame(
        {
            "snapshot_id": [f"S{i}" for i in range(300)],
            "customer_id": rng.choice([f"C{i}" for i in range(25)], 300),
            "pulled_at": pd.to_datetime(start + rng.integers(0, span, 300), unit="us", utc=True),
            "revolving_utilization": rng.random(300).round(6),
            "late_90": rng.integers(0, 4, 300),
        }
    )
    applications = pd.DataFrame(
        {
            "application_id": [f"A{i}" for i in range(120)],
            "customer_id": rng.choice([f"C{i}" for i in range(30)], 120),  # C25..C29 have no snapshots
            "as_of_timestamp": pd.to_datetime(start + rng.integers(0, span, 120), unit="us", utc=True),
        }
    )
    # Some applications land exactly on a snapshot time of their customer.
    applications.loc[:9, "customer_id"] = snapshots["customer_id"].iloc[:10].to_numpy()
    applications.loc[:9, "as_of_timestamp"] = snapshots["pulled_at"].iloc[:10].to_numpy()
    rows = [
        (
            r.snapshot_id,
            r.customer_id,
            r.pulled_at.strftime("%Y-%m-%d %H:%M:%S.%f"),
            r.revolving_utilization,
            r.late_90,
        )
        for r in snapshots.itertuples()
    ]
    make_bureau(conn, rows=[(a, b, c, float(d), int(e)) for a, b, c, d, e in rows])

    out = retrieve(conn, applications)

    expected = []
    for app in applications.itertuples():
        seen = snapshots[
            (snapshots["customer_id"] == app.customer_id) & (snapshots["pulled_at"] <= app.as_of_timestamp)
        ]
        expected.append(
            np.nan if seen.empty else seen.loc[seen["pulled_at"].idxmax(), "revolving_utilization"]
        )
    np.testing.assert_array_equal(out["revolving_utilization"].astype(float).to_numpy(), np.array(expected))
    assert out["revolving_utilization"].notna().sum() >= 50  # the check is not vacuous


def test_leaves_no_temporary_table_and_commits_nothing(conn):
    make_bureau(conn)
    retrieve(conn)
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_class WHERE relname LIKE 'pit_keys_%%'")
        assert cur.fetchone()[0] == 0


def test_empty_applications_give_an_empty_frame(conn):
    make_bureau(conn)
    out = retrieve(conn, APPLICATIONS.iloc[:0])
    assert len(out) == 0
    assert list(out.columns) == [*APPLICATIONS.columns, "pulled_at", *FEATURES]


def test_unknown_table_and_columns_are_explained(conn):
    with pytest.raises(ValueError, match="does not exist"):
        point_in_time_features(conn, APPLICATIONS, schema="pg_temp", table="no_such_table")
    make_bureau(conn)
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['debt_ratio'\]"):
        retrieve(conn, columns=["debt_ratio"])
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['as_of'\]"):
        retrieve(conn, as_of="as_of")
    with pytest.raises(ValueError, match="already has column"):
        retrieve(conn, APPLICATIONS.assign(late_90=1))


GOLD = [
    ("A3", "C2", "2025-02-03 10:00", "2025-02", "web", 1000.0, 1),
    ("A1", "C1", "2025-01-20 09:00", "2025-01", "branch", 500.0, 0),
    ("A2", "C1", "2025-01-05 08:00", "2025-01", "web", 750.0, None),
    ("A4", "C3", "2025-03-01 00:00", "2025-03", "broker", 250.0, 0),
]


@pytest.fixture
def gold(conn):
    with conn.cursor() as cur:
        cur.execute(
            "CREATE TEMP TABLE application_features (application_id text, customer_id text, "
            "applied_at timestamptz, month text, channel text, amount double precision, serious_dlq integer)"
        )
        cur.executemany("INSERT INTO application_features VALUES (%s, %s, %s, %s, %s, %s, %s)", GOLD)
    return conn


def test_gold_features_filters_months_and_columns(gold):
    read = dict(schema="pg_temp", table="application_features")
    everything = gold_features(gold, **read)
    assert everything["application_id"].tolist() == ["A2", "A1", "A3", "A4"]  # by applied_at
    assert everything["serious_dlq"].isna().sum() == 1
    january = gold_features(gold, "2025-01", ["application_id", "amount"], **read)
    assert list(january.columns) == ["application_id", "amount"]
    assert january["application_id"].tolist() == ["A2", "A1"]
    two = gold_features(gold, ["2025-02", "2025-03"], **read)
    assert sorted(two["month"]) == ["2025-02", "2025-03"]
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['nope'\]"):
        gold_features(gold, columns=["nope"], **read)


def test_nanosecond_as_of_never_rounds_up_to_a_later_snapshot(conn):
    make_bureau(conn)
    # PostgreSQL keeps microseconds; rounding .000000999 up would admit S6 at .000001.
    keys = APPLICATIONS.iloc[[2]].assign(
        as_of_timestamp=[pd.Timestamp("2025-01-10 00:00:00.000000999", tz=UTC)]
    )
    assert retrieve(conn, keys)["revolving_utilization"].tolist() == [0.50]
    later = keys.assign(as_of_timestamp=[ts("2025-01-10 00:00:00.000001")])
    assert retrieve(conn, later)["revolving_utilization"].tolist() == [0.60]
