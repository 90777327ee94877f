"""The project's own invariants: one list of packages and its locks, the parts as course.py names them,
exercises generated from the solutions and free of them."""

from __future__ import annotations

import filecmp
import json
import platform
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import course
from harness import graded_id

PYPROJECT = course.ROOT / "pyproject.toml"
LOCKS = {
    "learner": course.ROOT / "requirements" / "learner.lock",
    "course": course.ROOT / "requirements" / "course.lock",
}
# Set apart by `make env` on purpose (see the Makefile): in the lock, not in the environment.
UNINSTALLED = {"rfc3987-syntax"}


def _sets() -> dict[str, list[Requirement]]:
    """pyproject.toml's requirements by set: the learner's (its dependencies) and each extra."""
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    sets = {"learner": project["dependencies"], **project["optional-dependencies"]}
    return {name: [Requirement(line) for line in lines] for name, lines in sets.items()}


def _pins() -> dict[str, str]:
    """pyproject.toml's packages → their version specifier ("===2.14.1")."""
    return {canonicalize_name(r.name): str(r.specifier) for rs in _sets().values() for r in rs}


def _locked(lock: Path) -> list[tuple[str, str, Marker | None, list[str]]]:
    """A lock file's entries: (name, version, marker or None, sha256 hashes)."""
    entries = []
    for block in re.split(r"\n(?=[A-Za-z0-9])", lock.read_text()):
        head = re.match(r"([A-Za-z0-9_.\-]+)==([^\s;\\]+)(?:\s*;\s*([^\\\n]+?))?\s*(?:\\|$)", block)
        if head:
            marker = Marker(head.group(3)) if head.group(3) else None
            hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", block)
            entries.append((canonicalize_name(head.group(1)), head.group(2), marker, hashes))
    return entries


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
    lines = PYPROJECT.read_text().splitlines()
    listed = [line for line in lines if re.match(r'\s+"[A-Za-z0-9_.\-]+\s*(===|==|~=|>=)', line)]
    assert len(listed) == sum(map(len, _sets().values())), "a requirement of pyproject.toml shares a line"
    for line in listed:
        assert "#" in line, f"pyproject.toml: no comment saying which part needs {line.strip()}"


def test_the_locks_pin_every_package_with_hashes_and_follow_pyproject():
    """requirements/*.lock are what `make env` installs: every package pinned and hashed; the direct
    requirements at versions pyproject.toml allows; the learner's lock without the grader's and the tests'
    packages, and at the versions of the whole course's lock."""
    locks = {name: _locked(path) for name, path in LOCKS.items()}
    for name, entries in locks.items():
        assert len(entries) > 50, f"{name}.lock: {len(entries)} packages read"
        unhashed = [entry[0] for entry in entries if not entry[3]]
        assert not unhashed, f"{name}.lock: packages without a hash: {unhashed}"
    sets = _sets()
    for lock, wanted in (("learner", sets["learner"]), ("course", [r for rs in sets.values() for r in rs])):
        versions = {}
        for package, version, _, _ in locks[lock]:
            versions.setdefault(package, []).append(version)
        for requirement in wanted:
            found = versions.get(canonicalize_name(requirement.name))
            assert found, f"{lock}.lock lacks {requirement.name}: run `make lock`"
            for version in found:
                assert requirement.specifier.contains(version, prereleases=True), (
                    f"{lock}.lock has {requirement.name} {version}, pyproject.toml asks "
                    f"{requirement.specifier}: run `make lock`"
                )
    learner = {entry[0] for entry in locks["learner"]}
    extras = {canonicalize_name(r.name) for name, rs in sets.items() if name != "learner" for r in rs}
    assert not learner & extras, f"the learner's lock installs the grader's or the tests' {learner & extras}"
    whole = {(entry[0], entry[1]) for entry in locks["course"]}
    assert {(entry[0], entry[1]) for entry in locks["learner"]} <= whole, "the locks disagree on a version"


