"""Watch a model in production: data drift, delayed labels, alerts.

* **Drift statistics**, each comparing a current sample with a reference one:
  :func:`ks_test` (numeric), :func:`chi2_test` (categorical), :func:`psi` and
  :func:`js_distance` (both kinds, on bins fitted on the reference).
* **Fit on the reference, apply to each window**: :class:`ReferenceProfile` stores
  bin edges and categories; :func:`drift_report` compares two frames;
  :func:`compare_windows` runs the comparison month by month. Include the model
  score as a feature (a ``score`` column) to watch the output as well as the inputs.
* **When to call it drift**: :class:`DriftRule` (see below).
* **The prediction log** in PostgreSQL: :func:`ensure_prediction_log`,
  :func:`log_predictions` (idempotent per batch), :func:`read_predictions`.
* **Delayed labels**: :func:`performance_over_time` joins predictions to the
  outcomes known at a date; :func:`read_performance_over_time` reads both from PostgreSQL.
* **Alerts**: :class:`AlertRule`, :func:`default_alert_rules`, :func:`evaluate_alerts`;
  and :func:`drift_figure` to look at a report.

The drift rule
--------------
With thousands of rows a month every test finds *some* difference, and with a
dozen features tested every month a plain ``p < 0.05`` raises false alarms in
about half of the months. So a feature is flagged as drifted only when **both**

1. the test is significant: ``p_value < alpha`` (default 0.05), and
2. the change is big enough to matter: ``psi >= 0.1``, or for a numeric feature
   a KS statistic ``>= 0.05`` (the largest gap between the two cumulative
   distributions is at least 5 percentage points).

Requiring (1) keeps the false-alarm rate of each feature test at or below
``alpha`` when nothing has changed (the course's tests measure it); requiring (2)
stops tiny, harmless shifts in large samples from raising alarms. For a
family-wise guarantee per window (at most ``alpha`` chance of *any* false
alarm among the features), use ``DriftRule(correction="bonferroni")``.
Measured in ``tests/unit/test_monitoring.py`` (200 repetitions of 12 features,
2,000 rows per sample, no drift): 0.6% of feature tests flagged (``p < alpha``
alone: 3.5%); 7.5% of windows with any flag, 1% with Bonferroni. A 0.3 sd mean
shift, a new channel with 30% of applications and a doubled coefficient behind
the score are all flagged.

Missing values are handled explicitly: they form their own bin in PSI, JS and the
chi-square test, and ``missing_ref`` / ``missing_cur`` report their share. The KS
test uses the observed values only, so for a numeric feature with missing values
the p-value combines KS with a chi-square test of the missing share
(Bonferroni over the two: ``min(1, 2 * min(p_ks, p_missing))``, test ``"ks+missing"``).

PSI is read with the conventional thresholds: below 0.1 no meaningful change,
0.1 to 0.25 a moderate shift worth a look, above 0.25 a major shift.
"""

from __future__ import annotations

import json
import math
import operator
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import jensenshannon

from mlsd._validation import check_columns
from mlsd.errors import MLSDError

if TYPE_CHECKING:
    import psycopg2.extensions
    from matplotlib.figure import Figure

__all__ = [
    "PSI_MAJOR",
    "PSI_MODERATE",
    "PREDICTION_LOG",
    "AlertRule",
    "DriftRule",
    "ReferenceProfile",
    "StatResult",
    "chi2_test",
    "compare_windows",
    "default_alert_rules",
    "drift_figure",
    "drift_report",
    "ensure_prediction_log",
    "evaluate_alerts",
    "js_distance",
    "ks_test",
    "log_predictions",
    "performance_over_time",
    "psi",
    "read_performance_over_time",
    "read_predictions",
    "MonitoringError",
    "MonthReport",
    "monitor_month",
]

PSI_MODERATE = 0.1
PSI_MAJOR = 0.25
PREDICTION_LOG = "monitoring.prediction_log"


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


# -- when to call it drift -------------------------------------------------------------


