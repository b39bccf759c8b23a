"""Inject data-quality defects into one landing file, at known rates and with exact counts.

Each defect touches its own rows: the rows of a month are drawn once, without replacement, and
split between the defect classes, so no row carries two defects and every class is counted
exactly as silver will find it (the rules are in :mod:`mlsd.data` and ``CONTRACT.md``).
Arrays follow the conventions of :mod:`mlsd.data._simulate`: NaN (floats) or -1 (category codes)
for NULL, epoch seconds for timestamps, epoch days for dates.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from mlsd.data._schema import (
    CATEGORY_COLUMNS,
    CATEGORY_VALUES,
    DEFECT_RATES,
    DEFECTS_BY_TABLE,
    EXTRA_NULL_COLUMNS,
    spelling_variants,
)

HOUR = 3_600
LEADING_SPACE = 2  # index of the " value" spelling in spelling_variants(value)
LATE_DELAY_MONTHS = (1, 2)  # a late row lands one month late (80%) or two (20%)
INJECTED = (
    "late_arriving",
    "exact_duplicates",
    "near_duplicates",
    "category_spellings",
    "impossible_values",
    "extra_nulls",
)


@cache
def vocabulary(column: str) -> tuple[tuple[str, ...], int, np.ndarray, np.ndarray]:
    """Canonical values followed by every spelling variant, with each value's variant block."""
    canonical = CATEGORY_VALUES[column]
    values = list(canonical)
    starts, counts = [], []
    for value in canonical:
        variants = spelling_variants(value)
        starts.append(len(values) - len(canonical))
        counts.append(len(variants))
        values.extend(variants)
    return tuple(values), len(canonical), np.array(starts), np.array(counts)


def ingest_times(rng: np.random.Generator, event: np.ndarray, end: int, mean_lag: float) -> np.ndarray:
    """When rows reached the landing zone: after the event, before the end of its month."""
    lag = 30 + rng.exponential(mean_lag, len(event)).astype(np.int64)
    return np.minimum(event + lag, end - 1)


def _as_nullable(values: np.ndarray) -> np.ndarray:
    """Integer columns become float64 so that NaN can mark NULL."""
    return values if values.dtype.kind == "f" else values.astype(np.float64)


@dataclass
class Injected:
    """The file's rows after injection, and the rows that leave for later files.

    ``rows`` are the clean rows, changed in place; ``extra`` holds the added copies (exact and
    near duplicates); ``leaving`` indexes the rows of ``rows`` that move to a later file, listed in
    ``late`` by the index of the month they land in.
    """

    rows: dict[str, np.ndarray]
    extra: list[dict[str, np.ndarray]]
    leaving: np.ndarray
    late: dict[int, dict[str, np.ndarray]]
    counts: dict[str, int]


