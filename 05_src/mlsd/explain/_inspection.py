"""Model-agnostic checks on the raw columns: permutation importance, partial dependence, ICE."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.inspection import PartialDependenceDisplay, partial_dependence, permutation_importance

from mlsd._validation import check_columns
from mlsd.explain._inputs import _check_frame, _check_input_columns, _classes, _split

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _figure(**kwargs) -> Figure:
    """A matplotlib figure; matplotlib (about a second to import) loads on the first one drawn."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def permutation_importance_table(
    pipeline,
    X: pd.DataFrame,
    y,
    scoring: str = "average_precision",
    n_repeats: int = 5,
    random_state: int | np.random.RandomState | None = 0,
) -> pd.DataFrame:
    """How much the score drops when one raw column is shuffled (the fitted pipeline, no refit).

    Shuffling a column breaks its link with the label while keeping its distribution;
    the drop in ``scoring`` on held-out data is the column's importance to *this* model.
    Columns the preprocessing drops score 0. Correlated columns share credit: shuffling
    one leaves the other to carry the signal.

    Parameters
    ----------
    pipeline : fitted Pipeline
        Preprocessing and model, applied to raw columns.
    X : pandas.DataFrame
        Raw held-out rows; only the columns the pipeline was fitted on are shuffled.
    y : array-like
        Their labels.
    scoring : str
        A scikit-learn scorer name; PR-AUC (``"average_precision"``) by default, the
        course's metric for rare positives.
    n_repeats : int
        Shuffles per column.
    random_state : int, RandomState or None
        Seed of the shuffles.

    Returns
    -------
    pandas.DataFrame
        ``feature``, ``importance_mean``, ``importance_std`` and ``rank``, largest drop
        first.
    """
    _split(pipeline)
    _check_frame(X)
    _check_input_columns(pipeline, X)
    y = np.asarray(y)
    if len(y) != len(X):
        raise ValueError(f"y has {len(y)} labels for {len(X)} rows of X: pass one label per row.")
    if int(n_repeats) != n_repeats or n_repeats < 1:
        raise ValueError(f"n_repeats must be a positive whole number, got {n_repeats!r}.")
    fitted_on = getattr(pipeline, "feature_names_in_", None)
    if fitted_on is not None:  # leave out columns the pipeline never saw (ids, the label)
        X = X[[str(c) for c in fitted_on]]
    result = permutation_importance(
        pipeline, X, y, scoring=scoring, n_repeats=int(n_repeats), random_state=random_state
    )
    table = pd.DataFrame(
        {
            "feature": [str(c) for c in X.columns],
            "importance_mean": result.importances_mean,
            "importance_std": result.importances_std,
        }
    )
    table = table.sort_values(["importance_mean", "feature"], ascending=[False, True], ignore_index=True)
    table["rank"] = table["importance_mean"].rank(method="min", ascending=False).astype(int)
    return table


def _is_categorical(X: pd.DataFrame, feature: str) -> bool:
    column = X[feature]
    return not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)


def _check_grid(grid_resolution: int, percentiles: tuple[float, float]) -> None:
    if int(grid_resolution) != grid_resolution or grid_resolution < 2:
        raise ValueError(f"grid_resolution must be a whole number >= 2, got {grid_resolution!r}.")
    low, high = percentiles
    if not 0 <= low < high <= 1:
        raise ValueError(f"percentiles must be (low, high) with 0 <= low < high <= 1, got {percentiles!r}.")


def _grid_values(X: pd.DataFrame, feature: str, grid_resolution: int, percentiles) -> np.ndarray:
    """Grid for a numeric column from its observed values: every unique value when there are fewer
    than ``grid_resolution``, else evenly spaced between the percentiles (scikit-learn's rule,
    except that missing values are left out instead of turning the whole grid into NaN)."""
    values = pd.to_numeric(X[feature], errors="coerce").dropna().to_numpy(dtype=float)
    if len(values) == 0:
        raise ValueError(f"{feature!r} has no observed values in X: there is nothing to vary.")
    unique = np.unique(values)
    if len(unique) < grid_resolution:
        return unique
    low, high = np.quantile(values, percentiles)
    if np.isclose(low, high):
        raise ValueError(
            f"The percentiles {percentiles} of {feature!r} are equal ({low:g}): widen them, e.g. (0, 1)."
        )
    return np.linspace(low, high, int(grid_resolution))


