"""The GPU bundle (`make gpu-bundle`): built for Part 1 and run here by its own runner, as on a bare machine.

The full bundle's size limit (60 MiB) is checked by the tool itself when `make gpu-bundle` builds it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

import course
from wrong_answers import RIGHT, WRONG

PART = course.PARTS[0].name


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("bare") / "gpu-bundle"  # away from the checkout, as on the GPU machine
    build = subprocess.run(
        [sys.executable, str(course.ROOT / "tools" / "gpu_bundle.py"), "--out", str(out), PART],
        capture_output=True, text=True, check=False, cwd=course.ROOT,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout + build.stderr
    assert "MiB" in build.stdout
    yield out
    shutil.rmtree(out.parent, ignore_errors=True)


def _run(bundle) -> subprocess.CompletedProcess:
    # Only what the GPU machine has: the interpreter and its packages; not the checkout on sys.path.
    env = {"PATH": os.environ["PATH"], "HOME": str(bundle.parent), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-I", str(bundle / "run.py")], capture_output=True, text=True, env=env,
        cwd=bundle.parent, timeout=300, check=False,
    )  # fmt: skip


def test_the_bundle_runs_every_check_and_wrong_answer_of_a_part(bundle):
    result = _run(bundle)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.rstrip().endswith("all passed")
    for wrong in WRONG[PART]:
        assert f"{wrong.grade_id} caught {wrong.name!r}" in result.stdout, wrong.name
    for right in RIGHT[PART]:
        assert f"{right.grade_id} passed {right.name!r}" in result.stdout, right.name
    for check in ("test_neuron_sum", "test_neuron_mm", "test_two_layer", "test_numpy_bridge"):
        assert f"  {check}: ✓ " in result.stdout, check
        assert f"{check} passed 'the solution itself'" in result.stdout, check


def test_a_wrong_solution_fails_the_run(bundle):
    notebooks = json.loads((bundle / "notebooks.json").read_text())
    for cell in notebooks[0]["cells"]:
        if "y = activation(torch.sum(features * weights) + bias)" in cell["source"]:
            cell["source"] = "y = torch.sum(features * weights) + bias"
    (bundle / "notebooks.json").write_text(json.dumps(notebooks))
    result = _run(bundle)
    assert result.returncode == 1, result.stdout
    assert "✗ test_neuron_sum: checks.core.CheckFailed: y should be a sigmoid output" in result.stdout, (
        result.stdout
    )