@dataclass(frozen=True)
class DriftRule:
    """Flag drift when ``p_value < alpha`` **and** the effect is large enough (see the module docs).

    Parameters
    ----------
    alpha : float
        Significance level of each feature test.
    min_psi : float
        PSI that counts as a real shift (0.1: the conventional "moderate").
    min_ks : float
        KS statistic that counts as a real shift for a numeric feature.
    correction : {"none", "bonferroni"}
        ``"bonferroni"`` compares ``p_value * n_features`` with ``alpha``, per window.
    """

    alpha: float = 0.05
    min_psi: float = PSI_MODERATE
    min_ks: float = 0.05
    correction: str = "none"

    def __post_init__(self):
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be between 0 and 1, got {self.alpha}.")
        if self.correction not in {"none", "bonferroni"}:
            raise ValueError(f"correction must be 'none' or 'bonferroni', got {self.correction!r}.")

    def flag(self, report: pd.DataFrame) -> pd.Series:
        """The ``drifted`` flag for each row of a comparison (columns kind, statistic, p_value, psi)."""
        p = report["p_value"] * (len(report) if self.correction == "bonferroni" else 1)
        large = (report["psi"] >= self.min_psi) | (
            (report["kind"] == "numeric") & (report["statistic"] >= self.min_ks)
        )
        return ((p < self.alpha) & large).astype(bool)


# -- fit on the reference, compare each window -----------------------------------------


@dataclass
class _NumericReference:
    values: np.ndarray  # observed values, for KS
    cuts: np.ndarray
    counts: np.ndarray  # per bin, then missing


@dataclass
class _CategoricalReference:
    categories: list[str]  # every reference category, most frequent first
    counts: np.ndarray  # per category, then (other), then (missing)
    n_kept: int  # categories with their own bin in PSI and JS; the rest join (other)


def _infer_features(df: pd.DataFrame, exclude: Sequence[str] = ()) -> tuple[list[str], list[str]]:
    """Numeric and categorical columns, skipping ``exclude``, identifiers (``*_id``) and timestamps."""
    columns = [
        c
        for c in df.columns
        if c not in exclude and not str(c).endswith("_id") and not pd.api.types.is_datetime64_any_dtype(df[c])
    ]
    numeric = [
        c for c in columns if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
    ]
    return numeric, [c for c in columns if c not in numeric]


