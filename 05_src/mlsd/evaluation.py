"""Evaluate a credit-risk classifier the way production needs it.

Accuracy says little when about 7% of loans default. This module gathers what the
course uses instead:

* **metrics for imbalanced problems**: :func:`classification_metrics` (PR-AUC first);
* **thresholds from costs**: :func:`threshold_by_cost` and :func:`cost_curve`;
* **calibration**: :func:`calibration_table`, :func:`expected_calibration_error`,
  :func:`calibration_figure` and :func:`calibrate`;
* **slices**: :func:`slice_metrics` finds the group the model serves worst, :func:`age_band`;
* **baselines** ("manual before ML"): :class:`RandomBaseline`, :class:`MajorityBaseline`,
  :class:`RuleScorecard`, all scikit-learn classifiers;
* **behavioural tests** in the style of Made With ML: :func:`invariance_test`,
  :func:`directional_test`, :func:`minimum_functionality_test`.

Scores are the predicted probability of the positive class (``serious_dlq = 1``);
a case is flagged when ``score >= threshold``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import (
    average_precision_score,
    balanced_accuracy_score,
    brier_score_loss,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

from mlsd._validation import check_columns

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _figure(**kwargs) -> Figure:
    """A matplotlib figure; matplotlib (about a second to import) loads on the first one drawn."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


__all__ = [
    "BehaviouralResult",
    "MajorityBaseline",
    "RandomBaseline",
    "RuleScorecard",
    "SCORECARD_RULES",
    "age_band",
    "calibrate",
    "calibration_figure",
    "calibration_table",
    "classification_metrics",
    "cost_curve",
    "directional_test",
    "expected_calibration_error",
    "invariance_test",
    "minimum_functionality_test",
    "slice_metrics",
    "threshold_by_cost",
]


# -- input checks ----------------------------------------------------------------------


def _check_binary(y_true, y_score) -> tuple[np.ndarray, np.ndarray]:
    """Validate labels (0/1) and scores (probabilities) and return them as arrays."""
    y = np.asarray(y_true)
    s = np.asarray(y_score, dtype=float)
    if y.ndim != 1 or s.ndim != 1:
        raise ValueError(f"y_true and y_score must be one-dimensional, got shapes {y.shape} and {s.shape}.")
    if len(y) != len(s):
        raise ValueError(f"y_true has {len(y)} values but y_score has {len(s)}: pass one score per label.")
    if len(y) == 0:
        raise ValueError("y_true is empty: there is nothing to evaluate.")
    if pd.isna(y).any() or np.isnan(s).any():
        raise ValueError("y_true or y_score contains missing values: drop unlabelled rows before evaluating.")
    if not np.isin(y, [0, 1]).all():
        raise ValueError(f"y_true must hold 0/1 labels, found {sorted(set(np.unique(y).tolist()))[:5]}.")
    if (s < 0).any() or (s > 1).any():
        raise ValueError("y_score must be probabilities in [0, 1]: use predict_proba(X)[:, 1].")
    return y.astype(int), s


def _both_classes(y: np.ndarray) -> bool:
    return 0 < y.sum() < len(y)


# -- metrics ---------------------------------------------------------------------------


