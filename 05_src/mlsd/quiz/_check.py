"""The course's rules for a quiz, returned as data; and the headings that pointers may name."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from mlsd.quiz._model import Problem, Quiz

MIN_QUESTIONS, MAX_QUESTIONS = 10, 12
POINTER_FOLDERS = ("01_materials/labs", "01_materials/slides")
_HEADING = re.compile(r"(#{2,3})[ \t]+(.+?)[ \t]*#*[ \t]*$")
_RECOMPUTE = re.compile(r"session_(\d\d)\.[a-z0-9_]+")


def markdown_headings(text: str) -> list[str]:
    """The ``##`` and ``###`` headings of Markdown text, outside fenced code.

    Example
    -------
    >>> markdown_headings("# Title\\n## 1. Sampling\\n```\\n## not a heading\\n```\\n### Reservoir sampling\\n")
    ['1. Sampling', 'Reservoir sampling']
    """
    headings, fence = [], None
    for line in text.splitlines():
        stripped = line.lstrip()
        if stripped.startswith(("```", "~~~")):
            marker = stripped[:3]
            fence = None if fence == marker else (fence or marker)
            continue
        if fence is None:
            match = _HEADING.match(line)
            if match:
                headings.append(match.group(2))
    return headings


def document_headings(path: str | Path) -> list[str]:
    """The ``##`` / ``###`` headings of a notebook's Markdown cells or of a Markdown file (slides)."""
    path = Path(path)
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        return [
            heading
            for cell in cells
            if cell["cell_type"] == "markdown"
            for heading in markdown_headings("".join(cell["source"]))
        ]
    return markdown_headings(path.read_text(encoding="utf-8"))


def heading_index(root: str | Path) -> dict[str, frozenset[str]]:
    """Every session notebook and slide deck under ``root``, with its headings.

    Keys are paths relative to ``root`` with forward slashes, as pointers write them
    (``01_materials/labs/03_training_data.ipynb``).
    """
    root = Path(root)
    index = {}
    for folder in POINTER_FOLDERS:
        for path in sorted((root / folder).glob("*")):
            if path.suffix in (".ipynb", ".md") and path.name.lower() != "readme.md":
                index[path.relative_to(root).as_posix()] = frozenset(document_headings(path))
    return index


def _normalise(text: str) -> str:
    return " ".join(text.split()).casefold()


