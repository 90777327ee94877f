"""The merge (grader/merge.py) between runs, on records made here (nothing executed): hand grades given in
formgrader survive a part that is not graded for a run and a learner who leaves and comes back, and a
resubmission over them is named; a changed part's source, formgrader's read-only files and a name that changes
stop nothing; a record graded again (--force) is what every output shows."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

import course
from grader import intake, merge, records, sources
from grader.intake import Intake, Learner, Submission
from grader.records import CheckResult, Record

PART = course.PARTS[0].name
CHECK = next(iter(sources.checks_points(PART)))
ANSWER = next(g for g, c in sources.tracked_cells(PART).items() if c.metadata["nbgrader"].get("solution"))


@pytest.fixture(autouse=True)
def _course_tools(monkeypatch):
    # nbgrader runs alembic from PATH, as grader/cli.py arranges
    monkeypatch.setenv("PATH", f"{Path(os.sys.executable).parent}{os.pathsep}{os.environ['PATH']}")


def _record(
    name: str, digest: str, page: bytes | None = b"<html>its own page</html>", part_sources=course.SOLUTIONS
) -> Record:
    points = sources.checks_points(PART, part_sources)
    record = Record(name, intake.student_id(name), PART, digest, "graded")
    record.checks = {g: CheckResult(p, p, True, True, "ok") for g, p in points.items()}
    record.grades = dict(points)
    record.score = record.max_score = sum(points.values())
    record.notebook = nbformat.writes(sources.exercise_source(PART, part_sources)).encode()
    record.feedback = page
    return record


def _run(out: Path, class_: dict[str, Record | None], arrived=(), drop=False, part_sources=course.SOLUTIONS):
    """One merge as a run ends it: ``class_`` learner → their record (None: their folder is there, their part
    is not), ``arrived`` the records this run graded."""
    learners = [Learner(n.encode(), n, intake.student_id(n)) for n in class_]
    taken = Intake("flat", learners, [])
    for name, record in class_.items():
        if record is not None:
            records.save(out, record)
            taken.submissions.append(Submission(name, record.student_id, PART, b"{}", digest=record.digest))
    with merge.Merge(out, part_sources, {PART}, drop_hand=drop) as merging:
        for record in arrived:
            merging.add(record, arrived=True)
        return merging.finish(taken, len(arrived)), merging


def _hand(out: Path, name: str, points: float | None = 0.5, comment: str | None = "see me") -> None:
    with Gradebook(f"sqlite:///{out / 'course' / 'gradebook.db'}", course.COURSE_ID) as gb:
        gb.find_grade(CHECK, PART, PART, intake.student_id(name)).manual_score = points
        gb.find_comment(ANSWER, PART, PART, intake.student_id(name)).manual_comment = comment
        gb.db.commit()


def _hands(out: Path) -> dict:
    from grader.scoring import ClassGradebook

    with ClassGradebook(out / "course") as book:
        return book.hand_grades()


def test_hand_grades_survive_a_run_without_the_part_and_come_back_named_over_a_resubmission(tmp_path):
    out = tmp_path / "out"
    first = _record("alice", "d1")
    _run(out, {"alice": first, "bob": _record("bob", "d1")}, arrived=[first])
    _hand(out, "alice")
    summary, _ = _run(out, {"alice": first, "bob": _record("bob", "d1")})
    assert "Hand grades and comments given in formgrader: 1 notebook(s)" in summary
    lost = records.unjudged("alice", first.student_id, PART, "d2", "error", "a worker lost", {})
    summary, _ = _run(out, {"alice": lost, "bob": _record("bob", "d1")}, arrived=[lost])
    assert not _hands(out) and "Hand grades kept aside" in summary  # out of the gradebook, not lost
    again = _record("alice", "d2")
    summary, merging = _run(out, {"alice": again, "bob": _record("bob", "d1")}, arrived=[again])
    assert list(_hands(out).values()) == [{"grades": {CHECK: 0.5}, "comments": {ANSWER: "see me"}}]
    assert merging.over_hand == ["alice / 01_tensors"] and "a resubmission): 1, kept" in summary
    _hand(out, "bob")
    _run(out, {"alice": again})  # bob's folder gone for a run
    summary, _ = _run(out, {"alice": again, "bob": _record("bob", "d1")})
    assert len(_hands(out)) == 2 and "a resubmission): 0" in summary  # back, the same notebook: not named


def test_a_changed_source_read_only_files_and_a_new_name_stop_nothing(tmp_path):
    out = tmp_path / "out"
    alice = _record("alice", "d1")
    _run(out, {"alice": alice}, arrived=[alice])
    _hand(out, "alice")
    for step in ("submitted", "autograded"):  # as formgrader's Autograde leaves them
        for path in (out / "course" / step).rglob("*"):
            if path.is_file():
                path.chmod(0o444)
    changed = tmp_path / "source"  # one check fewer, as an instructor's --source or a course update
    shutil.copytree(course.SOLUTIONS, changed)
    nb = nbformat.read(changed / PART / f"{PART}.ipynb", as_version=4)
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != CHECK]
    nbformat.write(nb, changed / PART / f"{PART}.ipynb")
    again = _record("alice", "d2", part_sources=changed)
    _, merging = _run(out, {"alice": again}, arrived=[again], part_sources=changed)
    assert not merging.trouble, merging.trouble
    assert "see me" in (out / "feedback" / "alice" / f"{PART}.html").read_text()  # the comment came back
    renamed = Record(**{**vars(again), "learner": "Alice"})  # a name shown otherwise: nothing graded again
    _, merging = _run(out, {"Alice": renamed}, part_sources=changed)
    assert not merging.trouble and not merging.over_hand
    assert (out / "feedback" / "Alice" / f"{PART}.html").exists()
    assert not (out / "feedback" / "alice").exists()


def test_a_record_graded_again_is_what_every_output_shows(tmp_path):
    out = tmp_path / "out"
    old = _record("alice", "d1", b"<html>OLD page</html>")
    _run(out, {"alice": old}, arrived=[old])
    new = _record("alice", "d1", b"<html>NEW page</html>")  # --force: the same submission, graded again
    _run(out, {"alice": new}, arrived=[new])
    assert (out / "feedback" / "alice" / f"{PART}.html").read_bytes() == b"<html>NEW page</html>"
    no_page = _record("bob", "d1", page=None)
    _run(out, {"alice": new, "bob": _record("bob", "d0")}, arrived=[_record("bob", "d0")])
    _run(out, {"alice": new, "bob": no_page}, arrived=[Record(**{**vars(no_page), "digest": "d2"})])
    assert not (out / "feedback" / "bob" / f"{PART}.html").exists()  # not the earlier submission's page
