"""The final grade policy: quizzes 60 %, each assignment 20 %, pass at 60 (decided unrounded)."""

from __future__ import annotations

import pytest

from mlsd.grading import GradingError, final_grades, write_final

pytestmark = pytest.mark.grading

QUIZ_HEADER = "learner,quiz_1,quiz_2,quiz_3,quiz_4,quiz_5,quiz_6\n"
ASSIGNMENT_HEADER = "learner,assignment_1,assignment_2\n"


@pytest.fixture
def files(tmp_path):
    def write(quizzes: str, assignments: str):
        q, a = tmp_path / "QUIZZES.csv", tmp_path / "ASSIGNMENTS.csv"
        q.write_text(QUIZ_HEADER + quizzes)
        a.write_text(ASSIGNMENT_HEADER + assignments)
        return q, a

    return write


def test_policy_weights_and_assignment_marks(files):
    q, a = files(
        "ada,100,90,80,70,60,50\nbo,60,60,60,60,60,60\ncy,,,,,,\n",
        "ada,complete,Incomplete\nbo, MISSING ,complete\ncy,complete,complete\n",
    )
    frame = final_grades(q, a).set_index("learner")
    # ada: quizzes 75 -> 0.6*75 + 0.2*100 + 0.2*50 = 75
    assert frame.loc["ada", "quiz_average"] == 75 and frame.loc["ada", "final_score"] == 75
    assert (frame.loc["ada", "assignment_1"], frame.loc["ada", "assignment_2"]) == (100, 50)
    # bo: 0.6*60 + 0 + 20 = 56 -> fail
    assert frame.loc["bo", "final_score"] == 56 and frame.loc["bo", "result"] == "fail"
    # cy: every quiz missed counts 0 -> 40
    assert frame.loc["cy", "quiz_average"] == 0 and frame.loc["cy", "final_score"] == 40
    assert list(frame.columns) == ["quiz_average", "assignment_1", "assignment_2", "final_score", "result"]


def test_exactly_sixty_passes_without_floating_point_trouble(files):
    # exactly 60; with floats, 0.6 * mean + 0.2 * 100 + 0.2 * 100 gives 59.99999999999999 here
    quizzes = ["33.3", "33.4", "33.35", "33.3", "33.35", "33.3"]
    assert 0.6 * (sum(float(x) for x in quizzes) / 6) + 0.2 * 100 + 0.2 * 100 < 60
    q, a = files("edge," + ",".join(quizzes) + "\n", "edge,complete,complete\n")
    row = final_grades(q, a).iloc[0]
    assert row["final_score"] == 60 and row["result"] == "pass"


def test_the_boundary_is_decided_on_the_unrounded_score(files):
    # quiz average 33.32 -> final 59.992: written as 59.99; 33.325 -> 59.995 written 60.00 but still a fail
    q, a = files("low,33.325,33.325,33.325,33.325,33.325,33.325\n", "low,complete,complete\n")
    row = final_grades(q, a).iloc[0]
    assert row["final_score"] == 60.0 and row["result"] == "fail"


def test_write_final_writes_two_decimals(files, tmp_path):
    q, a = files(
        "ada,100,90,80,70,60,50\nbo,60.5,60,60,60,60,60\n", "ada,complete,incomplete\nbo,missing,complete\n"
    )
    out = tmp_path / "out" / "FINAL.csv"
    write_final(q, a, out)
    assert out.read_text() == (
        "learner,quiz_average,assignment_1,assignment_2,final_score,result\n"
        "ada,75.00,100,50,75.00,pass\n"
        "bo,60.08,0,100,56.05,fail\n"
    )


@pytest.mark.parametrize(
    ("quizzes", "assignments", "message"),
    [
        (
            "ada,101,0,0,0,0,0\n",
            "ada,complete,complete\n",
            r"QUIZZES.csv line 2 \(learner 'ada'\), column quiz_1: '101'",
        ),
        (
            "ada,0,-1,0,0,0,0\n",
            "ada,complete,complete\n",
            r"column quiz_2: '-1' is not a number between 0 and 100",
        ),
        ("ada,0,0,ten,0,0,0\n", "ada,complete,complete\n", r"column quiz_3: 'ten'"),
        ("ada,0,0,0,0,0,nan\n", "ada,complete,complete\n", r"column quiz_6: 'nan'"),
        (
            "ada,0,0,0,0,0,0\nbo,1,1,1,1,1,1\n",
            "ada,complete,complete\nbo,done,complete\n",
            r"ASSIGNMENTS.csv line 3 \(learner 'bo'\), column assignment_1: 'done' is not one of",
        ),
        ("ada,0,0,0,0,0,0\n", "ada,complete,\n", r"column assignment_2: '' is not one of"),
        (
            "ada,0,0,0,0,0,0\nbo,0,0,0,0,0,0\n",
            "ada,complete,complete\ncy,complete,complete\n",
            r"in QUIZZES.csv but not in ASSIGNMENTS.csv: bo; in ASSIGNMENTS.csv but not in QUIZZES.csv: cy",
        ),
        (
            "ada,0,0,0,0,0,0\nada,1,1,1,1,1,1\n",
            "ada,complete,complete\n",
            r"line 3: learner 'ada' already appears on line 2",
        ),
        ("ada,0,0,0,0,0\n", "ada,complete,complete\n", r"line 2: 6 values for 7 columns"),
        (",0,0,0,0,0,0\n", "ada,complete,complete\n", r"line 2: the learner is empty"),
    ],
    ids=[
        "above-100",
        "negative",
        "not-a-number",
        "nan",
        "bad-mark",
        "empty-mark",
        "unmatched",
        "duplicate",
        "short-row",
        "no-learner",
    ],
)
def test_bad_input_names_the_row_and_column(files, quizzes, assignments, message):
    q, a = files(quizzes, assignments)
    with pytest.raises(GradingError, match=message):
        final_grades(q, a)


def test_wrong_columns_are_named(tmp_path):
    q = tmp_path / "QUIZZES.csv"
    q.write_text("learner,quiz_1,quiz_2\nada,1,2\n")
    a = tmp_path / "ASSIGNMENTS.csv"
    a.write_text(ASSIGNMENT_HEADER + "ada,complete,complete\n")
    with pytest.raises(GradingError, match="QUIZZES.csv has the columns learner,quiz_1,quiz_2; expected"):
        final_grades(q, a)
    with pytest.raises(GradingError, match="does not exist"):
        final_grades(tmp_path / "nope.csv", a)
