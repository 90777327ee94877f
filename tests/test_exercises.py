"""The untouched exercise notebooks: every graded check fails cleanly — no hang, no dead kernel."""

from __future__ import annotations

import nbformat
from conftest import EXERCISES, KERNEL, PARTS, notebook_path
from nbclient import NotebookClient


def _run_exercise(part: str) -> None:
    path = notebook_path(EXERCISES, part)
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("print('kernel alive')"))
    NotebookClient(nb, timeout=300, kernel_name=KERNEL, allow_errors=True,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade"):
            errors = [o for o in cell.outputs if o.output_type == "error"]
            assert errors, f"{part}: the check {meta['grade_id']} passes on the untouched exercise"
            assert errors[0].ename in {"NameError", "AssertionError", "NotImplementedError", "AttributeError",
                                       "TypeError"}, f"{part}: {meta['grade_id']} failed with {errors[0].ename}"
    alive = [o.get("text", "") for o in nb.cells[-1].outputs]
    assert alive == ["kernel alive\n"], f"{part}: the kernel did not survive the exercise: {alive}"


for _part in PARTS:
    def _test(self, part=_part):
        _run_exercise(part)
    globals()[f"TestExercise_{_part}"] = type(f"TestExercise_{_part}", (), {"test_checks_fail_cleanly": _test})