@dataclass
class ReferenceProfile:
    """What a reference period looks like: bin edges, categories and counts per feature.

    Fit it once on the reference (e.g. the training months), then :meth:`compare`
    each new window with it: the bins stay the same, so PSI values are comparable
    from one month to the next.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ref = pd.DataFrame({"income": rng.normal(size=2000), "channel": rng.choice(["web", "branch"], 2000)})
    >>> cur = pd.DataFrame({"income": rng.normal(0.5, 1, 2000), "channel": rng.choice(["web", "branch"], 2000)})
    >>> report = ReferenceProfile.fit(ref, numeric=["income"], categorical=["channel"]).compare(cur)
    >>> report.set_index("feature")["drifted"].to_dict()
    {'income': True, 'channel': False}
    """

    numeric: dict[str, _NumericReference] = field(default_factory=dict, repr=False)
    categorical: dict[str, _CategoricalReference] = field(default_factory=dict, repr=False)
    n: int = 0

    def __repr__(self) -> str:
        return f"ReferenceProfile(n={self.n}, numeric={list(self.numeric)}, categorical={list(self.categorical)})"

    @classmethod
    def fit(
        cls,
        ref_df: pd.DataFrame,
        numeric: Sequence[str] | None = None,
        categorical: Sequence[str] | None = None,
        *,
        bins: int = 10,
        min_frequency: float = 0.01,
    ) -> ReferenceProfile:
        """Fit the profile on a reference frame.

        Parameters
        ----------
        ref_df : pandas.DataFrame
            The reference sample.
        numeric, categorical : list of str, optional
            Features to watch. When both are omitted: numeric columns are numeric,
            every other column is categorical, except timestamps and columns named
            ``*_id``. Name them explicitly in anything that lasts.
        bins : int
            Quantile bins for numeric features (fewer when quantiles tie, as with
            mostly-zero late-payment counts).
        min_frequency : float
            For PSI and JS, categories rarer than this share of the reference join
            ``(other)`` with unseen ones, as in :func:`psi`. (The chi-square test
            keeps every category and merges sparse bins itself, see :func:`chi2_test`.)
        """
        if numeric is None and categorical is None:
            numeric, categorical = _infer_features(ref_df)
        numeric, categorical = list(numeric or []), list(categorical or [])
        check_columns(ref_df, numeric + categorical, what="The reference frame")
        if len(ref_df) == 0:
            raise ValueError("The reference frame is empty: pick a reference period that has rows.")
        not_numeric = [c for c in numeric if not pd.api.types.is_numeric_dtype(ref_df[c])]
        if not_numeric:
            raise ValueError(
                f"Features {not_numeric} are not numeric in the reference: list them as categorical."
            )
        profile = cls(n=len(ref_df))
        for name in numeric:
            column = ref_df[name]
            cuts = _numeric_cuts(column, bins)
            profile.numeric[name] = _NumericReference(_observed(column), cuts, _numeric_counts(column, cuts))
        for name in categorical:
            categories = _fit_categories(ref_df[name])
            counts = _category_counts(ref_df[name], categories)
            profile.categorical[name] = _CategoricalReference(
                categories, counts, _n_kept(counts, min_frequency)
            )
        return profile

    @property
    def features(self) -> list[str]:
        """The watched features, numeric first."""
        return [*self.numeric, *self.categorical]

    def compare(self, cur_df: pd.DataFrame, rule: DriftRule | None = None) -> pd.DataFrame:
        """Compare a current frame with the reference, one row per feature.

        Returns
        -------
        pandas.DataFrame
            ``feature``, ``kind`` (numeric / categorical), ``test`` (``ks``,
            ``ks+missing`` or ``chi2``), ``statistic`` (KS statistic for numeric
            features, chi-square for categorical ones), ``p_value``, ``psi``, ``js``,
            ``missing_ref``, ``missing_cur`` (shares), ``n_ref``, ``n_cur`` and
            ``drifted`` (by ``rule``, default :class:`DriftRule()`).
        """
        check_columns(cur_df, self.features, what="The current frame")
        if len(cur_df) == 0:
            raise ValueError("The current frame is empty: there is nothing to compare.")
        rows = [self._compare_numeric(name, cur_df[name]) for name in self.numeric]
        rows += [self._compare_categorical(name, cur_df[name]) for name in self.categorical]
        report = pd.DataFrame(rows)
        report["n_ref"], report["n_cur"] = self.n, len(cur_df)
        report["drifted"] = (rule or DriftRule()).flag(report)
        return report

    def _compare_numeric(self, name: str, values: pd.Series) -> dict[str, Any]:
        ref = self.numeric[name]
        cur_counts = _numeric_counts(values, ref.cuts)
        cur_obs = _observed(values)
        statistic, p_values, test = math.nan, [], "ks"
        if len(ref.values) and len(cur_obs):
            statistic, p_ks = _ks(ref.values, cur_obs)
            p_values.append(p_ks)
        if ref.counts[-1] + cur_counts[-1] > 0:  # missing values somewhere: test their share too
            ref_split, cur_split = np.r_[len(ref.values), ref.counts[-1]], np.r_[len(cur_obs), cur_counts[-1]]
            p_values.append(_chi2_from_counts(ref_split, cur_split).p_value)
            test = "ks+missing"
        p_value = min(1.0, len(p_values) * min(p_values)) if p_values else math.nan
        return self._row(name, "numeric", test, float(statistic), p_value, ref.counts, cur_counts)

    def _compare_categorical(self, name: str, values: pd.Series) -> dict[str, Any]:
        ref = self.categorical[name]
        cur_counts = _category_counts(values, ref.categories)
        statistic, p_value = _chi2_categorical(ref.categories, ref.counts, values)
        ref_bins, cur_bins = _lump(ref.counts, ref.n_kept), _lump(cur_counts, ref.n_kept)
        return self._row(name, "categorical", "chi2", statistic, p_value, ref_bins, cur_bins)

    @staticmethod
    def _row(name, kind, test, statistic, p_value, ref_counts, cur_counts) -> dict[str, Any]:
        return {
            "feature": name,
            "kind": kind,
            "test": test,
            "statistic": statistic,
            "p_value": p_value,
            "psi": _psi_from_counts(ref_counts, cur_counts),
            "js": _js_from_counts(ref_counts, cur_counts),
            "missing_ref": ref_counts[-1] / ref_counts.sum(),
            "missing_cur": cur_counts[-1] / cur_counts.sum(),
        }


