"""The limits a graded notebook runs under: one place for every default.

The CLI offers one option per limit (``mlsd grade autograde --memory-mb 2048 ...``); the
sandbox enforces them (see ``_sandbox``), and a submission that reaches one gets the affected
question ``error`` with a message that names the limit.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

__all__ = ["GradingOptions", "Limits"]


@dataclass(frozen=True)
class Limits:
    """What one graded notebook may use.

    Parameters
    ----------
    cell_timeout : int
        Seconds one cell may run before it is interrupted.
    notebook_timeout : int
        Seconds the whole notebook may run.
    memory_mb : int
        Address space of each process in the sandbox (``RLIMIT_AS``), in MiB.
    cpu_seconds : int
        CPU time of each process in the sandbox (``RLIMIT_CPU``).
    file_size_mb : int
        Largest file a process may write (``RLIMIT_FSIZE``), in MiB.
    processes : int
        Processes and threads the sandbox may run at once (``RLIMIT_NPROC``).
    open_files : int
        Open files per process (``RLIMIT_NOFILE``).
    workspace_mb : int
        Size of the working folder and of ``/tmp`` (each a memory file system), in MiB.
    output_kb_cell : int
        Output a cell may produce (text and data, as the grader receives it), in KiB.
    output_kb_notebook : int
        Output the whole notebook may produce, in KiB.

    Examples
    --------
    >>> Limits().memory_mb
    4096
    >>> Limits.from_options(memory_mb=2048, cpu_seconds=None).memory_mb
    2048
    """

    cell_timeout: int = 60
    notebook_timeout: int = 600
    memory_mb: int = 4096
    cpu_seconds: int = 900
    file_size_mb: int = 512
    processes: int = 256
    open_files: int = 1024
    workspace_mb: int = 1024
    output_kb_cell: int = 256
    output_kb_notebook: int = 2048

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"limit {item.name} must be a positive whole number, got {value!r}")

    @classmethod
    def from_options(cls, **options: int | None) -> Limits:
        """The defaults, overridden by the options that are not ``None``."""
        return replace(cls(), **{k: v for k, v in options.items() if v is not None})

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    # The messages that name each limit (used when a submission reaches one).
    def describe(self, name: str) -> str:
        """``"the memory limit (4096 MiB)"`` for a limit's field name."""
        units = {
            "cell_timeout": ("time limit of a cell", "s"),
            "notebook_timeout": ("time limit of the notebook", "s"),
            "memory_mb": ("memory limit", "MiB"),
            "cpu_seconds": ("CPU time limit", "s"),
            "file_size_mb": ("file size limit", "MiB"),
            "processes": ("limit on processes", ""),
            "open_files": ("limit on open files", ""),
            "workspace_mb": ("workspace size limit", "MiB"),
            "output_kb_cell": ("output limit of a cell", "KiB"),
            "output_kb_notebook": ("output limit of the notebook", "KiB"),
        }
        what, unit = units[name]
        value = getattr(self, name)
        return f"the {what} ({value} {unit})".replace(" )", ")")


@dataclass(frozen=True)
class GradingOptions:
    """How submissions are graded: the same for every submission of one run.

    Parameters
    ----------
    limits : Limits
        What each notebook may use.
    sandbox : bool
        Run learner code in the sandbox (default). ``False`` is for the instructors' own notebooks
        and marks every result ``sandbox: none``.
    database_url : str, optional
        The PostgreSQL server on which each submission gets its own database (default:
        ``DATABASE_URL`` or the embedded server).
    env : mapping
        Course settings for the kernels, e.g. ``{"MLSD_SCALE": "tiny"}`` (nothing else of the
        grader's environment reaches them).
    seed : int
        The grading seed for held-out inputs (``MLSD_GRADING_SEED`` in the kernels).
    reference_cache : path-like, optional
        Folder for cached reference values (default ``05_src/build/grading/reference``).
    progress : callable, optional
        Hears a short line as grading goes (``running the notebook, cell 12/80``), for a progress
        display; it decides nothing.
    """

    limits: Limits = field(default_factory=Limits)
    sandbox: bool = True
    database_url: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    seed: int = 0
    reference_cache: str | os.PathLike | None = None
    progress: Callable[[str], None] | None = field(default=None, compare=False, repr=False)

    def kernel_env(self) -> dict[str, str]:
        """The course settings the kernels get: the grader's scale unless ``env`` sets one."""
        from mlsd.config import get_settings

        return {"MLSD_SCALE": get_settings().scale, **{str(k): str(v) for k, v in self.env.items()}}

    def cache_dir(self) -> Path:
        from mlsd.config import repo_root

        if self.reference_cache is not None:
            return Path(self.reference_cache)
        return repo_root() / "05_src" / "build" / "grading" / "reference"
