"""SHAP figures: the beeswarm and the waterfall, drawn through shap on pyplot figures."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING

from mlsd.explain._shap import (
    _RISK_UNITS,
    _check_explanation,
    _check_row,
    _quiet,
    _scale,
    _shap,
    aggregate_by_source,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _pyplot():
    """matplotlib's pyplot (about a second to import), loaded with the first figure: shap draws on it."""
    import matplotlib.pyplot as plt

    return plt


@contextlib.contextmanager
def _pyplot_figure() -> Iterator[Figure]:
    """A new current pyplot figure for shap's plots, closed afterwards so notebooks show it once.

    shap's plots draw on pyplot's current figure and switch interactive mode off; the
    previous mode is restored. The closed figure still displays when returned from a cell.
    """
    plt = _pyplot()
    interactive = plt.isinteractive()
    fig = plt.figure()
    try:
        yield fig
    finally:
        plt.interactive(interactive)
        plt.close(fig)


def _tight(fig: Figure) -> None:
    """Fit long feature names inside the figure (shap leaves them to ``bbox_inches="tight"``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "not compatible with tight_layout" for some axes
        fig.tight_layout()


def beeswarm(explanation, max_display: int = 12, *, group_by_source: bool = False) -> Figure:
    """The SHAP beeswarm: one dot per row and feature, coloured by the feature's value.

    Parameters
    ----------
    explanation : shap.Explanation
        From :func:`explain`.
    max_display : int
        Features shown, most important first; the rest are summed into one row.
    group_by_source : bool
        Plot raw columns (:func:`aggregate_by_source`); a column made of several model
        features (one-hot) has no single value to colour by and is drawn grey.

    Returns
    -------
    matplotlib.figure.Figure
    """
    _check_explanation(explanation)
    if group_by_source:
        explanation = aggregate_by_source(explanation)
    shap = _shap()
    with _quiet(), _pyplot_figure() as fig:
        rows = min(max_display, len(explanation.feature_names))
        fig.set_size_inches(8, 0.4 * rows + 1.5)
        ax = fig.gca()
        with warnings.catch_warnings():  # a grouped one-hot column has no values: nothing to colour
            warnings.filterwarnings("ignore", "All-NaN slice encountered", RuntimeWarning)
            shap.plots.beeswarm(explanation, max_display=max_display, show=False, ax=ax, plot_size=None)
        scale = _scale(explanation)
        direction = "higher predicted risk" if scale in _RISK_UNITS else f"higher {scale}"
        ax.set_xlabel(f"SHAP value ({scale}); right = {direction}")
        _tight(fig)
    return fig


def waterfall(explanation, row: int, *, max_display: int = 12, group_by_source: bool = False) -> Figure:
    """How one row's prediction is built up from the base value, feature by feature.

    Parameters
    ----------
    explanation : shap.Explanation
        From :func:`explain`.
    row : int
        Position of the row in the explanation (0 = the first row of ``X``).
    max_display : int
        Features shown; the smallest contributions are summed into one bar.
    group_by_source : bool
        One bar per raw column (:func:`aggregate_by_source`).

    Returns
    -------
    matplotlib.figure.Figure
        Labels show readable values (``display_data``): the raw value, ``missing``, or
        0/1 for indicators.
    """
    _check_explanation(explanation)
    position = _check_row(explanation, row)
    if group_by_source:
        explanation = aggregate_by_source(explanation)
    shap = _shap()
    with _quiet(), _pyplot_figure() as fig:
        shap.plots.waterfall(explanation[position], max_display=max_display, show=False)
        fig.suptitle(f"Row {position}: contributions in {_scale(explanation)}", fontsize="medium")
        _tight(fig)
    return fig
