"""The grading child process: ``python -m mlsd.grading._runner JOB.json``.

Two kinds of job:

- ``release`` and ``register`` run nbgrader's ``generate_assignment`` (the learner copy and the
  gradebook entry from the trusted sources) in the job's course;
- ``execute`` grades one notebook without nbgrader: it repairs the submission against the learner
  copy (restoring every test and read-only cell, hidden tests from the instructors' source included),
  then runs it with :class:`~mlsd.grading._executor.GradingExecutor` in the graded kernel (see
  ``_kernel``: its sandbox, its limits). It scores nothing: the progress file records how each
  cell ran and the values its checks sent, and the grader compares them outside this process.

``outcome.json`` in the job's work folder says whether the job completed and what the repair
restored; ``autograded.ipynb`` is the executed notebook (for formgrader). This process is the
grader's, never the learner's: the kernel runs in its own sandbox, and the parent kills this
process (and with it the sandbox) when it overruns the notebook's time limit.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from pathlib import Path


def alembic_head() -> str:
    """The gradebook schema's alembic revision, computed in this process.

    nbgrader 0.9 runs the ``alembic`` command in a subprocess for every new gradebook, which costs
    a second Python start-up (seconds on a busy runner) and needs ``alembic`` on ``PATH``.
    """
    import nbgrader
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

    config = AlembicConfig()
    config.set_main_option("script_location", str(Path(nbgrader.__file__).parent / "alembic"))
    return ScriptDirectory.from_config(config).get_current_head()


def _patch_nbgrader() -> None:
    import nbgrader.api

    nbgrader.api.get_alembic_version = alembic_head


# -- release and register: nbgrader's generate_assignment -----------------------------------------


def _nbgrader_config(job: dict):
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    course = Path(job["course"])
    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    enforced = Config()
    enforced.CourseDirectory.root = job["course"]
    enforced.CourseDirectory.db_url = job["db_url"]
    enforced.CourseDirectory.assignment_id = ""
    enforced.GenerateAssignment.create_assignment = True
    config.merge(enforced)
    return config


def generate_assignment(job: dict) -> None:
    from nbgrader.converters import GenerateAssignment
    from nbgrader.coursedir import CourseDirectory

    _patch_nbgrader()
    config = _nbgrader_config(job)
    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id = job["assignment"]
    coursedir.student_id = "."
    converter = GenerateAssignment(coursedir=coursedir, config=config)
    converter.force = True
    converter.start()


# -- execute: one graded run ----------------------------------------------------------------------


def _full_tests(nb, source) -> None:
    """Give every test and read-only cell the instructors' own text (hidden tests included)."""
    from mlsd.grading._common import grade_id, is_locked

    originals = {grade_id(c): c for c in source.cells if grade_id(c)}
    for cell in nb.cells:
        original = originals.get(grade_id(cell))
        if original is not None and is_locked(original) and cell.cell_type == original.cell_type:
            cell.source = original.source


def execute(job: dict) -> dict:
    import nbformat
    from traitlets.config import Config

    from mlsd.grading._common import KERNEL_NAME, grade_id, is_grade, is_solution
    from mlsd.grading._executor import GradingExecutor
    from mlsd.grading._kernel_manager import GradedKernelManager
    from mlsd.grading._repair import read_submission, repair

    work = Path(job["work"])
    release = nbformat.read(job["release"], as_version=4)
    source = nbformat.read(job["source"], as_version=4)
    submission = read_submission(Path(job["incoming"]).read_bytes(), Path(job["incoming"]).name)
    if submission.notebook is None:  # the parent checks first; this is a second look
        raise ValueError(submission.problem)
    fixed = repair(submission.notebook, release, source)
    originals = {grade_id(c): c.source.strip() for c in release.cells if grade_id(c)}
    unanswered = [
        grade_id(c)
        for c in fixed.notebook.cells
        if is_grade(c) and is_solution(c) and c.source.strip() == originals.get(grade_id(c))
    ]
    nb = fixed.notebook
    _full_tests(nb, source)

    limits, kernel = job["limits"], job["kernel"]
    config = Config()
    config.GradedKernelManager.channel = kernel["channel"]
    if not kernel["sandbox"]:
        config.GradedKernelManager.workspace = kernel["workspace"]
        config.GradedKernelManager.environment_file = str(Path(kernel["root"]) / "kernel_env.json")
    executor = GradingExecutor(
        nb,
        config=config,
        kernel_name=KERNEL_NAME,
        kernel_manager_class=GradedKernelManager,
        timeout=int(limits["cell_timeout"]),
        notebook_timeout=int(limits["notebook_timeout"]),
        output_limit_cell=int(limits["output_kb_cell"]) * 1024,
        output_limit_notebook=int(limits["output_kb_notebook"]) * 1024,
        progress_file=str(work / "progress.jsonl"),
        startup_timeout=120,
        interrupt_on_timeout=True,
        raise_on_iopub_timeout=True,
        allow_errors=True,
        shutdown_kernel="immediate",
        extra_arguments=["--HistoryManager.hist_file=:memory:", "--IPKernelApp.log_level=ERROR"],
        resources={"metadata": {"path": kernel["workspace"]}},
    )
    (work / "phase").write_text(f"execute {time.time()}\n")
    executor.grade()
    nbformat.write(nb, work / "autograded.ipynb")
    return {"flags": fixed.flags, "kernel_changed": fixed.kernel_changed, "unanswered": unanswered}


def main(argv: list[str] | None = None) -> int:
    from mlsd._startup import skip_slow_imports

    skip_slow_imports()
    argv = sys.argv[1:] if argv is None else argv
    job = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    work = Path(job["work"])
    handler = logging.FileHandler(work / "nbgrader.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("[%(name)s | %(levelname)s] %(message)s"))
    for name in ("traitlets", "nbgrader", "nbclient"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    outcome: dict = {"ok": False}
    try:
        if job["mode"] == "execute":
            outcome.update(execute(job))
        else:
            generate_assignment(job)
        outcome["ok"] = True
    except BaseException as err:  # report every failure to the parent, which decides
        outcome["error"] = f"{type(err).__name__}: {err}"
        outcome["traceback"] = traceback.format_exc()
    (work / "outcome.json").write_text(json.dumps(outcome), encoding="utf-8")
    return 0 if outcome["ok"] else 1


if __name__ == "__main__":  # pragma: no cover - run as a child process
    sys.exit(main())
