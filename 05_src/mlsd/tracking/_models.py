"""Logging scikit-learn models to MLflow: signatures, the types skops may load, pinned requirements."""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mlsd.tracking._store import _mlflow, quiet

if TYPE_CHECKING:
    from types import ModuleType

    from mlflow.models import ModelSignature

TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "mlsd.")
"""Modules whose types :func:`trusted_types` lets skops load; anything else is refused."""


def _skops_io() -> ModuleType:
    """skops.io, imported on first use (seconds): only logging a model needs it."""
    import skops.io

    return skops.io


def model_signature(X: pd.DataFrame, proba) -> ModelSignature:
    """The MLflow signature of a classifier that maps ``X`` to class probabilities.

    Inferred from a sample of inputs and outputs, with every input column marked
    *required*: a request without a column is then refused by MLflow with a message
    naming it. (MLflow infers columns that had a missing value in the sample as
    optional, and a missing optional column would only fail later, inside the model,
    with a vague error.) Missing *values* stay allowed in numeric columns.
    """
    mlflow = _mlflow()
    ColSpec, Schema = mlflow.types.schema.ColSpec, mlflow.types.schema.Schema
    with quiet():
        signature = mlflow.models.infer_signature(X, np.asarray(proba))
    if signature.inputs is not None and signature.inputs.has_input_names():
        signature.inputs = Schema(
            [ColSpec(spec.type, spec.name, required=True) for spec in signature.inputs.inputs]
        )
    return signature


def trusted_types(estimator, allowed_prefixes: Sequence[str] = TRUSTED_PREFIXES) -> list[str]:
    """The types skops must be told to trust to load ``estimator`` (for ``log_model``).

    skops, MLflow 3's default format for scikit-learn models, refuses to load a type
    it does not know to be safe: fitted trees (``sklearn.tree._tree.Tree``,
    HistGradientBoosting's ``TreePredictor``), ``numpy.dtype`` and the course's own
    transformers (``mlsd.features.DateParts``) among them. This serialises the fitted
    estimator with skops and lists what it would refuse.

    Parameters
    ----------
    estimator : fitted estimator
        Usually a fitted ``Pipeline``; unfitted models have fewer types to trust.
    allowed_prefixes : sequence of str
        Modules whose types may be trusted. A type from anywhere else (a class defined
        in a notebook, a lambda) raises, instead of being trusted blindly.

    Returns
    -------
    list of str
        Sorted type names, e.g. ``['mlsd.features.DateParts', 'numpy.dtype', ...]``.

    Raises
    ------
    ValueError
        When the estimator holds a type outside ``allowed_prefixes``.

    Examples
    --------
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> trusted_types(DecisionTreeClassifier().fit([[0], [1]], [0, 1]))
    ['sklearn.tree._tree.Tree']
    """
    skops_io = _skops_io()
    untrusted = skops_io.get_untrusted_types(data=skops_io.dumps(estimator))
    refused = sorted(t for t in untrusted if not t.startswith(tuple(allowed_prefixes)))
    if refused:
        raise ValueError(
            f"The model holds types skops will not trust: {refused}. Define custom transformers in a "
            "module (e.g. in mlsd), not in a notebook or as a lambda, or pass allowed_prefixes= if you "
            "trust them."
        )
    return sorted(untrusted)


def _pip_requirements() -> list[str]:
    """Pinned requirements for a logged model (explicit, so MLflow skips its slow inference)."""
    pins = []
    for package in ("mlflow", "scikit-learn", "skops", "pandas", "numpy", "scipy"):
        try:
            pins.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            pins.append(package)
    return pins


def _log_sklearn_model(model, X: pd.DataFrame, name: str) -> str:
    """Log a fitted classifier with its signature, an input example and trusted types; return its URI."""
    mlflow = _mlflow()
    sample = X.head(100)
    signature = model_signature(sample, model.predict_proba(sample))
    with quiet():
        info = mlflow.sklearn.log_model(
            model,
            name=name,
            signature=signature,
            input_example=X.head(5),
            pyfunc_predict_fn="predict_proba",
            skops_trusted_types=trusted_types(model),
            pip_requirements=_pip_requirements(),
        )
    return info.model_uri
