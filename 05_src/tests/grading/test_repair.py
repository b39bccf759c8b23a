"""Repairing a submission against the learner copy, and the messages built from outputs (no kernel)."""

from __future__ import annotations

import copy

import nbformat
import pytest

from mlsd.grading._common import grade_id
from mlsd.grading._repair import repair

pytestmark = pytest.mark.grading


@pytest.fixture(scope="module")
def release_nb(blank):
    return nbformat.read(blank, as_version=4)


def ids(nb):
    return [grade_id(c) or c.cell_type for c in nb.cells]


def cell(nb, cid):
    return next(c for c in nb.cells if grade_id(c) == cid)


def test_an_untouched_copy_needs_no_repair(release_nb):
    fixed = repair(release_nb, release_nb)
    assert fixed.flags == [] and not fixed.kernel_changed
    assert ids(fixed.notebook) == ids(release_nb)


def test_deleted_cells_come_back_in_their_place(release_nb):
    nb = copy.deepcopy(release_nb)
    for cid in ("header", "test_add_visible", "test_add_hidden", "explain_answer"):
        nb.cells.remove(cell(nb, cid))
    fixed = repair(nb, release_nb)
    assert ids(fixed.notebook) == ids(release_nb)
    assert "answer cell explain_answer was deleted: restored empty" in fixed.flags
    assert "read-only cell header was deleted: restored" in fixed.flags


def test_a_deleted_answer_cell_is_not_restored(release_nb):
    nb = copy.deepcopy(release_nb)
    nb.cells.remove(cell(nb, "add_answer"))
    nb.cells.insert(2, nbformat.v4.new_code_cell("def add(a, b):\n    return a + b"))
    fixed = repair(nb, release_nb)
    assert fixed.flags == [
        "answer cell add_answer was deleted: not restored (code in other cells still runs)"
    ]
    assert "add_answer" not in ids(fixed.notebook)


def test_metadata_changes_and_unknown_graded_cells_are_undone(release_nb):
    nb = copy.deepcopy(release_nb)
    cell(nb, "test_count").metadata.nbgrader["points"] = 100
    forged = nbformat.v4.new_code_cell("assert True")
    forged.metadata["nbgrader"] = {"grade": True, "grade_id": "bonus", "points": 50, "locked": True}
    nb.cells.append(forged)
    fixed = repair(nb, release_nb)
    assert "test cell test_count had its nbgrader settings changed (points): restored" in fixed.flags
    assert "graded cell with unknown id 'bonus' (cell 14): not graded" in fixed.flags
    assert cell(fixed.notebook, "test_count").metadata.nbgrader["points"] == 3
    assert "nbgrader" not in fixed.notebook.cells[-1].metadata


def test_a_duplicated_answer_cell_grades_the_answered_copy(release_nb):
    nb = copy.deepcopy(release_nb)
    answer = cell(nb, "add_answer")
    answered = copy.deepcopy(answer)
    answered.source, answered.id = "def add(a, b):\n    return a + b", "mine"
    nb.cells.insert(nb.cells.index(answer) + 1, answered)
    fixed = repair(nb, release_nb)
    assert fixed.flags == ["answer cell add_answer was duplicated (2 copies): the copy in cell 4 is graded"]
    assert cell(fixed.notebook, "add_answer").source.endswith("return a + b")


def test_only_visible_assert_messages_may_be_echoed(course):
    """A failed visible assert's message may reach the learner; a hidden one never comes from the kernel."""
    from mlsd.grading._score import visible_messages

    source = nbformat.read(course / "source" / "demo" / "demo.ipynb", as_version=4)
    messages = visible_messages(cell(source, "test_add_hidden").source)
    assert messages == {"add(10, 5) should be 15"}
    assert "add should work for negative numbers" not in visible_messages(
        cell(source, "test_add_hidden").source
    )
