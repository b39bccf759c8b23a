"""Model performance over time with delayed labels: only the outcomes known at a date count."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from mlsd._validation import check_columns
from mlsd.monitoring._drift import _periods


def _utc_naive(values) -> pd.Series:
    """Times as naive UTC; naive input is taken to be UTC already."""
    return pd.to_datetime(values, utc=True).dt.tz_localize(None)


def _utc(moment) -> pd.Timestamp:
    """A time-zone-aware UTC timestamp; naive input is taken to be UTC."""
    moment = pd.Timestamp(moment)
    return moment.tz_convert("UTC") if moment.tzinfo else moment.tz_localize("UTC")


def performance_over_time(
    predictions: pd.DataFrame,
    labels: pd.DataFrame,
    *,
    as_of: Any = None,
    time_col: str = "predicted_at",
    freq: str = "M",
    id_col: str = "application_id",
    label_col: str = "serious_dlq",
    observed_col: str = "observed_at",
    threshold: float = 0.5,
) -> pd.DataFrame:
    """Model performance per period, using only the labels known at ``as_of``.

    A default is observed months after the application, so recent predictions
    have no label yet. Each prediction is joined to its outcome when the outcome
    was observed on or before ``as_of`` (the earliest one if there are several).

    Parameters
    ----------
    predictions : pandas.DataFrame
        ``id_col``, ``score`` and ``time_col`` (e.g. from :func:`read_predictions`).
    labels : pandas.DataFrame
        ``id_col``, ``label_col`` (0/1) and ``observed_col``.
    as_of : str or Timestamp, optional
        The date of the analysis; all labels when omitted. Naive times are UTC.
    time_col, freq : str
        Periods are ``time_col`` at frequency ``freq`` (months by default).
    id_col, label_col, observed_col : str
        Column names.
    threshold : float
        For ``recall`` (flag ``score >= threshold``).

    Returns
    -------
    pandas.DataFrame
        Per period: ``window``, ``n``, ``n_labelled``, ``label_coverage`` (share of
        predictions with a label yet), ``positive_rate`` (among labelled),
        ``mean_score``, ``pr_auc``, ``roc_auc`` and ``recall`` (NaN while a period
        has no labels or a single class).

    Examples
    --------
    >>> preds = pd.DataFrame({"application_id": ["a", "b", "c", "d"], "score": [0.9, 0.2, 0.7, 0.1],
    ...                       "predicted_at": ["2025-01-05", "2025-01-09", "2025-01-20", "2025-02-03"]})
    >>> labels = pd.DataFrame({"application_id": ["a", "b", "d"], "serious_dlq": [1, 0, 0],
    ...                        "observed_at": ["2025-03-01", "2025-04-01", "2025-09-01"]})
    >>> performance_over_time(preds, labels, as_of="2025-06-30")[["window", "n", "label_coverage"]]
        window  n  label_coverage
    0  2025-01  3        0.666667
    1  2025-02  1        0.000000
    """
    check_columns(predictions, [id_col, "score", time_col], what="The predictions frame")
    check_columns(labels, [id_col, label_col, observed_col], what="The labels frame")
    known = labels.assign(**{observed_col: _utc_naive(labels[observed_col])})
    if as_of is not None:
        known = known[known[observed_col] <= _utc(as_of).tz_localize(None)]
    known = known.sort_values(observed_col).drop_duplicates(id_col)[[id_col, label_col]]
    frame = predictions.merge(known, on=id_col, how="left", validate="many_to_one")
    frame["window"] = _periods(frame[time_col], freq).astype(str)
    rows = []
    for window, group in frame.groupby("window", sort=True):
        labelled = group.dropna(subset=[label_col])
        y, s = labelled[label_col].to_numpy(dtype=int), labelled["score"].to_numpy(dtype=float)
        both = 0 < y.sum() < len(y)
        rows.append(
            {
                "window": window,
                "n": len(group),
                "n_labelled": len(labelled),
                "label_coverage": len(labelled) / len(group),
                "positive_rate": y.mean() if len(y) else math.nan,
                "mean_score": group["score"].mean(),
                "pr_auc": float(average_precision_score(y, s)) if both else math.nan,
                "roc_auc": float(roc_auc_score(y, s)) if both else math.nan,
                "recall": float(np.mean(s[y == 1] >= threshold)) if y.sum() else math.nan,
            }
        )
    return pd.DataFrame(rows)
