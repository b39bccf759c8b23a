"""Helpers shared by the quiz tests: read an exported QTI zip or GIFT file back, compare with text2qti."""

from __future__ import annotations

import io
import re
import zipfile
from xml.etree import ElementTree

import pytest

QTI = "http://www.imsglobal.org/xsd/ims_qtiasiv1p2"


def _tag(name: str) -> str:
    return f"{{{QTI}}}{name}"


def read_qti(data: bytes) -> tuple[str, list[tuple[str, int, tuple[float, ...]]]]:
    """A QTI zip read back: (assessment title, [(question type, n correct choices, numerical range)]).

    Checks the package on the way: a valid zip whose manifest lists exactly one QTI assessment and
    its Canvas settings file, every listed file present.
    """
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    manifest = ElementTree.fromstring(archive.read("imsmanifest.xml"))
    resources = [r for r in manifest.iter() if r.tag.endswith("}resource")]
    assert [r.get("type") for r in resources] == [
        "imsqti_xmlv1p2",
        "associatedcontent/imscc_xmlv1p1/learning-application-resource",
    ]
    files = [f.get("href") for r in resources for f in r if f.tag.endswith("}file")]
    assert set(files) <= set(archive.namelist())
    root = ElementTree.fromstring(archive.read(files[0]))
    items = []
    for item in root.iter(_tag("item")):
        fields = {
            f.findtext(_tag("fieldlabel")): f.findtext(_tag("fieldentry"))
            for f in item.iter(_tag("qtimetadatafield"))
        }
        scoring = [c for c in item.iter(_tag("respcondition")) if c.findtext(_tag("setvar")) == "100"]
        assert len(scoring) == 1, "one condition gives the points"
        condition = scoring[0].find(_tag("conditionvar"))
        negated = {id(v) for n in condition.iter(_tag("not")) for v in n.iter()}
        correct = [v for v in condition.iter(_tag("varequal")) if id(v) not in negated]
        limits = tuple(float(v.text) for name in ("vargte", "varlte") for v in condition.iter(_tag(name)))
        items.append((fields["question_type"], len(correct), limits))
    return root.find(_tag("assessment")).get("title"), items


def read_gift(text: str) -> list[tuple[str, str, int]]:
    """A GIFT file read back: [(question title, kind, n correct answers)]; weights of right answers sum to 100."""
    questions = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = [line for line in block.splitlines() if not line.startswith("//")]
        if not lines:
            continue
        assert lines[-1] == "}", block
        title = re.match(r"::(.*?)::", lines[0]).group(1)
        answers = [line.strip() for line in lines[1:-1] if not line.strip().startswith("####")]
        if re.fullmatch(r"(TRUE|FALSE)(#.*)?", answers[0]):
            questions.append((title, "true_false", 1))
        elif answers[0].startswith("#"):
            questions.append((title, "numerical", 1))
        elif all(a.startswith("~%") for a in answers):
            weights = [float(re.match(r"~%(-?[\d.]+)%", a).group(1)) for a in answers]
            assert sum(w for w in weights if w > 0) == pytest.approx(100, abs=1e-3)
            questions.append((title, "multiple_answers", sum(w > 0 for w in weights)))
        else:
            questions.append((title, "multiple_choice", sum(a.startswith("=") for a in answers)))
    return questions


def assert_text2qti_agrees(quiz) -> None:
    """Question by question, text2qti (what Canvas gets) reads the quiz as mlsd.quiz does."""
    from mlsd.quiz import text2qti_quiz

    theirs = text2qti_quiz(quiz, pointers_in_feedback=False).questions_and_delims
    assert len(theirs) == len(quiz.questions), quiz.source
    for mine, their in zip(quiz.questions, theirs, strict=True):
        where = (quiz.source, mine.name)
        assert their.type == f"{mine.kind}_question", where
        assert (their.title_raw, their.points_possible_raw) == (mine.title, mine.points), where
        assert (their.question_raw, their.feedback_raw) == (mine.stem, mine.feedback), where
        assert [(c.choice_raw, c.correct, c.feedback_raw) for c in their.choices] == [
            (c.text, c.correct, c.feedback) for c in mine.choices
        ], where
        if mine.numerical is not None:
            assert (their.numerical_min, their.numerical_max) == pytest.approx(
                (mine.numerical.low, mine.numerical.high)
            ), where


@pytest.fixture
def quiz_readers():
    """``read_qti``, ``read_gift`` and ``assert_text2qti_agrees``, for the quiz tests."""
    return read_qti, read_gift, assert_text2qti_agrees
