"""Shared fixtures for the grading tests: the fixture course, its learner copy, submissions.

The fixture course (``fixture_course/``) has one assignment, ``demo``, with three autograded
questions (``add``: two test cells of 1 and 2 points; ``count_rows`` against the database: 3
points; ``default_rate`` on a support file: 2 points) and one answer read by a grader (2 points).
Tests grade copies of the course in a temporary folder, never the files in the repository.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest

FIXTURE_COURSE = Path(__file__).resolve().parent / "fixture_course"
TEST_SESSION = uuid.uuid4().hex
HIDDEN_MARKER = "HIDDEN-MARKER-7f3a"
AUTOGRADED_POINTS = 8  # 1 + 2 + 3 + 2; the written answer (2 points) is read by a grader
TOTAL_POINTS = 10

# Correct answers, written as a learner would (no solution delimiters).
ANSWERS = {
    "add_answer": 'def add(a, b):\n    """Return the sum of a and b."""\n    return a + b\n',
    "count_answer": (
        "def count_rows(conn):\n"
        "    with conn.cursor() as cur:\n"
        '        cur.execute("SELECT count(*) FROM demo_loans")\n'
        "        return cur.fetchone()[0]\n"
    ),
    "rate_answer": (
        "import csv\n\n\n"
        "def default_rate(path):\n"
        "    with open(path, newline='') as handle:\n"
        "        known = [r['defaulted'] for r in csv.DictReader(handle) if r['defaulted'].strip()]\n"
        "    return sum(int(v) for v in known) / len(known) if known else 0.0\n"
    ),
    "explain_answer": "A fresh database means no leftover table can make a wrong answer pass.",
}


def cell_by_id(nb, grade_id: str):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def digest(folder: Path) -> str:
    """A hash of every file's path and bytes under ``folder``."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        h.update(path.relative_to(folder).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="session")
def outside_repo(tmp_path_factory) -> Callable[[str], Path]:
    """New empty folders outside the instructors' repository, which ``publish`` refuses to write into,
    also when pytest's own temporary folders are inside it (``.ci/run`` may put them in the clone)."""
    from mlsd.config import repo_root

    base = tmp_path_factory.getbasetemp().resolve()
    own = repo_root().resolve() in base.parents
    if own:
        base = Path(tempfile.mkdtemp(prefix="mlsd-tests-outside-"))
    yield lambda name: Path(tempfile.mkdtemp(prefix=f"{name}-", dir=base))
    if own:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def course(tmp_path_factory) -> Path:
    """A copy of the fixture course that the tests grade against."""
    target = tmp_path_factory.mktemp("course") / "nbgrader"
    shutil.copytree(FIXTURE_COURSE, target)
    return target


@pytest.fixture(scope="session")
def released(course, tmp_path_factory) -> Path:
    """The learner copies made by ``release`` (folder holding ``demo/``)."""
    from mlsd.grading import release

    out = tmp_path_factory.mktemp("assignments")
    release("demo", out=out, course=course)
    return out


@pytest.fixture(scope="session")
def blank(released) -> Path:
    """The learner copy as a learner receives it."""
    return released / "demo" / "demo.ipynb"


@pytest.fixture(scope="session")
def make_submission(blank, tmp_path_factory) -> Callable[..., Path]:
    """Build a submission from the learner copy: ``make_submission("name", answers={...}, edit=fn)``.

    ``answers`` maps answer cell ids to their source (default: all correct); ``edit`` gets the
    notebook to tamper with before it is written.
    """
    folder = tmp_path_factory.mktemp("submissions")

    def make(name: str, answers: dict[str, str] | None = None, edit: Callable | None = None) -> Path:
        nb = nbformat.read(blank, as_version=4)
        for cid, source in {**ANSWERS, **(answers or {})}.items():
            cell_by_id(nb, cid).source = source
        if edit is not None:
            edit(nb)
        path = folder / name / "demo.ipynb"
        path.parent.mkdir(parents=True)
        nbformat.write(nb, path)
        return path

    return make


