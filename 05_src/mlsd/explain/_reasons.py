"""Reason codes: the features that pushed one row's risk up most, in words."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from mlsd.explain._shap import (
    _RISK_UNITS,
    _check_explanation,
    _check_row,
    _readable,
    _scale,
    _sources_of,
    aggregate_by_source,
)
from mlsd.explain._sources import MISSING_PREFIX, _bare


def _format_value(value: Any) -> str:
    value = _readable(value)
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return str(int(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return str(int(value)) if float(value).is_integer() else f"{value:.4g}"
    return str(value)


def _describe(name: str, source: str, value: Any) -> str:
    """``late_90 = 2``, ``monthly_income is missing``, ``channel = web``, ``channel is not web``."""
    name = _bare(name)
    shown = _format_value(value)
    if shown == "":
        return name
    if name == source:
        return f"{name} = {shown}"
    flag = shown in ("0", "1")
    if name == f"{MISSING_PREFIX}{source}" and flag:
        return f"{source} is missing" if shown == "1" else f"{source} is reported"
    if name.startswith(f"{source}_") and flag:
        category = name[len(source) + 1 :]
        return f"{source} = {category}" if shown == "1" else f"{source} is not {category}"
    return f"{name} = {shown}"


def _signed(amount: float, decimals: int) -> str:
    """``+0.80``; small amounts keep one significant digit (``+0.003``) instead of ``+0.00``."""
    return f"{amount:+.{decimals}f}" if abs(amount) >= 0.5 * 10**-decimals else f"{amount:+.1g}"


def _effect(amount: float, scale: str) -> str:
    if scale == "probability":
        return f"raises risk by {_signed(amount, 3)} in probability"
    if scale in _RISK_UNITS:
        return f"raises risk by {_signed(amount, 2)} {scale}"
    return f"raises the {scale} by {amount:+.3g}"


def reason_codes(
    explanation,
    row: int,
    top: int = 3,
    *,
    group_by_source: bool = False,
    sources: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """The features that pushed one row's risk up most: adverse-action reasons.

    A lender who declines an application owes the applicant its principal reasons. Here
    they are the features with the largest *positive* SHAP values for that row: they
    moved its score above the base value (the average over the background).

    Parameters
    ----------
    explanation : shap.Explanation
        From :func:`explain`.
    row : int
        Position of the row in the explanation.
    top : int
        At most this many reasons (fewer when fewer features raised the score).
    group_by_source : bool
        One reason per raw column (``channel = broker``) rather than per model feature.
    sources : mapping of str to str, optional
        Feature -> source (default: the explanation's own ``feature_sources``).

    Returns
    -------
    pandas.DataFrame
        ``rank``, ``feature``, ``source``, ``value`` (readable), ``shap`` (on the
        explanation's scale) and ``reason``, e.g.
        ``"late_90 = 2 raises risk by +0.80 log-odds"``; largest first.
    """
    _check_explanation(explanation)
    position = _check_row(explanation, row)
    if int(top) != top or top < 1:
        raise ValueError(f"top must be a positive whole number, got {top!r}.")
    mapping = _sources_of(explanation, sources)
    if group_by_source:
        explanation = aggregate_by_source(explanation, mapping)
        mapping = {n: n for n in explanation.feature_names}
    names = [str(n) for n in explanation.feature_names]
    values = np.asarray(explanation.values, dtype=float)[position]
    display = explanation.display_data if explanation.display_data is not None else explanation.data
    shown = np.asarray(display, dtype=object)[position] if display is not None else [None] * len(names)
    scale = _scale(explanation)
    order = [i for i in np.argsort(-values, kind="stable") if values[i] > 0][: int(top)]
    rows = []
    for rank, i in enumerate(order, start=1):
        description = _describe(names[i], mapping[names[i]], shown[i])
        rows.append(
            {
                "rank": rank,
                "feature": names[i],
                "source": mapping[names[i]],
                "value": _format_value(shown[i]),
                "shap": float(values[i]),
                "reason": f"{description} {_effect(float(values[i]), scale)}",
            }
        )
    return pd.DataFrame(rows, columns=["rank", "feature", "source", "value", "shap", "reason"])
