"""Grade many notebooks: the notebooks changed by a pull request, or a whole cohort's submissions."""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from mlsd.config import repo_root
from mlsd.grading._autograde import autograde
from mlsd.grading._common import (
    ASSIGNMENTS_FOLDER,
    GradingError,
    assignment_notebooks,
    course_dir,
    list_assignments,
    question_specs,
)
from mlsd.grading._gradebook import record_result, register_assignment
from mlsd.grading._limits import GradingOptions
from mlsd.grading._results import Result, ungraded

if TYPE_CHECKING:
    import pandas as pd


def _git(repo: Path, *args: str) -> bytes:
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=False)
    except FileNotFoundError:
        raise GradingError(
            "git is not installed or not on PATH: install git to grade a pull request."
        ) from None
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GradingError(
            f"`git {' '.join(args)}` failed in {repo}: {detail[-1] if detail else 'no message'}. "
            "Check that both refs exist locally (in CI, fetch the base branch with enough history, "
            "e.g. actions/checkout with fetch-depth: 0)."
        )
    return done.stdout


def changed_files(
    base: str, head: str = "HEAD", repo: str | os.PathLike | None = None
) -> list[tuple[str, str]]:
    """``(status, path)`` for each file changed between the merge base of ``base`` and ``head``."""
    repo = Path(repo) if repo is not None else repo_root()
    out = _git(repo, "diff", "--name-status", "--no-renames", "-z", f"{base}...{head}", "--")
    parts = [p for p in out.decode("utf-8", "replace").split("\0") if p]
    return [(parts[i], parts[i + 1]) for i in range(0, len(parts) - 1, 2)]


def grade_pr(
    base: str,
    *,
    head: str = "HEAD",
    repo: str | os.PathLike | None = None,
    out_dir: str | os.PathLike,
    learner: str | None = None,
    course: str | os.PathLike | None = None,
    options: GradingOptions | None = None,
) -> list[Result]:
    """Grade every assignment notebook that a pull request changes.

    The notebooks changed between ``base`` and ``head`` (``git diff base...head``) under
    ``02_activities/assignments/<assignment>/`` are read from git (``git show head:path``, never
    from the working tree) and graded with :func:`autograde`; the assignment is the folder name.
    Any other changed file is ignored for grading and noted in every result's flags, since a
    submission changes only its notebook. When ``GITHUB_STEP_SUMMARY`` is set, the summaries are
    appended to that file.

    Parameters
    ----------
    base, head : str
        Git refs: the branch the pull request targets and the submission.
    repo : path-like, optional
        The repository (default: the course repository this package lives in).
    out_dir : path-like
        Results go to ``out_dir/<assignment>/<notebook>/``; ``out_dir/summary.md`` has them all.
    learner : str, optional
        The learner's id; default ``GITHUB_ACTOR`` or ``learner``.
    course : path-like, optional
        The nbgrader course (default :func:`~mlsd.grading.course_dir`).
    options : GradingOptions, optional
        Passed to :func:`autograde` (limits, sandbox, database server, ...).

    Returns
    -------
    list of Result
        One per graded notebook (empty when the pull request changes no assignment notebook).
    """
    repo = Path(repo) if repo is not None else repo_root()
    course = Path(course) if course is not None else course_dir()
    learner = learner or os.environ.get("GITHUB_ACTOR") or "learner"
    out = Path(out_dir)
    known = set(list_assignments(course))
    submissions, others = [], []
    for status, path in changed_files(base, head, repo):
        parts = PurePosixPath(path).parts
        prefix = ASSIGNMENTS_FOLDER.parts
        is_notebook = (
            len(parts) == len(prefix) + 2 and parts[: len(prefix)] == prefix and path.endswith(".ipynb")
        )
        if is_notebook and parts[len(prefix)] in known:
            submissions.append((status, path, parts[len(prefix)]))
        else:
            others.append(path)
    notes = [
        f"the pull request also changes {p}: ignored for grading (a submission changes only its notebook)"
        for p in others
    ]

    results = []
    with tempfile.TemporaryDirectory(prefix="mlsd-pr-") as tmp:
        for status, path, assignment in submissions:
            name = PurePosixPath(path).name
            local = Path(tmp) / assignment / name
            local.parent.mkdir(parents=True, exist_ok=True)
            if not status.startswith("D"):
                local.write_bytes(_git(repo, "show", f"{head}:{path}"))
            target = out / assignment / Path(name).stem
            result = autograde(
                assignment, local, learner, out_dir=target, course=course, extra_flags=notes, options=options
            )
            results.append(result)

    summary = _pr_summary(results, notes, base, head)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_bytes(summary.encode("utf-8"))
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with open(step_summary, "a", encoding="utf-8") as handle:
            handle.write(summary)
    return results


def _pr_summary(results: list[Result], notes: list[str], base: str, head: str) -> str:
    lines = ["## Autograder", ""]
    if not results:
        lines.append(
            f"This pull request ({base}...{head}) changes no assignment notebook under "
            f"`{ASSIGNMENTS_FOLDER.as_posix()}/`, so there is nothing to grade."
        )
        if notes:
            lines += [""] + [f"- {n}" for n in notes]
        return "\n".join(lines) + "\n"
    return "\n".join(lines) + "\n" + "\n".join(r.summary_markdown() for r in results)


