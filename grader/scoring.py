"""Scores with nbgrader, trusted: on the worker, each notebook's; on the instructor's side, the gradebook.

On the worker (:func:`score`), in the notebook's scratch course: the notebook executed and judged there is
autograded again by nbgrader *without executing it* (Execute and ClearOutput are not in its preprocessor
lists): nbgrader restores the check cells' source from the part's source and scores their outputs, which the
worker made the judges' verdicts and nothing else (a ✓ line: the points; an error: none). The graded
notebook nbgrader leaves (which formgrader shows the instructor) is then made safe to open, and the learner's
feedback page rendered from it and sanitized after rendering, with a Content-Security-Policy
(:mod:`grader.feedback`). A feedback page that cannot be made is recorded with its error and never changes a
score.

On the instructor's side (:func:`merge`), in OUT/course: the records' grades and comments into the class's
gradebook, through nbgrader's API, so that formgrader opens it as one it made itself.
"""

from __future__ import annotations

import contextlib
import datetime
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.apps import NbGraderAPI
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import (
    AssignLatePenalties,
    CheckCellMetadata,
    ClearHiddenTests,
    DeduplicateIds,
    GetGrades,
    IgnorePattern,
    LimitOutput,
    OverwriteCells,
    OverwriteKernelspec,
    SaveAutoGrades,
)
from sqlalchemy.exc import SAWarning
from traitlets.config import Config

import course
from grader import feedback
from grader.escape import csv_cell
from grader.feedback import EscapeMarkers, HideTestDetails


@dataclass
class Scored:
    score: float | None = None  # None: nbgrader could not score it
    max_score: float = 0.0
    error: str = ""  # why it could not be scored
    feedback_error: str = ""  # why its feedback page could not be made (the score stands)
    log: str = ""
    grades: dict[str, float | None] = field(default_factory=dict)  # grade cell → nbgrader's auto_score
    comments: dict[str, str | None] = field(default_factory=dict)  # answer cell → nbgrader's auto_comment


# nbgrader's gradebook code trips SQLAlchemy's session warnings when driven in-process; nothing to act on.
warnings.filterwarnings("ignore", category=SAWarning, module="nbgrader")


def _name(kind: type) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


def settings(root: Path) -> dict:
    """nbgrader's configuration of a course folder at ``root``, as data (what OUT/course/nbgrader_config.json
    holds for formgrader, :mod:`grader.formgrader`): scoring that executes nothing (the verdicts already in
    the notebook are scored: formgrader's *Autograde* button scores them again, never runs a learner's cell),
    and feedback pages through the course's preprocessors and :class:`grader.feedback.SafeFeedbackExporter`,
    which cleans each page as it is written. No SanitizeHTML: it cleans markdown *source*, which still renders
    to live links and remote images; the graded notebook and the rendered page are cleaned instead."""
    return {
        "CourseDirectory": {
            "root": str(root),
            "course_id": course.COURSE_ID,
            "db_url": f"sqlite:///{root / 'gradebook.db'}",
        },
        "Autograde": {
            "create_student": True,
            "sanitize_preprocessors": [
                _name(p) for p in (DeduplicateIds, OverwriteKernelspec, OverwriteCells, CheckCellMetadata)
            ],
            "autograde_preprocessors": [
                _name(p)
                for p in (
                    IgnorePattern,
                    ClearMetadataPreprocessor,
                    LimitOutput,
                    SaveAutoGrades,
                    AssignLatePenalties,
                    CheckCellMetadata,
                )
            ],
        },
        "GenerateFeedback": {
            "preprocessors": [
                _name(p)
                for p in (
                    GetGrades,
                    EscapeMarkers,
                    ClearHiddenTests,
                    HideTestDetails,
                    CSSHTMLHeaderPreprocessor,
                )
            ],
            "exporter_class": _name(feedback.SafeFeedbackExporter),
        },
    }


def config(root: Path) -> Config:
    return Config(settings(root))


