"""Sampling, splits and class-imbalance helpers (the book's chapter 4, "Training Data").

Every function that draws at random takes ``random_state``: an int seed or a
``numpy.random.Generator``. The same seed gives the same result; ``None`` draws
fresh, unrepeatable randomness. Functions never change their input: they return
new DataFrames that keep the original index labels, so a sampled row can always be
traced back to its source.

Sampling: :func:`simple_random_sample`, :func:`stratified_sample`,
:func:`weighted_sample`, :func:`reservoir_sample`, :func:`importance_weights`.
Splits (each returns a :class:`Split` of train, valid and test frames):
:func:`random_split`, :func:`stratified_split`, :func:`time_split`, :func:`group_split`.
Class imbalance: :func:`class_balance`, :func:`imbalance_ratio`, :func:`undersample`,
:func:`oversample`, :func:`class_weights`.

Example
-------
>>> import pandas as pd
>>> from mlsd.sampling import stratified_sample
>>> df = pd.DataFrame({"y": [0] * 90 + [1] * 10})
>>> stratified_sample(df, "y", n=20, random_state=0)["y"].value_counts().sort_index().tolist()
[18, 2]
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Mapping, Sequence
from itertools import islice
from typing import NamedTuple

import numpy as np
import pandas as pd

from mlsd._validation import check_columns

__all__ = [
    "Split",
    "class_balance",
    "class_weights",
    "group_split",
    "imbalance_ratio",
    "importance_weights",
    "oversample",
    "random_split",
    "reservoir_sample",
    "simple_random_sample",
    "stratified_sample",
    "stratified_split",
    "time_split",
    "undersample",
    "weighted_sample",
]

RandomState = int | np.random.Generator | None


class Split(NamedTuple):
    """Train, validation and test frames returned by the split functions."""

    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame


# -- checks and small helpers ---------------------------------------------------------


def _rng(random_state: RandomState) -> np.random.Generator:
    """A numpy Generator from an int seed, a Generator (used as is) or ``None``."""
    if isinstance(random_state, np.random.RandomState):
        raise ValueError("random_state must be an int or a numpy Generator (np.random.default_rng(seed)).")
    return np.random.default_rng(random_state)


def _check_fraction(name: str, value: float) -> None:
    if not 0 < value <= 1:
        raise ValueError(f"{name} must be in (0, 1], got {value}: pass a fraction such as 0.1 for 10%.")


def _sample_size(n_rows: int, n: int | None, frac: float | None, replace: bool = False) -> int:
    """Resolve ``n`` or ``frac`` into a number of rows, checking both."""
    if (n is None) == (frac is None):
        raise ValueError("Pass exactly one of n (a number of rows) or frac (a fraction of the rows).")
    if frac is not None:
        _check_fraction("frac", frac)
        return round(frac * n_rows)
    if int(n) != n or n < 0:
        raise ValueError(f"n must be a non-negative whole number, got {n}.")
    if n > n_rows and not replace:
        raise ValueError(f"n={n} is more than the {n_rows} rows: lower n or pass replace=True.")
    return int(n)


def _allocate(counts: np.ndarray, total: int) -> np.ndarray:
    """Split ``total`` into whole numbers proportional to ``counts`` (largest remainder method)."""
    quotas = counts * total / counts.sum()
    sizes = np.floor(quotas).astype(int)
    short = total - sizes.sum()
    # Hand the rows still missing to the strata with the largest fractional parts.
    order = np.argsort(-(quotas - sizes), kind="stable")
    sizes[order[:short]] += 1
    return sizes


def _check_split_sizes(valid_size: float, test_size: float) -> None:
    for name, size in (("valid_size", valid_size), ("test_size", test_size)):
        if not 0 <= size < 1:
            raise ValueError(f"{name} must be in [0, 1), got {size}.")
    if valid_size + test_size >= 1:
        raise ValueError(
            f"valid_size + test_size = {valid_size + test_size:g} leaves no training rows: make them sum to < 1."
        )


def _split_positions(df: pd.DataFrame, valid: np.ndarray, test: np.ndarray) -> Split:
    """Build a :class:`Split` from row positions; every part keeps the original row order."""
    in_valid = np.zeros(len(df), dtype=bool)
    in_test = np.zeros(len(df), dtype=bool)
    in_valid[valid] = True
    in_test[test] = True
    return Split(df[~in_valid & ~in_test], df[in_valid], df[in_test])


# -- sampling -------------------------------------------------------------------------


def simple_random_sample(
    df: pd.DataFrame,
    n: int | None = None,
    *,
    frac: float | None = None,
    replace: bool = False,
    random_state: RandomState = None,
) -> pd.DataFrame:
    """Draw rows uniformly at random: every row has the same chance.

    Parameters
    ----------
    df : DataFrame
        The population.
    n : int, optional
        Number of rows to draw.
    frac : float, optional
        Fraction of rows to draw, in (0, 1]. Pass exactly one of ``n`` and ``frac``.
    replace : bool
        Draw with replacement (a bootstrap sample when ``frac=1``).
    random_state : int or numpy Generator, optional
        Seed for a repeatable sample.

    Returns
    -------
    DataFrame
        The sampled rows in the order drawn, with their original index labels.

    Examples
    --------
    >>> df = pd.DataFrame({"x": range(10)})
    >>> len(simple_random_sample(df, frac=0.3, random_state=1))
    3
    """
    size = _sample_size(len(df), n, frac, replace)
    positions = _rng(random_state).choice(len(df), size=size, replace=replace)
    return df.iloc[positions]


def stratified_sample(
    df: pd.DataFrame,
    by: str | list[str],
    n: int | None = None,
    *,
    frac: float | None = None,
    random_state: RandomState = None,
) -> pd.DataFrame:
    """Draw a sample that keeps the proportions of each stratum (class) in ``by``.

    The sample size is shared between strata in proportion to their sizes (largest
    remainder rounding), then rows are drawn at random within each stratum. Rare
    strata therefore keep their share, which a simple random sample only does on
    average.

    Parameters
    ----------
    df : DataFrame
        The population.
    by : str or list of str
        Column(s) whose values define the strata; missing values form their own stratum.
    n, frac : int or float
        Sample size as a number of rows or a fraction in (0, 1]; pass exactly one.
    random_state : int or numpy Generator, optional
        Seed for a repeatable sample.

    Returns
    -------
    DataFrame
        The sampled rows in their original order.

    Examples
    --------
    >>> df = pd.DataFrame({"y": [0] * 8 + [1] * 2})
    >>> stratified_sample(df, "y", frac=0.5, random_state=0)["y"].tolist()
    [0, 0, 0, 0, 1]
    """
    columns = [by] if isinstance(by, str) else list(by)
    check_columns(df, columns, what="The DataFrame")
    size = _sample_size(len(df), n, frac)
    if size == 0 or len(df) == 0:
        return df.iloc[:0]
    rng = _rng(random_state)
    groups = list(df.groupby(columns, sort=True, dropna=False).indices.values())
    sizes = _allocate(np.array([len(g) for g in groups]), size)
    chosen = [rng.choice(group, size=k, replace=False) for group, k in zip(groups, sizes, strict=True)]
    return df.iloc[np.sort(np.concatenate(chosen))]


def _weights_array(df: pd.DataFrame, weights: str | Sequence[float] | np.ndarray | pd.Series) -> np.ndarray:
    if isinstance(weights, str):
        check_columns(df, [weights], what="The DataFrame")
        weights = df[weights]
    values = np.asarray(weights, dtype=float)
    if values.shape != (len(df),):
        raise ValueError(f"weights has shape {values.shape}; it needs one weight per row ({len(df)}).")
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError("weights must be finite and >= 0: fill missing weights (e.g. with 0) first.")
    if values.sum() == 0:
        raise ValueError("All weights are 0: at least one row needs a positive weight.")
    return values


def weighted_sample(
    df: pd.DataFrame,
    n: int,
    weights: str | Sequence[float] | np.ndarray | pd.Series,
    *,
    replace: bool = False,
    random_state: RandomState = None,
) -> pd.DataFrame:
    """Draw ``n`` rows with chances proportional to ``weights``.

    Parameters
    ----------
    df : DataFrame
        The population.
    n : int
        Number of rows to draw.
    weights : str or array-like
        A column of ``df`` or one non-negative weight per row (they need not sum to 1).
    replace : bool
        Draw with replacement. Without replacement, ``n`` can be at most the number
        of rows with a positive weight.
    random_state : int or numpy Generator, optional
        Seed for a repeatable sample.

    Returns
    -------
    DataFrame
        The sampled rows in the order drawn.

    Examples
    --------
    >>> df = pd.DataFrame({"x": ["rare", "common"], "w": [0.0, 1.0]})
    >>> weighted_sample(df, 1, "w", random_state=0)["x"].tolist()
    ['common']
    """
    values = _weights_array(df, weights)
    size = _sample_size(len(df), n, None, replace)
    if not replace and size > np.count_nonzero(values):
        raise ValueError(
            f"n={size} but only {np.count_nonzero(values)} rows have a positive weight: "
            "lower n or pass replace=True."
        )
    positions = _rng(random_state).choice(len(df), size=size, replace=replace, p=values / values.sum())
    return df.iloc[positions]


def _algorithm_r(stream: Iterable, k: int, rng: np.random.Generator) -> list:
    """Algorithm R: one random draw per item (the version in the book)."""
    reservoir: list = []
    for i, item in enumerate(stream):
        if i < k:
            reservoir.append(item)
        else:
            slot = rng.integers(0, i + 1)  # uniform over the i + 1 items seen so far
            if slot < k:  # probability k / (i + 1)
                reservoir[slot] = item
    return reservoir


def _algorithm_l(stream: Iterable, k: int, rng: np.random.Generator) -> list:
    """Algorithm L (Li, 1994): draw how many items to skip, so draws grow with log(n), not n."""
    items = iter(stream)
    reservoir = list(islice(items, k))
    weight = np.exp(np.log(1 - rng.random()) / k)  # 1 - random() lies in (0, 1], so log is finite
    while len(reservoir) == k:
        skip = int(np.log(1 - rng.random()) / np.log1p(-weight)) if weight < 1 else 0
        chosen = next(islice(items, skip, None), _END)  # drop `skip` items, take the next one
        if chosen is _END:
            break
        reservoir[rng.integers(0, k)] = chosen
        weight *= np.exp(np.log(1 - rng.random()) / k)
    return reservoir


_END = object()


def reservoir_sample(
    stream: Iterable, k: int, *, method: str = "L", random_state: RandomState = None
) -> list:
    """Keep a uniform random sample of ``k`` items from a stream of unknown length.

    One pass over the stream, memory for ``k`` items only. With Algorithm R the first
    ``k`` items fill the reservoir and the ``i``-th item after that (counting all items
    from 1) replaces a random slot with probability ``k / i``: at every moment each item
    seen so far is in the reservoir with the same probability. Algorithm L gives the
    same distribution but draws how many items to skip between replacements, so it
    makes about ``k * log(n / k)`` random draws instead of ``n``.

    Parameters
    ----------
    stream : iterable
        Any iterable: a generator, a file, rows of a query cursor.
    k : int
        Reservoir size (> 0).
    method : {"L", "R"}
        Algorithm L (fast, the default) or Algorithm R (the one to read first).
    random_state : int or numpy Generator, optional
        Seed for a repeatable sample.

    Returns
    -------
    list
        ``k`` items (fewer if the stream is shorter), in reservoir order.

    Examples
    --------
    >>> sample = reservoir_sample(range(1_000_000), 5, random_state=0)
    >>> len(sample), sample == reservoir_sample(range(1_000_000), 5, random_state=0)
    (5, True)
    >>> reservoir_sample("ab", 5, method="R", random_state=0)
    ['a', 'b']
    """
    if isinstance(k, bool) or int(k) != k or k <= 0:
        raise ValueError(f"k must be a positive whole number, got {k!r}.")
    algorithms = {"L": _algorithm_l, "R": _algorithm_r}
    if method not in algorithms:
        raise ValueError(f"Unknown method {method!r}: use 'L' (fast) or 'R' (one draw per item).")
    return algorithms[method](stream, int(k), _rng(random_state))


def _bin_numeric(source: pd.Series, target: pd.Series, bins: int | Sequence[float]):
    """Cut two numeric series on shared edges; integer ``bins`` cover both, open-ended."""
    if isinstance(bins, int):
        combined = pd.concat([source, target]).dropna()
        edges = np.histogram_bin_edges(combined, bins=bins)
        edges[0], edges[-1] = -np.inf, np.inf
    else:
        edges = np.asarray(bins, dtype=float)
    cut_source = pd.cut(source, edges, include_lowest=True)
    cut_target = pd.cut(target, edges, include_lowest=True)
    outside = (cut_source.isna() & source.notna()).sum() + (cut_target.isna() & target.notna()).sum()
    if outside:
        raise ValueError(
            f"{outside} values fall outside the bins {list(edges)}: widen the first or last edge."
        )
    return cut_source, cut_target


def importance_weights(
    source: pd.Series,
    target: pd.Series | Mapping[Hashable, float],
    *,
    bins: int | Sequence[float] | None = None,
) -> pd.Series:
    """Weights that make a sample look like a target distribution of one column.

    For each row of ``source`` the weight is ``p_target(v) / p_source(v)`` where ``v``
    is the row's category (or bin). Weighted statistics of the sample then estimate
    the target's (importance sampling; the same idea corrects covariate shift).
    Categories absent from the target get weight 0; categories absent from the
    source cannot be recovered by reweighting and are ignored. When every target
    category occurs in the source, the weights average 1.

    Parameters
    ----------
    source : Series
        The column in the sample to reweight.
    target : Series or mapping
        The same column in the target population, or target proportions by category
        (normalised to sum to 1).
    bins : int or sequence of float, optional
        Bin a numeric column first: a number of equal-width bins over both series
        (open-ended at the extremes) or explicit bin edges. Missing values form their
        own category.

    Returns
    -------
    Series
        One weight per row of ``source``, with its index, named ``"weight"``.

    Examples
    --------
    >>> sample = pd.Series(["web", "web", "web", "branch"])
    >>> importance_weights(sample, {"web": 0.5, "branch": 0.5}).round(3).tolist()
    [0.667, 0.667, 0.667, 2.0]
    """
    if isinstance(target, Mapping):
        if bins is not None:
            raise ValueError(
                "bins applies to a target Series; a mapping already gives proportions by category."
            )
        target_share = pd.Series(target, dtype=float)
        if (target_share < 0).any() or target_share.sum() <= 0:
            raise ValueError("Target proportions must be >= 0 and not all 0.")
        target_share = target_share / target_share.sum()
    else:
        if bins is not None:
            source, target = _bin_numeric(source, target, bins)
        target_share = target.value_counts(normalize=True, dropna=False)
    if len(source) == 0:
        raise ValueError("source is empty: there is nothing to reweight.")
    source_share = source.value_counts(normalize=True, dropna=False)
    ratio = target_share.reindex(source_share.index, fill_value=0.0) / source_share
    weights = source.map(ratio).astype(float)
    return weights.rename("weight")


# -- splits ---------------------------------------------------------------------------


def random_split(
    df: pd.DataFrame,
    *,
    valid_size: float = 0.15,
    test_size: float = 0.15,
    random_state: RandomState = None,
) -> Split:
    """Split rows at random into train, validation and test.

    Parameters
    ----------
    df : DataFrame
        Rows to split.
    valid_size, test_size : float
        Fractions of the rows for validation and test, each in [0, 1), summing to < 1.
        A size of 0 gives an empty frame.
    random_state : int or numpy Generator, optional
        Seed for a repeatable split.

    Returns
    -------
    Split
        ``(train, valid, test)``, each in the original row order.

    Examples
    --------
    >>> parts = random_split(pd.DataFrame({"x": range(20)}), valid_size=0.25, test_size=0.25, random_state=0)
    >>> [len(p) for p in parts]
    [10, 5, 5]
    """
    _check_split_sizes(valid_size, test_size)
    order = _rng(random_state).permutation(len(df))
    n_test, n_valid = round(test_size * len(df)), round(valid_size * len(df))
    return _split_positions(df, order[n_test : n_test + n_valid], order[:n_test])


def stratified_split(
    df: pd.DataFrame,
    by: str,
    *,
    valid_size: float = 0.15,
    test_size: float = 0.15,
    random_state: RandomState = None,
) -> Split:
    """Split at random so that each part keeps the class proportions of column ``by``.

    Each class is shuffled and cut on its own, so with 6.7% positives every part has
    about 6.7% positives (up to rounding a class count).

    Parameters
    ----------
    df : DataFrame
        Rows to split.
    by : str
        Column holding the classes (or any strata); missing values form their own class.
    valid_size, test_size : float
        Fractions for validation and test, each in [0, 1), summing to < 1.
    random_state : int or numpy Generator, optional
        Seed for a repeatable split.

    Returns
    -------
    Split
        ``(train, valid, test)``, each in the original row order.

    Examples
    --------
    >>> df = pd.DataFrame({"y": [0] * 80 + [1] * 20})
    >>> parts = stratified_split(df, "y", valid_size=0.2, test_size=0.2, random_state=0)
    >>> [float(part["y"].mean()) for part in parts]
    [0.2, 0.2, 0.2]
    """
    check_columns(df, [by], what="The DataFrame")
    _check_split_sizes(valid_size, test_size)
    rng = _rng(random_state)
    valid, test = [], []
    for positions in df.groupby(by, sort=True, dropna=False).indices.values():
        shuffled = rng.permutation(positions)
        n_test, n_valid = round(test_size * len(shuffled)), round(valid_size * len(shuffled))
        test.append(shuffled[:n_test])
        valid.append(shuffled[n_test : n_test + n_valid])
    if not test:
        return Split(df, df.iloc[:0], df.iloc[:0])
    return _split_positions(df, np.concatenate(valid), np.concatenate(test))


def _to_month(value: str | pd.Timestamp | pd.Period) -> str:
    """``'2025-01'`` from a ``'YYYY-MM'`` string, a Timestamp or a Period."""
    problem = ValueError(f"Cannot read {value!r} as a month: write it as 'YYYY-MM', e.g. '2025-01'.")
    if isinstance(value, str) and not re.fullmatch(r"\d{4}-\d{2}", value):
        raise problem  # pandas itself would read "June" as June of year 1
    try:
        return pd.Period(value, freq="M").strftime("%Y-%m")
    except (ValueError, TypeError):
        raise problem from None


def _months(column: pd.Series) -> pd.Series:
    """The ``YYYY-MM`` month of every value of a timestamp, period or month-string column."""
    if isinstance(column.dtype, pd.PeriodDtype) or pd.api.types.is_datetime64_any_dtype(column):
        return column.dt.strftime("%Y-%m")
    try:
        stamps = pd.to_datetime(column, format="ISO8601", utc=True)
    except (ValueError, TypeError):
        raise ValueError(
            f"Column {column.name!r} holds neither timestamps nor 'YYYY-MM' months: convert it with pd.to_datetime."
        ) from None
    return stamps.dt.strftime("%Y-%m")


def time_split(
    df: pd.DataFrame,
    time_column: str,
    *,
    train_end: str,
    valid_end: str,
    test_end: str | None = None,
) -> Split:
    """Split by time: train on the past, validate on what follows, test on the most recent.

    Cut-offs are months and inclusive: ``train_end="2025-01"`` trains on every row up
    to and including January 2025; validation covers the months after ``train_end``
    up to and including ``valid_end``; test covers the months after ``valid_end`` (up to
    and including ``test_end`` when given; later rows are left out). No row of a later
    period can land in an earlier split, which a random split cannot promise.

    Parameters
    ----------
    df : DataFrame
        Rows to split.
    time_column : str
        A timestamp column (``applied_at``) or a ``YYYY-MM`` month column (``month``).
        Timestamps are read in their own time zone (UTC in the course data).
    train_end, valid_end : str
        Last month of training and of validation, ``'YYYY-MM'``; ``train_end < valid_end``.
    test_end : str, optional
        Last month of the test set, e.g. the last month whose labels have matured.

    Returns
    -------
    Split
        ``(train, valid, test)``, each in the original row order.

    Examples
    --------
    >>> df = pd.DataFrame({"month": ["2025-01", "2025-02", "2025-03", "2025-04", "2025-05"]})
    >>> parts = time_split(df, "month", train_end="2025-02", valid_end="2025-03", test_end="2025-04")
    >>> [part["month"].tolist() for part in parts]
    [['2025-01', '2025-02'], ['2025-03'], ['2025-04']]
    """
    check_columns(df, [time_column], what="The DataFrame")
    cuts = [_to_month(train_end), _to_month(valid_end)]
    if test_end is not None:
        cuts.append(_to_month(test_end))
    if cuts != sorted(set(cuts)):
        raise ValueError(f"Cut-offs must increase: train_end < valid_end < test_end, got {cuts}.")
    months = _months(df[time_column])
    if months.isna().any():
        raise ValueError(
            f"{int(months.isna().sum())} rows have no {time_column}: drop or fill them before a time split."
        )
    train = months <= cuts[0]
    valid = (months > cuts[0]) & (months <= cuts[1])
    test = months > cuts[1]
    if test_end is not None:
        test &= months <= cuts[2]
    return Split(df[train], df[valid], df[test])


def group_split(
    df: pd.DataFrame,
    group: str = "customer_id",
    *,
    valid_size: float = 0.15,
    test_size: float = 0.15,
    random_state: RandomState = None,
) -> Split:
    """Split so that all rows of a group (a customer) land in the same part.

    Like scikit-learn's ``GroupShuffleSplit``: the sizes are fractions of the groups,
    not of the rows. A customer's second application then cannot leak what the model
    learnt from their first into the test score.

    Parameters
    ----------
    df : DataFrame
        Rows to split.
    group : str
        Column identifying the group, ``customer_id`` by default.
    valid_size, test_size : float
        Fractions of the groups for validation and test, each in [0, 1), summing to < 1.
    random_state : int or numpy Generator, optional
        Seed for a repeatable split.

    Returns
    -------
    Split
        ``(train, valid, test)``, each in the original row order.

    Examples
    --------
    >>> df = pd.DataFrame({"customer_id": ["a", "a", "b", "c", "c", "d"]})
    >>> parts = group_split(df, valid_size=0.25, test_size=0.25, random_state=0)
    >>> [part["customer_id"].nunique() for part in parts]
    [2, 1, 1]
    >>> set(parts.train["customer_id"]) & set(parts.test["customer_id"])
    set()
    """
    check_columns(df, [group], what="The DataFrame")
    _check_split_sizes(valid_size, test_size)
    if df[group].isna().any():
        raise ValueError(f"Column {group!r} has missing values: every row needs a group to split by groups.")
    groups = _rng(random_state).permutation(df[group].unique())
    n_test, n_valid = round(test_size * len(groups)), round(valid_size * len(groups))
    test = df[group].isin(groups[:n_test])
    valid = df[group].isin(groups[n_test : n_test + n_valid])
    return Split(df[~test & ~valid], df[valid], df[test])


# -- class imbalance ------------------------------------------------------------------


def _labels(y: pd.Series | Sequence | np.ndarray) -> pd.Series:
    labels = pd.Series(y)
    if labels.isna().any():
        raise ValueError(
            f"{int(labels.isna().sum())} labels are missing: drop rows whose label is not observed yet."
        )
    if labels.empty:
        raise ValueError("There are no labels: pass a non-empty column of classes.")
    return labels


def class_balance(y: pd.Series | Sequence | np.ndarray) -> pd.DataFrame:
    """Count each class: rows, share of all rows, and size relative to the smallest class.

    Parameters
    ----------
    y : Series or array-like
        Class labels, without missing values.

    Returns
    -------
    DataFrame
        Indexed by class (largest first) with columns ``count``, ``proportion`` and
        ``ratio_to_minority``; the largest class's ratio is the imbalance ratio.

    Examples
    --------
    >>> class_balance([0, 0, 0, 1])  # doctest: +NORMALIZE_WHITESPACE
           count  proportion  ratio_to_minority
    class
    0          3        0.75                3.0
    1          1        0.25                1.0
    """
    counts = _labels(y).value_counts().sort_index().sort_values(ascending=False, kind="stable")
    table = pd.DataFrame(
        {"count": counts, "proportion": counts / counts.sum(), "ratio_to_minority": counts / counts.min()}
    )
    return table.rename_axis("class")


def imbalance_ratio(y: pd.Series | Sequence | np.ndarray) -> float:
    """Rows in the largest class per row in the smallest (1.0 when balanced).

    Examples
    --------
    >>> imbalance_ratio([0] * 14 + [1])
    14.0
    """
    counts = _labels(y).value_counts()
    return float(counts.max() / counts.min())


def _target_column(df: pd.DataFrame, target: str, ratio: float) -> pd.Series:
    check_columns(df, [target], what="The DataFrame")
    _check_fraction("ratio", ratio)
    return _labels(df[target])


def undersample(
    df: pd.DataFrame, target: str, *, ratio: float = 1.0, random_state: RandomState = None
) -> pd.DataFrame:
    """Randomly drop rows of the larger classes until ``minority / class >= ratio``.

    Every class larger than ``n_minority / ratio`` rows is cut to that size at random;
    the smallest class is kept whole. ``ratio=1`` balances the classes.

    Parameters
    ----------
    df : DataFrame
        Training rows (never resample validation or test data).
    target : str
        Column holding the classes.
    ratio : float
        Wanted ratio of the smallest class to each larger class after resampling, in (0, 1].
    random_state : int or numpy Generator, optional
        Seed for a repeatable sample.

    Returns
    -------
    DataFrame
        The kept rows in their original order.

    Examples
    --------
    >>> df = pd.DataFrame({"y": [0] * 9 + [1]})
    >>> undersample(df, "y", ratio=0.5, random_state=0)["y"].value_counts().sort_index().tolist()
    [2, 1]
    """
    labels = _target_column(df, target, ratio)
    rng = _rng(random_state)
    cap = round(labels.value_counts().min() / ratio)
    kept = []
    for positions in df.groupby(labels.to_numpy(), sort=True).indices.values():
        kept.append(rng.choice(positions, size=cap, replace=False) if len(positions) > cap else positions)
    return df.iloc[np.sort(np.concatenate(kept))]


def oversample(
    df: pd.DataFrame, target: str, *, ratio: float = 1.0, random_state: RandomState = None
) -> pd.DataFrame:
    """Randomly repeat rows of the smaller classes until ``class / majority >= ratio``.

    Every class smaller than ``ratio * n_majority`` rows gets extra copies of its rows,
    drawn at random with replacement. Copies keep their index label, so
    ``result.index.duplicated()`` finds them.

    Parameters
    ----------
    df : DataFrame
        Training rows (never resample validation or test data: the copies would
        inflate the scores).
    target : str
        Column holding the classes.
    ratio : float
        Wanted ratio of each smaller class to the largest after resampling, in (0, 1].
    random_state : int or numpy Generator, optional
        Seed for a repeatable sample.

    Returns
    -------
    DataFrame
        All original rows plus the copies, each copy next to its original.

    Examples
    --------
    >>> df = pd.DataFrame({"y": [0] * 8 + [1] * 2})
    >>> oversample(df, "y", ratio=0.5, random_state=0)["y"].value_counts().sort_index().tolist()
    [8, 4]
    """
    labels = _target_column(df, target, ratio)
    rng = _rng(random_state)
    floor = round(labels.value_counts().max() * ratio)
    rows = [np.arange(len(df))]
    for positions in df.groupby(labels.to_numpy(), sort=True).indices.values():
        if len(positions) < floor:
            rows.append(rng.choice(positions, size=floor - len(positions), replace=True))
    return df.iloc[np.sort(np.concatenate(rows), kind="stable")]


def class_weights(y: pd.Series | Sequence | np.ndarray) -> dict:
    """Balanced class weights: ``n_rows / (n_classes * n_rows_in_class)``.

    The same values as ``sklearn.utils.class_weight.compute_class_weight("balanced")``,
    as a dict that estimators accept as ``class_weight=``. Each class then carries
    the same total weight in the loss.

    Examples
    --------
    >>> class_weights([0, 0, 0, 1])
    {0: 0.6666666666666666, 1: 2.0}
    """
    counts = _labels(y).value_counts().sort_index()
    weights = counts.sum() / (len(counts) * counts)
    return {_plain(label): float(weight) for label, weight in weights.items()}


def _plain(value):
    """A numpy scalar as the matching Python scalar (``np.int64(1)`` -> ``1``)."""
    return value.item() if isinstance(value, np.generic) else value
