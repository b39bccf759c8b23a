"""Each step of ``repair`` on its own, on a small learner copy built here (no nbgrader run)."""

from __future__ import annotations

import copy

import nbformat
import pytest

from mlsd.grading._common import grade_id
from mlsd.grading._repair import (
    REPAIR_STEPS,
    RepairContext,
    drop_unknown_grade_ids,
    repair,
    resolve_duplicates,
    restore_kept_cells,
    restore_kernel,
    restore_missing_cells,
)

pytestmark = pytest.mark.grading

ANSWER = "def add(a, b):\n    # YOUR CODE HERE\n    raise NotImplementedError()"


def _cell(kind: str, source: str, cid: str, **nbgrader):
    cell = nbformat.v4.new_code_cell(source) if kind == "code" else nbformat.v4.new_markdown_cell(source)
    cell.id = cid
    if nbgrader:
        cell.metadata["nbgrader"] = {"grade_id": cid, "schema_version": 3, **nbgrader}
    return cell


@pytest.fixture
def release():
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nb.cells = [
        _cell("markdown", "# Assignment", "header", grade=False, solution=False, locked=True),
        _cell("code", ANSWER, "add_answer", grade=False, solution=True, locked=False),
        _cell("code", "assert add(1, 2) == 3", "test_add", grade=True, solution=False, locked=True, points=2),
        _cell("markdown", "YOUR ANSWER HERE", "explain", grade=True, solution=True, locked=False, points=1),
        _cell("code", "x = 1", "scratch"),
    ]
    nb.cells[2].metadata["editable"] = False
    return nb


@pytest.fixture
def context(release):
    return RepairContext.of(release)


def ids(nb):
    return [grade_id(c) or c.id for c in nb.cells]


def cell(nb, cid):
    return next(c for c in nb.cells if grade_id(c) == cid)


def test_restore_kernel_puts_the_course_kernel_back(release, context):
    nb = copy.deepcopy(release)
    nb.metadata["kernelspec"] = {"name": "julia-1.10", "display_name": "Julia"}
    nb.metadata["language_info"] = {"name": "julia"}
    assert restore_kernel(nb, context) == ["kernel changed from 'julia-1.10' to 'python3': restored"]
    assert nb.metadata["kernelspec"] == release.metadata["kernelspec"] and "language_info" not in nb.metadata
    assert restore_kernel(copy.deepcopy(release), context) == []


def test_drop_unknown_grade_ids_ungrades_forged_cells(release, context):
    nb = copy.deepcopy(release)
    nb.cells.append(_cell("code", "assert True", "bonus", grade=True, points=50, locked=True))
    nb.cells.append(_cell("markdown", "notes", "mine", grade=False, solution=False))
    assert drop_unknown_grade_ids(nb, context) == ["graded cell with unknown id 'bonus' (cell 6): not graded"]
    assert [("nbgrader" in c.metadata) for c in nb.cells[-2:]] == [False, False]
    assert ids(nb)[:4] == ["header", "add_answer", "test_add", "explain"]  # known cells keep their metadata


def test_resolve_duplicates_keeps_the_unchanged_test_and_the_answered_answer(release, context):
    nb = copy.deepcopy(release)
    edited = copy.deepcopy(cell(nb, "test_add"))
    edited.source, edited.id = "assert True", "edited"
    nb.cells.insert(2, edited)  # the edited copy comes first
    answered = copy.deepcopy(cell(nb, "add_answer"))
    answered.source, answered.id = "def add(a, b):\n    return a + b", "answered"
    nb.cells.insert(2, answered)
    flags = resolve_duplicates(nb, context)
    assert flags == [
        "answer cell add_answer was duplicated (2 copies): the copy in cell 3 is graded",
        "test cell test_add was duplicated (2 copies): extra copies removed",
    ]
    assert cell(nb, "test_add").source == "assert add(1, 2) == 3" and "edited" not in ids(nb)
    assert cell(nb, "add_answer").id == "answered" and "nbgrader" not in nb.cells[1].metadata
    assert len(nb.cells) == len(release.cells) + 1  # the unanswered copy stays, as a plain cell


def test_restore_kept_cells_undoes_type_metadata_and_source_changes(release, context):
    nb = copy.deepcopy(release)
    test = cell(nb, "test_add")
    test.cell_type, test.source = "markdown", "assert True"
    test.pop("outputs"), test.pop("execution_count")
    test.metadata["nbgrader"]["points"] = 100
    del test.metadata["editable"]
    flags = restore_kept_cells(nb, context)
    assert flags == [
        "test cell test_add was changed from code to markdown: restored",
        "test cell test_add had its nbgrader settings changed (points): restored",
        "test cell test_add was edited: restored",
    ]
    test = cell(nb, "test_add")
    assert (test.cell_type, test.source, test.outputs) == ("code", "assert add(1, 2) == 3", [])
    assert test.metadata["nbgrader"]["points"] == 2 and test.metadata["editable"] is False


def test_restore_kept_cells_does_not_flag_the_instructors_version(release):
    source = copy.deepcopy(release)
    cell(source, "test_add").source = "assert add(1, 2) == 3\n### BEGIN HIDDEN TESTS\nassert add(2, 2) == 4"
    nb = copy.deepcopy(source)  # e.g. the reference solution, graded against the learner copy
    assert restore_kept_cells(nb, RepairContext.of(release, source)) == []
    assert cell(nb, "test_add").source == "assert add(1, 2) == 3"  # hidden tests never stay in the copy


def test_restore_missing_cells_puts_them_back_where_they_were(release, context):
    nb = copy.deepcopy(release)
    for cid in ("header", "test_add", "explain"):
        nb.cells.remove(cell(nb, cid))
    flags = restore_missing_cells(nb, context)
    assert flags == [
        "read-only cell header was deleted: restored",
        "test cell test_add was deleted: restored",
        "answer cell explain was deleted: restored empty",
    ]
    assert ids(nb) == ids(release)
    assert cell(nb, "test_add").id == "test_add-restored"


def test_restore_missing_cells_reports_a_deleted_answer_without_restoring_it(release, context):
    nb = copy.deepcopy(release)
    nb.cells.remove(cell(nb, "add_answer"))
    assert restore_missing_cells(nb, context) == [
        "answer cell add_answer was deleted: not restored (code in other cells still runs)"
    ]
    assert "add_answer" not in ids(nb)


def test_repair_runs_every_step_in_order_on_a_copy(release):
    nb = copy.deepcopy(release)
    nb.metadata["kernelspec"] = {"name": "ir"}
    nb.cells.remove(cell(nb, "test_add"))
    cell(nb, "header").source = "# Mine now"
    fixed = repair(nb, release)
    assert fixed.kernel_changed and fixed.flags == [
        "kernel changed from 'ir' to 'python3': restored",
        "read-only cell header was edited: restored",
        "test cell test_add was deleted: restored",
    ]
    assert ids(fixed.notebook) == ids(release) and nb.metadata["kernelspec"] == {"name": "ir"}
    assert [s.__name__ for s in REPAIR_STEPS] == [
        "restore_kernel",
        "drop_unknown_grade_ids",
        "resolve_duplicates",
        "restore_kept_cells",
        "restore_missing_cells",
    ]
