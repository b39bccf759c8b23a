"""The model registry: versions, the aliases ``champion`` / ``challenger`` / ``previous``, loading."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mlsd.errors import MLSDError
from mlsd.tracking._params import _param_text
from mlsd.tracking._store import _ensure_configured, _mlflow, quiet

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

ALIASES = ("champion", "challenger", "previous")
"""Registry aliases the course uses: the model in production, the one competing with it, and the last champion."""


class RegistryError(MLSDError, LookupError):
    """A registered model or alias does not exist."""


def register_model(model_uri: str, name: str, *, tags: Mapping[str, Any] | None = None) -> str:
    """Register a logged model as a new version of ``name`` (created if needed).

    Parameters
    ----------
    model_uri : str
        ``models:/<model id>`` (from :class:`CVResult` / :class:`TuneResult`) or ``runs:/<run>/<path>``.
    name : str
        Registered model name, e.g. ``"lending-default"``.
    tags : mapping, optional
        Version tags, e.g. ``{"threshold": 0.18}``.

    Returns
    -------
    str
        The new version number, e.g. ``"3"``.
    """
    mlflow = _mlflow()
    _ensure_configured()
    with quiet(), contextlib.redirect_stderr(io.StringIO()):  # MLflow prints "Created version ..."
        version = mlflow.register_model(
            model_uri, name, tags={k: _param_text(v) for k, v in (tags or {}).items()}
        )
    return str(version.version)


def set_alias(name: str, alias: str, version: str | int) -> None:
    """Point ``alias`` (e.g. ``champion``) of registered model ``name`` at ``version``.

    An alias names one version at a time: setting it moves it from the version that
    had it. Aliases replace MLflow's deprecated stages (``Staging``, ``Production``).
    """
    _ensure_configured()
    with quiet():
        _mlflow().tracking.MlflowClient().set_registered_model_alias(name, alias, str(version))


def get_model_version(name: str, alias: str = "champion", *, uri: str | None = None) -> ModelVersion:
    """The version of ``name`` that ``alias`` points at (its ``.version``, ``.tags``, ``.aliases``...).

    Parameters
    ----------
    name, alias : str
        Registered model and alias.
    uri : str, optional
        Tracking URI to ask; MLflow's current one when omitted.

    Raises
    ------
    RegistryError
        When the model or the alias does not exist, saying how to create it.
    """
    mlflow = _mlflow()
    uri = uri or _ensure_configured()
    try:
        with quiet():
            return mlflow.tracking.MlflowClient(
                tracking_uri=uri, registry_uri=uri
            ).get_model_version_by_alias(name, alias)
    except mlflow.exceptions.MlflowException as err:
        raise RegistryError(
            f"No version of model {name!r} has the alias {alias!r} in the MLflow store at {uri}: "
            "train and register one first (`uv run mlsd train`), or check the name and alias."
        ) from err


def promote(
    name: str, version: str | int, *, previous_alias: str | None = "previous"
) -> dict[str, str | None]:
    """Make ``version`` the ``champion`` of ``name``; the old champion keeps the alias ``previous``.

    Keeping ``previous`` makes a rollback one call: ``promote(name, previous_version)``.
    If the promoted version was the ``challenger``, that alias is removed (a version is
    not its own challenger). Promoting the current champion changes nothing.

    Returns
    -------
    dict
        ``{"champion": version, "previous": old champion's version or None}``.
    """
    version = str(version)
    try:
        old = get_model_version(name, "champion")
    except RegistryError:
        old = None
    client = _mlflow().tracking.MlflowClient()
    with quiet():
        target = client.get_model_version(name, version)  # raises if the version does not exist
        if old is not None and str(old.version) != version and previous_alias:
            client.set_registered_model_alias(name, previous_alias, str(old.version))
        client.set_registered_model_alias(name, "champion", version)
        if "challenger" in (target.aliases or []):
            client.delete_registered_model_alias(name, "challenger")
    previous = None if old is None or str(old.version) == version else str(old.version)
    return {"champion": version, "previous": previous}


def load_model(name: str, alias: str = "champion", *, flavor: str = "pyfunc"):
    """Load the version of ``name`` that ``alias`` points at (``models:/name@alias``).

    Parameters
    ----------
    name, alias : str
        Registered model and alias.
    flavor : {"pyfunc", "sklearn"}
        ``pyfunc``: MLflow's generic model (checks inputs against the signature;
        ``predict`` returns class probabilities for course models). ``sklearn``: the
        pipeline itself, with ``predict_proba``.
    """
    mlflow = _mlflow()
    get_model_version(name, alias)  # a clear error when the alias is missing
    uri = f"models:/{name}@{alias}"
    with quiet():
        if flavor == "pyfunc":
            return mlflow.pyfunc.load_model(uri)
        if flavor == "sklearn":
            return mlflow.sklearn.load_model(uri)
    raise ValueError(f"flavor must be 'pyfunc' or 'sklearn', got {flavor!r}.")
