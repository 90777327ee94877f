"""The intake (grader/intake.py): a learner's folder read like an archive from a stranger, and each notebook
admitted as nbgrader should grade it or refused with a reason that quotes nothing; and the judges' own limits
(grader/grading.py, judge_bounded). Fast: nothing is executed, every file is made here."""

from __future__ import annotations

import json
import os
import resource
import sys
from pathlib import Path

import nbformat
import pytest

import checks
import course
from grader import grading, intake, verdicts
from grader.escape import printable

PART = course.PARTS[0].name
SOLUTION = course.PARTS[0].solution


def _put(root: Path, learner: str | bytes, data: bytes | None = None, name: str = f"{PART}.ipynb") -> Path:
    folder = Path(os.fsdecode(os.path.join(os.fsencode(root), os.fsencode(learner))))
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(SOLUTION.read_bytes() if data is None else data)
    return target


def _by_name(taken: intake.Intake) -> dict[str, intake.Learner]:
    return {learner.name: learner for learner in taken.learners}


def _reasons(taken: intake.Intake) -> dict[str, str]:
    """learner → why their Part 1 is not graded ('' when it is admitted)."""
    return {s.learner: intake.admit(s)[1] for s in taken.submissions}


def test_links_are_never_followed_and_nothing_they_point_at_is_read(tmp_path):
    root, secret = tmp_path / "submissions", tmp_path / "secret.key"
    secret.write_text("SECRET-0123456789abcdef")
    classmate = _put(root, "classmate")
    _put(root, "copier", b"").unlink()
    (root / "copier" / f"{PART}.ipynb").symlink_to(classmate)  # a classmate's notebook, linked
    _put(root, "leaker", b"").unlink()
    (root / "leaker" / f"{PART}.ipynb").symlink_to(secret)  # a file of the instructor's
    (root / "solution thief").mkdir()
    (root / "solution thief" / PART).symlink_to(SOLUTION.parent)  # a folder of the checkout
    (root / "whole folder").symlink_to(root / "classmate")  # a learner folder that is a link
    _put(root, "fifo", b"").unlink()
    os.mkfifo(root / "fifo" / f"{PART}.ipynb")  # would block a reader for ever
    taken = intake.take_in(root)
    reasons = _reasons(taken)
    assert reasons["classmate"] == ""
    assert "is a symbolic link" in reasons["copier"] and "is a symbolic link" in reasons["leaker"]
    assert reasons["fifo"] == f"{PART}.ipynb is not a regular file"
    assert "solution thief" not in reasons  # its part folder is a link: not followed, nothing found
    assert any("symbolic link, not followed" in i for i in _by_name(taken)["solution thief"].ignored)
    assert "symbolic link" in _by_name(taken)["whole folder"].refused
    everything = json.dumps([vars(s) | {"data": ""} for s in taken.submissions]) + str(taken.learners)
    assert "SECRET" not in everything and all(
        s.data in (b"", SOLUTION.read_bytes()) for s in taken.submissions
    )


def test_ids_hold_the_whole_hash_and_names_are_bytes_shown_escaped(tmp_path):
    root = tmp_path / "submissions"
    windows_zip = b"Jos\xe9"  # Latin-1 from a zip made on Windows: not UTF-8
    for name in (windows_zip, "Zoë Ångström", "evil\x1b]0;pwned\x07", "x" * 255, "=HYPERLINK(1)"):
        _put(root, name)
    _put(root, "Zoe\u0308 A\u030angstro\u0308m")  # the same letters as Zoë Ångström, decomposed
    _put(root, "Points\u00a0possible ")  # a no-break space, another case, a trailing blank
    _put(root, "copycat-" + "0" * 64)  # named like a student id: could share another's output folder
    taken = intake.take_in(root)
    learners = _by_name(taken)
    assert "Jos\\xe9" in learners and "evil\\x1b]0;pwned\\x07" in learners  # escaped for people
    assert learners["Jos\\xe9"].folder == windows_zip and not learners["Jos\\xe9"].refused
    assert all(printable(n) == n for n in learners)
    ids = [learner.student_id for learner in taken.learners]
    assert len(set(ids)) == len(ids) and all(len(i.rsplit("-", 1)[1]) == 64 for i in ids)
    assert intake.student_id("x" * 255) != intake.student_id("x" * 254)
    # the same letters composed two ways: both graded, each shown by its bytes, named in the summary's notes
    alike = {"Zo\\xeb \\xc5ngstr\\xf6m", "Zoe\\u0308 A\\u030angstro\\u0308m"}
    assert alike <= {learner.name for learner in taken.learners if not learner.refused}
    assert any("look alike" in note and all(name in note for name in alike) for note in taken.notes)
    assert "keep for themselves" in learners["Points\\xa0possible "].refused
    assert "ends like the grader's own ids" in learners["copycat-" + "0" * 64].refused
    graded = {s.learner for s in taken.submissions}
    assert graded == {"Jos\\xe9", "evil\\x1b]0;pwned\\x07", "x" * 255, "=HYPERLINK(1)", *alike}
    assert intake.output_folder("x" * 255, ids[0]) == ids[0]  # a name too long for a file name: the id


