"""The session quizzes: every file parses and keeps the course's rules; the checks, exports and preview work.

The numerical answers are recomputed from the course data in ``tests/integration/test_quiz_numbers.py``.
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
from xml.etree import ElementTree

import pytest

import mlsd.quiz
from mlsd.config import repo_root
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
    course_problems,
    export,
    heading_index,
    load_quizzes,
    markdown_headings,
    parse,
    preview_html,
    text2qti_quiz,
    to_gift,
    to_qti,
    to_text,
)

pytestmark = pytest.mark.quiz

SESSIONS = (1, 2, 3, 4, 5, 6)
QTI_NS = {"qti": "http://www.imsglobal.org/xsd/ims_qtiasiv1p2"}


@pytest.fixture(scope="module")
def quizzes():
    return load_quizzes()


@pytest.fixture(scope="module")
def headings():
    return heading_index(repo_root())


def _quiz_text(n_questions: int = 10) -> str:
    """A quiz that keeps every rule, pointing at a heading the test's own index holds."""
    parts = ["Quiz title: Quiz 9: a test\n"]
    for i in range(1, n_questions + 1):
        parts.append(
            f"% pointer: 01_materials/labs/09_test.ipynb#Intro\nTitle: Question {i}\n"
            f"{i}.  Is {i} a number?\n... Every integer is a number.\n*a) True\nb)  False\n"
        )
    return "\n".join(parts)


TEST_HEADINGS = {"01_materials/labs/09_test.ipynb": ["Intro", "Method"]}


def _messages(problems):
    return [f"{p.question} {p.message}" if p.question else p.message for p in problems]


# -- the course's quiz files -------------------------------------------------------------------


def test_there_is_one_quiz_per_session(quizzes):
    assert sorted(quizzes) == list(SESSIONS)
    for session, quiz in quizzes.items():
        assert quiz.session == session
        assert quiz.title.startswith(f"Quiz {session}:")  # the Canvas gradebook column starts "Quiz N"
        assert quiz.source == f"03_instructional_team/quizzes/session_{session:02d}.md"


def test_every_quiz_keeps_the_rules_and_every_pointer_resolves(quizzes):
    problems = course_problems(quizzes.values())
    assert problems == [], "\n".join(map(str, problems))


def test_the_rules_hold_question_by_question(quizzes, headings):
    """The same rules, asserted directly on the data, so that a broken checker cannot hide a broken quiz."""
    stems = set()
    for quiz in quizzes.values():
        assert 10 <= len(quiz.questions) <= 12, quiz.source
        for q in quiz.questions:
            n_correct = sum(choice.correct for choice in q.choices)
            if q.kind in ("true_false", "multiple_choice"):
                assert n_correct == 1, (quiz.source, q.name)
            elif q.kind == "multiple_answers":
                assert n_correct >= 1, (quiz.source, q.name)
            else:
                assert q.numerical is not None and q.recompute, (quiz.source, q.name)
            stem = " ".join(q.stem.split()).casefold()
            assert stem not in stems, (quiz.source, q.name)
            stems.add(stem)
            assert q.feedback and q.pointers, (quiz.source, q.name)
            for pointer in q.pointers:
                assert pointer.heading in headings[pointer.path], (quiz.source, q.name, str(pointer))


def test_every_quiz_has_every_kind_of_question(quizzes):
    for quiz in quizzes.values():
        counts = quiz.kind_counts()
        assert all(counts[kind] >= 1 for kind in mlsd.quiz.KINDS), (quiz.source, counts)
        assert 1 <= counts["numerical"] <= 2, quiz.source  # few numbers: the data are still changing


def test_pointers_reach_every_session_notebook(quizzes):
    for session, quiz in quizzes.items():
        notebooks = {p.path for q in quiz.questions for p in q.pointers if p.path.endswith(".ipynb")}
        assert any(path.rsplit("/", 1)[-1].startswith(f"{session:02d}_") for path in notebooks), session


