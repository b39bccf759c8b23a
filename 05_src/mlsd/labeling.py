"""Programmatic labeling: labeling functions, their statistics and a majority vote.

A tiny version of the Snorkel workflow (the book's chapter 4, "Weak supervision"):
write heuristics as labeling functions (LFs) that vote ``POSITIVE`` (1), ``NEGATIVE``
(0) or ``ABSTAIN`` (-1) on each row; apply them to get a vote matrix; read how much
each LF covers, overlaps and conflicts with the others (and how accurate it is where
the true label is known); combine the votes into labels.

Example
-------
>>> import pandas as pd
>>> from mlsd.labeling import ABSTAIN, POSITIVE, apply_lfs, labeling_function, majority_vote
>>> @labeling_function()
... def many_late_payments(row):
...     return POSITIVE if row["late_90"] >= 2 else ABSTAIN
>>> df = pd.DataFrame({"late_90": [0, 3]})
>>> majority_vote(apply_lfs(df, [many_late_payments])).tolist()
[-1, 1]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "ABSTAIN",
    "NEGATIVE",
    "POSITIVE",
    "LabelingFunction",
    "apply_lfs",
    "label_coverage",
    "labeling_function",
    "lf_summary",
    "majority_vote",
]

ABSTAIN = -1
NEGATIVE = 0
POSITIVE = 1
_LABELS = (ABSTAIN, NEGATIVE, POSITIVE)


@dataclass(frozen=True)
class LabelingFunction:
    """A named heuristic that votes on each row.

    Parameters
    ----------
    name : str
        Column name of the LF in the vote matrix.
    func : callable
        ``func(row) -> label`` for a row (a Series), or, with ``vectorized=True``,
        ``func(df) -> labels`` for the whole DataFrame (a Series or array, one label
        per row). Labels are ``ABSTAIN`` (-1), ``NEGATIVE`` (0) or ``POSITIVE`` (1).
    vectorized : bool
        Whether ``func`` takes the whole DataFrame (much faster on large data).

    Examples
    --------
    >>> lf = LabelingFunction("big_amount", lambda df: (df["amount"] > 100).astype(int), vectorized=True)
    >>> lf(pd.DataFrame({"amount": [50, 500]})).tolist()
    [0, 1]
    """

    name: str
    func: Callable
    vectorized: bool = False

    def __call__(self, df: pd.DataFrame) -> pd.Series:
        """The LF's votes on every row of ``df``, checked, as an integer Series."""
        votes = self.func(df) if self.vectorized else [self.func(row) for _, row in df.iterrows()]
        values = np.asarray(votes, dtype=object)
        if values.shape != (len(df),):
            raise ValueError(f"LF {self.name!r} returned {values.size} labels for {len(df)} rows.")
        votes = pd.Series(values, index=df.index, name=self.name)
        bad = votes[~votes.isin(_LABELS)]
        if len(bad):
            raise ValueError(
                f"LF {self.name!r} returned {bad.iloc[0]!r} (row {bad.index[0]!r}); labels must be "
                "ABSTAIN (-1), NEGATIVE (0) or POSITIVE (1): return ABSTAIN when the rule does not apply."
            )
        return votes.astype("int64")


def labeling_function(
    name: str | None = None, *, vectorized: bool = False
) -> Callable[[Callable], LabelingFunction]:
    """Decorator that turns a function into a :class:`LabelingFunction`.

    Parameters
    ----------
    name : str, optional
        Name of the LF; the function's name by default.
    vectorized : bool
        The function takes the whole DataFrame and returns one label per row.

    Examples
    --------
    >>> @labeling_function(vectorized=True)
    ... def no_late_payments(df):
    ...     return np.where(df["late_30_59"] == 0, NEGATIVE, ABSTAIN)
    >>> no_late_payments.name
    'no_late_payments'
    """

    def wrap(func: Callable) -> LabelingFunction:
        return LabelingFunction(name or func.__name__, func, vectorized)

    return wrap


def apply_lfs(df: pd.DataFrame, lfs: Sequence[LabelingFunction]) -> pd.DataFrame:
    """Apply labeling functions to every row: the vote matrix.

    Parameters
    ----------
    df : DataFrame
        Rows to label.
    lfs : sequence of LabelingFunction
        The labeling functions, with distinct names.

    Returns
    -------
    DataFrame
        One integer column per LF (named after it), one row per row of ``df`` (same index).

    Examples
    --------
    >>> lf = LabelingFunction("positive_amount", lambda row: int(row["amount"] > 0))
    >>> apply_lfs(pd.DataFrame({"amount": [-1, 2]}), [lf])["positive_amount"].tolist()
    [0, 1]
    """
    names = [lf.name for lf in lfs]
    if not names:
        raise ValueError("No labeling functions given: pass a list of LabelingFunction.")
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"Labeling function names must be unique; repeated: {duplicated}. Rename them.")
    return pd.DataFrame({lf.name: lf(df) for lf in lfs}, index=df.index)


def _votes_array(votes: pd.DataFrame) -> np.ndarray:
    values = votes.to_numpy()
    if not np.isin(values, _LABELS).all():
        raise ValueError("The vote matrix may only hold -1 (ABSTAIN), 0 and 1: build it with apply_lfs.")
    return values.astype(int)


