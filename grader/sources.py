"""The parts' nbgrader sources (solutions and check cells), as the grader reads them: the one place that knows
where a part's source lies, which cells nbgrader tracks in it, and what each check is worth."""

from __future__ import annotations

import functools
from pathlib import Path

import nbformat
from nbgrader.preprocessors import ClearSolutions

import course
from grader import cells


def part_source(part: str, sources: Path = course.SOLUTIONS) -> Path:
    """The part's nbgrader source notebook (solutions and check cells) in the folder of sources."""
    return sources / part / f"{part}.ipynb"


def exercise_source(part: str, sources: Path = course.SOLUTIONS) -> nbformat.NotebookNode:
    """The part's nbgrader source with the solutions removed (tests, hidden ones too, kept): graded runs
    and feedback never hold the instructor's solutions."""
    nb = nbformat.read(part_source(part, sources), as_version=4)
    nb, _ = ClearSolutions().preprocess(nb, {})
    return nb


@functools.cache
def exercise_bytes(part: str, sources: Path = course.SOLUTIONS) -> bytes:
    """:func:`exercise_source` as the bytes that travel to a worker and into the class's gradebook."""
    return nbformat.writes(exercise_source(part, sources)).encode()


@functools.cache
def tracked_cells(part: str, sources: Path = course.SOLUTIONS) -> dict[str, nbformat.NotebookNode]:
    """The cells nbgrader tracks in a part (exercises, checks), by grade id, as the source has them."""
    nb = nbformat.read(part_source(part, sources), as_version=4)
    return {cells.grade_id(c): c for c in nb.cells if cells.grade_id(c)}


def nbgrader_ids(part: str, sources: Path = course.SOLUTIONS) -> frozenset[str]:
    """The ids of the cells nbgrader tracks in a part (exercises, checks)."""
    return frozenset(tracked_cells(part, sources))


@functools.cache
def checks_points(part: str, sources: Path = course.SOLUTIONS) -> dict[str, float]:
    """Each check of the part and its points, in the notebook's order."""
    return {
        grade_id: float(cell.metadata["nbgrader"].get("points", 0))
        for grade_id, cell in tracked_cells(part, sources).items()
        if cells.is_check(cell)
    }
