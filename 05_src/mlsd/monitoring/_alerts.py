"""Alerts: rules on the columns of a drift or performance report, and the ones that fire."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from mlsd.monitoring._stats import PSI_MAJOR, PSI_MODERATE

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