def test_the_environment_is_the_course_lock():
    """What the grader hashes (requirements/course.lock) is what is installed: every package of the lock that
    this platform and Python need, at its version."""
    environment = {
        "python_version": platform.python_version().rsplit(".", 1)[0],
        "python_full_version": platform.python_version(),
    }
    different = []
    for package, version, marker, _ in _locked(LOCKS["course"]):
        if package in UNINSTALLED or (marker is not None and not marker.evaluate(environment)):
            continue
        try:
            installed = metadata.version(package)
        except metadata.PackageNotFoundError:
            installed = "missing"
        if installed != version:
            different.append(f"{package} {installed} (locked {version})")
    assert not different, f"the environment is not the lock's (`make env-all`): {different}"


def test_environment_yml_installs_the_learners_lock_instead_of_repeating_it():
    """Read as conda reads it: conda-forge gives Python (the version the locks were resolved for) and pip, and
    nothing else; pip's section installs the learner's lock, by a path relative to the file."""
    import yaml

    environment = yaml.safe_load((course.ROOT / "environment.yml").read_text())
    assert environment["channels"] == ["conda-forge"]
    conda = [d for d in environment["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    header = LOCKS["learner"].read_text().split("\n", 3)[1]
    python = re.search(r"--python-version (\S+)", header).group(1)
    assert conda == [f"python={python}", "pip"], f"conda should give Python {python} and pip only: {conda}"
    assert pip == ["-r requirements/learner.lock"], pip
    assert (course.ROOT / pip[0].split()[1]).is_file()


def test_the_parts_in_solutions_are_the_parts_course_py_names():
    on_disk = sorted(p.name for p in course.SOLUTIONS.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert on_disk == list(course.PART_NAMES), "solutions/ and course.PARTS disagree"
    for part in course.PARTS:
        assert re.fullmatch(r"0[1-8]_[a-z_]+", part.name), part.name
        assert part.solution.exists() and part.exercise.exists(), part.name
        assert set(part.data) <= set(course.DATASETS), f"{part.name} needs unknown data sets: {part.data}"


def test_coursedata_prepares_every_data_set_course_py_names():
    import coursedata

    with pytest.raises(ValueError, match="unknown data set 'imagenet': expected one of mnist, fashion"):
        coursedata.prepare_data(["imagenet"])
    assert list(coursedata._PREPARE) == list(course.DATASETS), (
        "coursedata's data sets and course.DATASETS differ"
    )


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


def test_every_drawing_is_in_its_notebook_and_current():
    """Every ``attachment:NAME`` a markdown cell shows is attached to that cell, and the drawings of
    tools/drawings.py are what the notebooks hold (``make drawings`` puts them there): the same pixels, within
    what another machine's font rendering changes."""
    import base64
    import io

    import nbformat
    import numpy as np
    from PIL import Image

    sys.path.insert(0, str(course.ROOT / "tools"))
    import drawings

    for name, (part, draw) in drawings.DRAWINGS.items():
        cells = nbformat.read(drawings.notebook_path(part), as_version=4).cells
        held = [
            c.attachments[f"{name}.png"]["image/png"]
            for c in cells
            if f"{name}.png" in c.get("attachments", {})
        ]
        assert len(held) == 1, f"{part}: {name}.png attached {len(held)} times: run `make drawings`"
        with (
            Image.open(io.BytesIO(base64.b64decode(held[0]))) as stored,
            Image.open(io.BytesIO(drawings.png(draw))) as drawn,
        ):
            assert stored.size == drawn.size, f"{name}: {stored.size} != {drawn.size}: run `make drawings`"
            difference = np.abs(
                np.asarray(stored.convert("RGB"), float) - np.asarray(drawn.convert("RGB"), float)
            )
            assert difference.mean() < 2, f"{name} is not what tools/drawings.py draws: run `make drawings`"
    for folder in (course.SOLUTIONS, course.EXERCISES):
        for path in sorted(folder.glob("*/*.ipynb")):
            for cell in json.loads(path.read_text())["cells"]:
                source = "".join(cell["source"])
                for name in re.findall(r"attachment:([\w.-]+)", source):
                    assert name in cell.get("attachments", {}), f"{path.name}: {name} not attached"
