"""Binder and the dev container, set up the way each tool sets them up, in a clean environment (no Docker).

Binder (repo2docker reads binder/): in its image's Python environment, repo2docker runs `pip install
--no-cache-dir -r "binder/requirements.txt"` where only that file has been copied (its pre-assemble step,
before the repository), then copies the repository and runs `./binder/postBuild` from its root. The test does
the same in a fresh virtual environment of the Python that binder/runtime.txt names, standing for the image's
environment (its bin/ first on PATH, a current pip), with one change, for time: `--no-compile` (no .pyc files
written ahead; the same packages installed). Then it looks at what a learner gets: `import helper, checks`
from another folder, the course's kernel registered in that environment, the course's Jupyter settings where
its Jupyter reads them, rfc3987-syntax gone, and Part 1's solution executed by nbclient with the kernel its
notebook names (each check's ✓ printed, the kernel running the environment's Python).

The dev container (.devcontainer/devcontainer.json): the file against the dev container spec and this
repository (a Python image of runtime.txt's version, the Makefile's port, the Python and Jupyter extensions),
and its postCreateCommand, `make env`, read by make in a fresh copy (`make -n`: the target exists and makes
.venv from the image's python3 with the learner's lock). Its recipe is not installed a second time here (5 GB,
about 40 s of CPU): postBuild runs that same `make env` recipe in the Binder test, and CI's fresh clone runs
it from nothing (`make env-all`: the same recipe, the whole lock).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest
from packaging.specifiers import SpecifierSet

import course
from harness import TICK, checkout_files, printed

ROOT = course.ROOT
BINDER = ROOT / "binder"
DEVCONTAINER = ROOT / ".devcontainer" / "devcontainer.json"
LEARNER_LOCK = ROOT / "requirements" / "learner.lock"
PART = course.part("01_tensors")


def _runtime_python() -> str:
    """binder/runtime.txt's Python version, "3.11"."""
    match = re.fullmatch(r"python-(\d+\.\d+)", (BINDER / "runtime.txt").read_text().strip())
    assert match, "binder/runtime.txt must hold one line python-X.Y (repo2docker's format)"
    return match.group(1)


def _copy_checkout(dest: Path) -> Path:
    for name in checkout_files():
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, dest / name, follow_symlinks=False)
    return dest


