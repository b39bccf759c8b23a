"""Comparison: the half of a check that runs in the grader, in no process learner code touched.

Each autograded test cell of an assignment has a comparison, written by the instructors in
``<course>/checks/<assignment>.py`` (never released to learners)::

    from mlsd.grading.checks import CheckSet, close, expect, same

    checks = CheckSet()

    @checks.add("test_add_hidden")
    def add_hidden(got, ref):
        expect(same(got["total"], ref["total"]), "add(10, 5) should be 15")
        expect(close(got["floats"], ref["floats"]), "add should work for floats")

``got`` holds the values the learner's kernel recorded for that cell (see
:mod:`mlsd.grading.extraction`) and the tables the check names, read from the learner's database
by the grader after the kernel finished; ``ref`` holds the same for the instructors' reference
solution, run on the same inputs in a separate kernel. A comparison passes when every
:func:`expect` holds; the first that does not gives the learner its message. Where many answers
are right (a random sample, a split), compare properties: a sample's class shares against the
input's (``ref``), a split's boundaries, a table's rows in any order.
"""

from __future__ import annotations

import base64
import io
import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Check",
    "CheckFailed",
    "CheckSet",
    "Missing",
    "Raised",
    "Unsupported",
    "Values",
    "close",
    "decode",
    "expect",
    "raised",
    "same",
    "same_frame",
]

MAX_RECORD_BYTES = 16 * 1024 * 1024
MAX_FRAME_ROWS = 1_000_000
MAX_FRAME_CELLS = 10_000_000
_FRAME_TYPES = (
    "int",
    "uint",
    "halffloat",
    "float",
    "double",  # Arrow's names for float16, float32 and float64
    "bool",
    "string",
    "large_string",
    "timestamp",
    "date",
    "null",
    "dictionary",
    "decimal",
)


class CheckFailed(Exception):
    """An expectation that does not hold; its message is the learner's."""


class Missing(Exception):
    """A value the check needs was not recorded (the check did not run as written)."""


@dataclass(frozen=True)
class Raised:
    """The learner's function raised this exception type (by name) instead of returning."""

    name: str


@dataclass(frozen=True)
class Unsupported:
    """The learner's function returned a value of a type that is not sent to the grader."""

    what: str


def expect(condition: object, message: str) -> None:
    """Fail the check with ``message`` unless ``condition`` is ``True`` or NumPy's true.

    Examples
    --------
    >>> import numpy as np
    >>> expect(np.float64(0.5) <= 1, "a NumPy comparison counts")
    >>> expect(1, "a truthy number does not")
    Traceback (most recent call last):
    mlsd.grading.checks.CheckFailed: a truthy number does not
    """
    kind = type(condition)
    numpy_bool = kind.__module__ == "numpy" and kind.__name__ in ("bool", "bool_")  # NumPy 2 names it bool
    if condition is not True and not (numpy_bool and bool(condition)):
        raise CheckFailed(message)


def raised(value: object, name: str | None = None) -> bool:
    """Whether ``value`` stands for a raised exception (of type ``name``, when given)."""
    return isinstance(value, Raised) and (name is None or value.name == name)


def _number(value: object) -> bool:
    return type(value) in (int, float)


def same(a: object, b: object) -> bool:
    """Equal as plain data: same structure and values; ``1`` equals ``1.0``, ``True`` only ``True``.

    Examples
    --------
    >>> same([1, 2.0, {"a": "x"}], [1.0, 2, {"a": "x"}]), same(True, 1)
    (True, False)
    """
    return close(a, b, rtol=0.0, atol=0.0)


def close(a: object, b: object, *, rtol: float = 1e-9, atol: float = 1e-12) -> bool:
    """Equal as plain data with numbers compared within ``atol + rtol * |b|`` (NaN equals NaN).

    Examples
    --------
    >>> close(0.1 + 0.2, 0.3), close([1.0, float("nan")], [1.0, float("nan")]), close(1.0, 1.1)
    (True, True, False)
    """
    if type(a) is bool or type(b) is bool:
        return type(a) is type(b) and a == b
    if _number(a) and _number(b):
        fa, fb = float(a), float(b)
        if math.isnan(fa) or math.isnan(fb):
            return math.isnan(fa) and math.isnan(fb)
        if math.isinf(fa) or math.isinf(fb):
            return fa == fb
        return abs(fa - fb) <= atol + rtol * abs(fb)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(close(x, y, rtol=rtol, atol=atol) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k], rtol=rtol, atol=atol) for k in a)
    if _is_frame(a) and _is_frame(b):
        return same_frame(a, b, rtol=rtol, atol=atol)
    if type(a) is not type(b):
        return False
    return a == b


