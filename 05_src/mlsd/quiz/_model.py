"""The data a quiz file holds: a quiz, its questions, their choices, answers and pointers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from mlsd.errors import MLSDError

KINDS = ("true_false", "multiple_choice", "multiple_answers", "numerical")
KIND_LABELS = {
    "true_false": "true/false",
    "multiple_choice": "multiple choice",
    "multiple_answers": "multiple answers",
    "numerical": "numerical",
}
_SESSION_FILE = re.compile(r"(?:session|lab|labs)?_?0*(\d+)")


class QuizFormatError(MLSDError):
    """A quiz file breaks the text2qti syntax; the message names the file and line."""


@dataclass(frozen=True)
class Choice:
    """One answer option of a true/false, multiple-choice or multiple-answers question.

    ``text`` and ``feedback`` are Markdown, as written in the file (without its indentation).
    """

    text: str
    correct: bool
    feedback: str | None = None


@dataclass(frozen=True)
class Numerical:
    """The accepted range of a numerical answer, as text2qti reads ``= ...``.

    ``value`` is the exact answer (``None`` when the file gives only a range ``[low, high]``);
    ``raw`` is the text after ``=``, kept so that the file is written back as it was.

    Example
    -------
    >>> answer = Numerical.parse("0.92 +- 0.005")
    >>> answer.low, answer.value, answer.high
    (0.915, 0.92, 0.925)
    >>> answer.accepts(0.9213), answer.accepts(0.93)
    (True, False)
    >>> Numerical.parse("300").tolerance
    0.0
    """

    low: float
    high: float
    value: float | None
    raw: str

    @property
    def tolerance(self) -> float:
        """Half the width of the accepted range."""
        return (self.high - self.low) / 2

    def accepts(self, number: float) -> bool:
        """Whether Canvas would mark ``number`` correct (the ends of the range included)."""
        return self.low <= number <= self.high

    @classmethod
    def parse(cls, raw: str) -> Numerical:
        """Read ``N``, ``N +- M``, ``N +- M%`` or ``[LOW, HIGH]`` (text2qti's numerical forms)."""
        text = raw.strip()
        try:
            if text.startswith("["):
                if not text.endswith("]") or "," not in text:
                    raise ValueError(text)
                low, high = (float(part) for part in text[1:-1].split(",", 1))
                value = None
            elif "+-" in text:
                number, margin = (part.strip() for part in text.split("+-", 1))
                value = float(number)
                if margin.endswith("%"):
                    margin_value = abs(value) * float(margin[:-1]) / 100
                else:
                    margin_value = float(margin)
                if margin_value < 0:
                    raise ValueError(text)
                low, high = value - margin_value, value + margin_value
            else:
                if not re.fullmatch(r"0|[+-]?[1-9][0-9]*(?:_[0-9]+)*", text):
                    raise ValueError(text)  # text2qti: a bare answer must be an integer
                value = float(int(text))
                low = high = value
        except ValueError:
            raise QuizFormatError(
                f"a numerical answer must read `= N`, `= N +- M`, `= N +- M%` or `= [LOW, HIGH]`; got `= {raw}`"
            ) from None
        if low > high:
            raise QuizFormatError(f"the numerical range `= {raw}` has its low end above its high end")
        return cls(low=low, high=high, value=value, raw=text)


@dataclass(frozen=True)
class Pointer:
    """Where the course teaches what a question tests: a notebook or slide deck, and a heading in it.

    Written ``% pointer: PATH#HEADING`` above the question, with ``PATH`` relative to the repository
    root and ``HEADING`` the text of a ``##`` or ``###`` heading, without the hashes.

    Example
    -------
    >>> p = Pointer.parse("01_materials/labs/03_training_data.ipynb#3. Class imbalance")
    >>> p.heading
    '3. Class imbalance'
    >>> p.label
    'Session 3 notebook, section “3. Class imbalance”'
    """

    path: str
    heading: str

    @classmethod
    def parse(cls, raw: str) -> Pointer:
        path, sep, heading = raw.strip().partition("#")
        if not sep or not path.strip() or not heading.strip():
            raise QuizFormatError(
                f"a pointer reads `% pointer: PATH#HEADING`; got `% pointer: {raw.strip()}`"
            )
        return cls(path=path.strip(), heading=heading.strip())

    def __str__(self) -> str:
        return f"{self.path}#{self.heading}"

    @property
    def label(self) -> str:
        """The pointer in words, for learners: which session's notebook or slides, which section."""
        name = self.path.rsplit("/", 1)[-1]
        match = _SESSION_FILE.match(name)
        if name.endswith(".ipynb"):
            where = f"Session {int(match.group(1))} notebook" if match else f"Notebook {name}"
        elif "/slides/" in f"/{self.path}" and match:
            where = f"Session {int(match.group(1))} slides"
        else:
            where = name
        return f"{where}, section “{self.heading}”"


@dataclass(frozen=True)
class Question:
    """One quiz question.

    Attributes
    ----------
    number : int
        Its position in the quiz, from 1 (text2qti ignores the number written in the file).
    kind : str
        One of :data:`KINDS`.
    stem : str
        The question, in Markdown.
    choices : tuple of Choice
        Empty for a numerical question.
    feedback : str or None
        The general feedback, shown to every learner after submission (``...`` under the stem).
    numerical : Numerical or None
        The accepted answer of a numerical question.
    title : str or None
        A short name (``Title:``): the question's name in Canvas' question list and item analysis.
    points : str or None
        ``Points:`` as written; Canvas counts 1 when it is absent.
    pointers : tuple of Pointer
        ``% pointer:`` lines: the notebook sections or slides the question tests.
    recompute : str or None
        ``% recompute:`` line of a numerical question: the name of the computation in the tests
        that recomputes the answer from the course data.
    line : int
        The line of the file where the question starts (not compared).
    """

    number: int
    kind: str
    stem: str
    choices: tuple[Choice, ...] = ()
    feedback: str | None = None
    numerical: Numerical | None = None
    title: str | None = None
    points: str | None = None
    pointers: tuple[Pointer, ...] = ()
    recompute: str | None = None
    line: int = field(default=0, compare=False)

    @property
    def correct_choices(self) -> tuple[Choice, ...]:
        return tuple(choice for choice in self.choices if choice.correct)

    @property
    def name(self) -> str:
        """``Q3 "Title"`` (or ``Q3``): how problems and previews refer to the question."""
        return f'Q{self.number} "{self.title}"' if self.title else f"Q{self.number}"


@dataclass(frozen=True)
class Quiz:
    """A whole quiz file.

    ``options`` are text2qti's quiz settings as written (``Shuffle answers``, ``Show correct
    answers``, ...), in file order. ``session`` comes from the file name (``session_03.md`` -> 3).
    """

    title: str
    questions: tuple[Question, ...]
    description: str | None = None
    options: tuple[tuple[str, str], ...] = ()
    session: int | None = None
    source: str | None = field(default=None, compare=False)

    def kind_counts(self) -> dict[str, int]:
        """Number of questions of each kind, every kind listed.

        Example
        -------
        >>> from mlsd.quiz import parse
        >>> parse("Quiz title: T\\n1. Two and two make four.\\n*a) True\\nb) False\\n").kind_counts()
        {'true_false': 1, 'multiple_choice': 0, 'multiple_answers': 0, 'numerical': 0}
        """
        counts = dict.fromkeys(KINDS, 0)
        for question in self.questions:
            counts[question.kind] += 1
        return counts


@dataclass(frozen=True)
class Problem:
    """A rule a quiz breaks, for a facilitator to fix: where, which question, what and how."""

    source: str
    question: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.source} {self.question}" if self.question else self.source
        return f"{where}: {self.message}"
