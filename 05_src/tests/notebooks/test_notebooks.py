"""Every notebook under 01_materials/ and 03_instructional_team/ runs top to bottom.

Also tests the harness itself on small notebooks made here, so a broken
notebook is known to fail with its path, cell number and error.
"""

from __future__ import annotations

import nbformat
import pytest

from mlsd import quoted
from mlsd.config import repo_root
from mlsd.course import lab_notebooks
from mlsd.notebooks import discover_notebooks, run_notebook

pytestmark = pytest.mark.notebooks

COURSE_NOTEBOOKS = discover_notebooks()
LAB_NOTEBOOKS = lab_notebooks()


def make_notebook(path, *sources: str):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell("# A notebook made by the test")]
    nb.cells += [nbformat.v4.new_code_cell(src) for src in sources]
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="session")
def course_env(databases, tmp_path_factory) -> dict[str, str]:
    """Environment for course notebooks: a database, data folder and MLflow store of their own, tiny scale."""
    root = tmp_path_factory.mktemp("course")
    return {
        "DATABASE_URL": databases.create(),
        "MLSD_SCALE": "tiny",
        "MLSD_DATA_DIR": str(root / "data"),
        "MLSD_LOG_DIR": str(root / "logs"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
    }


@pytest.mark.slow
@pytest.mark.parametrize("path", COURSE_NOTEBOOKS, ids=[p.name for p in COURSE_NOTEBOOKS])
def test_course_notebook_runs_twice_in_a_row(path, course_env, tmp_path):
    for attempt in (1, 2):
        run = run_notebook(path, env=course_env, output_path=tmp_path / f"{attempt}_{path.name}")
        assert run.ok, f"run {attempt}: {run.describe()}"
        stderr = [
            "".join(out.get("text", ""))[:300]
            for cell in run.notebook.cells
            for out in cell.get("outputs", [])
            if out.get("name") == "stderr"
        ]
        assert not stderr, f"run {attempt} wrote to stderr: {stderr[:3]}"
    if path in LAB_NOTEBOOKS:
        assert_quoted_numbers_published(path, run.notebook)


def assert_quoted_numbers_published(path, executed):
    """Every number the texts quote from this session is published by the run; at the tiny scale
    only the numbers marked ``any-scale`` are compared by value (`mlsd course run` checks the rest)."""
    session = path.name[:2]
    markers = [m for m in quoted.scan_texts() if m.session == session]
    findings = quoted.compare(markers, {session: quoted.published_numbers(executed)}, scale="tiny")
    assert not findings, "\n".join(
        f"{f.marker.where()}: {f.marker.key} quoted {f.marker.quoted}: {f.problem} (run: {f.run_value})"
        for f in findings
    )


def test_passing_notebook_uses_the_database_and_the_repo_root(tmp_path, pg_url):
    folder = tmp_path / "labs"
    folder.mkdir()
    path = make_notebook(
        folder / "ok.ipynb",
        "import os\nfrom mlsd import db\nfrom mlsd.config import repo_root",
        "conn = db.connect()\ncur = conn.cursor()\ncur.execute('SELECT 6 * 7')\nanswer = cur.fetchone()[0]",
        "assert answer == 42\nprint(os.getcwd(), repo_root())",
    )
    run = run_notebook(path, env={"DATABASE_URL": pg_url})
    assert run.ok, run.describe()
    assert run.peak_memory_mb > 10
    printed = run.notebook.cells[-1].outputs[0]["text"].split()
    assert printed == [str(folder), str(repo_root())]  # cwd is the notebook's folder, paths still resolve


def test_failing_notebook_names_the_cell_and_the_error(tmp_path):
    path = make_notebook(tmp_path / "broken.ipynb", "x = 1", "y = x / 0", "print('never')")
    run = run_notebook(path)
    assert run.status == "failed"
    assert run.cell == 3  # markdown cell 1, code cells 2..4
    assert "ZeroDivisionError" in run.error
    assert "broken.ipynb, cell 3: ZeroDivisionError" in run.describe()


def test_a_hanging_cell_times_out(tmp_path):
    path = make_notebook(tmp_path / "slow.ipynb", "import time", "time.sleep(60)")
    run = run_notebook(path, cell_timeout=3)
    assert run.status == "timed_out"
    assert run.cell == 3
    assert run.seconds < 30


def test_discovery_finds_notebooks_in_the_course_folders(tmp_path):
    (tmp_path / "01_materials" / "labs").mkdir(parents=True)
    (tmp_path / "03_instructional_team" / ".ipynb_checkpoints").mkdir(parents=True)
    (tmp_path / "02_activities").mkdir()
    make_notebook(tmp_path / "01_materials" / "labs" / "a.ipynb")
    make_notebook(tmp_path / "03_instructional_team" / ".ipynb_checkpoints" / "a-checkpoint.ipynb")
    make_notebook(tmp_path / "02_activities" / "learner.ipynb")
    source = tmp_path / "03_instructional_team" / "nbgrader" / "source" / "assignment_1"
    source.mkdir(parents=True)
    make_notebook(source / "assignment_1.ipynb")  # graded by the assignment tests instead
    assert [p.name for p in discover_notebooks(tmp_path)] == ["a.ipynb"]
