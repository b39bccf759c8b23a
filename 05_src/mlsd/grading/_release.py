"""``release``: the learner copies of the assignments, made by nbgrader and written byte-stable."""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from mlsd.grading._common import (
    GradingError,
    assignments_dir,
    branch_name,
    check_assignment,
    course_dir,
    grade_id,
    list_assignments,
    question_specs,
)
from mlsd.grading._workspace import copy_course, run_child, workspace

if TYPE_CHECKING:
    import nbformat

# Cell metadata that editors add and that says nothing about the assignment (nbstripout's defaults).
_VOLATILE_CELL_KEYS = ("collapsed", "scrolled", "ExecuteTime", "execution", "heading_collapsed", "hidden")
_VOLATILE_NB_KEYS = ("signature", "widgets")
_ID = re.compile(r"^[a-zA-Z0-9-_]{1,64}$")


class ReleaseWarning(UserWarning):
    """The learner header of a source notebook misses something learners need."""


def normalise_notebook(nb: nbformat.NotebookNode, source_raw: dict | None = None) -> bytes:
    """Serialise a learner copy so that the same source always gives the same bytes.

    No outputs or execution counts, no editor metadata, cell ids from the source (made up
    deterministically when the source has none), keys sorted, one-space indent, a final newline.
    """
    nb.nbformat, nb.nbformat_minor = 4, 5
    for key in _VOLATILE_NB_KEYS:
        nb.metadata.pop(key, None)
    source_ids = None
    if source_raw is not None:
        cells = source_raw.get("cells", [])
        if len(cells) == len(nb.cells) and all(_ID.match(str(c.get("id", ""))) for c in cells):
            source_ids = [c["id"] for c in cells]
    used: set[str] = set()
    for index, cell in enumerate(nb.cells):
        wanted = source_ids[index] if source_ids else (grade_id(cell) or f"cell-{index}")
        if not _ID.match(wanted) or wanted in used:
            wanted = f"cell-{index}"
        cell["id"] = wanted
        used.add(wanted)
        for key in _VOLATILE_CELL_KEYS:
            cell.metadata.pop(key, None)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    import nbformat

    nbformat.validate(nb)
    text = nbformat.writes(nb, version=4)
    if not text.endswith("\n"):
        text += "\n"
    return text.encode("utf-8")


def check_header(nb: nbformat.NotebookNode, assignment: str, where: str) -> list[str]:
    """Problems with the learner header (the first cell). Raises when there is no markdown header."""
    if not nb.cells or nb.cells[0].cell_type != "markdown":
        raise GradingError(
            f"{where} must open with a markdown cell for learners that states the points, what to submit, "
            f"the branch `{branch_name(assignment)}` and how to open the pull request in their own fork."
        )
    text = nb.cells[0].source
    total = sum(spec.max_points for spec in question_specs(nb))
    problems = []
    if f"{total:g}" not in text:
        problems.append(f"{where}: the header does not mention the total of {total:g} points")
    if branch_name(assignment) not in text:
        problems.append(f"{where}: the header does not name the branch `{branch_name(assignment)}`")
    if "pull request" not in text.lower():
        problems.append(f"{where}: the header does not say how to open the pull request")
    return problems


def _generate(course: Path, assignment: str) -> dict[str, bytes]:
    """Run ``nbgrader generate_assignment`` in a temporary copy of the course; return the release files."""
    import nbformat

    with workspace() as root:
        course_copy = copy_course(course, assignment, root)
        gradebook = root / "gradebook"
        gradebook.mkdir()
        job = {
            "mode": "release",
            "course": str(course_copy),
            "assignment": assignment,
            "db_url": f"sqlite:///{(gradebook / 'gradebook.db').as_posix()}",
            "work": str(root / "work"),
        }
        run = run_child(job, root)
        if not run.outcome.get("ok"):
            tail = "\n".join(run.log.strip().splitlines()[-15:])
            raise GradingError(
                f"nbgrader generate_assignment failed for {assignment}: "
                f"{run.outcome.get('error', 'no outcome')}\n{tail}"
            )
        release = course_copy / "release" / assignment
        files: dict[str, bytes] = {}
        for path in sorted(release.rglob("*")):
            if not path.is_file():
                continue
            rel = path.relative_to(release).as_posix()
            if path.suffix == ".ipynb":
                source_path = course / "source" / assignment / rel
                source_raw = json.loads(source_path.read_text(encoding="utf-8"))
                nb = nbformat.read(path, as_version=4)
                for problem in check_header(nb, assignment, f"source/{assignment}/{rel}"):
                    warnings.warn(problem, ReleaseWarning, stacklevel=3)
                files[rel] = normalise_notebook(nb, source_raw)
            else:
                files[rel] = path.read_bytes()
        return files


