"""Pure parts of tracking, training and serving: settings, parameters, types, messages (no store, no database)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from mlsd import cli, serving, tracking, training
from mlsd.config import get_settings
from mlsd.features import make_preprocessor


def test_tracking_uri_defaults_to_a_sqlite_store_under_the_data_dir(isolated_env):
    uri = tracking.tracking_uri()
    assert uri == f"sqlite:///{(isolated_env / 'data' / 'mlflow' / 'mlflow.db').as_posix()}"
    assert tracking.artifact_root(uri) == (isolated_env / "data" / "mlflow" / "artifacts").as_uri()


def test_tracking_uri_follows_the_environment_then_the_argument(isolated_env, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.example:5000")
    assert tracking.tracking_uri() == "http://tracking.example:5000"
    assert tracking.artifact_root(tracking.tracking_uri()) is None  # the server decides
    explicit = get_settings(mlflow_tracking_uri="sqlite:////srv/runs.db")
    assert tracking.tracking_uri(explicit) == "sqlite:////srv/runs.db"
    assert tracking.artifact_root("sqlite:////srv/runs.db") == "file:///srv/artifacts"


def test_importing_the_modules_does_no_work(isolated_env):
    code = (
        "import sys, mlsd.tracking, mlsd.serving\n"
        "print(sorted(m for m in ('mlflow', 'sklearn', 'distributed') if m in sys.modules))\n"
        "import mlsd.training\n"  # builds scikit-learn models in every function: sklearn may load
        "print(sorted(m for m in ('mlflow', 'distributed') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    light, training = (json.loads(line.replace("'", '"')) for line in out.stdout.splitlines())
    assert light == [] and training == []  # heavy libraries load on first use
    assert not (isolated_env / "data").exists()  # and no store is created


def test_flatten_params_keeps_values_and_drops_nested_estimators():
    pipeline = Pipeline(
        [("log", FunctionTransformer(np.log1p)), ("model", LogisticRegression(C=0.25, tol=1e-3))]
    )
    params = tracking.flatten_params(pipeline.get_params(deep=True))
    assert params["model__C"] == "0.25"
    assert params["model__tol"] == "0.001"
    assert params["log__func"] == "numpy.log1p"  # a stable name, not a memory address
    assert "steps" not in params and "model" not in params
    long = tracking.flatten_params({"columns": list(range(500))}, max_length=40)["columns"]
    assert len(long) == 40 and long.endswith("...")


class NotebookTransformer(TransformerMixin, BaseEstimator):
    """A transformer defined outside the trusted modules, like one written in a notebook."""

    def fit(self, X, y=None):
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X):
        return X


def _frame(n: int = 60, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "income": rng.lognormal(8, 1, n),
            "channel": rng.choice(["web", "branch"], n),
            "applied_at": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 10**7, n), unit="s"),
        }
    )
    return X, (rng.random(n) < 0.3).astype(int)


def test_trusted_types_names_trees_and_course_transformers():
    from sklearn.ensemble import HistGradientBoostingClassifier

    X, y = _frame()
    prep = make_preprocessor(numeric=["income"], categorical=["channel"], dates=["applied_at"])
    model = Pipeline([("prep", prep), ("model", HistGradientBoostingClassifier(max_iter=5))]).fit(X, y)
    types = tracking.trusted_types(model)
    assert "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor" in types
    assert "mlsd.features.DateParts" in types
    assert all(t.startswith(tracking.TRUSTED_PREFIXES) for t in types)


def test_trusted_types_refuses_types_from_elsewhere():
    X, y = _frame()
    model = Pipeline([("mine", NotebookTransformer()), ("model", LogisticRegression())])
    model.fit(X[["income"]], y)
    with pytest.raises(ValueError, match="NotebookTransformer"):
        tracking.trusted_types(model)


def test_model_signature_requires_every_column_but_allows_missing_values():
    X = pd.DataFrame({"income": [1.0, np.nan], "channel": ["web", None]})
    signature = tracking.model_signature(X, np.array([[0.9, 0.1], [0.2, 0.8]]))
    specs = {spec.name: spec for spec in signature.inputs.inputs}
    assert set(specs) == {"income", "channel"}
    assert all(spec.required for spec in specs.values())


def test_model_input_has_the_signature_types():
    row = {c: ["7"] for c in training.model_columns()}
    row |= {"applied_at": ["2025-01-31T23:30:00+01:00"], "age": [None], "extra": ["dropped"]}
    out = training.model_input(pd.DataFrame(row))
    assert list(out.columns) == training.model_columns()
    assert out["amount"].dtype == "float64" and out.loc[0, "amount"] == 7.0
    assert np.isnan(out.loc[0, "age"])
    assert out.loc[0, "applied_at"] == pd.Timestamp("2025-01-31 22:30:00")  # naive UTC
    with pytest.raises(ValueError, match="region"):
        training.model_input(pd.DataFrame(row).drop(columns="region"))


def test_server_messages_are_cut_to_their_gist():
    dump = "Failed to predict data '  a  b\n0  1  2'. \nError: Failed to enforce schema of data '...'. "
    assert serving._summary(dump + "Error: Model is missing inputs ['age'].") == (
        "Model is missing inputs ['age']."
    )
    assert serving._summary("Invalid input. Ensure that input is a valid JSON\nInput: x") == (
        "Invalid input. Ensure that input is a valid JSON"
    )


@pytest.mark.parametrize(
    ("tags", "expected"),
    [({"threshold": "0.17"}, 0.17), ({}, 0.5), ({"threshold": "high"}, 0.5), ({"threshold": "7"}, 0.5)],
)
def test_decision_threshold_comes_from_the_version_tag(tags, expected):
    assert serving._threshold(tags) == pytest.approx(expected)


def test_mlflow_ui_with_a_tracking_server_only_points_at_it(isolated_env, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.example:5000")
    ui = tracking.mlflow_ui(port=5999)
    assert ui.url == "http://tracking.example:5000" and ui.command is None
    assert cli.main(["mlflow", "ui", "--port", "5999"]) == 0
    assert "open http://tracking.example:5000 in a browser" in capsys.readouterr().out
    assert not (isolated_env / "data").exists()


def test_mlflow_ui_command_opens_the_local_store_and_its_artifacts():
    ui = tracking.mlflow_ui(
        5050, settings=get_settings(mlflow_tracking_uri="sqlite:////srv/mlflow/mlflow.db")
    )
    command = ui.command
    assert ui.url == "http://127.0.0.1:5050"
    assert command[1:4] == ["-m", "mlflow", "ui"]
    options = dict(zip(command[4::2], command[5::2], strict=True))
    assert options["--backend-store-uri"] == "sqlite:////srv/mlflow/mlflow.db"
    assert options["--default-artifact-root"] == "file:///srv/mlflow/artifacts"
    assert options["--port"] == "5050" and options["--host"] == "127.0.0.1"


def test_search_settings_come_as_keywords_or_as_one_value_not_both():
    X, y = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]}), [0, 1, 0, 1]
    with pytest.raises(ValueError, match="not both"):
        tracking.tune(
            LogisticRegression(), {"C": [1.0]}, X, y, method="grid", search=tracking.SearchOptions()
        )
    with pytest.raises(ValueError, match="Unknown method 'bayes'"):
        tracking.tune(LogisticRegression(), {"C": [1.0]}, X, y, method="bayes")
    with pytest.raises(ValueError, match="n_iter must be a positive whole number"):
        tracking.SearchOptions(n_iter=0)
