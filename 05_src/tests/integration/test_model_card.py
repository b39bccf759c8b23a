"""The model card of a registered champion, generated from its MLflow run in a throwaway store."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from mlsd import fairness, model_card, tracking

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    import mlflow

    root = tmp_path_factory.mktemp("mlflow")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{(root / 'store' / 'mlflow.db').as_posix()}")
        mp.setenv("MLSD_DATA_DIR", str(root / "data"))
        mp.setenv("MLSD_LOG_DIR", str(root / "logs"))
        yield tracking.configure()
        mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def champion(store):
    rng = np.random.default_rng(3)
    X = pd.DataFrame({"utilization": rng.gamma(1.0, 0.4, 300), "late": rng.poisson(0.3, 300).astype(float)})
    y = (rng.random(300) < 1 / (1 + np.exp(-(X["utilization"] * 2 + X["late"] - 2)))).astype(int)
    run = tracking.cross_validate_and_log(
        LogisticRegression(C=0.5),
        X,
        y,
        cv=StratifiedKFold(3),
        run_name="card-test",
        experiment="card-test",
        params={"train_months": "2024-01..2024-12", "valid_months": "2025-01..2025-03"},
    )
    version = tracking.register_model(run.model_uri, "card-test-model", tags={"threshold": 0.2})
    tracking.promote("card-test-model", version)
    scored = pd.DataFrame({"group": np.where(X["late"] > 0, "late", "on time"), "serious_dlq": y,
                           "score": run.model.predict_proba(X)[:, 1]})  # fmt: skip
    return run, version, scored


def test_the_card_names_the_champion_run_its_metrics_data_window_and_fairness(champion):
    run, version, scored = champion
    rates = fairness.group_rates(scored, "group", threshold=0.2, min_size=10)
    card = model_card.read_model_card(
        "card-test-model",
        intended_use="Rank applications by risk of default.",
        limitations=["Not for applicants under 21."],
        fairness={"by payment history": rates[["n", "approval_rate", "tpr", "fpr"]]},
    )
    text = model_card.render_model_card(card)
    assert card.run_id == run.run_id and card.version == version and "champion" in card.aliases
    assert run.run_id in text
    assert f"version {version}" in text.splitlines()[0]
    assert f"| cv_pr_auc_mean | {run.metrics['cv_pr_auc_mean']:.3f} |" in text
    assert "| train_months | 2024-01..2024-12 |" in text
    assert "| C | 0.5 |" in text  # the model's hyperparameter, without the pipeline prefix
    assert f"| late | {int(rates.loc['late', 'n'])} | {rates.loc['late', 'approval_rate']:.3f} |" in text
    assert "Decision threshold: 0.2" in text
    assert "- Not for applicants under 21." in text


def test_a_missing_alias_says_how_to_make_one(champion):
    with pytest.raises(tracking.RegistryError, match="alias 'nobody'"):
        model_card.read_model_card("card-test-model", alias="nobody")
