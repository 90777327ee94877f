"""Phase 2, trusted, in OUT/course: one gradebook for the class, feedback pages, scores.

The notebooks executed in phase 1 are autograded again by nbgrader *without executing them* (Execute and
ClearOutput are not in its preprocessor lists): nbgrader restores the check cells' source from the part's
source and scores their outputs, which phase 1 made the judges' verdicts and nothing else (a ✓ line: the
points; an error: none). Then it writes each learner's feedback (HTML sanitized). Driven through nbgrader's
Python API; a feedback page that cannot be made is recorded with its error and never changes a score.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbconvert.preprocessors.sanitize import SanitizeHTML
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.apps import NbGraderAPI
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
from grader.feedback import EscapeMarkers, HideTestDetails


@dataclass
class Scored:
    score: float | None = None  # None: nbgrader could not score it
    error: str = ""  # why it could not be scored
    feedback_error: str = ""  # why its feedback page could not be made (the score stands)
    log: str = ""


# nbgrader's gradebook code trips SQLAlchemy's session warnings when driven in-process; nothing to act on.
warnings.filterwarnings("ignore", category=SAWarning, module="nbgrader")


def config(root: Path) -> Config:
    c = Config()
    c.CourseDirectory.root = str(root)
    c.CourseDirectory.course_id = course.COURSE_ID
    c.CourseDirectory.db_url = f"sqlite:///{root / 'gradebook.db'}"
    c.Autograde.create_student = True
    c.Autograde.sanitize_preprocessors = [
        DeduplicateIds,
        OverwriteKernelspec,
        OverwriteCells,
        CheckCellMetadata,
    ]
    c.Autograde.autograde_preprocessors = [
        IgnorePattern,
        ClearMetadataPreprocessor,
        LimitOutput,
        SaveAutoGrades,
        AssignLatePenalties,
        CheckCellMetadata,
    ]
    c.GenerateFeedback.preprocessors = [
        GetGrades,
        EscapeMarkers,
        ClearHiddenTests,
        HideTestDetails,
        SanitizeHTML,
        CSSHTMLHeaderPreprocessor,
    ]
    c.SanitizeHTML.enabled = True  # no scripts, no event handlers, no javascript: links, no JS outputs
    return c


def last_line(text: str) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return (lines or ["unknown error"])[-1][:300]


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
            scored.score = float(gb.find_submission(part, student_id).score)
        except MissingEntry:
            scored.error = "nbgrader recorded no score"
            return scored
    result = api.generate_feedback(part, student_id, force=True)
    scored.log += result.get("log", "")
    if not result["success"]:
        scored.feedback_error = f"no feedback page: {last_line(result.get('error', ''))}"
    return scored
