"""What the grader's modules say of a notebook's cells, once: which are checks, and an error output."""

from __future__ import annotations

from nbformat import NotebookNode
from nbgrader import utils


def grade_id(cell: NotebookNode) -> str | None:
    """The cell's nbgrader id, or None for a cell nbgrader does not track."""
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def is_check(cell: NotebookNode) -> bool:
    """An autograded test: a graded cell with no solution in it (nbgrader's own predicates)."""
    return cell.cell_type == "code" and utils.is_grade(cell) and not utils.is_solution(cell)


def error_output(name: str, value: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=name, evalue=value, traceback=[f"{name}: {value}"])