def last_line(text: str) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return (lines or ["unknown error"])[-1][:300]


def empty_gradebook(path: Path) -> None:
    """A new gradebook of the course at ``path``, with no assignment: nbgrader's tables, stamped with its
    schema's version, which nbgrader's ``Gradebook`` learns for each new gradebook by running the command
    ``alembic heads`` (a Python start-up: 2.5 s of CPU here); alembic's own API reads it in this process
    (0.15 s). ``Gradebook`` then opens it as one it made and adds the course."""
    from alembic.script import ScriptDirectory
    from nbgrader.api import Base
    from nbgrader.dbutil import ALEMBIC_DIR
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{path}")
    try:
        Base.metadata.create_all(bind=engine)
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
            connection.execute(
                text("INSERT INTO alembic_version (version_num) VALUES (:head)"),
                {"head": ScriptDirectory(ALEMBIC_DIR).get_current_head()},
            )
    finally:
        engine.dispose()
    with Gradebook(f"sqlite:///{path}", course.COURSE_ID):
        pass


def generate(root: Path, parts: list[str]) -> None:
    """The parts' sources (solutions cleared, tests kept) into the class gradebook."""
    api = NbGraderAPI(config=config(root))
    for part in parts:
        result = api.generate_assignment(part, force=True, create=True)
        if not result["success"]:
            raise RuntimeError(f"nbgrader could not prepare {part}:\n{result.get('log', '')[-3000:]}")


def score(root: Path, part: str, student_id: str) -> Scored:
    api = NbGraderAPI(config=config(root))
    result = api.autograde(part, student_id, force=True, create=True)
    scored = Scored(log=result.get("log", ""))
    if not result["success"]:
        scored.error = f"nbgrader could not score it: {last_line(result.get('error', ''))}"
        return scored
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", course.COURSE_ID) as gb:
        try:
            submission = gb.find_submission(part, student_id)
        except MissingEntry:
            scored.error = "nbgrader recorded no score"
            return scored
        scored.score, scored.max_score = float(submission.score), float(submission.max_score)
        for notebook in submission.notebooks:
            scored.grades.update({g.name: g.auto_score for g in notebook.grades})
            scored.comments.update({c.name: c.auto_comment for c in notebook.comments})
    try:  # the graded notebook formgrader will show, and the feedback's source: nothing active left in it
        feedback.make_notebook_safe(path(root, "autograded", student_id, part))
    except Exception as error:  # fail closed: no score without a notebook safe to open (graded again)
        scored.score, scored.error = (
            None,
            f"the graded notebook could not be made safe to open: {error!r}"[:300],
        )
        return scored
    result = api.generate_feedback(part, student_id, force=True)
    scored.log += result.get("log", "")
    if not result["success"]:
        scored.feedback_error = f"no feedback page: {last_line(result.get('error', ''))}"
    return scored  # the page was cleaned as it was written (feedback.SafeFeedbackExporter)


def _hand(submission) -> dict[str, dict]:
    grades, comments = {}, {}
    for notebook in submission.notebooks:
        grades |= {g.name: float(g.manual_score) for g in notebook.grades if g.manual_score is not None}
        comments |= {c.name: c.manual_comment for c in notebook.comments if c.manual_comment}
    return {"grades": grades, "comments": comments} if grades or comments else {}


def path(root: Path, step: str, student_id: str, part: str, suffix: str = ".ipynb") -> Path:
    """A learner's file of a part at one of nbgrader's steps (submitted, autograded, feedback), laid out as
    nbgrader lays it out."""
    layout = CourseDirectory(root=str(root))
    return Path(layout.format_path(step, student_id, part)) / f"{part}{suffix}"


