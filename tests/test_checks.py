"""Check strength: every graded check is a trusted check of checks/, has wrong answers to fail on, and every
registered answer, wrong or right, is really tried.

The answers (tests/wrong_answers.py) run inside nbval's execution of the solution notebooks, as test items
inserted before each graded cell (see harness.py). These tests make sure that no check goes untried and that
no answer is silently dropped (a misspelt `grade_id` would otherwise match no cell).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import checks
import course
from harness import graded_id, kind
from wrong_answers import RIGHT, WRONG


def _graded_ids(part: course.Part) -> list[str]:
    cells = json.loads(part.solution.read_text())["cells"]
    return [grade_id for grade_id in map(graded_id, cells) if grade_id]


def test_wrong_answers_are_registered_for_exactly_the_course_parts():
    assert set(WRONG) == set(course.PART_NAMES), (
        f"parts without wrong answers: {sorted(set(course.PART_NAMES) - set(WRONG))}; "
        f"wrong answers for parts that do not exist: {sorted(set(WRONG) - set(course.PART_NAMES))}"
    )


@pytest.mark.parametrize("part", course.PARTS, ids=course.PART_NAMES)
def test_every_check_has_a_wrong_answer_and_every_wrong_answer_a_check(part):
    graded = set(_graded_ids(part))
    registered = [w.grade_id for w in WRONG[part.name]]
    assert graded, f"{part.name} has no graded check"
    assert not graded - set(registered), f"checks with no wrong answer: {sorted(graded - set(registered))}"
    assert not set(registered) - graded, (
        f"wrong answers for no graded cell: {sorted(set(registered) - graded)}"
    )
    names = [(w.grade_id, w.name) for w in WRONG[part.name]]
    assert len(names) == len(set(names)), "two wrong answers of one check share a name"
    right = [r.grade_id for r in RIGHT.get(part.name, [])]
    assert not set(right) - graded, f"right answers for no graded cell: {sorted(set(right) - graded)}"
    names = [(r.grade_id, r.name) for r in RIGHT.get(part.name, [])]
    assert len(names) == len(set(names)), "two right answers of one check share a name"


def test_nbval_runs_one_trial_per_registered_answer():
    """Collect the solutions as `make test` does: each registered answer is an item right before its check."""
    collected = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "--nbval-lax",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            str(course.SOLUTIONS),
        ],
        cwd=course.ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    trials = [line for line in collected if " answer '" in line]
    registered = [
        (part, answer) for table in (WRONG, RIGHT) for part, answers in table.items() for answer in answers
    ]
    solutions = [line for line in trials if "right answer 'the solution itself'" in line]
    every_check = sum(len(checks.of_part(part)) for part in course.PART_NAMES)
    assert len(solutions) == every_check, (
        f"{len(solutions)} trials of the solution itself for {every_check} checks"
    )
    assert len(trials) == len(registered) + every_check, (
        f"{len(trials)} trials collected for {len(registered)} answers"
    )
    for part, answer in registered:
        label = f"{answer.grade_id} {kind(answer)} '{answer.name}'"
        index = next((i for i, line in enumerate(collected) if part in line and label in line), None)
        assert index is not None, f"{part}: no trial for {label}"
        cell = " ".join(collected[index].split("::")[-1].split()[:2])  # "Cell 8": the check's nbval item
        following = next(line for line in collected[index:] if " answer '" not in line)
        assert following.endswith(f"{part}.ipynb::{cell}"), f"{part}: {label} is not right before its check"


@pytest.mark.parametrize("part", course.PARTS, ids=course.PART_NAMES)
def test_every_check_cell_calls_its_trusted_check_and_holds_no_test_of_its_own(part):
    """One source for each check: the check cell of the notebook calls the check of checks/partN.py that has
    its grade_id (in the notebook the self-check, at grading the grader's verdict), and nothing else; the
    check follows an answer cell of the notebook, after which the grader asks for its answers."""
    cells = json.loads(part.solution.read_text())["cells"]
    ids = [c["metadata"]["nbgrader"]["grade_id"] for c in cells if "nbgrader" in c["metadata"]]
    module = vars(__import__(f"checks.part{part.number}", fromlist=["CHECKS"]))
    by_id = {check.grade_id: name for name, check in module.items() if isinstance(check, checks.core.Check)}
    graded = [cell for cell in cells if graded_id(cell)]
    assert [graded_id(cell) for cell in graded] == [c.grade_id for c in checks.of_part(part.name)]
    for cell in graded:
        grade_id = graded_id(cell)
        assert "".join(cell["source"]) == f"check.{by_id[grade_id]}()", f"{part.name}: {grade_id}'s cell"
        check = next(c for c in checks.of_part(part.name) if c.grade_id == grade_id)
        assert check.after in ids and ids.index(check.after) < ids.index(grade_id), (part.name, grade_id)
    first = "".join(next(c for c in cells if c["cell_type"] == "code")["source"])
    assert f"from checks import part{part.number} as check" in first
    for cell in cells:
        assert "HIDDEN TESTS" not in "".join(cell["source"]), f"{part.name}: a hidden test left in a cell"


def test_part1_shows_the_snippets_its_judge_runs():
    """Exercises 1 and 5 are predictions: the learner reads the expressions and snippets in the notebook, the
    judge runs its own copy of them; the two must be the same code, and the rules above them must decide every
    one."""
    from checks import part1

    cells = json.loads(course.PARTS[0].solution.read_text())["cells"]
    prompt = next("".join(c["source"]) for c in cells if "### Exercise 5" in "".join(c["source"]))
    for letter, snippet in part1.BRIDGE_SNIPPETS.items():
        assert f"# {letter}\n{snippet}\n" in prompt, f"snippet {letter} is not shown as the judge runs it"
    assert part1.bridge_changes() == {"A", "D", "F"}
    prompt = next("".join(c["source"]) for c in cells if "### Exercise 1" in "".join(c["source"]))
    for letter, expression in part1.BROADCASTS.items():
        assert f"# {letter}\n{expression}\n" in prompt, f"{letter} is not shown as the judge runs it"
    assert part1.broadcast_results() == {"A": (2, 3), "B": (3, 3), "C": (3, 3), "D": "error", "E": (2, 3)}


# ------------------------------------------------------------------------------------------ misconceptions
def _misconceptions() -> dict:
    from checks.core import MISCONCEPTIONS

    for part in course.PART_NAMES:
        checks.of_part(part)  # imports the part's module, which registers its misconceptions
    return MISCONCEPTIONS


def test_every_wrong_answer_names_a_registered_misconception_and_every_misconception_is_tried():
    """Each wrong answer of the bank says which misconception its check must recognise (the trial asserts it
    does), and every misconception a judge can name is the one of at least one wrong answer: no recognition
    goes untested."""
    known = _misconceptions()
    wrongs = [w for answers in WRONG.values() for w in answers]
    unnamed = [f"{w.grade_id}: {w.name}" for w in wrongs if not w.misconception]
    assert not unnamed, f"wrong answers without a misconception: {unnamed}"
    unknown = sorted({w.misconception for w in wrongs} - set(known))
    assert not unknown, f"misconceptions no check registers: {unknown}"
    untried = sorted(set(known) - {w.misconception for w in wrongs})
    assert not untried, f"misconceptions no wrong answer shows: {untried}"


def test_every_misconception_points_to_a_section_of_its_part_and_a_term_of_the_glossary():
    """Where a misconception sends the learner exists: a heading of its part's notebook, an anchor of
    GLOSSARY.md; its hint ladder has three steps, the last a skeleton of code."""
    import re

    import nbformat

    anchors = set(re.findall(r'<a id="([^"]+)"></a>', (course.ROOT / "GLOSSARY.md").read_text()))
    headings = {
        part.number: {
            line.lstrip("#").strip()
            for cell in nbformat.read(part.solution, as_version=4).cells
            if cell.cell_type == "markdown"
            for line in cell.source.splitlines()
            if line.startswith("#")
        }
        for part in course.PARTS
    }
    for m in _misconceptions().values():
        assert m.section in headings[m.part], f"{m.id}: Part {m.part} has no section {m.section!r}"
        assert not m.glossary or m.glossary in anchors, f"{m.id}: the glossary has no term {m.glossary!r}"
        assert len(m.hints) == 3 and all(h.strip() for h in m.hints), f"{m.id}: {m.hints}"
        assert m.name and not m.name.endswith("."), f"{m.id}: its name {m.name!r} (a phrase, no full stop)"
