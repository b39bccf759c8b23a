"""Publish the learners' repository from the instructors' one: everything learners use, nothing private.

The instructors' repository (this one, kept private) holds the assignment sources with solutions and
hidden tests, their comparisons, the answer keys, the quizzes and the grading workflows. Learners
fork a public repository that :func:`publish` writes from it:

- every file git tracks here, except what :data:`PRIVATE` names (and what ``.gitignore`` ignores);
- the learners' versions of files that differ (:data:`REPLACED`: the Autograde workflow that runs
  ``mlsd grade check``, the instructional team's public README);
- the playbook's private sections (between ``<!-- private -->`` and ``<!-- /private -->``) removed.

The same sources always give byte-identical trees. Publishing into an existing git checkout replaces
its files (``.git`` is kept) and commits on top, so the public repository keeps its history.
"""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from mlsd.config import repo_root
from mlsd.errors import MLSDError

__all__ = ["PRIVATE", "PRIVATE_TESTS", "PublishError", "Published", "leaks", "private_texts", "publish"]

# Tests that need (or contain) private material: the learners' repository does not have them.
PRIVATE_TESTS = (
    "05_src/tests/grading/test_assignment_*.py",
    "05_src/tests/grading/test_points.py",
    "05_src/tests/grading/test_committed_copies.py",
    "05_src/tests/grading/test_publish.py",
    "05_src/tests/grading/test_workflows_private.py",
    "05_src/tests/*/test_quiz_content*.py",
    "05_src/tests/*/test_quizzes*.py",
)
PRIVATE = (
    "03_instructional_team/nbgrader/*",
    "03_instructional_team/answer_keys/*",
    "03_instructional_team/quizzes/*",
    "03_instructional_team/rubrics/*",
    "03_instructional_team/README.md",  # replaced by its public version, see REPLACED
    ".github/workflows/grade-cohort.yml",
    ".github/workflows/autograde.yml",  # replaced by the learners' version
    ".github/learners/*",
    *PRIVATE_TESTS,
)
# path in the published tree -> where its content comes from here
REPLACED = {
    ".github/workflows/autograde.yml": ".github/learners/autograde.yml",
}
PLAYBOOK = "03_instructional_team/README.md"
_PRIVATE_SECTION = re.compile(r"<!-- private -->.*?<!-- /private -->\n?", re.S)


class PublishError(MLSDError):
    """The learners' repository cannot be written: the message says why and what to do."""


@dataclass
class Published:
    """What :func:`publish` wrote."""

    out: Path
    files: list[str] = field(default_factory=list)
    commit: str | None = None  # the new commit in ``out``, when it is a git checkout and anything changed