def _is_frame(value: object) -> bool:
    return type(value).__name__ == "DataFrame" and type(value).__module__.startswith("pandas")


def same_frame(
    got: object,
    expected: object,
    *,
    columns: Sequence[str] | None = None,
    sort_by: Sequence[str] | None = None,
    any_order: bool = True,
    rtol: float = 1e-9,
    atol: float = 1e-12,
    check_dtype: bool = False,
) -> bool:
    """Whether two DataFrames hold the same rows.

    Parameters
    ----------
    got, expected : DataFrame
        The learner's and the reference's frame (anything else compares unequal).
    columns : sequence of str, optional
        Compare only these columns (both frames must have them); default: the same set of columns.
        Column order never matters.
    sort_by : sequence of str, optional
        Sort both by these columns before comparing; with ``any_order`` and no ``sort_by``, rows are
        sorted by every column.
    any_order : bool
        Rows may come in any order (default); ``False`` compares them in order.
    rtol, atol : float
        Tolerance for floating-point columns.
    check_dtype : bool
        Also require the same dtypes (default: values only, so ``int64`` equals ``Int64``).
    """
    import pandas as pd

    if not (_is_frame(got) and _is_frame(expected)):
        return False
    if columns is None:
        if set(map(str, got.columns)) != set(map(str, expected.columns)):
            return False
        columns = [str(c) for c in expected.columns]
    elif not set(columns) <= set(got.columns) or not set(columns) <= set(expected.columns):
        return False
    if len(got) != len(expected):
        return False
    a, b = got[list(columns)].copy(), expected[list(columns)].copy()
    if any_order or sort_by:
        keys = list(sort_by or columns)
        try:
            a = a.sort_values(keys, kind="stable", na_position="last")
            b = b.sort_values(keys, kind="stable", na_position="last")
        except TypeError:
            a, b = a.astype(str).sort_values(keys), b.astype(str).sort_values(keys)
    a, b = a.reset_index(drop=True), b.reset_index(drop=True)
    if not check_dtype:
        for column in columns:
            a[column], b[column] = _comparable(a[column]), _comparable(b[column])
    try:
        pd.testing.assert_frame_equal(a, b, check_dtype=check_dtype, rtol=rtol, atol=atol, check_exact=False)
    except (AssertionError, TypeError, ValueError):
        return False
    return True


