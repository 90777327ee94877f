"""The untouched exercise notebooks: every graded check fails cleanly — no hang, no dead kernel."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

import course
from harness import graded_id

# What a check of an untouched exercise may fail with: its own verdict (CheckFailed: what it expected, what it
# found). Anything else (a NameError, a crash inside PyTorch, a KeyboardInterrupt) is a bug of the check.
CLEAN_FAILURES = {"CheckFailed"}


@pytest.mark.parametrize("part", course.PARTS, ids=course.PART_NAMES)
def test_checks_of_an_untouched_exercise_fail_cleanly(part, tmp_path):
    # In an empty folder, as a learner's first run: files an earlier run left beside the exercise
    # (a saved model, say) must not make a check pass or fail differently.
    nb = nbformat.read(part.exercise, as_version=4)
    last = max(i for i, cell in enumerate(nb.cells) if graded_id(cell))
    nb.cells = nb.cells[: last + 1]  # what follows the last check (predictions, extras) checks nothing
    nb.cells.append(nbformat.v4.new_code_cell("print('kernel alive')"))
    NotebookClient(
        nb, timeout=300, kernel_name=course.KERNEL, allow_errors=True,
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()  # fmt: skip
    checks = [cell for cell in nb.cells if graded_id(cell)]
    assert checks, f"{part.name} has no check"
    for cell in checks:
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert errors, f"{part.name}: the check {graded_id(cell)} passes on the untouched exercise"
        failure = errors[0].ename
        assert failure in CLEAN_FAILURES, f"{part.name}: {graded_id(cell)} failed with {failure}"
    alive = "".join(o.get("text", "") for o in nb.cells[-1].outputs)  # one stream may come in pieces
    assert alive == "kernel alive\n", f"{part.name}: the kernel did not survive the exercise: {alive!r}"
