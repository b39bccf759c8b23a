"""Errors that the course expects and explains.

An :class:`MLSDError` carries a message that names the cause and the next step.
The command line prints it without a traceback; notebooks show it as the
exception message.
"""

from __future__ import annotations

__all__ = ["MLSDError", "DatabaseError", "ConfigError"]


class MLSDError(RuntimeError):
    """An expected fault, with a message that says what to do next."""


class ConfigError(MLSDError):
    """A setting has a value the course cannot use."""


class DatabaseError(MLSDError):
    """PostgreSQL could not be started or reached."""