def _comparable(series):
    """Numbers as float, text as object, times as UTC: so equal values of other dtypes compare equal."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(series):
        return series.astype(object)
    if pd.api.types.is_numeric_dtype(series):
        return series.astype("float64")
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return series.dt.tz_convert("UTC")
    if pd.api.types.is_string_dtype(series) or isinstance(series.dtype, pd.CategoricalDtype):
        return series.astype(object).where(series.notna(), None)
    return series


# -- decoding what the kernel sent (untrusted) ---------------------------------------------------


class DecodeError(ValueError):
    """The recorded values are not valid plain data."""


def decode(payload: object, *, depth: int = 0) -> Any:
    """Values from a record's JSON (see :func:`mlsd.grading.extraction.encode`), checked as it goes.

    Examples
    --------
    >>> import pandas as pd
    >>> from mlsd.grading.extraction import encode
    >>> decode(encode(pd.DataFrame({"rate": [0.25], "n": [4]}))).dtypes.tolist()
    [dtype('float64'), dtype('int64')]
    """
    if depth > 25:
        raise DecodeError("nested too deep")
    if payload is None or type(payload) in (bool, int, float, str):
        return payload
    if type(payload) is list:
        return [decode(v, depth=depth + 1) for v in payload]
    if type(payload) is not dict or len(payload) not in (1, 2):
        raise DecodeError("an object that is not a known tag")
    (tag, value), *rest = payload.items()
    if tag == "__dict__" and type(value) is dict:
        return {str(k): decode(v, depth=depth + 1) for k, v in value.items()}
    if tag == "__float__" and value in ("nan", "inf", "-inf"):
        return float(value)
    if tag == "__raised__" and type(value) is str:
        return Raised(value[:100])
    if tag == "__unsupported__" and type(value) is str:
        return Unsupported(value[:100])
    if tag == "__timestamp__" and type(value) is str:
        import pandas as pd

        try:
            return pd.Timestamp(value[:64])
        except ValueError as err:
            raise DecodeError("a timestamp that does not parse") from err
    if tag == "__array__":
        return decode(value, depth=depth + 1)
    if tag == "__frame__" and type(value) is str:
        return _decode_frame(value)
    raise DecodeError(f"unknown tag {str(tag)[:30]!r}")


def _decode_frame(text: str):
    import pyarrow as pa
    import pyarrow.parquet as pq

    if len(text) > MAX_RECORD_BYTES:
        raise DecodeError("a DataFrame larger than the limit")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
        meta = pq.ParquetFile(io.BytesIO(raw)).metadata
        # compressed data can expand a thousandfold: check the size it claims before reading it
        if (
            meta.num_rows > MAX_FRAME_ROWS
            or meta.num_columns > 1000
            or meta.num_rows * meta.num_columns > MAX_FRAME_CELLS
        ):
            raise DecodeError(
                f"a DataFrame of {meta.num_rows:,} rows and {meta.num_columns} columns (too large)"
            )
        table = pq.read_table(io.BytesIO(raw))
        if table.nbytes > 8 * MAX_RECORD_BYTES:
            raise DecodeError("a DataFrame larger than the limit once read")
    except (ValueError, pa.ArrowException, OSError) as err:
        if isinstance(err, DecodeError):
            raise
        raise DecodeError("a DataFrame that is not valid Parquet") from err
    for column in table.schema:
        kind = str(column.type)
        if not kind.startswith(_FRAME_TYPES) or "list" in kind or "struct" in kind:
            raise DecodeError(f"a DataFrame column of type {kind[:40]} (plain types only)")
    return table.to_pandas(ignore_metadata=True)


# -- what comparisons receive ----------------------------------------------------------------------


@dataclass
class Values:
    """One side of a comparison: the recorded values (``values["name"]``) and the tables read."""

    values: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, Any] = field(default_factory=dict)  # DataFrame, or None when unreadable

    def __getitem__(self, name: str) -> Any:
        if name not in self.values:
            raise Missing(name)
        return self.values[name]

    def __contains__(self, name: str) -> bool:
        return name in self.values

    def table(self, name: str):
        """The table ``schema.table`` as read by the grader, or ``None`` when it could not be read."""
        return self.tables.get(name)

    @classmethod
    def from_record(cls, record: dict, tables: dict | None = None) -> Values:
        if len(json.dumps(record)) > MAX_RECORD_BYTES:
            raise DecodeError("the values are larger than the limit")
        raw = record.get("values")
        if type(raw) is not dict:
            raise DecodeError("no values")
        return cls({str(k): decode(v) for k, v in raw.items()}, dict(tables or {}))


# -- the instructors' registry -------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One comparison: the test cell it scores, the tables it reads, the function."""

    grade_id: str
    function: Callable[[Values, Values], None]
    tables: tuple[str, ...] = ()


class CheckSet:
    """The comparisons of one assignment, by test cell grade id."""

    def __init__(self) -> None:
        self.checks: dict[str, Check] = {}

    def add(self, grade_id: str, *, tables: Iterable[str] = ()) -> Callable:
        """Decorator: register ``function(got, ref)`` as the comparison of test cell ``grade_id``."""

        def register(function: Callable[[Values, Values], None]) -> Callable:
            if grade_id in self.checks:
                raise ValueError(f"a comparison for {grade_id} is already registered")
            self.checks[grade_id] = Check(grade_id, function, tuple(tables))
            return function

        return register

    def tables(self) -> list[str]:
        """Every table any check reads, in a stable order."""
        return sorted({t for check in self.checks.values() for t in check.tables})
