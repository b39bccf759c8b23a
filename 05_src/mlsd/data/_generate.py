"""Generate the landing files chunk by chunk, with bounded memory, and write the manifest.

A month is generated in chunks of at most ``CHUNK_APPLICATIONS`` applications; each chunk of each
table becomes one *unit*: ingestion times are added, defects injected (late-arriving rows leave for
a later month), and the unit is appended to the month's file as a Parquet row group (or CSV rows).
Between chunks the loop keeps only what a later file still needs: the loan books of the last
``REPAYMENT_HORIZON`` months, outcomes waiting for the month they are observed in (up to seven
months), late rows waiting for the file they land in, and one bit per customer candidate that the
label shift left out. Peak memory therefore follows the size of a month, not the run.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections import defaultdict, deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from mlsd.data._defects import ingest_times, inject, vocabulary
from mlsd.data._rng import month_rng
from mlsd.data._scenarios import month_string, resolve_scenarios
from mlsd.data._schema import (
    CATEGORY_VALUES,
    COLUMNS,
    DEFECT_RATES,
    DEFECTS_BY_TABLE,
    EVENT_TIME_COLUMNS,
    ID_FORMATS,
    LATE_COLUMNS,
    PRIMARY_KEYS,
    SENTINEL_CODES,
    TABLES,
    arrow_schema,
)
from mlsd.data._simulate import (
    CHUNK_APPLICATIONS,
    DAY,
    DAYS_PAST_DUE_DEFAULT,
    DEFAULT_MONTHS,
    FIRST_MISSED_SHARES,
    HOUR,
    PERFORMANCE_WINDOW,
    REPAYMENT_HORIZON,
    REPORTING_LAG_DAYS,
    Plan,
    Population,
    make_plan,
    repayments_due,
    simulate_month,
)
from mlsd.data._truth import ground_truth_spec
from mlsd.data.manifest import MANIFEST_NAME
from mlsd.errors import ConfigError, MLSDError

GENERATOR_VERSION = "2.0.0"
SCALES = {"tiny": 3_000, "small": 40_000, "full": 300_000}
FORMATS = ("parquet", "csv")
_TABLE_CODES = {name: i for i, name in enumerate(TABLES)}
_MAX_PENDING_UNITS = 4  # units handed to writer threads but not yet written
# Parquet dictionary encoding pays off for low-cardinality columns only (ids are unique).
_DICTIONARY_COLUMNS = {
    t: [name for name, kind in cols if name in CATEGORY_VALUES or kind == "int16"]
    for t, cols in COLUMNS.items()
}
# The label's definition and timing, recorded in the manifest (see CONTRACT.md, "outcomes").
LABEL_TIMING = {
    "definition": (
        f"serious_dlq = 1 when the loan is {DAYS_PAST_DUE_DEFAULT} or more days past due within the performance "
        f"window, its first {PERFORMANCE_WINDOW} monthly instalments"
    ),
    "performance_window_months": PERFORMANCE_WINDOW,
    "repayment_horizon_instalments": REPAYMENT_HORIZON,
    "first_missed_instalment_shares": {str(k): v for k, v in FIRST_MISSED_SHARES.items()},
    "observed_at": {
        "default": (
            "due date of the third instalment after the first missed one (90 days past due), "
            f"plus {REPORTING_LAG_DAYS[0]}-{REPORTING_LAG_DAYS[1]} days"
        ),
        "repaid": (
            f"due date of instalment {PERFORMANCE_WINDOW} (the window closes), "
            f"plus {REPORTING_LAG_DAYS[0]}-{REPORTING_LAG_DAYS[1]} days"
        ),
    },
    "delay_days": {"default": [116, 187], "repaid": [177, 187]},
    "note": (
        "outcomes exist only when observed_at < as_of; a default is known 4 to 6 months after the application, "
        "a repaid loan only after 6, so the labels of the last six months are mostly defaults; complete_through "
        "is the last application month whose labels are all observed"
    ),
}
# mean lag (seconds) between a row's event and its arrival in the landing zone
_INGEST_LAG = {
    "customers": 2 * HOUR,
    "applications": 1800,
    "bureau": 600,
    "repayments": 3 * HOUR,
    "outcomes": HOUR,
}


def resolve_size(scale: str | int | None, rows: int | None) -> tuple[str, int]:
    """Return ``(scale label, number of applications)`` from a scale name or a row count."""
    if rows is not None:
        n = int(rows)
        label = f"rows={n}"
    elif scale is None:
        raise ConfigError("Give a scale (tiny, small, full) or rows=N.")
    elif str(scale) in SCALES:
        label, n = str(scale), SCALES[str(scale)]
    elif str(scale).isdigit():
        n = int(scale)
        label = f"rows={n}"
    else:
        raise ConfigError(f"scale={scale!r} is not a scale: use one of {', '.join(SCALES)} or rows=N.")
    if n < 240:
        raise ConfigError(
            f"{n} applications is too few for a 30-month timeline: use at least 240 (tiny is 3000)."
        )
    return label, n


# ------------------------------------------------------------------------------------------------
# arrays -> Arrow


@cache
def _digit_table(width: int) -> np.ndarray:
    """Row ``i`` holds the ASCII digits of ``i``, zero-padded to ``width``."""
    numbers = np.arange(10**width)
    return np.stack([48 + numbers // 10**k % 10 for k in range(width - 1, -1, -1)], axis=1).astype(np.uint8)


def _ids(prefix: str, width: int, values: np.ndarray):
    """Format integer ordinals as fixed-width ids (``C00000042``) without a Python loop."""
    import pyarrow as pa

    n = len(values)
    size = width + 1
    chars = np.empty((n, size), dtype=np.uint8)
    chars[:, 0] = ord(prefix)
    rest = np.asarray(values, dtype=np.int64).copy()
    pos = width + 1
    while pos > 1:  # four digits at a time through a lookup table
        step = min(4, pos - 1)
        chars[:, pos - step : pos] = _digit_table(step)[rest % 10**step]
        rest //= 10**step
        pos -= step
    offsets = np.arange(0, (n + 1) * size, size, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(chars.reshape(-1)))


def to_arrow(table: str, cols: dict[str, np.ndarray]):
    """Turn a table's arrays (ordinals, codes, epoch seconds/days, NaN for NULL) into Arrow."""
    import pyarrow as pa

    arrays, names = [], []
    for name, kind in COLUMNS[table]:
        values = cols[name]
        if name in ID_FORMATS:
            array = _ids(*ID_FORMATS[name], values)
        elif name in CATEGORY_VALUES:
            words = pa.array(vocabulary(name)[0], pa.string())
            codes = values.astype(np.int32)
            array = words.take(pa.array(codes, mask=codes < 0))
        elif kind == "timestamp":
            array = pa.array(np.asarray(values, dtype=np.int64), pa.timestamp("s", tz="UTC"))
        elif kind == "float64":
            values = np.asarray(values, dtype=np.float64)
            array = pa.array(values, pa.float64(), mask=np.isnan(values))
        else:  # int16 and date: NaN marks NULL
            target = pa.date32() if kind == "date" else pa.int16()
            mask = np.isnan(values) if values.dtype.kind == "f" else None
            ints = np.nan_to_num(values, nan=0.0) if mask is not None else values
            array = pa.array(ints.astype(np.int32 if kind == "date" else np.int16), target, mask=mask)
        arrays.append(array)
        names.append(name)
    return pa.Table.from_arrays(arrays, names=names)


