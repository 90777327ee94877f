"""Wrong answers, and other correct styles, for every graded check, tried inside nbval's own execution of the
solution notebooks: in the notebook, and as the grader would judge them.

nbval executes each solution notebook cell by cell in one kernel, one test item per cell. Right before the
item of a graded cell, :func:`add_answer_trials` inserts one more item per answer registered for that check
(``tests/wrong_answers.py``), and one for the solution itself. Each runs, in the same kernel, a *trial*: it
saves the kernel's global names and random number generators, applies the answer (code that rebinds what the
learner's solution defines, the way a plausible mistake, or another learner's correct answer, would), runs the
graded cell's own source (the notebook's self-check), and restores the names and the generators. Then it asks
for the verdict the grader would give (:func:`checks.kernel.simulate`): the check's hidden inputs (a fixed
test seed), the answer cell run again on them (with the answer's code after the solution's) for a check that
reruns it, the answers through the wire, the judge at grading. A wrong answer's trial fails the test unless
both verdicts failed with a message that contains the expected words and named the wrong answer's
misconception (its name in the message, its id in the verdict), and unless the hint ladder then gave that
misconception's three hints, one level at a time; a right answer's trial fails it unless both passed and the
self-check printed its ✓ line. Then nbval runs the graded cell for real, and it must pass
and print its ✓ line (:func:`check_printed_tick`).

So each solution notebook is executed once for nbval and for every answer registered for its checks.

Other tests read executed notebooks and the checkout with it too: :func:`printed`, :func:`problems`,
:func:`checkout_files`.
"""

from __future__ import annotations

import subprocess
from collections import defaultdict
from dataclasses import dataclass

import nbformat
import pytest

import course

TICK = "✓"


PASSES = (
    "passes at grading"  # Wrong.graded: a mistake in the notebook's own state, which grading does not use
)


@dataclass(frozen=True)
class Wrong:
    """A plausible wrong answer for the graded cell `grade_id`, and words its failure message must contain: in
    the notebook (`message`) and at grading (`graded`: the same words unless given; PASSES for a mistake in a
    value the notebook keeps for itself, which the grader measures afresh)."""

    grade_id: str
    name: str
    code: str
    message: str
    graded: str | None = None
    # the id of the misconception the judge must recognise (checks.core.Misconception)
    misconception: str = ""

    @property
    def at_grading(self) -> str:
        return self.message if self.graded is None else self.graded


@dataclass(frozen=True)
class Right:
    """Another correct answer for the graded cell `grade_id`, in a style other than the solution's: the check
    must pass it."""

    grade_id: str
    name: str
    code: str


TRIAL = """
def _answer_trial(answer, check, expected, label, part, grade_id, answer_cell, graded, misconception):
    import contextlib
    import io
    import random
    import traceback

    import numpy
    import torch

    from checks import kernel
    from checks.core import MISCONCEPTIONS

    namespace = globals()
    saved = dict(namespace)
    generators = random.getstate(), numpy.random.get_state(), torch.random.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    ladder = kernel.LADDER.last, dict(kernel.LADDER.taken)

    def restore():
        kernel.LADDER.last, kernel.LADDER.taken = ladder[0], dict(ladder[1])
        for added in set(namespace) - set(saved):
            del namespace[added]
        namespace.update(saved)
        random.setstate(generators[0])
        numpy.random.set_state(generators[1])
        torch.random.set_rng_state(generators[2])
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)

    printed = io.StringIO()
    message, found, hints = None, None, []
    try:
        exec(compile(answer, f"<{label}>", "exec"), namespace)
        try:
            with contextlib.redirect_stdout(printed):
                exec(compile(check, "<the check>", "exec"), namespace)
        except Exception as error:
            message = "".join(traceback.format_exception_only(type(error), error)).strip()
            found = getattr(getattr(error, "misconception", None), "id", "")
            if expected is not None:  # the hint ladder of this failure, walked as check.hint() would
                hints = [kernel.next_hint() for _ in range(3)]
    finally:
        restore()
    the_check = kernel.find(part, grade_id)
    try:  # the grader's verdict: hidden inputs, the answer cell run again (with the answer after it)
        if the_check.rerun:
            at_grading = kernel.simulate(the_check, namespace, answer_cell + "\\n" + answer)
        else:
            exec(compile(answer, f"<{label}>", "exec"), namespace)
            at_grading = kernel.simulate(the_check, namespace, None)
    finally:
        restore()
    if expected is None:
        assert message is None, f"the check failed {label}: {message}"
        assert "%s" in printed.getvalue(), f"the check printed no %s {label}: {printed.getvalue()!r}"
        print(f"the check passed {label}, as it should: {printed.getvalue().strip()}")
    else:
        assert message is not None, f"the check passed {label}"
        assert expected in message, f"the check failed {label} without saying {expected!r}: {message}"
        assert found == misconception, f"{label} shows {misconception!r}, the check recognised {found!r}"
        print(f"the check failed {label}, as it should: {message}")
        shown = MISCONCEPTIONS[misconception]
        assert shown.name in message, f"the check's message for {label} does not name {shown.name!r}"
        assert [(h.level, h.text) for h in hints] == list(enumerate(shown.hints, 1)), f"{label}: {hints}"
    if graded is None:
        assert at_grading.passed, f"at grading, the check failed {label}: {at_grading.message}"
        print(f"at grading, it passed too: {at_grading.message}")
    else:
        assert not at_grading.passed, f"at grading, the check passed {label}: {at_grading.message}"
        assert graded in at_grading.message, (
            f"at grading, the check failed {label} without saying {graded!r}: {at_grading.message}"
        )
        assert at_grading.misconception == misconception, (
            f"at grading, {label} shows {misconception!r}, the check recognised {at_grading.misconception!r}"
        )
        print(f"at grading, it failed too: {at_grading.message}")


try:
    _answer_trial(*%r)
finally:
    del _answer_trial
"""