def _clean_env(prefix: Path, home: Path | None = None) -> dict[str, str]:
    """The process environment of the image: its environment's bin/ first, nothing of this checkout's venv."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "PYTORCH_COURSE", "VIRTUAL_ENV"))
    }
    env.pop("PYTHONPATH", None)
    path = [p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(str(ROOT))]
    env["PATH"] = os.pathsep.join([str(prefix / "bin"), *path])
    env["OMP_NUM_THREADS"] = "1"
    if home is not None:
        env["HOME"] = str(home)
    return env


def _run(args, cwd: Path, env: dict[str, str], timeout: int = 900) -> subprocess.CompletedProcess:
    result = subprocess.run(
        args, check=False, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, (
        f"{args} failed in {cwd}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result


# -------------------------------------------------------------------------------------- the files themselves
def test_binder_installs_the_learners_lock_byte_for_byte():
    """One lock: binder/requirements.txt is a copy of requirements/learner.lock (`make lock` writes
    both), not a link (repo2docker copies that one file into the image before the repository)."""
    requirements = BINDER / "requirements.txt"
    assert not requirements.is_symlink()
    assert requirements.read_bytes() == LEARNER_LOCK.read_bytes(), (
        "binder/requirements.txt differs from requirements/learner.lock: run `make lock` "
        "(or cp requirements/learner.lock binder/requirements.txt)"
    )


def test_one_python_for_binder_the_dev_container_and_the_course():
    """runtime.txt's Python (repo2docker's default is older than the course allows) is the dev container's
    image's, and within pyproject.toml's requires-python."""
    version = _runtime_python()
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert version + ".0" in SpecifierSet(requires)
    image = json.loads(DEVCONTAINER.read_text())["image"]
    assert re.fullmatch(
        rf"mcr\.microsoft\.com/devcontainers/python:(\d+-)?{re.escape(version)}(-\w+)?", image
    )


def test_post_build_is_an_executable_bash_script_that_stops_on_errors():
    """repo2docker runs ./binder/postBuild (its #! line) and does not stop the build on a failing command."""
    script = (BINDER / "postBuild").read_text()
    assert script.startswith("#!/bin/bash\n")
    assert "set -euo pipefail" in script
    mode = subprocess.run(
        ["git", "ls-files", "-s", "binder/postBuild"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert mode.startswith("100755") or not mode, (
        "binder/postBuild must be committed executable (git add --chmod=+x)"
    )


def test_dev_container_follows_the_spec_and_the_course():
    """devcontainer.json (strict JSON, a subset of the spec's JSONC): the image, the set-up command, the port,
    the extensions; only properties the spec defines."""
    config = json.loads(DEVCONTAINER.read_text())
    known = {"name", "image", "postCreateCommand", "forwardPorts", "portsAttributes", "customizations"}
    assert set(config) <= known, set(config) - known
    assert config["postCreateCommand"] == "make env"
    port = int(re.search(r"^PORT\s*\?=\s*(\d+)", (ROOT / "Makefile").read_text(), re.M).group(1))
    assert config["forwardPorts"] == [port]
    assert set(config["portsAttributes"]) == {str(port)}
    vscode = config["customizations"]["vscode"]
    assert set(vscode["extensions"]) == {"ms-python.python", "ms-toolsai.jupyter"}
    assert (
        vscode["settings"]["python.defaultInterpreterPath"] == "${containerWorkspaceFolder}/.venv/bin/python"
    )


def test_dev_container_set_up_is_the_courses_make_env(tmp_path):
    """In a fresh copy, make reads the postCreateCommand's target: it makes .venv from the image's python3
    and installs the learner's lock with its hashes, the course and its kernel (a dry run: the install itself
    runs in the Binder test below, through postBuild, and in CI's fresh clone)."""
    copy = _copy_checkout(tmp_path / "workspace")
    dry = _run(
        ["make", "-n", *json.loads(DEVCONTAINER.read_text())["postCreateCommand"].split()[1:]],
        copy,
        _clean_env(Path(sys.base_prefix)),
    ).stdout
    assert "python3 -m venv .venv" in dry
    assert "--require-hashes -r requirements/learner.lock" in dry
    assert f"ipykernel install --sys-prefix --name {course.KERNEL}" in dry
    assert not (copy / ".venv").exists()


# ------------------------------------------------------------------------------- Binder, built as repo2docker
@pytest.fixture(scope="module")
def binder(tmp_path_factory):
    """A Binder image's environment and repository, made by repo2docker's steps; removed afterwards (5 GB)."""
    version = _runtime_python()
    python = (
        sys.executable
        if f"{sys.version_info[0]}.{sys.version_info[1]}" == version
        else (shutil.which(f"python{version}"))
    )
    if python is None:
        pytest.skip(f"no Python {version} here (binder/runtime.txt's)")
    base = tmp_path_factory.mktemp("binder")
    prefix, home = base / "srv-env", base / "home"
    home.mkdir()
    try:
        subprocess.run([python, "-m", "venv", prefix], check=True)
        env = _clean_env(prefix)
        _run([prefix / "bin/python", "-m", "pip", "install", "--quiet", "--upgrade", "pip"], base, env)
        # Pre-assemble: only binder/requirements.txt is in the image yet.
        stage = base / "preassemble"
        (stage / "binder").mkdir(parents=True)
        shutil.copy2(BINDER / "requirements.txt", stage / "binder" / "requirements.txt")
        _run(
            [
                prefix / "bin/pip",
                "install",
                "--no-cache-dir",
                "--no-compile",
                "--quiet",
                "-r",
                "binder/requirements.txt",
            ],
            stage,
            env,
        )
        # Assemble: the repository, then its postBuild from its root.
        repo = _copy_checkout(home / "repo")
        (repo / "binder" / "postBuild").chmod(0o755)
        built = _run(["./binder/postBuild"], repo, env)
        yield {"prefix": prefix, "repo": repo, "home": home, "env": _clean_env(prefix, home), "log": built}
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_binder_course_imports_from_any_folder(binder, tmp_path):
    where = "import checks, course, helper, torch; print(helper.__file__, course.ROOT, torch.__version__)"
    out = _run([binder["prefix"] / "bin/python", "-c", where], tmp_path, binder["env"]).stdout.split()
    assert Path(out[0]) == binder["repo"] / "helper.py"  # the course installed editable, from the repository
    assert Path(out[1]) == binder["repo"]


def test_binder_registers_the_course_kernel_in_its_environment(binder, tmp_path):
    specs = json.loads(
        _run(
            [binder["prefix"] / "bin/jupyter", "kernelspec", "list", "--json"], tmp_path, binder["env"]
        ).stdout
    )["kernelspecs"]
    assert course.KERNEL in specs, sorted(specs)
    spec = specs[course.KERNEL]
    assert Path(spec["resource_dir"]).is_relative_to(binder["prefix"])
    assert spec["spec"]["display_name"] == course.KERNEL_DISPLAY_NAME
    assert Path(spec["spec"]["argv"][0]).parent == binder["prefix"] / "bin"


def test_binder_jupyter_reads_the_course_settings(binder, tmp_path):
    """JupyterLab's settings (markdown opens as a preview) and the Jupyter and nbgrader configuration, where
    the environment's Jupyter reads them; rfc3987-syntax removed (`make env`'s reason, in the Makefile)."""
    prefix = binder["prefix"]
    paths = json.loads(_run([prefix / "bin/jupyter", "--paths", "--json"], tmp_path, binder["env"]).stdout)
    assert str(prefix / "etc" / "jupyter") in paths["config"]
    for name in ("jupyter_config.json", "nbgrader_config.py"):
        assert (prefix / "etc" / "jupyter" / name).read_bytes() == (ROOT / "jupyter" / name).read_bytes()
    overrides = prefix / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    assert overrides.read_bytes() == (ROOT / "jupyter" / "overrides.json").read_bytes()
    check = (
        "import importlib.util as u; print(u.find_spec('rfc3987_syntax'), u.find_spec('nbgrader') is None)"
    )
    found = _run([prefix / "bin/python", "-c", check], tmp_path, binder["env"]).stdout.split()
    assert found == ["None", "False"]


RUNNER = """
import sys, nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
nb.cells.append(nbformat.v4.new_code_cell("import sys; print(sys.executable)"))
NotebookClient(nb, timeout=600, kernel_name=nb.metadata.kernelspec.name,
               resources={"metadata": {"path": sys.argv[2]}}).execute()
nbformat.write(nb, sys.argv[3])
"""


def test_binder_runs_part_1_with_the_course_kernel(binder, tmp_path):
    """Part 1's solution, executed from its folder by nbclient with the kernel its notebook names: every cell
    runs, the first says which PyTorch and device, every check prints its ✓, in the environment's Python."""
    notebook = binder["repo"] / PART.solution.relative_to(ROOT)
    executed = tmp_path / "executed.ipynb"
    _run(
        [binder["prefix"] / "bin/python", "-c", RUNNER, notebook, notebook.parent, executed],
        tmp_path,
        binder["env"],
    )
    nb = nbformat.read(executed, as_version=4)
    assert nb.metadata.kernelspec.name == course.KERNEL

    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert printed(code[0]).startswith("PyTorch ")
    checks = [cell for cell in code if cell.source.strip().startswith("check.")]
    assert checks and all(TICK in printed(cell) for cell in checks)
    assert Path(printed(code[-1]).strip()).parent == binder["prefix"] / "bin"
