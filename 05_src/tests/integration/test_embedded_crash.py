"""A killed embedded server: the message names it and how to restart it; `mlsd course run` restarts it once.

The server is a real, throwaway embedded PostgreSQL under a temporary ``MLSD_DATA_DIR``; it is
killed with SIGKILL, as a crash or an out-of-memory kill would.
"""

from __future__ import annotations

import os
import signal
import time

import nbformat
import pytest

from mlsd import cli, course, db
from mlsd._embedded import free_port
from mlsd.config import get_settings
from mlsd.errors import DatabaseError

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def embedded(isolated_env, monkeypatch):
    """The course's embedded server, as `mlsd db up` starts it, on a port and in a folder of its own."""
    monkeypatch.setenv("MLSD_DB_PORT", str(free_port()))
    server = db.embedded_server(get_settings())
    url = server.start()
    yield server, url
    server.wipe()


def kill(server) -> None:
    os.kill(server.state().pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while server.state().running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not server.state().running


def test_a_killed_embedded_server_is_named_with_how_to_restart_it(embedded):
    server, url = embedded
    kill(server)
    with pytest.raises(DatabaseError) as info:
        db.connect(url)  # as a notebook's kernel does: `mlsd course run` gives it this DATABASE_URL
    message = str(info.value)
    assert "embedded PostgreSQL server" in message and str(server.pgdata) in message
    assert "`uv run mlsd db up`" in message
    assert "docker" not in message.lower() and "DATABASE_URL" not in message


KILL_SERVER = """
import os, pathlib, signal, time
from mlsd import db
server = db.embedded_server()
marker = pathlib.Path({marker!r})
if {always} or not marker.exists():
    marker.touch()
    os.kill(server.state().pid, signal.SIGKILL)
    while server.state().running:
        time.sleep(0.05)
"""


def _notebook(path, *sources: str):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    nbformat.write(nb, path)
    return path


def test_course_run_restarts_a_killed_embedded_server_once(embedded, monkeypatch, capsys, tmp_path):
    server, _ = embedded
    labs = tmp_path / "labs"
    labs.mkdir()
    setup = "from mlsd import course\nsession = course.setup()\nsession.conn.close()"
    crashes_once = _notebook(
        labs / "01_crashes_once.ipynb", KILL_SERVER.format(marker=str(tmp_path / "once"), always=False), setup
    )
    crashes_again = _notebook(
        labs / "02_crashes_again.ipynb",
        KILL_SERVER.format(marker=str(tmp_path / "again"), always=True),
        setup,
    )
    monkeypatch.setattr(course, "lab_notebooks", lambda root=None: [crashes_once, crashes_again])

    code = cli.main(["course", "run", "--scale", "tiny", "--out", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert code == 1
    table = {
        line.split()[0]: line.split()[-1]
        for line in out.splitlines()
        if line.split()[:1] and line.split()[0].endswith(".ipynb")
    }
    # the first crash: restarted, and the notebook run again, passes
    assert table == {"01_crashes_once.ipynb": "passed", "02_crashes_again.ipynb": "failed"}
    # the second: no restart left, so the notebook fails and says what to do
    failure = next(line for line in err.splitlines() if "02_crashes_again.ipynb" in line)
    assert "embedded PostgreSQL server" in failure and "`uv run mlsd db up`" in failure
    assert "docker" not in failure.lower()
    assert not server.state().running, "restarted twice: course run restarts the server once"
