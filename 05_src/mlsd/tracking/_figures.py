"""Figures logged with runs (pure: arrays in, a matplotlib figure out)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from types import ModuleType

    from matplotlib.figure import Figure


def _figure(**kwargs) -> Figure:
    """A matplotlib figure; matplotlib (about a second to import) loads on the first one drawn."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def _sklearn_metrics() -> ModuleType:
    """scikit-learn's metrics, imported with the first figure: ``import mlsd.tracking`` stays light."""
    import sklearn.metrics

    return sklearn.metrics


def _calibration_figure(y_true, scores) -> Figure:
    """:func:`mlsd.evaluation.calibration_figure`; that module loads scikit-learn, so it is imported here."""
    from mlsd.evaluation import calibration_figure

    return calibration_figure(y_true, scores)


def pr_curve_figure(y_true, scores, title: str = "Precision-recall curve") -> Figure:
    """Precision-recall curve(s) with the positive rate as the no-skill line.

    Parameters
    ----------
    y_true : array-like of 0/1
        Labels.
    scores : array-like or mapping of name -> array-like
        Scores of one model, or of several to compare. Rows with a missing score
        (e.g. never in a test fold) are left out.
    title : str
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    metrics = _sklearn_metrics()
    y = np.asarray(y_true).astype(int)
    curves = dict(scores) if isinstance(scores, Mapping) else {"model": scores}
    fig = _figure(figsize=(6, 4.5))
    ax = fig.subplots()
    for name, values in curves.items():
        s = np.asarray(values, dtype=float)
        keep = ~np.isnan(s)
        precision, recall, _ = metrics.precision_recall_curve(y[keep], s[keep])
        ap = metrics.average_precision_score(y[keep], s[keep])
        ax.plot(recall, precision, drawstyle="steps-post", label=f"{name} (AP {ap:.3f})")
    ax.axhline(y.mean(), color="grey", linestyle=":", label=f"no skill ({y.mean():.3f})")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title=title)
    ax.legend(loc="upper right")
    return fig


def _figure_makers(figures) -> dict[str, Callable]:
    builtin = {
        "pr_curve": lambda y, s: pr_curve_figure(y, s, "Precision-recall, out-of-fold"),
        "calibration": _calibration_figure,
    }
    if isinstance(figures, Mapping):
        return dict(figures)
    unknown = [f for f in figures if f not in builtin]
    if unknown:
        raise ValueError(
            f"Unknown figure(s) {unknown}: use {list(builtin)} or a mapping name -> f(y, scores)."
        )
    return {name: builtin[name] for name in figures}
