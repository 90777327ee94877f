"""nbgrader configuration of the course: `solutions/` is nbgrader's source, `notebooks/` its release.

Used by `make exercises` (nbgrader generate_assignment) and, as the base configuration, by the
instructor's grading script (grader/grade.py), which points the course directory elsewhere.
"""

import course  # installed into the course environment by `make env`

c = get_config()  # noqa: F821 (provided by traitlets when nbgrader loads this file)

c.CourseDirectory.root = str(course.ROOT)
c.CourseDirectory.source_directory = course.SOLUTIONS.name
c.CourseDirectory.release_directory = course.EXERCISES.name
c.CourseDirectory.course_id = course.COURSE_ID

# A learner's cell that runs longer than this is stopped (the option nbgrader honours: Execute.timeout).
c.Execute.timeout = 600
