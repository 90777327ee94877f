"""The learner's path in a real JupyterLab, driven by headless Chromium through Playwright.

The server runs on a free loopback port over a disposable copy of the course (README, notebooks/, one
solution), so nothing a cell writes lands in the repository. Screenshots go to artifacts/screenshots/.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from servers import CHROMIUM, CHROMIUM_FLAGS, LOCAL, free_port, jupyter_address

import course

SHOTS = course.ROOT / "artifacts" / "screenshots"
SOLUTION_PART = course.PARTS[0]

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium on this machine: `make browser` installs Debian's chromium where it can",
)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server as `make lab` starts it, over a copy of the course."""
    root = tmp_path_factory.mktemp("course")
    shutil.copy(course.ROOT / "README.md", root / "README.md")
    shutil.copytree(course.EXERCISES, root / "notebooks")
    (root / "solutions").mkdir()
    shutil.copytree(SOLUTION_PART.solution.parent, root / "solutions" / SOLUTION_PART.name)
    port, token = free_port(), secrets.token_hex(16)
    log_path = root.parent / "jupyterlab.log"
    with open(log_path, "w") as log:
        server = _start_lab(root, port, token, log)
    base = jupyter_address(server, log_path, token, f"JupyterLab (asked for port {port})")
    yield base, token, root
    server.terminate()
    server.wait(timeout=30)


def _start_lab(root: Path, port: int, token: str, log) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            f"--port={port}",
            "--ip=127.0.0.1",
            f"--ServerApp.root_dir={root}",
            f"--LabApp.workspaces_dir={root.parent / 'workspaces'}",
            f"--IdentityProvider.token={token}",
            "--LabApp.default_url=/lab/tree/README.md",
            "--ServerApp.open_browser=False",
            *(["--allow-root"] if os.geteuid() == 0 else []),
        ],
        cwd=root,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "MPLBACKEND": "module://matplotlib_inline.backend_inline"},
    )


@pytest.fixture(scope="module")
def page(lab):
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(60_000)
        yield page
        browser.close()


def _kernels(base: str, token: str) -> list[dict]:
    for _ in range(4):  # the server answers 500 while a kernel is half shut down
        with contextlib.suppress(urllib.error.HTTPError):
            return json.loads(LOCAL.open(f"{base}/api/kernels?token={token}", timeout=10).read())
        time.sleep(1)
    return json.loads(LOCAL.open(f"{base}/api/kernels?token={token}", timeout=10).read())


def _wait_until_idle(page, base, token, seconds=300) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        busy = page.locator(".jp-InputPrompt", has_text="[*]").count()
        states = {k["execution_state"] for k in _kernels(base, token)}
        if busy == 0 and states <= {"idle"}:
            return
        time.sleep(1)
    raise AssertionError(f"cells still running after {seconds} s")


def _open(page, base, token, path: str) -> None:
    page.goto(f"{base}/lab/tree/{path}?reset&token={token}")  # reset: no tabs restored from before
    page.locator(".jp-Notebook .jp-Cell").first.wait_for()
    page.wait_for_function(
        "() => !document.querySelector('.jp-Notebook-ExecutionIndicator[data-status=\"busy\"]')"
    )
    deadline = time.time() + 60
    while not _kernels(base, token) and time.time() < deadline:  # the kernel starts with the notebook
        time.sleep(0.5)
    _wait_until_idle(page, base, token)


def _save_and_read(page, root: Path, path: str) -> dict:
    """Save the open notebook (Ctrl+S) and read it back once the save has landed on disk."""
    target = root / path
    before = target.stat().st_mtime_ns
    page.locator(".jp-Notebook").first.click()
    page.keyboard.press("Control+s")
    deadline = time.time() + 60
    while target.stat().st_mtime_ns == before:  # Jupyter writes atomically: a new file, or the old one
        assert time.time() < deadline, f"{path} was not saved within 60 s of Ctrl+S"
        time.sleep(0.1)
    page.wait_for_function("() => !document.querySelector('.lm-TabBar-tab.jp-mod-dirty')")
    return json.loads(target.read_text())