def classification_metrics(y_true, y_score, threshold: float = 0.5) -> pd.Series:
    """Metrics for an imbalanced binary problem, from labels and scores.

    Parameters
    ----------
    y_true : array-like of 0/1
        Observed labels.
    y_score : array-like of float
        Predicted probability of the positive class.
    threshold : float
        A case is predicted positive when ``score >= threshold``; used by the
        threshold metrics (F1, precision, recall, balanced accuracy).

    Returns
    -------
    pandas.Series
        ``n``, ``positives``, ``positive_rate`` (share of positive labels),
        ``predicted_positive_rate`` (share flagged), ``pr_auc`` (average precision),
        ``roc_auc``, ``f1``, ``precision``, ``recall``, ``balanced_accuracy``,
        ``log_loss`` and ``brier``.

    Notes
    -----
    When ``y_true`` holds a single class the ranking metrics are undefined:
    ``pr_auc`` and ``roc_auc`` are NaN (no exception), the other metrics are
    still computed. Compare ``pr_auc`` with ``positive_rate``: that is the
    PR-AUC of a random ranking.

    Examples
    --------
    >>> m = classification_metrics([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9])
    >>> float(m["roc_auc"]), float(m["recall"]), float(m["positive_rate"])
    (0.75, 0.5, 0.5)
    """
    y, s = _check_binary(y_true, y_score)
    pred = (s >= threshold).astype(int)
    ranked = _both_classes(y)
    return pd.Series(
        {
            "n": float(len(y)),
            "positives": float(y.sum()),
            "positive_rate": float(y.mean()),
            "predicted_positive_rate": float(pred.mean()),
            "pr_auc": float(average_precision_score(y, s)) if ranked else math.nan,
            "roc_auc": float(roc_auc_score(y, s)) if ranked else math.nan,
            "f1": float(f1_score(y, pred, zero_division=0)),
            "precision": float(precision_score(y, pred, zero_division=0)),
            "recall": float(recall_score(y, pred, zero_division=0)),
            "balanced_accuracy": float(balanced_accuracy_score(y, pred)) if ranked else math.nan,
            "log_loss": float(log_loss(y, s, labels=[0, 1])),
            "brier": float(brier_score_loss(y, s, pos_label=1)),
        },
        name="metrics",
    )


# -- thresholds from costs -------------------------------------------------------------


def threshold_by_cost(y_true, y_score, cost_fp: float, cost_fn: float) -> tuple[float, pd.DataFrame]:
    """Pick the threshold that minimises the total cost of errors.

    Every distinct score is a candidate threshold (flag ``score >= threshold``),
    plus ``inf`` (flag nobody). In lending, a false negative is a default that
    was approved (cost: the loss on the loan) and a false positive a good
    customer who was rejected (cost: the lost margin).

    Parameters
    ----------
    y_true, y_score : array-like
        Labels (0/1) and scores.
    cost_fp, cost_fn : float
        Cost of one false positive and of one false negative (non-negative).

    Returns
    -------
    best_threshold : float
        The lowest-cost threshold (the highest one if several tie).
    table : pandas.DataFrame
        One row per candidate: ``threshold``, ``tp``, ``fp``, ``fn``, ``tn``,
        ``flagged_rate``, ``cost`` and ``cost_per_case``.

    Notes
    -----
    For calibrated scores the Bayes-optimal threshold is
    ``cost_fp / (cost_fp + cost_fn)``: flag when the expected cost of approving
    (``p * cost_fn``) exceeds that of rejecting (``(1 - p) * cost_fp``).

    Examples
    --------
    >>> best, table = threshold_by_cost([0, 0, 1, 1], [0.1, 0.3, 0.35, 0.8], cost_fp=1, cost_fn=5)
    >>> best
    0.35
    """
    if cost_fp < 0 or cost_fn < 0:
        raise ValueError(f"Costs must be non-negative, got cost_fp={cost_fp}, cost_fn={cost_fn}.")
    y, s = _check_binary(y_true, y_score)
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    # Thresholds from high to low: at each distinct score, everyone scoring at least it is flagged.
    last_of_each = np.r_[np.flatnonzero(np.diff(s_sorted) != 0), len(s_sorted) - 1]
    tp = np.r_[0, np.cumsum(y_sorted)[last_of_each]]
    fp = np.r_[0, np.cumsum(1 - y_sorted)[last_of_each]]
    positives, n = y.sum(), len(y)
    table = pd.DataFrame({"threshold": np.r_[np.inf, s_sorted[last_of_each]], "tp": tp, "fp": fp})
    table["fn"] = positives - table["tp"]
    table["tn"] = (n - positives) - table["fp"]
    table["flagged_rate"] = (table["tp"] + table["fp"]) / n
    table["cost"] = cost_fp * table["fp"] + cost_fn * table["fn"]
    table["cost_per_case"] = table["cost"] / n
    best = float(table.loc[table["cost"].idxmin(), "threshold"])
    return best, table.sort_values("threshold", ignore_index=True)


