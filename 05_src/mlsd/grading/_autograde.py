"""Autograde one submitted notebook: sandboxed execution, comparisons outside the kernel, results.

The steps, each in its own module: read the file (``_repair.read_submission``), scan the answers
for constructs an honest answer has no use for (``_integrity``), make or load the reference values
(``_reference``), run the submission in its sandbox with a database of its own (``_execute``),
compare what its checks recorded with the reference (``_score``), and write ``results.json``,
``summary.md`` and ``feedback.html`` (``_results``, ``_feedback``).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from mlsd.errors import MLSDError
from mlsd.grading import _feedback
from mlsd.grading._common import GradingError, assignment_notebooks, clean_message, course_dir, question_specs
from mlsd.grading._execute import Execution, execute
from mlsd.grading._integrity import scan_submission
from mlsd.grading._limits import GradingOptions
from mlsd.grading._reference import reference_values
from mlsd.grading._release import cached_release
from mlsd.grading._repair import read_submission
from mlsd.grading._results import Result, ungraded
from mlsd.grading._sandbox import check_available
from mlsd.grading._score import load_checks, score_questions

__all__ = ["autograde"]


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
    if not learner or any(ch in learner for ch in "\r\n\t") or len(learner) > 100:
        raise GradingError(
            f"learner id {learner[:100]!r} is empty, too long or has line breaks: use a GitHub user name."
        )
    return learner


def _server(options: GradingOptions) -> str:
    from mlsd import db

    return db.database_url(options.database_url)


def autograde(
    assignment: str,
    notebook_path: str | os.PathLike,
    learner: str,
    *,
    out_dir: str | os.PathLike,
    options: GradingOptions | None = None,
    course: str | os.PathLike | None = None,
    extra_flags: Sequence[str] = (),
    _kill_after: float | None = None,
) -> Result:
    """Grade one submitted notebook and write ``results.json``, ``summary.md`` and ``feedback.html``.

    The notebook runs in a sandbox (see :mod:`mlsd.grading._sandbox`) against a database of its
    own; its test cells record values, and the grader compares them, outside any process learner
    code touched, with what the instructors' reference solution records on the same inputs. Deleted,
    edited, duplicated or re-typed test and read-only cells and a changed kernel are restored and
    flagged; answer code that tries to reach the grader is flagged for a human (``review: required``).

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
    options : GradingOptions, optional
        Limits, sandbox, database server, kernel settings, grading seed, reference cache.
    course : path-like, optional
        The nbgrader course (default :func:`~mlsd.grading.course_dir`).
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
    SandboxUnavailable
        When no sandbox can be built here and ``options.sandbox`` is true (the message says where
        grading runs).

    Examples
    --------
    >>> result = autograde("assignment_1", "assignment_1.ipynb", "octocat", out_dir="out")  # doctest: +SKIP
    >>> result.score, result.max_score  # doctest: +SKIP
    (80, 100)
    """
    import nbformat

    options = options or GradingOptions()
    course = Path(course) if course is not None else course_dir()
    notebooks = assignment_notebooks(course, assignment)
    path = Path(notebook_path)
    target, flags = _target_notebook(notebooks, path.name, assignment)
    learner = _check_learner(learner)
    if options.sandbox:
        check_available()
    source_nb = nbformat.read(target, as_version=4)
    specs = question_specs(source_nb)
    checks = load_checks(course, assignment)
    out = Path(out_dir)
    started = time.perf_counter()
    sandbox = "bubblewrap" if options.sandbox else "none"

    def finish(result: Result) -> Result:
        result.flags = flags + result.flags + list(extra_flags)
        result.sandbox = sandbox
        result.timings["total"] = time.perf_counter() - started
        result.write(out, _feedback.render(result))
        return result

    if path.is_symlink() or not path.is_file():
        if path.is_symlink():
            return finish(
                ungraded(
                    assignment,
                    learner,
                    target.name,
                    "invalid",
                    specs,
                    "the submission is a symbolic link, not a notebook file",
                )
            )
        return finish(
            ungraded(
                assignment,
                learner,
                target.name,
                "missing",
                specs,
                f"no notebook was submitted (expected {target.name})",
            )
        )
    data = path.read_bytes()
    submission = read_submission(data, path.name)
    if submission.notebook is None:
        return finish(ungraded(assignment, learner, target.name, "invalid", specs, submission.problem or ""))
    review = scan_submission(submission.notebook, source_nb)
    try:
        server = _server(options)
        env = options.kernel_env()
        release_dir = cached_release(course, assignment, options.cache_dir())
        reference = reference_values(
            course,
            assignment,
            target,
            checks=checks,
            limits=options.limits,
            sandbox=options.sandbox,
            server_url=server,
            env=env,
            seed=options.seed,
            cache_dir=options.cache_dir(),
            release_dir=release_dir,
            progress=options.progress,
        )
        with tempfile.TemporaryDirectory(prefix="mlsd-submission-") as folder:
            converted = Path(folder) / target.name
            nbformat.write(submission.notebook, converted)  # the notebook as read (old formats converted)
            execution = execute(
                course,
                assignment,
                target.name,
                converted,
                limits=options.limits,
                sandbox=options.sandbox,
                server_url=server,
                release_dir=release_dir,
                env={**env, "MLSD_GRADING_SEED": str(options.seed)},
                tables=checks.tables(),
                kill_after=_kill_after,
                progress=options.progress,
            )
    except GradingError:
        raise  # bad input, or a reference that fails its own checks: the instructors must act
    except MLSDError as err:  # the database server, mostly: no database, no grading
        message = clean_message(str(err))
        return finish(ungraded(assignment, learner, target.name, "error", specs, f"not graded: {message}"))
    result = _result(
        assignment, learner, target.name, specs, execution, reference, checks, options, source_nb, out
    )
    result.review = review
    return finish(result)


def _result(
    assignment, learner, name, specs, execution: Execution, reference, checks, options, source_nb, out
) -> Result:
    clean = _cleaner(execution.replace)
    if execution.status != "ran":
        message = clean(f"not graded: the grader failed ({execution.error}); see grader.log")
        result = ungraded(assignment, learner, name, "error", specs, message)
        result.flags = list(execution.flags)
        out.mkdir(parents=True, exist_ok=True)
        (out / "grader.log").write_text(clean(execution.log, limit=10**7), encoding="utf-8")
        return result
    questions = score_questions(specs, execution, reference, checks, options.limits, source_nb)
    flags = list(execution.flags)
    if execution.killed:
        flags.append(
            f"the grader stopped the notebook {execution.kill_after:g} s after autograde started: "
            "it overran its limit"
        )
    flags += _output_flags(execution, options)
    score = sum(q.points or 0.0 for q in questions)
    max_score = sum(q.max_points for q in questions)
    result = Result(assignment, learner, name, "graded", score, max_score, questions, flags)
    result.timings.update(execution.timings)
    result.autograded = execution.autograded
    return result


def _output_flags(execution: Execution, options: GradingOptions) -> list[str]:
    flags = []
    dropped = {c["index"]: c["dropped_output"] for c in execution.cells if c.get("dropped_output")}
    if dropped:
        cells = ", ".join(str(i + 1) for i in sorted(dropped)[:10])
        total = sum(dropped.values())
        flags.append(
            f"output beyond {options.limits.describe('output_kb_cell')} or "
            f"{options.limits.describe('output_kb_notebook')} was dropped ({total:,} bytes, cells {cells})"
        )
    return flags


def _cleaner(replace: dict[str, str]):
    def clean(text, limit: int = 500) -> str:
        return clean_message(str(text), replace=replace, limit=limit)

    return clean