# ------------------------------------------------------------------------------------------------
# the month loop


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if len(parts) == 1:
        return parts[0]
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


def _slices(cols: dict[str, np.ndarray], size: int) -> Iterator[dict[str, np.ndarray]]:
    n = len(next(iter(cols.values())))
    for at in range(0, n, size):
        yield {k: v[at : at + size] for k, v in cols.items()}


@dataclass
class Unit:
    """One piece of a landing file: ``rows`` of ``table`` for month index ``month``.

    ``rows`` is ``None`` for the marker that closes a month (all its units have been yielded);
    ``truth`` is set on application units (the answer key, never written).
    """

    month: int
    table: str | None
    rows: dict[str, np.ndarray] | None
    counts: dict[str, int]
    truth: dict[str, np.ndarray] | None = None


class _Router:
    """Turn clean rows into landing units: ingestion times, defects, late rows held back."""

    def __init__(self, plan: Plan, defects: bool) -> None:
        self.plan = plan
        self.defects = defects
        self.arriving: dict[int, dict[str, list[dict[str, np.ndarray]]]] = defaultdict(
            lambda: defaultdict(list)
        )
        self.serial: dict[tuple[int, str], int] = defaultdict(int)

    def land(self, m: int, table: str, cols: dict[str, np.ndarray]) -> Unit:
        plan = self.plan
        num, end = int(plan.month_numbers[m]), int(plan.bounds[m + 1])
        code, serial = _TABLE_CODES[table], self.serial[m, table]
        self.serial[m, table] += 1
        event = cols[EVENT_TIME_COLUMNS[table]]
        event = event * DAY + 4 * HOUR if table == "repayments" else event
        rng = month_rng(plan.seed, num, "defects", code, serial, 0)
        cols["ingested_at"] = ingest_times(rng, event, end, _INGEST_LAG[table])
        counts = {kind: 0 for kind in DEFECTS_BY_TABLE[table]}
        if "sentinel_codes" in counts:
            counts["sentinel_codes"] = int(np.isin(cols[LATE_COLUMNS[0]], SENTINEL_CODES).sum())
        if not self.defects:
            return Unit(m, table, cols, counts)
        injected = inject(
            table, cols, event, month_rng(plan.seed, num, "defects", code, serial, 1), m, plan.bounds
        )
        for target, part in injected.late.items():
            self.arriving[target][table].append(part)
        counts.update(injected.counts)
        if len(injected.leaving):
            keep = np.ones(len(event), dtype=bool)
            keep[injected.leaving] = False
            cols = {k: v[keep] for k, v in cols.items()}
        # file order: the unit's rows in key order, then re-sent copies (exact and near duplicates)
        return Unit(m, table, _concat([cols, *injected.extra]), counts)

    def arrivals(self, m: int) -> Iterator[Unit]:
        """Late rows landing in month ``m``'s files (already counted where they left)."""
        waiting = self.arriving.pop(m, {})
        for table in TABLES:
            if waiting.get(table):
                yield Unit(m, table, _concat(waiting[table]), {})