def test_text2qti_reads_the_files_as_mlsd_does(quizzes):
    """Question by question, text2qti (what Canvas gets) and mlsd.quiz agree: nothing is lost."""
    for quiz in quizzes.values():
        theirs = text2qti_quiz(quiz, pointers_in_feedback=False).questions_and_delims
        assert len(theirs) == len(quiz.questions), quiz.source
        for mine, their in zip(quiz.questions, theirs, strict=True):
            where = (quiz.source, mine.name)
            assert their.type == f"{mine.kind}_question", where
            assert their.title_raw == mine.title and their.question_raw == mine.stem, where
            assert their.feedback_raw == mine.feedback, where
            assert [(c.choice_raw, c.correct, c.feedback_raw) for c in their.choices] == [
                (c.text, c.correct, c.feedback) for c in mine.choices
            ], where
            if mine.numerical is not None:
                assert (their.numerical_min, their.numerical_max) == pytest.approx(
                    (mine.numerical.low, mine.numerical.high)
                ), where


def test_the_course_files_go_to_text2qti_unchanged(quizzes):
    """text2qti's own command would read the files as they are: the % lines are its comments."""
    from text2qti.config import Config
    from text2qti.quiz import Quiz as Text2qtiQuiz

    for quiz in quizzes.values():
        text = (repo_root() / quiz.source).read_text(encoding="utf-8")
        direct = Text2qtiQuiz(text, config=Config(), source_name=quiz.source)
        assert direct.id == text2qti_quiz(quiz, pointers_in_feedback=False).id, quiz.source


# -- parsing ---------------------------------------------------------------------------------------


def test_parse_reads_every_part_of_a_question():
    quiz = parse(
        "Quiz title: Quiz 9: parts\nQuiz description: About\n    two lines.\nShuffle answers: true\n\n"
        "% a free comment\n% pointer: labs/09_x.ipynb#One\n% pointer: slides/session_09.md#Two\n"
        "Title: Pick\nPoints: 2\n1.  First line\n    second line.\n\n    A paragraph.\n... General\n"
        "*a) Right\n... Because.\nb)  Wrong\n    still wrong\n\n"
        "% pointer: labs/09_x.ipynb#One\n% recompute: session_09.answer\n2.  How many?\n= [3, 5]\n\n"
        "3.  Which?\n[*] one\n[ ] two\n... Not two.\n[*] three\n",
        source="somewhere/session_09.md",
    )
    assert quiz.session == 9 and quiz.description == "About\ntwo lines."
    assert quiz.options == (("Shuffle answers", "true"),)
    first, second, third = quiz.questions
    assert first.kind == "multiple_choice" and first.points == "2" and first.title == "Pick"
    assert first.stem == "First line\nsecond line.\n\nA paragraph."
    assert first.choices == (Choice("Right", True, "Because."), Choice("Wrong\nstill wrong", False))
    assert [str(p) for p in first.pointers] == ["labs/09_x.ipynb#One", "slides/session_09.md#Two"]
    assert second.kind == "numerical" and second.recompute == "session_09.answer"
    assert (second.numerical.low, second.numerical.high, second.numerical.value) == (3, 5, None)
    assert third.kind == "multiple_answers" and [c.correct for c in third.choices] == [True, False, True]
    assert third.choices[1].feedback == "Not two." and third.pointers == ()
    assert [q.number for q in quiz.questions] == [1, 2, 3]


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


def test_to_text_writes_back_what_parse_read(quizzes):
    for quiz in quizzes.values():
        assert parse(to_text(quiz), source=quiz.source) == quiz, quiz.source


def test_pointers_in_feedback_tell_learners_where_to_review(quizzes):
    quiz = quizzes[3]
    exported = parse(to_text(quiz, pointers_in_feedback=True), source=quiz.source)
    for before, after in zip(quiz.questions, exported.questions, strict=True):
        assert after.feedback.startswith(before.feedback)
        review = after.feedback.rsplit("\n\n", 1)[1]
        assert review.startswith("Review: Session ") and before.pointers[0].heading in review
        assert replace(after, feedback=before.feedback) == before  # only the feedback changed


