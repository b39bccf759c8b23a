"""mlsd.quiz on quizzes written here: parse, check, write back, export to QTI and GIFT, preview.

The course's own quiz files are tested in ``test_quizzes.py`` (they stay in the instructors'
repository), and their numerical answers in ``tests/integration/test_quizzes_numbers.py``.
"""

from __future__ import annotations

import doctest
import io
import json
import re
import subprocess
import sys
import zipfile
from dataclasses import replace

import pytest

import mlsd.quiz
from mlsd.errors import MLSDError
from mlsd.quiz import (
    Choice,
    Numerical,
    Pointer,
    QuizFormatError,
    _check,
    _export,
    _files,
    _model,
    _parse,
    check,
    check_course,
    export,
    heading_index,
    load_quizzes,
    markdown_headings,
    parse,
    preview_html,
    to_gift,
    to_qti,
    to_text,
)

pytestmark = pytest.mark.quiz

HEADINGS = {
    "01_materials/labs/09_test.ipynb": ["Intro", "Method"],
    "01_materials/slides/session_09.md": ["Slide"],
}

# Every construct the course uses: wrapped stems with a table and code, feedback per choice, a
# multi-line choice, multiple answers, a numerical range, points, free comments.
SAMPLE = """\
% A free comment: text2qti and mlsd ignore it.
Quiz title: Quiz 9: a sample
Quiz description: A sample quiz
    in two lines.
Shuffle answers: true
Show correct answers: true

% pointer: 01_materials/labs/09_test.ipynb#Intro
% pointer: 01_materials/slides/session_09.md#Slide
Title: A table and a code block
Points: 2
1.  Read this:

    | a | b |
    |---|---|
    | 1 | 2 |

    ```
    Seq Scan on t
    ```

    Which is right?
... General feedback,
    on two lines.
*a) The first: `a` is 1.
... Yes.
b)  The second, which wraps
    onto a second line.
... No: `b` is 2.
c)  Neither

% pointer: 01_materials/labs/09_test.ipynb#Method
% recompute: session_09.share
Title: A share
2.  What share?
... Because.
= 0.42 +- 0.01

% pointer: 01_materials/labs/09_test.ipynb#Method
% recompute: session_09.range
Title: A range
3.  Which count?
... Any of them.
= [3, 5]

% pointer: 01_materials/labs/09_test.ipynb#Intro
Title: Select all
4.  Select all that apply.
... Two are right.
[*] one
[ ] two
... Not two.
[*] three

% pointer: 01_materials/labs/09_test.ipynb#Intro
Title: True or false
5.  One is a number.
... It is.
*a) True
b)  False
... It is a number.
"""


def _sample(**changes):
    quiz = parse(SAMPLE, source="03_instructional_team/quizzes/session_09.md")
    return replace(quiz, **changes) if changes else quiz


def _quiz_text(n_questions: int = 10) -> str:
    """A quiz that keeps every rule, pointing at a heading of ``HEADINGS``."""
    parts = ["Quiz title: Quiz 9: a test\n"]
    for i in range(1, n_questions + 1):
        parts.append(
            f"% pointer: 01_materials/labs/09_test.ipynb#Intro\nTitle: Question {i}\n"
            f"{i}.  Is {i} a number?\n... Every integer is a number.\n*a) True\nb)  False\n"
        )
    return "\n".join(parts)


def _messages(problems):
    return [f"{p.question} {p.message}" if p.question else p.message for p in problems]


# -- parsing ---------------------------------------------------------------------------------------


