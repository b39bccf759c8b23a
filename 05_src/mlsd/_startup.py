"""Start-up time of the course's own processes (the CLI, the grading child process, the tests).

``jsonschema`` imports ``rfc3987_syntax`` when it is installed (``jupyter-events`` asks for it), and
that module builds an Earley parser for IRIs at import: 2-5 s of CPU in every process that imports
``nbformat`` or ``nbclient``, for IRI formats no notebook schema uses. Entry points call
:func:`skip_slow_imports` first; library code never does (it would change its caller's process).
"""

from __future__ import annotations

import sys

__all__ = ["skip_slow_imports"]


def skip_slow_imports() -> None:
    """Make ``import rfc3987_syntax`` fail fast: ``jsonschema`` then skips IRI format checks."""
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[assignment]