def test_pointer_labels_name_the_session_and_the_heading():
    assert Pointer.parse("01_materials/slides/session_06.md#Retrain? (ch. 9)").label == (
        'Session 6 slides, section "Retrain? (ch. 9)"'
    )
    assert Pointer.parse("docs/notes.md#A").label == 'notes.md, section "A"'


# -- checks ----------------------------------------------------------------------------------------


def test_a_quiz_that_keeps_the_rules_has_no_problem():
    assert check(parse(_quiz_text(), source="session_09.md"), headings=TEST_HEADINGS) == []


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
    found = "\n".join(_messages(check(broken, headings=TEST_HEADINGS)))
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
        problems = check(parse(_quiz_text(n), source="session_09.md"), headings=TEST_HEADINGS)
        assert (problems == []) == ok, (n, _messages(problems))


def test_check_course_finds_a_stem_in_two_quizzes_and_two_quizzes_for_a_session():
    first = parse(_quiz_text(), source="a/session_09.md")
    second = parse(_quiz_text(), source="b/session_09.md")
    messages = _messages(check_course([first, second], headings=TEST_HEADINGS))
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
    index = heading_index(tmp_path)
    assert index == {
        "01_materials/labs/07_x.ipynb": frozenset({"Section"}),
        "01_materials/slides/session_07.md": frozenset({"Slide one"}),
    }


# -- exports -------------------------------------------------------------------------------------


def _qti(tag: str) -> str:
    return f"{{{QTI_NS['qti']}}}{tag}"


def _read_qti(data: bytes):
    """The assessment of a QTI zip, read back: (title, [(question type, n correct, numerical range)]).

    Checks the package on the way: a valid zip whose manifest lists exactly one QTI assessment, its
    Canvas settings file, and files that exist in the zip.
    """
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    names = set(archive.namelist())
    manifest = ElementTree.fromstring(archive.read("imsmanifest.xml"))
    resources = [r for r in manifest.iter() if r.tag.endswith("}resource")]
    assessments = [r for r in resources if r.get("type") == "imsqti_xmlv1p2"]
    assert len(assessments) == 1 and len(resources) == 2
    hrefs = [f.get("href") for r in resources for f in r if f.tag.endswith("}file")]
    assert hrefs and set(hrefs) <= names
    root = ElementTree.fromstring(archive.read(hrefs[0]))
    items = []
    for item in root.iter(_qti("item")):
        fields = {
            f.find("qti:fieldlabel", QTI_NS).text: f.find("qti:fieldentry", QTI_NS).text
            for f in item.iter(_qti("qtimetadatafield"))
        }
        scoring = [
            c for c in item.iter(_qti("respcondition")) if c.findtext("qti:setvar", None, QTI_NS) == "100"
        ]
        assert len(scoring) == 1
        condition = scoring[0].find("qti:conditionvar", QTI_NS)
        negated = {id(v) for n in condition.iter(_qti("not")) for v in n.iter()}
        correct = [v for v in condition.iter(_qti("varequal")) if id(v) not in negated]
        limits = tuple(float(v.text) for tag in ("vargte", "varlte") for v in condition.iter(_qti(tag)))
        items.append((fields["question_type"], len(correct), limits))
    return root.find("qti:assessment", QTI_NS).get("title"), items


def test_qti_export_is_a_canvas_zip_that_round_trips_questions_and_answers(quizzes):
    for quiz in quizzes.values():
        title, items = _read_qti(to_qti(quiz))
        assert title == quiz.title
        assert len(items) == len(quiz.questions)
        for (kind, n_correct, limits), q in zip(items, quiz.questions, strict=True):
            assert kind == f"{q.kind}_question"
            if q.kind == "numerical":
                assert limits == pytest.approx((q.numerical.low, q.numerical.high), abs=1e-4)
            else:
                assert n_correct == len(q.correct_choices)