def iter_units(plan: Plan, *, defects: bool = True) -> Iterator[Unit]:
    """Yield the landing units of every month in order, each month closed by a marker unit."""
    router = _Router(plan, defects)
    books: dict[int, list[dict[str, np.ndarray]]] = {}
    waiting: dict[int, list[dict[str, np.ndarray]]] = defaultdict(list)
    n_months = len(plan.months)
    population = Population(plan)
    next_snapshot = 0
    for m in range(n_months):
        books[m] = []
        for chunk in simulate_month(plan, m, next_snapshot, population):
            next_snapshot += len(chunk.bureau["snapshot_id"])
            books[m].append(chunk.loans)
            target = np.searchsorted(plan.bounds, chunk.outcomes["observed_at"], side="right") - 1
            for t in np.unique(target[target < n_months]):  # observed before as_of only
                hit = target == t
                waiting[int(t)].append({k: v[hit] for k, v in chunk.outcomes.items()})
            yield router.land(m, "customers", chunk.customers)
            unit = router.land(m, "applications", chunk.applications)
            unit.truth = chunk.truth
            yield unit
            yield router.land(m, "bureau", chunk.bureau)
            del chunk, unit
        for cols in repayments_due(plan, m, books):
            yield router.land(m, "repayments", cols)
        books.pop(m - REPAYMENT_HORIZON, None)  # its last instalment fell due this month
        if m in waiting:
            for cols in _slices(_concat(waiting.pop(m)), CHUNK_APPLICATIONS):
                yield router.land(m, "outcomes", cols)
        yield from router.arrivals(m)
        yield Unit(m, None, None, {})


# ------------------------------------------------------------------------------------------------
# writing


def _file_path(table: str, month: str, fmt: str) -> str:
    if fmt == "parquet":
        return f"{table}/month={month}/part-0.parquet"
    return f"{table}/{table}_{month}.csv"


class _FileWriter:
    """Appends units of one table and month to its file; used from one thread only."""

    def __init__(self, out: Path, table: str, month: str, fmt: str) -> None:
        import pyarrow as pa

        self.table, self.month, self.fmt = table, month, fmt
        self.rel = _file_path(table, month, fmt)
        path = out / self.rel
        path.parent.mkdir(parents=True, exist_ok=True)
        self.rows = 0
        schema = arrow_schema(table)
        if fmt == "parquet":
            import pyarrow.parquet as pq

            self._writer = pq.ParquetWriter(
                path, schema, compression="zstd", use_dictionary=_DICTIONARY_COLUMNS[table]
            )
        else:
            import pyarrow.csv as pacsv

            self._writer = pacsv.CSVWriter(path, schema.append(pa.field("month", pa.string())))
        self._month_value = pa.array([month], pa.string())

    def append(self, rows: dict[str, np.ndarray]) -> None:
        arrow_table = to_arrow(self.table, rows)
        if self.fmt == "csv":
            index = np.zeros(arrow_table.num_rows, dtype=np.int32)
            arrow_table = arrow_table.append_column("month", self._month_value.take(index))
        self._writer.write_table(arrow_table)
        self.rows += arrow_table.num_rows

    def close(self) -> None:
        self._writer.close()


