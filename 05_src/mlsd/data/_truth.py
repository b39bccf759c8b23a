"""The ground-truth label model: P(serious_dlq = 1) as a logistic function of bureau features.

The generator draws every label from this model, applied to the bureau snapshot taken at the
application (the latest snapshot with ``pulled_at <= applied_at``), *before* any defect is
injected. The same functions are public so that later sessions can check explanations, drift
detectors and calibration against the truth rather than against another model.

The model, in the notation of the manifest::

    eta = intercept + sum_k coefficients[k] * f_k(x)      (plus drift terms, see ``ground_truth``)
    P(serious_dlq = 1 | x) = 1 / (1 + exp(-eta))

with the feature transforms ``f_k`` listed in :data:`TRANSFORMS`. Late counts and revolving
utilisation carry the largest effects, age is protective, and ``open_credit_lines`` and
``real_estate_loans`` have coefficient 0: they are noise, useful to check that an explanation
method gives them no importance.

Two scenarios change the model from their start month (see :mod:`mlsd.data._scenarios`):

- the **concept drift** replaces coefficients (:data:`CONCEPT_DRIFT_COEFFICIENTS`) and moves the
  intercept (:data:`CONCEPT_DRIFT_INTERCEPT_DELTA`): P(y | x) itself changes;
- the **label shift** draws applicants by their outcome, keeping every would-be defaulter and a
  would-be repayer with probability ``1 / LABEL_SHIFT_ODDS_RATIO``. P(x | y) is unchanged, and by
  Bayes' rule the probability of default of an applicant who *did* apply is the same logistic
  model with ``ln(LABEL_SHIFT_ODDS_RATIO)`` added to the intercept: that is what
  :func:`ground_truth` and :func:`true_probability` return for those months.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from mlsd.data._scenarios import active, month_number, resolve_scenarios
from mlsd.data._schema import LATE_COLUMNS, SENTINEL_CODES

__all__ = [
    "COEFFICIENTS",
    "CONCEPT_DRIFT_COEFFICIENTS",
    "CONCEPT_DRIFT_INTERCEPT_DELTA",
    "INTERCEPT",
    "LABEL_SHIFT_ODDS_RATIO",
    "TRANSFORMS",
    "TRUTH_INPUT_COLUMNS",
    "ground_truth",
    "ground_truth_spec",
    "true_probability",
    "truth_features",
]

UTIL_CAP = 1.5
LATE_CAPS = {"late_30_59": 6, "late_60_89": 4, "late_90": 4}
INCOME_REFERENCE = 5400.0
INCOME_CLIP = 2.0
DEBT_RATIO_CAP = 2.0
DEPENDENTS_CAP = 4
OPEN_LINES_CAP = 20
REAL_ESTATE_CAP = 5
AGE_CENTRE = 50.0
AGE_SCALE = 10.0

# The intercept and the drift deltas below were calibrated on about a million simulated drift-free
# applications, so that 6.7% of them default (GMSC's rate); the data tests check the rates.
INTERCEPT = -4.37
COEFFICIENTS: dict[str, float] = {
    "revolving_utilization": 2.4,
    "late_30_59": 0.7,
    "late_60_89": 1.1,
    "late_90": 1.2,
    "late_sentinel": 2.0,
    "age": -0.15,
    "monthly_income": -0.25,
    "income_missing": 0.1,
    "debt_ratio": 0.3,
    "dependents": 0.06,
    "open_credit_lines": 0.0,
    "real_estate_loans": 0.0,
}
TRANSFORMS: dict[str, str] = {
    "revolving_utilization": f"min(revolving_utilization, {UTIL_CAP})",
    "late_30_59": f"min(late_30_59, {LATE_CAPS['late_30_59']}); 0 when late_sentinel = 1",
    "late_60_89": f"min(late_60_89, {LATE_CAPS['late_60_89']}); 0 when late_sentinel = 1",
    "late_90": f"min(late_90, {LATE_CAPS['late_90']}); 0 when late_sentinel = 1",
    "late_sentinel": "1 when any late count is 96 or 98 (NULL after silver), else 0",
    "age": f"(age - {AGE_CENTRE:g}) / {AGE_SCALE:g}",
    "monthly_income": (
        f"clip(ln(1 + monthly_income) - ln(1 + {INCOME_REFERENCE:g}), -{INCOME_CLIP:g}, {INCOME_CLIP:g}); "
        "0 when monthly_income is NULL"
    ),
    "income_missing": "1 when monthly_income is NULL, else 0",
    "debt_ratio": f"min(debt_ratio, {DEBT_RATIO_CAP:g}); 0 when monthly_income is NULL",
    "dependents": f"min(dependents, {DEPENDENTS_CAP}); 0 when dependents is NULL",
    "open_credit_lines": f"min(open_credit_lines, {OPEN_LINES_CAP})",
    "real_estate_loans": f"min(real_estate_loans, {REAL_ESTATE_CAP})",
}
TRUTH_INPUT_COLUMNS = (
    "revolving_utilization",
    "debt_ratio",
    "monthly_income",
    "open_credit_lines",
    "real_estate_loans",
    "dependents",
    *LATE_COLUMNS,
    "age",
)

# Drift modifications (see ``mlsd.data._scenarios.SCENARIOS``). The label shift doubles the odds
# of default among applicants (P(x | y) fixed); the concept drift turns the effect of income around
# and lowers the intercept so that the default rate of the drift-free population stays put
# (calibrated on about a million simulated drift-free applications, like the intercept).
LABEL_SHIFT_ODDS_RATIO = 2.0
CONCEPT_DRIFT_COEFFICIENTS = {"monthly_income": 2.0}
CONCEPT_DRIFT_INTERCEPT_DELTA = -0.04


def _column(frame: Any, name: str) -> np.ndarray:
    values = frame[name]
    if hasattr(values, "to_numpy"):
        try:
            return values.to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError):
            import pandas as pd

            return pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return np.asarray(values, dtype=np.float64)


def _features(frame: Any) -> dict[str, np.ndarray]:
    """Transformed features ``f_k`` as arrays; ``frame`` is a DataFrame or a mapping of arrays."""
    missing = [c for c in TRUTH_INPUT_COLUMNS if c not in frame]
    if missing:
        raise KeyError(f"The truth needs bureau columns {missing}: pass a bureau snapshot (or gold) frame.")
    x = {c: _column(frame, c) for c in TRUTH_INPUT_COLUMNS}
    late = [x[c] for c in LATE_COLUMNS]
    sentinel = np.zeros(len(late[0]), dtype=bool)
    for values in late:
        sentinel |= np.isnan(values) | np.isin(values, SENTINEL_CODES)
    income = x["monthly_income"]
    income_missing = np.isnan(income)
    dependents = x["dependents"]
    with np.errstate(invalid="ignore"):
        f_income = np.clip(
            np.log1p(np.where(income_missing, 0.0, income)) - np.log1p(INCOME_REFERENCE), -2, 2
        )
    f = {
        "revolving_utilization": np.minimum(x["revolving_utilization"], UTIL_CAP),
        **{c: np.where(sentinel, 0.0, np.minimum(x[c], LATE_CAPS[c])) for c in LATE_COLUMNS},
        "late_sentinel": sentinel.astype(np.float64),
        "age": (x["age"] - AGE_CENTRE) / AGE_SCALE,
        "monthly_income": np.where(income_missing, 0.0, f_income),
        "income_missing": income_missing.astype(np.float64),
        "debt_ratio": np.where(income_missing, 0.0, np.minimum(x["debt_ratio"], DEBT_RATIO_CAP)),
        "dependents": np.where(np.isnan(dependents), 0.0, np.minimum(dependents, DEPENDENTS_CAP)),
        "open_credit_lines": np.minimum(x["open_credit_lines"], OPEN_LINES_CAP),
        "real_estate_loans": np.minimum(x["real_estate_loans"], REAL_ESTATE_CAP),
    }
    return {k: f[k] for k in COEFFICIENTS}


def truth_features(frame: Any):
    """The transformed features ``f_k`` that the ground truth uses, one column per coefficient.

    Parameters
    ----------
    frame : pandas.DataFrame or mapping of arrays
        Bureau columns with their landing names (:data:`TRUTH_INPUT_COLUMNS`). Sentinel late counts
        may be coded 96/98 (landing) or NULL (silver); NULL income and dependents are allowed.

    Returns
    -------
    pandas.DataFrame
        Columns named as in :data:`COEFFICIENTS`, aligned with ``frame``'s index when it has one.
    """
    import pandas as pd

    index = getattr(frame, "index", None)
    return pd.DataFrame(_features(frame), index=index)


def ground_truth(month: str | None = None, scenarios: Any = None) -> dict[str, Any]:
    """The label model in effect in ``month``: intercept, coefficients, transforms and link.

    Parameters
    ----------
    month : str, optional
        ``"YYYY-MM"``; ``None`` gives the drift-free model.
    scenarios : optional
        As for :func:`mlsd.data.generate` (``None``: every scenario on at its default month).

    Returns
    -------
    dict
        ``{"link": "logistic", "intercept": float, "coefficients": {feature: float},
        "transforms": {feature: str}, "active_scenarios": [name, ...]}``.

    Under the label shift the intercept includes ``ln(LABEL_SHIFT_ODDS_RATIO)``: the probability
    of default of an applicant of that month (see the module docstring).

    Examples
    --------
    >>> ground_truth("2025-10")["coefficients"]["monthly_income"]
    2.0
    >>> ground_truth("2025-09")["coefficients"]["monthly_income"]
    -0.25
    """
    resolved = resolve_scenarios(scenarios)
    intercept = INTERCEPT
    coefficients = dict(COEFFICIENTS)
    names: list[str] = []
    if month is not None:
        number = month_number(month)
        if active(resolved, "label_shift", number):
            intercept += math.log(LABEL_SHIFT_ODDS_RATIO)
        if active(resolved, "concept_drift", number):
            intercept += CONCEPT_DRIFT_INTERCEPT_DELTA
            coefficients.update(CONCEPT_DRIFT_COEFFICIENTS)
        names = [name for name in resolved if active(resolved, name, number)]
    return {
        "link": "logistic",
        "intercept": round(intercept, 10),
        "coefficients": coefficients,
        "transforms": dict(TRANSFORMS),
        "active_scenarios": names,
    }


def ground_truth_spec(scenarios: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The ``ground_truth`` section of the manifest: the drift-free model and its drift terms."""
    return {
        "link": "logistic",
        "formula": "P(serious_dlq = 1) = 1 / (1 + exp(-(intercept + sum_k coefficients[k] * f_k(x))))",
        "intercept": INTERCEPT,
        "coefficients": dict(COEFFICIENTS),
        "transforms": dict(TRANSFORMS),
        "features_from": "the bureau snapshot taken at the application: the latest with pulled_at <= applied_at",
        "drift": {
            "covariate_shift": {
                "enabled": bool(scenarios["covariate_shift"]["enabled"]),
                "start_month": scenarios["covariate_shift"]["start_month"],
                "changes": "P(x)",
                "note": "changes who applies (the partner_app channel), not the label model",
            },
            "label_shift": {
                "enabled": bool(scenarios["label_shift"]["enabled"]),
                "start_month": scenarios["label_shift"]["start_month"],
                "changes": "P(y), and P(x) with it; P(x | y) unchanged",
                "odds_ratio": LABEL_SHIFT_ODDS_RATIO,
                "intercept_delta": round(math.log(LABEL_SHIFT_ODDS_RATIO), 10),
                "note": (
                    "applicants are drawn by their outcome: every would-be defaulter of the month's population "
                    f"applies, a would-be repayer with probability 1/{LABEL_SHIFT_ODDS_RATIO:g}; by Bayes' rule "
                    "an applicant's probability of default is the logistic model with ln(odds_ratio) added to "
                    "the intercept"
                ),
            },
            "concept_drift": {
                "enabled": bool(scenarios["concept_drift"]["enabled"]),
                "start_month": scenarios["concept_drift"]["start_month"],
                "changes": "P(y | x); P(x) unchanged",
                "coefficients": dict(CONCEPT_DRIFT_COEFFICIENTS),
                "intercept_delta": CONCEPT_DRIFT_INTERCEPT_DELTA,
                "note": "the coefficients listed replace the drift-free ones: income's effect changes sign",
            },
        },
    }