def trial_source(answer: Wrong | Right, check: str, part: str, answer_cell: str) -> str:
    """The code of one trial: the answer, then the check's source, in the notebook's own kernel; then the
    grader's verdict on the same answer (`answer_cell`: the source of the answer cell the check follows)."""
    label = f"{answer.grade_id}'s {kind(answer)} {answer.name!r}"
    expected = answer.message if isinstance(answer, Wrong) else None
    graded = answer.at_grading if isinstance(answer, Wrong) and answer.at_grading != PASSES else None
    misconception = answer.misconception if isinstance(answer, Wrong) else ""
    arguments = (
        answer.code,
        check,
        expected,
        label,
        part,
        answer.grade_id,
        answer_cell,
        graded,
        misconception,
    )
    return TRIAL % (TICK, TICK, arguments)


def kind(answer: Wrong | Right) -> str:
    """How trials of this answer are named: "wrong answer" or "right answer"."""
    return "wrong answer" if isinstance(answer, Wrong) else "right answer"


def graded_id(cell: dict) -> str | None:
    """The `grade_id` of a graded nbgrader cell, else None."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta.get("grade_id") if meta.get("grade") else None


def printed(cell: dict) -> str:
    """What an executed code cell printed (its stream outputs)."""
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def problems(nb: dict) -> list[str]:
    """An executed notebook's errors, in any cell, and the checks that did not print their ✓."""
    found = []
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        outputs = cell.get("outputs", [])
        found += [
            f"cell {index}: {o['ename']}: {o['evalue']}"[:500] for o in outputs if o["output_type"] == "error"
        ]
        if graded_id(cell) and TICK not in printed(cell):
            found.append(f"{graded_id(cell)} printed no {TICK}")
    return found


def checkout_files() -> list[str]:
    """The files a clone of this checkout holds: tracked, and new ones git does not ignore."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=course.ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return sorted(name for name in set(listed.split("\0")) if name and (course.ROOT / name).is_file())


def _solution_part(item: pytest.Item) -> str | None:
    """The part whose solution notebook nbval runs in `item`, or None for any other item."""
    from nbval.plugin import IPyNbCell

    if not isinstance(item, IPyNbCell):
        return None
    path = item.parent.path
    if path.parent.parent != course.SOLUTIONS or path.stem not in course.PART_NAMES:
        return None
    return path.stem


def add_answer_trials(items: list[pytest.Item], answers: dict[str, list[Wrong | Right]]) -> None:
    """Insert, before each graded cell nbval runs, one trial item per answer registered for it."""
    from nbval.plugin import IPyNbCell

    from checks import kernel

    result: list[pytest.Item] = []
    for item in items:
        part = _solution_part(item)
        grade_id = graded_id(item.cell) if part else None
        if grade_id:
            after = kernel.find(part, grade_id).after
            nb = nbformat.read(item.parent.path, as_version=4)
            answer_cell = next(
                c.source for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == after
            )
            solution = Right(grade_id, "the solution itself", "")
            for answer in [solution, *(a for a in answers.get(part, []) if a.grade_id == grade_id)]:
                cell = nbformat.v4.new_code_cell(trial_source(answer, item.cell.source, part, answer_cell))
                result.append(
                    IPyNbCell.from_parent(
                        item.parent,
                        name=f"{item.name} {grade_id} {kind(answer)} '{answer.name}'",
                        cell_num=item.cell_num,
                        cell=cell,
                        options=defaultdict(bool, check=False),
                    )
                )
        result.append(item)
    items[:] = result


def allow_slow_output(items: list[pytest.Item], seconds: float = 60) -> None:
    """nbval waits 5 s (IPyNbCell.output_timeout) for each output message after the kernel's reply, then fails
    the cell and stops the kernel: on a loaded 2-core machine a training cell's outputs once came later."""
    from nbval.plugin import IPyNbCell

    for item in items:
        if isinstance(item, IPyNbCell):
            item.output_timeout = seconds


def check_printed_tick(item: pytest.Item) -> None:
    """After nbval ran a graded cell of a solution: it must have printed its ✓ line (the check's proof of
    having run every assertion), not only have raised no error."""
    part = _solution_part(item)
    if not part or not graded_id(item.cell) or " answer '" in item.name:
        return
    printed = "".join(
        o.get("text", "") for o in (item.test_outputs or []) if o.get("output_type") == "stream"
    )
    assert TICK in printed, (
        f"{part}: the check {graded_id(item.cell)} raised no error but printed no {TICK} line"
    )
