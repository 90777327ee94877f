"""Run a notebook cell by cell in the course kernel, and run graded checks against wrong answers.

A wrong answer is code that rebinds what the learner's solution defines (a function, a tensor, a
trained model) the way a plausible mistake would. Right before a graded cell runs, the harness takes
a snapshot of the kernel's global names, applies the wrong answer, runs the graded cell's own source
and records whether it failed and with which message; then it restores the names and runs the graded
cell for real, which must pass. So each notebook is executed once, however many wrong answers it has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

SNAPSHOT = "_harness_snapshot = dict(globals())"
RESTORE = """
for _harness_name in [n for n in globals() if n not in _harness_snapshot and n != "_harness_snapshot"]:
    del globals()[_harness_name]
globals().update(_harness_snapshot)
del _harness_snapshot
"""


@dataclass
class Wrong:
    """A plausible wrong answer for the graded cell `grade_id`, and words its failure message must contain."""

    grade_id: str
    name: str
    code: str
    message: str


@dataclass
class Outcome:
    grade_id: str
    name: str
    failed: bool
    output: str


@dataclass
class Run:
    outcomes: list[Outcome] = field(default_factory=list)
    graded_passed: list[str] = field(default_factory=list)
    graded_failed: dict[str, str] = field(default_factory=dict)


def _grade_id(cell) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta.get("grade_id") if meta.get("grade") else None


def run_with_wrong_answers(path: Path, wrong: list[Wrong], kernel: str, timeout: int = 600) -> Run:
    """Execute `path` top to bottom; before each graded cell, try every wrong answer registered for it."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel,
                            resources={"metadata": {"path": str(path.parent)}})
    result = Run()
    scratch = nbformat.v4.new_code_cell("")
    nb.cells.append(scratch)  # nbclient stores outputs by index: the extra code runs in this last cell

    def run(source: str) -> tuple[bool, str]:
        scratch.source = source
        try:
            client.execute_cell(scratch, len(nb.cells) - 1)
            return True, ""
        except CellExecutionError as error:
            return False, str(error)

    with client.setup_kernel():
        for index, cell in enumerate(nb.cells[:-1]):
            if cell.cell_type != "code":
                continue
            grade_id = _grade_id(cell)
            if grade_id:
                for answer in (w for w in wrong if w.grade_id == grade_id):
                    ok, error = run(SNAPSHOT)
                    assert ok, error
                    applied, error = run(answer.code)
                    assert applied, f"the wrong answer {answer.name!r} did not even run:\n{error}"
                    passed, output = run(cell.source)
                    result.outcomes.append(Outcome(grade_id, answer.name, not passed, output))
                    ok, error = run(RESTORE)
                    assert ok, error
                passed, output = run(cell.source)
                if passed:
                    result.graded_passed.append(grade_id)
                else:
                    result.graded_failed[grade_id] = output
            else:
                client.execute_cell(cell, index)
    return result
