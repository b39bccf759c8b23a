"""Behavioural tests of the models `mlsd train` registers (invariance, direction, minimum functionality).

In the style of Made With ML: beyond one validation score, check that the model behaves as
the business expects when an input changes. The models are trained once, on 6,000 generated
applications (about 2,200 in the 2024 training months: enough that the baseline's coefficient on
the rare ``prior_late_payments``, non-zero for about 1% of rows, is not noise), into a throwaway
MLflow store.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from mlsd import db, pipelines, tracking, training
from mlsd.data import generate
from mlsd.evaluation import (
    RandomBaseline,
    classification_metrics,
    directional_test,
    invariance_test,
    minimum_functionality_test,
)

pytestmark = pytest.mark.model

DATA_SEED = 11
DATA_ROWS = 6_000
MODEL = "lending-default"
MAX_VIOLATIONS = 0.02  # share of rows allowed to move the wrong way


@pytest.fixture(scope="module")
def models(databases, tmp_path_factory):
    """Both registered models (by role), the validation rows and the champion's threshold."""
    import mlflow
    from threadpoolctl import threadpool_limits

    print(f"data seed {DATA_SEED}")
    root = tmp_path_factory.mktemp("model")
    generate(root / "landing", rows=DATA_ROWS, seed=DATA_SEED, progress=False)
    url = databases.create()
    conn = db.connect(url)
    pipelines.load(conn, root / "landing")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{(root / 'mlflow' / 'mlflow.db').as_posix()}")
        mp.setenv("MLSD_DATA_DIR", str(root / "data"))
        mp.setenv("MLSD_LOG_DIR", str(root / "logs"))
        mp.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
        summary = training.train(conn, n_iter=3, random_state=0).set_index("model")
        data = training.load_training_data(conn)
        loaded = {
            role: tracking.load_model(MODEL, summary.loc[role, "alias"], flavor="sklearn")
            for role in ("baseline", "tuned")
        }
        with threadpool_limits(limits=1):
            yield SimpleNamespace(**loaded, summary=summary, data=data)
        mlflow.set_tracking_uri(None)
    conn.close()
    databases.drop(url)


def both(models):
    return {"baseline": models.baseline, "tuned": models.tuned}


@pytest.mark.parametrize("column", ["application_id", "customer_id"])
def test_ids_do_not_move_the_score(models, column):
    X = models.data.X_valid
    for role, model in both(models).items():
        result = invariance_test(model, X, column, ["A9999999999", "someone-else"], tol=1e-12)
        assert result.n == 2 * len(X)
        assert result.passed, (role, result)


def test_the_application_time_does_not_move_the_score(models):
    # The true label model has no calendar term (session 4, "Date parts"), so the default
    # preprocessing takes no date parts: a Saturday-night or December application scores the same.
    X = models.data.X_valid
    times = [pd.Timestamp("2024-12-28 23:30"), pd.Timestamp("2025-06-02 09:00")]
    for role, model in both(models).items():
        result = invariance_test(model, X, training.TIME_COLUMN, times, tol=1e-12)
        assert result.n == 2 * len(X)
        assert result.passed, (role, result)


@pytest.mark.parametrize("column", ["late_30_59", "late_60_89", "late_90"])
def test_more_late_payments_never_lower_the_risk(models, column):
    X = models.data.X_valid
    for role, model in both(models).items():
        result = directional_test(model, X, column, delta=1, expect="increase", tol=1e-9)
        assert result.max_change > 0, f"{role} ignores {column}"  # the perturbation reached the model
        assert result.n_failed / result.n <= MAX_VIOLATIONS, (role, result)


def test_higher_utilisation_never_lowers_the_tuned_models_risk(models):
    result = directional_test(
        models.tuned, models.data.X_valid, "revolving_utilization", delta=0.25, expect="increase", tol=1e-9
    )
    assert result.max_change > 0
    assert result.n_failed / result.n <= MAX_VIOLATIONS, result


def obvious_cases(X: pd.DataFrame) -> pd.DataFrame:
    """A textbook bad risk and a spotless applicant, built on a real row (the rest stays realistic)."""
    base = X.iloc[[0]]
    risky = base.assign(
        late_30_59=4.0, late_60_89=2.0, late_90=3.0, revolving_utilization=1.2, debt_ratio=0.9,
        age=24.0, monthly_income=1200.0, prior_late_payments=3.0,
    )  # fmt: skip
    safe = base.assign(
        late_30_59=0.0, late_60_89=0.0, late_90=0.0, revolving_utilization=0.05, debt_ratio=0.1,
        age=62.0, monthly_income=9000.0, prior_late_payments=0.0,
    )  # fmt: skip
    return pd.concat([risky, safe], ignore_index=True)


def test_an_obvious_bad_risk_scores_above_an_obvious_good_one(models):
    cases = obvious_cases(models.data.X_valid)
    for role, model in both(models).items():
        risky, safe = model.predict_proba(cases)[:, 1]
        assert risky > safe + 0.2, (role, risky, safe)
        threshold = models.summary.loc[role, "threshold"]
        result = minimum_functionality_test(model, cases, [1, 0], threshold=threshold)
        assert result.passed, (role, threshold, result)


def test_the_models_beat_a_random_ranking(models):
    seed = int(np.random.default_rng().integers(1_000_000))
    print(f"random baseline seed {seed}")
    y = models.data.y_valid
    X = models.data.X_valid
    random_metrics = classification_metrics(
        y, RandomBaseline(random_state=seed).fit(X, y).predict_proba(X)[:, 1]
    )
    for role, model in both(models).items():
        pr_auc = classification_metrics(y, model.predict_proba(X)[:, 1])["pr_auc"]
        assert pr_auc == pytest.approx(models.summary.loc[role, "pr_auc"])
        assert pr_auc > 2 * max(random_metrics["pr_auc"], random_metrics["positive_rate"]), role
