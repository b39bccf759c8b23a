"""Settings for the course: explicit argument, then environment, then default.

The environment includes a ``.env`` file at the repository root (variables that
are already set in the process win over the file). Paths resolve from the
repository root, never from the current directory: VS Code runs each notebook
from its own folder. Nothing here runs at import time.

Example
-------
>>> from mlsd.config import get_settings
>>> get_settings(scale="tiny").scale
'tiny'
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from dotenv import dotenv_values

from mlsd.errors import ConfigError

__all__ = [
    "SETTING_NAMES",
    "SCALES",
    "Settings",
    "get_settings",
    "repo_root",
    "resolve",
]

SCALES = ("tiny", "small", "full")

# name -> default (None means "not set"); paths are relative to the repository root.
SETTING_NAMES: dict[str, str | None] = {
    "DATABASE_URL": None,
    "MLFLOW_TRACKING_URI": None,
    "MLSD_DATA_DIR": "05_src/data",
    "MLSD_LOG_DIR": "05_src/logs",
    "MLSD_SCALE": "small",
    "MLSD_DB_PORT": "54329",
    "DASK_SCHEDULER_ADDRESS": None,
    "LOG_LEVEL": "INFO",
}


@lru_cache(maxsize=1)
def repo_root() -> Path:
    """Return the repository root: the folder holding ``pyproject.toml`` and ``05_src``.

    The package is installed editable from ``05_src/mlsd``, so the root is found
    from this file's location rather than from the current directory.
    """
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file() and (parent / "05_src").is_dir():
            return parent
    raise ConfigError(
        f"Cannot find the course repository above {here}: install the package "
        "from a clone with `uv sync` (it installs `mlsd` editable)."
    )


def _dotenv_values() -> dict[str, str]:
    try:
        path = repo_root() / ".env"
    except ConfigError:
        return {}
    if not path.is_file():
        return {}
    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def resolve(name: str, explicit: str | None = None, default: str | None = None) -> str | None:
    """Resolve one setting: explicit argument, then environment, then ``.env``, then default.

    Parameters
    ----------
    name : str
        The environment variable name, e.g. ``"DATABASE_URL"``.
    explicit : str, optional
        A value given by the caller; it wins when not ``None``.
    default : str, optional
        Used when nothing else is set; falls back to the course default for ``name``.

    Returns
    -------
    str or None
        The value, or ``None`` when the setting is unset and has no default.
        An empty string in the environment counts as unset.
    """
    if explicit is not None:
        return str(explicit)
    value = os.environ.get(name)
    if value:
        return value
    value = _dotenv_values().get(name)
    if value:
        return value
    if default is not None:
        return default
    return SETTING_NAMES.get(name)


def _path(value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else repo_root() / path


@dataclass(frozen=True)
class Settings:
    """Resolved course settings (see :func:`get_settings`)."""

    database_url: str | None
    mlflow_tracking_uri: str | None
    data_dir: Path
    log_dir: Path
    scale: str
    db_port: int
    dask_scheduler_address: str | None
    log_level: str

    @property
    def postgres_dir(self) -> Path:
        """Data directory of the embedded PostgreSQL server."""
        return self.data_dir / "postgres"


def get_settings(
    *,
    database_url: str | None = None,
    mlflow_tracking_uri: str | None = None,
    data_dir: str | os.PathLike | None = None,
    log_dir: str | os.PathLike | None = None,
    scale: str | None = None,
    db_port: int | None = None,
    dask_scheduler_address: str | None = None,
    log_level: str | None = None,
) -> Settings:
    """Resolve every course setting; each keyword overrides its environment variable.

    Returns
    -------
    Settings
        Paths are absolute, resolved from the repository root.

    Raises
    ------
    ConfigError
        When ``MLSD_SCALE``, ``MLSD_DB_PORT`` or ``LOG_LEVEL`` has an unusable value.
    """
    scale_value = resolve("MLSD_SCALE", scale)
    if scale_value not in SCALES and not str(scale_value).isdigit():
        raise ConfigError(
            f"MLSD_SCALE={scale_value!r} is not a scale: use one of {', '.join(SCALES)} "
            "or a row count such as 50000."
        )
    port_value = resolve("MLSD_DB_PORT", None if db_port is None else str(db_port))
    try:
        port = int(port_value)
        if not 1 <= port <= 65535:
            raise ValueError
    except ValueError:
        raise ConfigError(
            f"MLSD_DB_PORT={port_value!r} is not a TCP port: set a number between 1024 and 65535 in .env."
        ) from None
    level = str(resolve("LOG_LEVEL", log_level)).upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ConfigError(f"LOG_LEVEL={level!r} is not a level: use DEBUG, INFO, WARNING or ERROR.")
    return Settings(
        database_url=resolve("DATABASE_URL", database_url),
        mlflow_tracking_uri=resolve("MLFLOW_TRACKING_URI", mlflow_tracking_uri),
        data_dir=_path(resolve("MLSD_DATA_DIR", None if data_dir is None else str(data_dir))),
        log_dir=_path(resolve("MLSD_LOG_DIR", None if log_dir is None else str(log_dir))),
        scale=str(scale_value),
        db_port=port,
        dask_scheduler_address=resolve("DASK_SCHEDULER_ADDRESS", dask_scheduler_address),
        log_level=level,
    )