def test_parse_reads_every_part_of_a_question():
    quiz = _sample()
    assert quiz.session == 9 and quiz.title == "Quiz 9: a sample"
    assert quiz.description == "A sample quiz\nin two lines."
    assert quiz.options == (("Shuffle answers", "true"), ("Show correct answers", "true"))
    first, share, count, select, truth = quiz.questions
    assert (first.kind, first.points, first.title) == ("multiple_choice", "2", "A table and a code block")
    assert first.stem.startswith("Read this:\n\n| a | b |") and first.stem.endswith("```\n\nWhich is right?")
    assert first.feedback == "General feedback,\non two lines."
    assert first.choices == (
        Choice("The first: `a` is 1.", True, "Yes."),
        Choice("The second, which wraps\nonto a second line.", False, "No: `b` is 2."),
        Choice("Neither", False),
    )
    assert [str(p) for p in first.pointers] == [
        "01_materials/labs/09_test.ipynb#Intro",
        "01_materials/slides/session_09.md#Slide",
    ]
    assert (share.kind, share.recompute, share.numerical.value, share.numerical.tolerance) == (
        "numerical",
        "session_09.share",
        0.42,
        pytest.approx(0.01),
    )
    assert (count.numerical.low, count.numerical.high, count.numerical.value) == (3, 5, None)
    assert select.kind == "multiple_answers" and [c.correct for c in select.choices] == [True, False, True]
    assert select.choices[1].feedback == "Not two."
    assert truth.kind == "true_false" and truth.choices[1].feedback == "It is a number."
    assert [q.number for q in quiz.questions] == [1, 2, 3, 4, 5]
    assert first.line == 8 and share.line == 32  # where the question's lines start, `%` lines included


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1.  No title\n*a) x\nb)  y\n", "no `Quiz title:`"),
        ("Quiz title: T\n1.  Q\n*a) x\n[ ] y\n", "mixes"),
        ("Quiz title: T\n1.  Q\n= 1.5\n", "= N +- M"),
        ("Quiz title: T\n1.  Q\n___\n", "essay"),
        ("Quiz title: T\n1.  Q\n*a) x\nb)  y\nnot indented\n", "line 5"),
        ("Quiz title: T\n1.  Q\n", "no choices"),
        ("Quiz title: T\n% pointer: no-heading\n1.  Q\n*a) x\nb)  y\n", "PATH#HEADING"),
        ("Quiz title: T\n1.  Q\n*a) x\nb)  y\n% pointer: a.md#B\n", "no question after"),
        ("Quiz title: T\n1.  Q\n*a) x\n... one\n... two\n", "one `...` feedback"),
        ("Quiz title: T\n1.  Q\n*a) x\nb)  y\nShuffle answers: true\n", "come before the questions"),
    ],
)
def test_syntax_errors_name_the_line_and_the_cause(text, message):
    with pytest.raises(QuizFormatError, match=re.escape(message)):
        parse(text, source="session_09.md")


def test_numerical_answers_follow_text2qti():
    assert Numerical.parse("10 +- 10%").accepts(11) and not Numerical.parse("10 +- 10%").accepts(11.5)
    assert Numerical.parse("[0.1, 0.2]").tolerance == pytest.approx(0.05)
    with pytest.raises(QuizFormatError):
        Numerical.parse("[0.3, 0.2]")


def test_to_text_writes_back_what_parse_read():
    quiz = _sample()
    assert parse(to_text(quiz), source=quiz.source) == quiz
    assert to_text(quiz).startswith(
        "Quiz title: Quiz 9: a sample\nQuiz description: A sample quiz\n    in two"
    )


def test_text2qti_reads_the_sample_as_mlsd_does(quiz_readers):
    _, _, assert_text2qti_agrees = quiz_readers
    assert_text2qti_agrees(_sample())


def test_pointers_in_feedback_tell_learners_where_to_review():
    quiz = _sample()
    exported = parse(to_text(quiz, pointers_in_feedback=True), source=quiz.source)
    first = exported.questions[0]
    assert first.feedback == (
        "General feedback,\non two lines.\n\nReview: Session 9 notebook, section “Intro”; "
        "Session 9 slides, section “Slide”."
    )
    for before, after in zip(quiz.questions, exported.questions, strict=True):
        assert replace(after, feedback=before.feedback) == before  # only the feedback changed


def test_pointer_labels_name_the_session_and_the_heading():
    assert Pointer.parse("01_materials/slides/session_06.md#Retrain? (ch. 9)").label == (
        "Session 6 slides, section “Retrain? (ch. 9)”"
    )
    assert Pointer.parse("docs/notes.md#A").label == "notes.md, section “A”"


# -- checks ----------------------------------------------------------------------------------------


def test_a_quiz_that_keeps_the_rules_has_no_problem():
    assert check(parse(_quiz_text(), source="session_09.md"), headings=HEADINGS) == []


