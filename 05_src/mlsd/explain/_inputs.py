"""Checks on what the explain functions are given: a fitted pipeline, raw rows, a binary classifier."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import is_classifier
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from mlsd._validation import check_columns


def _split(pipeline) -> tuple[Any, Any]:
    """``(preprocessing or None, final estimator)`` of a fitted pipeline or a bare estimator."""
    if not hasattr(pipeline, "fit"):
        raise ValueError(f"Expected a fitted scikit-learn Pipeline, got {type(pipeline).__name__}.")
    try:
        check_is_fitted(pipeline)
    except NotFittedError:
        raise ValueError(
            f"The {type(pipeline).__name__} is not fitted: call .fit(X_train, y_train) before explaining it."
        ) from None
    if isinstance(pipeline, Pipeline):
        model = pipeline.steps[-1][1]
        if model is None or isinstance(model, str):
            raise ValueError("The pipeline's last step is 'passthrough': it needs an estimator to explain.")
        preprocessing = pipeline[:-1] if len(pipeline.steps) > 1 else None
        return preprocessing, model
    return None, pipeline


def _check_frame(X, what: str = "X") -> pd.DataFrame:
    if not isinstance(X, pd.DataFrame):
        raise ValueError(
            f"{what} must be a pandas DataFrame of the raw input columns, got {type(X).__name__}."
        )
    if len(X) == 0:
        raise ValueError(f"{what} has no rows: pass at least one row to explain.")
    return X


def _check_input_columns(pipeline, X: pd.DataFrame, what: str = "X") -> None:
    """Raise when ``X`` lacks a column the pipeline was fitted on."""
    expected = getattr(pipeline, "feature_names_in_", None)
    if expected is not None:
        check_columns(X, expected, what=what, hint="Pass the raw columns the pipeline was fitted on.")


def _classes(model) -> np.ndarray | None:
    if not is_classifier(model):
        return None
    classes = getattr(model, "classes_", None)
    if classes is None or len(classes) != 2:
        n = "unknown" if classes is None else len(classes)
        raise ValueError(
            f"Only binary classifiers (and regressors) can be explained here; the model has {n} classes."
        )
    return classes