def test_shown_names_are_one_to_one_whatever_the_folders_are_called(tmp_path):
    """A folder literally named "Jos\\xe9" (plain ASCII) shows as one whose name holds the byte 0xE9: each
    gets its id in its shown name, so no two learners share a row, a roster line or an output folder."""
    root = tmp_path / "submissions"
    for name in (b"Jos\xe9", b"Jos\\xe9", "Ren\u00e9e".encode(), b"Ren\\xe9e", "Rene\u0301e".encode()):
        _put(root, name)
    taken = intake.take_in(root)
    names = [learner.name for learner in taken.learners]
    assert len(set(names)) == len(names) == 5, names
    folders = {intake.output_folder(learner.name, learner.student_id) for learner in taken.learners}
    assert len(folders) == 5 and len({s.learner for s in taken.submissions}) == 5


def test_hard_links_and_notebooks_too_large_to_validate_are_refused(tmp_path):
    root = tmp_path / "submissions"
    secret = tmp_path / "secret.key"
    secret.write_text('{"SECRET": 1}')
    (root / "linker").mkdir(parents=True)
    os.link(secret, root / "linker" / f"{PART}.ipynb")  # the same file as one outside the folder
    nb = json.loads(SOLUTION.read_text())
    nb["cells"] = nb["cells"][:1] * (intake.MAX_CELLS + 1)
    _put(root, "many cells", json.dumps(nb).encode())
    reasons = _reasons(intake.take_in(root))
    assert "is a hard link to a file elsewhere" in reasons["linker"]
    assert "over 3,000 cells" in reasons["many cells"]


def test_the_nbgrader_layout_only_when_asked_or_plain(tmp_path):
    flat = tmp_path / "flat"
    _put(flat, "alice")
    _put(flat / "submitted", "bob", name=f"{PART}/{PART}.ipynb")  # a learner named 'submitted'
    taken = intake.take_in(flat)
    assert taken.layout == "flat" and {s.learner for s in taken.submissions} == {"alice"}
    assert any("named 'submitted'" in note for note in taken.notes)
    assert intake.take_in(flat, "nbgrader").layout == "nbgrader"
    course_folder = tmp_path / "course"
    _put(course_folder / "submitted", "bob", name=f"{PART}/{PART}.ipynb")
    (course_folder / "gradebook.db").touch()
    (course_folder / "source").mkdir()
    taken = intake.take_in(course_folder)
    assert taken.layout == "nbgrader" and [s.learner for s in taken.submissions] == ["bob"]


def test_deep_trees_many_files_and_large_files_are_bounded(tmp_path):
    root = tmp_path / "submissions"
    deep = root / "deep"
    _put(root, "deep")
    folder = deep
    for _ in range(intake.MAX_DEPTH + 5):
        folder = folder / "d"
    folder.mkdir(parents=True)
    (folder / "lost.ipynb").write_text("{}")
    many = root / "many"
    _put(root, "many")
    (many / "junk").mkdir()
    for n in range(intake.MAX_ENTRIES + 10):
        (many / "junk" / str(n)).touch()
    _put(root, "huge", b"{" + b" " * (intake.MAX_NOTEBOOK_BYTES + 1) + b"}")
    taken = intake.take_in(root)
    learners, reasons = _by_name(taken), _reasons(taken)
    assert reasons["deep"] == "" and any("deeper than" in i for i in learners["deep"].ignored)
    assert reasons["many"] == "" and any("more than" in i for i in learners["many"].ignored)
    assert "over 64 MiB" in reasons["huge"]


