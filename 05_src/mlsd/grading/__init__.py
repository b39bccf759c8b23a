"""Grading: release the learner copies, autograde notebooks, pull requests and cohorts, final grades.

The instructors' nbgrader course lives in ``03_instructional_team/nbgrader`` (:func:`course_dir`):
``source/<assignment>/<notebook>.ipynb`` with solutions and hidden tests, support files next to
them, and ``nbgrader_config.py``. :func:`release` writes the learner copies into
``02_activities/assignments/``. :func:`check_notebook` runs a learner's visible checks on their own
computer. :func:`autograde` grades one notebook: learner code runs in a sandbox (``_sandbox``), its
test cells record values (:mod:`~mlsd.grading.extraction`) that the grader compares, outside any
process learner code touched, with the reference solution's (:mod:`~mlsd.grading.checks`); it writes
``results.json``, ``summary.md`` and ``feedback.html``. At the deadline, :func:`collect` fetches the
forks' notebooks, :func:`grade_cohort` grades them into the persistent nbgrader course that
formgrader shows, :func:`decide` and :func:`write_feedback` close the loop and :func:`final_grades`
applies the syllabus' policy.

Importing this package does no work; nbgrader and the kernels run in child processes.
"""

from mlsd.grading._autograde import autograde
from mlsd.grading._check import HIDDEN_NOTE, CheckRow, check_notebook, write_check
from mlsd.grading._collect import Collected, collect, read_roster
from mlsd.grading._common import (
    GradingError,
    assignments_dir,
    branch_name,
    course_dir,
    list_assignments,
)
from mlsd.grading._final import final_grades, write_final
from mlsd.grading._github import post_feedback
from mlsd.grading._gradebook import (
    Decision,
    decide,
    record_result,
    register_assignment,
    repositories,
    write_decisions,
    write_feedback,
)
from mlsd.grading._limits import GradingOptions, Limits
from mlsd.grading._many import changed_files, grade_cohort, grade_pr
from mlsd.grading._release import ReleaseWarning, release
from mlsd.grading._results import Question, Result, Review
from mlsd.grading._sandbox import SandboxUnavailable

__all__ = [
    "assignments_dir",
    "autograde",
    "branch_name",
    "changed_files",
    "check_notebook",
    "CheckRow",
    "collect",
    "Collected",
    "course_dir",
    "decide",
    "Decision",
    "final_grades",
    "grade_cohort",
    "grade_pr",
    "GradingError",
    "GradingOptions",
    "HIDDEN_NOTE",
    "Limits",
    "list_assignments",
    "post_feedback",
    "Question",
    "read_roster",
    "record_result",
    "register_assignment",
    "release",
    "ReleaseWarning",
    "repositories",
    "Result",
    "Review",
    "SandboxUnavailable",
    "write_check",
    "write_decisions",
    "write_feedback",
    "write_final",
]
