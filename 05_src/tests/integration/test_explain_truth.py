"""SHAP on the course data recovers what the ground-truth label model weighs.

The generator draws every label from a documented logistic model (``mlsd.data.ground_truth``).
For an additive model the exact SHAP value of a feature is ``coefficient * (f(x) - mean f)``, so
the truth's own importance ranking follows from its coefficients and the data. A gradient-boosted
model trained on gold rows from before any drift should rank the columns the same way at the top,
and push the columns the truth ignores (coefficient 0) into the bottom half.

Data: about 8,000 applications in the 15 drift-free months (2024-01 .. 2025-03), generated with six
more months so that the performance window (six months) has closed on every one of them and the
test stays around 20 s; only months before the first drift scenario are read.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline

from mlsd import db, explain, pipelines
from mlsd.data import COEFFICIENTS, LATE_COLUMNS, SCENARIOS, generate, truth_features
from mlsd.features import TARGET, course_feature_columns, make_preprocessor

pytestmark = pytest.mark.integration

SEED = 7
ROWS = 11_000
MONTHS = 21  # 15 drift-free months, then 6 for their labels to arrive
FIRST_DRIFT = min(scenario["start_month"] for scenario in SCENARIOS.values())

# Truth features that are not gold columns, and the gold columns they are computed from.
DERIVED = {"income_missing": ("monthly_income",), "late_sentinel": tuple(LATE_COLUMNS)}


@pytest.fixture(scope="module")
def gold(tmp_path_factory, databases) -> pd.DataFrame:
    """Labelled gold rows from the months before the first drift scenario."""
    landing = tmp_path_factory.mktemp("landing") / "explain_truth"
    generate(landing, rows=ROWS, months=MONTHS, seed=SEED, progress=False)
    url = databases.create()
    conn = db.connect(url)
    try:
        pipelines.load(conn, landing)
        frame = db.read_sql(
            conn,
            "SELECT * FROM gold.application_features "
            "WHERE serious_dlq IS NOT NULL AND month < %s ORDER BY application_id",
            (FIRST_DRIFT,),
        )
    finally:
        conn.close()
        databases.drop(url)
    assert len(frame) > 7_000 and frame["month"].max() < FIRST_DRIFT
    return frame


def truth_importance(frame: pd.DataFrame) -> pd.Series:
    """Mean |exact SHAP| of the ground truth per gold column, largest first."""
    features = truth_features(frame).dropna()  # rows hit by a defect have no true probability
    contributions = (features - features.mean()) * pd.Series(COEFFICIENTS)
    by_column: dict[str, pd.Series] = {}
    for name in COEFFICIENTS:
        columns = DERIVED.get(name, (name,))
        for column in columns:  # a derived feature is shared among the columns it comes from
            share = contributions[name] / len(columns)
            by_column[column] = by_column.get(column, 0.0) + share
    return pd.DataFrame(by_column).abs().mean().sort_values(ascending=False)


@pytest.fixture(scope="module")
def explained(gold):
    """A gradient-boosted pipeline on the gold features, and SHAP values for 1,000 of its rows."""
    columns = course_feature_columns()
    features = [c for kind in columns.values() for c in kind]
    model = Pipeline(
        [
            ("prep", make_preprocessor(**columns)),
            (
                "model",
                HistGradientBoostingClassifier(
                    max_iter=50,
                    learning_rate=0.05,
                    max_depth=3,
                    min_samples_leaf=100,
                    l2_regularization=1.0,
                    random_state=0,
                ),
            ),
        ]
    ).fit(gold[features], gold[TARGET].astype(int))
    sample = gold[features].sample(n=1_000, random_state=0)
    return model, sample, explain.explain(model, sample)


@pytest.fixture(scope="module")
def importance(gold, explained) -> pd.DataFrame:
    table = explain.global_importance(explained[2], group_by_source=True)
    print(f"seed {SEED}, {len(gold)} labelled rows before {FIRST_DRIFT}\n{table.to_string()}")
    return table


def test_the_truth_is_led_by_utilisation_and_late_payments(gold):
    truth = truth_importance(gold)
    assert truth.index[0] == "revolving_utilization"
    assert set(LATE_COLUMNS) & set(truth.index[:4])
    assert (truth[[c for c, v in COEFFICIENTS.items() if v == 0]] == 0).all()


def test_shap_ranks_what_the_truth_weighs_most_on_top(gold, importance):
    truth = truth_importance(gold)
    top4 = list(importance["feature"].head(4))
    print("truth:", truth.round(3).head(6).to_dict(), "\nmodel top 4:", top4)
    assert importance["feature"].iloc[0] == truth.index[0]
    assert len(set(top4) & set(truth.index[:4])) >= 3
    assert truth.index[0] in top4 and len(set(LATE_COLUMNS) & set(top4)) >= 2


def test_features_the_truth_ignores_rank_in_the_bottom_half(importance):
    zero = [name for name, coefficient in COEFFICIENTS.items() if coefficient == 0]
    assert zero  # open_credit_lines, real_estate_loans
    ranks = importance.set_index("feature")["rank"]
    half = len(importance) / 2
    for name in zero:
        assert ranks[name] > half, f"{name} ranks {ranks[name]} of {len(importance)}"


def test_shap_values_add_up_and_group_into_the_raw_columns(explained, importance):
    model, sample, explanation = explained
    total = explanation.base_values + explanation.values.sum(axis=1)
    np.testing.assert_allclose(total, model.decision_function(sample), atol=1e-6)
    assert "missingindicator_monthly_income" in explanation.feature_names
    assert set(importance["feature"]) == set(sample.columns)