class ClassGradebook:
    """The class's gradebook (``root/gradebook.db``), open for a whole run: each record's grades and comments
    put in as it arrives (:meth:`add`), submissions taken out (:meth:`remove`), all through nbgrader's API, so
    that formgrader opens it as one it made itself. A submission is made as nbgrader's autograde makes one
    (every grade and comment of the part), then given the record's auto scores and comments; a grade an
    instructor gave by hand in formgrader is kept, and marked for review, as nbgrader does."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __enter__(self) -> ClassGradebook:
        from sqlalchemy import text

        self.gb = Gradebook(f"sqlite:///{self.root / 'gradebook.db'}", course.COURSE_ID)
        self.gb.db.execute(text("PRAGMA synchronous = OFF"))  # one file, made again from the records if lost
        # nbgrader's API commits after every call, and a commit would expire every object the session holds
        # (each next record loading the part's cells again): not here, where this is the only writer.
        self.gb.db().expire_on_commit = False
        self.students = {s.id for s in self.gb.students}
        return self

    def __exit__(self, *exc) -> None:
        self.gb.db.commit()
        self.gb.close()

    def add(self, record, timestamp: datetime.datetime | None = None, drop_hand: bool = False) -> bool:
        """The record's scores and comments as the submission's automatic ones (its learner named by their
        folder, the submission timed by its file). A hand grade or comment already there (given in formgrader
        to the notebook this record replaces) is kept and marked for review, as nbgrader does, or, with
        ``drop_hand``, dropped; returns whether there was one."""
        self.name(record.student_id, record.learner)
        try:
            submission = self.gb.find_submission(record.part, record.student_id)
        except MissingEntry:
            submission = self.gb.add_submission(record.part, record.student_id)
        if timestamp is not None:
            submission.timestamp = timestamp
        had_hand = False
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                had_hand |= grade.manual_score is not None
                if drop_hand:
                    grade.manual_score = None
                grade.auto_score = record.grades.get(grade.name, 0.0)
                grade.needs_manual_grade = grade.manual_score is not None or grade.auto_score is None
            for comment in notebook.comments:
                had_hand |= bool(comment.manual_comment)
                if drop_hand:
                    comment.manual_comment = None
                comment.auto_comment = record.comments.get(comment.name)
        self.gb.db.commit()
        return had_hand

    def name(self, student_id: str, name: str) -> None:
        """The learner in the gradebook, by their folder's name (as formgrader lists them)."""
        shown = csv_cell(name)[:128]  # nbgrader's own exports write it into CSV files
        if student_id not in self.students:
            self.gb.add_student(student_id, first_name=shown, last_name="")
            self.students.add(student_id)
        else:
            student = self.gb.find_student(student_id)
            if student.first_name != shown:
                student.first_name = shown

    def hand_grades(self) -> dict[str, dict[str, dict]]:
        """Every hand grade and comment given in formgrader: ``STUDENT_ID/PART`` → ``{"grades": {grade id:
        points}, "comments": {cell: text}}`` (only the submissions that have one)."""
        found: dict[str, dict[str, dict]] = {}
        for assignment in self.gb.assignments:
            for submission in assignment.submissions:
                given = _hand(submission)
                if given:
                    found[f"{submission.student.id}/{assignment.name}"] = given
        return found

    def hand_grades_of(self, student_id: str, part: str) -> dict[str, dict]:
        """One submission's hand grades and comments ({} when it has none, or is not in the gradebook)."""
        try:
            return _hand(self.gb.find_submission(part, student_id))
        except MissingEntry:
            return {}

    def restore_hand(self, student_id: str, part: str, given: dict) -> None:
        """Hand grades and comments kept aside put back on the submission (those of cells it still has)."""
        submission = self.gb.find_submission(part, student_id)
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                if grade.name in given.get("grades", {}):
                    grade.manual_score = given["grades"][grade.name]
                    grade.needs_manual_grade = True
            for comment in notebook.comments:
                if given.get("comments", {}).get(comment.name):
                    comment.manual_comment = given["comments"][comment.name]
        self.gb.db.commit()

    def remove(self, student_id: str, part: str) -> None:
        with contextlib.suppress(MissingEntry):
            self.gb.remove_submission(part, student_id)
