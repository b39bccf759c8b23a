"""The course's six quizzes: each parses, keeps the rules, points at real headings and exports.

These files stay in the instructors' repository (like the answer keys), and so does this test.
Their numerical answers are recomputed from the course data in
``tests/integration/test_quizzes_numbers.py``.
"""

from __future__ import annotations

import pytest

import mlsd.quiz
from mlsd.config import repo_root
from mlsd.quiz import (
    KINDS,
    course_problems,
    heading_index,
    load_quizzes,
    parse,
    preview_html,
    to_gift,
    to_qti,
    to_text,
)

pytestmark = pytest.mark.quiz

SESSIONS = (1, 2, 3, 4, 5, 6)


@pytest.fixture(scope="module")
def quizzes():
    return load_quizzes()


def test_there_is_one_quiz_per_session(quizzes):
    assert sorted(quizzes) == list(SESSIONS)
    for session, quiz in quizzes.items():
        assert quiz.session == session
        assert quiz.title.startswith(f"Quiz {session}:")  # Canvas' gradebook column: "Quiz N: ... (id)"
        assert quiz.source == f"03_instructional_team/quizzes/session_{session:02d}.md"


def test_every_quiz_keeps_the_rules_and_every_pointer_resolves(quizzes):
    problems = course_problems(quizzes.values())
    assert problems == [], "\n".join(map(str, problems))


def test_the_rules_hold_question_by_question(quizzes):
    """The same rules, asserted directly on the data, so that a broken checker cannot hide a broken quiz."""
    headings = heading_index(repo_root())
    stems = set()
    for quiz in quizzes.values():
        assert 10 <= len(quiz.questions) <= 12, quiz.source
        for q in quiz.questions:
            where = (quiz.source, q.name)
            n_correct = sum(choice.correct for choice in q.choices)
            if q.kind in ("true_false", "multiple_choice"):
                assert n_correct == 1, where
            elif q.kind == "multiple_answers":
                assert n_correct >= 1, where
            else:
                assert q.numerical is not None and q.recompute, where
            stem = " ".join(q.stem.split()).casefold()
            assert stem not in stems, where
            stems.add(stem)
            assert q.feedback and q.pointers, where
            for pointer in q.pointers:
                assert pointer.heading in headings[pointer.path], (*where, str(pointer))


def test_every_quiz_mixes_the_kinds_of_question(quizzes):
    for quiz in quizzes.values():
        counts = quiz.kind_counts()
        assert all(counts[kind] >= 1 for kind in KINDS), (quiz.source, counts)
        assert counts["numerical"] <= 2, quiz.source  # few numbers: the course data still change


def test_every_quiz_tests_its_own_session(quizzes):
    for session, quiz in quizzes.items():
        for q in quiz.questions:
            names = [p.path.rsplit("/", 1)[-1] for p in q.pointers]
            assert any(n.startswith(f"{session:02d}_") or n == f"session_{session:02d}.md" for n in names), (
                quiz.source,
                q.name,
            )


def test_text2qti_reads_the_files_as_mlsd_does(quizzes, quiz_readers):
    _, _, assert_text2qti_agrees = quiz_readers
    for quiz in quizzes.values():
        assert_text2qti_agrees(quiz)


def test_the_files_go_to_text2qti_unchanged(quizzes):
    """text2qti's own command reads the files as they are: the `%` lines are its comments."""
    from text2qti.config import Config
    from text2qti.quiz import Quiz as Text2qtiQuiz

    for quiz in quizzes.values():
        text = (repo_root() / quiz.source).read_text(encoding="utf-8")
        direct = Text2qtiQuiz(text, config=Config(), source_name=quiz.source)
        assert direct.id == mlsd.quiz.text2qti_quiz(quiz, pointers_in_feedback=False).id, quiz.source


def test_writing_a_quiz_back_loses_nothing(quizzes):
    for quiz in quizzes.values():
        assert parse(to_text(quiz), source=quiz.source) == quiz, quiz.source


def test_qti_export_round_trips_questions_and_correct_answers(quizzes, quiz_readers):
    read_qti, _, _ = quiz_readers
    for quiz in quizzes.values():
        title, items = read_qti(to_qti(quiz))
        assert title == quiz.title
        assert len(items) == len(quiz.questions), quiz.source
        for (kind, n_correct, limits), q in zip(items, quiz.questions, strict=True):
            assert kind == f"{q.kind}_question", (quiz.source, q.name)
            if q.kind == "numerical":
                assert limits == pytest.approx((q.numerical.low, q.numerical.high), abs=1e-4), q.name
            else:
                assert n_correct == len(q.correct_choices), (quiz.source, q.name)


def test_gift_export_round_trips_questions_and_correct_answers(quizzes, quiz_readers):
    _, read_gift, _ = quiz_readers
    for quiz in quizzes.values():
        expected = [(q.title, q.kind, len(q.correct_choices) or 1) for q in quiz.questions]
        assert read_gift(to_gift(quiz)) == expected, quiz.source


def test_the_preview_marks_every_correct_answer(quizzes):
    for quiz in quizzes.values():
        page = preview_html(quiz)
        assert page.count('<section class="question"') == len(quiz.questions)
        assert page.count("(correct)") == sum(len(q.correct_choices) for q in quiz.questions)


# -- the command -----------------------------------------------------------------------------------


def test_quiz_export_writes_checked_zips(tmp_path, capsys):
    from mlsd import cli

    assert cli.main(["quiz", "export", "--format", "qti", "--out", str(tmp_path), "--session", "2", "5"]) == 0
    out = capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["quiz_02.zip", "quiz_05.zip"]
    assert "Import Course Content > QTI .zip file" in out and "multiple answers" in out
    assert cli.main(["quiz", "export", "--format", "gift", "--out", str(tmp_path / "gift")]) == 0
    assert len(list((tmp_path / "gift").glob("quiz_0?.gift.txt"))) == len(SESSIONS)


def test_quiz_export_refuses_quizzes_with_problems(tmp_path, capsys, monkeypatch):
    from mlsd import cli

    problem = mlsd.quiz.Problem("session_01.md", 'Q3 "X"', "has no general feedback")
    monkeypatch.setattr(mlsd.quiz, "course_problems", lambda quizzes: [problem])
    assert cli.main(["quiz", "export", "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert 'session_01.md Q3 "X": has no general feedback' in err and "nothing exported" in err
    assert not (tmp_path / "out").exists()


def test_quiz_preview_writes_the_answer_key(tmp_path, capsys):
    from mlsd import cli

    target = tmp_path / "q4.html"
    assert cli.main(["quiz", "preview", "--session", "4", "--out", str(target)]) == 0
    assert target.read_text().count('<section class="question"') == 12
    assert str(target) in capsys.readouterr().out
    assert cli.main(["quiz", "preview", "--session", "9", "--out", str(target)]) == 1
    assert "No quiz for session 9" in capsys.readouterr().err