def test_qti_feedback_tells_learners_where_to_review(quizzes):
    archive = zipfile.ZipFile(io.BytesIO(to_qti(quizzes[2])))
    xml = "".join(archive.read(name).decode() for name in archive.namelist() if name.endswith(".xml"))
    assert xml.count("Review: Session 2 notebook") == len(quizzes[2].questions)
    assert "% pointer" not in xml and "recompute" not in xml  # instructors' notes stay out of Canvas


def _read_gift(text: str):
    """(title, kind, n correct) per GIFT question, read back from the text."""
    questions = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = [line for line in block.splitlines() if not line.startswith("//")]
        if not lines:
            continue
        title = re.match(r"::(.*?)::", lines[0]).group(1)
        answers = [line.strip() for line in lines[1:-1] if not line.strip().startswith("####")]
        assert lines[-1] == "}"
        if answers[0] in ("TRUE", "FALSE") or re.match(r"(TRUE|FALSE)#", answers[0]):
            questions.append((title, "true_false", 1))
        elif answers[0].startswith("#"):
            questions.append((title, "numerical", 1))
        elif all(a.startswith("~%") for a in answers):
            n = sum(not a.startswith("~%-") for a in answers)
            assert sum(
                float(re.match(r"~%(-?[\d.]+)%", a).group(1)) for a in answers if not a.startswith("~%-")
            ) == (pytest.approx(100, abs=1e-3))
            questions.append((title, "multiple_answers", n))
        else:
            questions.append((title, "multiple_choice", sum(a.startswith("=") for a in answers)))
    return questions


def test_gift_export_round_trips_questions_and_answers(quizzes):
    for quiz in quizzes.values():
        text = to_gift(quiz)
        expected = [(q.title, q.kind, len(q.correct_choices) or 1) for q in quiz.questions]
        assert _read_gift(text) == expected
        assert "\n\n\n" not in text and "% pointer" not in text
    numerical = next(q for q in quizzes[1].questions if q.kind == "numerical")
    assert f"#{numerical.numerical.value:g}:{numerical.numerical.tolerance:g}" in to_gift(quizzes[1])


def test_gift_escapes_its_special_characters():
    quiz = parse(
        "Quiz title: T\nTitle: A: b\n1.  Is {x} = #1 ~ y?\n... See: here.\n*a) True\nb)  False\n",
        source="session_09.md",
    )
    text = to_gift(quiz)
    assert "::A\\: b::" in text and "\\{x\\} \\= \\#1 \\~ y?" in text
    assert "\tTRUE##" in text and "####<p>See\\: here.</p>" in text


def test_export_writes_one_file_per_quiz(quizzes, tmp_path):
    written = export([quizzes[1], quizzes[6]], tmp_path / "out", "qti")
    assert [p.name for p in written] == ["quiz_01.zip", "quiz_06.zip"]
    assert all(zipfile.is_zipfile(p) for p in written)
    gift = export([quizzes[4]], tmp_path / "out", "gift")
    assert gift[0].name == "quiz_04.gift.txt" and gift[0].read_text().startswith("// Quiz 4:")
    with pytest.raises(MLSDError, match="Unknown quiz format"):
        export([quizzes[1]], tmp_path, "moodle-xml")


def test_preview_shows_answers_feedback_pointers_and_problems(quizzes):
    quiz = quizzes[5]
    page = preview_html(quiz, problems=check(replace(quiz, questions=quiz.questions[:3])))
    assert page.count('<section class="question"') == len(quiz.questions)
    assert page.count("(correct)") == sum(len(q.correct_choices) for q in quiz.questions)
    assert "has 3 questions; a quiz has 10 to 12" in page  # problems are listed on top
    assert "session_05.bayes_threshold" in page and "Answer:</span> 0.167" in page
    assert "do not share with learners" in page and "<table>" in page  # Markdown tables render


def test_load_quizzes_names_a_missing_session(tmp_path):
    (tmp_path / "session_01.md").write_text(_quiz_text())
    assert list(load_quizzes(folder=tmp_path)) == [1]
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
