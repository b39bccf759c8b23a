"""Autograde against adversarial submissions: every case has its expected outcome.

Each autograde run costs a Python start-up, nbgrader and a kernel (several seconds), so one
submission carries several independent defects in different questions where they do not
interfere, and each run is shared by the tests that read it (module-scoped fixtures).
"""

from __future__ import annotations

import copy
import json
import time

import nbformat
import pytest

from mlsd.grading import GradingError, autograde

pytestmark = [pytest.mark.grading, pytest.mark.integration, pytest.mark.slow]

HIDDEN_MARKER = "HIDDEN-MARKER-7f3a"
TESTS = ("test_add_visible", "test_add_hidden", "test_count", "test_rate")


def cell_by_id(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def by_id(result):
    return {q.id: q for q in result.questions}


def points(result):
    return {q.id: q.points for q in result.questions}


def outputs_text(result) -> str:
    return "".join(
        (result.out_dir / name).read_text(encoding="utf-8")
        for name in ("results.json", "summary.md", "feedback.html")
    )


# -- reference solution and blank copy -------------------------------------------------------


@pytest.fixture(scope="module")
def reference(course, grade):
    return grade(course / "source" / "demo" / "demo.ipynb", learner="instructor")


@pytest.fixture(scope="module")
def blank_result(blank, grade):
    return grade(blank, learner="blank")


def test_reference_solution_scores_every_autograded_point(reference):
    assert reference.status == "graded" and reference.exit_code == 0
    assert points(reference) == {
        "test_add_visible": 1,
        "test_add_hidden": 2,
        "test_count": 3,
        "test_rate": 2,
        "explain_answer": None,
    }
    assert all(by_id(reference)[t].status == "passed" for t in TESTS)
    assert by_id(reference)["explain_answer"].status == "needs_manual_grade"
    assert (reference.score, reference.max_score) == (8, 10)
    assert reference.flags == []  # the instructors' hidden tests are not "edits"


def test_results_files_follow_the_schema(reference):
    data = json.loads((reference.out_dir / "results.json").read_text())
    assert list(data) == [
        "assignment",
        "learner",
        "notebook",
        "status",
        "score",
        "max_score",
        "questions",
        "flags",
        "review",
        "review_reasons",
        "sandbox",
    ]
    assert data["sandbox"] == "bubblewrap"
    assert [q["id"] for q in data["questions"]] == [*TESTS, "explain_answer"]  # notebook order
    assert set(data["questions"][0]) == {"id", "points", "max_points", "status", "message"}
    summary = (reference.out_dir / "summary.md").read_text()
    assert summary.count("\n| test_") == 4 and "**8/10**" in summary


def test_feedback_never_shows_hidden_tests(reference):
    # The reference run executed the hidden tests (the marker is a comment in one of them).
    page = (reference.out_dir / "feedback.html").read_text()
    assert "test_add_hidden" in page and "8/10" in page
    assert HIDDEN_MARKER not in outputs_text(reference)


def test_blank_learner_copy_scores_zero_without_crashing(blank_result):
    assert blank_result.status == "graded" and blank_result.score == 0 and blank_result.max_score == 10
    for test in TESTS:
        q = by_id(blank_result)[test]
        assert q.status == "failed" and "NotImplementedError" in q.message, q
    assert by_id(blank_result)["explain_answer"].status == "failed"  # no answer: nbgrader gives 0
    assert blank_result.flags == []


# -- tampering, a wrong answer to question 1 and a warning on stderr --------------------------


def _tamper(nb):
    nb.metadata["kernelspec"] = {"name": "ir", "display_name": "R", "language": "R"}
    cell_by_id(nb, "header").source = "# My own header"
    cell_by_id(nb, "test_add_hidden").source = "pass  # the hidden tests are for other people"
    nb.cells.remove(cell_by_id(nb, "test_add_visible"))
    count = cell_by_id(nb, "test_count")
    index = nb.cells.index(count)
    nb.cells[index] = nbformat.v4.new_markdown_cell(count.source, metadata=count.metadata, id=count.id)
    rate = cell_by_id(nb, "test_rate")
    forged = copy.deepcopy(rate)
    forged.source, forged.id = "assert True", "forged"
    nb.cells.insert(nb.cells.index(rate), forged)


@pytest.fixture(scope="module")
def tampered(make_submission, grade):
    path = make_submission(
        "tampered",
        answers={
            # wrong for negative numbers: only the hidden test of question 1 can tell
            "add_answer": "def add(a, b):\n    return abs(a) + abs(b)\n",
            # correct, but warns on stderr inside the test cell
            "count_answer": (
                "import warnings\n\n\ndef count_rows(conn):\n"
                "    warnings.warn('count_rows scans the whole table', UserWarning)\n"
                "    with conn.cursor() as cur:\n"
                "        cur.execute('SELECT count(*) FROM demo_loans')\n"
                "        return cur.fetchone()[0]\n"
            ),
        },
        edit=_tamper,
    )
    return grade(path, learner="mallory")


def test_tampering_is_restored_and_flagged(tampered):
    flags = "\n".join(tampered.flags)
    for expected in (
        "kernel changed from 'ir' to 'python3': restored",
        "read-only cell header was edited: restored",
        "test cell test_add_hidden was edited: restored",
        "test cell test_add_visible was deleted: restored",
        "test cell test_count was changed from code to markdown: restored",
        "test cell test_rate was duplicated (2 copies): extra copies removed",
    ):
        assert expected in flags, flags
    assert len(tampered.flags) == 6


def test_grade_uses_the_original_tests(tampered):
    q = by_id(tampered)
    assert (q["test_add_visible"].status, q["test_add_visible"].points) == ("passed", 1)  # re-inserted
    assert (q["test_add_hidden"].status, q["test_add_hidden"].points) == ("failed", 0)  # `pass` was undone
    assert q["test_add_hidden"].message == "add should work for negative numbers"  # the instructors' words
    assert HIDDEN_MARKER not in outputs_text(tampered)


def test_a_wrong_answer_loses_only_its_own_points_and_warnings_cost_nothing(tampered):
    assert points(tampered) == {
        "test_add_visible": 1,
        "test_add_hidden": 0,
        "test_count": 3,  # re-typed back to code, and its stderr warning did not zero it
        "test_rate": 2,
        "explain_answer": None,
    }
    assert tampered.score == 6


# -- files written by answer code, a flood of output, a wrong answer to question 2 ---------------

ATTACK = (
    "import os\n"
    "for target in ('../../../nbgrader_config.py', '../../../source/demo/demo.ipynb',\n"
    "               '../../../source/demo/outcomes.csv', '../../../../course/nbgrader_config.py'):\n"
    "    try:\n"
    "        os.makedirs(os.path.dirname(target), exist_ok=True)\n"
    "        with open(target, 'w') as handle:\n"
    "            handle.write('raise SystemExit(\"tampered\")\\n')\n"
    "    except OSError:\n"
    "        pass\n\n\n"
    "def add(a, b):\n"
    "    print(get_ipython().user_ns['In'][-1])  # tries to copy the test into the feedback\n"
    "    return a + b\n"
)


@pytest.fixture(scope="module")
def attacker_runs(make_submission, answers, grade, course, tree_digest):
    """The same hostile submission graded twice; digests of the course and the package around it."""
    from mlsd.config import repo_root

    path = make_submission(
        "attacker",
        answers={
            "add_answer": ATTACK,
            # wrong: duplicates and NULLs are rows too; only the hidden part of the test tells
            "count_answer": (
                "def count_rows(conn):\n    with conn.cursor() as cur:\n"
                "        cur.execute('SELECT count(DISTINCT id) FROM demo_loans')\n"
                "        return cur.fetchone()[0]\n"
            ),
            "rate_answer": "print('x' * 10_000_000)\n\n" + answers["rate_answer"],
        },
    )
    guarded = [
        course,
        repo_root() / "05_src" / "mlsd" / "grading",
        repo_root() / "05_src" / "tests" / "grading",
    ]
    before = [tree_digest(folder) for folder in guarded]
    first = grade(path, learner="eve")
    second = grade(path, learner="eve")
    after = [tree_digest(folder) for folder in guarded]
    return first, second, before, after


def test_answer_code_cannot_change_the_grader_or_the_course(attacker_runs):
    first, second, before, after = attacker_runs
    assert before == after
    assert first.status == second.status == "graded"


def test_same_notebook_same_result(attacker_runs):
    first, second, _, _ = attacker_runs
    assert (first.out_dir / "results.json").read_bytes() == (second.out_dir / "results.json").read_bytes()
    assert (first.out_dir / "feedback.html").read_bytes() == (second.out_dir / "feedback.html").read_bytes()


def test_wrong_answer_to_question_2_loses_only_its_points(attacker_runs):
    result = attacker_runs[0]
    assert points(result) == {
        "test_add_visible": 1,
        "test_add_hidden": 2,
        "test_count": 0,
        "test_rate": 2,
        "explain_answer": None,
    }
    message = by_id(result)["test_count"].message
    assert message == "count_rows should count every row, duplicates and NULLs included"


def test_a_flood_of_output_is_cut_and_grading_still_works(attacker_runs):
    result = attacker_runs[0]
    assert by_id(result)["test_rate"].status == "passed"
    assert any("was dropped" in flag and "cells 10" in flag for flag in result.flags), result.flags
    assert (result.out_dir / "feedback.html").stat().st_size < 200_000
    assert (result.out_dir / "results.json").stat().st_size < 10_000


def test_printing_the_test_source_does_not_leak_hidden_tests(attacker_runs):
    assert HIDDEN_MARKER not in outputs_text(attacker_runs[0])


# -- time limits and a dead kernel ---------------------------------------------------------


LOOP = "while True:\n    pass\n\n\n"


@pytest.fixture(scope="module")
def endless(make_submission, answers, grade):
    """An endless loop in question 1's answer; a wrong answer to question 3."""
    path = make_submission(
        "endless",
        answers={
            "add_answer": LOOP + answers["add_answer"],
            # wrong: loans with an unknown outcome count as not defaulted
            "rate_answer": (
                "import csv\n\n\ndef default_rate(path):\n"
                "    with open(path, newline='') as handle:\n"
                "        rows = list(csv.DictReader(handle))\n"
                "    return sum(int(r['defaulted'] or 0) for r in rows) / len(rows)\n"
            ),
        },
    )
    started = time.perf_counter()
    result = grade(path, learner="loop", cell_timeout=6, notebook_timeout=300)
    return result, time.perf_counter() - started


def test_endless_loop_times_out_its_question_only(endless):
    result, seconds = endless
    q = by_id(result)
    for test in ("test_add_visible", "test_add_hidden"):
        assert q[test].status == "timed_out" and q[test].points == 0
        assert "limit of 6 s" in q[test].message
    assert q["test_count"].status == "passed" and q["test_count"].points == 3
    assert result.timings["execution"] < 300


def test_wrong_answer_to_question_3_loses_only_its_points(endless):
    q = by_id(endless[0])
    assert (q["test_rate"].status, q["test_rate"].points) == ("failed", 0)
    # the visible assert's own message: it is literally one of the cell's visible messages
    assert (
        q["test_rate"].message
        == "this check did not run: a visible check failed: 2 defaults among 8 known outcomes"
    )


def test_the_notebook_time_limit_stops_the_run(make_submission, answers, grade):
    path = make_submission("slow", answers={"add_answer": LOOP + answers["add_answer"]})
    result = grade(path, learner="slow", cell_timeout=120, notebook_timeout=10)
    q = by_id(result)
    assert [q[t].status for t in TESTS] == ["timed_out"] * 4
    assert "time limit of 10 s" in q["test_add_visible"].message
    assert q["test_count"].message == "not run: the notebook reached its time limit of 10 s"
    assert result.timings["execution"] < 10 + 60  # kernel start included


def test_a_loop_that_swallows_the_interrupt_is_stopped(make_submission, answers, grade, session_kernels):
    """A retry loop with a bare `except:` catches the KeyboardInterrupt that stops a cell."""
    stubborn = "import time\n\nwhile True:\n    try:\n        time.sleep(1)\n    except:  # noqa: E722\n        continue\n\n\n"
    path = make_submission("stubborn", answers={"count_answer": stubborn + answers["count_answer"]})
    kernels_before = session_kernels()
    result = grade(path, learner="stubborn", cell_timeout=4, notebook_timeout=120)
    q = by_id(result)
    assert (q["test_add_visible"].status, q["test_add_hidden"].status) == ("passed", "passed")
    assert (
        q["test_count"].status == "timed_out" and "did not stop when interrupted" in q["test_count"].message
    )
    assert q["test_rate"].status == "timed_out" and "stopped responding" in q["test_rate"].message
    assert result.timings["execution"] < 120
    time.sleep(0.5)
    assert not (session_kernels() - kernels_before), "the unresponsive kernel is still alive"


def test_a_run_killed_from_outside_still_gives_a_result(make_submission, answers, grade, session_kernels):
    """The last line of defence: the child process (and its kernel) killed past the notebook limit."""
    path = make_submission("killed", answers={"rate_answer": LOOP + answers["rate_answer"]})
    kernels_before = session_kernels()
    result = grade(path, learner="killed", cell_timeout=300, notebook_timeout=300, _kill_after=15)
    assert result.status == "graded"
    assert any("stopped the notebook" in flag for flag in result.flags)
    q = by_id(result)
    assert q["test_rate"].status == "timed_out" and q["test_rate"].message.startswith("not reached")
    assert (q["test_add_visible"].status, q["test_count"].status) == ("passed", "passed")  # finished before
    time.sleep(0.5)
    assert not (session_kernels() - kernels_before), "the kernel of the killed run is still alive"


def test_a_dead_kernel_is_reported_and_never_hangs(make_submission, grade):
    path = make_submission("exit", answers={"count_answer": "import os\n\nos._exit(1)\n"})
    started = time.perf_counter()
    result = grade(path, learner="exit", cell_timeout=60, notebook_timeout=120)
    assert time.perf_counter() - started < 120
    q = by_id(result)
    assert (q["test_add_visible"].status, q["test_add_hidden"].status) == ("passed", "passed")
    for test in ("test_count", "test_rate"):
        assert q[test].status == "error" and "kernel died" in q[test].message, q[test]
    assert result.score == 3 and result.exit_code == 0


# -- not a notebook, no notebook, a broken grader ----------------------------------------------


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b'{"cells": [', "not valid JSON"),
        (b"<<<<<<< HEAD\n{}\n=======\n{}\n>>>>>>> theirs\n", "merge-conflict markers"),
        (b'{"hello": "world"}', "not a Jupyter notebook"),
        (b"", "empty"),
    ],
    ids=["bad-json", "merge-conflict", "not-a-notebook", "empty"],
)
def test_invalid_notebooks_are_results_with_a_clear_message(tmp_path, grade, content, words):
    path = tmp_path / "demo.ipynb"
    path.write_bytes(content)
    result = grade(path, learner="invalid")
    assert result.status == "invalid" and result.exit_code == 0 and result.score == 0
    assert words in result.questions[0].message
    assert json.loads((result.out_dir / "results.json").read_text())["status"] == "invalid"


