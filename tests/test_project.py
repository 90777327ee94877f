"""The project's own invariants: environment lists in step, exercises generated and free of solutions."""

from __future__ import annotations

import filecmp
import re
import subprocess
import sys

import pytest
from conftest import EXERCISES, KERNEL, PARTS, REPO, SOLUTIONS, graded_cells, notebook_path, read_notebook


def _names(lines):
    names = {}
    for line in lines:
        line = line.split("#")[0].strip().lstrip("- ").strip()
        match = re.match(r"([A-Za-z0-9_.\-]+)\s*(===|==|~=|>=)\s*([^\s;]+)", line)
        if match:
            names[match.group(1).lower()] = match.group(2) + match.group(3)
    return names


def test_requirements_and_environment_yml_list_the_same_packages():
    pip = _names((REPO / "requirements.txt").read_text().splitlines())
    conda_pip = _names((REPO / "environment.yml").read_text().split("- pip:")[1].splitlines())
    assert pip == conda_pip, f"only in requirements.txt: {pip.keys() - conda_pip.keys()}; " \
                             f"only in environment.yml: {conda_pip.keys() - pip.keys()}; or versions differ"
    assert pip["torch"] == "===2.13.0" and pip["torchvision"] == "==0.28.0"


def test_every_environment_yml_package_says_which_part_needs_it():
    section = (REPO / "environment.yml").read_text().split("- pip:")[1]
    for line in section.splitlines():
        if re.match(r"\s*- [A-Za-z]", line):
            assert "#" in line, f"environment.yml: no comment saying which part needs {line.strip()}"


def test_the_eight_parts_are_named_nn_topic():
    assert PARTS, "no parts in solutions/"
    for part in PARTS:
        assert re.fullmatch(r"0[1-8]_[a-z_]+", part), part
        assert notebook_path(SOLUTIONS, part).exists()


@pytest.mark.parametrize("part", PARTS)
def test_solution_notebooks_use_the_course_kernel_and_store_no_outputs(part):
    nb = read_notebook(notebook_path(SOLUTIONS, part))
    assert nb["metadata"]["kernelspec"]["name"] == KERNEL
    stale = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code" and (c["outputs"] or c["execution_count"])]
    assert not stale, f"{part}: cells {stale} store outputs (output policy: none are stored; nbval runs them)"
    assert graded_cells(nb), f"{part} has no graded check"
    assert all(c["metadata"]["nbgrader"].get("points", 0) > 0 for c in graded_cells(nb))


def test_exercises_are_what_nbgrader_generates_from_solutions(tmp_path):
    """`make exercises` output is byte-identical on re-runs, so any difference is drift."""
    for part in PARTS:
        subprocess.run(
            [sys.executable, "-m", "nbgrader", "generate_assignment", part, "--force", "--no-db",
             "--log-level=ERROR", f"--CourseDirectory.release_directory={tmp_path}"],
            cwd=REPO / "grader", check=True, capture_output=True,
        )
    generated = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.ipynb"))
    committed = sorted(p.relative_to(EXERCISES) for p in EXERCISES.rglob("*.ipynb")
                       if ".ipynb_checkpoints" not in p.parts)
    assert generated == committed, "notebooks/ does not hold exactly the generated exercises: run `make exercises`"
    stale = [str(p) for p in generated if not filecmp.cmp(tmp_path / p, EXERCISES / p, shallow=False)]
    assert not stale, f"out of date with solutions/: {stale} — run `make exercises` and commit notebooks/"


@pytest.mark.parametrize("part", PARTS)
def test_exercises_hold_no_solution(part):
    text = notebook_path(EXERCISES, part).read_text()
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS"):
        assert marker not in text, f"{part} exercise contains {marker!r}"
    nb = read_notebook(notebook_path(EXERCISES, part))
    solution_cells = [c for c in nb["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("solution")]
    assert solution_cells and all("raise NotImplementedError()" in "".join(c["source"]) or c["cell_type"] == "markdown"
                                  for c in solution_cells)
