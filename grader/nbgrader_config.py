"""nbgrader configuration of the course: `solutions/` is nbgrader's source, `notebooks/` its release.

Used by `make exercises` (nbgrader generate_assignment) and, as the base configuration, by the
instructor's grading script (grader/grade.py), which points the course directory elsewhere.
"""

from pathlib import Path

c = get_config()  # noqa: F821 (provided by traitlets when nbgrader loads this file)

REPO = Path(__file__).resolve().parent.parent

c.CourseDirectory.root = str(REPO)
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"
c.CourseDirectory.course_id = "intro-pytorch"

# A learner's cell that runs longer than this is stopped (the option nbgrader honours: Execute.timeout).
c.Execute.timeout = 600
