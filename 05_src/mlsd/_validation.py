"""Checks on what callers pass in, with one message shape (as scikit-learn's ``utils/validation.py``)."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any

__all__ = ["check_columns"]

_SHOWN = 20
"""Available columns named in a message; a wide table's other columns are counted, not listed."""


def check_columns(data: Any, required: Iterable[Hashable], *, what: str = "The data", hint: str = "") -> None:
    """Raise a ``ValueError`` naming the columns of ``required`` that ``data`` lacks.

    Parameters
    ----------
    data : DataFrame or iterable of column names
        What to check: a frame, or the columns of a table.
    required : iterable of column names
        Columns that must be there.
    what : str
        How the message names ``data`` (``"X"``, ``"The reference frame"``, ``"gold.applications"``), which starts the sentence.
    hint : str
        The next step, appended to the message.

    Raises
    ------
    ValueError
        ``"<what> lacks column(s) [...]: it has [...]. <hint>"``

    Examples
    --------
    >>> import pandas as pd
    >>> check_columns(pd.DataFrame(columns=["a", "b"]), ["a"])
    >>> check_columns(pd.DataFrame(columns=["a", "b"]), ["a", "c"], what="X", hint="Pass the training columns.")
    Traceback (most recent call last):
    ...
    ValueError: X lacks column(s) ['c']: it has ['a', 'b']. Pass the training columns.
    """
    available = list(data.columns) if hasattr(data, "columns") else list(data)
    present = set(available)
    missing = [c for c in dict.fromkeys(required) if c not in present]
    if not missing:
        return
    shown = repr(available[:_SHOWN])
    if len(available) > _SHOWN:
        shown = f"{shown[:-1]}, ...] ({len(available)} in all)"
    raise ValueError(f"{what} lacks column(s) {missing}: it has {shown}." + (f" {hint}" if hint else ""))
