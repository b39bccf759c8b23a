"""Extraction: the half of a check that runs in the learner's kernel.

A test cell of an assignment calls the learner's functions (on the visible example and on held-out
inputs) and hands the results to the grader with :func:`record`, as plain data: numbers, strings,
booleans, ``None``, lists, dicts with string keys, NumPy arrays and scalars, and pandas
DataFrames/Series (sent as Parquet). Nothing else is sent: an object of another type, even a
subclass of ``float``, arrives as "unsupported", so an answer cannot hand the grader an object
whose methods run later. The grader compares these values with the reference solution's, outside
the kernel (see :mod:`mlsd.grading.checks`); the kernel never sees an expected value.

Examples
--------
In a test cell, after the visible checks::

    from mlsd.grading import extraction
    extraction.record("test_q1", total=extraction.call(add, 10, 5), edge=extraction.call(add, -1, -1))
"""

from __future__ import annotations

import base64
import io
import math
import os
from collections.abc import Callable
from typing import Any

__all__ = ["MIME_TYPE", "Raised", "call", "encode", "record", "seed"]

MIME_TYPE = "application/vnd.mlsd.extraction+json"
MAX_ITEMS = 100_000  # values of all kinds in one record
MAX_DEPTH = 20


class Raised:
    """What a call returned when the learner's function raised: the exception's type name."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"Raised({self.name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Raised) and other.name == self.name

    def __hash__(self) -> int:
        return hash(("Raised", self.name))


def call(function: Callable, *args: Any, **kwargs: Any) -> Any:
    """``function(*args, **kwargs)``, or :class:`Raised` when it raises an ``Exception``."""
    try:
        return function(*args, **kwargs)
    except Exception as err:  # the learner's code: any error is an answer to record
        return Raised(type(err).__name__)


def seed(offset: int = 0) -> int:
    """The grading run's seed for held-out inputs (``MLSD_GRADING_SEED``, 0 when unset) plus ``offset``."""
    try:
        return int(os.environ.get("MLSD_GRADING_SEED", "0")) + int(offset)
    except ValueError:
        return int(offset)


def _frame(value) -> dict:
    import pandas as pd

    frame = value.to_frame() if isinstance(value, pd.Series) else value
    frame = frame.copy()
    frame.columns = [str(c) for c in frame.columns]
    if not isinstance(frame.index, pd.RangeIndex):
        frame = frame.reset_index()
        frame.columns = [str(c) for c in frame.columns]
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return {"__frame__": base64.b64encode(buffer.getvalue()).decode("ascii"), "series": value is not frame}


def encode(value: Any) -> Any:
    """``value`` as JSON-ready plain data (see the module's docstring for what is sent as is)."""
    budget = [MAX_ITEMS]
    return _encode(value, budget, 0)


def _encode(value: Any, budget: list[int], depth: int) -> Any:
    budget[0] -= 1
    if budget[0] < 0 or depth > MAX_DEPTH:
        return {"__unsupported__": "too large or too deep"}
    kind = type(value)
    if value is None or kind in (bool, int, str):
        return value
    if kind is float:
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if kind is Raised:
        return {"__raised__": value.name}
    if kind in (list, tuple):
        return [_encode(v, budget, depth + 1) for v in value]
    if kind is dict:
        if not all(type(k) is str for k in value):
            return {"__unsupported__": "a dict with keys that are not strings"}
        return {"__dict__": {k: _encode(v, budget, depth + 1) for k, v in value.items()}}
    module = getattr(kind, "__module__", "") or ""
    if module.startswith("numpy"):
        import numpy as np

        if kind in (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
                    np.uint64, np.float16, np.float32, np.float64, np.str_):  # fmt: skip
            return _encode(value.item(), budget, depth)
        if kind is np.ndarray and value.dtype.kind in "biufU":
            budget[0] -= int(value.size)
            return {"__array__": _encode(value.tolist(), budget, depth + 1), "dtype": value.dtype.kind}
    if module.startswith("pandas"):
        import pandas as pd

        if kind in (pd.DataFrame, pd.Series):
            budget[0] -= int(value.size)
            if budget[0] < 0:
                return {"__unsupported__": "too large"}
            try:
                return _frame(value)
            except Exception as err:  # columns Parquet cannot hold (objects, mixed types)
                return {"__unsupported__": f"a DataFrame Parquet cannot hold ({type(err).__name__})"}
        if kind is pd.Timestamp:
            return {"__timestamp__": value.isoformat()}
    return {"__unsupported__": kind.__name__[:80]}


def record(check: str, **values: Any) -> None:
    """Send the values of check ``check`` (the test cell's grade id) to the grader.

    Call it once, at the end of the check's test cell. The values are shown to nobody: the grader
    takes them out of the cell's outputs before anything else reads them.
    """
    from IPython.display import display

    payload = {"check": str(check), "values": {str(k): encode(v) for k, v in values.items()}}
    display({MIME_TYPE: payload, "text/plain": f"[values of {check} for the grader]"}, raw=True)
