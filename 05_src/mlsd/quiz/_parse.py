"""Read a quiz written in text2qti's Markdown, and write one back.

The file format is text2qti's own (https://github.com/gpoore/text2qti), restricted to what the
course uses: a quiz title, description and options; per question an optional ``Title:`` and
``Points:``, the stem (``1.``), general feedback (``...``), then either choices (``*a)`` / ``a)``,
each optionally followed by its own ``...`` feedback), multiple answers (``[*]`` / ``[ ]``) or a
numerical answer (``=``). The course adds two kinds of line that text2qti reads as comments
(``%``), written above the question they describe:

``% pointer: PATH#HEADING``
    the notebook section or slide the question tests (one or more);
``% recompute: NAME``
    for a numerical answer, the computation in the tests that recomputes it from the course data.

So a quiz file goes to text2qti unchanged, and :func:`to_text` writes back what :func:`parse` read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from mlsd.quiz._model import Choice, Numerical, Pointer, Question, Quiz, QuizFormatError

# text2qti's start-of-line markers that the course uses; the order matters, as in text2qti.
_MARKERS = {
    "question": r"\d+\.",
    "correct_choice": r"\*[a-zA-Z]\)",
    "choice": r"[a-zA-Z]\)",
    "correct_answer": r"\[\*\]",
    "answer": r"\[ ?\]",
    "feedback": r"\.\.\.",
    "numerical": r"=",
    "title": r"[Tt]itle:",
    "points": r"[Pp]oints:",
    "quiz_title": r"[Qq]uiz [Tt]itle:",
    "quiz_description": r"[Qq]uiz description:",
    "option": r"(?:[Ss]huffle answers|[Ss]how correct answers|[Oo]ne question at a time|[Cc]an't go back):",
}
# text2qti syntax the course quizzes do not use (the checks and exports do not model it).
_UNSUPPORTED = {
    "a short-answer question (`* `)": r"\*[ \t]+\S",
    "correct/incorrect feedback (`+ ` / `- `)": r"[+-][ \t]+\S",
    "a solution (`! `)": r"![ \t]+\S",
    "an essay question (`___`)": r"___+\s*$",
    "a file-upload question (`^^^`)": r"\^\^\^+\s*$",
    "a text region (`Text:`)": r"[Tt]ext(?: [Tt]itle)?:",
    "a question group (`GROUP`)": r"(?:END_)?GROUP\s*$",
    "an executable code block": r"```",
    "a quiz option": r"(?:[Ff]eedback is solution|[Ss]olutions (?:sample|randomize) groups):",
}
_START = re.compile("|".join(rf"(?P<{name}>{pattern}[ \t]+(?=\S))" for name, pattern in _MARKERS.items()))
_SINGLE_LINE = {"points", "numerical", "option"}
_ONE_PARAGRAPH = {"title", "quiz_title"}  # wrapped lines allowed, blank lines not
_META = re.compile(r"%\s*(pointer|recompute)\s*:\s*(.*?)\s*$")
_TRUE_FALSE = {"true", "True", "false", "False"}


@dataclass
class _Draft:
    """A question while its lines are read."""

    number: int
    stem: str
    line: int
    title: str | None
    points: str | None
    pointers: list[Pointer]
    recompute: str | None
    feedback: str | None = None
    numerical: Numerical | None = None
    style: str | None = None  # "choice" or "answer"
    choices: list[Choice] = field(default_factory=list)

    def finish(self, where: str) -> Question:
        if self.numerical is not None:
            kind = "numerical"
        elif self.style == "answer":
            kind = "multiple_answers"
        elif self.style == "choice":
            texts = {choice.text for choice in self.choices}
            kind = "true_false" if len(self.choices) == 2 and texts <= _TRUE_FALSE else "multiple_choice"
        else:
            raise QuizFormatError(f"{where}: question {self.number} has no choices and no `=` answer")
        return Question(
            number=self.number,
            kind=kind,
            stem=self.stem,
            choices=tuple(self.choices),
            feedback=self.feedback,
            numerical=self.numerical,
            title=self.title,
            points=self.points,
            pointers=tuple(self.pointers),
            recompute=self.recompute,
            line=self.line,
        )


def _block(lines: list[str], i: int, kind: str, match: re.Match, where: str) -> tuple[str, int]:
    """The text that starts on line ``i`` after its marker, with its wrapped lines; and the next line."""
    first = lines[i][match.end() :].strip()
    if kind in _SINGLE_LINE:
        return first, i + 1
    marker = lines[i][: match.end()].expandtabs(4)
    indent = None if marker.rstrip().endswith(":") else " " * len(marker)
    text = [first]
    j = i + 1
    while j < len(lines):
        line = lines[j].expandtabs(4)
        if not line.strip():
            if kind in _ONE_PARAGRAPH:
                break
            text.append("")
        else:
            if indent is None:
                if not line.startswith(" "):
                    break
                indent = " " * (len(line) - len(line.lstrip(" ")))
                if len(indent) < 2:
                    raise QuizFormatError(f"{where} line {j + 1}: indent wrapped lines by at least 2 spaces")
            elif not line.startswith(indent):
                break
            text.append(line[len(indent) :].rstrip())
        j += 1
    while text and not text[-1]:
        text.pop()
        j -= 1
    return "\n".join(text), j


def parse(text: str, *, source: str | None = None) -> Quiz:
    """Parse a quiz file's text.

    Parameters
    ----------
    text : str
        The file's content, in text2qti's Markdown with the course's ``% pointer:`` and
        ``% recompute:`` lines.
    source : str, optional
        The file name or path, for messages; ``session_NN.md`` sets :attr:`Quiz.session`.

    Returns
    -------
    Quiz

    Raises
    ------
    QuizFormatError
        When the text breaks the syntax (the message names the line); the course's own rules
        (10-12 questions, one correct choice, pointers that resolve, ...) are checked by
        :func:`mlsd.quiz.check`, which returns them as data.

    Example
    -------
    >>> quiz = parse('''
    ... Quiz title: Quiz 0: a demo
    ...
    ... % pointer: 01_materials/slides/session_01.md#Why accuracy misleads
    ... Title: Accuracy at a 7% base rate
    ... 1.  What accuracy does "approve everyone" score when 7% of loans default?
    ... ... It never predicts a default, so it is right on every repaid loan: 1 - 0.07.
    ... = 0.93 +- 0.005
    ... ''', source="session_00.md")
    >>> question = quiz.questions[0]
    >>> question.kind, question.numerical.value, str(question.pointers[0])
    ('numerical', 0.93, '01_materials/slides/session_01.md#Why accuracy misleads')
    """
    where = source or "<quiz>"
    lines = text.replace("\r\n", "\n").removeprefix("\ufeff").split("\n")
    title: str | None = None
    description: str | None = None
    options: list[tuple[str, str]] = []
    questions: list[Question] = []
    draft: _Draft | None = None
    pending: dict = {"title": None, "points": None, "pointers": [], "recompute": None, "line": None}

    def close() -> None:
        nonlocal draft
        if draft is not None:
            questions.append(draft.finish(f"{where} line {draft.line}"))
            draft = None

    i = 0
    while i < len(lines):
        line = lines[i]
        at = f"{where} line {i + 1}"
        if not line.strip():
            i += 1
            continue
        if line.startswith("COMMENT") and line.strip() == "COMMENT":
            end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == "END_COMMENT"), None)
            if end is None:
                raise QuizFormatError(f"{at}: COMMENT without END_COMMENT")
            i = end + 1
            continue
        if line.startswith("%"):
            meta = _META.match(line)
            if meta:
                key, value = meta.groups()
                pending["line"] = pending["line"] or i + 1
                if key == "pointer":
                    try:
                        pending["pointers"].append(Pointer.parse(value))
                    except QuizFormatError as error:
                        raise QuizFormatError(f"{at}: {error}") from None
                elif pending["recompute"] is not None:
                    raise QuizFormatError(f"{at}: a question has one `% recompute:` line")
                else:
                    pending["recompute"] = value
            i += 1
            continue
        match = _START.match(line)
        if match is None:
            for what, pattern in _UNSUPPORTED.items():
                if re.match(pattern, line):
                    raise QuizFormatError(f"{at}: the course quizzes do not use {what}")
            raise QuizFormatError(
                f"{at}: unexpected text (a wrapped line must be indented under its marker): {line.strip()!r}"
            )
        kind = match.lastgroup
        value, i_next = _block(lines, i, kind, match, where)
        if kind in ("quiz_title", "quiz_description", "option"):
            if questions or draft is not None:
                raise QuizFormatError(
                    f"{at}: the quiz title, description and options come before the questions"
                )
            if kind == "quiz_title":
                title = value
            elif kind == "quiz_description":
                description = value
            else:
                if value not in ("true", "True", "false", "False"):
                    raise QuizFormatError(f"{at}: a quiz option is `true` or `false`")
                options.append((match.group(kind).rstrip().removesuffix(":"), value))
        elif kind in ("title", "points"):
            close()
            if pending[kind] is not None:
                raise QuizFormatError(f"{at}: `{kind.title()}:` given twice for one question")
            pending[kind] = value
            pending["line"] = pending["line"] or i + 1
        elif kind == "question":
            close()
            draft = _Draft(
                number=len(questions) + 1,
                stem=value,
                line=pending["line"] or i + 1,
                title=pending["title"],
                points=pending["points"],
                pointers=pending["pointers"],
                recompute=pending["recompute"],
            )
            pending = {"title": None, "points": None, "pointers": [], "recompute": None, "line": None}
        else:
            if draft is None:
                raise QuizFormatError(f"{at}: `{match.group(kind).strip()}` before any question")
            if kind == "feedback":
                if draft.choices:
                    last = draft.choices[-1]
                    if last.feedback is not None:
                        raise QuizFormatError(f"{at}: a choice has one `...` feedback")
                    draft.choices[-1] = replace(last, feedback=value)
                elif draft.feedback is None and draft.numerical is None:
                    draft.feedback = value
                else:
                    raise QuizFormatError(f"{at}: the question's `...` feedback goes right under its stem")
            elif kind == "numerical":
                if draft.style or draft.numerical:
                    raise QuizFormatError(f"{at}: a question has choices or one `=` answer, not both")
                try:
                    draft.numerical = Numerical.parse(value)
                except QuizFormatError as error:
                    raise QuizFormatError(f"{at}: {error}") from None
            else:
                style = "answer" if kind in ("correct_answer", "answer") else "choice"
                if draft.numerical is not None or draft.style not in (None, style):
                    raise QuizFormatError(
                        f"{at}: a question mixes `a)` choices, `[ ]` answers and `=` answers; use one kind"
                    )
                draft.style = style
                draft.choices.append(Choice(text=value, correct=kind.startswith("correct")))
        i = i_next
    close()
    if pending["title"] or pending["points"] or pending["pointers"] or pending["recompute"]:
        raise QuizFormatError(
            f"{where} line {pending['line']}: `Title:`, `Points:` or `%` lines with no question after them"
        )
    if title is None:
        raise QuizFormatError(f"{where}: the file has no `Quiz title:` line")
    if not questions:
        raise QuizFormatError(f"{where}: the file has no questions")
    session = re.search(r"session_0*(\d+)", Path(source).name) if source else None
    return Quiz(
        title=title,
        questions=tuple(questions),
        description=description,
        options=tuple(options),
        session=int(session.group(1)) if session else None,
        source=source,
    )


def _wrap(marker: str, text: str) -> list[str]:
    """``marker text``, wrapped lines indented under the text as text2qti reads them.

    Markers are padded to four columns (``1.  ``, ``a)  ``, ``*a) ``, ``... ``), so every wrapped
    line of a question is indented by four spaces; ``Title:``-style markers take one space.
    """
    head, *rest = text.split("\n")
    prefix = f"{marker} " if marker.endswith(":") else f"{marker} ".ljust(4)
    indent = " " * (4 if marker.endswith(":") else len(prefix))
    return [f"{prefix}{head}"] + [f"{indent}{line}" if line else "" for line in rest]


def to_text(quiz: Quiz, *, pointers_in_feedback: bool = False) -> str:
    """Write a quiz in text2qti's Markdown, with the course's ``%`` lines.

    ``parse(to_text(quiz)) == quiz``: nothing is lost. With ``pointers_in_feedback=True`` each
    question's general feedback ends with where to review (its pointers, in words), which is what
    learners see after submitting; the ``%`` lines stay, and text2qti ignores them.

    Example
    -------
    >>> text = "Quiz title: T\\n% pointer: labs/01_intro.ipynb#Intro\\n1. Two and two make four.\\n"
    >>> quiz = parse(text + "*a) True\\nb) False\\n")
    >>> print(to_text(quiz, pointers_in_feedback=True))
    Quiz title: T
    <BLANKLINE>
    % pointer: labs/01_intro.ipynb#Intro
    1.  Two and two make four.
    ... Review: Session 1 notebook, section “Intro”.
    *a) True
    b)  False
    <BLANKLINE>
    >>> parse(to_text(quiz)) == quiz
    True
    """
    out = _wrap("Quiz title:", quiz.title)
    if quiz.description is not None:
        out += _wrap("Quiz description:", quiz.description)
    out += [f"{name}: {value}" for name, value in quiz.options]
    for q in quiz.questions:
        out.append("")
        out += [f"% pointer: {pointer}" for pointer in q.pointers]
        if q.recompute is not None:
            out.append(f"% recompute: {q.recompute}")
        if q.title is not None:
            out += _wrap("Title:", q.title)
        if q.points is not None:
            out.append(f"Points: {q.points}")
        out += _wrap(f"{q.number}.", q.stem)
        feedback = q.feedback
        if pointers_in_feedback and q.pointers:
            review = "Review: " + "; ".join(pointer.label for pointer in q.pointers) + "."
            feedback = f"{feedback}\n\n{review}" if feedback else review
        if feedback is not None:
            out += _wrap("...", feedback)
        if q.numerical is not None:
            out.append(f"= {q.numerical.raw}")
        for letter, choice in zip("abcdefghijklmnopqrstuvwxyz", q.choices, strict=False):
            if q.kind == "multiple_answers":
                marker = "[*]" if choice.correct else "[ ]"
            else:
                marker = f"*{letter})" if choice.correct else f"{letter})"
            out += _wrap(marker, choice.text)
            if choice.feedback is not None:
                out += _wrap("...", choice.feedback)
    return "\n".join(out) + "\n"
