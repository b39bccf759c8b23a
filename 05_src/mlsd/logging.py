"""Course logging: lines for people, structured records for the jobs.

* **Lines** (:func:`get_logger`): one console handler and one file under ``05_src/logs/``.
  Calling :func:`get_logger` again (a notebook cell re-run) reuses the handlers instead of
  adding more, so lines are never printed twice.
* **Structured job records** (:class:`JobLog`): what a job did, one record per step, with
  the fields a person or a query needs (job, run id, idempotency key, step, status, model
  version, batch id, row count, duration, a message and details). Each record is a row of
  ``monitoring.job_log`` in PostgreSQL (queried in SQL) and a JSON line in
  ``05_src/logs/jobs.jsonl`` (kept when the database is not, and readable by any log tool).
  The batch scoring job (:func:`mlsd.serving.score_month`) and the retraining flow
  (:func:`mlsd.retraining.retrain`) write them.
* **Privacy**: job records describe batches, never applicants. :class:`JobLog` refuses
  details named like an applicant's identifier or personal attribute
  (:data:`PERSONAL_FIELDS`), and :func:`mlsd.privacy.pseudonymise` replaces an identifier by a keyed hash
  where one must leave the database (an export, a ticket).

Example
-------
>>> from mlsd.logging import get_logger
>>> log = get_logger("session1")  # doctest: +SKIP
>>> log.info("environment checked")  # doctest: +SKIP
>>> job = JobLog(conn, "score", run_key="2025-06:lending-default:v3")  # doctest: +SKIP
>>> with job.step("score", batch_id="2025-06:lending-default:v3") as step:  # doctest: +SKIP
...     step["rows"] = 1359
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlsd.config import get_settings

if TYPE_CHECKING:
    import psycopg2.extensions

__all__ = [
    "JOB_LOG",
    "JOB_STATUSES",
    "PERSONAL_FIELDS",
    "JobLog",
    "ensure_job_log",
    "get_logger",
    "job_log_file",
    "log_file",
]

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


# -- structured job records -------------------------------------------------------------------

JOB_LOG = "monitoring.job_log"
"""The table of structured job records."""

JOB_STATUSES = ("ok", "failed", "stopped", "skipped")
"""``ok`` a step done; ``failed`` an error; ``stopped`` a gate refused the data; ``skipped`` nothing new to do."""

PERSONAL_FIELDS = (
    "application_id", "customer_id", "snapshot_id", "birth_date", "age", "monthly_income",
    "debt_ratio", "revolving_utilization", "dependents", "amount", "features",
)  # fmt: skip
"""Names a job record's details may not use: an applicant's identifiers and personal attributes.

A job log describes batches and decisions; it is read by more people, kept longer and copied
more often than the tables that hold applicants' data, so it holds none of it."""

_CREATE_JOB_LOG = f"""
CREATE SCHEMA IF NOT EXISTS monitoring;
CREATE TABLE IF NOT EXISTS monitoring.job_log (
    id            bigserial PRIMARY KEY,
    logged_at     timestamptz NOT NULL DEFAULT now(),
    job           text NOT NULL,
    run_id        text NOT NULL,
    run_key       text,
    step          text NOT NULL,
    status        text NOT NULL CHECK (status IN ({", ".join(f"'{s}'" for s in JOB_STATUSES)})),
    model_name    text,
    model_version text,
    batch_id      text,
    row_count     bigint,
    seconds       double precision,
    message       text,
    details       jsonb NOT NULL DEFAULT '{{}}'::jsonb
);
CREATE INDEX IF NOT EXISTS job_log_run_idx ON monitoring.job_log (job, run_id);
CREATE INDEX IF NOT EXISTS job_log_key_idx ON monitoring.job_log (job, run_key);
"""

_RECORD_COLUMNS = (
    "logged_at", "job", "run_id", "run_key", "step", "status", "model_name", "model_version",
    "batch_id", "row_count", "seconds", "message", "details",
)  # fmt: skip


def job_log_file(log_dir: Path | None = None) -> Path:
    """Path of the JSON-lines copy of the job records (``05_src/logs/jobs.jsonl`` by default)."""
    return Path(log_dir or get_settings().log_dir) / "jobs.jsonl"


def ensure_job_log(conn: psycopg2.extensions.connection) -> None:
    """Create ``monitoring.job_log`` and its indexes if they are missing (idempotent).

    Columns: ``id``, ``logged_at``, ``job`` (``score``, ``retrain``...), ``run_id`` (one
    execution), ``run_key`` (what makes two executions the same work: a batch id, a data
    window), ``step``, ``status`` (:data:`JOB_STATUSES`), ``model_name``, ``model_version``,
    ``batch_id``, ``row_count``, ``seconds``, ``message`` and ``details`` (jsonb).
    """
    with conn, conn.cursor() as cur:
        cur.execute(_CREATE_JOB_LOG)


