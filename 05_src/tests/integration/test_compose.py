"""The Docker set-up agrees with itself, with the package and with a real PostgreSQL.

Checked here: ``05_src/docker-compose.yml`` (parsed and interpolated from ``.env.example``
the way Docker Compose does it), the init SQL under ``05_src/sql/init/`` (applied twice to a
real server with the wheel's ``psql``), the credentials in ``.env.example`` (created as a role
and used through ``mlsd.db.connect``), the dev container and the VS Code settings.
``docker compose config`` validates the file too where the Compose plugin is installed.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import yaml

from mlsd import db
from mlsd._embedded import bin_dir, binary_major_version
from mlsd.config import SETTING_NAMES

REPO = Path(__file__).resolve().parents[3]
COMPOSE_FILE = REPO / "05_src" / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
INIT_DIR = REPO / "05_src" / "sql" / "init"
DEVCONTAINER = REPO / ".devcontainer" / "devcontainer.json"
SETUP = REPO / "SETUP.md"

# ---------------------------------------------------------------------------------------------
# Helpers: read .env.example, interpolate like Docker Compose
# ---------------------------------------------------------------------------------------------

_ACTIVE = re.compile(r"^([A-Z][A-Z0-9_]*)=(.*)$")
_COMMENTED = re.compile(r"^#\s*([A-Z][A-Z0-9_]*)=(\S*)$")
# $$ (escaped), ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, $NAME
_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)
# $${NAME} or $$NAME: left for the shell inside the container.
_CONTAINER_VARIABLE = re.compile(r"\$\$\{?([A-Za-z_][A-Za-z0-9_]*)")


def read_env_example() -> tuple[dict[str, str], dict[str, str]]:
    """Settings in ``.env.example``: (active ``NAME=value`` lines, commented ``# NAME=value`` lines)."""
    active: dict[str, str] = {}
    commented: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if match := _ACTIVE.match(line):
            active[match[1]] = match[2]
        elif match := _COMMENTED.match(line):
            commented[match[1]] = match[2]
    return active, commented


def interpolate(text: str, env: dict[str, str], used: set[str] | None = None) -> str:
    """Substitute variables in ``text`` with Compose's rules; record the names in ``used``."""

    def substitute(match: re.Match) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["named"]
        if used is not None:
            used.add(name)
        op, arg, value = match["op"], match["arg"], env.get(name)
        missing = not value if op in (":-", ":?") else value is None
        if not missing:
            return value
        if op in (":-", "-"):
            return arg
        if op in (":?", "?"):
            raise ValueError(f"required variable {name} is missing: {arg}")
        return ""

    return _VARIABLE.sub(substitute, text)


def interpolate_tree(node, env: dict[str, str], used: set[str] | None = None):
    if isinstance(node, str):
        return interpolate(node, env, used)
    if isinstance(node, list):
        return [interpolate_tree(item, env, used) for item in node]
    if isinstance(node, dict):
        return {key: interpolate_tree(value, env, used) for key, value in node.items()}
    return node


def as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def command_text(service: dict) -> str:
    return " ".join(as_list(service.get("command")))


def option(command: str, name: str) -> str:
    """Value of ``--name VALUE`` (quoted or not) in a command line."""
    match = re.search(rf"{re.escape(name)}[ =]\"?([^\"\s]+)\"?", command)
    assert match, f"{name} is missing from the command: {command}"
    return match[1]


def published(port: str) -> tuple[str, str, str]:
    """``"127.0.0.1:5432:5432"`` -> ``("127.0.0.1", "5432", "5432")``."""
    parts = str(port).split(":")
    assert len(parts) == 3, f"publish {port!r} as HOST_IP:HOST_PORT:CONTAINER_PORT"
    return parts[0], parts[1], parts[2]


def mlflow_db_default() -> str:
    match = re.search(r"\\set\s+mlflow_db\s+(\w+)", (INIT_DIR / "001_schemas.sql").read_text())
    assert match, "001_schemas.sql must give mlflow_db a default with \\set"
    return match[1]


@pytest.fixture(scope="module")
def env_example():
    return read_env_example()


@pytest.fixture(scope="module")
def raw_compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose(raw_compose, env_example) -> dict:
    """The compose file as Compose sees it after `cp .env.example .env`."""
    active, _ = env_example
    return interpolate_tree(raw_compose, active)


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


# ---------------------------------------------------------------------------------------------
# The compose file
# ---------------------------------------------------------------------------------------------


def test_services_and_images(services):
    assert set(services) == {"postgres", "mlflow", "pgadmin"}
    name, _, tag = services["postgres"]["image"].partition(":")
    assert name == "postgres"
    major = re.match(r"\d+", tag)
    assert major, f"pin the PostgreSQL major version, not {tag!r}"
    assert int(major[0]) == binary_major_version(), "Docker and the embedded server must run the same major"

    match = re.fullmatch(r"ghcr\.io/mlflow/mlflow:v(\d+\.\d+\.\d+)-full", services["mlflow"]["image"])
    assert match, "use the -full MLflow image: it has the PostgreSQL drivers"
    assert match[1] == importlib.metadata.version("mlflow"), "server and client MLflow versions differ"


def test_ports_are_local_and_match_the_urls(services, env_example):
    active, commented = env_example
    database_url = urlsplit(commented["DATABASE_URL"])
    tracking_uri = urlsplit(commented["MLFLOW_TRACKING_URI"])

    ip, host_port, container_port = published(services["postgres"]["ports"][0])
    assert (ip, container_port) == ("127.0.0.1", "5432")
    assert host_port == active["POSTGRES_PORT"] == str(database_url.port)

    ip, host_port, container_port = published(services["mlflow"]["ports"][0])
    assert ip == "127.0.0.1"
    assert host_port == commented.get("MLFLOW_HOST_PORT", host_port) == str(tracking_uri.port)
    assert container_port == option(command_text(services["mlflow"]), "--port")

    ip, host_port, container_port = published(services["pgadmin"]["ports"][0])
    assert (ip, host_port, container_port) == ("127.0.0.1", commented["PGADMIN_PORT"], "80")


def test_healthchecks(services):
    postgres = " ".join(as_list(services["postgres"]["healthcheck"]["test"]))
    assert "pg_isready" in postgres
    # Over TCP: during initialisation the server listens on its socket only.
    assert "-h 127.0.0.1" in postgres

    mlflow = services["mlflow"]["healthcheck"]
    url = re.search(r"http://[^'\"\s]+", " ".join(as_list(mlflow["test"])))
    assert url, "the MLflow healthcheck should request an URL"
    assert urlsplit(url[0]).path == "/health"
    assert str(urlsplit(url[0]).port) == option(command_text(services["mlflow"]), "--port")
    for service in ("postgres", "mlflow"):
        assert services[service]["healthcheck"]["retries"] >= 3

    assert services["mlflow"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_named_volumes(compose, services):
    declared = set(compose.get("volumes") or {})
    used = set()
    for service in services.values():
        for volume in as_list(service.get("volumes")):
            source = volume.split(":")[0]
            if not source.startswith((".", "/", "~")):
                assert source in declared, f"volume {source} is not declared at the top level"
                used.add(source)
    assert used == declared, "a declared volume is not used"

    def named_target(service: str) -> dict[str, str]:
        volumes = (v.split(":") for v in as_list(services[service].get("volumes")))
        return {parts[1]: parts[0] for parts in volumes if parts[0] in declared}

    # PostgreSQL 18+ images keep data under /var/lib/postgresql/<major>/docker.
    assert named_target("postgres").get("/var/lib/postgresql") in declared
    destination = option(command_text(services["mlflow"]), "--artifacts-destination")
    assert destination in named_target("mlflow"), "MLflow's artifacts must live in a named volume"
    assert "--serve-artifacts" in command_text(services["mlflow"])


def test_init_sql_is_mounted_and_exists(services):
    mounts = [v.split(":") for v in as_list(services["postgres"]["volumes"])]
    sources = [parts[0] for parts in mounts if parts[1] == "/docker-entrypoint-initdb.d"]
    assert len(sources) == 1, "mount one folder at /docker-entrypoint-initdb.d"
    folder = (COMPOSE_FILE.parent / sources[0]).resolve()
    assert folder == INIT_DIR.resolve()
    assert sorted(p.name for p in folder.glob("*.sql"))[0] == "001_schemas.sql"


def test_pgadmin_is_an_optional_profile(services):
    assert services["pgadmin"]["profiles"] == ["tools"]
    assert "profiles" not in services["postgres"]
    assert "profiles" not in services["mlflow"]


def test_every_variable_is_defined_in_env_example(raw_compose, env_example):
    active, commented = env_example
    used: set[str] = set()
    interpolate_tree(raw_compose, active, used)
    assert used, "the compose file uses no ${VARIABLE}: the ports should be configurable"
    undefined = used - set(active) - set(commented)
    assert not undefined, f"{sorted(undefined)} are used in docker-compose.yml but not in .env.example"

    # $${NAME} is expanded inside the container from env_file, so it must be an active setting.
    container_names = set(_CONTAINER_VARIABLE.findall(json.dumps(raw_compose)))
    assert {"POSTGRES_USER", "POSTGRES_PASSWORD"} <= container_names
    assert container_names <= set(active), f"{sorted(container_names - set(active))} not set in .env.example"


def test_credentials_come_from_the_env_file_only(raw_compose, env_example):
    active, _ = env_example
    for name, service in raw_compose["services"].items():
        env_files = [e if isinstance(e, str) else e["path"] for e in as_list(service.get("env_file"))]
        assert env_files, f"{name} gets no env_file"
        assert {(COMPOSE_FILE.parent / e).resolve() for e in env_files} == {(REPO / ".env").resolve()}
        environment = service.get("environment") or {}
        keys = environment if isinstance(environment, dict) else [e.split("=")[0] for e in environment]
        assert not [k for k in keys if "PASSWORD" in k], f"{name} sets a password in the compose file"
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    for name in ("POSTGRES_PASSWORD", "PGADMIN_DEFAULT_PASSWORD"):
        assert active[name] not in text, f"the value of {name} is written in docker-compose.yml"
    gitignore = (REPO / ".gitignore").read_text(encoding="utf-8").split()
    assert ".env" in gitignore


def test_mlflow_backend_store_points_at_the_init_database(services, env_example):
    active, _ = env_example
    command = command_text(services["mlflow"])
    # The shell in the container expands $${NAME} from env_file (.env, i.e. .env.example here).
    uri = urlsplit(interpolate(option(command, "--backend-store-uri"), active))
    assert uri.scheme.startswith("postgresql")
    assert (uri.username, uri.password) == (active["POSTGRES_USER"], active["POSTGRES_PASSWORD"])
    assert uri.hostname in services and uri.port == 5432
    assert uri.path.lstrip("/") == mlflow_db_default()
    hosts = option(command, "--allowed-hosts").split(",")
    assert {"localhost:*", "mlflow:*"} <= set(hosts), "the host and the dev container must reach MLflow"


def test_env_example_documents_every_setting(env_example):
    active, commented = env_example
    documented = set(active) | set(commented)
    missing = set(SETTING_NAMES) - documented
    assert not missing, f"{sorted(missing)} are course settings missing from .env.example"
    for name, default in SETTING_NAMES.items():
        if default is not None and name in commented:
            assert commented[name] == default, f"# {name}= in .env.example is not the default {default!r}"

    url = urlsplit(commented["DATABASE_URL"])
    assert (url.username, url.password) == (active["POSTGRES_USER"], active["POSTGRES_PASSWORD"])
    assert url.path.lstrip("/") == active["POSTGRES_DB"]
    assert url.hostname == "localhost"
    for name in ("POSTGRES_PASSWORD", "PGADMIN_DEFAULT_PASSWORD"):
        assert active[name] == "change-me", f"{name} in .env.example must be a placeholder"
    assert (REPO / active["COMPOSE_FILE"]).resolve() == COMPOSE_FILE.resolve()


def test_init_sql_creates_the_package_schemas():
    text = (INIT_DIR / "001_schemas.sql").read_text(encoding="utf-8")
    created = re.findall(r"CREATE SCHEMA IF NOT EXISTS (\w+)", text)
    assert sorted(created) == sorted(db.SCHEMAS)
    assert "\\gexec" in text


# ---------------------------------------------------------------------------------------------
# The dev container and VS Code
# ---------------------------------------------------------------------------------------------


def test_devcontainer_uses_the_compose_file(env_example, services):
    active, _ = env_example
    config = json.loads(DEVCONTAINER.read_text(encoding="utf-8"))
    files = [(DEVCONTAINER.parent / f).resolve() for f in config["dockerComposeFile"]]
    assert files[0] == COMPOSE_FILE.resolve()
    assert all(f.is_file() for f in files)
    override = interpolate_tree(yaml.safe_load(files[-1].read_text(encoding="utf-8")), active)
    all_services = set(services) | set(override["services"])
    assert config["service"] in override["services"]
    assert {"postgres", "mlflow", config["service"]} <= set(config["runServices"]) <= all_services

    workspace = override["services"][config["service"]]
    assert "python:1-3.11" in workspace["image"]
    mounts = dict(reversed(v.split(":")[:2]) for v in workspace["volumes"])
    # Relative paths resolve from the first compose file's folder.
    assert (COMPOSE_FILE.parent / mounts[config["workspaceFolder"]]).resolve() == REPO.resolve()

    def container_env(text: str) -> str:
        return re.sub(r"\$\{containerEnv:(\w+)\}", lambda m: active[m[1]], text)

    url = urlsplit(container_env(config["remoteEnv"]["DATABASE_URL"]))
    assert url.hostname == "postgres" and url.port == int(published(services["postgres"]["ports"][0])[2])
    assert (url.username, url.password) == (active["POSTGRES_USER"], active["POSTGRES_PASSWORD"])
    assert url.path.lstrip("/") == active["POSTGRES_DB"]
    tracking = urlsplit(config["remoteEnv"]["MLFLOW_TRACKING_URI"])
    assert tracking.hostname == "mlflow"
    assert str(tracking.port) == option(command_text(services["mlflow"]), "--port")

    assert re.search(r"\buv\b\"?\s+sync\b", config["postCreateCommand"]), "the dev container must run uv sync"
    extensions = config["customizations"]["vscode"]["extensions"]
    assert {"ms-python.python", "ms-toolsai.jupyter"} <= set(extensions)


def test_vscode_recommends_extensions_and_the_venv():
    extensions = json.loads((REPO / ".vscode" / "extensions.json").read_text(encoding="utf-8"))
    assert {"ms-python.python", "ms-toolsai.jupyter"} <= set(extensions["recommendations"])
    settings = json.loads((REPO / ".vscode" / "settings.json").read_text(encoding="utf-8"))
    assert settings["python.defaultInterpreterPath"] == "${workspaceFolder}/.venv/bin/python"
    assert settings["jupyter.notebookFileRoot"] == "${workspaceFolder}"


def test_setup_links_resolve():
    text = SETUP.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    local = [t.split("#")[0] for t in targets if not re.match(r"[a-z]+:", t) and not t.startswith("#")]
    assert local, "SETUP.md links no file of the repository"
    broken = [t for t in local if not (SETUP.parent / t).exists()]
    assert not broken, f"SETUP.md links to missing files: {broken}"


# ---------------------------------------------------------------------------------------------
# docker compose config, where the Compose plugin is installed
# ---------------------------------------------------------------------------------------------


def _compose_command() -> list[str] | None:
    """``docker compose`` (the plugin) or a v2 ``docker-compose``; ``None`` when neither works."""
    candidates = []
    if docker := shutil.which("docker"):
        candidates.append([docker, "compose"])
    if standalone := shutil.which("docker-compose"):
        candidates.append([standalone])
    for command in candidates:
        try:
            probe = subprocess.run(
                [*command, "version", "--short"], capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0 and re.match(r"v?[2-9]", probe.stdout.strip()):
            return command
    return None


def test_docker_compose_config_accepts_the_files(tmp_path, env_example, services):
    command = _compose_command()
    if command is None:
        pytest.skip(
            "Docker Compose v2 is not installed (neither `docker compose` nor `docker-compose`), "
            "so the compose file is checked by parsing only"
        )
    # A copy of the layout with .env made from .env.example, as a learner would have it.
    (tmp_path / "05_src").mkdir()
    shutil.copy(COMPOSE_FILE, tmp_path / "05_src" / COMPOSE_FILE.name)
    shutil.copytree(INIT_DIR, tmp_path / "05_src" / "sql" / "init")
    shutil.copytree(DEVCONTAINER.parent, tmp_path / ".devcontainer")
    shutil.copy(ENV_EXAMPLE, tmp_path / ".env")
    active, commented = env_example
    env = {k: v for k, v in os.environ.items() if k not in active and k not in commented}
    env = {k: v for k, v in env.items() if not k.startswith("COMPOSE_")}
    base = [
        *command,
        "--env-file",
        str(tmp_path / ".env"),
        "-f",
        str(tmp_path / "05_src" / COMPOSE_FILE.name),
    ]

    result = subprocess.run(
        [*base, "--profile", "tools", "config", "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    resolved = json.loads(result.stdout)
    assert resolved["name"] == "mlsd"
    assert set(resolved["services"]) == set(services)
    for name, service in services.items():
        ip, host_port, container_port = published(service["ports"][0])
        port = resolved["services"][name]["ports"][0]
        seen_by_compose = (port["host_ip"], str(port["published"]), str(port["target"]))
        assert seen_by_compose == (ip, host_port, container_port)
        assert resolved["services"][name]["environment"]["POSTGRES_USER"] == active["POSTGRES_USER"]

    # What SETUP.md tells learners: plain `docker compose` from the repository root, where
    # COMPOSE_FILE in .env names the compose file.
    result = subprocess.run(
        [*command, "config", "--services"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == {"postgres", "mlflow"}  # pgadmin only with --profile tools

    override = tmp_path / ".devcontainer" / "docker-compose.yml"
    result = subprocess.run(
        [*base, "-f", str(override), "config", "-q"], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------------------------------------
# A real PostgreSQL
# ---------------------------------------------------------------------------------------------


def _psql(url: str, sql_file: Path, *variables: str) -> subprocess.CompletedProcess:
    psql = bin_dir() / ("psql.exe" if os.name == "nt" else "psql")
    args = [str(psql), "-X", "-q", "-v", "ON_ERROR_STOP=1"]
    for variable in variables:
        args += ["-v", variable]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    return subprocess.run(
        [*args, "-d", url, "-f", str(sql_file)], capture_output=True, text=True, env=env, timeout=120
    )


def _database_exists(url: str, name: str) -> bool:
    conn = db.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            return cur.fetchone() is not None
    finally:
        conn.close()


def _drop_database(url: str, name: str) -> None:
    from psycopg2 import sql

    conn = db.connect(url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(db.identifier(name)))
    finally:
        conn.close()


@pytest.mark.integration
def test_init_sql_applies_twice_to_a_real_server(fresh_db):
    mlflow_db = f"mlflow_t_{uuid.uuid4().hex[:10]}"
    files = sorted(INIT_DIR.glob("*.sql"))
    try:
        for attempt in ("first", "second"):
            for sql_file in files:
                result = _psql(fresh_db, sql_file, f"mlflow_db={mlflow_db}")
                assert result.returncode == 0, f"{attempt} run of {sql_file.name}: {result.stderr}"

        conn = db.connect(fresh_db)
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT nspname, obj_description(oid, 'pg_namespace') FROM pg_namespace "
                    "WHERE nspname = ANY(%s)",
                    (list(db.SCHEMAS),),
                )
                comments = dict(cur.fetchall())
        finally:
            conn.close()
        assert sorted(comments) == sorted(db.SCHEMAS)
        assert all(comments.values()), "every course schema should say what it holds"
        assert _database_exists(fresh_db, mlflow_db)
        assert not _database_exists(fresh_db, f"{mlflow_db}_other")
    finally:
        _drop_database(fresh_db, mlflow_db)


@pytest.mark.integration
def test_init_sql_default_creates_the_mlflow_database(fresh_db):
    if os.environ.get("TEST_DATABASE_URL"):
        pytest.skip("creates the `mlflow` database server-wide; only on the throwaway test server")
    name = mlflow_db_default()
    _drop_database(fresh_db, name)  # the test server is throwaway: start without it
    try:
        for sql_file in sorted(INIT_DIR.glob("*.sql")):
            result = _psql(fresh_db, sql_file)
            assert result.returncode == 0, result.stderr
        assert _database_exists(fresh_db, name)
    finally:
        _drop_database(fresh_db, name)


@pytest.mark.integration
def test_env_example_credentials_log_in_through_database_url(fresh_db, env_example):
    """The user and password of .env.example work as a role and in a DATABASE_URL like its own.

    The test server trusts local connections, so the password is not checked by the server;
    the test checks that the URL carries it to the driver intact.
    """
    from psycopg2 import sql

    active, commented = env_example
    user, password = active["POSTGRES_USER"], active["POSTGRES_PASSWORD"]
    admin = db.connect(fresh_db)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,))
        if cur.fetchone():
            admin.close()
            pytest.skip(f"role {user!r} already exists on the test server; not touching it")
        cur.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s").format(db.identifier(user)), (password,))
    try:
        # DATABASE_URL from .env.example, pointed at the test server and database.
        template, target = urlsplit(commented["DATABASE_URL"]), urlsplit(fresh_db)
        netloc = f"{template.username}:{template.password}@{target.hostname}:{target.port}"
        url = urlunsplit((template.scheme, netloc, target.path, "", ""))
        conn = db.connect(url)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT current_user, current_database()")
                assert cur.fetchone() == (user, target.path.lstrip("/"))
            assert conn.info.password == password
        finally:
            conn.close()
    finally:
        with admin.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (user,))
            cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(db.identifier(user)))
        admin.close()
