"""The similarity report (grader/similarity.py, a section of summary.txt): a planted copied pair and a rare
mistake two learners share are found in a class of the tests' own learners, and no pair among learners whose
answers were written independently (the solutions and the bank's right answers in other styles: the checks
with three styles, each learner a different style of each)."""

from __future__ import annotations

import re

import nbformat

import course
from checks import kernel
from grader import reports, similarity
from grader.records import CheckResult, Record
from wrong_answers import RIGHT

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


def _solution_code(part: course.Part, grade_id: str) -> str:
    """The instructor's code of an answer cell: its solution regions, dedented."""
    nb = nbformat.read(part.solution, as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    regions = re.findall(rf"{BEGIN}\n(.*?)\n\s*{END}", cell.source, re.S)
    return "\n".join(re.sub(r"(?m)^    ", "", r) for r in regions)


def _styles() -> dict[tuple[str, str], list[str]]:
    """(part, answer cell) → three independently written answers: the solution's and two right answers."""
    found = {}
    for part in course.PARTS:
        for check in {r.grade_id for r in RIGHT.get(part.name, [])}:
            rights = [r.code for r in RIGHT[part.name] if r.grade_id == check]
            if len(rights) == 2:
                after = kernel.find(part.name, check).after
                found[(part.name, after)] = [_solution_code(part, after), *rights]
    return found


def _learner(styles: dict, pick: int) -> dict[str, nbformat.NotebookNode]:
    """A learner's notebooks: each answer cell of those checks the exercise's scaffold with an answer of the
    style ``pick`` (shifted from one check to the next) written in it."""
    notebooks = {}
    for i, ((part_name, answer), codes) in enumerate(sorted(styles.items())):
        nb = notebooks.setdefault(part_name, nbformat.read(course.part(part_name).exercise, as_version=4))
        cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == answer)
        cell.source += "\n" + codes[(i + pick) % 3]
    return notebooks


def _disguised(code: str) -> str:
    """A copy with its names changed, comments and blank lines added: what copying with care looks like."""
    renamed = re.sub(r"\b(model|features|weights|checkpoint|matrix|images|labels)\b", r"my_\1", code)
    return "\n".join(f"{line}  # my own work" if line.strip() else "\n" for line in renamed.splitlines())


def test_a_copied_pair_and_a_rare_shared_mistake_are_found_and_independent_answers_are_not(tmp_path):
    styles = _styles()
    assert len(styles) >= 10, f"too few checks with three styles to make a class of: {sorted(styles)}"
    exercises = {p.name: nbformat.read(p.exercise, as_version=4) for p in course.PARTS}
    learners = {f"learner {k}": _learner(styles, k) for k in range(3)}
    copied = _learner(styles, 1)
    for nb in copied.values():
        for cell in nb.cells:
            if cell.metadata.get("nbgrader", {}).get("solution"):
                cell.source = _disguised(cell.source)
    learners["copycat"] = copied
    learners["nothing done"] = {p: exercises[p] for p in exercises}  # the scaffolds alone: no code of its own
    answers = {
        name: {part: similarity.answer_code(nb, exercises[part]) for part, nb in notebooks.items()}
        for name, notebooks in learners.items()
    }
    assert all(not code for code in answers["nothing done"].values())
    pairs = similarity.similar_pairs(answers, similarity.course_shingles())
    assert [(a, b) for a, b, *_ in pairs] == [("copycat", "learner 1")], pairs

    # The class's records: two of ten learners show the same rare misconception, six another one
    ids = {name: name.replace(" ", "-") for name in [*learners, *(f"more {k}" for k in range(5))]}
    rare = {
        "id": "tensor-shares",
        "name": "torch.tensor taken to share the array's memory",
        "where": "Part 1",
    }
    common = {"id": "count-for-letters", "name": "how many snippets taken for which ones", "where": "Part 1"}
    current = {}
    for k, (name, sid) in enumerate(sorted(ids.items())):
        shown = rare if name in ("learner 0", "more 3") else common if k < 8 else {}
        verdict = CheckResult(0.0, 1.0, passed=not shown, reached=True, message="x", misconception=shown)
        record = Record(name, sid, "01_tensors", "d", "graded", max_score=1.0)
        record.checks = {"test_numpy_bridge": verdict}
        current[f"{sid}/01_tensors"] = record
    points = {part: {"test_numpy_bridge": 1.0} if part == "01_tensors" else {} for part in course.PART_NAMES}
    summary = reports.write(tmp_path, ids, current, {}, points, 0, [], answers=answers)
    assert "Similar answers" in summary and "copycat ~ learner 1: " in summary, summary
    lines = summary.splitlines()
    start = lines.index(next(line for line in lines if line.startswith("Rare mistakes shared")))
    listed = [line.strip() for line in lines[start + 1 :] if line.startswith("  P")]
    assert listed == [
        "P1 test_numpy_bridge · torch.tensor taken to share the array's memory: learner 0, more 3"
    ]