# -- a cohort ----------------------------------------------------------------------------


def _find_notebook(folder: Path, assignment: str, notebook: Path, single: bool) -> tuple[Path | None, str]:
    """The learner's notebook for ``notebook`` and, when it cannot be used, why ("" when none is there).

    Only regular files inside the learner's folder count: a symbolic link (to the instructors'
    source, to another learner's file) or a path that leaves the folder is refused.
    """
    candidates = [folder / notebook.name, folder / assignment / notebook.name]
    if single:
        candidates += sorted(
            p for p in _walk(folder) if p.suffix == ".ipynb" and ".ipynb_checkpoints" not in p.parts
        )
    for candidate in dict.fromkeys(candidates):
        if candidate.is_symlink():
            return None, f"{candidate.relative_to(folder)} is a symbolic link, not a file the learner made"
        if candidate.is_file():
            if not candidate.resolve().is_relative_to(folder.resolve()):
                return None, f"{candidate.relative_to(folder)} is outside the learner's folder"
            if single and candidate not in candidates[:2]:
                found = [
                    p for p in _walk(folder) if p.suffix == ".ipynb" and ".ipynb_checkpoints" not in p.parts
                ]
                if len(found) != 1:
                    return None, ""
            return candidate, ""
    return None, ""


def _walk(folder: Path) -> list[Path]:
    """Files under ``folder`` without following symbolic links to folders."""
    found = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(root) / name for name in files]
    return sorted(found)


def _server_once(options: GradingOptions) -> GradingOptions:
    """Options with the database server resolved once (starting the embedded server if needed)."""

    from mlsd import db
    from mlsd.errors import MLSDError

    try:
        return replace(options, database_url=db.database_url(options.database_url))
    except MLSDError:
        return options  # each submission then reports the problem in its results


class _CohortProgress:
    """What a cohort's progress line says: how many are graded, and where each running one is."""

    def __init__(self, listener: Callable[[str], None] | None):
        self.listener, self.total, self.done = listener or None, 0, 0
        self.running: dict[str, str] = {}
        self.lock = threading.Lock()

    def working(self, name: str, step: str) -> None:
        with self.lock:
            self.running[name] = step
            self._say()

    def finished(self, name: str) -> None:
        with self.lock:
            self.running.pop(name, None)
            self.done += 1
            self._say()

    def _say(self) -> None:
        if self.listener is not None:
            now = "; ".join(f"{name}: {step}" for name, step in self.running.items())
            self.listener(f"{self.done}/{self.total} graded" + (f"; now {now}" if now else ""))


