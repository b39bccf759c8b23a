"""The feedback-loop experiment of session 6 on generated data: what an approved-only lender learns.

A lender that approves only applicants below its threshold observes only their outcomes. The
experiment (``mlsd.experiments.feedback_loop_experiment``) retrains on what each policy lets the
lender see and scores the models on every applicant of later months, whose outcomes the
generator knows. The notebook claims, and this test checks on a smaller data set of its own:

- the approved loans' default rate is below the population's, and the inverse-propensity-weighted
  rate of the approved-plus-explored loans is closer to it;
- the model trained on approved loans only underestimates the population's risk (its mean score is
  below the default rate and below the mean score of the exploration + IPW model);
- and it ranks the population no better than the exploration + IPW model (ROC-AUC).

Data: 9,000 applications over 21 months (15 drift-free months, six more for their labels).
"""

from __future__ import annotations

import pytest
from threadpoolctl import threadpool_limits

from mlsd import db, experiments, pipelines, training
from mlsd.data import SCENARIOS, generate, true_probability

pytestmark = pytest.mark.integration

SEED = 11
ROWS = 9_000
MONTHS = 21
FIRST_DRIFT = min(scenario["start_month"] for scenario in SCENARIOS.values())


@pytest.fixture(scope="module")
def gold(tmp_path_factory, databases):
    landing = tmp_path_factory.mktemp("landing") / "feedback"
    generate(landing, rows=ROWS, months=MONTHS, seed=SEED, progress=False)
    url = databases.create()
    conn = db.connect(url)
    try:
        pipelines.load(conn, landing)
        frame = db.read_sql(
            conn,
            "SELECT * FROM gold.application_features WHERE serious_dlq IS NOT NULL AND month < %s "
            "ORDER BY applied_at, application_id",
            (FIRST_DRIFT,),
        )
    finally:
        conn.close()
        databases.drop(url)
    return frame


def periods(frame):
    parts = {
        "history": frame[frame["month"] <= "2024-06"],
        "live": frame[frame["month"].between("2024-07", "2024-12")],
        "eval": frame[frame["month"].between("2025-01", "2025-03")],
    }
    return {
        name: (training.model_input(p), p["serious_dlq"].to_numpy(dtype=int), p) for name, p in parts.items()
    }


def small_model():
    model = training.tuned_pipeline(random_state=0)
    return model.set_params(model__max_iter=100, model__max_leaf_nodes=15)


@pytest.fixture(scope="module")
def result(gold):
    parts = periods(gold)
    (Xh, yh, _), (Xl, yl, _), (Xe, ye, eval_rows) = parts["history"], parts["live"], parts["eval"]
    with threadpool_limits(limits=1):
        return experiments.feedback_loop_experiment(
            small_model(),
            Xh,
            yh,
            Xl,
            yl,
            Xe,
            ye,
            threshold=0.15,
            exploration=0.1,
            random_state=SEED,
            truth_eval=true_probability(eval_rows, eval_rows["month"]),
        )


def test_the_approved_loans_understate_the_default_rate_and_ipw_corrects_it(result):
    table, policy = result.table, result.policy
    population = policy["y"].mean()
    approved_only = table.loc["approved only", "train_default_rate"]
    ipw = table.loc["approved + exploration, IPW", "train_default_rate"]
    assert approved_only < population
    assert abs(ipw - population) < abs(approved_only - population)
    assert policy["explored"].sum() > 0 and not policy.loc[policy["explored"], "approved"].eq(False).any()


def test_the_approved_only_model_underestimates_the_populations_risk(result):
    table = result.table
    approved_only = table.loc["approved only"]
    ipw = table.loc["approved + exploration, IPW"]
    assert approved_only["mean_score"] < approved_only["default_rate"]
    assert approved_only["mean_score"] < ipw["mean_score"]


def test_the_approved_only_model_ranks_no_better_than_exploration_with_ipw(result):
    table = result.table
    assert table.loc["approved only", "roc_auc"] <= table.loc["approved + exploration, IPW", "roc_auc"]
    assert table.loc["approved only", "roc_auc"] < table.loc["all labels (no lender sees these)", "roc_auc"]