def cost_curve(table: pd.DataFrame, best: float | None = None) -> Figure:
    """Plot cost per case against the threshold (the ``table`` of :func:`threshold_by_cost`).

    Parameters
    ----------
    table : pandas.DataFrame
        With ``threshold`` and ``cost_per_case`` columns.
    best : float, optional
        Threshold to mark with a vertical line; the cheapest one when omitted.

    Returns
    -------
    matplotlib.figure.Figure
    """
    missing = {"threshold", "cost_per_case"} - set(table.columns)
    if missing:
        raise ValueError(f"table lacks {sorted(missing)}: pass the table returned by threshold_by_cost.")
    finite = table[np.isfinite(table["threshold"])]
    if best is None:
        best = float(table.loc[table["cost_per_case"].idxmin(), "threshold"])
    fig = _figure(figsize=(6, 4))
    ax = fig.subplots()
    ax.plot(finite["threshold"], finite["cost_per_case"], drawstyle="steps-post")
    if np.isfinite(best):
        ax.axvline(best, color="tab:red", linestyle="--", label=f"lowest cost at {best:.3f}")
        ax.legend()
    ax.set(xlabel="threshold (flag score >= threshold)", ylabel="expected cost per case", title="Cost curve")
    return fig


# -- calibration -----------------------------------------------------------------------


