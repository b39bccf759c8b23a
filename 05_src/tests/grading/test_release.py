"""``release``: learner copies without solutions or hidden tests, byte-stable, never stale."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from mlsd.grading import GradingError, ReleaseWarning, assignments_dir, course_dir, list_assignments, release
from mlsd.grading._release import check_header

pytestmark = pytest.mark.grading

HIDDEN_MARKER = "HIDDEN-MARKER-7f3a"


def differences(expected: Path, actual: Path) -> list[str]:
    """Files that differ between two release folders (what the staleness test reports)."""
    files = {p.relative_to(expected).as_posix() for p in expected.rglob("*") if p.is_file()}
    files |= {p.relative_to(actual).as_posix() for p in actual.rglob("*") if p.is_file()}
    out = []
    for name in sorted(files):
        a, b = expected / name, actual / name
        if not a.is_file() or not b.is_file() or a.read_bytes() != b.read_bytes():
            out.append(name)
    return out


def test_learner_copy_has_no_solutions_and_no_hidden_tests(released, course):
    folder = released / "demo"
    assert sorted(p.name for p in folder.iterdir()) == ["demo.ipynb", "outcomes.csv"]
    text = (folder / "demo.ipynb").read_text()
    for secret in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", HIDDEN_MARKER, "return a + b"):
        assert secret not in text
    assert "raise NotImplementedError()" in text and "YOUR ANSWER HERE" in text
    assert (folder / "outcomes.csv").read_bytes() == (
        course / "source" / "demo" / "outcomes.csv"
    ).read_bytes()


def test_learner_copy_keeps_the_header_and_the_nbgrader_metadata(released, course):
    nb = nbformat.read(released / "demo" / "demo.ipynb", as_version=4)
    source = nbformat.read(course / "source" / "demo" / "demo.ipynb", as_version=4)
    assert nb.cells[0].source == source.cells[0].source
    assert "branch `demo`" in nb.cells[0].source
    assert [c.id for c in nb.cells] == [c.id for c in source.cells]
    test = next(c for c in nb.cells if c.id == "test_add_hidden")
    assert test.metadata.nbgrader["grade"] and test.metadata.nbgrader["points"] == 2
    assert all(
        not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code"
    )


def test_release_is_byte_stable_and_removes_stale_files(released, course, tmp_path):
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "old_support_file.csv").write_text("stale\n")
    written = release("demo", out=tmp_path, course=course)
    assert [p.name for p in written] == ["demo.ipynb", "outcomes.csv"]
    assert not (tmp_path / "demo" / "old_support_file.csv").exists()
    assert differences(released / "demo", tmp_path / "demo") == []
    raw = (tmp_path / "demo" / "demo.ipynb").read_bytes()
    assert raw.endswith(b"}\n") and b"\r\n" not in raw and raw.startswith(b'{\n "cells": [\n  {\n')


def test_learner_copy_is_unchanged_by_nbstripout(released):
    from nbstripout import strip_output

    path = released / "demo" / "demo.ipynb"
    nb = nbformat.read(path, as_version=4)
    stripped = strip_output(nb, keep_output=False, keep_count=False, keep_id=True)
    assert nbformat.writes(stripped) + "\n" == path.read_text()


def test_staleness_check_sees_an_edited_copy(released, tmp_path):
    import shutil

    copy = tmp_path / "demo"
    shutil.copytree(released / "demo", copy)
    nb = (copy / "demo.ipynb").read_text().replace("Write `add(a, b)`", "Write `add(x, y)`")
    (copy / "demo.ipynb").write_text(nb)
    assert differences(released / "demo", copy) == ["demo.ipynb"]


@pytest.mark.slow
@pytest.mark.parametrize("assignment", list_assignments(course_dir()))
def test_committed_learner_copies_are_up_to_date(assignment, tmp_path):
    release(assignment, out=tmp_path)
    stale = differences(assignments_dir() / assignment, tmp_path / assignment)
    assert not stale, (
        f"stale learner copies in 02_activities/assignments/{assignment}: {stale}; run `uv run mlsd grade release`"
    )


def test_unknown_assignment_lists_the_known_ones(course, tmp_path):
    with pytest.raises(GradingError, match="known assignments are demo"):
        release("nope", out=tmp_path, course=course)


def _header_nb(first: str, first_type: str = "markdown"):
    nb = nbformat.v4.new_notebook()
    make = nbformat.v4.new_markdown_cell if first_type == "markdown" else nbformat.v4.new_code_cell
    test = nbformat.v4.new_code_cell("assert True")
    test.metadata["nbgrader"] = {
        "grade": True,
        "grade_id": "t",
        "locked": True,
        "points": 5,
        "solution": False,
    }
    nb.cells = [make(first), test]
    return nb


def test_header_must_come_first_and_name_points_branch_and_pull_request():
    good = _header_nb("**5 points.** Submit on the branch `assignment-1`; open a pull request in your fork.")
    assert check_header(good, "assignment_1", "x.ipynb") == []
    problems = check_header(_header_nb("# Assignment"), "assignment_1", "x.ipynb")
    assert len(problems) == 3 and "5 points" in problems[0] and "assignment-1" in problems[1]
    with pytest.raises(GradingError, match="must open with a markdown cell"):
        check_header(_header_nb("print(1)", "code"), "assignment_1", "x.ipynb")


def test_release_warns_about_a_poor_header(course, tmp_path):
    import shutil

    other = tmp_path / "course"
    shutil.copytree(course, other)
    path = other / "source" / "demo" / "demo.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].source = "# Demo"
    nbformat.write(nb, path)
    with pytest.warns(ReleaseWarning) as caught:
        release("demo", out=tmp_path / "out", course=other)
    messages = sorted(str(w.message) for w in caught)
    assert len(messages) == 3 and "does not name the branch `demo`" in messages[1], messages
