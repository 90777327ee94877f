"""The learner × part record: everything grading one notebook found, made whole on the worker that graded it.

A record is the unit of work of the grader. A worker executes the notebook (its kernel in the sandbox),
judges the answers, scores the verdicts with nbgrader and renders the feedback page, and returns one
:class:`Record`: status and reason, each check's points and message, nbgrader's grades and comments, the
scored notebook, the feedback page, the log, timings, and the course version, limits and protections it ran
under. The instructor's side stores it as it arrives (``OUT/records/STUDENT_ID/PART/``) and only merges
records into the class's outputs (:class:`grader.merge.Merge`, :mod:`grader.reports`,
:class:`grader.scoring.ClassGradebook`).

Only records of work that was judged are kept as results (:attr:`Record.final`): ``graded`` (also a notebook
stopped at its time limit, or whose kernel died: the learner's code did it) and ``invalid`` (not a notebook of
the part). An ``error`` is the grader's or its machines' failure (a worker lost on every try, a stale worker,
nbgrader failing): stored, so the summary names it, and graded again by the next run.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

FILES = ("notebook.ipynb", "feedback.html", "log.txt")  # beside record.json


@dataclass
class CheckResult:
    """One check of a record: its verdict and score."""

    points: float  # what nbgrader scored it (hints taken already charged)
    max_points: float
    passed: bool = False
    reached: bool = False  # the judge got to it (the notebook ran that far, and an answer came back)
    message: str = ""  # the verdict's message, or "not run: …"
    misconception: dict[str, str] = field(
        default_factory=dict
    )  # the one its judge recognised: id, name, where
    hints: int = 0  # hints of this check the notebook records as taken
    hand: bool = False  # its points are a hand grade given in formgrader (merged, never stored in the record)

    @classmethod
    def not_run(cls, max_points: float, reason: str) -> CheckResult:
        return cls(0.0, max_points, message=f"not run: {reason}")

    @classmethod
    def judged(
        cls, points: float, max_points: float, passed: bool, message: str, misconception: dict, hints: int
    ) -> CheckResult:
        reached = not message.startswith("not run")
        return cls(points, max_points, passed, reached, message, misconception, hints)


@dataclass
class Record:
    learner: str  # the learner's folder name in SUBMISSIONS
    student_id: str
    part: str
    digest: str  # what the result depends on (grader.versions.cache_key): equal digest, same result
    status: str  # graded | timed out | invalid | error
    reason: str = ""
    score: float = 0.0
    max_score: float = 0.0
    checks: dict[str, CheckResult] = field(default_factory=dict)  # grade_id → its verdict and score
    hints: dict[str, int] = field(default_factory=dict)  # grade_id → hints the notebook records as taken
    grades: dict[str, float | None] = field(default_factory=dict)  # nbgrader's auto_score of each grade cell
    comments: dict[str, str | None] = field(default_factory=dict)  # nbgrader's auto_comment of each answer
    timed_out_cells: list[int] = field(default_factory=list)
    seconds: float = 0.0  # the notebook's grading on its worker, execution and scoring
    grading_process_mb: float = 0.0  # peak memory of the trusted process the kernel's outputs went through
    worker: str = ""
    version: str = ""  # the course version it was graded with (grader.versions.course_version)
    limits: dict = field(default_factory=dict)
    protections: dict[str, str] = field(default_factory=dict)  # what was in force, in words
    graded_at: str = ""
    failures: int = 0  # grading this very submission failed so many times in a row (an error's count)
    # what travels with the record, stored beside record.json (not in it)
    notebook: bytes | None = field(default=None, repr=False)  # the scored notebook (nbgrader's autograded)
    feedback: bytes | None = field(default=None, repr=False)  # the feedback page, HTML
    log: str = field(default="", repr=False)

    @property
    def key(self) -> str:
        return f"{self.student_id}/{self.part}"

    def not_run(self, points: dict[str, float]) -> None:
        """Every check of the part (grade_id → points) as not run, for the record's reason."""
        self.checks = {g: CheckResult.not_run(maximum, self.reason) for g, maximum in points.items()}
        self.max_score = sum(points.values())

    @property
    def final(self) -> bool:
        """A result to keep: the work was judged. An error (the grader's or a machine's) is graded again."""
        return self.status in ("graded", "timed out", "invalid")


def unjudged(
    learner: str, student_id: str, part: str, digest: str, status: str, reason: str, points: dict[str, float]
) -> Record:
    """A record of a notebook no judge saw: an invalid one (every check 0, with the reason), or the grader's
    failure."""
    record = Record(learner, student_id, part, digest, status, reason)
    record.not_run(points)
    record.graded_at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    return record


def folder(out: Path, student_id: str, part: str) -> Path:
    return out / "records" / student_id / part


def save(out: Path, record: Record) -> None:
    """The record in its folder as it arrives: its files first, record.json (which makes it a record) last,
    each replaced whole."""
    where = folder(out, record.student_id, record.part)
    where.mkdir(parents=True, exist_ok=True)
    for name, data in zip(
        FILES, (record.notebook, record.feedback, record.log.encode(errors="replace")), strict=True
    ):
        target = where / name
        if data is None:
            target.unlink(missing_ok=True)
            continue
        replace_file(target, data)
    meta = {
        f.name: getattr(record, f.name)
        for f in fields(Record)
        if f.name not in ("notebook", "feedback", "log")
    }
    meta["checks"] = {grade_id: asdict(result) for grade_id, result in record.checks.items()}
    text = json.dumps(meta, indent=1, ensure_ascii=False)
    replace_file(where / "record.json", text.encode(errors="replace"))  # no lone surrogate stops a save


def replace_file(target: Path, data: bytes) -> None:
    """``target`` replaced whole by a new file with its mode (never written through: a hard link, or a file
    nbgrader left read-only, is replaced, not changed)."""
    mode = target.stat().st_mode & 0o777 if target.exists() else None
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    partial.write_bytes(data)
    if mode is not None:
        os.chmod(partial, mode)
    os.replace(partial, target)


def load(out: Path, student_id: str, part: str) -> Record | None:
    """A stored record (without its files: :func:`path` finds them), or None."""
    try:
        meta = json.loads((folder(out, student_id, part) / "record.json").read_text())
    except (OSError, ValueError):
        return None
    known = {f.name for f in fields(Record)}
    results = {f.name for f in fields(CheckResult)}
    try:
        record = Record(**{k: v for k, v in meta.items() if k in known})
        record.checks = {
            grade_id: CheckResult(**{k: v for k, v in result.items() if k in results})
            for grade_id, result in record.checks.items()
        }
    except (TypeError, AttributeError):  # a record of an older grader: graded again
        return None
    return record


def path(out: Path, record: Record, name: str) -> Path | None:
    """One of a stored record's files (notebook.ipynb, feedback.html, log.txt), or None when it has none."""
    found = folder(out, record.student_id, record.part) / name
    return found if found.is_file() else None


def stored(out: Path) -> Iterator[Record]:
    """Every record stored in OUT, in no particular order."""
    for meta in sorted((out / "records").glob("*/*/record.json")):
        record = load(out, meta.parent.parent.name, meta.parent.name)
        if record is not None:
            yield record


def link(source: Path, target: Path) -> None:
    """``target`` the same file as ``source`` (a hard link; a copy across filesystems), replacing it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    try:
        os.link(source, partial)
    except OSError:
        shutil.copyfile(source, partial)
    os.replace(partial, target)