def _bin_scores(s: np.ndarray, n_bins: int, strategy: str) -> tuple[np.ndarray, np.ndarray]:
    """Bin edges and the bin index of every score; bins are right-closed."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}.")
    if strategy == "quantile":
        edges = np.unique(np.quantile(s, np.linspace(0, 1, n_bins + 1)))
    elif strategy == "uniform":
        edges = np.linspace(0, 1, n_bins + 1)
    else:
        raise ValueError(f"strategy must be 'quantile' or 'uniform', got {strategy!r}.")
    index = np.searchsorted(edges[1:-1], s, side="left")
    return edges, index


def calibration_table(y_true, y_score, n_bins: int = 10, strategy: str = "quantile") -> pd.DataFrame:
    """Observed positive rate against the mean score, bin by bin.

    Parameters
    ----------
    y_true, y_score : array-like
        Labels (0/1) and scores.
    n_bins : int
        Number of bins (fewer when quantile edges coincide).
    strategy : {"quantile", "uniform"}
        Equal-count bins (default) or equal-width bins on [0, 1].

    Returns
    -------
    pandas.DataFrame
        One row per non-empty bin: ``bin``, ``lower``, ``upper``, ``n``,
        ``positives``, ``mean_score``, ``observed_rate`` and ``gap``
        (observed minus predicted; positive means the model under-predicts risk).

    Examples
    --------
    >>> t = calibration_table([0, 0, 1, 1], [0.1, 0.2, 0.7, 0.9], n_bins=2)
    >>> t[["n", "mean_score", "observed_rate"]].round(2).to_numpy().tolist()
    [[2.0, 0.15, 0.0], [2.0, 0.8, 1.0]]
    """
    y, s = _check_binary(y_true, y_score)
    edges, index = _bin_scores(s, n_bins, strategy)
    frame = pd.DataFrame({"bin": index, "y": y, "s": s})
    table = frame.groupby("bin").agg(n=("y", "size"), positives=("y", "sum"), mean_score=("s", "mean"))
    table = table.astype(float).reset_index()
    table.insert(1, "lower", edges[table["bin"]])
    table.insert(2, "upper", edges[table["bin"] + 1])
    table["observed_rate"] = table["positives"] / table["n"]
    table["gap"] = table["observed_rate"] - table["mean_score"]
    return table


def expected_calibration_error(y_true, y_score, n_bins: int = 10, strategy: str = "uniform") -> float:
    """Expected calibration error: the mean ``|observed - predicted|`` over bins, weighted by bin size.

    Examples
    --------
    >>> round(expected_calibration_error([0, 0, 1, 1], [0.1, 0.2, 0.7, 0.9], n_bins=2), 3)
    0.175
    """
    table = calibration_table(y_true, y_score, n_bins=n_bins, strategy=strategy)
    return float((table["n"] * table["gap"].abs()).sum() / table["n"].sum())


def calibration_figure(
    y_true, y_score, n_bins: int = 10, strategy: str = "quantile", *, log_scale: bool = False
) -> Figure:
    """Reliability diagram: observed rate against mean score, with the score histogram below.

    Parameters
    ----------
    y_true : array-like
        Labels (0/1).
    y_score : array-like or mapping of name -> array-like
        Scores of one model, or several (e.g. ``{"raw": s, "isotonic": s_cal}``) to compare.
    n_bins, strategy
        As in :func:`calibration_table`.
    log_scale : bool
        Log axes, useful when most scores are small (as with a 7% positive rate).

    Returns
    -------
    matplotlib.figure.Figure
    """
    curves = dict(y_score) if isinstance(y_score, Mapping) else {"model": y_score}
    fig = _figure(figsize=(8.5, 6), layout="constrained")
    ax, hist = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfectly calibrated")
    for name, scores in curves.items():
        table = calibration_table(y_true, scores, n_bins=n_bins, strategy=strategy)
        ece = expected_calibration_error(y_true, scores, n_bins=n_bins, strategy=strategy)
        ax.plot(table["mean_score"], table["observed_rate"], marker="o", label=f"{name} (ECE {ece:.3f})")
        hist.hist(np.asarray(scores, dtype=float), bins=50, range=(0, 1), histtype="step", label=name)
    if log_scale:
        ax.set(xscale="log", yscale="log")
    ax.set(ylabel="observed positive rate", title="Calibration: observed rate against mean score, per bin")
    hist.set(xlabel="predicted probability (mean score of a bin, above)", ylabel="rows", title="Scores")
    for panel in (ax, hist):  # beside the panels, where no curve runs under them
        panel.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1))
    return fig


def calibrate(
    model, X, y, method: str = "isotonic", cv: int | str | Any = "prefit"
) -> CalibratedClassifierCV:
    """Fit a calibrator on top of a classifier.

    Parameters
    ----------
    model : classifier
        With ``predict_proba``.
    X, y
        With ``cv="prefit"``: a held-out calibration set, not the training data.
        Otherwise the training data.
    method : {"isotonic", "sigmoid"}
        Isotonic regression (flexible, needs about a thousand rows or more) or
        Platt's sigmoid (two parameters, for small calibration sets).
    cv : "prefit", int or CV splitter
        ``"prefit"`` (default): ``model`` is already fitted; it is wrapped in
        :class:`sklearn.frozen.FrozenEstimator` (scikit-learn >= 1.6 replaced
        ``cv="prefit"`` with it) and only the calibrator learns from ``X, y``.
        Otherwise a clone of ``model`` is fitted and calibrated by cross-validation.

    Returns
    -------
    sklearn.calibration.CalibratedClassifierCV
        Fitted; use its ``predict_proba``.
    """
    if method not in {"isotonic", "sigmoid"}:
        raise ValueError(f"method must be 'isotonic' or 'sigmoid', got {method!r}.")
    if isinstance(cv, str) and cv == "prefit":
        if not hasattr(model, "classes_"):
            raise ValueError("cv='prefit' needs a fitted model: fit it first, or pass cv=5 to fit by CV.")
        return CalibratedClassifierCV(FrozenEstimator(model), method=method).fit(X, y)
    return CalibratedClassifierCV(clone(model), method=method, cv=cv).fit(X, y)


# -- slices ----------------------------------------------------------------------------


def age_band(age) -> pd.Series:
    """Age bands ``21-29``, ``30-39``, ..., ``60-69``, ``70+`` as an ordered categorical.

    Ages below 21 (impossible for an applicant) and missing ages give NaN.

    Examples
    --------
    >>> age_band([25, 30, 69, 70, 101, 12]).tolist()
    ['21-29', '30-39', '60-69', '70+', '70+', nan]
    """
    index = age.index if isinstance(age, pd.Series) else None
    values = pd.to_numeric(pd.Series(np.asarray(age), index=index), errors="coerce")
    labels = ["21-29", "30-39", "40-49", "50-59", "60-69", "70+"]
    edges = [21, 30, 40, 50, 60, 70, np.inf]
    return pd.cut(values, bins=edges, labels=labels, right=False).rename("age_band")


def _slice_masks(df: pd.DataFrame, by) -> dict[str, np.ndarray]:
    if isinstance(by, Mapping):
        masks = {}
        for name, mask in by.items():
            mask = np.asarray(mask, dtype=bool)
            if mask.shape != (len(df),):
                raise ValueError(f"Slice {name!r} has a mask of shape {mask.shape}, expected ({len(df)},).")
            masks[str(name)] = mask
        return masks
    columns = [by] if isinstance(by, str) else list(by)
    check_columns(df, columns, what="The frame", hint="Slice by its columns, or pass masks.")
    masks = {}
    for key, rows in df.groupby(columns, dropna=False, observed=True).indices.items():
        key = key if isinstance(key, tuple) else (key,)
        name = ", ".join(f"{c}={'<missing>' if pd.isna(v) else v}" for c, v in zip(columns, key, strict=True))
        mask = np.zeros(len(df), dtype=bool)
        mask[rows] = True
        masks[name] = mask
    return masks


def slice_metrics(
    df: pd.DataFrame,
    y_true_col: str,
    y_score_col: str,
    by: str | Sequence[str] | Mapping[str, Any],
    *,
    threshold: float = 0.5,
    min_size: int = 100,
    min_positives: int = 5,
    metric: str = "roc_auc",
) -> pd.DataFrame:
    """Metrics per slice, worst first, to find the group the model serves worst.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per scored, labelled case.
    y_true_col, y_score_col : str
        Label (0/1) and score columns.
    by : str, list of str, or mapping of name -> boolean mask
        Columns to group by (one slice per combination of values, missing values
        kept as ``<missing>``), or named masks (slices may overlap).
    threshold : float
        For ``recall`` and ``precision`` (flag ``score >= threshold``).
    min_size : int
        Slices with fewer rows, or without both classes, are marked ``small``
        and not ranked: their metrics are too noisy to call one "worst".
    min_positives : int
        Slices with fewer positives are ``small`` too: at a 7% default rate a slice
        of 100 rows may hold two defaults, and an AUC over two cases means little.
    metric : {"roc_auc", "pr_auc", "recall", "precision"}
        What "worst" means. ROC-AUC is the default because PR-AUC moves with a
        slice's positive rate and so is not comparable across slices.

    Returns
    -------
    pandas.DataFrame
        ``slice``, ``n``, ``positives``, ``positive_rate``, ``pr_auc``,
        ``roc_auc``, ``recall``, ``precision``, ``gap`` (slice ``metric`` minus
        the overall one), ``small`` and ``worst``; ranked slices first, sorted
        by ``metric`` from worst, then the small ones.
    """
    check_columns(df, [y_true_col, y_score_col], what="The frame", hint="Name its label and score columns.")
    if metric not in {"roc_auc", "pr_auc", "recall", "precision"}:
        raise ValueError(f"metric must be roc_auc, pr_auc, recall or precision, got {metric!r}.")
    y, s = _check_binary(df[y_true_col], df[y_score_col])
    overall = classification_metrics(y, s, threshold)[metric]
    rows = []
    for name, mask in _slice_masks(df, by).items():
        if not mask.any():
            continue
        m = classification_metrics(y[mask], s[mask], threshold)
        small = bool(m["n"] < min_size or m["positives"] < min_positives or not _both_classes(y[mask]))
        rows.append(
            {
                "slice": name,
                **m[["n", "positives", "positive_rate", "pr_auc", "roc_auc", "recall", "precision"]],
            }
            | {"small": small}
        )
    table = pd.DataFrame(rows)
    table[["n", "positives"]] = table[["n", "positives"]].astype(int)
    table["gap"] = table[metric] - overall
    table = table.sort_values(["small", metric], ascending=[True, True], ignore_index=True)
    table["worst"] = False
    if not table["small"].all():
        table.loc[0, "worst"] = True
    return table[[*table.columns.drop(["small", "worst"]), "small", "worst"]]


# -- baselines -------------------------------------------------------------------------


class _Baseline(ClassifierMixin, BaseEstimator):
    """Shared plumbing: ``fit`` records the classes, ``predict`` thresholds ``predict_proba``."""

    threshold = 0.5

    def fit(self, X, y):
        classes = np.unique(np.asarray(y))
        if len(classes) != 2:
            raise ValueError(
                f"{type(self).__name__} is a binary classifier; y has classes {classes.tolist()}."
            )
        self.classes_ = classes
        return self

    def _positive_score(self, X) -> np.ndarray:
        raise NotImplementedError

    def predict_proba(self, X) -> np.ndarray:
        """Columns ``[P(classes_[0]), P(classes_[1])]``."""
        if not hasattr(self, "classes_"):
            raise ValueError(f"This {type(self).__name__} is not fitted yet: call fit(X, y) first.")
        score = self._positive_score(X)
        return np.column_stack([1 - score, score])

    def predict(self, X) -> np.ndarray:
        """``classes_[1]`` where the positive score is at least ``threshold``."""
        return self.classes_[(self.predict_proba(X)[:, 1] >= self.threshold).astype(int)]


class RandomBaseline(_Baseline):
    """Scores drawn uniformly at random: the floor every model must beat (ROC-AUC about 0.5).

    Parameters
    ----------
    random_state : int, optional
        The same ``random_state`` gives the same scores for the same number of rows.

    Examples
    --------
    >>> model = RandomBaseline(random_state=0).fit([[0], [1]], [0, 1])
    >>> model.predict_proba([[0], [1], [2]]).shape
    (3, 2)
    """

    def __init__(self, random_state: int | None = None):
        self.random_state = random_state

    def _positive_score(self, X) -> np.ndarray:
        return np.random.default_rng(self.random_state).uniform(size=len(X))


class MajorityBaseline(_Baseline):
    """Scores every case with the training positive rate (the prior), predicts the majority class.

    Its ROC-AUC is 0.5 and its PR-AUC equals the positive rate; its log loss is
    the entropy of the labels, the bar for a model's probabilities. Like
    ``sklearn.dummy.DummyClassifier(strategy="prior")``.

    Examples
    --------
    >>> model = MajorityBaseline().fit([[0]] * 4, [0, 0, 0, 1])
    >>> model.predict_proba([[5]]).tolist(), model.predict([[5]]).tolist()
    ([[0.75, 0.25]], [0])
    """

    def fit(self, X, y):
        super().fit(X, y)
        self.prior_ = float(np.mean(np.asarray(y) == self.classes_[1]))
        return self

    def _positive_score(self, X) -> np.ndarray:
        return np.full(len(X), self.prior_)


#: Default points of :class:`RuleScorecard`: (column, operator, cut, points).
SCORECARD_RULES: tuple[tuple[str, str, float, int], ...] = (
    ("late_90", ">=", 1, 3),  # any 90+ days late: the strongest warning sign
    ("late_60_89", ">=", 1, 2),
    ("late_30_59", ">=", 1, 1),
    ("revolving_utilization", ">=", 0.8, 2),  # credit lines nearly maxed out
    ("debt_ratio", ">=", 0.5, 1),  # half of income or more goes to debt
    ("age", "<", 30, 1),  # young applicants default more often
)

_OPS: dict[str, Callable] = {
    ">": np.greater,
    ">=": np.greater_equal,
    "<": np.less,
    "<=": np.less_equal,
    "==": np.equal,
}


class RuleScorecard(_Baseline):
    """A hand-written points scorecard: what a credit analyst would write before any ML.

    Each rule ``(column, operator, cut, points)`` adds its points when the
    applicant meets it; the score is the points earned divided by the maximum
    possible, so it lies in [0, 1] and ranks applicants (it is not a calibrated
    probability). Missing values earn no points. The default rules
    (``SCORECARD_RULES``) give points for late payments (more for longer
    delays; the 96/98 sentinel codes count as late), revolving utilisation of
    80% or more, a debt ratio of 0.5 or more, and age under 30.

    ``fit`` learns nothing: it records ``classes_`` so that the scorecard works in
    pipelines and ``cross_val_score`` like any classifier.

    Parameters
    ----------
    rules : tuple of (str, str, float, int), optional
        The points table; ``SCORECARD_RULES`` when omitted.
    threshold : float
        ``predict`` flags a score of at least ``threshold``.

    Examples
    --------
    >>> X = pd.DataFrame({"late_90": [0, 2], "late_60_89": [0, 0], "late_30_59": [0, 1],
    ...                   "revolving_utilization": [0.1, 0.95], "debt_ratio": [0.2, 0.7], "age": [45, 24]})
    >>> RuleScorecard().fit(X, [0, 1]).predict_proba(X)[:, 1].tolist()
    [0.0, 0.8]
    """

    def __init__(self, rules: tuple | None = None, threshold: float = 0.5):
        self.rules = rules
        self.threshold = threshold

    def _positive_score(self, X) -> np.ndarray:
        if not isinstance(X, pd.DataFrame):
            raise ValueError("RuleScorecard needs a DataFrame with named columns, not an array.")
        rules = self.rules if self.rules is not None else SCORECARD_RULES
        missing = sorted({column for column, *_ in rules} - set(X.columns))
        if missing:
            raise ValueError(f"RuleScorecard needs columns {missing}, which X lacks.")
        points = np.zeros(len(X))
        for column, op, cut, value in rules:
            if op not in _OPS:
                raise ValueError(f"Unknown operator {op!r} in rule for {column!r}; use one of {list(_OPS)}.")
            values = pd.to_numeric(X[column], errors="coerce").to_numpy(dtype=float)
            points += np.where(_OPS[op](values, cut), value, 0)  # NaN compares False: no points
        return points / sum(value for *_, value in rules)


# -- behavioural tests -----------------------------------------------------------------


@dataclass(frozen=True)
class BehaviouralResult:
    """Outcome of a behavioural test; ``bool(result)`` is ``passed``.

    Attributes
    ----------
    test : str
        ``"invariance"``, ``"directional"`` or ``"minimum_functionality"``.
    column : str or None
        The perturbed column.
    passed : bool
        No row failed.
    n : int
        Rows checked (rows x perturbations for invariance).
    n_failed : int
        Rows that failed.
    max_change : float
        Largest absolute score change (invariance, directional), or the largest
        distance between a failing score and its expected label (minimum functionality).
    failed_index : list
        Index labels of the failing rows of ``X`` / ``cases``.
    """

    test: str
    column: str | None
    passed: bool
    n: int
    n_failed: int
    max_change: float
    failed_index: list = field(default_factory=list, repr=False)

    def __bool__(self) -> bool:
        return self.passed


def _score(model, X: pd.DataFrame) -> np.ndarray:
    """Positive-class scores from a classifier, or from a callable ``f(X) -> scores``."""
    if hasattr(model, "predict_proba"):
        return np.asarray(model.predict_proba(X))[:, 1].astype(float)
    if callable(model):
        return np.asarray(model(X), dtype=float)
    raise ValueError("model must have predict_proba or be a callable returning scores.")


def _check_column(X: pd.DataFrame, column: str) -> None:
    if not isinstance(X, pd.DataFrame):
        raise ValueError("X must be a DataFrame so that a column can be perturbed.")
    if column not in X.columns:
        raise ValueError(f"Column {column!r} is not in X; available: {list(X.columns)}.")


def invariance_test(
    model, X: pd.DataFrame, column: str, values: Sequence, *, tol: float = 1e-6
) -> BehaviouralResult:
    """Changing a field that should not matter must not move the score.

    Every row is re-scored with ``column`` set to each of ``values`` in turn
    (e.g. another ``application_id``, or another ``channel`` if the business
    decides channel must not affect the decision).

    Parameters
    ----------
    model : classifier or callable
        Scored with ``predict_proba(X)[:, 1]`` (or ``model(X)``).
    X : pandas.DataFrame
        Realistic rows to perturb.
    column : str
        The field that should not matter.
    values : sequence
        Replacement values.
    tol : float
        Largest allowed absolute change of the score.

    Returns
    -------
    BehaviouralResult
        A row fails when any replacement moves its score by more than ``tol``.
    """
    _check_column(X, column)
    if len(values) == 0:
        raise ValueError("values is empty: give at least one replacement value.")
    base = _score(model, X)
    changes = np.column_stack([np.abs(_score(model, X.assign(**{column: v})) - base) for v in values])
    failed = (changes > tol).any(axis=1)
    return BehaviouralResult(
        "invariance",
        column,
        not failed.any(),
        changes.size,
        int(failed.sum()),
        float(changes.max()),
        X.index[failed].tolist(),
    )


def directional_test(
    model,
    X: pd.DataFrame,
    column: str,
    delta: float | None = None,
    *,
    values: Sequence | None = None,
    expect: str = "increase",
    tol: float = 0.0,
) -> BehaviouralResult:
    """Changing a field in a known direction must move the score the expected way.

    For example, one more 30-59-day late payment must not lower the risk score:
    ``directional_test(model, X, "late_30_59", delta=1, expect="increase")``.

    Parameters
    ----------
    model : classifier or callable
        Scored with ``predict_proba(X)[:, 1]`` (or ``model(X)``).
    X : pandas.DataFrame
        Rows to perturb.
    column : str
        The field to change.
    delta : float, optional
        Added to the column; give either ``delta`` or ``values``.
    values : scalar or array-like, optional
        New values for the column (one, or one per row).
    expect : {"increase", "decrease"}
        Direction the score may move. "increase" fails a row whose score drops by
        more than ``tol`` (an unchanged score passes: risk must not go *down*).
    tol : float
        Allowed movement in the wrong direction.

    Returns
    -------
    BehaviouralResult
    """
    _check_column(X, column)
    if expect not in {"increase", "decrease"}:
        raise ValueError(f"expect must be 'increase' or 'decrease', got {expect!r}.")
    if (delta is None) == (values is None):
        raise ValueError("Give exactly one of delta (added to the column) or values (replacing it).")
    new = X[column] + delta if delta is not None else values
    change = _score(model, X.assign(**{column: new})) - _score(model, X)
    wrong_way = -change if expect == "increase" else change
    failed = wrong_way > tol
    return BehaviouralResult(
        "directional",
        column,
        not failed.any(),
        len(X),
        int(failed.sum()),
        float(np.abs(change).max()),
        X.index[failed].tolist(),
    )


def minimum_functionality_test(
    model, cases: pd.DataFrame, expected, *, threshold: float = 0.5
) -> BehaviouralResult:
    """Obvious cases must be classified right (a textbook bad risk is flagged, a spotless one is not).

    Parameters
    ----------
    model : classifier or callable
        Scored with ``predict_proba(cases)[:, 1]`` (or ``model(cases)``).
    cases : pandas.DataFrame
        Hand-written cases.
    expected : array-like of 0/1
        The right decision for each case.
    threshold : float
        A case is flagged when its score is at least ``threshold``.

    Returns
    -------
    BehaviouralResult
        ``max_change`` is the largest ``|score - expected|`` among failing cases.
    """
    expected = np.asarray(expected)
    if len(expected) != len(cases):
        raise ValueError(f"expected has {len(expected)} labels for {len(cases)} cases.")
    if not np.isin(expected, [0, 1]).all():
        raise ValueError("expected must hold 0/1 labels.")
    score = _score(model, cases)
    failed = (score >= threshold).astype(int) != expected
    worst = float(np.abs(score - expected)[failed].max()) if failed.any() else 0.0
    return BehaviouralResult(
        "minimum_functionality",
        None,
        not failed.any(),
        len(cases),
        int(failed.sum()),
        worst,
        cases.index[failed].tolist(),
    )