def drift_report(
    reference_df: pd.DataFrame,
    current_df: pd.DataFrame,
    numeric: Sequence[str] | None = None,
    categorical: Sequence[str] | None = None,
    *,
    bins: int = 10,
    min_frequency: float = 0.01,
    rule: DriftRule | None = None,
) -> pd.DataFrame:
    """Compare two frames feature by feature, largest PSI first.

    A shortcut for ``ReferenceProfile.fit(reference_df, ...).compare(current_df, rule)``;
    see :meth:`ReferenceProfile.compare` for the columns.
    """
    profile = ReferenceProfile.fit(reference_df, numeric, categorical, bins=bins, min_frequency=min_frequency)
    report = profile.compare(current_df, rule)
    return report.sort_values("psi", ascending=False, ignore_index=True)


def _periods(values: pd.Series, freq: str) -> pd.Series:
    """Timestamps or ``YYYY-MM`` strings as pandas Periods (UTC for time-zone-aware values)."""
    times = pd.to_datetime(values, utc=True).dt.tz_localize(None)
    return times.dt.to_period(freq)


def _span(window, freq: str) -> tuple[pd.Period, pd.Period]:
    """``"2025-04"`` -> (2025-04, 2025-04); ``("2025-04", "2025-06")`` -> (2025-04, 2025-06)."""
    if isinstance(window, (tuple, list)):
        return pd.Period(window[0], freq), pd.Period(window[1], freq)
    return pd.Period(window, freq), pd.Period(window, freq)


def compare_windows(
    df: pd.DataFrame,
    time_col: str,
    reference: tuple[Any, Any],
    windows: str | Sequence[Any] = "M",
    *,
    numeric: Sequence[str] | None = None,
    categorical: Sequence[str] | None = None,
    bins: int = 10,
    min_frequency: float = 0.01,
    rule: DriftRule | None = None,
) -> pd.DataFrame:
    """Run the drift comparison for every window against a reference period.

    Parameters
    ----------
    df : pandas.DataFrame
        All periods, with a time column (timestamps, or ``YYYY-MM`` strings such as
        the course data's ``month``).
    time_col : str
        The time column.
    reference : (start, end)
        The reference period, both ends included, e.g. ``("2024-01", "2024-12")``.
    windows : str or list
        A period frequency (``"M"``, the default, or ``"Q"``, ``"W"``...): one window
        per period outside the reference, in time order. Or a list of monthly
        windows, each a month (``"2025-04"``) or a ``(start, end)`` pair of months.
    numeric, categorical : list of str, optional
        Features to watch (include ``"score"`` to watch the model output); inferred
        as in :meth:`ReferenceProfile.fit` when omitted, ``time_col`` excluded.
    bins, min_frequency, rule
        As in :meth:`ReferenceProfile.fit` and :meth:`ReferenceProfile.compare`.

    Returns
    -------
    pandas.DataFrame
        Long format: ``window`` then the columns of :meth:`ReferenceProfile.compare`,
        one row per window and feature. Windows without rows are left out.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> months = np.repeat(["2024-01", "2024-02", "2024-03"], 1000)
    >>> x = rng.normal(size=3000) + (months == "2024-03")
    >>> report = compare_windows(pd.DataFrame({"month": months, "x": x}), "month", ("2024-01", "2024-01"))
    >>> report[["window", "drifted"]].to_numpy().tolist()
    [['2024-02', False], ['2024-03', True]]
    """
    check_columns(df, [time_col], what="The input frame")
    freq = windows if isinstance(windows, str) else "M"
    period = _periods(df[time_col], freq)
    start, end = pd.Period(reference[0], freq), pd.Period(reference[1], freq)
    in_reference = ((period >= start) & (period <= end)).to_numpy()
    if numeric is None and categorical is None:
        numeric, categorical = _infer_features(df, exclude=[time_col])
    profile = ReferenceProfile.fit(
        df[in_reference], numeric, categorical, bins=bins, min_frequency=min_frequency
    )
    if isinstance(windows, str):
        spans = [(p, p) for p in sorted(period[~in_reference].dropna().unique())]
    else:
        spans = [_span(w, freq) for w in windows]
    reports = []
    for first, last in spans:
        rows = ((period >= first) & (period <= last)).to_numpy()
        if rows.any():
            label = str(first) if first == last else f"{first}..{last}"
            reports.append(profile.compare(df[rows], rule).assign(window=label))
    if not reports:
        raise ValueError(f"No rows outside the reference {reference} in the requested windows.")
    report = pd.concat(reports, ignore_index=True)
    return report[["window", *report.columns.drop("window")]]


