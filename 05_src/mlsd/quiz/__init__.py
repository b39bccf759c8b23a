"""The session quizzes: parse, check, export to LMS formats.

One quiz per session lives in ``03_instructional_team/quizzes/session_NN.md``, in text2qti's
Markdown (the format Canvas users know: ``1.`` a question, ``*a)`` the correct choice, ``[*]`` a
correct answer among several, ``= 0.92 +- 0.005`` a numerical answer, ``...`` feedback), with two
kinds of comment line that text2qti ignores and the course reads: ``% pointer: PATH#HEADING`` (the
notebook section or slide a question tests) and ``% recompute: NAME`` (the computation in the
tests that recomputes a numerical answer from the course data). Private like the answer keys.

- :func:`parse` / :func:`read_quiz` / :func:`load_quizzes`: text -> :class:`Quiz` dataclasses;
  :func:`to_text` writes them back, losslessly.
- :func:`check` / :func:`check_course` / :func:`course_problems`: the course's rules, returned as
  :class:`Problem` rows (10-12 questions, one correct choice, pointers that resolve, ...).
- :func:`to_qti` (a Canvas QTI zip, through text2qti), :func:`to_gift` (Moodle),
  :func:`preview_html` (a facilitator's answer key), :func:`export` and :func:`write_preview`.

``uv run mlsd quiz export`` and ``uv run mlsd quiz preview`` are the commands over this module.

Example
-------
>>> from mlsd.quiz import check, parse
>>> quiz = parse('''
... Quiz title: Quiz 0: a demo
...
... % pointer: 01_materials/labs/05_model_development.ipynb#1. The task, the split and the metric
... Title: PR-AUC of a random ranking
... 1.  About 7% of loans default. What PR-AUC does a random ranking score?
... ... Precision at every recall is the share of positives, so average precision is the base rate.
... *a) About 0.07
... b) About 0.5
... ... That is ROC-AUC's floor, not PR-AUC's.
... ''', source="03_instructional_team/quizzes/session_05.md")
>>> quiz.session, quiz.questions[0].kind, quiz.questions[0].correct_choices[0].text
(5, 'multiple_choice', 'About 0.07')
>>> [problem.message for problem in check(quiz)]
['has 1 question; a quiz has 10 to 12']
"""

from mlsd.quiz._check import (
    MAX_QUESTIONS,
    MIN_QUESTIONS,
    check,
    check_course,
    document_headings,
    heading_index,
    markdown_headings,
)
from mlsd.quiz._export import preview_html, text2qti_quiz, to_gift, to_qti
from mlsd.quiz._files import (
    FORMATS,
    QUIZ_FOLDER,
    course_problems,
    export,
    load_quizzes,
    quiz_dir,
    quiz_files,
    read_quiz,
    write_preview,
)
from mlsd.quiz._model import (
    KIND_LABELS,
    KINDS,
    Choice,
    Numerical,
    Pointer,
    Problem,
    Question,
    Quiz,
    QuizFormatError,
)
from mlsd.quiz._parse import parse, to_text

__all__ = [
    "FORMATS",
    "KINDS",
    "KIND_LABELS",
    "MAX_QUESTIONS",
    "MIN_QUESTIONS",
    "QUIZ_FOLDER",
    "Choice",
    "Numerical",
    "Pointer",
    "Problem",
    "Question",
    "Quiz",
    "QuizFormatError",
    "check",
    "check_course",
    "course_problems",
    "document_headings",
    "export",
    "heading_index",
    "load_quizzes",
    "markdown_headings",
    "parse",
    "preview_html",
    "quiz_dir",
    "quiz_files",
    "read_quiz",
    "text2qti_quiz",
    "to_gift",
    "to_qti",
    "to_text",
    "write_preview",
]
