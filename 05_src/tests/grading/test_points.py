"""The points of each assignment question are stated in four places; the nbgrader metadata decides.

The autograder and formgrader read the points of each graded cell from the source notebook's nbgrader
metadata. Learners read them in the notebook's first cell ("**Points:** 100 in total: 80 checked by the
autograder (ten test cells ...) and 20 for three written answers"), in its intro table (``| question |
... | points |``) and in each question's heading ("## Question 1: ... (12 points)"); instructors read
them in the playbook's table (``03_instructional_team/README.md``, "### The two assignments"). These
tests read the metadata and check that every text states the same points, per question and in total.
A graded cell belongs to the question its grade id names (``test_q3_labels`` and ``q8b_production``:
questions 3 and 8).
"""

from __future__ import annotations

import re
from collections import defaultdict

import nbformat
import pytest

from mlsd.config import repo_root
from mlsd.grading import course_dir, list_assignments

pytestmark = pytest.mark.grading

ASSIGNMENTS = list_assignments(course_dir())
PLAYBOOK = repo_root() / "03_instructional_team" / "README.md"
NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9}
NUMBERS |= {"ten": 10, "eleven": 11, "twelve": 12}


def notebook(assignment: str):
    return nbformat.read(course_dir() / "source" / assignment / f"{assignment}.ipynb", as_version=4)


def graded_cells(assignment: str) -> list[dict]:
    """Each graded cell's grade id, question, points and kind (``test`` or ``written``), from the metadata."""
    cells = []
    for cell in notebook(assignment).cells:
        meta = cell.metadata.get("nbgrader", {})
        if not meta.get("grade"):
            continue
        match = re.match(r"(?:test_)?q(\d+)", meta["grade_id"])
        assert match, f"{assignment}: the grade id {meta['grade_id']} names no question (q<N>)"
        kind = "written" if meta.get("solution") else "test"
        cells.append(
            {"id": meta["grade_id"], "question": int(match.group(1)), "points": meta["points"], "kind": kind}
        )
    return cells


def points_by_question(assignment: str) -> dict[int, float]:
    totals: dict[int, float] = defaultdict(float)
    for cell in graded_cells(assignment):
        totals[cell["question"]] += cell["points"]
    return dict(totals)


def markdown(assignment: str) -> list[str]:
    return [cell.source for cell in notebook(assignment).cells if cell.cell_type == "markdown"]


def table_rows(text: str, header: str) -> list[list[str]]:
    """The rows of the first markdown table in ``text`` whose header row starts with ``| header |``."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if re.match(rf"\|\s*{re.escape(header)}\s*\|", line):
            rows = []
            for row in lines[i + 2 :]:
                if not row.startswith("|"):
                    break
                rows.append([cell.strip() for cell in row.strip().strip("|").split("|")])
            return [lines[i].strip().strip("|").split("|"), *rows]
    return []


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_graded_cell_has_points_and_a_question(assignment):
    cells = graded_cells(assignment)
    assert cells and all(cell["points"] > 0 for cell in cells), cells
    assert sorted({cell["question"] for cell in cells}) == list(
        range(1, max(c["question"] for c in cells) + 1)
    )


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_first_cell_states_the_totals(assignment):
    cells = graded_cells(assignment)
    tests = [c["points"] for c in cells if c["kind"] == "test"]
    written = [c["points"] for c in cells if c["kind"] == "written"]
    header = " ".join(markdown(assignment)[0].split())
    pattern = (
        r"\*\*Points:\*\* (\d+) in total: (\d+) checked by the autograder \((\w+) test cells[^)]*\) "
        r"and (\d+) for (\w+) written answers"
    )
    match = re.search(pattern, header)
    assert match, f"{assignment}: the first cell does not state the points as the other assignments do"
    total, autograded, test_cells, for_written, written_answers = match.groups()
    assert int(total) == sum(tests) + sum(written)
    assert int(autograded) == sum(tests) and NUMBERS[test_cells] == len(tests)
    assert int(for_written) == sum(written) and NUMBERS[written_answers] == len(written)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_intro_table_states_the_points_of_each_question(assignment):
    table = next((rows for text in markdown(assignment)[:3] if (rows := table_rows(text, "question"))), [])
    assert table, f"{assignment}: no `| question | ... | points |` table in the first cells"
    column = [name.strip() for name in table[0]].index("points")
    stated = {int(row[0]): float(row[column]) for row in table[1:]}
    assert stated == points_by_question(assignment)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_each_question_heading_states_its_points(assignment):
    stated: dict[str, float] = {}
    for text in markdown(assignment):
        for match in re.finditer(r"^## Question (\d+):.*\((\d+) points", text, flags=re.M):
            stated[match.group(1)] = float(match.group(2))
        for match in re.finditer(r"^### (\d+[a-z])\. .*\((\d+) points\)", text, flags=re.M):
            stated[match.group(1)] = float(match.group(2))
    expected = {str(question): points for question, points in points_by_question(assignment).items()}
    for cell in graded_cells(assignment):  # written parts such as q8a_defects: "### 8a. ... (7 points)"
        part = re.match(r"q(\d+[a-z])_", cell["id"])
        if part:
            expected[part.group(1)] = cell["points"]
    assert stated == expected


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_playbook_states_the_points_of_each_question(assignment):
    section = PLAYBOOK.read_text(encoding="utf-8").split("### The two assignments", 1)[1]
    table = table_rows(section, "")
    names = [name.strip() for name in table[0]]
    number = assignment.rsplit("_", 1)[1]
    column = next(i for i, name in enumerate(names) if name.startswith(f"assignment {number}"))
    questions = next(row for row in table[1:] if row[0] == "questions")[column]
    stated = {int(q): float(p) for q, p in re.findall(r"(?:^|,\s*)(\d+)\s[^()]*?\((\d+)\)", questions)}
    assert stated == points_by_question(assignment), questions
    cells = graded_cells(assignment)
    tests = [c["points"] for c in cells if c["kind"] == "test"]
    written = [c["points"] for c in cells if c["kind"] == "written"]
    totals = " ".join(section.split("|", 1)[0].split())
    match = re.search(
        r"Both are (\d+) points: (\d+) autograded in (\w+) test cells.*?, (\d+) for (\w+) written", totals
    )
    assert match, totals
    assert (int(match.group(1)), int(match.group(2)), NUMBERS[match.group(3)]) == (
        sum(tests) + sum(written),
        sum(tests),
        len(tests),
    )
    assert (int(match.group(4)), NUMBERS[match.group(5)]) == (sum(written), len(written))
