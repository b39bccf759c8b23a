"""Settings resolve: explicit argument, then environment, then .env, then default."""

from pathlib import Path

import pytest

from mlsd import config
from mlsd.config import get_settings, repo_root, resolve
from mlsd.errors import ConfigError


@pytest.fixture
def dotenv(monkeypatch, tmp_path):
    """Point the settings at a temporary repository root with its own .env."""
    (tmp_path / "05_src").mkdir()
    (tmp_path / "pyproject.toml").write_text("")
    monkeypatch.setattr(config, "repo_root", lambda: tmp_path)
    for name in config.SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    return tmp_path / ".env"


def test_repo_root_holds_the_project():
    root = repo_root()
    assert (root / "pyproject.toml").is_file()
    assert (root / "05_src" / "mlsd" / "config.py").is_file()


def test_default_when_nothing_set(dotenv):
    assert resolve("MLSD_SCALE") == "small"
    assert resolve("DATABASE_URL") is None


def test_dotenv_beats_default(dotenv):
    dotenv.write_text("MLSD_SCALE=tiny\n")
    assert resolve("MLSD_SCALE") == "tiny"


def test_environment_beats_dotenv(dotenv, monkeypatch):
    dotenv.write_text("MLSD_SCALE=tiny\n")
    monkeypatch.setenv("MLSD_SCALE", "full")
    assert resolve("MLSD_SCALE") == "full"


def test_explicit_beats_environment(dotenv, monkeypatch):
    monkeypatch.setenv("MLSD_SCALE", "full")
    assert resolve("MLSD_SCALE", "tiny") == "tiny"
    assert get_settings(scale="tiny").scale == "tiny"


def test_empty_environment_value_counts_as_unset(dotenv, monkeypatch):
    dotenv.write_text("DATABASE_URL=postgresql://u@h:1/d\n")
    monkeypatch.setenv("DATABASE_URL", "")
    assert resolve("DATABASE_URL") == "postgresql://u@h:1/d"


def test_relative_paths_resolve_from_repo_root_not_cwd(dotenv, monkeypatch, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("notebook_folder")
    monkeypatch.chdir(elsewhere)
    dotenv.write_text("MLSD_DATA_DIR=my_data\n")
    settings = get_settings()
    assert settings.data_dir == dotenv.parent / "my_data"
    assert settings.postgres_dir == dotenv.parent / "my_data" / "postgres"


def test_absolute_path_kept(dotenv, tmp_path_factory):
    target = tmp_path_factory.mktemp("abs")
    assert get_settings(data_dir=target).data_dir == Path(target)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"scale": "huge"}, "MLSD_SCALE"),
        ({"db_port": 70000}, "MLSD_DB_PORT"),
        ({"log_level": "loud"}, "LOG_LEVEL"),
    ],
)
def test_bad_values_name_the_setting(dotenv, kwargs, words):
    with pytest.raises(ConfigError, match=words):
        get_settings(**kwargs)


def test_row_count_is_a_valid_scale(dotenv):
    assert get_settings(scale="50000").scale == "50000"


def test_import_has_no_side_effects(tmp_path):
    import subprocess
    import sys

    code = "import mlsd, mlsd.config, mlsd.db, mlsd.cli, mlsd.logging, mlsd.notebooks; print('ok')"
    env = {"MLSD_DATA_DIR": str(tmp_path / "d"), "MLSD_LOG_DIR": str(tmp_path / "l"), "PATH": ""}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "ok"
    assert out.stderr == ""
    assert not (tmp_path / "d").exists() and not (tmp_path / "l").exists()
