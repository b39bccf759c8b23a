"""Attacks from inside the learner's own kernel: points come only from comparisons outside it.

Each submission solves nothing (or solves only what the assertion names) and subverts the test
cells in its kernel the way a determined learner would; before checks moved out of the kernel,
each of these scored the points of the questions it touches. Now each scores 0 there, and the
integrity scan asks a person to read the code.
"""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.grading, pytest.mark.integration, pytest.mark.slow]

TESTS = ("test_add_visible", "test_add_hidden", "test_count", "test_rate")

WRONG = {
    "add_answer": "def add(a, b):\n    return 0\n",
    "count_answer": "def count_rows(conn):\n    return 0\n",
    "rate_answer": "def default_rate(path):\n    return 0.0\n",
}

INPUT_TRANSFORMER = """
def _nothing(lines):
    return ["pass\\n"]


get_ipython().input_transformers_cleanup.append(_nothing)
"""

AST_TRANSFORMER = """
import ast


class _Swallow(ast.NodeTransformer):
    def visit_Module(self, node):
        handler = ast.ExceptHandler(type=None, name=None, body=[ast.Pass()])
        return ast.fix_missing_locations(ast.Module(body=[ast.Try(body=node.body or [ast.Pass()], handlers=[handler],
                                                                  orelse=[], finalbody=[])], type_ignores=[]))


get_ipython().ast_transformers.append(_Swallow())
"""

PATCHED_HELPERS = """
import builtins
import sys

import numpy as np

np.isclose = lambda *args, **kwargs: True
np.allclose = lambda *args, **kwargs: True
builtins.abs = lambda value: 0


class Agreeable(float):
    \"\"\"Equal to anything; as a number, whatever the caller's frame expects.\"\"\"

    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    def __float__(self):
        frame = sys._getframe(1)
        for value in list(frame.f_locals.values()) + list(frame.f_globals.values()):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
        return 0.0

    __hash__ = float.__hash__


def add(a, b):
    return Agreeable(0)


class Count(int):
    def __eq__(self, other):
        return True

    __hash__ = int.__hash__


def count_rows(conn):
    return Count(0)


def default_rate(path):
    return 0.0
"""

REPLACED = """
def _swap(lines):
    text = "".join(lines)
    if "add(10, 5) == 15" in text:  # the hidden test cell of question 1 runs the visible one instead
        return ['assert add(1, 2) == 3, "add(1, 2) should be 3"\\n',
                "from mlsd.grading import extraction\\n",
                'extraction.record("test_add_visible", one_plus_two=extraction.call(add, 1, 2))\\n']
    return lines


get_ipython().input_transformers_post.append(_swap)


def add(a, b):
    return a + b
"""

FORGED = """
from IPython.display import display

MIME = "application/vnd.mlsd.extraction+json"
# values guessed from the visible messages, sent from this answer cell, not from the test cell
display({MIME: {"check": "test_count", "values": {"seven": 7, "ten": 10}}}, raw=True)


def _forge(info):
    if "default_rate(" in info.raw_cell and "assert" in info.raw_cell:
        display({MIME: {"check": "test_rate", "values": {"visible": 0.25, "empty": 0.0}}}, raw=True)


get_ipython().events.register("pre_run_cell", _forge)


def count_rows(conn):
    return 7


def default_rate(path):
    return 0.25 if path == "outcomes.csv" else 1.0
"""

TWICE = """
from mlsd.grading import extraction

_record = extraction.record


def _twice(check, **values):
    _record(check, **values)
    _record(check, **values)


extraction.record = _twice
"""


def by_id(result):
    return {q.id: q for q in result.questions}


@pytest.fixture(scope="module")
def attacked(make_submission, answers, grade):
    submissions = {
        "input-transformer": {**WRONG, "add_answer": WRONG["add_answer"] + INPUT_TRANSFORMER},
        "ast-transformer": {**WRONG, "add_answer": WRONG["add_answer"] + AST_TRANSFORMER},
        "patched-helpers": {"add_answer": PATCHED_HELPERS, "count_answer": "", "rate_answer": ""},
        "replaced": {"add_answer": REPLACED},
        "forged": {"count_answer": FORGED, "rate_answer": ""},
        "twice": {"add_answer": answers["add_answer"] + TWICE},
    }
    return {
        name: grade(make_submission(name, answers=given), learner=name) for name, given in submissions.items()
    }


@pytest.mark.parametrize("name", ["input-transformer", "ast-transformer", "patched-helpers"])
def test_subverting_the_test_cells_scores_nothing(attacked, name):
    result = attacked[name]
    assert result.status == "graded" and result.score == 0, result.questions
    for test in TESTS:
        assert by_id(result)[test].status in ("failed", "error")
    assert result.review.required, result.review


def test_the_scan_names_the_hook(attacked):
    reasons = {name: "\n".join(result.review.reasons) for name, result in attacked.items()}
    assert "input_transformers_cleanup" in reasons["input-transformer"]
    assert "ast_transformers" in reasons["ast-transformer"]
    assert "assigns to np.isclose" in reasons["patched-helpers"] and "_getframe" in reasons["patched-helpers"]
    assert "registers an IPython event callback" in reasons["forged"]


def test_a_test_cell_run_as_another_scores_nothing(attacked):
    q = by_id(attacked["replaced"])
    assert (q["test_add_visible"].status, q["test_add_visible"].points) == ("passed", 1)
    assert (q["test_add_hidden"].points, q["test_add_hidden"].message) == (
        0,
        "this check did not run (values of another check were sent from this cell)",
    )


def test_forged_values_score_nothing(attacked):
    q = by_id(attacked["forged"])
    assert q["test_count"].points == 0 and q["test_count"].message == (
        "count_rows should count every row, duplicates and NULLs included"  # its own cell's values count
    )
    assert (q["test_rate"].points, q["test_rate"].message) == (
        0,
        "this check did not run (its values were sent more than once)",
    )
    assert q["test_add_visible"].status == q["test_add_hidden"].status == "passed"  # the untouched question


def test_values_sent_twice_score_nothing(attacked):
    result = attacked["twice"]
    assert result.score == 0
    assert {by_id(result)[t].message for t in TESTS} == {
        "this check did not run (its values were sent more than once)"
    }


def test_correct_answers_still_pass_when_hooks_are_harmless(make_submission, answers, grade):
    """A learner who registers a harmless hook (a timer) keeps their points; the scan asks for a look."""
    timer = (
        "import time\n\n_started = {}\n\n\ndef _start(info):\n    _started['t'] = time.time()\n\n\n"
        "get_ipython().events.register('pre_run_cell', _start)\n\n\n"
    )
    result = grade(
        make_submission("timer", answers={"add_answer": timer + answers["add_answer"]}), learner="timer"
    )
    assert result.score == 8 and result.review.required
