"""Grading: release the learner copies, autograde notebooks, pull requests and cohorts, final grades.

The instructors' nbgrader course lives in ``03_instructional_team/nbgrader`` (:func:`course_dir`):
``source/<assignment>/<notebook>.ipynb`` with solutions and hidden tests, support files next to
them, and ``nbgrader_config.py``. :func:`release` writes the learner copies into
``02_activities/assignments/``. :func:`autograde` grades one notebook in a fresh, temporary nbgrader
course (never in the learner's checkout) and writes ``results.json``, ``summary.md`` and
``feedback.html``; :func:`grade_pr` and :func:`grade_cohort` grade many. :func:`final_grades` applies
the syllabus' policy to the quiz and assignment marks.

Importing this package does no work; nbgrader itself runs in a child process.
"""

from mlsd.grading._autograde import autograde
from mlsd.grading._common import (
    GradingError,
    assignments_dir,
    branch_name,
    course_dir,
    list_assignments,
)
from mlsd.grading._final import final_grades, write_final
from mlsd.grading._limits import GradingOptions, Limits
from mlsd.grading._many import changed_files, grade_cohort, grade_pr
from mlsd.grading._release import ReleaseWarning, release
from mlsd.grading._results import Question, Result, Review
from mlsd.grading._sandbox import SandboxUnavailable

__all__ = [
    "GradingError",
    "GradingOptions",
    "Limits",
    "Question",
    "ReleaseWarning",
    "Result",
    "Review",
    "SandboxUnavailable",
    "assignments_dir",
    "autograde",
    "branch_name",
    "changed_files",
    "course_dir",
    "final_grades",
    "grade_cohort",
    "grade_pr",
    "list_assignments",
    "release",
    "write_final",
]
