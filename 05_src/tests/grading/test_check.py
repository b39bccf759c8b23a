"""`mlsd grade check`: the learner's own visible checks, in a fresh kernel and a fresh database."""

from __future__ import annotations

import pytest

from mlsd.grading import GradingError
from mlsd.grading._check import check_notebook

pytestmark = [pytest.mark.grading, pytest.mark.integration, pytest.mark.slow]

TESTS = ["test_add_visible", "test_add_hidden", "test_count", "test_rate"]


@pytest.fixture
def beside_support(released):
    """Put a submission next to the assignment's support files, as in a learner's checkout."""
    import shutil

    def place(path):
        shutil.copy(released / "demo" / "outcomes.csv", path.parent / "outcomes.csv")
        return path

    return place


def rows(result):
    return {row.question: row for row in result[2]}


def test_a_solved_copy_passes_every_visible_check(make_submission, beside_support, pg_url):
    result = check_notebook("demo", beside_support(make_submission("check-solved")), database_url=pg_url)
    assert result[0] == "demo" and [r.question for r in result[2]] == TESTS
    assert {r.status for r in result[2]} == {"passed"}


def test_the_blank_copy_fails_with_the_learners_own_messages(blank, pg_url):
    checked = rows(check_notebook("demo", blank, database_url=pg_url))
    assert all(checked[t].status == "failed" and "NotImplementedError" in checked[t].message for t in TESTS)


def test_a_wrong_answer_shows_the_visible_message_and_a_dead_kernel_stops_the_rest(make_submission, pg_url):
    wrong = make_submission(
        "check-wrong",
        answers={
            "add_answer": "def add(a, b):\n    return a - b\n",
            "count_answer": "import os\nos._exit(3)\n",
        },
    )
    checked = rows(check_notebook("demo", wrong, database_url=pg_url))
    assert checked["test_add_visible"].message == "AssertionError: add(1, 2) should be 3"
    assert checked["test_count"].status == checked["test_rate"].status == "not run"
    assert "kernel died" in checked["test_rate"].message


def test_an_unknown_notebook_says_what_to_pass(tmp_path):
    with pytest.raises(GradingError, match="does not exist"):
        check_notebook("demo", tmp_path / "nope.ipynb")
