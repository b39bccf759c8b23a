"""Course logging: one console handler and one file under ``05_src/logs/``.

Calling :func:`get_logger` again (a notebook cell re-run) reuses the handlers
instead of adding more, so lines are never printed twice.

Example
-------
>>> from mlsd.logging import get_logger
>>> log = get_logger("session1")  # doctest: +SKIP
>>> log.info("environment checked")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from mlsd.config import get_settings

__all__ = ["get_logger", "log_file"]

_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_MARK = "_mlsd_handler"


def log_file(log_dir: Path | None = None) -> Path:
    """Path of the course log file (``05_src/logs/mlsd.log`` by default)."""
    return Path(log_dir or get_settings().log_dir) / "mlsd.log"


def get_logger(
    name: str = "mlsd", *, level: str | None = None, log_dir: Path | None = None
) -> logging.Logger:
    """Return a logger that writes to the console and to the course log file.

    Parameters
    ----------
    name : str
        Logger name; names below ``mlsd`` share its handlers.
    level : str, optional
        Level such as ``"DEBUG"``; defaults to ``LOG_LEVEL`` (``INFO``).
    log_dir : Path, optional
        Folder for ``mlsd.log``; defaults to ``MLSD_LOG_DIR`` (``05_src/logs``).
    """
    settings = get_settings(log_level=level)
    logger = logging.getLogger(name)
    logger.setLevel(settings.log_level)
    path = log_file(log_dir or settings.log_dir)
    existing = [h for h in logger.handlers if getattr(h, _MARK, False)]
    if existing and any(getattr(h, "baseFilename", None) == str(path) for h in existing):
        return logger
    for handler in existing:  # the log folder changed: replace our handlers
        logger.removeHandler(handler)
        handler.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    formatter = logging.Formatter(_FORMAT, datefmt="%Y-%m-%d %H:%M:%S")
    # stdout, not stderr: notebooks and nbgrader treat stderr as an error stream.
    console = logging.StreamHandler(sys.stdout)
    file_handler = logging.FileHandler(path, encoding="utf-8")
    for handler in (console, file_handler):
        handler.setFormatter(formatter)
        setattr(handler, _MARK, True)
        logger.addHandler(handler)
    logger.propagate = False
    return logger
