"""nbgrader settings of the test fixture course (the instructors' course has its own).

mlsd.grading appends its own settings (kernel, time limits, preprocessors) when it
builds a temporary course, so only course-level choices belong here.
"""

c = get_config()  # noqa: F821 (provided by nbgrader when it reads this file)

c.CourseDirectory.course_id = "mlsd-demo"
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
