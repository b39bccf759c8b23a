"""Experiment tracking with MLflow: where runs go, cross-validation runs, tuning, the model registry.

The book's chapter 6 ("Model Development and Offline Evaluation") asks for every
experiment to be tracked so it can be compared and reproduced. This module is the
course's thin layer over MLflow 3:

- **Where runs go.** :func:`tracking_uri` resolves ``MLFLOW_TRACKING_URI`` (a tracking
  server, e.g. the Docker compose one) or, by default, a local store: a SQLite
  database ``<data_dir>/mlflow/mlflow.db`` with artifacts beside it in
  ``<data_dir>/mlflow/artifacts`` (MLflow 3 refuses the old ``./mlruns`` file store
  unless told otherwise, and recommends a database). :func:`configure` points MLflow
  at it; nothing happens at import.
- **Runs.** :func:`cross_validate_and_log` cross-validates a pipeline and logs its
  parameters, per-fold and mean scores, a precision-recall curve of the out-of-fold
  predictions and the refitted model. :func:`tune` searches hyperparameters (grid,
  random or successive halving, optionally on a Dask cluster) and logs each
  candidate as a child run.
- **Models.** Scikit-learn models are saved with skops (MLflow's safe default), which
  loads only types it is told to trust: :func:`trusted_types` lists them.
  :func:`register_model`, :func:`set_alias`, :func:`promote` and :func:`load_model`
  manage versions with the aliases ``champion`` and ``challenger`` (MLflow's stages
  are deprecated).
- **The UI.** :func:`mlflow_ui` says where to see the runs (``mlsd mlflow ui`` starts it).

The code: parameters (``_params``) and figures (``_figures``) are pure; MLflow I/O is in
``_store`` (where runs go), ``_runs`` (cross-validation, searches), ``_models`` (logging a
model), ``_registry`` and ``_ui``. MLflow, scikit-learn, skops, matplotlib and Dask load on
first use, so ``import mlsd.tracking`` is quick.

Example
-------
>>> from sklearn.linear_model import LogisticRegression
>>> from mlsd import tracking
>>> tracking.configure()  # doctest: +SKIP
>>> result = tracking.cross_validate_and_log(LogisticRegression(), X, y, cv=5, run_name="logreg")  # doctest: +SKIP
>>> version = tracking.register_model(result.model_uri, "lending-default")  # doctest: +SKIP
>>> tracking.promote("lending-default", version)  # doctest: +SKIP
"""

from mlsd.tracking._figures import pr_curve_figure
from mlsd.tracking._models import TRUSTED_PREFIXES, model_signature, trusted_types
from mlsd.tracking._params import DEFAULT_SCORING, flatten_params
from mlsd.tracking._registry import (
    ALIASES,
    RegistryError,
    get_model_version,
    load_model,
    promote,
    register_model,
    set_alias,
)
from mlsd.tracking._runs import CVResult, SearchOptions, TuneResult, cross_validate_and_log, tune
from mlsd.tracking._store import (
    DEFAULT_EXPERIMENT,
    artifact_root,
    configure,
    get_or_create_experiment,
    quiet,
    tracking_uri,
)
from mlsd.tracking._ui import MlflowUI, mlflow_ui

__all__ = [
    "ALIASES",
    "DEFAULT_EXPERIMENT",
    "DEFAULT_SCORING",
    "TRUSTED_PREFIXES",
    "CVResult",
    "RegistryError",
    "SearchOptions",
    "TuneResult",
    "MlflowUI",
    "artifact_root",
    "configure",
    "cross_validate_and_log",
    "flatten_params",
    "get_model_version",
    "get_or_create_experiment",
    "load_model",
    "mlflow_ui",
    "model_signature",
    "pr_curve_figure",
    "promote",
    "quiet",
    "register_model",
    "set_alias",
    "tracking_uri",
    "trusted_types",
    "tune",
]