def drift_figure(report: pd.DataFrame) -> Figure:
    """Bar chart of PSI per feature with the 0.1 and 0.25 lines; PSI over time for a windowed report.

    Parameters
    ----------
    report : pandas.DataFrame
        From :func:`drift_report` (one bar per feature, drifted ones in red) or
        :func:`compare_windows` (one line per feature across windows).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    check_columns(report, ["feature", "psi"], what="The report frame")
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    if "window" in report.columns and report["window"].nunique() > 1:
        table = report.pivot(index="window", columns="feature", values="psi")
        for name in table.columns:
            ax.plot(table.index, table[name], marker="o", label=name)
        ax.legend(fontsize="small", ncols=2)
        ax.tick_params(axis="x", labelrotation=45)
        ax.set(xlabel="window", ylabel="PSI", title="PSI per feature over time")
        line = ax.axhline
    else:
        drifted = report["drifted"] if "drifted" in report.columns else pd.Series(False, index=report.index)
        colours = np.where(drifted, "tab:red", "tab:blue")
        ax.barh(report["feature"].astype(str), report["psi"], color=colours)
        ax.invert_yaxis()
        ax.set(xlabel="PSI", title="PSI per feature (red: drifted by the rule)")
        line = ax.axvline
    line(PSI_MODERATE, color="orange", linestyle="--", label="0.1 moderate")
    line(PSI_MAJOR, color="red", linestyle="--", label="0.25 major")
    return fig


# -- the prediction log in PostgreSQL --------------------------------------------------

_CREATE_LOG = """
CREATE SCHEMA IF NOT EXISTS monitoring;
CREATE TABLE IF NOT EXISTS monitoring.prediction_log (
    id             bigserial PRIMARY KEY,
    model_name     text NOT NULL,
    model_version  text NOT NULL,
    batch_id       text NOT NULL,
    application_id text NOT NULL,
    features       jsonb,
    score          double precision NOT NULL,
    decision       smallint,
    predicted_at   timestamptz NOT NULL DEFAULT now(),
    latency_ms     double precision
);
CREATE INDEX IF NOT EXISTS prediction_log_batch_idx ON monitoring.prediction_log (model_name, batch_id);
CREATE INDEX IF NOT EXISTS prediction_log_application_idx ON monitoring.prediction_log (application_id);
CREATE INDEX IF NOT EXISTS prediction_log_predicted_at_idx ON monitoring.prediction_log (predicted_at);
"""

_LOG_COLUMNS = ["application_id", "score", "decision", "predicted_at", "latency_ms", "features"]


def ensure_prediction_log(conn: psycopg2.extensions.connection) -> None:
    """Create ``monitoring.prediction_log`` and its indexes if they are missing (idempotent).

    Columns: ``id``, ``model_name``, ``model_version``, ``batch_id``,
    ``application_id``, ``features`` (jsonb, optional: the inputs, or leave NULL
    and join the gold tables on ``application_id``), ``score``, ``decision``
    (0/1), ``predicted_at`` (defaults to the time of logging) and ``latency_ms``.
    """
    with conn, conn.cursor() as cur:
        cur.execute(_CREATE_LOG)


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def log_predictions(
    conn: psycopg2.extensions.connection,
    frame: pd.DataFrame,
    model_name: str,
    model_version: str,
    batch_id: str,
) -> int:
    """Write one batch of predictions to the log, replacing any earlier copy of the batch.

    In one transaction: create the log if needed, delete the rows of
    ``(model_name, batch_id)``, COPY the new ones. Logging the same batch twice
    leaves one copy; if anything fails the transaction is rolled back and the log
    is as it was.

    Parameters
    ----------
    conn : psycopg2 connection
    frame : pandas.DataFrame
        ``application_id`` and ``score`` (required); ``decision``, ``predicted_at``,
        ``latency_ms`` and ``features`` (dicts, stored as jsonb) if available.
        Other columns are ignored.
    model_name, model_version, batch_id : str
        Which model scored the batch, and the batch's identifier (e.g. the month).

    Returns
    -------
    int
        Rows written.
    """
    from mlsd.db import copy_dataframe

    check_columns(frame, ["application_id", "score"], what="The predictions frame")
    if not (model_name and model_version and batch_id):
        raise ValueError("model_name, model_version and batch_id must be non-empty strings.")
    if frame["application_id"].isna().any():
        raise ValueError("Some predictions have no application_id: every logged score needs one.")
    if not pd.api.types.is_numeric_dtype(frame["score"]) or frame["score"].isna().any():
        raise ValueError("score must be numeric with no missing values.")
    rows = frame[[c for c in _LOG_COLUMNS if c in frame.columns]].assign(
        model_name=model_name, model_version=str(model_version), batch_id=batch_id
    )
    if "decision" in rows.columns:
        rows["decision"] = pd.array(rows["decision"], dtype="Int64")  # "1", not "1.0", in the COPY
    if "predicted_at" in rows.columns:  # naive times are UTC, whatever the server's time zone
        rows["predicted_at"] = pd.to_datetime(rows["predicted_at"], utc=True)
    if "features" in rows.columns:
        rows["features"] = [None if _is_missing(f) else json.dumps(f, default=str) for f in rows["features"]]
    with conn:
        with conn.cursor() as cur:
            cur.execute(_CREATE_LOG)
            cur.execute(
                "DELETE FROM monitoring.prediction_log WHERE model_name = %s AND batch_id = %s",
                (model_name, batch_id),
            )
        return copy_dataframe(conn, rows, PREDICTION_LOG)


def read_predictions(
    conn: psycopg2.extensions.connection,
    *,
    model_name: str | None = None,
    model_version: str | None = None,
    batch_id: str | None = None,
    start: Any = None,
    end: Any = None,
) -> pd.DataFrame:
    """Read logged predictions, optionally filtered; ``start <= predicted_at < end`` (naive times are UTC).

    Returns
    -------
    pandas.DataFrame
        The log's columns, in logging order.
    """
    from psycopg2 import sql

    from mlsd.db import read_sql

    filters = {"model_name = %s": model_name, "model_version = %s": model_version, "batch_id = %s": batch_id}
    filters |= {
        "predicted_at >= %s": None if start is None else _utc(start).to_pydatetime(),
        "predicted_at < %s": None if end is None else _utc(end).to_pydatetime(),
    }
    used = {clause: value for clause, value in filters.items() if value is not None}
    where = sql.SQL(" AND ").join(sql.SQL(clause) for clause in used) if used else sql.SQL("true")
    query = sql.SQL("SELECT * FROM monitoring.prediction_log WHERE {} ORDER BY id").format(where)
    return read_sql(conn, query, list(used.values()))


# -- delayed labels --------------------------------------------------------------------


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
                "pr_auc": _metric("average_precision_score", y, s) if both else math.nan,
                "roc_auc": _metric("roc_auc_score", y, s) if both else math.nan,
                "recall": float(np.mean(s[y == 1] >= threshold)) if y.sum() else math.nan,
            }
        )
    return pd.DataFrame(rows)


def _metric(name: str, y: np.ndarray, s: np.ndarray) -> float:
    from sklearn import metrics

    return float(getattr(metrics, name)(y, s))


def read_performance_over_time(
    conn: psycopg2.extensions.connection,
    *,
    label_table: str = "silver.outcomes",
    as_of: Any = None,
    model_name: str | None = None,
    model_version: str | None = None,
    id_col: str = "application_id",
    label_col: str = "serious_dlq",
    observed_col: str = "observed_at",
    time_col: str = "applied_at",
    applications_table: str = "silver.applications",
    **kwargs,
) -> pd.DataFrame:
    """:func:`performance_over_time` on the prediction log and a label table in PostgreSQL.

    Periods are the months the applications were made (``time_col="applied_at"``, read
    from ``applications_table``), so a batch that back-fills a year of scores still
    shows a year of months; ``time_col="predicted_at"`` groups by scoring time instead.

    Parameters
    ----------
    conn : psycopg2 connection
    label_table : str
        ``schema.table`` with one row per observed outcome.
    as_of, id_col, label_col, observed_col, **kwargs
        Passed to :func:`performance_over_time`; only labels observed on or before
        ``as_of`` are read.
    model_name, model_version : str, optional
        Which predictions to read.
    """
    from psycopg2 import sql

    from mlsd.db import identifier, read_sql

    predictions = read_predictions(conn, model_name=model_name, model_version=model_version)
    if time_col == "applied_at" and not predictions.empty:
        # Group by when the application was made, not when it was scored: a back-filled
        # batch scores many months at once.
        applied = read_sql(
            conn,
            sql.SQL("SELECT {id}, applied_at FROM {table} WHERE {id} = ANY(%s)").format(
                id=identifier(id_col), table=identifier(*applications_table.split(".", 1))
            ),
            (predictions[id_col].unique().tolist(),),
        )
        predictions = predictions.merge(applied, on=id_col, how="inner")
    query = sql.SQL("SELECT {}, {}, {} FROM {}").format(
        identifier(id_col),
        identifier(label_col),
        identifier(observed_col),
        identifier(*label_table.split(".", 1)),
    )
    params = []
    if as_of is not None:
        query += sql.SQL(" WHERE {} <= %s").format(identifier(observed_col))
        params.append(_utc(as_of).to_pydatetime())
    labels = read_sql(conn, query, params)
    return performance_over_time(
        predictions,
        labels,
        as_of=as_of,
        id_col=id_col,
        label_col=label_col,
        observed_col=observed_col,
        time_col=time_col,
        **kwargs,
    )


# -- alerts ----------------------------------------------------------------------------

_COMPARE = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


@dataclass(frozen=True)
class AlertRule:
    """Fire when ``report[metric] <op> threshold`` on a row of a report.

    Parameters
    ----------
    name : str
        What the alert is called in the output.
    metric : str
        A column of the report (``psi``, ``drifted``, ``pr_auc``, ``label_coverage``...).
    op : {">", ">=", "<", "<=", "==", "!="}
    threshold : float
    feature : str, optional
        Only rows of this feature (for drift reports), e.g. ``"score"``.
    severity : str
        Free text, e.g. ``"warning"`` or ``"critical"``.
    """

    name: str
    metric: str
    op: str
    threshold: float
    feature: str | None = None
    severity: str = "warning"

    def __post_init__(self):
        if self.op not in _COMPARE:
            raise ValueError(f"op must be one of {list(_COMPARE)}, got {self.op!r}.")


def default_alert_rules(
    reference_pr_auc: float | None = None, max_pr_auc_drop: float = 0.05
) -> list[AlertRule]:
    """The course's default alerts.

    * ``feature_drift``: a feature is drifted by :class:`DriftRule` (warning);
    * ``feature_psi_major``: PSI above 0.25 on any feature (critical);
    * ``score_drift``: the ``score`` feature's PSI is 0.1 or more (critical);
    * ``pr_auc_drop``: PR-AUC more than ``max_pr_auc_drop`` (absolute) below
      ``reference_pr_auc``, for performance reports; only when a reference is given.
    """
    rules = [
        AlertRule("feature_drift", "drifted", "==", True),
        AlertRule("feature_psi_major", "psi", ">", PSI_MAJOR, severity="critical"),
        AlertRule("score_drift", "psi", ">=", PSI_MODERATE, feature="score", severity="critical"),
    ]
    if reference_pr_auc is not None:
        rules.append(
            AlertRule("pr_auc_drop", "pr_auc", "<", reference_pr_auc - max_pr_auc_drop, severity="critical")
        )
    return rules


def evaluate_alerts(report: pd.DataFrame, rules: Sequence[AlertRule] | None = None) -> pd.DataFrame:
    """The alerts that fire on a report (drift report, windowed report or performance table).

    Rules whose ``metric`` is not a column of ``report`` (or that name a
    ``feature`` when the report has none) are skipped, so one rule set serves
    every kind of report. Missing values never fire.

    Returns
    -------
    pandas.DataFrame
        One row per fired alert: ``rule``, ``severity``, ``window`` and ``feature``
        (when the report has them), ``metric``, ``value``, ``op`` and ``threshold``.

    Examples
    --------
    >>> report = pd.DataFrame({"feature": ["age", "score"], "psi": [0.02, 0.3], "drifted": [False, True]})
    >>> evaluate_alerts(report)["rule"].tolist()
    ['feature_drift', 'feature_psi_major', 'score_drift']
    """
    rules = default_alert_rules() if rules is None else rules
    context = [c for c in ("window", "feature") if c in report.columns]
    fired = []
    for rule in rules:
        if rule.metric not in report.columns or (
            rule.feature is not None and "feature" not in report.columns
        ):
            continue
        rows = report if rule.feature is None else report[report["feature"] == rule.feature]
        values = rows[rule.metric]
        hits = rows[values.notna() & _COMPARE[rule.op](values, rule.threshold)]
        if len(hits):
            fired.append(
                hits[context].assign(
                    rule=rule.name,
                    severity=rule.severity,
                    metric=rule.metric,
                    value=hits[rule.metric].astype(float),
                    op=rule.op,
                    threshold=float(rule.threshold),
                )
            )
    columns = ["rule", "severity", *context, "metric", "value", "op", "threshold"]
    if not fired:
        return pd.DataFrame(columns=columns)
    return pd.concat(fired, ignore_index=True)[columns]


# -- one month, as `mlsd monitor` shows it ----------------------------------------------

MONITORED_NUMERIC = (
    "amount", "age", "revolving_utilization", "debt_ratio", "monthly_income", "open_credit_lines",
    "real_estate_loans", "dependents", "late_30_59", "late_60_89", "late_90",
)  # fmt: skip
MONITORED_CATEGORICAL = ("channel", "purpose", "region", "term_months")


class MonitoringError(MLSDError, ValueError):
    """The data a monitoring report needs is not there (say which, and what to load)."""


@dataclass
class MonthReport:
    """Drift of one month against a reference window, performance so far, and fired alerts."""

    month: str
    reference: tuple[str, str]
    drift: pd.DataFrame
    performance: pd.DataFrame
    alerts: pd.DataFrame


def monitor_month(
    conn: psycopg2.extensions.connection,
    month: str,
    *,
    reference: tuple[str, str] = ("2024-01", "2024-12"),
    model_name: str | None = None,
    rule: DriftRule | None = None,
) -> MonthReport:
    """Compare one month of gold features (and logged scores) with a reference window.

    Parameters
    ----------
    conn : psycopg2 connection
        The course database with ``gold.application_features``.
    month : str
        ``YYYY-MM`` to check.
    reference : (str, str)
        First and last month of the reference window (inclusive), e.g. the training months.
    model_name : str, optional
        When given and the prediction log holds its scores, the score is monitored
        too and performance over time is computed from the labels known so far.
    rule : DriftRule, optional
        When to call a feature drifted (default :class:`DriftRule`).
    """
    from mlsd.features import gold_features

    start, end = reference
    months = pd.period_range(start, end, freq="M").strftime("%Y-%m").tolist()
    ref = gold_features(conn, month=months)
    cur = gold_features(conn, month=month)
    if ref.empty or cur.empty:
        missing = "the reference window" if ref.empty else month
        raise MonitoringError(
            f"gold.application_features has no rows for {missing}: load the data or pick other months."
        )
    numeric, categorical = list(MONITORED_NUMERIC), list(MONITORED_CATEGORICAL)
    performance = pd.DataFrame()
    from mlsd.db import read_sql

    has_log = read_sql(conn, "SELECT to_regclass(%s) IS NOT NULL", (PREDICTION_LOG,)).iloc[0, 0]
    if model_name is not None and has_log:
        scores = read_predictions(conn, model_name=model_name)
        if not scores.empty:
            latest = scores.sort_values("predicted_at").drop_duplicates("application_id", keep="last")
            by_id = latest.set_index("application_id")["score"]
            ref = ref.assign(score=ref["application_id"].map(by_id))
            cur = cur.assign(score=cur["application_id"].map(by_id))
            if ref["score"].notna().any() and cur["score"].notna().any():
                numeric.append("score")
            performance = read_performance_over_time(conn, model_name=model_name)
    for frame in (ref, cur):
        # a term is a category; going through Int64 keeps "36" from becoming "36.0" when NULLs exist
        frame["term_months"] = pd.to_numeric(frame["term_months"]).astype("Int64").astype("string")
    profile = ReferenceProfile.fit(ref, numeric=numeric, categorical=categorical)
    drift = profile.compare(cur, rule=rule)
    alerts = evaluate_alerts(drift, default_alert_rules())
    return MonthReport(month, (start, end), drift, performance, alerts)
