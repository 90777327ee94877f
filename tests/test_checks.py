"""Check strength: every graded check has wrong answers to fail on, and every registered answer, wrong or
right, is really tried.

The answers (tests/wrong_answers.py) run inside nbval's execution of the solution notebooks, as test items
inserted before each graded cell (see harness.py). These tests make sure that no check goes untried and that
no answer is silently dropped (a misspelt `grade_id` would otherwise match no cell).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

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
    assert len(trials) == len(registered), f"{len(trials)} trials collected for {len(registered)} answers"
    for part, answer in registered:
        label = f"{answer.grade_id} {kind(answer)} '{answer.name}'"
        index = next((i for i, line in enumerate(collected) if part in line and label in line), None)
        assert index is not None, f"{part}: no trial for {label}"
        cell = " ".join(collected[index].split("::")[-1].split()[:2])  # "Cell 8": the check's nbval item
        following = next(line for line in collected[index:] if " answer '" not in line)
        assert following.endswith(f"{part}.ipynb::{cell}"), f"{part}: {label} is not right before its check"


@pytest.mark.parametrize("part", course.PARTS, ids=course.PART_NAMES)
def test_a_tick_claims_no_more_than_the_learner_ran(part):
    """Learners' notebooks lack the hidden tests: a check that has some says that its values are checked at
    grading, in the ✓ line the learner sees, so the ✓ never claims what it did not test."""
    cells = json.loads(part.solution.read_text())["cells"]
    for cell in cells:
        source = "".join(cell["source"])
        if graded_id(cell) and "### BEGIN HIDDEN TESTS" in source:
            after = source.split("### END HIDDEN TESTS")[-1]
            assert "✓" in after and "checked when your work is graded" in after, (
                f"{part.name}: {graded_id(cell)}'s ✓ line does not say that hidden tests check the values"
            )