def test_check_finds_each_broken_rule():
    quiz = parse(_quiz_text(), source="session_09.md")
    q = quiz.questions
    broken = replace(
        quiz,
        questions=(
            replace(q[0], choices=(Choice("True", True), Choice("False", True))),
            replace(q[1], pointers=(Pointer("01_materials/labs/09_test.ipynb", "Outro"),)),
            replace(q[2], pointers=(Pointer("01_materials/labs/99_none.ipynb", "Intro"),)),
            replace(q[3], feedback=None, title=None),
            replace(q[4], stem=q[5].stem.upper()),
            replace(q[5], kind="multiple_answers", choices=(Choice("a", False), Choice("b", False))),
            replace(q[6], kind="numerical", choices=(), numerical=Numerical.parse("0.5 +- 0.1")),
            replace(
                q[7], kind="numerical", choices=(), numerical=Numerical.parse("1"), recompute="session_03.x"
            ),
            replace(q[8], title=q[9].title, recompute="session_09.y"),
            replace(q[9], stem="It costs $5 and $6."),
        ),
    )
    found = "\n".join(_messages(check(broken, headings=HEADINGS)))
    expected = [
        r'Q1 "Question 1" is true/false with 2 correct choices',
        r'Q2 "Question 2" points to a heading "Outro"',
        r"Q3 .* points to 01_materials/labs/99_none.ipynb, which is not",
        r"Q4 has no `Title:`",
        r"Q4 has no general feedback",
        r"Q6 .* has the same stem as Q5",
        r"Q6 .* is multiple answers with no correct choice",
        r"Q7 .* is numerical without `% recompute",
        r"Q8 .* belongs to another session's quiz",
        r"Q9 .* has `% recompute:` but is not numerical",
        r"Q10 .* has the same title as Q9",
        r"Q10 .* has a `\$`",
    ]
    for pattern in expected:
        assert re.search(pattern, found), f"{pattern!r} not in:\n{found}"
    assert len(found.splitlines()) == len(expected)


def test_check_counts_the_questions():
    for n, ok in [(9, False), (10, True), (12, True), (13, False)]:
        problems = check(parse(_quiz_text(n), source="session_09.md"), headings=HEADINGS)
        assert (problems == []) == ok, (n, _messages(problems))


def test_check_course_finds_a_stem_in_two_quizzes_and_two_quizzes_for_a_session():
    first = parse(_quiz_text(), source="a/session_09.md")
    second = parse(_quiz_text(), source="b/session_09.md")
    messages = _messages(check_course([first, second], headings=HEADINGS))
    assert "is a second quiz for session 9" in messages
    assert sum("has the same stem as a question of a/session_09.md" in m for m in messages) == 10


def test_headings_come_from_markdown_cells_and_slides_outside_code(tmp_path):
    assert markdown_headings("## A ##\n### B\n#### C\n```sql\n## D\n```\n~~~\n## E\n~~~\n## F") == [
        "A",
        "B",
        "F",
    ]
    labs, slides = tmp_path / "01_materials" / "labs", tmp_path / "01_materials" / "slides"
    labs.mkdir(parents=True)
    slides.mkdir()
    cells = [
        {"cell_type": "markdown", "source": ["# Title\n", "## Section\n"]},
        {"cell_type": "code", "source": ["## not a heading"]},
    ]
    (labs / "07_x.ipynb").write_text(json.dumps({"cells": cells}))
    (slides / "session_07.md").write_text("---\nmarp: true\n---\n\n## Slide one\n")
    (slides / "README.md").write_text("## Not a deck\n")
    assert heading_index(tmp_path) == {
        "01_materials/labs/07_x.ipynb": frozenset({"Section"}),
        "01_materials/slides/session_07.md": frozenset({"Slide one"}),
    }


# -- exports -------------------------------------------------------------------------------------


def test_qti_export_round_trips_questions_and_correct_answers(quiz_readers):
    read_qti, _, _ = quiz_readers
    quiz = _sample()
    title, items = read_qti(to_qti(quiz))
    assert title == quiz.title
    assert items == [
        ("multiple_choice_question", 1, ()),
        ("numerical_question", 1, (0.41, 0.43)),  # the exact answer, then the range
        ("numerical_question", 0, (3.0, 5.0)),
        ("multiple_answers_question", 2, ()),
        ("true_false_question", 1, ()),
    ]