def lf_summary(votes: pd.DataFrame, y: pd.Series | Sequence | np.ndarray | None = None) -> pd.DataFrame:
    """Coverage, overlaps and conflicts of each labeling function (and accuracy when ``y`` is given).

    For each LF, as fractions of all rows:

    - ``coverage``: rows it votes on (does not abstain);
    - ``overlaps``: rows it votes on where at least one other LF votes too;
    - ``conflicts``: rows it votes on where another LF votes a different label.

    With true labels ``y`` (missing where unknown, e.g. labels not observed yet):
    ``correct`` and ``incorrect`` count the rows it votes on whose label is known, and
    ``emp_accuracy`` is ``correct / (correct + incorrect)`` (NaN when it has no such row).

    Parameters
    ----------
    votes : DataFrame
        The vote matrix from :func:`apply_lfs`.
    y : Series or array-like, optional
        True labels by position, one per row of ``votes``.

    Returns
    -------
    DataFrame
        One row per LF; ``polarity`` lists the labels it ever votes.

    Examples
    --------
    >>> votes = pd.DataFrame({"a": [1, 1, -1, 0], "b": [1, 0, -1, -1]})
    >>> summary = lf_summary(votes, y=[1, 1, 0, None])
    >>> summary[["coverage", "overlaps", "conflicts", "emp_accuracy"]]  # doctest: +NORMALIZE_WHITESPACE
        coverage  overlaps  conflicts  emp_accuracy
    lf
    a       0.75       0.5       0.25           1.0
    b       0.50       0.5       0.25           0.5
    """
    values = _votes_array(votes)
    voted = values != ABSTAIN
    n_rows = max(len(values), 1)
    n_voting = voted.sum(axis=1)
    summary = pd.DataFrame(index=pd.Index(votes.columns, name="lf"))
    summary["polarity"] = [sorted(int(v) for v in np.unique(col[col != ABSTAIN])) for col in values.T]
    summary["coverage"] = voted.sum(axis=0) / n_rows
    summary["overlaps"] = (voted & (n_voting > 1)[:, None]).sum(axis=0) / n_rows
    # A row is in conflict for an LF when some other LF votes the other label.
    has = {label: (values == label).any(axis=1) for label in (NEGATIVE, POSITIVE)}
    disagree = np.where(values == POSITIVE, has[NEGATIVE][:, None], has[POSITIVE][:, None])
    summary["conflicts"] = (voted & disagree).sum(axis=0) / n_rows
    if y is not None:
        truth = pd.to_numeric(pd.Series(np.asarray(y, dtype=object)), errors="coerce").to_numpy(dtype=float)
        if len(truth) != len(values):
            raise ValueError(f"y has {len(truth)} labels but the vote matrix has {len(values)} rows.")
        known = voted & ~np.isnan(truth)[:, None]
        correct = known & (values == truth[:, None])
        summary["correct"] = correct.sum(axis=0)
        summary["incorrect"] = known.sum(axis=0) - summary["correct"]
        with np.errstate(invalid="ignore", divide="ignore"):
            summary["emp_accuracy"] = summary["correct"] / known.sum(axis=0)
    return summary


def label_coverage(votes: pd.DataFrame) -> float:
    """Fraction of rows on which at least one labeling function votes.

    Examples
    --------
    >>> label_coverage(pd.DataFrame({"a": [1, -1, -1, -1], "b": [-1, 0, -1, -1]}))
    0.5
    """
    values = _votes_array(votes)
    if len(values) == 0:
        return 0.0
    return float((values != ABSTAIN).any(axis=1).mean())


def majority_vote(
    votes: pd.DataFrame,
    *,
    tie_break: str | int = "abstain",
    random_state: int | np.random.Generator | None = None,
) -> pd.Series:
    """Combine the votes of each row into one label: the label most LFs voted.

    Rows where every LF abstains get ``ABSTAIN``.

    Parameters
    ----------
    votes : DataFrame
        The vote matrix from :func:`apply_lfs`.
    tie_break : {"abstain", "random"} or int
        What a tie (as many votes for 0 as for 1) gives: ``"abstain"`` (the default;
        those rows stay unlabeled), ``"random"`` (a coin flip, seeded by
        ``random_state``), or a fixed label such as ``NEGATIVE``.
    random_state : int or numpy Generator, optional
        Seed for ``tie_break="random"``.

    Returns
    -------
    Series
        One label per row of ``votes`` (same index), named ``"label"``.

    Examples
    --------
    >>> votes = pd.DataFrame({"a": [1, 1, -1, 0], "b": [1, 0, -1, -1], "c": [0, 0, -1, -1]})
    >>> majority_vote(votes).tolist()
    [1, 0, -1, 0]
    >>> majority_vote(votes[["a", "b"]], tie_break=NEGATIVE).tolist()
    [1, 0, -1, 0]
    """
    if tie_break not in ("abstain", "random", NEGATIVE, POSITIVE) or isinstance(tie_break, bool):
        raise ValueError(f"tie_break must be 'abstain', 'random', 0 or 1, got {tie_break!r}.")
    values = _votes_array(votes)
    positive = (values == POSITIVE).sum(axis=1)
    negative = (values == NEGATIVE).sum(axis=1)
    labels = np.where(positive > negative, POSITIVE, NEGATIVE)
    labels[positive + negative == 0] = ABSTAIN
    tie = (positive == negative) & (positive > 0)
    if tie_break == "abstain":
        labels[tie] = ABSTAIN
    elif tie_break == "random":
        labels[tie] = np.random.default_rng(random_state).integers(0, 2, size=int(tie.sum()))
    else:
        labels[tie] = tie_break
    return pd.Series(labels, index=votes.index, name="label")
