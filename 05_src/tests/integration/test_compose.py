"""The Docker set-up agrees with itself, with the package and with a real PostgreSQL.

Checked here: ``05_src/docker-compose.yml`` (parsed and interpolated from ``.env.example``
the way Docker Compose does it), the init SQL under ``05_src/sql/init/`` (applied twice to a
real server with the wheel's ``psql``), the credentials in ``.env.example`` (created as a role
and used through ``mlsd.db.connect``), the dev container and the VS Code settings. Both compose
files are validated against the Compose specification's JSON schema (the copy check-jsonschema
ships, so offline), and the services' shell commands run in a real ``sh`` with stand-ins for
``mlflow`` and ``mc``. ``docker compose config`` validates the files too where the Compose
plugin is installed.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
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
DEVCONTAINER_COMPOSE = REPO / ".devcontainer" / "docker-compose.yml"
SETUP = REPO / "SETUP.md"
DEFAULT_SERVICES = {"postgres", "mlflow"}
S3_SETTINGS = ("COMPOSE_PROFILES", "MLFLOW_ARTIFACTS_DESTINATION")
"""The commented lines of .env.example that switch MLflow's artifacts to MinIO (the s3 profile)."""

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


def embedded_version() -> str:
    """``18.6``: the version of the embedded server's binaries."""
    out = subprocess.run(
        [str(bin_dir() / "postgres"), "--version"], capture_output=True, text=True, check=True
    )
    return re.search(r"(\d+\.\d+)", out.stdout)[1]


def test_services_and_images(services):
    assert set(services) == {"postgres", "mlflow", "pgadmin", "minio", "minio-bucket"}
    name, _, tag = services["postgres"]["image"].partition(":")
    assert name == "postgres"
    assert int(tag.split(".")[0]) == binary_major_version(), (
        "Docker and the embedded server must run the same major"
    )
    assert tag == embedded_version(), f"pin the embedded server's version, {embedded_version()}, not {tag!r}"

    match = re.fullmatch(r"ghcr\.io/mlflow/mlflow:v(\d+\.\d+\.\d+)-full", services["mlflow"]["image"])
    assert match, "use the -full MLflow image: it has the PostgreSQL drivers"
    assert match[1] == importlib.metadata.version("mlflow"), "server and client MLflow versions differ"
    assert services["minio"]["image"] == services["minio-bucket"]["image"], (
        "the bucket is made with MinIO's mc"
    )


EXACT_TAG = re.compile(r"v?\d+\.\d+(\.\d+)?(-[\w.-]+)?|RELEASE\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ")


@pytest.mark.parametrize("compose_file", [COMPOSE_FILE, DEVCONTAINER_COMPOSE], ids=lambda p: p.parent.name)
def test_every_image_is_pinned_to_an_exact_version(compose_file):
    """A floating tag (`postgres:18`, `pgadmin4:9`, `python:1-3.11`) gives learners different servers."""
    for name, service in yaml.safe_load(compose_file.read_text(encoding="utf-8"))["services"].items():
        if "image" not in service:
            continue
        _, _, tag = service["image"].rpartition(":")
        assert EXACT_TAG.fullmatch(tag), f"{name}: pin {service['image']} to an exact version"
    for floating in ("postgres:18", "dpage/pgadmin4:9", "latest"):
        assert not EXACT_TAG.fullmatch(floating.rpartition(":")[2]), f"the check lets {floating} through"


