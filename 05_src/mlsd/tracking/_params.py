"""MLflow parameters from scikit-learn estimators, and the scorers runs are logged with (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

DEFAULT_SCORING: dict[str, str] = {"pr_auc": "average_precision", "roc_auc": "roc_auc"}
"""Metric name -> scikit-learn scorer. The first one is the main metric (PR-AUC: about 7% positives)."""

_PARAM_LENGTH = 250


def _holds_estimator(value) -> bool:
    if hasattr(value, "get_params") and not isinstance(value, type):
        return True
    if isinstance(value, (list, tuple)):
        return any(_holds_estimator(v) for v in value)
    return False


def _param_text(value) -> str:
    if callable(value) and hasattr(value, "__qualname__"):
        return f"{getattr(value, '__module__', '')}.{value.__qualname__}".lstrip(".")
    if isinstance(value, np.generic):
        value = value.item()
    return str(value)


def flatten_params(params: Mapping[str, Any], max_length: int = _PARAM_LENGTH) -> dict[str, str]:
    """Turn ``estimator.get_params(deep=True)`` into MLflow parameters (strings).

    Values that are estimators (or lists of them, like a pipeline's ``steps``) are
    dropped: their own parameters are already in the deep listing. Functions are
    named by module and name (not by their memory address, which changes every run),
    and long values are cut to ``max_length`` characters, ending in ``...``.

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn.linear_model import LogisticRegression
    >>> params = flatten_params(make_pipeline(StandardScaler(), LogisticRegression()).get_params())
    >>> params["logisticregression__C"], "steps" in params
    ('1.0', False)
    """
    out = {}
    for key, value in params.items():
        if _holds_estimator(value):
            continue
        text = _param_text(value)
        if len(text) > max_length:
            text = text[: max_length - 3] + "..."
        out[str(key)[:_PARAM_LENGTH]] = text
    return out


def _scoring(scoring: Mapping[str, Any] | None) -> dict[str, Any]:
    scoring = dict(DEFAULT_SCORING if scoring is None else scoring)
    if not scoring:
        raise ValueError(
            "scoring is empty: pass a mapping name -> scorer, e.g. {'pr_auc': 'average_precision'}."
        )
    return scoring
