"""MLflow tracking on a real, throwaway store: runs, logged models, tuning (also on Dask), the registry."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score
from sklearn.model_selection import StratifiedKFold, cross_validate
from sklearn.pipeline import Pipeline

from mlsd import tracking
from mlsd.features import make_preprocessor

pytestmark = pytest.mark.integration

SEED = 20250401


@pytest.fixture(scope="module", autouse=True)
def one_thread_per_fit():
    """Fits use one BLAS/OpenMP thread, as in `mlsd train`: on a busy runner, OpenMP threads that wait crawl."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A fresh SQLite MLflow store for this module; MLflow is pointed back at nothing afterwards."""
    import mlflow

    root = tmp_path_factory.mktemp("mlflow")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{(root / 'store' / 'mlflow.db').as_posix()}")
        mp.setenv("MLSD_DATA_DIR", str(root / "data"))
        mp.setenv("MLSD_LOG_DIR", str(root / "logs"))
        mp.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
        uri = tracking.configure()
        yield uri
        mlflow.set_tracking_uri(None)


def course_like(n: int = 400, seed: int = SEED) -> tuple[pd.DataFrame, np.ndarray]:
    """Numeric, categorical and timestamp columns with a learnable signal and about 20% positives."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "application_id": [f"A{i:06d}" for i in range(n)],
            "utilization": rng.gamma(1.0, 0.4, n),
            "late": rng.poisson(0.3, n).astype(float),
            "income": np.where(rng.random(n) < 0.2, np.nan, rng.lognormal(8, 0.5, n)),
            "channel": rng.choice(["web", "branch", "broker"], n),
            "applied_at": pd.Timestamp("2024-01-01")
            + pd.to_timedelta(rng.integers(0, 3 * 10**7, n), unit="s"),
        }
    )
    logit = -2.2 + 1.8 * X["utilization"] + 0.9 * X["late"] + 0.5 * (X["channel"] == "broker")
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


def prep(scaler="standard"):
    return make_preprocessor(
        numeric=["utilization", "late", "income"],
        categorical=["channel"],
        dates=["applied_at"],
        scaler=scaler,
    )


def logreg(C: float = 1.0) -> Pipeline:
    return Pipeline([("prep", prep()), ("model", LogisticRegression(C=C, max_iter=1000))])


def boosting() -> Pipeline:
    model = HistGradientBoostingClassifier(max_iter=30, random_state=0)
    return Pipeline([("prep", prep(scaler=None)), ("model", model)])


@pytest.fixture(scope="module")
def data():
    return course_like()


@pytest.fixture(scope="module")
def logged(store, data):
    """One cross-validated logistic regression run, shared by several tests."""
    X, y = data
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    result = tracking.cross_validate_and_log(
        logreg(), X, y, cv=cv, run_name="logreg", experiment="tests", params={"data": "synthetic"}
    )
    return result, cv


def test_cv_run_logs_the_fold_scores_it_computed(logged, data):
    from mlflow.tracking import MlflowClient

    result, cv = logged
    X, y = data
    expected = cross_validate(logreg(), X, y, cv=cv, scoring=tracking.DEFAULT_SCORING)
    client = MlflowClient()
    history = client.get_metric_history(result.run_id, "cv_pr_auc")
    assert [m.step for m in history] == [0, 1, 2]
    np.testing.assert_allclose([m.value for m in history], expected["test_pr_auc"], rtol=1e-12)
    run = client.get_run(result.run_id)
    assert run.data.metrics["cv_roc_auc_mean"] == pytest.approx(expected["test_roc_auc"].mean())
    assert run.data.metrics["cv_pr_auc_std"] == pytest.approx(expected["test_pr_auc"].std())
    assert result.metrics["cv_pr_auc_mean"] == pytest.approx(expected["test_pr_auc"].mean())


def test_cv_run_logs_params_figure_and_out_of_fold_scores(logged, data):
    from mlflow.tracking import MlflowClient

    result, _ = logged
    X, y = data
    client = MlflowClient()
    params = client.get_run(result.run_id).data.params
    assert params["model__C"] == "1.0" and params["cv_n_splits"] == "3" and params["data"] == "synthetic"
    assert "steps" not in params
    assert [a.path for a in client.list_artifacts(result.run_id, "figures")] == ["figures/pr_curve.png"]
    assert np.isfinite(result.oof_scores).all()  # stratified folds cover every row once
    # out-of-fold scores rank as well as the folds did, not as well as a model scoring its own training rows
    oof_ap = average_precision_score(y, result.oof_scores)
    in_sample_ap = average_precision_score(y, result.model.predict_proba(X)[:, 1])
    assert oof_ap == pytest.approx(result.metrics["cv_pr_auc_mean"], abs=0.05)
    assert oof_ap < in_sample_ap


def test_experiment_keeps_artifacts_beside_the_store(store, logged):
    import mlflow

    experiment = mlflow.get_experiment_by_name("tests")
    assert experiment.artifact_location == f"{tracking.artifact_root(store)}/tests"
    assert tracking.get_or_create_experiment("tests") == experiment.experiment_id
    mlflow.delete_experiment(experiment.experiment_id)
    assert tracking.get_or_create_experiment("tests") == experiment.experiment_id  # restored, not duplicated
    assert mlflow.get_experiment(experiment.experiment_id).lifecycle_stage == "active"


def test_logged_model_loads_back_and_predicts_the_same(logged, data):
    import mlflow.pyfunc
    import mlflow.sklearn

    result, _ = logged
    X, _ = data
    expected = result.model.predict_proba(X)
    np.testing.assert_allclose(mlflow.sklearn.load_model(result.model_uri).predict_proba(X), expected)
    pyfunc = mlflow.pyfunc.load_model(result.model_uri)
    np.testing.assert_allclose(np.asarray(pyfunc.predict(X)), expected)  # pyfunc predicts probabilities
    assert all(spec.required for spec in pyfunc.metadata.get_input_schema().inputs)


def test_tree_model_with_course_transformers_round_trips_through_skops(store, data):
    import mlflow.pyfunc
    import mlflow.sklearn
    from mlflow.models import Model

    X, y = data
    result = tracking.cross_validate_and_log(boosting(), X, y, cv=2, experiment="tests", figures=())
    flavor = Model.load(result.model_uri).flavors["python_function"]
    sk_flavor = Model.load(result.model_uri).flavors["sklearn"]
    assert sk_flavor["serialization_format"] == "skops"
    assert "mlsd.features.DateParts" in sk_flavor["skops_trusted_types"]
    assert any("TreePredictor" in t for t in sk_flavor["skops_trusted_types"])
    assert flavor["predict_fn"] == "predict_proba"
    expected = result.model.predict_proba(X)
    np.testing.assert_allclose(mlflow.sklearn.load_model(result.model_uri).predict_proba(X), expected)
    np.testing.assert_allclose(np.asarray(mlflow.pyfunc.load_model(result.model_uri).predict(X)), expected)


@pytest.fixture(scope="module")
def tuned(store, data):
    X, y = data
    grid = {"model__C": [0.01, 0.1, 1.0, 10.0]}
    result = tracking.tune(
        logreg(), grid, X, y, method="random", n_iter=3, cv=3, random_state=SEED, experiment="tests"
    )
    return result


def test_tune_logs_each_candidate_as_a_child_run(tuned):
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    assert len(tuned.child_run_ids) == len(tuned.cv_results) == 3
    children = [client.get_run(run_id) for run_id in tuned.child_run_ids]
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {tuned.run_id}
    parent_experiment = client.get_run(tuned.run_id).info.experiment_id
    assert {c.info.experiment_id for c in children} == {parent_experiment}
    logged = sorted((c.data.params["model__C"], c.data.metrics["cv_pr_auc_mean"]) for c in children)
    expected = sorted(
        (str(p["model__C"]), s)
        for p, s in zip(tuned.cv_results["params"], tuned.cv_results["mean_test_pr_auc"], strict=True)
    )
    assert [c for c, _ in logged] == [c for c, _ in expected]
    np.testing.assert_allclose([s for _, s in logged], [s for _, s in expected])
    parent = client.get_run(tuned.run_id).data
    assert parent.metrics["best_cv_pr_auc"] == pytest.approx(max(s for _, s in logged))
    assert parent.params["best.model__C"] == str(tuned.best_params["model__C"])
    assert parent.params["model__C"] == str(tuned.best_params["model__C"])  # the refitted pipeline


def test_tune_logs_the_refitted_best_model(tuned, data):
    import mlflow.sklearn

    X, _ = data
    loaded = mlflow.sklearn.load_model(tuned.model_uri)
    assert loaded.get_params()["model__C"] == tuned.best_params["model__C"]
    np.testing.assert_allclose(loaded.predict_proba(X), tuned.model.predict_proba(X))


def test_halving_search_logs_rounds_as_child_runs(store, data):
    from mlflow.tracking import MlflowClient

    X, y = data
    distributions = {"model__C": [0.001, 0.01, 0.1, 1.0, 10.0]}
    result = tracking.tune(
        logreg(), distributions, X, y, method="halving", n_iter=4, cv=3, random_state=SEED,
        experiment="tests", log_model=False,
    )  # fmt: skip
    rounds = result.cv_results["iter"]
    assert rounds.nunique() >= 2 and len(result.child_run_ids) == len(result.cv_results)
    assert np.isfinite(result.cv_results["mean_test_score"]).all()  # every round had both classes
    child = MlflowClient().get_run(result.child_run_ids[-1]).data
    assert child.params["iter"] == str(rounds.iloc[-1])
    assert int(child.params["n_resources"]) > int(result.cv_results["n_resources"].iloc[0])


@pytest.mark.slow  # starts a worker process
def test_tune_on_a_dask_cluster_matches_the_local_search(store, data, monkeypatch):
    from distributed import LocalCluster

    X, y = data
    grid = {"model__C": [0.1, 1.0]}
    local = tracking.tune(logreg(), grid, X, y, method="grid", cv=2, use_dask=False, log_model=False)
    # A worker process, as on a real cluster (in-process workers see the dask backend in nested joblib calls).
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=":0") as cluster:
        monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", cluster.scheduler_address)
        before = cluster.scheduler.transition_counter
        remote = tracking.tune(logreg(), grid, X, y, method="grid", cv=2, log_model=False)  # use_dask=None
        assert cluster.scheduler.transition_counter > before  # the fits ran on the cluster
    np.testing.assert_allclose(remote.cv_results["mean_test_pr_auc"], local.cv_results["mean_test_pr_auc"])
    assert remote.best_params == local.best_params


def test_registry_aliases_promotion_and_rollback(store, logged, tuned, data):
    X, _ = data
    first = tracking.register_model(logged[0].model_uri, "tests-model", tags={"threshold": 0.2})
    second = tracking.register_model(tuned.model_uri, "tests-model")
    assert int(second) == int(first) + 1

    assert tracking.promote("tests-model", first) == {"champion": first, "previous": None}
    tracking.set_alias("tests-model", "challenger", second)
    assert str(tracking.get_model_version("tests-model", "challenger").version) == second
    assert tracking.get_model_version("tests-model", "champion").tags["threshold"] == "0.2"

    assert tracking.promote("tests-model", second) == {"champion": second, "previous": first}
    assert str(tracking.get_model_version("tests-model", "previous").version) == first
    with pytest.raises(tracking.RegistryError, match="challenger"):
        tracking.get_model_version("tests-model", "challenger")  # the challenger won: alias removed
    champion = tracking.load_model("tests-model", "champion", flavor="sklearn")
    np.testing.assert_allclose(champion.predict_proba(X), tuned.model.predict_proba(X))

    assert tracking.promote("tests-model", first)["previous"] == second  # rollback is one call
    pyfunc = tracking.load_model("tests-model")
    np.testing.assert_allclose(np.asarray(pyfunc.predict(X)), logged[0].model.predict_proba(X))


def test_missing_model_or_alias_says_what_to_do(store):
    with pytest.raises(tracking.RegistryError, match="mlsd train"):
        tracking.get_model_version("no-such-model", "champion")
