"""Fairness of a credit decision across groups of applicants: rates per group, at one or many thresholds.

The book's chapter 11 ("The Human Side of Machine Learning") asks who a model's errors fall
on. For a lender the model's decision is *decline* when ``score >= threshold`` (the course's
convention: the positive class is a default). Per group of applicants (an age band, a region):

- **approval rate**: the share approved, ``score < threshold`` (demographic parity compares these);
- **TPR**, the true-positive rate: the share of the group's *defaulters* that the decision declines
  (the losses it prevents);
- **FPR**, the false-positive rate: the share of the group's *repayers* that it declines, good
  applicants turned away. ``1 - FPR`` is the approval rate of the creditworthy, which *equal
  opportunity* asks to be the same in every group; *equalised odds* asks the same of TPR too.

No threshold satisfies every criterion at once when groups differ in their default rates (the
book cites the impossibility results): :func:`rates_by_threshold` shows how each gap moves with
the threshold, so the trade-off is chosen, not stumbled into.

Session 5 (``05_model_development.ipynb``) uses these on the champion's validation scores.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from mlsd._validation import check_columns

__all__ = ["fairness_gaps", "group_rates", "rates_by_threshold"]

RATE_COLUMNS = ("approval_rate", "tpr", "fpr")


def _rates(y: np.ndarray, declined: np.ndarray) -> dict[str, float]:
    defaulters, repayers = y == 1, y == 0
    return {
        "n": int(len(y)),
        "defaults": int(defaulters.sum()),
        "default_rate": float(defaulters.mean()) if len(y) else np.nan,
        "approval_rate": float((~declined).mean()) if len(y) else np.nan,
        "tpr": float(declined[defaulters].mean()) if defaulters.any() else np.nan,
        "fpr": float(declined[repayers].mean()) if repayers.any() else np.nan,
    }


def group_rates(
    df: pd.DataFrame,
    group_col: str,
    *,
    y_true_col: str = "serious_dlq",
    y_score_col: str = "score",
    threshold: float = 0.5,
    min_size: int = 100,
) -> pd.DataFrame:
    """Approval rate, TPR and FPR per group at one threshold, with the overall row first.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per scored, labelled application.
    group_col : str
        The column that defines the groups (e.g. ``age_band``, ``region``); missing values
        form a group of their own, ``<missing>``.
    y_true_col, y_score_col : str
        Label (1 = default) and score columns.
    threshold : float
        Decline when ``score >= threshold``.
    min_size : int
        Groups with fewer rows are marked ``small``: their rates are too noisy to compare.

    Returns
    -------
    pandas.DataFrame
        Index ``group`` (``"all"`` first); columns ``n``, ``defaults``, ``default_rate``,
        ``approval_rate``, ``tpr``, ``fpr``, ``approval_ratio`` (the group's approval rate over
        the highest of the groups that are not small: the "four-fifths rule" flags ratios below
        0.8) and ``small``.

    Examples
    --------
    >>> frame = pd.DataFrame({"band": ["a", "a", "a", "b", "b", "b"],
    ...                       "serious_dlq": [1, 0, 0, 1, 0, 0],
    ...                       "score": [0.9, 0.6, 0.1, 0.2, 0.3, 0.1]})
    >>> group_rates(frame, "band", min_size=1)[["approval_rate", "tpr", "fpr"]].round(2)
           approval_rate  tpr   fpr
    group...
    all             0.67  0.5  0.25
    a               0.33  1.0  0.50
    b               1.00  0.0  0.00
    """
    check_columns(
        df,
        [group_col, y_true_col, y_score_col],
        what="The frame",
        hint="Name its group, label and score columns.",
    )
    y = pd.to_numeric(df[y_true_col]).to_numpy(dtype=int)
    declined = pd.to_numeric(df[y_score_col]).to_numpy(dtype=float) >= threshold
    groups = df[group_col].astype(object).where(df[group_col].notna(), "<missing>").astype(str)
    rows = {"all": _rates(y, declined)}
    for name, index in groups.groupby(groups, sort=True).indices.items():
        rows[str(name)] = _rates(y[index], declined[index])
    table = pd.DataFrame.from_dict(rows, orient="index").rename_axis("group")
    table["small"] = table["n"] < min_size
    groups = table.drop("all")
    compared = groups[~groups["small"]] if (~groups["small"]).any() else groups  # noisy groups set no bar
    best = compared["approval_rate"].max()
    table["approval_ratio"] = table["approval_rate"] / best if best > 0 else np.nan
    return table


def rates_by_threshold(
    df: pd.DataFrame,
    group_col: str,
    thresholds: Sequence[float],
    *,
    y_true_col: str = "serious_dlq",
    y_score_col: str = "score",
    min_size: int = 100,
) -> pd.DataFrame:
    """:func:`group_rates` at each threshold, stacked: how a threshold moves each group's rates.

    Returns
    -------
    pandas.DataFrame
        One row per (threshold, group), the overall row included: ``threshold``, ``group`` and
        the columns of :func:`group_rates`, in that order.
    """
    tables = [
        group_rates(
            df, group_col, y_true_col=y_true_col, y_score_col=y_score_col, threshold=t, min_size=min_size
        )
        .reset_index()
        .assign(threshold=float(t))
        for t in thresholds
    ]
    table = pd.concat(tables, ignore_index=True)
    return table[["threshold", *table.columns.drop("threshold")]]


def fairness_gaps(rates: pd.DataFrame) -> pd.DataFrame:
    """Largest minus smallest rate across the groups that are not ``small``, per threshold.

    Parameters
    ----------
    rates : pandas.DataFrame
        The output of :func:`rates_by_threshold` (or of :func:`group_rates` with its index reset
        and a ``threshold`` column).

    Returns
    -------
    pandas.DataFrame
        Index ``threshold``; columns ``approval_rate_gap`` (demographic parity), ``tpr_gap`` and
        ``fpr_gap`` (equalised odds; ``fpr_gap`` alone is equal opportunity for repayers),
        ``min_approval_ratio`` and ``groups`` (how many groups were compared).

    Examples
    --------
    >>> frame = pd.DataFrame({"band": ["a", "a", "b", "b"], "serious_dlq": [1, 0, 1, 0],
    ...                       "score": [0.9, 0.6, 0.7, 0.1]})
    >>> gaps = fairness_gaps(rates_by_threshold(frame, "band", [0.5, 0.8], min_size=1))
    >>> gaps["fpr_gap"].tolist()
    [1.0, 0.0]
    """
    check_columns(rates, ["threshold", "group", *RATE_COLUMNS, "approval_ratio", "small"], what="The rates")
    compared = rates[(rates["group"] != "all") & ~rates["small"].astype(bool)]
    by = compared.groupby("threshold")
    gaps = pd.DataFrame({f"{c}_gap": by[c].max() - by[c].min() for c in RATE_COLUMNS})
    gaps["min_approval_ratio"] = by["approval_ratio"].min()
    gaps["groups"] = by.size()
    return gaps