def _shut_down_kernels(page, base, token) -> None:
    """Leave the notebook and stop its kernel, so the next notebook starts alone."""
    page.goto("about:blank")
    for kernel in _kernels(base, token):
        req = urllib.request.Request(f"{base}/api/kernels/{kernel['id']}?token={token}", method="DELETE")
        with contextlib.suppress(urllib.error.HTTPError):  # already shutting down
            LOCAL.open(req, timeout=30)
    deadline = time.time() + 30
    while _kernels(base, token) and time.time() < deadline:
        time.sleep(0.5)


def test_landing_page_lists_the_eight_parts_in_order(lab, page):
    base, token, _ = lab
    page.goto(f"{base}/?token={token}")  # where `make lab` opens the browser
    preview = page.locator(".jp-RenderedMarkdown", has_text="Learners").first
    preview.wait_for()
    text = preview.inner_text()
    positions = [text.find(part) for part in course.PART_NAMES]
    assert all(p >= 0 for p in positions), f"the landing page does not list every part: {text[:500]}"
    assert positions == sorted(positions), "the parts are not listed in order"
    page.screenshot(path=str(SHOTS / "00_landing_page.png"))


@pytest.mark.parametrize("part", course.PART_NAMES)
def test_exercise_runs_up_to_its_first_exercise(lab, page, part):
    base, token, root = lab
    path = f"notebooks/{part}/{part}.ipynb"
    nb = json.loads(course.part(part).exercise.read_text())
    first = next(
        i for i, c in enumerate(nb["cells"]) if c.get("metadata", {}).get("nbgrader", {}).get("solution")
    )
    draws = any(
        re.search(r"plt\.|imshow|view_classify", "".join(c["source"]))
        for c in nb["cells"][:first]
        if c["cell_type"] == "code"
    )
    _open(page, base, token, path)
    assert page.get_by_role("button", name=re.compile("Validate")).count() >= 1, "no nbgrader Validate button"
    page.locator(".jp-Notebook .jp-Cell").first.click()
    for _ in range(first):
        page.keyboard.press("Shift+Enter")
        time.sleep(0.2)
    _wait_until_idle(page, base, token)
    page.screenshot(path=str(SHOTS / f"{part}.png"), full_page=False)
    assert {k["execution_state"] for k in _kernels(base, token)} == {"idle"}, "the kernel is not alive"
    if draws:
        assert page.locator(".jp-OutputArea-output img").count() >= 1, "no figure was rendered"
    saved = _save_and_read(page, root, path)
    errors = [
        o.get("ename", "") + ": " + o.get("evalue", "")
        for c in saved["cells"][:first]
        if c["cell_type"] == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors, f"{part}: errors before the first exercise: {errors}"
    ran = [c for c in saved["cells"][:first] if c["cell_type"] == "code"]
    assert ran and all(c.get("execution_count") for c in ran), (
        f"{part}: not every cell before the first exercise ran"
    )
    _shut_down_kernels(page, base, token)


def test_a_solution_notebook_passes_every_check_in_the_browser(lab, page):
    base, token, root = lab
    path = f"solutions/{SOLUTION_PART.name}/{SOLUTION_PART.name}.ipynb"
    _open(page, base, token, path)
    page.get_by_role("menuitem", name="Run").click()
    page.get_by_role("menuitem", name=re.compile("^Run All Cells")).click()
    time.sleep(1)
    _wait_until_idle(page, base, token)
    page.screenshot(path=str(SHOTS / f"solution_{SOLUTION_PART.name}.png"))
    saved = _save_and_read(page, root, path)
    graded = [c for c in saved["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("grade")]
    for cell in graded:
        outputs = cell.get("outputs", [])
        text = "".join("".join(o.get("text", "")) for o in outputs)  # saved as a string or a list of lines
        assert not any(o.get("output_type") == "error" for o in outputs), cell["metadata"]["nbgrader"][
            "grade_id"
        ]
        assert "✓" in text, f"{cell['metadata']['nbgrader']['grade_id']} printed no ✓: {text!r}"
    _shut_down_kernels(page, base, token)