def _json_ready(value: Any) -> Any:
    """Plain JSON types for numpy scalars, timestamps and tuples (``json.dumps`` would refuse some)."""
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_json_ready(v) for v in value]
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None  # NaN, inf -> null
    if hasattr(value, "item"):  # numpy scalar
        return _json_ready(value.item())
    return str(value)


class JobLog:
    """Structured records of one run of a job: a row in ``monitoring.job_log`` and a JSON line per step.

    Parameters
    ----------
    conn : psycopg2 connection
        Where ``monitoring.job_log`` lives (created if missing). Each record is written and
        committed on its own, so the log keeps what happened even when the job fails later.
    job : str
        The job's name, e.g. ``"score"`` or ``"retrain"``.
    run_key : str, optional
        The idempotency key: two runs with the same key do the same work (a batch id, a data
        window). Query it to ask "was this done already?".
    run_id : str, optional
        This execution's id; a new random hex id when omitted.
    model_name : str, optional
        Put on every record.
    log_dir : Path, optional
        Folder of ``jobs.jsonl``; ``MLSD_LOG_DIR`` (``05_src/logs``) by default.
    jsonl : bool
        Also append each record to ``jobs.jsonl``.

    Examples
    --------
    >>> job = JobLog(conn, "retrain", run_key="window 2025-06..2025-11")  # doctest: +SKIP
    >>> with job.step("load") as step:  # doctest: +SKIP
    ...     frame = read_window(conn)
    ...     step["rows"] = len(frame)
    >>> job.record("decide", message="kept the champion: gain 0.002 < 0.01")  # doctest: +SKIP
    """

    def __init__(
        self,
        conn: psycopg2.extensions.connection,
        job: str,
        *,
        run_key: str | None = None,
        run_id: str | None = None,
        model_name: str | None = None,
        log_dir: Path | None = None,
        jsonl: bool = True,
    ):
        self.conn = conn
        self.job = job
        self.run_key = run_key
        self.run_id = run_id or uuid.uuid4().hex
        self.model_name = model_name
        self.path = job_log_file(log_dir) if jsonl else None
        self.records: list[dict[str, Any]] = []
        ensure_job_log(conn)

    def record(
        self,
        step: str,
        status: str = "ok",
        *,
        model_version: str | None = None,
        batch_id: str | None = None,
        rows: int | None = None,
        seconds: float | None = None,
        message: str | None = None,
        **details: Any,
    ) -> dict[str, Any]:
        """Write one record and return it (as a dict, ``details`` nested).

        Raises
        ------
        ValueError
            For a status outside :data:`JOB_STATUSES`, or details named in :data:`PERSONAL_FIELDS`.
        """
        if status not in JOB_STATUSES:
            raise ValueError(f"status must be one of {JOB_STATUSES}, got {status!r}.")
        personal = sorted(set(details) & set(PERSONAL_FIELDS))
        if personal:
            raise ValueError(
                f"A job record describes a batch, not an applicant: leave {personal} out of its details "
                "(count or aggregate them instead)."
            )
        record = {
            "logged_at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            "job": self.job,
            "run_id": self.run_id,
            "run_key": self.run_key,
            "step": step,
            "status": status,
            "model_name": self.model_name,
            "model_version": None if model_version is None else str(model_version),
            "batch_id": batch_id,
            "row_count": None if rows is None else int(rows),
            "seconds": None if seconds is None else round(float(seconds), 4),
            "message": message,
            "details": _json_ready(details),
        }
        with self.conn, self.conn.cursor() as cur:
            cur.execute(
                f"INSERT INTO {JOB_LOG} ({', '.join(_RECORD_COLUMNS)}) "
                f"VALUES ({', '.join(['%s'] * (len(_RECORD_COLUMNS) - 1))}, %s::jsonb)",
                [*(record[c] for c in _RECORD_COLUMNS[:-1]), json.dumps(record["details"])],
            )
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
        self.records.append(record)
        return record

    @contextlib.contextmanager
    def step(self, name: str, **fields: Any) -> Iterator[dict[str, Any]]:
        """Time a block and record it as step ``name``; on an exception record ``failed`` and re-raise.

        The block fills the yielded dict: ``rows``, ``model_version``, ``batch_id``,
        ``message``, ``status`` (e.g. ``"stopped"``) and any details. ``fields`` are its
        starting values.
        """
        values: dict[str, Any] = dict(fields)
        started = time.perf_counter()
        try:
            yield values
        except BaseException as err:
            values.pop("status", None)
            values.setdefault("message", f"{type(err).__name__}: {err}"[:1000])
            self.record(name, "failed", seconds=time.perf_counter() - started, **values)
            raise
        status = values.pop("status", "ok")
        self.record(name, status, seconds=time.perf_counter() - started, **values)