@pytest.fixture(scope="session")
def grading_options(pg_url, tmp_path_factory):
    """Options for every grading test: the test server, a reference cache shared by the session, tiny data."""
    from mlsd.grading import GradingOptions

    # MLSD_TEST_SESSION marks this session's kernels, so that process checks ignore other test runs.
    env = {"MLSD_SCALE": "tiny", "MLSD_TEST_SESSION": TEST_SESSION}
    return GradingOptions(database_url=pg_url, env=env, reference_cache=tmp_path_factory.mktemp("reference"))


@pytest.fixture(scope="session")
def grade(course, grading_options, tmp_path_factory) -> Callable[..., object]:
    """``grade(path, learner, sandbox=True, database_url=None, _kill_after=None, **limits)``: autograde
    against the fixture course and the test server; ``limits`` are fields of ``Limits``."""
    from dataclasses import replace

    from mlsd.grading import Limits, autograde

    outputs = tmp_path_factory.mktemp("results")
    counter = iter(range(10**6))

    def run(path, learner: str = "octocat", sandbox=True, database_url=None, _kill_after=None, **limits):
        out = outputs / f"{next(counter):03d}_{learner}"
        options = replace(grading_options, limits=Limits(**limits), sandbox=sandbox)
        if database_url is not None:
            options = replace(options, database_url=database_url)
        return autograde(
            "demo", path, learner, out_dir=out, course=course, options=options, _kill_after=_kill_after
        )

    return run


@pytest.fixture(scope="session")
def answers() -> dict[str, str]:
    """The correct answers, by answer cell id."""
    return dict(ANSWERS)


@pytest.fixture(scope="session")
def tree_digest() -> Callable[[Path], str]:
    """``tree_digest(folder)``: a hash of every file's path and bytes under ``folder``."""
    return digest


# -- the course's own assignments (03_instructional_team/nbgrader) ------------------------------


@pytest.fixture(scope="session")
def grade_assignment(grading_options, tmp_path_factory) -> Callable[..., object]:
    """``grade_assignment(assignment, path, learner)``: autograde against the real course at ``tiny``."""
    from mlsd.grading import autograde

    outputs = tmp_path_factory.mktemp("assignment_results")

    def run(assignment: str, path: Path, learner: str):
        return autograde(
            assignment, path, learner, out_dir=outputs / assignment / learner, options=grading_options
        )

    return run


@pytest.fixture(scope="session")
def fill_learner_copy(tmp_path_factory) -> Callable[..., Path]:
    """``fill_learner_copy(assignment, name, answers)``: the committed learner copy, answers filled in.

    ``answers`` maps answer cell ids to their source, written as a learner would.
    """
    from mlsd.grading import assignments_dir

    folder = tmp_path_factory.mktemp("assignment_submissions")

    def make(assignment: str, name: str, answers: dict[str, str]) -> Path:
        notebook = f"{assignment}.ipynb"
        nb = nbformat.read(assignments_dir() / assignment / notebook, as_version=4)
        cells = {c.get("id"): c for c in nb.cells}
        for cell_id, source in answers.items():
            cells[cell_id].source = source.strip("\n") + "\n"
        path = folder / assignment / name / notebook
        path.parent.mkdir(parents=True)
        nbformat.write(nb, path)
        return path

    return make


def _session_kernels() -> set[int]:
    """Kernels (and their sandboxes) that this test session's gradings started and that still run."""
    import psutil

    found = set()
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if "ipykernel_launcher" not in " ".join(proc.info["cmdline"] or []):
            continue
        try:
            if f"MLSD_TEST_SESSION={TEST_SESSION}".encode() in Path(f"/proc/{proc.pid}/environ").read_bytes():
                found.add(proc.pid)
        except OSError:
            continue
    return found


@pytest.fixture(scope="session")
def session_kernels() -> Callable[[], set[int]]:
    """``session_kernels()``: the pids of kernels this session's gradings started that still run."""
    return _session_kernels