def check(quiz: Quiz, *, headings: Mapping[str, Iterable[str]] | None = None) -> list[Problem]:
    """The course's rules that ``quiz`` breaks (an empty list when it keeps them all).

    Rules: 10-12 questions; every question has a title (unique in the quiz), general feedback
    and at least one pointer; a true/false or multiple-choice question has exactly one correct
    choice, a multiple-answers question at least one, and no question repeats a choice; a
    numerical question names its recomputation (``% recompute: session_NN.name``, ``NN`` the
    quiz's session) and no other question does; no ``$`` (text2qti reads it as LaTeX); no stem
    twice. With ``headings`` (from :func:`heading_index`), every pointer must name a document
    and one of its headings.

    Parameters
    ----------
    quiz : Quiz
    headings : mapping of str to iterable of str, optional
        Document path (relative to the repository root) -> its headings. Without it, pointers
        are not resolved.

    Returns
    -------
    list of Problem

    Example
    -------
    >>> from mlsd.quiz import parse
    >>> quiz = parse("Quiz title: T\\n1. Pick one.\\n*a) this\\n*b) that\\n", source="session_01.md")
    >>> for problem in check(quiz, headings={}):
    ...     print(problem.message)
    has 1 question; a quiz has 10 to 12
    has no `Title:`
    has no general feedback (`...` under the stem) explaining the answer
    has no `% pointer:` to the notebook section or slide it tests
    is multiple choice with 2 correct choices; mark exactly one with `*`
    """
    source = quiz.source or quiz.title
    problems = []

    def problem(question, message):
        problems.append(Problem(source, question.name if question is not None else None, message))

    n = len(quiz.questions)
    if not MIN_QUESTIONS <= n <= MAX_QUESTIONS:
        problem(None, f"has {n} question{'s' * (n != 1)}; a quiz has {MIN_QUESTIONS} to {MAX_QUESTIONS}")
    if "$" in quiz.title + (quiz.description or ""):
        problem(None, "has a `$` in its title or description: text2qti reads `$...$` as LaTeX (write `\\$`)")
    titles: dict[str, int] = {}
    stems: dict[str, int] = {}
    index = {path: frozenset(found) for path, found in (headings or {}).items()}
    for q in quiz.questions:
        if not q.title:
            problem(q, "has no `Title:`")
        elif q.title in titles:
            problem(q, f"has the same title as Q{titles[q.title]}")
        else:
            titles[q.title] = q.number
        key = _normalise(q.stem)
        if key in stems:
            problem(q, f"has the same stem as Q{stems[key]}")
        stems.setdefault(key, q.number)
        if not (q.feedback or "").strip():
            problem(q, "has no general feedback (`...` under the stem) explaining the answer")
        if not q.pointers:
            problem(q, "has no `% pointer:` to the notebook section or slide it tests")
        if headings is not None:
            for pointer in q.pointers:
                if pointer.path not in index:
                    problem(q, f"points to {pointer.path}, which is not a session notebook or slide deck")
                elif pointer.heading not in index[pointer.path]:
                    problem(q, f'points to a heading "{pointer.heading}" that {pointer.path} does not have')
        n_correct = len(q.correct_choices)
        if q.kind in ("true_false", "multiple_choice") and n_correct != 1:
            label = q.kind.replace("_", " ").replace("true false", "true/false")
            problem(q, f"is {label} with {n_correct} correct choices; mark exactly one with `*`")
        if q.kind == "multiple_answers" and n_correct < 1:
            problem(q, "is multiple answers with no correct choice; mark at least one with `[*]`")
        if q.kind != "numerical" and len(q.choices) < 2:
            problem(q, "needs at least two choices")
        texts = [_normalise(choice.text) for choice in q.choices]
        if len(set(texts)) != len(texts):
            problem(q, "repeats a choice")
        if q.kind == "numerical":
            if q.recompute is None:
                problem(q, "is numerical without `% recompute: session_NN.name`: the tests cannot check it")
            else:
                match = _RECOMPUTE.fullmatch(q.recompute)
                if not match:
                    problem(q, f"has `% recompute: {q.recompute}`; write session_NN.lower_case_name")
                elif quiz.session is not None and int(match.group(1)) != quiz.session:
                    problem(q, f"recomputes {q.recompute}, which belongs to another session's quiz")
            if q.numerical is not None and min(abs(q.numerical.low), abs(q.numerical.high)) < 1e-4:
                problem(q, "accepts a value within 0.0001 of 0, which text2qti refuses")
        elif q.recompute is not None:
            problem(q, "has `% recompute:` but is not numerical")
        texts = [q.stem, q.feedback or "", *(c.text + (c.feedback or "") for c in q.choices)]
        if any("$" in text.replace("\\$", "") for text in texts):
            problem(q, "has a `$`: text2qti reads `$...$` as LaTeX (write `\\$` for a dollar sign)")
    return problems


def check_course(
    quizzes: Iterable[Quiz], *, headings: Mapping[str, Iterable[str]] | None = None
) -> list[Problem]:
    """:func:`check` for every quiz, plus the course-wide rules: no stem in two quizzes, one quiz per session."""
    quizzes = list(quizzes)
    problems = [problem for quiz in quizzes for problem in check(quiz, headings=headings)]
    seen: dict[str, str] = {}
    sessions: dict[int, str] = {}
    for quiz in quizzes:
        source = quiz.source or quiz.title
        if quiz.session is not None:
            if quiz.session in sessions:
                problems.append(Problem(source, None, f"is a second quiz for session {quiz.session}"))
            sessions.setdefault(quiz.session, source)
        for q in quiz.questions:
            key = _normalise(q.stem)
            if key in seen and seen[key] != source:
                problems.append(Problem(source, q.name, f"has the same stem as a question of {seen[key]}"))
            seen.setdefault(key, source)
    return problems