def _git(args: list[str], cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise PublishError(f"`git {' '.join(args)}` failed in {cwd}: {done.stderr.strip()[:300]}")
    return done.stdout


def is_private(path: str) -> bool:
    """Whether a repository path stays in the instructors' repository.

    Examples
    --------
    >>> is_private("03_instructional_team/answer_keys/session_01.md"), is_private("01_materials/labs/x.ipynb")
    (True, False)
    """
    return any(fnmatch.fnmatch(path, pattern) for pattern in PRIVATE)


def public_playbook(text: str) -> str:
    """The playbook without its private sections.

    Examples
    --------
    >>> public_playbook("a\\n<!-- private -->\\nsecret\\n<!-- /private -->\\nb\\n")
    'a\\nb\\n'
    """
    return _PRIVATE_SECTION.sub("", text)


def _tracked(root: Path) -> list[str]:
    return sorted(p for p in _git(["ls-files", "-z"], root).split("\0") if p)


def _contents(root: Path) -> dict[str, bytes]:
    """Every published path and its bytes."""
    files = {}
    for path in _tracked(root):
        if is_private(path) or not (root / path).is_file():
            continue
        files[path] = (root / path).read_bytes()
    for target, source in REPLACED.items():
        if (root / source).is_file():
            files[target] = (root / source).read_bytes()
    playbook = root / PLAYBOOK
    if playbook.is_file():
        files[PLAYBOOK] = public_playbook(playbook.read_text(encoding="utf-8")).encode("utf-8")
    return dict(sorted(files.items()))


def publish(
    out: str | os.PathLike, *, source: str | os.PathLike | None = None, commit: bool = True
) -> Published:
    """Write the learners' repository into ``out`` (see the module docstring).

    Parameters
    ----------
    out : path-like
        The folder to write; an existing git checkout of the public repository keeps its history.
    source : path-like, optional
        The instructors' repository (default: this one).
    commit : bool
        Commit the result when ``out`` is a git checkout (default).
    """
    root = Path(source) if source is not None else repo_root()
    out = Path(out).resolve()
    if out == root.resolve() or root.resolve() in out.parents:
        raise PublishError(
            f"--out {out} is inside the instructors' repository: publish to a folder outside it."
        )
    files = _contents(root)
    out.mkdir(parents=True, exist_ok=True)
    for existing in sorted(out.rglob("*"), reverse=True):
        rel = existing.relative_to(out)
        if rel.parts[0] == ".git":
            continue
        if existing.is_file() or existing.is_symlink():
            if rel.as_posix() not in files:
                existing.unlink()
        elif existing.is_dir() and not any(existing.iterdir()):
            existing.rmdir()
    for rel, data in files.items():
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.is_file() or target.read_bytes() != data:
            target.write_bytes(data)
        mode = (root / rel).stat().st_mode if (root / rel).exists() else 0o644
        target.chmod(0o755 if mode & 0o100 else 0o644)
    result = Published(out, list(files))
    if commit and (out / ".git").exists():
        _git(["add", "-A"], out)
        if _git(["status", "--porcelain"], out).strip():
            head = _git(["rev-parse", "--short", "HEAD"], root).strip()
            identity = ["-c", "user.name=mlsd course publish", "-c", "user.email=course-publish@localhost"]
            _git([*identity, "commit", "-q", "-m", f"Publish the course from {head}"], out)
            result.commit = _git(["rev-parse", "HEAD"], out).strip()
    return result


# -- what must never be published -----------------------------------------------------------------

_SOLUTION = re.compile(r"### BEGIN SOLUTION(.*?)### END SOLUTION", re.S)
_HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS(.*?)### END HIDDEN TESTS", re.S)


def _lines(text: str, min_length: int) -> set[str]:
    return {line.strip() for line in text.splitlines() if len(line.strip()) >= min_length}


def _text(path: Path) -> str:
    """A file's text; for a notebook, its cells' sources and text outputs."""
    import json

    raw = path.read_bytes().decode("utf-8", "replace")
    if path.suffix != ".ipynb":
        return raw
    try:
        cells = json.loads(raw).get("cells", [])
    except (ValueError, AttributeError):
        return raw
    parts = []
    for cell in cells:
        source = cell.get("source", "")
        parts.append("".join(source) if isinstance(source, list) else str(source))
        for output in cell.get("outputs", []):
            text = output.get("text") or output.get("data", {}).get("text/plain", "")
            parts.append("".join(text) if isinstance(text, list) else str(text))
    return "\n".join(parts)


def private_texts(root: Path | None = None, min_length: int = 30) -> dict[str, set[str]]:
    """The lines that only private texts hold, by where they come from.

    Private texts are the solution and hidden-test regions of the assignment sources, their
    comparisons, the answer keys and the quizzes. A line that public material also holds (the
    visible part of a source notebook, the labs, the package: ``with conn, conn.cursor() as cur:``)
    is not private and is left out. A test scans the published tree for every line returned.
    """
    import json

    root = root or repo_root()
    private: dict[str, set[str]] = {}
    public: set[str] = set()
    team = root / "03_instructional_team"
    for path in sorted((team / "nbgrader" / "source").rglob("*.ipynb")):
        where = path.relative_to(root).as_posix()
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            text = "".join(cell.get("source", []))
            for pattern in (_SOLUTION, _HIDDEN):
                for block in pattern.findall(text):
                    private.setdefault(where, set()).update(_lines(block, min_length))
            public |= _lines(_HIDDEN.sub("", _SOLUTION.sub("", text)), min_length)
    for folder, pattern in (
        ("answer_keys", "*.md"),
        ("quizzes", "*.md"),
        ("rubrics", "*.md"),
        ("nbgrader/checks", "*.py"),
    ):
        for path in sorted((team / folder).rglob(pattern)):
            private.setdefault(path.relative_to(root).as_posix(), set()).update(
                _lines(path.read_text(encoding="utf-8"), min_length)
            )
    for folder in ("01_materials", "05_src/mlsd", "05_src/sql", "05_src/benchmarks", "05_src/tests"):
        for path in sorted((root / folder).rglob("*")):
            rel = path.relative_to(root).as_posix()
            if path.is_file() and path.suffix in (".py", ".sql", ".md", ".ipynb") and not is_private(rel):
                public |= _lines(_text(path), min_length)
    return {where: lines - public for where, lines in private.items() if lines - public}


def leaks(tree: Path, texts: dict[str, set[str]]) -> list[tuple[str, str, str]]:
    """``(file, private source, line)`` for every private line found in a file of ``tree``."""
    found = []
    for path in sorted(p for p in Path(tree).rglob("*") if p.is_file() and ".git" not in p.parts):
        lines = _lines(_text(path), 1)
        for where, private in texts.items():
            for line in private & lines:
                found.append((path.relative_to(tree).as_posix(), where, line))
    return found