def partial_dependence_table(
    pipeline,
    X: pd.DataFrame,
    feature: str,
    *,
    grid_resolution: int = 20,
    percentiles: tuple[float, float] = (0.05, 0.95),
) -> pd.DataFrame:
    """The partial dependence of the prediction on one raw column, as a table.

    For each grid value, every row of ``X`` gets that value in ``feature`` (the other
    columns untouched) and the predictions are averaged: the model's average response
    to the column. It shows the model, not causation, and it averages away
    interactions (ICE lines, :func:`pdp_ice`, show them).

    Parameters
    ----------
    pipeline : fitted Pipeline
        Preprocessing and model.
    X : pandas.DataFrame
        Raw rows; the cost is ``len(X) x grid`` predictions, so sample large data.
    feature : str
        A column of ``X``; numeric columns get a grid between ``percentiles`` of their
        observed values (missing values are not a grid point), categorical ones every
        category.
    grid_resolution : int
        At most this many grid values (fewer when the column has fewer unique values).
    percentiles : (float, float)
        The grid's range for numeric columns, trimming the tails.

    Returns
    -------
    pandas.DataFrame
        ``feature``, ``value`` (grid value) and ``average_prediction`` (probability of
        the positive class for a classifier, the prediction for a regressor).
    """
    _split(pipeline)
    _check_frame(X)
    check_columns(X, [feature], what="X", hint="Choose the feature among them.")
    _check_input_columns(pipeline, X)
    _check_grid(grid_resolution, percentiles)
    categorical = _is_categorical(X, feature)
    result = partial_dependence(
        pipeline,
        X,
        [feature],
        kind="average",
        grid_resolution=int(grid_resolution),
        percentiles=percentiles,
        categorical_features=[feature] if categorical else None,
        custom_values=None
        if categorical
        else {feature: _grid_values(X, feature, grid_resolution, percentiles)},
    )
    return pd.DataFrame(
        {
            "feature": feature,
            "value": result["grid_values"][0],
            "average_prediction": np.asarray(result["average"])[0],
        }
    )


def pdp_ice(
    pipeline,
    X: pd.DataFrame,
    feature: str,
    kind: str = "both",
    *,
    n_ice: int = 50,
    grid_resolution: int = 20,
    percentiles: tuple[float, float] = (0.05, 0.95),
    random_state: int | np.random.RandomState | None = 0,
) -> Figure:
    """Partial dependence (average) and ICE (one line per row) of the prediction on a raw column.

    Parallel ICE lines mean the column acts the same way for everyone; lines that cross
    or fan out reveal interactions the average hides.

    Parameters
    ----------
    pipeline : fitted Pipeline
        Preprocessing and model.
    X : pandas.DataFrame
        Raw rows (the average uses all of them).
    feature : str
        A column of ``X``.
    kind : {"both", "average", "individual"}
        PD curve, ICE lines, or both. Categorical columns have no ICE lines: ``"both"``
        draws the average only and ``"individual"`` is an error.
    n_ice : int
        ICE lines drawn (a random sample of rows, for speed and legibility).
    grid_resolution, percentiles
        As for :func:`partial_dependence_table`.
    random_state : int, RandomState or None
        Seed of the ICE sample.

    Returns
    -------
    matplotlib.figure.Figure
    """
    _split(pipeline)
    _check_frame(X)
    check_columns(X, [feature], what="X", hint="Choose the feature among them.")
    _check_input_columns(pipeline, X)
    _check_grid(grid_resolution, percentiles)
    if kind not in ("both", "average", "individual"):
        raise ValueError(f"Unknown kind {kind!r}: use 'both', 'average' or 'individual'.")
    if int(n_ice) != n_ice or n_ice < 1:
        raise ValueError(f"n_ice must be a positive whole number, got {n_ice!r}.")
    categorical = _is_categorical(X, feature)
    if categorical and kind == "individual":
        raise ValueError(f"{feature!r} is categorical: ICE lines need a numeric column; use kind='average'.")
    if categorical:
        kind = "average"
    fig = _figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    display = PartialDependenceDisplay.from_estimator(
        pipeline,
        X,
        [feature],
        kind=kind,
        subsample=int(n_ice) if kind != "average" else None,
        random_state=random_state,
        grid_resolution=int(grid_resolution),
        percentiles=percentiles,
        categorical_features=[feature] if categorical else None,
        custom_values=None
        if categorical
        else {feature: _grid_values(X, feature, grid_resolution, percentiles)},
        ax=ax,
    )
    label = "predicted probability" if _classes(_split(pipeline)[1]) is not None else "prediction"
    for axis in np.ravel(display.axes_):
        if axis is not None:
            axis.set_ylabel(label)
    what = {"both": "PDP and ICE", "average": "Partial dependence", "individual": "ICE"}[kind]
    fig.suptitle(f"{what}: {feature}", fontsize="medium")
    return fig