def _request(seed: int, label: str, n: int, plan: Plan, fmt: str, defects: bool) -> dict[str, Any]:
    return {
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "scale": label,
        "applications": n,
        "months": list(plan.months),
        "as_of": plan.as_of,
        "format": fmt,
        "defects_enabled": defects,
        "scenarios": plan.scenarios,
    }


def _prepare(out: Path, request: dict[str, Any], overwrite: bool) -> dict[str, Any] | None:
    """Return the existing manifest when it matches the request; clear or refuse otherwise."""
    manifest_path = out / MANIFEST_NAME
    ours = [out / t for t in TABLES if (out / t).exists()]
    if manifest_path.is_file() and not overwrite:
        existing = json.loads(manifest_path.read_text(encoding="utf-8"))
        if all(existing.get(k) == v for k, v in request.items()):
            return existing
        raise MLSDError(
            f"{out} holds data generated with other settings (seed, scale, months, format or scenarios): "
            "pass overwrite=True (CLI: --overwrite) to replace it, or choose another output folder."
        )
    if ours and not overwrite:
        raise MLSDError(
            f"{out} holds table folders but no {MANIFEST_NAME} (an interrupted run?): "
            "pass overwrite=True (CLI: --overwrite) to regenerate, or delete the folder."
        )
    for path in ours:
        shutil.rmtree(path)
    if manifest_path.exists():
        manifest_path.unlink()
    return None


