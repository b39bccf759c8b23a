"""Drift statistics on two samples: KS, chi-square, PSI and Jensen-Shannon, on bins fitted on the reference.

Pure functions of arrays and Series; :mod:`mlsd.monitoring._drift` applies them feature by feature.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import jensenshannon

PSI_MODERATE = 0.1
PSI_MAJOR = 0.25


class StatResult(NamedTuple):
    """A test statistic and its p-value."""

    statistic: float
    p_value: float


# -- binning fitted on the reference ---------------------------------------------------


def _observed(values) -> np.ndarray:
    """Non-missing values as floats; a clear error for non-numeric input."""
    series = pd.Series(values)
    if not (pd.api.types.is_numeric_dtype(series) or series.isna().all()):
        raise ValueError(f"Expected numeric values, got dtype {series.dtype}: use chi2_test for categories.")
    return series.dropna().to_numpy(dtype=float)


def _numeric_cuts(ref, bins: int | Sequence[float]) -> np.ndarray:
    """Cut points between bins: reference quantiles, or the given cut points."""
    if isinstance(bins, (int, np.integer)):
        if bins < 2:
            raise ValueError(f"bins must be at least 2, got {bins}.")
        observed = _observed(ref)
        if len(observed) == 0:
            return np.array([])
        return np.unique(np.quantile(observed, np.linspace(0, 1, bins + 1)[1:-1]))
    return np.sort(np.asarray(bins, dtype=float))


def _numeric_counts(values, cuts: np.ndarray) -> np.ndarray:
    """Counts in the bins ``(-inf, c1], (c1, c2], ..., (ck, inf)`` and, last, the missing count."""
    series = pd.Series(values)
    observed = _observed(series)
    counts = np.bincount(np.searchsorted(cuts, observed, side="left"), minlength=len(cuts) + 1)
    return np.r_[counts, len(series) - len(observed)]


def _fit_categories(ref) -> list[str]:
    """Reference categories, most frequent first."""
    return pd.Series(ref).dropna().astype(str).value_counts().index.tolist()


def _category_counts(values, categories: Sequence[str]) -> np.ndarray:
    """Counts per reference category, then ``(other)`` (unseen or rare), then ``(missing)``."""
    series = pd.Series(values)
    missing = series.isna()
    observed = series[~missing].astype(str)
    known = observed.value_counts().reindex(list(categories), fill_value=0).to_numpy()
    return np.r_[known, len(observed) - known.sum(), missing.sum()].astype(int)


def _is_numeric(ref, cur) -> bool:
    return pd.api.types.is_numeric_dtype(pd.Series(ref)) and pd.api.types.is_numeric_dtype(pd.Series(cur))


def _n_kept(counts: np.ndarray, min_frequency: float) -> int:
    """How many categories (most frequent first) have at least ``min_frequency`` of the rows."""
    return int((counts[:-2] >= min_frequency * counts.sum()).sum())


def _lump(counts: np.ndarray, n_kept: int) -> np.ndarray:
    """Keep the first ``n_kept`` categories; the rest join ``(other)``; ``(missing)`` stays last."""
    return np.r_[counts[:n_kept], counts[n_kept:-1].sum(), counts[-1]]


def _counts(ref, cur, bins, min_frequency: float) -> tuple[np.ndarray, np.ndarray]:
    """Reference and current counts on bins fitted on the reference (numeric or categorical)."""
    if _is_numeric(ref, cur):
        cuts = _numeric_cuts(ref, bins)
        return _numeric_counts(ref, cuts), _numeric_counts(cur, cuts)
    categories = _fit_categories(ref)
    ref_counts = _category_counts(ref, categories)
    n_kept = _n_kept(ref_counts, min_frequency)
    return _lump(ref_counts, n_kept), _lump(_category_counts(cur, categories), n_kept)


def _psi_from_counts(ref_counts, cur_counts, eps: float = 1e-4) -> float:
    p = np.clip(ref_counts / ref_counts.sum(), eps, None)
    q = np.clip(cur_counts / cur_counts.sum(), eps, None)
    return float(np.sum((q - p) * np.log(q / p)))


def _js_from_counts(ref_counts, cur_counts) -> float:
    value = jensenshannon(ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum(), base=2)
    return float(np.nan_to_num(value))  # identical distributions can give a tiny NaN from rounding


def _chi2_from_counts(ref_counts, cur_counts, min_expected: float = 5.0) -> StatResult:
    """Chi-square test of homogeneity on a 2 x bins table.

    Bins whose expected count is below ``min_expected`` (judged on the pooled
    counts, so the choice does not favour either sample) are merged into one, and
    dropped if still too sparse: the chi-square approximation needs about 5
    expected cases per cell.
    """
    table = np.vstack([ref_counts, cur_counts]).astype(float)
    if table.sum(axis=1).min() == 0:
        return StatResult(0.0, 1.0)
    share = table.sum(axis=1).min() / table.sum()  # expected count of a bin = its pooled count x share
    sparse = table.sum(axis=0) * share < min_expected
    merged = table[:, sparse].sum(axis=1, keepdims=True)
    table = table[:, ~sparse]
    if merged.sum() * share >= min_expected:
        table = np.hstack([table, merged])
    if table.shape[1] < 2:
        return StatResult(0.0, 1.0)
    result = stats.chi2_contingency(table)
    return StatResult(float(result.statistic), float(result.pvalue))


def _chi2_categorical(categories: list[str], ref_counts: np.ndarray, cur) -> StatResult:
    """Chi-square test on every category of either sample.

    A category new in the current sample keeps its own bin here (with a reference
    count of 0) rather than joining ``(other)``: which rare categories happen to
    be missing from the reference is chance, and lumping them by that chance would
    make a long tail look like drift. Sparse bins are merged on pooled counts.
    """
    seen = set(categories)
    new = [c for c in pd.Series(cur).dropna().astype(str).unique() if c not in seen]
    ref_full = np.r_[ref_counts[:-2], np.zeros(len(new)), ref_counts[-2:]]
    return _chi2_from_counts(ref_full, _category_counts(cur, [*categories, *new]))


def _ks(ref_obs: np.ndarray, cur_obs: np.ndarray) -> StatResult:
    with warnings.catch_warnings():  # with ties scipy falls back from the exact to the asymptotic p-value
        warnings.filterwarnings("ignore", message="ks_2samp: Exact calculation unsuccessful")
        result = stats.ks_2samp(ref_obs, cur_obs)
    return StatResult(float(result.statistic), float(result.pvalue))


def _check_samples(ref, cur) -> None:
    if len(ref) == 0 or len(cur) == 0:
        raise ValueError(f"Both samples need rows: reference has {len(ref)}, current has {len(cur)}.")


# -- the statistics, one at a time -----------------------------------------------------


def ks_test(ref, cur) -> StatResult:
    """Two-sample Kolmogorov-Smirnov test on a numeric feature (missing values dropped).

    The statistic is the largest gap between the two empirical cumulative
    distributions (0 to 1); it needs no binning.

    Examples
    --------
    >>> ks_test([1, 2, 3, 4], [3, 4, 5, 6]).statistic
    0.5
    """
    ref_obs, cur_obs = _observed(ref), _observed(cur)
    if len(ref_obs) == 0 or len(cur_obs) == 0:
        raise ValueError("ks_test needs observed (non-missing) values in both samples.")
    return _ks(ref_obs, cur_obs)


def chi2_test(ref, cur) -> StatResult:
    """Chi-square test that a categorical feature has the same distribution in both samples.

    Every category of either sample has its own bin, missing values too; bins
    with fewer than 5 expected cases (judged on the pooled counts, so the choice
    favours neither sample) are merged, as the chi-square approximation needs.
    A new category with many cases (a new channel) therefore stands out, while a
    long tail of rare categories, some of which the reference happens not to
    contain, does not raise false alarms.

    Examples
    --------
    >>> ref = ["web"] * 50 + ["branch"] * 50
    >>> round(chi2_test(ref, ref).p_value, 3)
    1.0
    >>> chi2_test(ref, ["web"] * 40 + ["partner_app"] * 60).p_value < 1e-6
    True
    """
    _check_samples(ref, cur)
    categories = _fit_categories(ref)
    return _chi2_categorical(categories, _category_counts(ref, categories), cur)


def psi(ref, cur, bins: int | Sequence[float] = 10, eps: float = 1e-4, min_frequency: float = 0.01) -> float:
    """Population stability index: ``sum((cur% - ref%) * ln(cur% / ref%))`` over bins.

    Numeric features are cut at reference quantiles (``bins`` of them; fewer when
    quantiles tie) or at the given cut points, bins closed on the right.
    Categorical features have one bin per reference category with at least
    ``min_frequency`` of the rows, and one ``(other)`` bin for rarer and unseen
    categories (a long tail of tiny bins would make PSI noisy). Missing values
    are their own bin. Empty bins get the proportion ``eps`` so the logarithm
    stays finite.

    Read it as: < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 major shift.

    Examples
    --------
    >>> ref = [1] * 25 + [2] * 25 + [3] * 25 + [4] * 25
    >>> cur = [1] * 10 + [2] * 20 + [3] * 30 + [4] * 40
    >>> round(psi(ref, cur, bins=[1, 2, 3]), 4)
    0.2282
    """
    _check_samples(ref, cur)
    return _psi_from_counts(*_counts(ref, cur, bins, min_frequency), eps=eps)


def js_distance(ref, cur, bins: int | Sequence[float] = 10, min_frequency: float = 0.01) -> float:
    """Jensen-Shannon distance (base 2: from 0, identical, to 1, disjoint) on the same bins as :func:`psi`.

    Unlike PSI it is symmetric, bounded and needs no epsilon for empty bins.

    Examples
    --------
    >>> js_distance(["a"] * 10, ["b"] * 10)
    1.0
    """
    _check_samples(ref, cur)
    return _js_from_counts(*_counts(ref, cur, bins, min_frequency))
