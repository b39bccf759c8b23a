"""The retraining flow (``mlsd retrain``): from a new month of data to a logged decision.

The book's chapter 9 ("Continual Learning and Test in Production") asks how often to
retrain, on which data, and how to decide that the new model is better. One function,
:func:`retrain`, answers for one month of new applications:

1. **Load** the labelled months and the new month from ``gold.application_features``, as
   they were known at the end of that month: an outcome counts only if it was observed
   before the first day of the next month (``as_of``).
2. **Gates** (:func:`check_gates`): the new month has enough rows, no feature is suddenly
   NULL-heavy, and the comparison months have their labels, at a believable default rate.
   A failed gate stops the flow: no model is trained on bad data, and the record says
   which gate and which numbers.
3. **Train a challenger**: the champion's recipe (its pipeline, cloned, hyperparameters
   and all) refitted on the latest ``train_months`` of mature labels (stateless retraining),
   tracked in MLflow; its threshold comes from its out-of-fold scores, by cost.
4. **Compare** champion and challenger on the latest ``eval_months`` months whose labels are
   mature (:func:`retraining_windows`: a month's labels are complete seven months after it
   starts, ``LABEL_MATURITY_MONTHS``), months the champion has not seen.
5. **Decide**: promote when the challenger's PR-AUC beats the champion's by more than
   ``min_gain`` (:func:`mlsd.tracking.promote` moves ``champion`` and keeps the old one as
   ``previous``, a one-call rollback); otherwise register it as ``challenger``.

Every step is a structured record (:class:`mlsd.logging.JobLog`, job ``retrain``) in
``monitoring.job_log``. The run's **idempotency key** is the model, the month, the options
and a fingerprint of the data read: a second run with the same key returns the first
decision (``reused=True``) without training, registering or promoting again.

Example
-------
>>> from mlsd import db, retraining
>>> conn = db.connect()  # doctest: +SKIP
>>> decision = retraining.retrain(conn, "2026-03")  # doctest: +SKIP
>>> decision.action, decision.reason  # doctest: +SKIP
('keep', 'challenger PR-AUC 0.557 vs champion v2 0.559 on 2025-07..2025-09: gain -0.002 <= min_gain 0.01')
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from psycopg2 import sql
from sklearn.base import clone
from sklearn.model_selection import TimeSeriesSplit
from threadpoolctl import threadpool_limits

from mlsd import tracking
from mlsd.data._scenarios import month_number, month_string
from mlsd.db import read_sql
from mlsd.errors import MLSDError
from mlsd.evaluation import classification_metrics, threshold_by_cost
from mlsd.features import course_feature_columns, gold_features
from mlsd.logging import JOB_LOG, JobLog
from mlsd.training import DEFAULT_COSTS, model_input

if TYPE_CHECKING:
    from types import ModuleType

    import psycopg2.extensions

__all__ = [
    "ACTIONS",
    "LABEL_MATURITY_MONTHS",
    "GateResult",
    "RetrainDecision",
    "RetrainOptions",
    "RetrainingError",
    "Windows",
    "check_gates",
    "retrain",
    "retraining_windows",
]

LABEL_MATURITY_MONTHS = 7
"""Months after a month starts when all its labels are observed (defaults in 4-6, repaid loans at 6; CONTRACT.md)."""

ACTIONS = ("promote", "keep", "stop")
"""``promote`` the challenger; ``keep`` the champion; ``stop``: a gate refused the data."""

JOB = "retrain"


class RetrainingError(MLSDError, ValueError):
    """The flow cannot run: no champion, or too few months of data for its windows."""


@dataclass(frozen=True)
class RetrainOptions:
    """What :func:`retrain` does, as one value (part of the idempotency key).

    Attributes
    ----------
    train_months, eval_months : int
        Months of mature labels to train the challenger on, and the latest mature months
        that follow, on which champion and challenger are compared.
    maturity_months : int
        :data:`LABEL_MATURITY_MONTHS`.
    min_gain : float
        PR-AUC the challenger must gain over the champion to be promoted. Three months of
        labels measure PR-AUC with noise: a margin keeps a lucky challenger out.
    min_row_share : float
        Gate ``rows``: the new month needs this share of the training months' median rows.
    max_null_increase : float
        Gate ``nulls``: a feature's NULL share in the new month may exceed its training share
        by this much (absolute).
    min_label_coverage : float
        Gate ``label_coverage``: share of labelled rows in the comparison months.
    label_rate_ratio : float
        Gate ``label_rate``: the comparison months' default rate must lie within this factor of
        the training months' (a label shift moves it; a broken label feed collapses it).
    cv_splits : int
        Time-ordered folds of the challenger's cross-validation (its out-of-fold scores set its threshold).
    experiment : str
        MLflow experiment of the challenger's run.
    table : str
        Where the data is, ``schema.table``.
    cost_fp, cost_fn : float
        Costs of the errors, for the challenger's threshold.
    """

    train_months: int = 12
    eval_months: int = 3
    maturity_months: int = LABEL_MATURITY_MONTHS
    min_gain: float = 0.01
    min_row_share: float = 0.5
    max_null_increase: float = 0.15
    min_label_coverage: float = 0.95
    label_rate_ratio: float = 4.0
    cv_splits: int = 3
    experiment: str = "lending-default"
    table: str = "gold.application_features"
    cost_fp: float = DEFAULT_COSTS["cost_fp"]
    cost_fn: float = DEFAULT_COSTS["cost_fn"]


@dataclass(frozen=True)
class Windows:
    """The months one run reads: training, comparison, the new month, and when it runs."""

    train: tuple[str, str]
    eval: tuple[str, str]
    new: str
    as_of: pd.Timestamp

    def months(self, which: str) -> list[str]:
        """Every month of ``train`` or ``eval``, in order."""
        first, last = getattr(self, which)
        return [month_string(m) for m in range(month_number(first), month_number(last) + 1)]


def retraining_windows(
    month: str,
    *,
    first_month: str = "2024-01",
    train_months: int = 12,
    eval_months: int = 3,
    maturity_months: int = LABEL_MATURITY_MONTHS,
) -> Windows:
    """The months a run at the end of ``month`` uses: only months whose labels are mature.

    The run happens when ``month`` is over (``as_of`` is the first day of the next month).
    A month's labels are all in ``maturity_months`` after it starts, so the latest mature
    month is ``month - (maturity_months - 1)``; the comparison takes the last ``eval_months``
    of those, the training the ``train_months`` before them (from ``first_month`` at most).

    Raises
    ------
    RetrainingError
        When fewer than ``eval_months + 1`` mature months exist.

    Examples
    --------
    >>> w = retraining_windows("2026-06")
    >>> w.train, w.eval, str(w.as_of.date())
    (('2024-10', '2025-09'), ('2025-10', '2025-12'), '2026-07-01')
    >>> retraining_windows("2025-06").train  # the data starts in 2024-01
    ('2024-01', '2024-09')
    """
    last_mature = month_number(month) - (maturity_months - 1)
    eval_start = last_mature - eval_months + 1
    train_end = eval_start - 1
    train_start = max(month_number(first_month), train_end - train_months + 1)
    if train_end < train_start:
        raise RetrainingError(
            f"A run in {month} has mature labels up to {month_string(last_mature)} only: too few months to "
            f"train on and then compare on {eval_months} months. Pick a later --month."
        )
    return Windows(
        train=(month_string(train_start), month_string(train_end)),
        eval=(month_string(eval_start), month_string(last_mature)),
        new=month,
        as_of=pd.Timestamp(f"{month_string(month_number(month) + 1)}-01", tz="UTC"),
    )


@dataclass(frozen=True)
class GateResult:
    """One data-quality gate: its name, whether it passed, the numbers, and a sentence."""

    gate: str
    passed: bool
    value: float | None
    limit: str
    message: str


def _share(part: int, whole: int) -> float:
    return part / whole if whole else math.nan


def check_gates(frame: pd.DataFrame, windows: Windows, options: RetrainOptions) -> list[GateResult]:
    """The data-quality gates on the rows one run read (pure: a DataFrame in, results out).

    ``frame`` holds the gold rows of the training, comparison and new months, with
    ``serious_dlq`` NaN where the outcome was not known at ``windows.as_of``.

    Gates: ``rows`` (the new month is not nearly empty), ``nulls`` (no feature much more
    often NULL in the new month than in the training months), ``label_coverage`` (the
    comparison months are labelled) and ``label_rate`` (their default rate is believable).
    """
    train = frame[frame["month"].isin(windows.months("train"))]
    evaluation = frame[frame["month"].isin(windows.months("eval"))]
    new = frame[frame["month"] == windows.new]
    results = []

    per_month = train.groupby("month").size()
    expected = float(per_month.median()) if len(per_month) else 0.0
    need = options.min_row_share * expected
    results.append(
        GateResult(
            "rows",
            len(new) >= need and len(new) > 0,
            float(len(new)),
            f">= {need:.0f}",
            f"{windows.new} has {len(new)} rows; the training months have a median of {expected:.0f} "
            f"(at least {options.min_row_share:.0%} of it needed)",
        )
    )

    kinds = course_feature_columns()
    columns = [c for c in (*kinds["numeric"], *kinds["categorical"]) if c in frame.columns]
    worst, worst_column, worst_ref = -math.inf, None, math.nan
    for column in columns:
        now, ref = new[column].isna().mean(), train[column].isna().mean()
        if len(new) and now - ref > worst:
            worst, worst_column, worst_ref = now - ref, column, ref
    if worst_column is None:
        results.append(GateResult("nulls", False, None, "", f"{windows.new} has no rows to check"))
    else:
        results.append(
            GateResult(
                "nulls",
                worst <= options.max_null_increase,
                float(worst),
                f"<= +{options.max_null_increase:.0%}",
                f"{worst_column} is NULL in {worst + worst_ref:.1%} of {windows.new}'s rows against "
                f"{worst_ref:.1%} in the training months (largest increase of {len(columns)} features; "
                f"limit +{options.max_null_increase:.0%})",
            )
        )

    eval_span = "..".join(windows.eval)
    labelled = evaluation["serious_dlq"].notna()
    coverage = _share(int(labelled.sum()), len(evaluation))
    results.append(
        GateResult(
            "label_coverage",
            coverage >= options.min_label_coverage,
            coverage,
            f">= {options.min_label_coverage:.0%}",
            f"{int(labelled.sum())} of {len(evaluation)} applications of {eval_span} have a label "
            f"({coverage:.1%}; mature months need {options.min_label_coverage:.0%})",
        )
    )

    base = train["serious_dlq"].dropna()
    rate = evaluation["serious_dlq"].dropna()
    base_rate = float(base.mean()) if len(base) else math.nan
    eval_rate = float(rate.mean()) if len(rate) else math.nan
    low, high = base_rate / options.label_rate_ratio, base_rate * options.label_rate_ratio
    results.append(
        GateResult(
            "label_rate",
            bool(low <= eval_rate <= high),
            eval_rate,
            f"{low:.1%}..{high:.1%}",
            f"the default rate of {eval_span} is {eval_rate:.1%} ({int(rate.sum())} of {len(rate)} labelled) "
            f"against {base_rate:.1%} in the training months {'..'.join(windows.train)} "
            f"(allowed {low:.1%}..{high:.1%})",
        )
    )
    return results


@dataclass(frozen=True)
class RetrainDecision:
    """What one run of :func:`retrain` decided, and why.

    Attributes
    ----------
    action : {"promote", "keep", "stop"}
        See :data:`ACTIONS`.
    reason : str
        One sentence with the numbers (the failed gates, or the comparison).
    month, model_name, run_key, run_id : str
        The new month, the registered model, the idempotency key, and the run (``job_log.run_id``)
        that made the decision.
    train_months, eval_months : tuple of str
        Training and comparison windows.
    gates : tuple of GateResult
    row_counts : dict
        Rows read per window (``train``, ``eval``, ``new``).
    champion_version, challenger_version : str or None
        The champion compared against; the challenger's registered version (None when it was
        not registered: a stop or a dry run).
    champion_pr_auc, challenger_pr_auc : float or None
        On the comparison months.
    dry_run : bool
        Nothing registered or promoted.
    reused : bool
        An earlier run with the same key had decided: this is its decision, nothing was done again.
    """

    action: str
    reason: str
    month: str
    model_name: str
    run_key: str
    run_id: str
    train_months: tuple[str, str]
    eval_months: tuple[str, str]
    gates: tuple[GateResult, ...] = ()
    champion_version: str | None = None
    challenger_version: str | None = None
    champion_pr_auc: float | None = None
    challenger_pr_auc: float | None = None
    row_counts: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False
    reused: bool = False

    @property
    def failed_gates(self) -> list[GateResult]:
        """The gates that stopped the run."""
        return [g for g in self.gates if not g.passed]

    def to_record(self) -> dict[str, Any]:
        """Plain data, as stored in the ``decide`` record's details."""
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> RetrainDecision:
        """The decision stored by :meth:`to_record`."""
        values = dict(record)
        values["gates"] = tuple(GateResult(**g) for g in values.get("gates", ()))
        for name in ("train_months", "eval_months"):
            values[name] = tuple(values[name])
        return cls(**{k: v for k, v in values.items() if k in cls.__dataclass_fields__})


