"""When a feature has drifted: :class:`DriftRule`, :class:`ReferenceProfile` and the reports built on them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlsd._validation import check_columns
from mlsd.monitoring._stats import (
    PSI_MAJOR,
    PSI_MODERATE,
    _category_counts,
    _chi2_categorical,
    _chi2_from_counts,
    _fit_categories,
    _js_from_counts,
    _ks,
    _lump,
    _n_kept,
    _numeric_counts,
    _numeric_cuts,
    _observed,
    _psi_from_counts,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _figure(**kwargs) -> Figure:
    """A matplotlib figure; matplotlib (about a second to import) loads on the first one drawn."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


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
    check_columns(report, ["feature", "psi"], what="The report frame")
    fig = _figure(figsize=(7, 4))
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
