"""Watch a model in production: data drift, delayed labels, alerts.

* **Drift statistics**, each comparing a current sample with a reference one:
  :func:`ks_test` (numeric), :func:`chi2_test` (categorical), :func:`psi` and
  :func:`js_distance` (both kinds, on bins fitted on the reference).
* **Fit on the reference, apply to each window**: :class:`ReferenceProfile` stores
  bin edges and categories; :func:`drift_report` compares two frames;
  :func:`compare_windows` runs the comparison month by month. Include the model
  score as a feature (a ``score`` column) to watch the output as well as the inputs.
* **When to call it drift**: :class:`DriftRule` (see below).
* **The prediction log** in PostgreSQL: :func:`ensure_prediction_log`,
  :func:`log_predictions` (idempotent per batch), :func:`read_predictions`; a shadow
  model's scores are logged beside the live ones with ``deployment='shadow'``
  (:data:`DEPLOYMENTS`) and read only when asked for.
* **Delayed labels**: :func:`performance_over_time` joins predictions to the
  outcomes known at a date; :func:`read_performance_over_time` reads both from PostgreSQL.
* **Alerts**: :class:`AlertRule`, :func:`default_alert_rules`, :func:`evaluate_alerts`;
  and :func:`drift_figure` to look at a report.

The drift rule
--------------
With thousands of rows a month every test finds *some* difference, and with a
dozen features tested every month a plain ``p < 0.05`` raises false alarms in
about half of the months. So a feature is flagged as drifted only when **both**

1. the test is significant: ``p_value < alpha`` (default 0.05), and
2. the change is big enough to matter: ``psi >= 0.1``, or for a numeric feature
   a KS statistic ``>= 0.05`` (the largest gap between the two cumulative
   distributions is at least 5 percentage points).

Requiring (1) keeps the false-alarm rate of each feature test at or below
``alpha`` when nothing has changed (the course's tests measure it); requiring (2)
stops tiny, harmless shifts in large samples from raising alarms. For a
family-wise guarantee per window (at most ``alpha`` chance of *any* false
alarm among the features), use ``DriftRule(correction="bonferroni")``.
Measured in ``tests/unit/test_monitoring.py`` (200 repetitions of 12 features,
2,000 rows per sample, no drift): 0.6% of feature tests flagged (``p < alpha``
alone: 3.5%); 7.5% of windows with any flag, 1% with Bonferroni. A 0.3 sd mean
shift, a new channel with 30% of applications and a doubled coefficient behind
the score are all flagged.

Missing values are handled explicitly: they form their own bin in PSI, JS and the
chi-square test, and ``missing_ref`` / ``missing_cur`` report their share. The KS
test uses the observed values only, so for a numeric feature with missing values
the p-value combines KS with a chi-square test of the missing share
(Bonferroni over the two: ``min(1, 2 * min(p_ks, p_missing))``, test ``"ks+missing"``).

PSI is read with the conventional thresholds: below 0.1 no meaningful change,
0.1 to 0.25 a moderate shift worth a look, above 0.25 a major shift.

The code: the statistics in ``_stats``, profiles and drift reports in ``_drift``,
performance with delayed labels in ``_performance`` and alerts in ``_alerts`` are pure
(DataFrames in, DataFrames out); everything that reads or writes PostgreSQL is in ``_db``.
"""

from mlsd.monitoring._alerts import AlertRule, default_alert_rules, evaluate_alerts
from mlsd.monitoring._db import (
    DEPLOYMENTS,
    PREDICTION_LOG,
    MonitoringError,
    MonthReport,
    ensure_prediction_log,
    log_predictions,
    monitor_month,
    read_performance_over_time,
    read_predictions,
)
from mlsd.monitoring._db import MONITORED_CATEGORICAL as MONITORED_CATEGORICAL  # what `mlsd monitor` watches
from mlsd.monitoring._db import MONITORED_NUMERIC as MONITORED_NUMERIC
from mlsd.monitoring._drift import DriftRule, ReferenceProfile, compare_windows, drift_figure, drift_report
from mlsd.monitoring._performance import performance_over_time
from mlsd.monitoring._stats import PSI_MAJOR, PSI_MODERATE, StatResult, chi2_test, js_distance, ks_test, psi

__all__ = [
    "DEPLOYMENTS",
    "PSI_MAJOR",
    "PSI_MODERATE",
    "PREDICTION_LOG",
    "AlertRule",
    "DriftRule",
    "ReferenceProfile",
    "StatResult",
    "chi2_test",
    "compare_windows",
    "default_alert_rules",
    "drift_figure",
    "drift_report",
    "ensure_prediction_log",
    "evaluate_alerts",
    "js_distance",
    "ks_test",
    "log_predictions",
    "performance_over_time",
    "psi",
    "read_performance_over_time",
    "read_predictions",
    "MonitoringError",
    "MonthReport",
    "monitor_month",
]
