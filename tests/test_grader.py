"""Unit tests of the grader's modules (grader/): the sandbox's command and what it holds, the cache key, the
output caps and what feedback shows (the verdicts themselves: tests/test_judges.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_output

import course
from grader import grading, intake, sandbox, sources, versions
from grader.execution import CapOutputs
from grader.feedback import EscapeMarkers

CHECK = {"nbgrader": {"grade": True, "solution": False, "grade_id": "test_x", "points": 1}}


def _sandbox(uid: int | None) -> sandbox.Sandbox:
    return sandbox.Sandbox(Path("/tmp/pytorch-grade-x"), sandbox.readonly([]), sandbox.system_links(), uid)


def test_the_allow_list_holds_the_environment_and_modules_but_not_the_checkout():
    paths = sandbox.readonly([])
    assert course.ROOT / "helper.py" in paths and course.ROOT / "course.py" in paths
    assert not any(p in (course.ROOT, course.ROOT / ".git") for p in paths), paths
    assert not any(p.is_relative_to(course.SOLUTIONS) or p.name == "tests" for p in paths), paths


@pytest.mark.parametrize("uid", [None, sandbox.FIRST_UID])
def test_the_command_drops_every_privilege(uid):
    command = _sandbox(uid).command(["python"])
    bwrap = command[command.index("bwrap") :]
    for flag in ("--unshare-net", "--unshare-pid", "--die-with-parent", "--clearenv"):
        assert flag in bwrap
    assert bwrap[bwrap.index("--cap-drop") + 1] == "ALL"
    assert command[0] == "prlimit" and any(a.startswith("--as=") for a in command)
    if uid is None:
        assert "--unshare-user" in bwrap and "setpriv" not in " ".join(command)
    else:
        setpriv = next(i for i, a in enumerate(command) if a.endswith("setpriv"))
        assert f"--reuid={uid}" in command[setpriv:] and "--no-new-privs" in command[setpriv:]
        assert (
            "--bounding-set=-all" in command[setpriv:] and f"--nproc={sandbox.Limits().processes}" in command
        )


@pytest.mark.skipif(bool(sandbox.available()), reason=sandbox.available() or "-")
def test_inside_the_sandbox_the_checkout_is_absent_and_only_the_scratch_is_writable():
    uid = sandbox.FIRST_UID if os.geteuid() == 0 else None
    scratch = sandbox.make_scratch(uid)
    try:
        box = sandbox.Sandbox(scratch, sandbox.readonly([]), sandbox.system_links(), uid)
        script = (
            f"test ! -e {course.ROOT}/.git && test ! -e {course.SOLUTIONS} && test -r {course.ROOT}/helper.py"
            " && touch written && test -e written && ! touch /usr/x 2>/dev/null"
            + (" && ! touch ../x 2>/dev/null" if uid is not None else "")  # as root: the scratch is not its
            + " && id -u"
        )
        command = box.command(["/bin/sh", "-c", script])
        result = subprocess.run(command, check=False, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() != "0" or uid is None  # root's grader runs the learner as another uid
        assert not (scratch / "work" / "written").exists()  # its working folder is a tmpfs of its own
    finally:
        sandbox.remove_scratch(scratch)


def test_the_cache_key_covers_the_submission_the_part_the_limits_the_sandbox_and_the_secret():
    data = course.PARTS[0].exercise.read_bytes()
    part, other_part = (sources.part_source(p.name) for p in course.PARTS[:2])
    key = versions.cache_key(data, part, sandbox.Limits())
    assert key == versions.cache_key(data, part, sandbox.Limits())
    assert key != versions.cache_key(data, part, sandbox.Limits(cell_seconds=20))
    assert key != versions.cache_key(data, other_part, sandbox.Limits())  # other checks, same bytes
    assert key != versions.cache_key(data, part, sandbox.Limits(), secret="another secret")  # other inputs
    assert key != versions.cache_key(data, part, sandbox.Limits(), sandboxed=False)  # --no-sandbox: not kept
    assert key != versions.cache_key(data + b" ", part, sandbox.Limits())


def test_the_cache_key_follows_what_grades_not_the_reports(tmp_path, monkeypatch):
    """A change to the report code keeps the records; one to the code that judges them does not (the
    course version a worker must share covers both)."""
    grader = tmp_path / "grader"
    shutil.copytree(course.ROOT / "grader", grader, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(versions, "GRADER", grader)

    def hashes() -> tuple[str, str]:
        versions.grading_version.cache_clear()
        versions.course_version.cache_clear()
        return versions.grading_version(), versions.course_version()

    try:
        before = hashes()
        (grader / "reports.py").write_text((grader / "reports.py").read_text() + "\n# a typo fixed\n")
        after_reports = hashes()
        assert after_reports[0] == before[0] and after_reports[1] != before[1]
        for module in ("verdicts.py", "grading.py", "intake.py"):  # a judge, the worker's grading, the intake
            (grader / module).write_text((grader / module).read_text() + "\n# changed\n")
            changed = hashes()
            assert changed[0] != before[0], module
            before = changed
    finally:
        monkeypatch.undo()
        hashes()  # the real ones again, for the other tests of this process


def test_without_bubblewrap_the_grader_stops_before_any_notebook_runs(tmp_path):
    (tmp_path / "learner").mkdir()
    shutil.copy(course.PARTS[0].solution, tmp_path / "learner")
    environment = {**os.environ, "PATH": str(Path(sys.executable).parent)}  # no bwrap on it
    result = subprocess.run(
        [sys.executable, "-m", "grader", str(tmp_path), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        check=False,
        cwd=course.ROOT,
        env=environment,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "cannot be sandboxed on this machine: bubblewrap is not installed" in result.stderr
    assert "--no-sandbox" in result.stderr and not (tmp_path / "out" / "records").exists()


def test_the_uid_locks_live_only_in_a_folder_of_roots(tmp_path):
    """Root's grader keeps its sandboxes' uid locks in a folder it made itself: a link planted there, or a
    folder another user owns or may write, stops it."""
    planted = tmp_path / "planted"
    planted.symlink_to(tmp_path)
    with pytest.raises(RuntimeError, match="not a folder the grader made"):
        grading.trusted_folder(planted)
    foreign = tmp_path / "foreign"
    foreign.mkdir(mode=0o700)
    if os.geteuid() == 0:
        os.chown(foreign, 12345, 12345)
    with pytest.raises(RuntimeError, match="owned by uid"):
        grading.trusted_folder(foreign)
    if os.geteuid() == 0:
        shared = tmp_path / "shared"
        shared.mkdir()
        shared.chmod(0o777)
        with pytest.raises(RuntimeError, match="mode 777"):
            grading.trusted_folder(shared)
        os.close(grading.trusted_folder(tmp_path / "made"))
        assert (tmp_path / "made").stat().st_mode & 0o777 == 0o700


def test_outputs_are_capped():
    cell = new_code_cell("print", outputs=[new_output("stream", text="x" * 5_000_000)])
    cell.outputs.append(new_output("display_data", data={"text/html": "<p>" * 1_000_000, "text/plain": "p"}))
    widget = {"model_id": "abc", "version_major": 2}  # tqdm's widget in a notebook: a JSON output
    cell.outputs.append(new_output("display_data", data={"application/vnd.jupyter.widget-view+json": widget}))
    CapOutputs().preprocess_cell(cell, {}, 0)
    assert (
        len(cell.outputs[0].text) < 110_000
        and "truncated by the grader (5,000,000 bytes" in cell.outputs[0].text
    )
    assert len(cell.outputs[1].data["text/html"]) < 110_000 and cell.outputs[1].data["text/plain"] == "p"
    assert cell.outputs[2].data["application/vnd.jupyter.widget-view+json"] == widget


def test_a_notebooks_outputs_and_its_markup_are_capped_whatever_the_number_of_cells():
    """What the feedback's sanitiser reads is bounded: many cells of 100 kB outputs keep 16 MB in all, of
    which 2 MB of HTML (past it, an output keeps its plain text)."""
    from grader import execution

    html = {"text/html": "<b>x</b>" * 12_000, "text/plain": "x"}
    cells = [new_code_cell("", outputs=[new_output("display_data", data=dict(html))]) for _ in range(40)]
    cells += [new_code_cell("", outputs=[new_output("stream", text="y" * 99_000)]) for _ in range(400)]
    nb = nbformat.v4.new_notebook(cells=cells)
    CapOutputs().preprocess(nb, {})
    kept = [o for c in nb.cells for o in c.outputs]
    markup = sum(len(o.get("data", {}).get("text/html", "")) for o in kept)
    assert markup <= execution.MARKUP_LIMIT and any("text/html" in o.get("data", {}) for o in kept)
    assert all(o.get("data", {}).get("text/plain") == "x" for o in kept if o.output_type == "display_data")
    assert sum(execution._size(o) for o in kept) <= execution.NOTEBOOK_OUTPUT_LIMIT + 100 * len(nb.cells)
    assert "the notebook's outputs are over 16 MB" in kept[-1].text


def test_marker_words_in_a_learners_cell_are_escaped_not_in_checks():
    answer = new_code_cell("x = 1  # ### BEGIN HIDDEN TESTS")
    check = new_code_cell("### BEGIN HIDDEN TESTS\nassert x\n### END HIDDEN TESTS", metadata=CHECK)
    for cell in (answer, check):
        EscapeMarkers().preprocess_cell(cell, {}, 0)
    assert answer.source == "x = 1  # ### BEGIN HIDDEN·TESTS"
    assert check.source.startswith("### BEGIN HIDDEN TESTS")


def test_a_notebook_of_another_part_is_named_and_pasted_checks_become_the_learners():
    part = course.PARTS[0].name
    other = course.PARTS[1].solution.read_bytes()
    _, reason = intake.admit(intake.Submission("a", "a-1", part, other))
    assert reason == "this is Part 2 (02_neural_networks), expected Part 1 (01_tensors.ipynb)"
    own = nbformat.read(course.PARTS[0].solution, as_version=4)
    pasted = next(c for c in nbformat.reads(other.decode(), as_version=4).cells if "nbgrader" in c.metadata)
    own.cells.append(pasted)
    admitted, reason = intake.admit(intake.Submission("a", "a-1", part, nbformat.writes(own).encode()))
    assert (
        reason == "" and "nbgrader" not in nbformat.reads(admitted.decode(), as_version=4).cells[-1].metadata
    )


def test_the_grading_process_never_imports_torch(tmp_path):
    """What the process that runs nbgrader imports (grader.execution.run, here on an empty course):
    nothing that decodes a tensor."""
    program = f"""
import sys
from grader import execution
task = execution.Task("x", "{course.PARTS[0].name}", {str(tmp_path)!r}, 10, [], [], None, {{}}, {{}}, False)
print(execution.run(task).status)
print(sorted({{m.split('.')[0] for m in sys.modules}} & {{'torch', 'numpy', 'safetensors', 'checks'}}))
"""
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, cwd=course.ROOT
    )
    assert result.stdout.split("\n")[:2] == ["error", "['checks']"], result.stdout + result.stderr


def test_the_grading_process_takes_in_any_answer_the_wire_allows():
    from checks import wire
    from grader import execution

    assert execution.ANSWER_LIMIT >= wire.MAX_BYTES * 4 // 3 + wire.MAX_JSON