def generate(
    out_dir: str | os.PathLike,
    *,
    scale: str = "small",
    seed: int = 42,
    rows: int | None = None,
    fmt: str = "parquet",
    scenarios: Any = None,
    progress: bool | None = None,
    months: int = DEFAULT_MONTHS,
    start_month: str = "2024-01",
    defects: bool = True,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Generate the landing files of the course dataset and return the manifest.

    Parameters
    ----------
    out_dir : path
        Output folder; receives ``{table}/month=YYYY-MM/part-0.parquet`` (or
        ``{table}/{table}_YYYY-MM.csv``) and ``manifest.json``.
    scale : {"tiny", "small", "full"}
        Number of applications: 3,000, 40,000 or 300,000 (see :data:`SCALES`).
    seed : int
        Same seed, same bytes; another seed, other data.
    rows : int, optional
        Number of applications; overrides ``scale``.
    fmt : {"parquet", "csv"}
        File format.
    scenarios : optional
        Drift scenarios: ``None`` (all on), a list of names to enable, or a mapping
        ``{name: bool | "YYYY-MM" | {"enabled", "start_month"}}``; see :func:`resolve_scenarios`.
    progress : bool, optional
        Show a progress bar; default: only when stderr is a terminal.
    months, start_month : int, str
        The timeline: ``months`` monthly cohorts from ``start_month`` (default 30 from 2024-01).
    defects : bool
        Inject the data-quality defects (default). ``False`` writes clean files.
    overwrite : bool
        Replace data that ``out_dir`` already holds. Without it, a folder generated with the same
        settings is reused as it is and one with other settings is an error.

    Returns
    -------
    dict
        The manifest, also written to ``out_dir/manifest.json``.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as out:
    ...     manifest = generate(out, scale="tiny", progress=False)
    >>> manifest["rows"]["applications"] >= 3000
    True
    """
    if fmt not in FORMATS:
        raise ConfigError(f"fmt={fmt!r} is not a format: use 'parquet' or 'csv'.")
    label, n = resolve_size(scale, rows)
    resolved = resolve_scenarios(scenarios)
    plan = make_plan(n, seed, start_month, int(months), resolved)
    out = Path(out_dir)
    request = _request(int(seed), label, n, plan, fmt, bool(defects))
    existing = _prepare(out, request, overwrite)
    if existing is not None:
        return existing
    out.mkdir(parents=True, exist_ok=True)

    from tqdm.auto import tqdm

    show = sys.stderr.isatty() if progress is None else bool(progress)
    rows_by_month: dict[str, dict[str, int]] = {t: {} for t in TABLES}
    defect_counts = {t: {kind: 0 for kind in DEFECTS_BY_TABLE[t]} for t in TABLES}
    files: dict[str, list[str]] = {t: [] for t in TABLES}
    open_files: dict[str, _FileWriter] = {}

    def append(table: str, month: str, rows: dict[str, np.ndarray]) -> None:
        if table not in open_files:
            open_files[table] = _FileWriter(out, table, month, fmt)
        open_files[table].append(rows)

    def close(table: str, month: str) -> None:
        writer = open_files.pop(table, None) or _FileWriter(out, table, month, fmt)  # empty file
        writer.close()
        files[table].append(writer.rel)
        rows_by_month[table][month] = writer.rows

    # One writer thread per table appends that table's units in order (Arrow and Parquet release
    # the GIL), while this thread generates the next chunk; at most _MAX_PENDING_UNITS units wait.
    writers = {t: ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"mlsd-{t}") for t in TABLES}
    pending: deque = deque()
    try:
        with tqdm(total=len(plan.months), unit="month", desc=f"mlsd data {label}", disable=not show) as bar:
            for unit in iter_units(plan, defects=defects):
                month = plan.months[unit.month]
                if unit.rows is None:
                    pending.extend(writers[t].submit(close, t, month) for t in TABLES)
                    bar.update(1)
                    continue
                for kind, k in unit.counts.items():
                    defect_counts[unit.table][kind] += k
                pending.append(writers[unit.table].submit(append, unit.table, month, unit.rows))
                del unit
                while len(pending) > _MAX_PENDING_UNITS:
                    pending.popleft().result()
            while pending:
                pending.popleft().result()
    finally:
        for executor in writers.values():
            executor.shutdown(wait=True, cancel_futures=True)
    manifest = {
        **request,
        "rows": {t: sum(rows_by_month[t].values()) for t in TABLES},
        "rows_by_month": rows_by_month,
        "defects": defect_counts,
        "defect_rates": dict(DEFECT_RATES),
        "ground_truth": ground_truth_spec(resolved),
        "labels": {**LABEL_TIMING, "complete_through": month_string(int(plan.month_numbers[-1]) - 6)},
        "chunk_applications": CHUNK_APPLICATIONS,
        "tables": {
            t: {
                "primary_key": list(PRIMARY_KEYS[t]),
                "event_time": EVENT_TIME_COLUMNS[t],
                "columns": dict(COLUMNS[t]),
            }
            for t in TABLES
        },
        "files": files,
    }
    tmp = out / (MANIFEST_NAME + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, out / MANIFEST_NAME)
    return manifest


def iter_month_frames(
    *,
    scale: str = "small",
    seed: int = 42,
    rows: int | None = None,
    scenarios: Any = None,
    months: int = DEFAULT_MONTHS,
    start_month: str = "2024-01",
    defects: bool = True,
    with_truth: bool = False,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Stream the landing tables month by month as pandas DataFrames, without writing files.

    The frames hold exactly the rows that :func:`generate` writes for the same arguments, in the
    same order, with the ``month`` column (the CSV layout). Memory stays at about one month.

    Parameters
    ----------
    scale, seed, rows, scenarios, months, start_month, defects
        As for :func:`generate`.
    with_truth : bool
        Add a ``"truth"`` frame per month: every application of the month with its true default
        probability ``p_true`` and its drawn label ``serious_dlq``, observed or not. It is the
        answer key: never written to the landing files.

    Yields
    ------
    tuple of (str, dict of pandas.DataFrame)
        The month ``YYYY-MM`` and ``{table: frame}``.

    Examples
    --------
    >>> month, frames = next(iter_month_frames(scale="tiny"))
    >>> month, sorted(frames)
    ('2024-01', ['applications', 'bureau', 'customers', 'outcomes', 'repayments'])
    """
    import pandas as pd
    import pyarrow as pa

    label, n = resolve_size(scale, rows)
    plan = make_plan(n, seed, start_month, int(months), resolve_scenarios(scenarios))
    parts: dict[str, list] = defaultdict(list)
    truths: list[dict[str, np.ndarray]] = []
    for unit in iter_units(plan, defects=defects):
        if unit.rows is not None:
            parts[unit.table].append(to_arrow(unit.table, unit.rows))
            if with_truth and unit.truth is not None:
                truths.append(unit.truth)
            continue
        month = plan.months[unit.month]
        frames = {}
        for table in TABLES:
            arrow_table = (
                pa.concat_tables(parts.pop(table, []))
                if table in parts
                else arrow_schema(table).empty_table()
            )
            frame = arrow_table.to_pandas()
            frame["month"] = pd.Series([month] * len(frame), dtype="str", index=frame.index)
            frames[table] = frame
        if with_truth:
            truth = _concat(truths)
            truths = []
            frames["truth"] = pd.DataFrame(
                {
                    "application_id": _ids(
                        *ID_FORMATS["application_id"], truth["application_id"]
                    ).to_pandas(),
                    "applied_at": pd.to_datetime(truth["applied_at"], unit="s", utc=True),
                    "p_true": truth["p_true"],
                    "serious_dlq": truth["serious_dlq"].astype(np.int16),
                    "month": month,
                }
            )
        yield month, frames
