"""nbgrader settings of the course (read by `mlsd grade` and by nbgrader run by hand from this folder).

`mlsd.grading` copies this file into a temporary course and adds its own settings on top
(kernel `python3`, time limits, test cells restored, stderr ignored when scoring), so keep
only course-level choices here.
"""

c = get_config()  # noqa: F821 (provided by nbgrader when it reads this file)

c.CourseDirectory.course_id = "mlsd"
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
