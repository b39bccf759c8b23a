"""What every session notebook needs first, and `mlsd course run`.

:func:`setup` is the one call in a notebook's set-up cell: it makes sure the
database answers (embedded unless ``DATABASE_URL`` is set), that the course data
for ``MLSD_SCALE`` is loaded (generating and loading it the first time, reusing it
after), fixes the random seed and returns the handles a lesson uses.

:func:`run_course` executes the six session notebooks in fresh kernels, in order,
as a facilitator does before class.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from mlsd import data, db, pipelines, quoted
from mlsd.config import Settings, get_settings, repo_root
from mlsd.data.manifest import MANIFEST_NAME
from mlsd.errors import MLSDError
from mlsd.logging import get_logger
from mlsd.notebooks import NotebookRun, run_notebook

__all__ = [
    "CourseSession",
    "SEED",
    "Quotable",
    "default_out",
    "ensure_course_data",
    "lab_notebooks",
    "quotable",
    "run_course",
    "setup",
]

SEED = 42


@dataclass
class CourseSession:
    """Handles for a notebook: connection, settings, landing folder and manifest."""

    conn: Any
    url: str
    settings: Settings
    landing: Path
    manifest: dict
    seed: int = SEED
    log: Any = field(default=None, repr=False)

    def engine(self):
        """A SQLAlchemy engine on the same database (for ``pandas.read_sql``)."""
        return db.engine(self.url)

    def __repr__(self) -> str:
        params = self.conn.get_dsn_parameters()
        rows = self.manifest.get("applications", "?")
        return (
            f"CourseSession(database={params.get('host')}:{params.get('port')}/{params.get('dbname')}, "
            f"scale={self.manifest.get('scale')}, applications={rows}, seed={self.seed})"
        )


def ensure_course_data(conn, *, scale: str | None = None, seed: int = SEED, settings: Settings | None = None):
    """Generate and load the course data unless this scale and seed are loaded already.

    Returns the landing folder and its manifest. Cheap when nothing needs doing: one
    query on ``bronze.load_log``. Data made by an older generator version is made again
    (the course's landing folders are derived data), and a landing folder written after
    the last load is loaded again.
    """
    settings = settings or get_settings()
    scale = str(scale or settings.scale)
    rows = int(scale) if scale.isdigit() else None
    landing = data.landing_dir(settings, scale=None if rows else scale, seed=seed, rows=rows)
    size = {"scale": "small" if rows else scale, "rows": rows, "seed": seed, "progress": False}
    try:
        manifest = data.generate(landing, **size)
    except MLSDError:
        old = json.loads((landing / MANIFEST_NAME).read_text(encoding="utf-8"))
        if old.get("generator_version") == data.GENERATOR_VERSION:
            raise
        manifest = data.generate(landing, **size, overwrite=True)  # made by an older generator
    loaded = db.read_sql(
        conn,
        """
        SELECT count(*) FROM pg_tables WHERE schemaname = 'bronze' AND tablename = 'load_log'
        """,
    ).iloc[0, 0]
    current = None
    if loaded:
        last = db.read_sql(
            conn,
            "SELECT landing_dir, finished_at FROM bronze.load_log WHERE finished_at IS NOT NULL "
            "ORDER BY load_id DESC LIMIT 1",
        )
        current = last.iloc[0, 0] if len(last) else None
        gold = db.read_sql(conn, "SELECT to_regclass('gold.application_features') IS NOT NULL AS ok").iloc[
            0, 0
        ]
        written = (landing / MANIFEST_NAME).stat().st_mtime
        stale = bool(len(last)) and last.iloc[0, 1].timestamp() < written  # regenerated since loaded
        current = current if gold and not stale else None
    if current != str(landing):
        pipelines.load(conn, landing)
    return landing, manifest


def setup(*, scale: str | None = None, seed: int = SEED, threads: int | None = 1) -> CourseSession:
    """Get a notebook ready: database, course data, seed, thread limits, logger.

    Parameters
    ----------
    scale : str, optional
        ``tiny``, ``small`` (default, from ``MLSD_SCALE``), ``full`` or a row count.
    seed : int
        Seed of the generated data and of NumPy's global generator.
    threads : int or None
        Threads for BLAS and OpenMP (NumPy, scikit-learn). The course's data are small, and
        one thread keeps timings steady on a busy laptop; ``None`` leaves the libraries' default.
    """
    settings = get_settings(scale=scale)
    url = db.database_url(settings=settings)
    conn = db.connect(url)
    db.ensure_schemas(conn)
    landing, manifest = ensure_course_data(conn, scale=settings.scale, seed=seed, settings=settings)
    np.random.seed(seed)  # for libraries that still read the global generator
    if threads is not None:
        threadpool_limits(limits=threads)
    return CourseSession(conn, url, settings, landing, manifest, seed, get_logger("mlsd.course"))


class Quotable:
    """A value, Series or DataFrame shown as usual, with its numbers attached to the output.

    The numbers travel in the output's metadata (``mlsd_quotable``), which no front end shows:
    the learner sees the object's own display; ``mlsd course run`` collects them into
    ``numbers.json`` and compares them with the markers in the slides (:mod:`mlsd.quoted`).
    """

    def __init__(self, name: str, obj: Any):
        self.name, self.obj = name, obj

    def _repr_mimebundle_(self, include=None, exclude=None):
        from IPython import get_ipython  # only ever called inside IPython
        from IPython.core.formatters import DisplayFormatter

        shell = get_ipython()
        formatter = shell.display_formatter if shell is not None else DisplayFormatter()
        bundle, metadata = formatter.format(self.obj, include=include, exclude=exclude)
        numbers = {"name": self.name, "numbers": quoted.flatten(self.name, self.obj)}
        return bundle, {**metadata, quoted.METADATA_KEY: numbers}

    def __repr__(self) -> str:
        return repr(self.obj)


def quotable(name: str, obj: Any) -> Quotable:
    """Show ``obj`` (a value, Series or DataFrame) and publish its numbers under ``name``.

    The slides may quote a published number with a marker naming it, e.g.
    ``0.14 ms<!-- run: 01:latency/features of one application/p50_ms x3 -->``; ``mlsd course run``
    checks that every quoted number still agrees with the run (:mod:`mlsd.quoted`).

    Examples
    --------
    >>> quotable("break_even", 0.118)
    0.118
    """
    return Quotable(name, obj)


# -- mlsd course run -------------------------------------------------------------------------


def lab_notebooks(root: Path | None = None) -> list[Path]:
    """The session notebooks in order (``01_materials/labs/NN_*.ipynb``)."""
    folder = (root or repo_root()) / "01_materials" / "labs"
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))


def default_out() -> Path:
    """Where `mlsd course run` writes the executed notebooks, ``summary.json`` and ``numbers.json``."""
    return repo_root() / "05_src" / "build" / "course"


def run_course(
    *,
    scale: str | None = None,
    only: list[int] | None = None,
    out: Path | None = None,
    cell_timeout: int = 300,
    progress: Callable[[int, int, Path, NotebookRun | None], None] | None = None,
    notebooks: list[Path] | None = None,
    on_cell: Callable[[int, int], None] | None = None,
    on_stage: Callable[[str], None] | None = None,
    restarts: int = 1,
) -> list[NotebookRun]:
    """Execute the session notebooks in order, each in a fresh kernel.

    Writes the executed notebooks and their HTML to ``out`` (default ``05_src/build/course``),
    with ``summary.json`` (time and memory per notebook) and ``numbers.json`` (the numbers each
    notebook published with :func:`quotable`, see :mod:`mlsd.quoted`), and returns one :class:`mlsd.notebooks.NotebookRun` per notebook. The data for the
    scale is prepared once first, so every notebook starts from the same state.

    ``only`` keeps the sessions with these numbers; ``notebooks`` replaces the session
    notebooks (for tests and for trying a new notebook before it joins ``01_materials/labs``).

    Progress goes to callbacks (``mlsd course run`` prints from them): ``on_stage(text)`` when
    a preparation step begins (the database, the data, a restart); ``progress(index, total,
    path, run)`` before each notebook (``run`` is ``None``) and after it; ``on_cell(cell,
    cells)`` before each cell of the running notebook.

    When the course's own embedded server has stopped (killed, crashed) before a notebook, or
    during one that then failed, it is started again and that notebook re-run, ``restarts``
    times at most; after that the notebooks fail with a message that says how to restart it.

    Raises
    ------
    mlsd.notebooks.NotebookInterrupted
        On Ctrl-C or SIGTERM during a notebook, after its kernel is stopped.
    """
    stage = on_stage or (lambda text: None)
    settings = get_settings(scale=scale)
    out = Path(out or default_out())
    out.mkdir(parents=True, exist_ok=True)
    stage("database" if settings.database_url else "database (the embedded server)")
    conn = db.connect()
    try:
        db.ensure_schemas(conn)
        stage(f"course data ({settings.scale})")
        ensure_course_data(conn, scale=settings.scale, settings=settings)
    finally:
        conn.close()
    notebooks = list(notebooks or lab_notebooks())
    if only:
        notebooks = [p for p in notebooks if int(p.name[:2]) in only]
    env = {"MLSD_SCALE": settings.scale}
    if settings.database_url is None:
        env["DATABASE_URL"] = db.database_url(settings=settings)
    server = None if settings.database_url else db.embedded_server(settings)
    restarts_left = restarts

    def restart_if_stopped() -> bool:
        """Start the embedded server again if it stopped and a restart is left; True when it was."""
        nonlocal restarts_left
        if server is None or restarts_left <= 0 or server.state().running:
            return False
        restarts_left -= 1
        stage(f"restarting the embedded PostgreSQL server, which had stopped (log: {server.log_file})")
        server.start()
        return True

    runs = []
    for index, path in enumerate(notebooks, start=1):
        executed = out / path.name
        restart_if_stopped()
        while True:
            if progress:
                progress(index, len(notebooks), path, None)
            run = run_notebook(
                path,
                cell_timeout=cell_timeout,
                env={**env, **_passthrough(os.environ)},
                output_path=executed,
                on_cell=on_cell,
            )
            if run.ok or not restart_if_stopped():
                break
        _write_html(executed)
        runs.append(run)
        if progress:
            progress(index, len(notebooks), path, run)
    (out / "summary.json").write_text(
        json.dumps(
            [
                {"notebook": r.path.name, "status": r.status, "seconds": round(r.seconds, 2),
                 "peak_memory_mb": round(r.peak_memory_mb), "cell": r.cell, "error": r.error}
                for r in runs
            ],
            indent=2,
        )
    )  # fmt: skip
    quoted.write_numbers(out, settings.scale, runs)
    return runs


def _passthrough(environ) -> dict[str, str]:
    names = ("MLFLOW_TRACKING_URI", "MLSD_DATA_DIR", "MLSD_LOG_DIR", "DASK_SCHEDULER_ADDRESS", "LOG_LEVEL")
    return {k: environ[k] for k in names if environ.get(k)}


def _html_exporter():
    """nbconvert's HTML exporter; nbconvert (about a second to import) loads when a notebook is
    converted, not in every session notebook that imports this module."""
    from nbconvert import HTMLExporter

    return HTMLExporter()


def _write_html(executed: Path) -> None:
    if not executed.is_file():
        return
    body, _ = _html_exporter().from_filename(str(executed))
    executed.with_suffix(".html").write_text(body, encoding="utf-8")
