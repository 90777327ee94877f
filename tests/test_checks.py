"""Check strength: every graded check passes the solution and fails plausible wrong answers."""

from __future__ import annotations

from conftest import KERNEL, PARTS, SOLUTIONS, graded_cells, notebook_path, read_notebook
from harness import run_with_wrong_answers
from wrong_answers import WRONG


def _check_part(part: str) -> None:
    path = notebook_path(SOLUTIONS, part)
    graded = {c["metadata"]["nbgrader"]["grade_id"] for c in graded_cells(read_notebook(path))}
    wrong = WRONG.get(part, [])
    untested = graded - {w.grade_id for w in wrong}
    assert not untested, f"{part}: graded checks with no wrong answer to fail on: {sorted(untested)}"

    run = run_with_wrong_answers(path, wrong, KERNEL)

    assert not run.graded_failed, f"{part}: the solution fails its own checks: {run.graded_failed}"
    assert sorted(run.graded_passed) == sorted(graded)
    problems = []
    for outcome, answer in zip(run.outcomes, wrong):
        if not outcome.failed:
            problems.append(f"{outcome.grade_id} passed the wrong answer {outcome.name!r}")
        elif answer.message not in outcome.output:
            problems.append(f"{outcome.grade_id} failed {outcome.name!r} without saying {answer.message!r}:\n"
                            f"{outcome.output[-600:]}")
    assert not problems, "\n".join(problems)


# One class per part, so that pytest-xdist (--dist loadscope) spreads the parts over workers.
for _part in PARTS:
    def _test(self, part=_part):
        _check_part(part)
    globals()[f"TestChecks_{_part}"] = type(f"TestChecks_{_part}", (), {"test_wrong_answers_fail": _test})


def test_every_part_has_wrong_answers():
    assert set(WRONG) >= set(PARTS), f"parts without wrong answers: {sorted(set(PARTS) - set(WRONG))}"
