"""nbgrader settings for every nbgrader program of the course environment: the learner's JupyterLab (its
Validate button and assignment list) and the instructor's tools. `make env` copies this file into
`.venv/etc/jupyter/`; the nbgrader_config.py of a course folder (grader/, a grading run) adds to it."""

import course  # installed into the course environment by `make env`

c = get_config()  # noqa: F821 (provided by traitlets when nbgrader loads this file)

c.CourseDirectory.course_id = course.COURSE_ID