def grade_cohort(
    submissions_dir: str | os.PathLike,
    assignment: str,
    *,
    out_dir: str | os.PathLike,
    progress: Callable[[str], None] | None = None,
    course: str | os.PathLike | None = None,
    jobs: int = 1,
    options: GradingOptions | None = None,
    record: bool = True,
    on_result=None,
) -> pd.DataFrame:
    """Grade one assignment for every learner folder in ``submissions_dir``.

    Each learner has a folder, ``submissions/<learner>/<notebook>.ipynb`` or
    ``submissions/<learner>/<assignment>/<notebook>.ipynb`` (both are accepted; for a one-notebook
    assignment a single notebook under another name is graded and flagged). A learner without a
    notebook is ``missing``. Every notebook is copied into a private folder before any learner code
    runs, and graded in its own sandbox; a symbolic link or a path outside the learner's folder is
    ``invalid``, and whatever goes wrong with one submission (a file that cannot be read, a crash of
    the grader) becomes that learner's ``invalid`` or ``error``: the cohort goes on and
    ``gradebook.csv`` is always written.

    Parameters
    ----------
    submissions_dir : path-like
        One folder per learner (hidden folders are skipped).
    assignment : str
        The assignment to grade.
    out_dir : path-like
        Each learner's results go to ``out_dir/<learner>/`` (``out_dir/<learner>/<notebook>/`` for a
        multi-notebook assignment); ``out_dir/gradebook.csv`` has one row per learner.
    progress : callable, optional
        Hears a short line whenever grading moves on (``3/20 graded; now octocat: cell 12/80``), for
        a progress display.
    course : path-like, optional
        The nbgrader course (default :func:`~mlsd.grading.course_dir`).
    jobs : int
        Submissions graded at the same time, each in its own process, sandbox and database. One
        per core is a good choice; results do not depend on it.
    options : GradingOptions, optional
        Passed to :func:`autograde`.
    record : bool
        Record every result in the course's persistent nbgrader gradebook (``gradebook.db``,
        ``submitted/``, ``autograded/`` in ``course``), where formgrader shows them (default).
    on_result : callable, optional
        Called with each :class:`Result` as it is written (in the calling thread, in learner order).

    Returns
    -------
    pandas.DataFrame
        ``learner, status, score, max_score, review`` and one column of points per question (empty
        while a grader has not read a manually graded answer); a ``notebook`` column when the
        assignment has several notebooks.
    """
    import shutil
    import tempfile
    from concurrent.futures import ThreadPoolExecutor, as_completed

    import nbformat
    import pandas as pd

    from mlsd.grading._sandbox import check_available

    if int(jobs) < 1:
        raise GradingError(f"jobs must be 1 or more, got {jobs}.")
    options = options or GradingOptions()
    course = Path(course) if course is not None else course_dir()
    notebooks = assignment_notebooks(course, assignment)
    if options.sandbox:
        check_available()
    if record:
        register_assignment(course, assignment)
    root = Path(submissions_dir)
    if not root.is_dir():
        raise GradingError(f"{root} is not a folder: it should hold one folder per learner.")
    # A learner folder that is a symbolic link (to another learner, to the course) is graded as invalid.
    learners = sorted(
        p for p in root.iterdir() if (p.is_dir() or p.is_symlink()) and not p.name.startswith(".")
    )
    out = Path(out_dir)
    several = len(notebooks) > 1
    specs = {nb.name: question_specs(nbformat.read(nb, as_version=4)) for nb in notebooks}
    private = Path(tempfile.mkdtemp(prefix="mlsd-cohort-"))
    private.chmod(0o700)

    def take(folder: Path, notebook: Path) -> tuple[Path, str, str]:
        """Copy the learner's notebook into the private folder, before any learner code runs."""
        if folder.is_symlink():
            return private / folder.name / notebook.name, "invalid", "the learner's folder is a symbolic link"
        found, problem = _find_notebook(folder, assignment, notebook, single=not several)
        target = private / folder.name / notebook.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if found is None:
            return target, ("invalid" if problem else "missing"), problem
        shutil.copyfile(found, target, follow_symlinks=False)
        label = found.relative_to(folder).as_posix()
        return target, "", "" if label in (notebook.name, f"{assignment}/{notebook.name}") else label

    report = _CohortProgress(progress)

    def grade_one(folder: Path, notebook: Path, taken: tuple[Path, str, str]) -> Result:
        target = out / folder.name / notebook.stem if several else out / folder.name
        path, status, problem = taken
        name = f"{folder.name}/{notebook.stem}" if several else folder.name
        report.working(name, "starting")
        own = replace(options, progress=lambda step: report.working(name, step)) if progress else options
        try:
            if status == "invalid":
                result = ungraded(
                    assignment, folder.name, notebook.name, "invalid", specs[notebook.name], problem
                )
                result.write(target, _feedback_page(result))
                return result
            if status == "missing":
                path = private / folder.name / "none" / notebook.name
            notes = [f"submitted as {problem}: graded as {notebook.name}"] if problem else []
            return autograde(
                assignment,
                path,
                folder.name,
                out_dir=target,
                course=course,
                options=own,
                extra_flags=notes,
            )
        except GradingError:
            raise
        except Exception as err:  # our own failure with this one submission: it must not stop the cohort
            message = f"not graded: the grader failed on this submission ({type(err).__name__}); see the log"
            result = ungraded(assignment, folder.name, notebook.name, "error", specs[notebook.name], message)
            result.write(target, _feedback_page(result))
            return result
        finally:
            report.finished(name)

    try:
        tasks = []
        for folder in learners:
            for notebook in notebooks:
                try:
                    taken = take(folder, notebook)
                except OSError as err:
                    taken = (
                        private / folder.name / notebook.name,
                        "invalid",
                        f"the file cannot be read ({err.strerror})",
                    )
                tasks.append((folder, notebook, taken))
        report.total = len(tasks)
        if jobs > 1 and options.database_url is None:
            options = _server_once(options)  # start the embedded server before the threads need it
        # Threads only wait: each grading runs in child processes (see autograde).
        with ThreadPoolExecutor(max_workers=int(jobs)) as pool:
            futures = [pool.submit(grade_one, *task) for task in tasks]
            for _ in as_completed(futures):
                pass
        results = [future.result() for future in futures]  # learner order, whatever finished first
        rows = []
        for (folder, notebook, taken), result in zip(tasks, results, strict=True):
            if record:
                record_result(course, result, submitted=taken[0] if taken[1] == "" else None)
            if on_result is not None:
                on_result(result)
            row = {"learner": folder.name}
            if several:
                row["notebook"] = notebook.name
            row.update(
                status=result.status,
                score=result.score,
                max_score=result.max_score,
                review="required" if result.review.required else "",
            )
            row.update({q.id: q.points for q in result.questions})
            rows.append(row)
    finally:
        shutil.rmtree(private, ignore_errors=True)
    frame = pd.DataFrame.from_records(rows)
    if frame.empty:
        frame = pd.DataFrame(columns=["learner", "status", "score", "max_score", "review"])
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / "gradebook.csv", index=False, lineterminator="\n", float_format="%g")
    return frame


def _feedback_page(result: Result) -> str:
    from mlsd.grading import _feedback

    return _feedback.render(result)
