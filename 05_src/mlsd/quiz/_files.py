"""The quiz files on disk, and the exports written from them."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from mlsd.config import repo_root
from mlsd.errors import MLSDError
from mlsd.quiz._check import check_course, heading_index
from mlsd.quiz._export import preview_html, to_gift, to_qti
from mlsd.quiz._model import Problem, Quiz
from mlsd.quiz._parse import parse

QUIZ_FOLDER = "03_instructional_team/quizzes"
FORMATS = ("qti", "gift")
_FILE = re.compile(r"session_(\d\d)\.md")


def quiz_dir(root: str | Path | None = None) -> Path:
    """``03_instructional_team/quizzes`` under ``root`` (the repository root by default)."""
    return Path(root or repo_root()) / QUIZ_FOLDER


def quiz_files(folder: str | Path | None = None) -> dict[int, Path]:
    """Session number -> its quiz file (``session_NN.md``), in session order."""
    folder = Path(folder) if folder is not None else quiz_dir()
    found = {int(m.group(1)): p for p in folder.glob("session_*.md") if (m := _FILE.fullmatch(p.name))}
    return dict(sorted(found.items()))


def read_quiz(path: str | Path, *, root: str | Path | None = None) -> Quiz:
    """Parse one quiz file.

    Parameters
    ----------
    path : path-like
        A ``session_NN.md`` file.
    root : path-like, optional
        The repository root (default: this repository); the quiz's ``source`` is the path relative
        to it when the file lies under it.

    Returns
    -------
    Quiz

    Raises
    ------
    QuizFormatError
        When the file breaks the syntax.
    """
    path = Path(path)
    root = Path(root or repo_root())
    try:
        source = path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        source = path.as_posix()
    return parse(path.read_text(encoding="utf-8-sig"), source=source)


def load_quizzes(
    sessions: Iterable[int] | None = None, *, folder: str | Path | None = None, root: str | Path | None = None
) -> dict[int, Quiz]:
    """The course quizzes (all, or those of ``sessions``), parsed, by session number.

    Parameters
    ----------
    sessions : iterable of int, optional
        The sessions wanted (default: every ``session_NN.md`` in the folder).
    folder : path-like, optional
        Where the quiz files are (default: ``03_instructional_team/quizzes`` under ``root``).
    root : path-like, optional
        The repository root (default: this repository).

    Returns
    -------
    dict of int to Quiz

    Raises
    ------
    MLSDError
        When a session asked for has no quiz file.
    """
    root = Path(root or repo_root())
    files = quiz_files(folder if folder is not None else quiz_dir(root))
    wanted = list(files) if sessions is None else list(sessions)
    missing = [n for n in wanted if n not in files]
    if missing:
        where = Path(folder) if folder is not None else quiz_dir(root)
        raise MLSDError(
            f"No quiz for session {', '.join(map(str, missing))} in {where}: "
            f"the quizzes are {', '.join(p.name for p in files.values()) or 'missing'}."
        )
    return {n: read_quiz(files[n], root=root) for n in wanted}


def course_problems(quizzes: Iterable[Quiz], *, root: str | Path | None = None) -> list[Problem]:
    """:func:`mlsd.quiz.check_course` with every pointer resolved against the repository's notebooks and slides."""
    return check_course(quizzes, headings=heading_index(root or repo_root()))


def export(quizzes: Iterable[Quiz], out_dir: str | Path, fmt: str = "qti") -> list[Path]:
    """Write one file per quiz into ``out_dir``: ``quiz_NN.zip`` (QTI) or ``quiz_NN.gift.txt`` (GIFT).

    The quizzes are written as they are: check them first (:func:`course_problems`).

    Parameters
    ----------
    quizzes : iterable of Quiz
    out_dir : path-like
        Created if missing; files of the same names are replaced.
    fmt : {"qti", "gift"}
        Canvas (Quercus) QTI zip, or Moodle GIFT text.

    Returns
    -------
    list of Path
        The files written, in the order of ``quizzes``.
    """
    if fmt not in FORMATS:
        raise MLSDError(f"Unknown quiz format {fmt!r}: choose one of {', '.join(FORMATS)}.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for quiz in quizzes:
        stem = f"quiz_{quiz.session:02d}" if quiz.session is not None else re.sub(r"\W+", "_", quiz.title)
        if fmt == "qti":
            path = out / f"{stem}.zip"
            path.write_bytes(to_qti(quiz))
        else:
            path = out / f"{stem}.gift.txt"
            path.write_text(to_gift(quiz), encoding="utf-8")
        written.append(path)
    return written


def write_preview(quiz: Quiz, path: str | Path, *, problems: Iterable[Problem] = ()) -> Path:
    """Write :func:`mlsd.quiz.preview_html` to ``path`` (its folder is created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(preview_html(quiz, problems=problems), encoding="utf-8")
    return path