def cached_release(course: Path, assignment: str, cache_dir: Path) -> Path:
    """The learner copies of ``assignment`` as a folder, generated once per version of its sources."""
    import hashlib

    digest = hashlib.sha256()
    source = Path(course) / "source" / assignment
    for path in sorted(source.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and ".ipynb_checkpoints" not in path.parts:
            digest.update(path.relative_to(source).as_posix().encode())
            digest.update(path.read_bytes())
    config = Path(course) / "nbgrader_config.py"
    digest.update(config.read_bytes() if config.is_file() else b"")
    folder = Path(cache_dir) / f"release-{assignment}-{digest.hexdigest()[:20]}"
    if not folder.is_dir():
        files = _generate(Path(course), assignment)
        staging = folder.with_name(folder.name + f".{os.getpid()}.tmp")
        for rel, data in files.items():
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            (staging / rel).write_bytes(data)
        try:
            staging.rename(folder)
        except OSError:  # another process made it first: theirs is the same
            import shutil

            shutil.rmtree(staging, ignore_errors=True)
    return folder


def release(
    assignment: str | None = None,
    *,
    out: str | os.PathLike | None = None,
    course: str | os.PathLike | None = None,
) -> list[Path]:
    """Generate the learner copies of one assignment (or all) with nbgrader.

    ``nbgrader generate_assignment`` runs in a temporary copy of the course (its gradebook is
    thrown away); solutions and hidden tests are removed, outputs cleared, and the notebooks are
    written byte-stable, so re-running ``release`` on unchanged sources changes no file and a test can
    tell when the committed copies are stale. Files in the target folder that the release no longer
    contains are removed.

    Parameters
    ----------
    assignment : str, optional
        One assignment (a folder under ``course/source``); all of them when omitted.
    out : path-like, optional
        Folder that receives ``<assignment>/``; default ``02_activities/assignments``.
    course : path-like, optional
        The nbgrader course (default :func:`~mlsd.grading.course_dir`).

    Returns
    -------
    list of Path
        The files written (notebooks and support files), sorted.

    Warns
    -----
    ReleaseWarning
        When a notebook's learner header (its first, markdown cell) does not mention the total points,
        the branch name or the pull request.

    Examples
    --------
    >>> release("assignment_1")  # doctest: +SKIP
    [PosixPath('.../02_activities/assignments/assignment_1/assignment_1.ipynb')]
    """
    course = Path(course) if course is not None else course_dir()
    if assignment is not None:
        check_assignment(course, assignment)
        names = [assignment]
    else:
        names = list_assignments(course)
        if not names:
            raise GradingError(
                f"No assignments in {course / 'source'} yet: add source/<assignment>/<notebook>.ipynb "
                "with nbgrader cell metadata first."
            )
    target_root = Path(out) if out is not None else assignments_dir()
    written: list[Path] = []
    for name in names:
        files = _generate(course, name)
        target = target_root / name
        target.mkdir(parents=True, exist_ok=True)
        for existing in sorted(target.rglob("*"), reverse=True):
            rel = existing.relative_to(target).as_posix()
            if existing.is_file() and rel not in files:
                existing.unlink()
            elif existing.is_dir() and not any(existing.iterdir()):
                existing.rmdir()
        for rel, data in files.items():
            path = target / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.is_file() or path.read_bytes() != data:
                path.write_bytes(data)
            written.append(path)
    return sorted(written)
