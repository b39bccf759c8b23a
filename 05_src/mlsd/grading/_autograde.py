"""Autograde one submitted notebook in a fresh, temporary nbgrader course."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from mlsd.errors import MLSDError
from mlsd.grading import _feedback
from mlsd.grading._common import (
    BEGIN_HIDDEN,
    END_HIDDEN,
    NBGRADER_STUDENT,
    GradingError,
    assignment_notebooks,
    clean_message,
    course_dir,
    grade_id,
    hidden_line_numbers,
    is_grade,
    question_specs,
)
from mlsd.grading._repair import read_submission
from mlsd.grading._results import (
    Result,
    graded_questions,
    questions_from_progress,
    truncation_flags,
    ungraded,
)
from mlsd.grading._workspace import KILL_GRACE, copy_course, run_child, scratch_database, workspace


def _target_notebook(notebooks: list[Path], submitted_name: str, assignment: str) -> tuple[Path, list[str]]:
    """The source notebook a submitted file is graded against, and a flag when its name differs."""
    stem = Path(submitted_name).stem
    for path in notebooks:
        if path.stem == stem:
            return path, []
    if len(notebooks) == 1:
        return notebooks[0], [f"submitted as {submitted_name}: graded as {notebooks[0].name}"]
    names = ", ".join(p.name for p in notebooks)
    raise GradingError(
        f"{submitted_name} is not one of the notebooks of {assignment} ({names}): submit it under its "
        "original name."
    )


def _check_learner(learner: str) -> str:
    learner = str(learner).strip()
    if not learner or any(ch in learner for ch in "\r\n\t"):
        raise GradingError(f"learner id {learner!r} is empty or has line breaks: use a GitHub user name.")
    return learner


class _Redactor:
    """Replaces any hidden-test line that shows up in an output or a message with ``[hidden test]``."""

    def __init__(self, nb=None):
        lines: set[str] = set()
        for cell in nb.cells if nb is not None else []:
            if not (is_grade(cell) and cell.get("cell_type") == "code"):
                continue
            source = cell.get("source", "")
            rows = source.split("\n")
            for number in hidden_line_numbers(source):
                text = rows[number - 1].strip()
                if len(text) >= 8 and BEGIN_HIDDEN not in text and END_HIDDEN not in text:
                    lines.add(text)
        self.lines = sorted(lines, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for line in self.lines:
            if line in text:
                text = text.replace(line, "[hidden test]")
        return text


def _cleaner(replace: dict[str, str], redact: _Redactor) -> Callable[..., str]:
    def clean(text, limit: int = 500) -> str:
        return clean_message(redact(str(text)), replace=replace, limit=limit)

    return clean


def _cpu_of_children() -> float:
    try:
        import resource
    except ImportError:  # Windows
        return 0.0
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def autograde(
    assignment: str,
    notebook_path: str | os.PathLike,
    learner: str,
    *,
    out_dir: str | os.PathLike,
    cell_timeout: int = 60,
    notebook_timeout: int = 600,
    database_url: str | None = None,
    course: str | os.PathLike | None = None,
    env: Mapping[str, str] | None = None,
    extra_flags: Sequence[str] = (),
    _kill_after: float | None = None,
) -> Result:
    """Grade one submitted notebook and write ``results.json``, ``summary.md`` and ``feedback.html``.

    A fresh nbgrader course is built in a temporary folder from the instructors' sources
    (``generate_assignment`` makes the gradebook and the learner copy there); only the submitted
    ``.ipynb`` is copied in. Deleted, edited, duplicated or re-typed test and read-only cells and a
    changed kernel are restored and flagged. The notebook runs in the course's ``python3`` kernel with
    its working directory inside the temporary course, against a new, empty database that is dropped
    afterwards.

    Parameters
    ----------
    assignment : str
        The assignment (a folder under ``course/source``).
    notebook_path : path-like
        The submitted notebook. It is read, never run in place.
    learner : str
        The learner's id (e.g. GitHub user name), reported in the results.
    out_dir : path-like
        Folder for ``results.json``, ``summary.md`` and ``feedback.html`` (created).
    cell_timeout : int
        Seconds one cell may run before it is interrupted (its question is ``timed_out``).
    notebook_timeout : int
        Seconds the whole notebook may run; the questions not reached are ``timed_out``.
    database_url : str, optional
        A PostgreSQL server on which a scratch database is created; by default the course
        database's server (``DATABASE_URL`` or the embedded server).
    course : path-like, optional
        The nbgrader course (default :func:`course_dir`).
    env : mapping, optional
        Extra environment variables for the kernel.
    extra_flags : sequence of str
        Notes to add to the flags (e.g. files a pull request changes besides the notebook).

    Returns
    -------
    Result
        ``status`` is ``graded``, ``invalid`` (not a notebook), ``missing`` (no file) or ``error``
        (the grader itself failed; :attr:`Result.exit_code` is then 1).

    Raises
    ------
    GradingError
        For bad arguments: an unknown assignment (the message lists the known ones), a notebook
        name that matches none of a multi-notebook assignment's notebooks, an empty learner id.

    Examples
    --------
    >>> result = autograde("assignment_1", "assignment_1.ipynb", "octocat", out_dir="out")  # doctest: +SKIP
    >>> result.score, result.max_score  # doctest: +SKIP
    (17, 20)
    """
    import nbformat

    course = Path(course) if course is not None else course_dir()
    notebooks = assignment_notebooks(course, assignment)
    path = Path(notebook_path)
    target, flags = _target_notebook(notebooks, path.name, assignment)
    learner = _check_learner(learner)
    if cell_timeout <= 0 or notebook_timeout <= 0:
        raise GradingError("cell_timeout and notebook_timeout must be positive numbers of seconds.")
    source_nb = nbformat.read(target, as_version=4)
    specs = question_specs(source_nb)
    out = Path(out_dir)
    started = time.perf_counter()

    autograded = None
    redact = _Redactor(source_nb)  # the instructors' notebook holds every hidden test
    clean = _cleaner({}, redact)
    if not path.is_file():
        result = ungraded(
            assignment,
            learner,
            target.name,
            "missing",
            specs,
            f"no notebook was submitted (expected {target.name})",
        )
    else:
        submission = read_submission(path.read_bytes(), path.name)
        if submission.notebook is None:
            result = ungraded(assignment, learner, target.name, "invalid", specs, submission.problem or "")
        else:
            result, autograded, clean = _grade(
                redact,
                course,
                assignment,
                target.name,
                path,
                learner,
                specs,
                out,
                cell_timeout=cell_timeout,
                notebook_timeout=notebook_timeout,
                database_url=database_url,
                env=env,
                kill_after=_kill_after,
            )
    result.flags = flags + result.flags + list(extra_flags)
    result.timings["total"] = time.perf_counter() - started
    result.write(out, _feedback.render(result, autograded, clean))
    return result


def _grade(
    redact: _Redactor,
    course: Path,
    assignment: str,
    name: str,
    path: Path,
    learner: str,
    specs,
    out: Path,
    *,
    cell_timeout: int,
    notebook_timeout: int,
    database_url: str | None,
    env: Mapping[str, str] | None,
    kill_after: float | None,
):
    import nbformat

    from mlsd import db

    stem = Path(name).stem
    gradebook_dir = Path(tempfile.mkdtemp(prefix="mlsd-gradebook-")).resolve()
    cpu_before = _cpu_of_children()
    try:
        with workspace() as root:
            course_copy = copy_course(course, assignment, root)
            incoming = root / "incoming" / name
            incoming.parent.mkdir()
            shutil.copyfile(path, incoming)
            job = {
                "mode": "autograde",
                "course": str(course_copy),
                "assignment": assignment,
                "notebook": stem,
                "incoming": str(incoming),
                "db_url": f"sqlite:///{(gradebook_dir / 'gradebook.db').as_posix()}",
                "work": str(root / "work"),
                "cell_timeout": int(cell_timeout),
                "notebook_timeout": int(notebook_timeout),
            }
            kill = kill_after if kill_after is not None else notebook_timeout + KILL_GRACE
            try:
                server = db.database_url(database_url)
                with scratch_database(server) as scratch:
                    run = run_child(
                        job, root, env={**dict(env or {}), "DATABASE_URL": scratch}, kill_after=kill
                    )
                    database_name = scratch.rsplit("/", 1)[-1].split("?")[0]
            except MLSDError as err:  # GradingError or DatabaseError: no database, no grading
                result = ungraded(assignment, learner, name, "error", specs, f"not graded: {err}")
                return result, None, _cleaner({}, redact)

            autograded_path = course_copy / "autograded" / NBGRADER_STUDENT / assignment / name
            autograded = nbformat.read(autograded_path, as_version=4) if autograded_path.is_file() else None
            replace = {
                str(root): "<grader>",
                str(gradebook_dir): "<gradebook>",
                str(course.resolve()): "<course>",
                database_name: "<database>",
            }
            clean = _cleaner(replace, redact)
            outcome = run.outcome
            flags = list(outcome.get("flags", []))
            timings = {"child": run.seconds, "nbgrader_setup": run.setup_seconds}
            timings["execution_and_scoring"] = run.seconds - run.setup_seconds
            timings["cpu_children"] = _cpu_of_children() - cpu_before

            progress_file = Path(job["work"]) / "progress.jsonl"
            if run.killed and (Path(job["work"]) / "phase").exists():
                records = _read_progress(progress_file)
                questions = questions_from_progress(specs, records, kill, clean)
                flags.append(
                    f"the grader stopped the notebook {kill:g} s after autograde started: it overran its limit"
                )
                result = _result(assignment, learner, name, "graded", questions, flags)
                autograded = None
            elif outcome.get("ok") and autograded is not None:
                questions = graded_questions(
                    specs, autograded, outcome.get("grades", {}), outcome.get("comments", {}), clean
                )
                flags += truncation_flags(autograded)
                result = _result(assignment, learner, name, "graded", questions, flags)
            else:
                reason = outcome.get("error") or (
                    "it was stopped before autograde started"
                    if run.killed
                    else f"its process ended with code {run.returncode}"
                )
                message = clean(f"not graded: the grader failed ({reason}); see grader.log")
                result = ungraded(assignment, learner, name, "error", specs, message)
                result.flags = flags
                out.mkdir(parents=True, exist_ok=True)
                log = run.log + ("\n" + outcome["traceback"] if outcome.get("traceback") else "")
                (out / "grader.log").write_text(redact(log), encoding="utf-8")
                autograded = None
            result.timings.update(timings)
            return result, (_redacted_copy(autograded, redact) if autograded is not None else None), clean
    finally:
        shutil.rmtree(gradebook_dir, ignore_errors=True)


def _read_progress(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break  # the last line may be cut by the kill
    return records


def _result(assignment, learner, name, status, questions, flags) -> Result:
    score = sum(q.points or 0.0 for q in questions)
    max_score = sum(q.max_points for q in questions)
    return Result(assignment, learner, name, status, score, max_score, questions, flags)


def _redacted_copy(nb, redact: _Redactor):
    """The autograded notebook for the feedback page: test cells keep only their error outputs."""
    import copy

    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        if is_grade(cell) and grade_id(cell):
            cell.outputs = [o for o in cell.outputs if o.get("output_type") == "error"]
        for output in cell.outputs:
            if "text" in output:
                output["text"] = redact(
                    "".join(output["text"]) if isinstance(output["text"], list) else output["text"]
                )
            if "evalue" in output:
                output["evalue"] = redact(output["evalue"])
            data = output.get("data", {})
            if "text/plain" in data:
                value = data["text/plain"]
                data["text/plain"] = redact("".join(value) if isinstance(value, list) else value)
    return nb