def _month_terms(months: Any, n: int, scenarios: Any) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Per-row intercept and coefficient multipliers for ``months`` (None, a string or one per row)."""
    if months is None or isinstance(months, str):
        truth = ground_truth(months, scenarios)
        return np.full(n, truth["intercept"]), {k: np.full(n, v) for k, v in truth["coefficients"].items()}
    values = np.asarray(months).astype(str)
    if len(values) != n:
        raise ValueError(f"month has {len(values)} values for {n} rows: pass one month or one per row.")
    uniques, inverse = np.unique(values, return_inverse=True)
    truths = [ground_truth(m, scenarios) for m in uniques]
    intercept = np.array([t["intercept"] for t in truths])[inverse]
    coefs = {k: np.array([t["coefficients"][k] for t in truths])[inverse] for k in COEFFICIENTS}
    return intercept, coefs


def true_probability(frame: Any, month: Any = None, scenarios: Any = None) -> np.ndarray:
    """The true P(serious_dlq = 1) for each row of bureau features.

    Parameters
    ----------
    frame : pandas.DataFrame or mapping of arrays
        Bureau snapshot columns (see :func:`truth_features`).
    month : str or array-like of str, optional
        The application month (``"YYYY-MM"``), one for all rows or one per row; it decides which
        drift terms apply. ``None`` gives the drift-free truth.
    scenarios : optional
        As for :func:`mlsd.data.generate`.

    Returns
    -------
    numpy.ndarray
        Probabilities; NaN where a feature the truth needs is NULL (a row hit by a defect).

    Examples
    --------
    >>> import pandas as pd
    >>> row = dict(revolving_utilization=0.1, debt_ratio=0.3, monthly_income=5400.0, open_credit_lines=8,
    ...            real_estate_loans=1, dependents=0, late_30_59=0, late_60_89=0, late_90=0, age=50)
    >>> risky = dict(row, revolving_utilization=0.95, late_90=2)
    >>> p = true_probability(pd.DataFrame([row, risky]))
    >>> bool(p[1] > p[0])
    True
    """
    features = _features(frame)
    n = len(next(iter(features.values())))
    intercept, coefs = _month_terms(month, n, scenarios)
    eta = intercept.copy()
    for name, values in features.items():
        eta += coefs[name] * values
    return 1.0 / (1.0 + np.exp(-eta))
