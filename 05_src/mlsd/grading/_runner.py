"""The grading child process: ``python -m mlsd.grading._runner JOB.json``.

It runs inside a temporary nbgrader course and does what needs nbgrader:
``generate_assignment`` (gradebook and learner copy from the trusted sources), then, for an
autograde job, repairs the submission against that learner copy and runs ``autograde`` with the
course's settings plus ours (the graded kernel of ``_kernel``, in its sandbox; time and output
limits; missing cells added back). It scores nothing: the progress file written by
:class:`~mlsd.grading._preprocessors.GradingExecute` records how each cell ran and the values
its checks sent, and the grader compares those outside this process. ``outcome.json`` in the
job's work folder says whether the run completed and what the repair restored.

This process is the grader's, never the learner's: the kernel runs in its own sandbox, and the
parent kills this process (and with it the sandbox) when it overruns the notebook's time limit.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from pathlib import Path


def enforced_config(job: dict):
    """The settings that override the course's ``nbgrader_config.py``."""
    from traitlets.config import Config

    from mlsd.grading._common import KERNEL_NAME
    from mlsd.grading._limits import Limits

    c = Config()
    c.CourseDirectory.root = job["course"]
    c.CourseDirectory.db_url = job["db_url"]
    c.CourseDirectory.assignment_id = ""
    c.GenerateAssignment.create_assignment = True
    c.Autograde.create_student = True
    limits = job.get("limits") or Limits().to_dict()
    c.Execute.kernel_name = KERNEL_NAME
    kernel = job.get("kernel")
    if kernel is not None:
        c.Execute.kernel_manager_class = "mlsd.grading._kernel_manager.GradedKernelManager"
        c.GradedKernelManager.channel = kernel["channel"]
        if not kernel["sandbox"]:
            c.GradedKernelManager.workspace = kernel["workspace"]
            c.GradedKernelManager.environment_file = str(Path(kernel["root"]) / "kernel_env.json")
    c.Execute.timeout = int(limits["cell_timeout"])
    c.Execute.startup_timeout = 120
    c.Execute.interrupt_on_timeout = True
    c.Execute.raise_on_iopub_timeout = True
    c.Execute.shutdown_kernel = "immediate"
    c.GradingExecute.notebook_timeout = int(limits["notebook_timeout"])
    c.GradingExecute.progress_file = str(Path(job["work"]) / "progress.jsonl")
    c.GradingExecute.output_limit_cell = int(limits["output_kb_cell"]) * 1024
    c.GradingExecute.output_limit_notebook = int(limits["output_kb_notebook"]) * 1024
    c.OverwriteCells.add_missing_cells = True
    c.LimitOutput.max_lines = 1000
    c.LimitOutput.max_traceback = 100
    c.Autograde.autograde_preprocessors = [
        "mlsd.grading._preprocessors.GradingExecute",
        "nbgrader.preprocessors.IgnorePattern",
        "nbconvert.preprocessors.ClearMetadataPreprocessor",
        "nbgrader.preprocessors.LimitOutput",
        "mlsd.grading._preprocessors.TruncateOutputs",
        "nbgrader.preprocessors.CheckCellMetadata",
    ]
    return c


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


def _load_config(job: dict):
    from traitlets.config.loader import PyFileConfigLoader

    course = Path(job["course"])
    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    config.merge(enforced_config(job))
    return config


def _import_classes(config) -> None:
    """nbconvert accepts dotted names for preprocessors; import ours now so a typo fails early."""
    from traitlets.utils.importstring import import_item

    for name in config.Autograde.autograde_preprocessors:
        if isinstance(name, str):
            import_item(name)


def _coursedir(config, assignment: str, student: str):
    from nbgrader.coursedir import CourseDirectory

    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id = assignment
    coursedir.student_id = student
    return coursedir


def generate_assignment(job: dict, config) -> None:
    from nbgrader.converters import GenerateAssignment

    converter = GenerateAssignment(coursedir=_coursedir(config, job["assignment"], "."), config=config)
    converter.force = True
    converter.start()


def autograde(job: dict, config) -> dict:
    import nbformat
    from nbgrader.converters import Autograde

    from mlsd.grading._common import NBGRADER_STUDENT, grade_id
    from mlsd.grading._repair import read_submission, repair

    course, work = Path(job["course"]), Path(job["work"])
    name = job["notebook"]
    release = nbformat.read(course / "release" / job["assignment"] / f"{name}.ipynb", as_version=4)
    submission = read_submission(Path(job["incoming"]).read_bytes(), f"{name}.ipynb")
    if submission.notebook is None:  # the parent checks first; this is a second look
        raise ValueError(submission.problem)
    source = nbformat.read(course / "source" / job["assignment"] / f"{name}.ipynb", as_version=4)
    fixed = repair(submission.notebook, release, source)
    target = course / "submitted" / NBGRADER_STUDENT / job["assignment"] / f"{name}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(fixed.notebook, target)

    from mlsd.grading._common import is_grade, is_solution

    originals = {grade_id(c): c.source.strip() for c in release.cells if grade_id(c)}
    unanswered = [
        grade_id(c)
        for c in fixed.notebook.cells
        if is_grade(c) and is_solution(c) and c.source.strip() == originals.get(grade_id(c))
    ]

    # Nothing of the instructors' stays where a kernel without a sandbox (--no-sandbox) could read it
    # (support files stay; autograde copies them next to the notebook and needs no source notebook).
    import shutil

    for notebook in (course / "source" / job["assignment"]).glob("*.ipynb"):
        notebook.unlink()
    shutil.rmtree(course / "release", ignore_errors=True)

    (work / "phase").write_text(f"autograde {time.time()}\n")
    converter = Autograde(coursedir=_coursedir(config, job["assignment"], NBGRADER_STUDENT), config=config)
    converter.force = True
    converter.create_student = True
    converter.start()

    return {"flags": fixed.flags, "kernel_changed": fixed.kernel_changed, "unanswered": unanswered}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    job = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    work = Path(job["work"])
    handler = logging.FileHandler(work / "nbgrader.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("[%(name)s | %(levelname)s] %(message)s"))
    for name in ("traitlets", "nbgrader"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    outcome: dict = {"ok": False}
    try:
        config = _load_config(job)
        _import_classes(config)
        _patch_nbgrader()
        generate_assignment(job, config)
        if job["mode"] == "autograde":
            outcome.update(autograde(job, config))
        outcome["ok"] = True
    except BaseException as err:  # report every failure to the parent, which decides
        outcome["error"] = f"{type(err).__name__}: {err}"
        outcome["traceback"] = traceback.format_exc()
    (work / "outcome.json").write_text(json.dumps(outcome), encoding="utf-8")
    return 0 if outcome["ok"] else 1


if __name__ == "__main__":  # pragma: no cover - run as a child process
    sys.exit(main())