def inject(
    table: str,
    cols: dict[str, np.ndarray],
    event: np.ndarray,
    rng: np.random.Generator,
    m: int,
    bounds: np.ndarray,
) -> Injected:
    """Inject the defects of ``table`` into the clean rows of month ``m``.

    Parameters
    ----------
    table : str
        Landing table name.
    cols : dict of numpy.ndarray
        Clean rows, including ``ingested_at``; arrays are modified in place or replaced.
    event : numpy.ndarray
        Event time of each row in epoch seconds (the month the row belongs to).
    rng : numpy.random.Generator
        The ``(seed, month, "defects", table)`` stream.
    m : int
        Index of the month in the plan; ``bounds`` holds month starts and ``as_of`` in seconds.
    """
    n = len(event)
    kinds = DEFECTS_BY_TABLE[table]
    last = len(bounds) - 2
    sizes = {}
    budget = n
    for kind in INJECTED:
        k = 0
        if kind in kinds and not (kind == "late_arriving" and m == last):
            k = min(int(rng.binomial(n, DEFECT_RATES[kind])), budget)
        sizes[kind] = k
        budget -= k
    chosen = rng.choice(n, n - budget, replace=False) if n - budget else np.zeros(0, dtype=np.int64)
    groups, at = {}, 0
    for kind in INJECTED:
        groups[kind] = np.sort(chosen[at : at + sizes[kind]])
        at += sizes[kind]
    counts = {kind: 0 for kind in kinds if kind in INJECTED}

    # category spellings: one category cell per row takes a variant spelling
    rows = groups["category_spellings"]
    if len(rows):
        columns = CATEGORY_COLUMNS[table]
        which = rng.integers(0, len(columns), len(rows))
        u = rng.random(len(rows))
        for j, column in enumerate(columns):
            hit = rows[which == j]
            _, n_canon, starts, n_var = vocabulary(column)
            codes = cols[column][hit]
            cols[column][hit] = n_canon + starts[codes] + (u[which == j] * n_var[codes]).astype(np.int64)
        counts["category_spellings"] = len(rows)

    # impossible values
    rows = groups["impossible_values"]
    if len(rows):
        if table == "applications":
            cols["amount"][rows] = np.where(rng.random(len(rows)) < 0.3, 0.0, -cols["amount"][rows])
        elif table == "bureau":
            income = cols["monthly_income"][rows]
            negative = (rng.random(len(rows)) < 0.5) & (income > 0)
            cols["monthly_income"][rows[negative]] = -income[negative]
            cols["age"] = _as_nullable(cols["age"])
            cols["age"][rows[~negative]] = 0.0
        counts["impossible_values"] = len(rows)

    # extra NULLs: one never-NULL cell per row becomes NULL
    rows = groups["extra_nulls"]
    if len(rows):
        columns = EXTRA_NULL_COLUMNS[table]
        which = rng.integers(0, len(columns), len(rows))
        for j, column in enumerate(columns):
            hit = rows[which == j]
            if column in CATEGORY_VALUES:
                cols[column][hit] = -1
            else:
                cols[column] = _as_nullable(cols[column])
                cols[column][hit] = np.nan
        counts["extra_nulls"] = len(rows)

    # near duplicates: a stale copy (earlier ingested_at) with one field changed
    rows = groups["near_duplicates"]
    stale = {k: v[rows].copy() for k, v in cols.items()}
    if len(rows):
        k = len(rows)
        u = rng.random((2, k))
        ingested = stale["ingested_at"]
        ev = event[rows]
        stale["ingested_at"] = ev + (u[0] * (ingested - ev)).astype(np.int64)
        half = u[1] < 0.5
        if table == "customers":
            shift = rng.integers(1, 31, k) * np.where(rng.random(k) < 0.5, -1, 1)
            stale["birth_date"] = np.where(half, stale["birth_date"] + shift, stale["birth_date"])
            _, n_canon, starts, _ = vocabulary("region")
            stale["region"] = np.where(
                half, stale["region"], n_canon + starts[stale["region"]] + LEADING_SPACE
            )
        elif table == "applications":
            factor = 1.0 + rng.uniform(0.05, 0.2, k) * np.where(rng.random(k) < 0.5, -1, 1)
            changed = np.round(stale["amount"] * factor / 50.0) * 50.0
            changed = np.where(changed == stale["amount"], changed + 50.0, changed)
            stale["amount"] = np.where(half, changed, stale["amount"])
            _, n_canon, starts, _ = vocabulary("channel")
            stale["channel"] = np.where(
                half, stale["channel"], n_canon + starts[stale["channel"]] + LEADING_SPACE
            )
        elif table == "bureau":
            stale["revolving_utilization"] = np.round(
                stale["revolving_utilization"] + rng.uniform(0.01, 0.2, k), 7
            )
        elif table == "repayments":
            stale["amount_paid"] = np.where(stale["amount_paid"] > 0, 0.0, stale["amount_due"])
        elif table == "outcomes":
            stale["serious_dlq"] = (1 - stale["serious_dlq"]).astype(stale["serious_dlq"].dtype)
        counts["near_duplicates"] = k

    # exact duplicates: identical copies
    rows = groups["exact_duplicates"]
    copies = {k: v[rows] for k, v in cols.items()}
    if "exact_duplicates" in counts:
        counts["exact_duplicates"] = len(rows)

    # late-arriving rows leave for a later month's file
    late: dict[int, dict[str, np.ndarray]] = {}
    rows = groups["late_arriving"]
    if len(rows):
        delay = np.where(rng.random(len(rows)) < 0.8, LATE_DELAY_MONTHS[0], LATE_DELAY_MONTHS[1])
        delay = np.minimum(delay, last - m)
        u = rng.random(len(rows))
        for d in np.unique(delay):
            hit = rows[delay == d]
            target = m + int(d)
            part = {k: v[hit] for k, v in cols.items()}
            lo, hi = int(bounds[target]), int(bounds[target + 1]) - HOUR
            part["ingested_at"] = lo + (u[delay == d] * (hi - lo)).astype(np.int64)
            late[target] = part
        counts["late_arriving"] = len(rows)
    return Injected(cols, [copies, stale], rows, late, counts)