def _mlflow() -> ModuleType:
    """MLflow, imported on first use: it takes seconds, and ``import mlsd.retraining`` should not."""
    import mlflow

    return mlflow


def _fingerprint(frame: pd.DataFrame, payload: dict[str, Any]) -> str:
    """A hash of the rows read and of what the run was asked: same data, same options, same key."""
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode("utf-8"))
    ordered = frame.sort_values("application_id").reset_index(drop=True)
    digest.update(pd.util.hash_pandas_object(ordered, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def _earlier_decision(conn, run_key: str) -> tuple[str, dict] | None:
    """The last completed, applied decision with this key in the job log, if any."""
    found = read_sql(
        conn,
        f"SELECT run_id, details FROM {JOB_LOG} WHERE job = %s AND run_key = %s AND step = 'decide' "
        "AND status = 'ok' AND NOT coalesce((details->>'dry_run')::boolean, false) ORDER BY id DESC LIMIT 1",
        (JOB, run_key),
    )
    if found.empty:
        return None
    details = found["details"].iloc[0]
    return found["run_id"].iloc[0], details if isinstance(details, dict) else json.loads(details)


def _registered_with_key(name: str, run_key: str) -> str | None:
    """The version registered by an earlier run with this key (one that stopped before logging its decision)."""
    client = _mlflow().tracking.MlflowClient()
    with tracking.quiet():
        versions = client.search_model_versions(f"name = '{name}'")
    matches = [v.version for v in versions if (v.tags or {}).get("retrain_key") == run_key]
    return str(max(matches, key=int)) if matches else None


def _data_end(tags: dict[str, str]) -> str | None:
    """The last month a registered version learned from (its training, or the months that chose it)."""
    months = [tags[t].split("..")[-1] for t in ("data_end", "train_months", "valid_months") if tags.get(t)]
    return max(months) if months else None


def _pr_auc(y: np.ndarray, scores: np.ndarray) -> float:
    return float(classification_metrics(y, scores)["pr_auc"])


def retrain(
    conn: psycopg2.extensions.connection,
    month: str | None = None,
    *,
    model_name: str = "lending-default",
    options: RetrainOptions | None = None,
    recipe: Any = None,
    dry_run: bool = False,
    threads: int | None = 1,
) -> RetrainDecision:
    """Run the retraining flow for the new ``month``: gates, challenger, comparison, decision.

    Parameters
    ----------
    conn : psycopg2 connection
        The course database (gold table loaded); the job records go to ``monitoring.job_log``.
    month : str, optional
        The newest month of applications, ``YYYY-MM``; the table's latest month by default.
    model_name : str
        The registered model whose ``champion`` is challenged.
    options : RetrainOptions, optional
        Windows, gates, margin (see there).
    recipe : scikit-learn estimator, optional
        The unfitted pipeline to train as challenger; a clone of the champion's by default
        (same preprocessing and hyperparameters, new data).
    dry_run : bool
        Do everything but register and promote (the records say ``dry_run``).
    threads : int or None
        BLAS/OpenMP threads while fitting and scoring (one by default, as in :func:`mlsd.training.train`).

    Returns
    -------
    RetrainDecision

    Raises
    ------
    RetrainingError
        When the month has too little history, or the table has no rows.
    mlsd.tracking.RegistryError
        When the model has no champion: train one first (``uv run mlsd train``).
    """
    options = options or RetrainOptions()
    schema, table = options.table.split(".", 1)
    query = sql.SQL("SELECT min(month), max(month) FROM {}").format(sql.Identifier(schema, table))
    first, last = read_sql(conn, query).iloc[0]
    if last is None:
        raise RetrainingError(f"{options.table} is empty: load the data first (`uv run mlsd data load`).")
    month = month or last
    windows = retraining_windows(
        month,
        first_month=first,
        train_months=options.train_months,
        eval_months=options.eval_months,
        maturity_months=options.maturity_months,
    )
    tracking.configure()
    champion = tracking.get_model_version(model_name, "champion")
    with threadpool_limits(limits=threads):
        return _retrain(conn, windows, model_name, champion, options, recipe, dry_run)


def _retrain(conn, windows: Windows, model_name: str, champion, options, recipe, dry_run) -> RetrainDecision:
    job = JobLog(conn, JOB, model_name=model_name)
    schema, table = options.table.split(".", 1)
    with job.step("load", batch_id=windows.new) as step:
        months = [*windows.months("train"), *windows.months("eval"), windows.new]
        frame = gold_features(conn, month=months, schema=schema, table=table)
        # what was known at the end of the month: later outcomes do not exist yet
        observed = pd.to_datetime(frame["label_observed_at"], utc=True)
        frame["serious_dlq"] = frame["serious_dlq"].where(observed < windows.as_of)
        rows = frame.groupby(frame["month"].map(lambda m: _window_of(m, windows))).size().to_dict()
        key_payload = {
            "model": model_name,
            "month": windows.new,
            "options": asdict(options),
            "recipe": repr(recipe),
        }
        # set inside the step, so that the load record carries the key too
        job.run_key = f"{model_name}:{windows.new}:{_fingerprint(frame, key_payload)}"
        step.update(
            rows=len(frame), as_of=windows.as_of.isoformat(), **{f"rows_{k}": v for k, v in rows.items()}
        )
    common = {
        "month": windows.new,
        "model_name": model_name,
        "run_key": job.run_key,
        "run_id": job.run_id,
        "train_months": windows.train,
        "eval_months": windows.eval,
        "row_counts": {k: int(v) for k, v in rows.items()},
        "dry_run": dry_run,
    }

    earlier = None if dry_run else _earlier_decision(conn, job.run_key)
    if earlier is not None:
        decision = replace(RetrainDecision.from_record(earlier[1]), reused=True)
        job.record(
            "decide",
            "skipped",
            model_version=decision.challenger_version,
            message=f"same data, month and options as run {earlier[0]}: its decision stands ({decision.action})",
            action=decision.action,
            decided_by=earlier[0],
        )
        return decision

    gates = check_gates(frame, windows, options)
    for gate in gates:
        job.record(
            f"gate:{gate.gate}",
            "ok" if gate.passed else "stopped",
            batch_id=windows.new,
            message=gate.message,
            value=gate.value,
            limit=gate.limit,
        )
    failed = [g for g in gates if not g.passed]
    if failed:
        reason = "; ".join(f"gate {g.gate} failed: {g.message}" for g in failed)
        return _decide(job, RetrainDecision("stop", reason, gates=tuple(gates), **common), status="stopped")

    champion_tags = dict(champion.tags or {})
    seen = _data_end(champion_tags)
    if seen is not None and seen >= windows.eval[0]:
        reason = (
            f"the champion v{champion.version} learned from months up to {seen}, which overlap the comparison "
            f"months {'..'.join(windows.eval)}: no fair comparison yet, the champion stays"
        )
        return _decide(
            job,
            RetrainDecision(
                "keep", reason, gates=tuple(gates), champion_version=str(champion.version), **common
            ),
        )

    labelled = frame[frame["serious_dlq"].notna()]
    train = labelled[labelled["month"].isin(windows.months("train"))]
    evaluation = labelled[labelled["month"].isin(windows.months("eval"))]
    X_train, y_train = model_input(train), train["serious_dlq"].to_numpy(dtype=int)
    X_eval, y_eval = model_input(evaluation), evaluation["serious_dlq"].to_numpy(dtype=int)

    with job.step("train", batch_id="..".join(windows.train)) as step:
        with tracking.quiet():
            champion_model = _mlflow().sklearn.load_model(f"models:/{model_name}/{champion.version}")
        pipeline = recipe if recipe is not None else clone(champion_model)
        result = tracking.cross_validate_and_log(
            pipeline,
            X_train,
            y_train,
            cv=TimeSeriesSplit(n_splits=options.cv_splits),
            run_name=f"retrain-{windows.new}",
            experiment=options.experiment,
            params={"train_months": "..".join(windows.train), "n_train": len(y_train)},
            tags={"mlsd.workflow": "mlsd retrain", "mlsd.retrain_key": job.run_key},
            log_model=not dry_run,
        )
        scored = ~np.isnan(result.oof_scores)
        threshold, _ = threshold_by_cost(
            y_train[scored], result.oof_scores[scored], cost_fp=options.cost_fp, cost_fn=options.cost_fn
        )
        threshold = float(min(threshold, 1.0))
        challenger_model = result.model or clone(pipeline).fit(X_train, y_train)
        step.update(rows=len(y_train), mlflow_run_id=result.run_id, threshold=threshold)

    with job.step("evaluate", batch_id="..".join(windows.eval)) as step:
        champion_pr_auc = _pr_auc(y_eval, champion_model.predict_proba(X_eval)[:, 1])
        challenger_pr_auc = _pr_auc(y_eval, challenger_model.predict_proba(X_eval)[:, 1])
        gain = challenger_pr_auc - champion_pr_auc
        step.update(
            rows=len(y_eval),
            champion_version=str(champion.version),
            champion_pr_auc=champion_pr_auc,
            challenger_pr_auc=challenger_pr_auc,
            gain=gain,
        )
    better = gain > options.min_gain
    reason = (
        f"challenger PR-AUC {challenger_pr_auc:.3f} vs champion v{champion.version} {champion_pr_auc:.3f} on "
        f"{'..'.join(windows.eval)}: gain {gain:+.3f} {'>' if better else '<='} min_gain {options.min_gain}"
    )
    decision = RetrainDecision(
        "promote" if better else "keep",
        reason,
        gates=tuple(gates),
        champion_version=str(champion.version),
        champion_pr_auc=champion_pr_auc,
        challenger_pr_auc=challenger_pr_auc,
        **common,
    )
    if dry_run:
        return _decide(job, decision)

    with job.step("register") as step:
        version = _registered_with_key(model_name, job.run_key)
        step["reused"] = version is not None
        if version is None:
            version = tracking.register_model(
                result.model_uri,
                model_name,
                tags={
                    "threshold": threshold,
                    "role": "retrained",
                    "train_months": "..".join(windows.train),
                    "data_end": windows.train[1],
                    "eval_months": "..".join(windows.eval),
                    "eval_pr_auc": round(challenger_pr_auc, 6),
                    "retrain_key": job.run_key,
                },
            )
        step["model_version"] = version
    decision = replace(decision, challenger_version=version)
    with job.step("promote" if better else "alias", model_version=version) as step:
        if better:
            moved = tracking.promote(model_name, version)
            step.update(previous=moved["previous"], message=f"champion v{champion.version} -> v{version}")
        else:
            tracking.set_alias(model_name, "challenger", version)
            step.update(message=f"v{version} is the challenger; champion v{champion.version} stays")
    return _decide(job, decision)


def _window_of(month: str, windows: Windows) -> str:
    if month == windows.new:
        return "new"
    return "eval" if month in windows.months("eval") else "train"


def _decide(job: JobLog, decision: RetrainDecision, status: str = "ok") -> RetrainDecision:
    """Record the decision (the full decision in the details: a later run with the same key returns it)."""
    job.record(
        "decide",
        status,
        model_version=decision.challenger_version,
        batch_id=decision.month,
        message=f"{decision.action}: {decision.reason}",
        **decision.to_record(),
    )
    return decision