def test_compose_files_follow_the_compose_specification(tmp_path):
    """Validated against the Compose spec's JSON schema, as check-jsonschema vendors it (no network)."""
    check = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec"]
    result = subprocess.run(
        [*check, str(COMPOSE_FILE), str(DEVCONTAINER_COMPOSE)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # The check can fail: a misspelt key (`healtcheck`) is refused.
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE_FILE.read_text(encoding="utf-8").replace("healthcheck:", "healtcheck:", 1))
    result = subprocess.run([*check, str(broken)], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "healtcheck" in result.stdout + result.stderr


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

    api, console = (published(port) for port in services["minio"]["ports"])
    assert api == ("127.0.0.1", commented["MINIO_PORT"], "9000")
    assert console == ("127.0.0.1", commented["MINIO_CONSOLE_PORT"], "9001")
    assert services["minio"]["command"][-1] == ":9001", "the console listens where it is published"


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
    for service in ("postgres", "mlflow", "minio"):
        assert services[service]["healthcheck"]["retries"] >= 3

    assert services["mlflow"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["minio-bucket"]["depends_on"]["minio"]["condition"] == "service_healthy"


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
    # By default (MLFLOW_ARTIFACTS_DESTINATION commented out), the shell's default applies.
    destination = interpolate(option(command_text(services["mlflow"]), "--artifacts-destination"), {})
    assert destination in named_target("mlflow"), "MLflow's artifacts must live in a named volume"
    assert "--serve-artifacts" in command_text(services["mlflow"])


def test_init_sql_is_mounted_and_exists(services):
    mounts = [v.split(":") for v in as_list(services["postgres"]["volumes"])]
    sources = [parts[0] for parts in mounts if parts[1] == "/docker-entrypoint-initdb.d"]
    assert len(sources) == 1, "mount one folder at /docker-entrypoint-initdb.d"
    folder = (COMPOSE_FILE.parent / sources[0]).resolve()
    assert folder == INIT_DIR.resolve()
    assert sorted(p.name for p in folder.glob("*.sql"))[0] == "001_schemas.sql"


def test_pgadmin_and_minio_are_optional_profiles(services):
    assert services["pgadmin"]["profiles"] == ["tools"]
    assert services["minio"]["profiles"] == services["minio-bucket"]["profiles"] == ["s3"]
    assert {name for name, service in services.items() if "profiles" not in service} == DEFAULT_SERVICES
    # MLflow waits for the bucket only when the s3 profile runs it.
    bucket = services["mlflow"]["depends_on"]["minio-bucket"]
    assert bucket == {"condition": "service_completed_successfully", "required": False}


# ---------------------------------------------------------------------------------------------
# The services' shell commands, run in a real sh with stand-ins for the programs they start
# ---------------------------------------------------------------------------------------------

STAND_IN = """#!/bin/sh
echo "AWS=${AWS_ACCESS_KEY_ID:-}:${AWS_SECRET_ACCESS_KEY:-}"
for arg in "$@"; do echo "$arg"; done
"""


def run_command(service: dict, env: dict[str, str], tmp_path: Path) -> list[str]:
    """Run a service's ``sh -c`` command as its container would, with ``mlflow`` and ``mc`` echoing
    their arguments (one per line, after the AWS keys they see); return what they printed."""
    if shutil.which("sh") is None:
        pytest.skip("no POSIX shell")
    bin_dir_ = tmp_path / "bin"
    bin_dir_.mkdir(exist_ok=True)
    for program in ("mlflow", "mc"):
        (bin_dir_ / program).write_text(STAND_IN)
        (bin_dir_ / program).chmod(0o755)
    argv = [*as_list(service.get("entrypoint")), *as_list(service.get("command"))]
    assert argv[:2] == ["sh", "-c"], argv
    result = subprocess.run(
        ["sh", "-c", argv[2]],
        env={"PATH": f"{bin_dir_}:/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def argument(printed: list[str], name: str) -> str:
    return printed[printed.index(name) + 1]


def test_mlflow_keeps_artifacts_in_the_volume_by_default(services, env_example, tmp_path):
    active, _ = env_example
    printed = run_command(services["mlflow"], active, tmp_path)
    assert argument(printed, "--artifacts-destination") == "/mlflow/artifacts"
    assert urlsplit(argument(printed, "--backend-store-uri")).password == active["POSTGRES_PASSWORD"]


def test_the_s3_profile_puts_mlflow_artifacts_in_a_minio_bucket(services, env_example, tmp_path):
    """With the s3 lines of .env.example uncommented: MLflow writes to s3://BUCKET on MinIO with
    MinIO's login, and the one-shot service creates exactly that bucket."""
    active, commented = env_example
    env = active | {name: commented[name] for name in S3_SETTINGS}
    assert env["COMPOSE_PROFILES"].split(",") == services["minio"]["profiles"]

    printed = run_command(services["mlflow"], env, tmp_path)
    destination = urlsplit(argument(printed, "--artifacts-destination"))
    assert destination.scheme == "s3" and destination.netloc
    assert printed[0] == f"AWS={active['MINIO_ROOT_USER']}:{active['MINIO_ROOT_PASSWORD']}"
    endpoint = urlsplit(services["mlflow"]["environment"]["MLFLOW_S3_ENDPOINT_URL"])
    assert endpoint.hostname == "minio" and str(endpoint.port) == published(services["minio"]["ports"][0])[2]
    assert "--serve-artifacts" in printed, "clients reach the artifacts through MLflow, with no S3 keys"

    calls = " ".join(run_command(services["minio-bucket"], env, tmp_path))
    login = f"alias set course {endpoint.scheme}://{endpoint.netloc} {active['MINIO_ROOT_USER']} "
    assert login + active["MINIO_ROOT_PASSWORD"] in calls
    assert f"mb --ignore-existing course/{destination.netloc}" in calls
    # A destination with a folder: the bucket is its first part.
    env["MLFLOW_ARTIFACTS_DESTINATION"] = "s3://course-artifacts/mlflow"
    assert "course/course-artifacts" in " ".join(run_command(services["minio-bucket"], env, tmp_path))


def test_every_variable_is_defined_in_env_example(raw_compose, env_example):
    active, commented = env_example
    used: set[str] = set()
    interpolate_tree(raw_compose, active, used)
    assert used, "the compose file uses no ${VARIABLE}: the ports should be configurable"
    undefined = used - set(active) - set(commented)
    assert not undefined, f"{sorted(undefined)} are used in docker-compose.yml but not in .env.example"

    # $${NAME} is expanded inside the container from env_file, so it must be an active setting,
    # unless the command gives it a default ($${NAME:-default}) or sets it itself (name=...).
    text = json.dumps(raw_compose)
    container_names = set(_CONTAINER_VARIABLE.findall(text))
    assert {"POSTGRES_USER", "POSTGRES_PASSWORD"} <= container_names
    defaulted = set(re.findall(r"\$\$\{([A-Za-z_][A-Za-z0-9_]*):-", text))
    local = set(re.findall(r"(?:^|[\s;])([a-z_][a-z0-9_]*)=", " ".join(_commands(raw_compose))))
    required = container_names - defaulted - local
    assert required <= set(active), f"{sorted(required - set(active))} not set in .env.example"
    assert defaulted <= set(active) | set(commented), (
        f"{sorted(defaulted)} are not documented in .env.example"
    )


def _commands(raw_compose) -> list[str]:
    return [" ".join(as_list(service.get("command"))) for service in raw_compose["services"].values()]


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
    for name in ("POSTGRES_PASSWORD", "PGADMIN_DEFAULT_PASSWORD", "MINIO_ROOT_PASSWORD"):
        assert active[name] not in text, f"the value of {name} is written in docker-compose.yml"
    gitignore = (REPO / ".gitignore").read_text(encoding="utf-8").split()
    assert ".env" in gitignore


def test_mlflow_backend_store_points_at_the_init_database(services, env_example):
    active, _ = env_example
    command = command_text(services["mlflow"])
    # The shell in the container expands $${NAME} from env_file (.env, i.e. .env.example here).
    uri = urlsplit(interpolate(option(command, "--backend-store-uri"), active))
    # The driver is named: SQLAlchemy 2.1 reads a plain postgresql:// as psycopg 3.
    assert uri.scheme == "postgresql+psycopg2"
    from sqlalchemy.engine import make_url

    assert make_url(uri.geturl()).get_dialect().driver == "psycopg2"
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
    for name in ("POSTGRES_PASSWORD", "PGADMIN_DEFAULT_PASSWORD", "MINIO_ROOT_PASSWORD"):
        assert active[name] == "change-me", f"{name} in .env.example must be a placeholder"
    assert len(active["MINIO_ROOT_PASSWORD"]) >= 8, "MinIO refuses passwords under 8 characters"
    assert all(name in commented for name in S3_SETTINGS), "the s3 profile is off by default"
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
    assert re.fullmatch(
        r"mcr\.microsoft\.com/devcontainers/python:\d+\.\d+\.\d+-3\.11-bookworm", workspace["image"]
    )
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
    # Compose stops when `.env` is missing (the postgres service needs its password): SETUP says so.
    assert all(not isinstance(e, dict) or e.get("required", True) for e in as_list(workspace["env_file"]))
    dev_container = SETUP.read_text(encoding="utf-8").split("## Dev container", 1)[1].split("\n## ", 1)[0]
    assert "`.env` must exist" in dev_container
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
        [*base, "--profile", "tools", "--profile", "s3", "config", "--format", "json"],
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
        if "ports" not in service:
            continue
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
    assert set(result.stdout.split()) == DEFAULT_SERVICES  # pgadmin and minio only with their profiles

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