def test_merge_markers_in_a_real_notebook_are_invalid(tmp_path, blank, grade):
    lines = blank.read_text().splitlines(keepends=True)
    lines[10:10] = ["<<<<<<< HEAD\n", "=======\n", ">>>>>>> assignment-1\n"]
    path = tmp_path / "demo.ipynb"
    path.write_text("".join(lines))
    result = grade(path)
    assert result.status == "invalid" and "line 11" in result.questions[0].message


def test_a_missing_notebook_is_a_result(tmp_path, grade):
    result = grade(tmp_path / "demo.ipynb", learner="absent")
    assert result.status == "missing" and result.exit_code == 0
    assert {q.points for q in result.questions} == {0} and result.max_score == 10
    assert (result.out_dir / "summary.md").is_file() and (result.out_dir / "feedback.html").is_file()


def test_an_unreachable_database_is_an_error(blank, grade):
    result = grade(blank, learner="nodb", database_url="postgresql://postgres@127.0.0.1:9/none")
    assert result.status == "error" and result.exit_code == 1
    assert "cannot reach PostgreSQL" in result.questions[0].message, result.questions[0].message


def test_unknown_assignment_lists_the_known_ones(tmp_path, course):
    with pytest.raises(GradingError, match=r"Unknown assignment 'demo_2'.*known assignments are demo"):
        autograde("demo_2", tmp_path / "x.ipynb", "octocat", out_dir=tmp_path, course=course)