def test_qti_carries_the_feedback_and_leaves_the_instructors_notes_out():
    archive = zipfile.ZipFile(io.BytesIO(to_qti(_sample())))
    xml = "".join(archive.read(name).decode() for name in archive.namelist() if name.endswith(".xml"))
    assert xml.count("Review: Session 9 notebook") == 5 and "No: &lt;code&gt;b&lt;/code&gt; is 2." in xml
    assert "% pointer" not in xml and "session_09.share" not in xml and "free comment" not in xml


def test_what_text2qti_refuses_is_a_quiz_format_error():
    quiz = parse("Quiz title: T\n1.  Pick one.\n*a) same\nb)  same\n", source="session_09.md")
    assert "repeats a choice" in _messages(check(quiz))[-1]
    with pytest.raises(QuizFormatError, match="(?s)text2qti refuses session_09.md: .*Duplicate choice"):
        to_qti(quiz)


def test_gift_export_round_trips_questions_and_correct_answers(quiz_readers):
    _, read_gift, _ = quiz_readers
    text = to_gift(_sample())
    assert read_gift(text) == [
        ("A table and a code block", "multiple_choice", 1),
        ("A share", "numerical", 1),
        ("A range", "numerical", 1),
        ("Select all", "multiple_answers", 2),
        ("True or false", "true_false", 1),
    ]
    assert "\t#0.42:0.01\n" in text and "\t#3..5\n" in text and "~%50%" in text and "~%-100%" in text
    assert "\tTRUE#<p>It is a number.</p>#\n" in text  # the wrong answer's feedback comes first


def test_gift_escapes_its_special_characters():
    quiz = parse(
        "Quiz title: T\nTitle: A: b\n1.  Is {x} = #1 ~ y?\n... See: here.\n*a) True\nb)  False\n",
        source="session_09.md",
    )
    text = to_gift(quiz)
    assert "::A\\: b::" in text and "\\{x\\} \\= \\#1 \\~ y?" in text
    assert "\tTRUE##" in text and "####<p>See\\: here.</p>" in text


def test_export_writes_one_file_per_quiz(tmp_path):
    quizzes = [_sample(), _sample(session=10, title="Quiz 10: another")]
    written = export(quizzes, tmp_path / "out", "qti")
    assert [p.name for p in written] == ["quiz_09.zip", "quiz_10.zip"]
    assert all(zipfile.is_zipfile(p) for p in written)
    gift = export(quizzes[:1], tmp_path / "out", "gift")
    assert gift[0].name == "quiz_09.gift.txt" and gift[0].read_text().startswith("// Quiz 9: a sample")
    with pytest.raises(MLSDError, match="Unknown quiz format"):
        export(quizzes, tmp_path, "moodle-xml")


def test_preview_shows_answers_feedback_pointers_and_problems():
    quiz = _sample()
    page = preview_html(quiz, problems=check(quiz, headings=HEADINGS))
    assert page.count('<section class="question"') == 5
    assert page.count("(correct)") == 4  # the numerical answers are shown as ranges
    assert "Answer:</span> 0.42, accepted 0.41 to 0.43" in page and "accepted 3 to 5" in page
    assert "has 5 questions; a quiz has 10 to 12" in page  # problems are listed on top
    assert "session_09.share" in page and "Session 9 slides, section" in page
    assert "do not share with learners" in page and "<table>" in page and "<pre><code>" in page


def test_load_quizzes_reads_a_folder_and_names_a_missing_session(tmp_path):
    (tmp_path / "session_01.md").write_text(_quiz_text())
    (tmp_path / "notes.md").write_text("not a quiz")
    quizzes = load_quizzes(folder=tmp_path, root=tmp_path)
    assert list(quizzes) == [1] and quizzes[1].source == "session_01.md"
    with pytest.raises(MLSDError, match="No quiz for session 2 .* session_01.md"):
        load_quizzes([2], folder=tmp_path)


# -- house rules -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "module", [mlsd.quiz, _model, _parse, _check, _export, _files], ids=lambda m: m.__name__
)
def test_docstring_examples_run(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_importing_the_module_loads_no_heavy_library():
    code = "import sys, mlsd.quiz\nprint(sorted(m for m in ('text2qti', 'markdown', 'pandas') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.replace("'", '"')) == []
