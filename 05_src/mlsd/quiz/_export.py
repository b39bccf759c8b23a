"""Quizzes for the LMS: a Canvas QTI zip (through text2qti), Moodle GIFT, and a facilitator's HTML preview."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable

from mlsd.quiz._model import KIND_LABELS, Problem, Question, Quiz, QuizFormatError
from mlsd.quiz._parse import to_text

_GIFT_SPECIAL = re.compile(r"([~=#{}:\\])")


def _text2qti():
    """text2qti and the Markdown library it brings load on first use: most commands never export."""
    from text2qti.config import Config
    from text2qti.markdown import Markdown
    from text2qti.qti import QTI
    from text2qti.quiz import Quiz as Text2qtiQuiz

    return Config, Markdown, QTI, Text2qtiQuiz


def text2qti_quiz(quiz: Quiz, *, pointers_in_feedback: bool = True):
    """The quiz as text2qti reads it, from :func:`mlsd.quiz.to_text`.

    No text2qti configuration file is read or written, and no code block is ever run.

    Parameters
    ----------
    quiz : Quiz
    pointers_in_feedback : bool
        End each question's general feedback with where to review it (its pointers, in words).

    Returns
    -------
    text2qti.quiz.Quiz

    Raises
    ------
    QuizFormatError
        When text2qti refuses the text (its message names the line).
    """
    from text2qti.err import Text2qtiError  # loads with text2qti, see _text2qti

    Config, _, _, Text2qtiQuiz = _text2qti()
    text = to_text(quiz, pointers_in_feedback=pointers_in_feedback)
    try:
        return Text2qtiQuiz(text, config=Config(), source_name=quiz.source or quiz.title)
    except Text2qtiError as error:
        raise QuizFormatError(
            f"text2qti refuses {quiz.source or quiz.title}: {error} "
            "(line numbers count from the text mlsd.quiz.to_text writes)."
        ) from None


def to_qti(quiz: Quiz, *, pointers_in_feedback: bool = True) -> bytes:
    """A Canvas-importable QTI 1.2 zip of the quiz: ``imsmanifest.xml``, one assessment, its settings.

    text2qti does the conversion; Canvas (Quercus) imports the zip through Settings > Import Course
    Content > QTI .zip file as one Classic Quiz, unpublished.

    Parameters
    ----------
    quiz : Quiz
    pointers_in_feedback : bool
        End each question's general feedback with where to review it (default), as learners see it.

    Returns
    -------
    bytes
        The zip file's content.
    """
    _, _, QTI, _ = _text2qti()
    return QTI(text2qti_quiz(quiz, pointers_in_feedback=pointers_in_feedback)).zip_bytes()


def _markdown_to_html(text: str, md=None) -> str:
    if md is None:
        Config, Markdown, _, _ = _text2qti()
        md = Markdown(Config())
    return md.md_to_html(text)


def _gift_escape(text: str) -> str:
    return _GIFT_SPECIAL.sub(r"\\\1", text)


def to_gift(quiz: Quiz, *, pointers_in_feedback: bool = True) -> str:
    """The quiz in Moodle's GIFT format, its text rendered to HTML as Canvas would show it.

    True/false becomes ``{TRUE}``/``{FALSE}``, multiple choice ``=right ~wrong``, multiple answers
    ``~%50%right ~%-50%wrong`` (correct choices share 100%, wrong ones -100%), numerical
    ``{#value:tolerance}`` or ``{#low..high}``; ``#`` after a choice is its feedback and ``####``
    the general feedback.

    Parameters
    ----------
    quiz : Quiz
    pointers_in_feedback : bool
        End each question's general feedback with where to review it (default).

    Returns
    -------
    str
        The GIFT text, one block per question.
    """
    Config, Markdown, _, _ = _text2qti()
    md = Markdown(Config())

    def render(text: str | None) -> str:
        if not text:
            return ""
        return _gift_escape(" ".join(_markdown_to_html(text, md).split()))

    blocks = [
        f"// {quiz.title}\n// exported by `mlsd quiz export --format gift`; edit the .md file, not this one"
    ]
    for q in quiz.questions:
        feedback = q.feedback or ""
        if pointers_in_feedback and q.pointers:
            review = "Review: " + "; ".join(pointer.label for pointer in q.pointers) + "."
            feedback = f"{feedback}\n\n{review}" if feedback else review
        title = _gift_escape(q.title or f"Q{q.number}")
        lines = [f"::{title}::[html]{render(q.stem)} {{"]
        if q.kind == "true_false":
            truth = next(c for c in q.choices if c.correct).text.lower() == "true"
            by_value = {c.text.lower(): c for c in q.choices}
            wrong, right = by_value["false" if truth else "true"], by_value["true" if truth else "false"]
            lines.append(
                f"\t{'TRUE' if truth else 'FALSE'}#{render(wrong.feedback)}#{render(right.feedback)}"
            )
        elif q.kind == "numerical":
            answer = q.numerical
            if answer.value is None:
                lines.append(f"\t#{answer.low:g}..{answer.high:g}")
            else:
                lines.append(f"\t#{answer.value:g}:{answer.tolerance:g}")
        else:
            n_right = len(q.correct_choices)
            n_wrong = len(q.choices) - n_right
            for choice in q.choices:
                choice_feedback = f"#{render(choice.feedback)}" if choice.feedback else ""
                if q.kind == "multiple_choice":
                    prefix = "=" if choice.correct else "~"
                else:
                    weight = 100 / n_right if choice.correct else -100 / max(n_wrong, 1)
                    prefix = f"~%{f'{weight:.5f}'.rstrip('0').rstrip('.')}%"  # Moodle's grades: 33.33333
                lines.append(f"\t{prefix}{render(choice.text)}{choice_feedback}")
        if feedback:
            lines.append(f"\t####{render(feedback)}")
        lines.append("}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


_STYLE = """
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
.banner{background:#fff3cd;border:1px solid #e0c36c;padding:.5rem 1rem;border-radius:4px}
.problems{background:#fde2e1;border:1px solid #e0a3a0;padding:.5rem 1rem;border-radius:4px}
.question{border-top:1px solid #ccc;padding:1rem 0}
.meta{color:#555;font-size:.85rem}
.kind{display:inline-block;background:#e8eef7;border-radius:3px;padding:0 .4rem;margin-right:.4rem}
ol.choices{list-style:lower-alpha}
li.correct{font-weight:600}
li.correct::marker{color:#1a7f37}
.mark{color:#1a7f37}
.feedback{background:#f3f6f3;border-left:3px solid #9bbf9b;padding:.2rem .8rem;margin:.3rem 0}
.choice-feedback{font-weight:400;color:#444;font-size:.9rem}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.1rem .4rem}
pre{background:#f6f8fa;padding:.5rem;overflow-x:auto}
"""


def preview_html(quiz: Quiz, *, problems: Iterable[Problem] = ()) -> str:
    """A self-contained HTML page of the quiz for facilitators: answers, feedback, pointers, problems.

    Every stem, choice and feedback is rendered by text2qti's Markdown, as Canvas will show it.
    It is the answer key: keep it out of the learners' reach.

    Parameters
    ----------
    quiz : Quiz
    problems : iterable of Problem
        Listed at the top of the page (from :func:`mlsd.quiz.check` or
        :func:`mlsd.quiz.course_problems`).

    Returns
    -------
    str
        The HTML page.
    """
    Config, Markdown, _, _ = _text2qti()
    md = Markdown(Config())
    esc = html.escape
    counts = ", ".join(f"{n} {KIND_LABELS[kind]}" for kind, n in quiz.kind_counts().items() if n)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(quiz.title)}: answer key</title><style>{_STYLE}</style></head><body>",
        f"<h1>{esc(quiz.title)}</h1>",
        '<p class="banner">Facilitators\' preview with answers and feedback: do not share with learners.</p>',
        f'<p class="meta">{len(quiz.questions)} questions: {esc(counts)}. Source: {esc(quiz.source or "-")}.'
        + "".join(f" {esc(name)}: {esc(value)}." for name, value in quiz.options)
        + "</p>",
    ]
    if quiz.description:
        parts.append(f"<div>{_markdown_to_html(quiz.description, md)}</div>")
    problems = list(problems)
    if problems:
        items = "".join(f"<li>{esc(str(p))}</li>" for p in problems)
        parts.append(f'<div class="problems"><strong>Problems to fix</strong><ul>{items}</ul></div>')
    for q in quiz.questions:
        parts.append(_question_html(q, md))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _question_html(q: Question, md) -> str:
    esc = html.escape
    head = f'<span class="kind">{KIND_LABELS[q.kind]}</span>Q{q.number}'
    if q.title:
        head += f": {esc(q.title)}"
    if q.points:
        head += f" ({esc(q.points)} points)"
    out = [f'<section class="question" id="q{q.number}"><h2>{head}</h2>', _markdown_to_html(q.stem, md)]
    if q.kind == "numerical":
        answer = q.numerical
        exact = f"{answer.value:g}, accepted " if answer.value is not None else "accepted "
        out.append(f'<p><span class="mark">Answer:</span> {exact}{answer.low:g} to {answer.high:g}</p>')
    else:
        items = []
        for choice in q.choices:
            css = ' class="correct"' if choice.correct else ""
            mark = ' <span class="mark">(correct)</span>' if choice.correct else ""
            text = md.md_to_html(choice.text, strip_p_tags=True)
            feedback = ""
            if choice.feedback:
                feedback = f'<div class="choice-feedback">{_markdown_to_html(choice.feedback, md)}</div>'
            items.append(f"<li{css}>{text}{mark}{feedback}</li>")
        out.append(f'<ol class="choices">{"".join(items)}</ol>')
    if q.feedback:
        out.append(
            f'<div class="feedback"><strong>Feedback:</strong> {_markdown_to_html(q.feedback, md)}</div>'
        )
    meta = [f"Tests: {esc(p.label)} (<code>{esc(str(p))}</code>)" for p in q.pointers]
    if q.recompute:
        meta.append(f"Recomputed in the tests by <code>{esc(q.recompute)}</code>")
    meta.append(f"Line {q.line} of the file")
    out.append('<p class="meta">' + "<br>".join(meta) + "</p></section>")
    return "\n".join(out)