BROKEN = {
    "not json": (b'{"cells": [ this is not json', "not JSON"),
    "empty": (b"", "the file is empty"),
    "not utf-8": (b'{"cells": "\xff"}', "not UTF-8"),
    "deeply nested": (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
    "a source of the wrong type": (None, "breaks the notebook format"),
}


@pytest.mark.parametrize("case", BROKEN)
def test_a_broken_notebook_is_refused_with_a_reason_that_quotes_nothing(case):
    data, expected = BROKEN[case]
    if data is None:
        nb = json.loads(SOLUTION.read_text())
        nb["cells"][0]["source"] = 42
        data = json.dumps(nb).encode()
    admitted, reason = intake.admit(intake.Submission("a", "a-1", PART, data))
    assert admitted == b"" and expected in reason
    assert "this is not" not in reason and "42" not in reason


def test_nbgrader_metadata_is_reset_from_the_source_whatever_its_type():
    nb = json.loads(SOLUTION.read_text())
    checks = [c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade")]
    checks[0]["metadata"]["nbgrader"] = {**checks[0]["metadata"]["nbgrader"], "points": 1000, "locked": False}
    checks[1]["metadata"]["nbgrader"]["grade"] = False  # no longer graded
    checks[1]["metadata"]["nbgrader"]["solution"] = True
    checks[2]["metadata"]["nbgrader"] = "garbage"  # the wrong type
    checks[3]["cell_type"] = "markdown"  # a check made into text
    checks[3].pop("outputs"), checks[3].pop("execution_count")
    nb["cells"].append({**checks[0], "id": "dup"})  # a second cell claiming the first check's id
    admitted, reason = intake.admit(intake.Submission("a", "a-1", PART, json.dumps(nb).encode()))
    assert reason == ""
    source = {
        c.metadata["nbgrader"]["grade_id"]: c
        for c in nbformat.read(SOLUTION, as_version=4).cells
        if "nbgrader" in c.metadata
    }
    got = nbformat.reads(admitted.decode(), as_version=4)
    tracked = [c for c in got.cells if "nbgrader" in c.metadata]
    for cell in tracked:
        original = source[cell.metadata["nbgrader"]["grade_id"]]
        assert cell.metadata["nbgrader"] == original.metadata["nbgrader"]
        assert cell.cell_type == original.cell_type
    grade_ids = [c.metadata["nbgrader"]["grade_id"] for c in tracked]
    assert len(grade_ids) == len(set(grade_ids))
    assert checks[2]["metadata"]["nbgrader"] == "garbage"  # the learner's copy, untouched; this one is gone
    assert sum(1 for c in got.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_ids[0]) == 1


def test_text_that_is_not_unicode_is_refused_not_an_error():
    nb = json.loads(SOLUTION.read_text())
    nb["cells"][0]["source"] = "a lone surrogate: \ud800"
    data = json.dumps(nb).encode()  # JSON escapes it: valid JSON, invalid text
    admitted, reason = intake.admit(intake.Submission("a", "a-1", PART, data))
    assert admitted == b"" and "not valid Unicode" in reason


# ------------------------------------------------------------------------------------------- judges' limits
def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_a_judge_that_allocates_or_loops_costs_its_own_check_not_the_worker(monkeypatch):
    """The verdicts come from a forked child under an address-space and a time limit: a judge driven to
    allocate gigabytes, or to run for ever, fails its check with the reason; the other checks are judged."""
    real = verdicts.judge_one
    ids = [c.grade_id for c in checks.of_part(PART)]

    def hostile(part, grade_id, inputs, record, cells=None):
        if grade_id == ids[1]:
            bytearray(8 * 2**30)  # what a broadcast of two large answers would ask for
        if grade_id == ids[2]:
            while True:
                pass
        return real(part, grade_id, inputs, record, cells)

    monkeypatch.setattr(verdicts, "judge_one", hostile)
    before = _peak_mb()
    judged = grading.judge_bounded(PART, {}, {"answers": {}}, memory=2**30, seconds=3)
    assert _peak_mb() - before < 100
    assert list(judged) == ids
    assert "needed more memory than allowed" in judged[ids[1]].message
    assert "took longer than 3 s" in judged[ids[2]].message
    for grade_id in (ids[0], *ids[3:]):
        assert judged[grade_id].message.startswith("not run: the notebook stopped"), judged[grade_id]


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
