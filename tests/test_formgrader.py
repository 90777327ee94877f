"""The instructor's round trip in a real browser: a class graded, formgrader opened by the course's own
command (`python -m grader.formgrader`, what `make formgrader` runs), a hand grade and a comment given in
formgrader's own page (headless Chromium, Playwright), the merge again (the hand grade in grades.csv, both LMS
files and the learner's feedback page), then a resubmission over the hand grade (named in the summary)."""

from __future__ import annotations

import csv
import re
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from servers import CHROMIUM, CHROMIUM_FLAGS, free_port, jupyter_address

import course
from grader.intake import student_id
from grader.sources import checks_points

SANDBOX = shutil.which("bwrap") is not None
PART = course.PARTS[0].name
COMMENT = "Close: a view shares memory too (read the bridge section again)."

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium: `make browser` installs it")


def _notebook(bridge: str | None = None) -> bytes:
    nb = nbformat.read(course.PARTS[0].solution, as_version=4)
    if bridge is not None:
        next(
            c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "numpy_bridge"
        ).source = bridge
    return nbformat.writes(nb).encode()


def _grade(root: Path, out: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "grader", str(root), "--out", str(out), "--cell-timeout", "120"]
        + ([] if SANDBOX else ["--no-sandbox"]),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        cwd=course.ROOT,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def _rows(path: Path, key: str) -> dict[str, dict]:
    with open(path, newline="") as f:
        return {row[key]: row for row in csv.DictReader(f)}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root, out = tmp_path_factory.mktemp("submissions"), tmp_path_factory.mktemp("grades")
    for learner, data in (("alice", _notebook()), ("bob", _notebook('changes = {"A", "B"}'))):
        (root / learner).mkdir()
        (root / learner / f"{PART}.ipynb").write_bytes(data)
    _grade(root, out)
    return root, out


@pytest.fixture(scope="module")
def formgrader(graded):
    """formgrader as `make formgrader` starts it, on the run's output."""
    _, out = graded
    token, log_path = secrets.token_hex(16), out.parent / "formgrader.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "grader.formgrader",
                str(out),
                "--port",
                str(free_port()),
                "--no-browser",
                "--ip=127.0.0.1",
                f"--IdentityProvider.token={token}",
            ],
            cwd=course.ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = jupyter_address(server, log_path, token, "formgrader")
    yield base, token
    server.terminate()
    server.wait(timeout=30)


def test_formgrader_lists_the_submissions_with_names_times_and_a_hand_grade_reaches_every_output(
    graded, formgrader
):
    from nbgrader.api import Gradebook
    from playwright.sync_api import sync_playwright

    root, out = graded
    base, token = formgrader
    with Gradebook(f"sqlite:///{out / 'course' / 'gradebook.db'}", course.COURSE_ID) as gb:
        notebook_id = gb.find_submission_notebook(PART, PART, student_id("bob")).id
        assert {s.first_name for s in gb.students} == {"alice", "bob"}
        assert all(s.timestamp is not None for s in gb.find_assignment(PART).submissions)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        page.goto(f"{base}/formgrader?token={token}")
        page.wait_for_url(re.compile(r"/formgrader/manage_assignments"))
        row = page.locator("tr", has_text=PART).first
        row.wait_for()
        assert re.search(r"\b2\b", row.inner_text()), row.inner_text()  # two submissions, both graded
        page.goto(f"{base}/formgrader/submissions/{notebook_id}/")
        score = page.locator("input#test_numpy_bridge")
        score.wait_for()
        shown = page.inner_text("body").replace("\xa0", " ")
        assert "In [9]" in shown and "In [ ]" not in shown  # the check cells shown as run, with their answer
        score.fill("0.5")
        score.press("Tab")
        comment = page.locator("textarea#numpy_bridge-comment")
        comment.fill(COMMENT)
        comment.press("Tab")
        deadline = time.time() + 30
        while time.time() < deadline:  # formgrader saves as the field loses focus
            with Gradebook(f"sqlite:///{out / 'course' / 'gradebook.db'}", course.COURSE_ID) as gb:
                saved = gb.find_submission(PART, student_id("bob"))
                grades = {g.name: g.manual_score for nb in saved.notebooks for g in nb.grades}
                comments = {c.name: c.manual_comment for nb in saved.notebooks for c in nb.comments}
            if grades.get("test_numpy_bridge") == 0.5 and comments.get("numpy_bridge") == COMMENT:
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"formgrader did not save the hand grade: {grades} {comments}")
        browser.close()

    summary = _grade(root, out)  # the merge again: nothing to grade, the hand grade read back
    assert "Hand grades and comments given in formgrader: 1 notebook(s)" in summary
    with open(out / "grades.csv", newline="") as f:
        bob = next(r for r in csv.DictReader(f) if r["learner"] == "bob" and r["part"] == PART)
    points = checks_points(PART)
    handed = f"{sum(points.values()) - points['test_numpy_bridge'] + 0.5:g}"  # that check's points: 0.5
    assert float(bob["score"]) == float(handed), bob
    assert _rows(out / "lms" / "canvas.csv", "Student")["bob"]["Part 1: Tensors"] == handed
    assert _rows(out / "lms" / "moodle.csv", "username")["bob"]["Part 1: Tensors"] == handed
    page_text = (out / "feedback" / "bob" / f"{PART}.html").read_text()
    assert COMMENT in page_text and handed in page_text and "Content-Security-Policy" in page_text

    (root / "bob" / f"{PART}.ipynb").write_bytes(_notebook())  # bob resubmits a fix
    summary = _grade(root, out)
    assert "Hand grades over a notebook graded again (a resubmission): 1, kept" in summary
    assert "  bob / 01_tensors" in summary
