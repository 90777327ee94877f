"""The project's own invariants: one list of packages, the parts as course.py names them, exercises generated
from the solutions and free of them."""

from __future__ import annotations

import filecmp
import json
import re
import subprocess
import sys

import pytest

import course
from harness import graded_id


def _pins() -> dict[str, str]:
    """requirements.txt's packages → their version specifier ("===2.13.0")."""
    pins = {}
    for line in (course.ROOT / "requirements.txt").read_text().splitlines():
        match = re.match(r"([A-Za-z0-9_.\-]+)\s*(===|==|~=|>=)\s*([^\s;#]+)", line.split("#")[0].strip())
        if match:
            pins[match.group(1).lower()] = match.group(2) + match.group(3)
    return pins


def test_torch_and_torchvision_are_pinned_as_a_matching_pair():
    """torchvision 0.N is built for torch 2.(N-15); an exact pin of each keeps pip from mixing builds."""
    pins = _pins()
    torch_pin, vision_pin = pins["torch"], pins["torchvision"]
    assert torch_pin.startswith("==="), f"pin torch with === (it refuses local +cpu builds), not {torch_pin}"
    assert vision_pin.startswith("=="), f"torchvision must be pinned exactly: {vision_pin}"
    torch_major, torch_minor = (int(x) for x in torch_pin.lstrip("=").split(".")[:2])
    vision_minor = int(vision_pin.lstrip("=").split(".")[1])
    assert (torch_major, torch_minor) == (2, vision_minor - 15), (
        f"torch {torch_pin} and torchvision {vision_pin} are not a matching pair: "
        f"torchvision 0.{vision_minor} goes with torch 2.{vision_minor - 15}"
    )


def test_every_package_says_which_part_needs_it():
    for line in (course.ROOT / "requirements.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            assert "#" in line, f"requirements.txt: no comment saying which part needs {line.strip()}"


def test_environment_yml_installs_requirements_txt_instead_of_repeating_it():
    text = (course.ROOT / "environment.yml").read_text()
    pip_lines = [line.split("#")[0].strip() for line in text.split("- pip:")[1].splitlines()]
    assert [line for line in pip_lines if line] == ["- -r requirements.txt", "- -e ."]


def test_the_parts_in_solutions_are_the_parts_course_py_names():
    on_disk = sorted(p.name for p in course.SOLUTIONS.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert on_disk == list(course.PART_NAMES), "solutions/ and course.PARTS disagree"
    for part in course.PARTS:
        assert re.fullmatch(r"0[1-8]_[a-z_]+", part.name), part.name
        assert part.solution.exists() and part.exercise.exists(), part.name
        assert set(part.data) <= set(course.DATASETS), f"{part.name} needs unknown data sets: {part.data}"


def test_helper_prepares_every_data_set_course_py_names():
    import helper

    with pytest.raises(ValueError, match="unknown data set 'imagenet': expected one of mnist, fashion"):
        helper.prepare_data(["imagenet"])
    assert list(helper._PREPARE) == list(course.DATASETS), "helper.prepare_data and course.DATASETS disagree"


def test_the_makefile_reads_the_course_facts_from_course_py():
    makefile = (course.ROOT / "Makefile").read_text()
    facts = (course.KERNEL, course.KERNEL_DISPLAY_NAME, course.PART_NAMES[0])
    repeated = [fact for fact in facts if fact in makefile]
    assert not repeated, f"the Makefile repeats facts of course.py: {repeated}"
    printed = subprocess.run(
        ["make", "-s", "-n", "-B", "env"], cwd=course.ROOT, capture_output=True, text=True, check=True
    ).stdout  # -n: print the recipe without running it; -B: as if the environment were out of date
    assert f'--name {course.KERNEL} --display-name "{course.KERNEL_DISPLAY_NAME}"' in printed, printed


@pytest.mark.parametrize("part", course.PARTS, ids=course.PART_NAMES)
def test_solution_notebooks_use_the_course_kernel_and_store_no_outputs(part):
    nb = json.loads(part.solution.read_text())
    assert nb["metadata"]["kernelspec"]["name"] == course.KERNEL
    assert nb["metadata"]["kernelspec"]["display_name"] == course.KERNEL_DISPLAY_NAME
    code = [(i, c) for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"]
    stale = [i for i, c in code if c["outputs"] or c["execution_count"]]
    assert not stale, f"{part.name}: cells {stale} store outputs (the output policy: none; nbval runs them)"
    graded = [c for c in nb["cells"] if graded_id(c)]
    assert graded, f"{part.name} has no graded check"
    assert all(c["metadata"]["nbgrader"].get("points", 0) > 0 for c in graded)


def test_exercises_are_what_nbgrader_generates_from_solutions(tmp_path):
    """`make exercises` output is byte-identical on re-runs, so any difference is drift."""
    subprocess.run(
        [sys.executable, "-m", "nbgrader", "generate_assignment", "*", "--force", "--no-db",
         "--log-level=ERROR", f"--CourseDirectory.release_directory={tmp_path}"],
        cwd=course.ROOT / "grader", check=True, capture_output=True,
    )  # fmt: skip
    generated = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.ipynb"))
    committed = sorted(
        p.relative_to(course.EXERCISES)
        for p in course.EXERCISES.rglob("*.ipynb")
        if ".ipynb_checkpoints" not in p.parts
    )
    assert generated == committed, (
        "notebooks/ holds other notebooks than nbgrader generates: `make exercises`"
    )
    stale = [str(p) for p in generated if not filecmp.cmp(tmp_path / p, course.EXERCISES / p, shallow=False)]
    assert not stale, f"out of date with solutions/: {stale} — run `make exercises` and commit notebooks/"


@pytest.mark.parametrize("part", course.PARTS, ids=course.PART_NAMES)
def test_exercises_hold_no_solution(part):
    text = part.exercise.read_text()
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS"):
        assert marker not in text, f"{part.name} exercise contains {marker!r}"
    nb = json.loads(text)
    solution_cells = [c for c in nb["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("solution")]
    assert solution_cells, f"{part.name} exercise has no exercise cell"
    for cell in solution_cells:
        assert cell["cell_type"] == "markdown" or "raise NotImplementedError()" in "".join(cell["source"])


def test_glossary_links_point_at_its_terms():
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', (course.ROOT / "GLOSSARY.md").read_text()))
    for part in course.PARTS:
        for notebook in (part.solution, part.exercise):
            links = re.findall(r"GLOSSARY\.md#([\w-]+)", notebook.read_text())
            assert links, f"{notebook.name} links no glossary term"
            assert not set(links) - anchors, f"{notebook.name}: no such glossary terms {set(links) - anchors}"
