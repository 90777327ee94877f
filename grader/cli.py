"""Grade a folder of learner submissions with nbgrader: grades CSV, feedback HTML, summary.

    python -m grader SUBMISSIONS [--out grades] [--jobs 2] [--cell-timeout 600]
                                 [--notebook-timeout 1800] [--memory-gb 10] [--force]
                                 [--source solutions]

SUBMISSIONS holds one folder per learner with any of the course's notebooks under their course file names,
either flat (``alice/01_tensors.ipynb``) or one folder per part as in ``notebooks/``
(``alice/01_tensors/01_tensors.ipynb``). nbgrader's own ``submitted/`` folder is accepted as it is.

1. Phase 1 (:mod:`grader.execution`), in parallel: each learner × part is autograded by nbgrader in a scratch
   course of its own, its kernel in the sandbox (:mod:`grader.sandbox`).
2. Phase 2 (:mod:`grader.scoring`), in OUT/course: nbgrader scores the executed notebooks without executing
   them again (the check cells restored from the source) and writes the feedback.
3. Reports (:mod:`grader.reports`): grades.csv, summary.txt, feedback/, logs/, and a table.
A re-run grades what is new or changed (the submission, the part's checks, the grader or the limits).
``--source`` grades with another copy of the parts' nbgrader sources (say, a term's own hidden tests).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import time
import unicodedata
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat
from nbgrader.preprocessors import ClearSolutions
from tqdm import tqdm

import course
from grader import reports, sandbox, scoring

GRADER = Path(__file__).resolve().parent


@dataclass
class Task:
    learner: str
    student_id: str
    part: str
    source: str
    digest: str = ""
    status: str = "pending"  # graded | timed out | error | invalid | skipped (unchanged)
    reason: str = ""
    seconds: float = 0.0
    timed_out_cells: list[int] = field(default_factory=list)
    score: float | None = None


# ------------------------------------------------------------------------------------------- discovery
def student_id(name: str) -> str:
    """An nbgrader-safe, stable id for a learner folder name (spaces, unicode and all): "Zoë Ångström" →
    "zoe-angstrom-" and six hex digits of its hash."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9]+", "-", ascii_name).strip("-").lower()[:40] or "learner"
    return f"{slug}-{hashlib.sha1(name.encode()).hexdigest()[:6]}"


def discover(submissions: Path) -> tuple[list[str], list[Task], dict[str, list[str]]]:
    """The learners (one folder each), their notebooks to grade, and notebooks named like no part."""
    root = submissions / "submitted" if (submissions / "submitted").is_dir() else submissions
    learners, tasks, unrecognised = [], [], {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        learners.append(folder.name)
        found = set()
        for part in course.PART_NAMES:
            for candidate in (folder / f"{part}.ipynb", folder / part / f"{part}.ipynb"):
                if candidate.is_file():
                    tasks.append(Task(folder.name, student_id(folder.name), part, str(candidate)))
                    found.add(candidate.resolve())
                    break
        others = [
            str(p.relative_to(folder))
            for p in folder.rglob("*.ipynb")
            if p.resolve() not in found and ".ipynb_checkpoints" not in p.parts
        ]
        if others:
            unrecognised[folder.name] = others
    return learners, tasks, unrecognised


# ------------------------------------------------------------------------------------------- the parts
def part_source(part: str, sources: Path = course.SOLUTIONS) -> Path:
    """The part's nbgrader source notebook (solutions, checks and hidden tests) in the folder of sources."""
    return sources / part / f"{part}.ipynb"


def exercise_source(part: str, sources: Path = course.SOLUTIONS) -> nbformat.NotebookNode:
    """The part's nbgrader source with the solutions removed (tests, hidden ones too, kept): graded runs
    and feedback never hold the instructor's solutions."""
    nb = nbformat.read(part_source(part, sources), as_version=4)
    nb, _ = ClearSolutions().preprocess(nb, {})
    return nb


@functools.cache
def nbgrader_ids(part: str, sources: Path = course.SOLUTIONS) -> frozenset[str]:
    """The ids of the cells nbgrader tracks in a part (exercises, checks)."""
    nb = nbformat.read(part_source(part, sources), as_version=4)
    return frozenset(c.metadata["nbgrader"]["grade_id"] for c in nb.cells if "nbgrader" in c.metadata)


def match_part(
    nb: nbformat.NotebookNode, part: str, sources: Path = course.SOLUTIONS
) -> tuple[nbformat.NotebookNode, str]:
    """The submission as nbgrader should see it, or a reason not to grade it.

    Cells with the nbgrader metadata of no cell of this part (pasted from another notebook) become learner's
    own cells: nbgrader would refuse the whole notebook for them. A notebook whose nbgrader cells all belong
    to another part is that part handed in under the wrong name: it is not graded, and the reason says so.
    """
    ids = {c.metadata["nbgrader"].get("grade_id") for c in nb.cells if "nbgrader" in c.metadata}
    if ids and not ids & nbgrader_ids(part, sources):
        other = max(course.PART_NAMES, key=lambda name: len(ids & nbgrader_ids(name, sources)))
        if ids & nbgrader_ids(other, sources):
            return nb, (
                f"this is Part {course.part(other).number} ({other}), expected Part "
                f"{course.part(part).number} ({part}.ipynb)"
            )
    for cell in nb.cells:
        foreign = cell.metadata.get("nbgrader", {}).get("grade_id") not in nbgrader_ids(part, sources)
        if "nbgrader" in cell.metadata and foreign:
            del cell.metadata["nbgrader"]
    return nb, ""


@functools.cache
def grader_version() -> str:
    """A digest of the code that decides a grade: the grader, the course's modules."""
    files = sorted(GRADER.glob("*.py")) + [course.ROOT / n for n in ("helper.py", "course.py")]
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()


def cache_key(task: Task, limits: sandbox.Limits, sources: Path = course.SOLUTIONS) -> str:
    """What a grade depends on: the submission, the part's source with its hidden tests, the grader, the
    limits. A re-run executes a notebook again when any of them changed."""
    digest = hashlib.sha256()
    for piece in (
        Path(task.source).read_bytes(),
        part_source(task.part, sources).read_bytes(),
        grader_version().encode(),
        json.dumps(asdict(limits), sort_keys=True).encode(),
    ):
        digest.update(hashlib.sha256(piece).digest())
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------- phase 1
@dataclass
class Setting:
    out: Path
    limits: sandbox.Limits
    sandboxed: bool
    sources: Path
    readonly: tuple[Path, ...] = ()
    symlinks: tuple[tuple[str, str], ...] = ()
    environment: dict[str, str] = field(default_factory=dict)


def setting(out: Path, limits: sandbox.Limits, sandboxed: bool, sources: Path) -> Setting:
    """What every sandbox gets: the allow-list (with the data and the weights cache) and the environment."""
    import torch

    import helper

    data, hub = helper.data_root(), Path(torch.hub.get_dir()).parent
    environment = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "PYTORCH_COURSE_DATA": str(data),  # prepared beforehand, read-only inside
        "TORCH_HOME": str(hub),
        "OMP_NUM_THREADS": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "LANG": "C.UTF-8",
        "USER": "learner",
    }
    readonly = sandbox.readonly([data, hub])
    return Setting(out, limits, sandboxed, sources, readonly, sandbox.system_links(), environment)


def execute(task: Task, s: Setting, slots: queue.Queue) -> Task:
    """Phase 1 for one task: a trusted scratch course, then nbgrader autograde in a process of its own."""
    root = s.out / "work" / task.student_id / task.part
    shutil.rmtree(root, ignore_errors=True)
    submitted = root / "submitted" / task.student_id / task.part
    submitted.mkdir(parents=True)
    try:
        nb = nbformat.read(task.source, as_version=4)
        nbformat.validate(nb)
    except Exception as error:  # invalid JSON, empty file, not a notebook
        task.status, task.reason = "invalid", f"not a readable notebook: {str(error).splitlines()[0][:200]}"
        return task
    nb, wrong_part = match_part(nb, task.part, s.sources)
    if wrong_part:
        task.status, task.reason = "invalid", wrong_part
        return task
    template = s.out / "template"
    shutil.copytree(template / "source" / task.part, root / "source" / task.part)
    shutil.copyfile(template / "gradebook.db", root / "gradebook.db")
    nbformat.write(nb, submitted / f"{task.part}.ipynb")
    slot = slots.get()
    try:
        return run_phase_one(task, s, root, slot)
    finally:
        slots.put(slot)


def run_phase_one(task: Task, s: Setting, root: Path, slot: int) -> Task:
    from grader import execution

    uid = sandbox.FIRST_UID + slot if os.geteuid() == 0 else None
    job = execution.Task(
        task.student_id,
        task.part,
        str(root),
        s.limits.cell_seconds,
        [str(p) for p in s.readonly],
        [list(pair) for pair in s.symlinks],
        uid,
        asdict(s.limits),
        s.environment,
        s.sandboxed,
    )
    (root / "task.json").write_text(json.dumps(asdict(job)))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("MPLBACKEND", None)  # kernels draw inline, so the feedback shows the learner's figures
    command = [sys.executable, "-m", "grader.execution", str(root / "task.json")]
    start = time.perf_counter()
    process = subprocess.Popen(
        command,
        cwd=course.ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        log, _ = process.communicate(timeout=s.limits.notebook_seconds)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the kernel's sandbox dies with its parent
        log, _ = process.communicate()
        task.status, task.reason = "timed out", f"the notebook ran over {s.limits.notebook_seconds} s"
        return task
    finally:
        task.seconds = time.perf_counter() - start
        (root / "phase1.log").write_bytes(log or b"")
    result = root / "result.json"
    if not result.exists():
        task.status, task.reason = "error", f"the grader's process failed: {scoring.last_line(log.decode())}"
        return task
    outcome = json.loads(result.read_text())
    task.status, task.reason = outcome["status"], outcome["reason"]
    task.timed_out_cells = outcome.get("timed_out_cells") or []
    if outcome.get("kernel_died") is not None:
        cell = outcome["kernel_died"] + 1
        task.reason = f"the kernel died in cell {cell} of the notebook; the checks after it did not run"
    return task


# ------------------------------------------------------------------------------------------- phase 2
def phase_two(tasks: list[Task], out: Path, sources: Path) -> None:
    root = out / "course"
    graded = [t for t in tasks if t.status == "graded"]
    parts = sorted({t.part for t in graded})
    for part in parts:
        (root / "source" / part).mkdir(parents=True, exist_ok=True)
        nbformat.write(exercise_source(part, sources), root / "source" / part / f"{part}.ipynb")
    scoring.generate(root, parts)
    for task in graded:
        target = root / "submitted" / task.student_id / task.part
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        executed = out / "work" / task.student_id / task.part / "autograded" / task.student_id / task.part
        shutil.copyfile(executed / f"{task.part}.ipynb", target / f"{task.part}.ipynb")
        scored = scoring.score(root, task.part, task.student_id)
        logs = out / "logs" / task.learner
        logs.mkdir(parents=True, exist_ok=True)
        (logs / f"{task.part}.log").write_text(scored.log)
        if scored.score is None:
            task.status, task.reason = "error", scored.error
        else:
            task.score = scored.score
            if scored.feedback_error:
                task.reason = "; ".join(r for r in (task.reason, scored.feedback_error) if r)


def prepare_template(parts: set[str], out: Path, sources: Path) -> None:
    """The parts' sources in a gradebook, generated once: each task's scratch course starts from a copy."""
    template = out / "template"
    shutil.rmtree(template, ignore_errors=True)
    for part in sorted(parts):
        (template / "source" / part).mkdir(parents=True)
        nbformat.write(exercise_source(part, sources), template / "source" / part / f"{part}.ipynb")
    if parts:
        scoring.generate(template, sorted(parts))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader", description=__doc__.split("\n\n")[0])
    parser.add_argument("submissions")
    parser.add_argument("--out", default="grades")
    parser.add_argument("--jobs", type=int, default=2, help="notebooks executed at once (default 2)")
    parser.add_argument("--cell-timeout", type=int, default=600, help="seconds per cell (default 600)")
    parser.add_argument("--notebook-timeout", type=int, default=1800, help="seconds per notebook (1800)")
    parser.add_argument("--memory-gb", type=int, default=10, help="address space per notebook (10 GiB)")
    parser.add_argument("--force", action="store_true", help="grade every notebook again")
    parser.add_argument(
        "--source",
        default=str(course.SOLUTIONS),
        help="the parts' nbgrader sources, NN_topic/NN_topic.ipynb, checks and hidden tests included "
        "(default: the course's solutions/)",
    )
    parser.add_argument(
        "--no-sandbox", action="store_true", help="run learners' code without bubblewrap (trusted code only)"
    )
    options = parser.parse_args(argv)
    # nbgrader runs `alembic` from PATH: the course environment's tools first, wherever this was started from
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    submissions, out = Path(options.submissions).resolve(), Path(options.out).resolve()
    if not submissions.is_dir():
        parser.error(f"no folder of submissions at {submissions}")
    sources = Path(options.source).resolve()
    missing = [str(part_source(p, sources)) for p in course.PART_NAMES]
    missing = [path for path in missing if not Path(path).is_file()]
    if missing:
        parser.error(f"--source {sources} lacks the parts' nbgrader sources: {', '.join(missing)}")
    out.mkdir(parents=True, exist_ok=True)
    limits = sandbox.Limits(
        memory_bytes=options.memory_gb * 2**30,
        cell_seconds=options.cell_timeout,
        notebook_seconds=options.notebook_timeout,
    )
    why_not = "disabled (--no-sandbox)" if options.no_sandbox else sandbox.available()
    state_path = out / "state.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {"learners": {}, "results": {}}

    learners, tasks, unrecognised = discover(submissions)
    for learner in learners:
        state["learners"].setdefault(learner, {"student_id": student_id(learner)})
    for task in tasks:
        task.digest = cache_key(task, limits, sources)
        previous = state["results"].get(f"{task.student_id}/{task.part}")
        if previous and previous.get("digest") == task.digest and not options.force:
            task.status = "skipped"
    # Longest first (later parts train more), so that the last notebook still running is a short one.
    todo = sorted((t for t in tasks if t.status == "pending"), key=lambda t: t.part, reverse=True)
    import helper

    started = time.perf_counter()
    helper.prepare_data(course.datasets_for({t.part for t in todo}))  # before any sandbox, which cannot
    prepare_template({t.part for t in todo}, out, sources)
    s = setting(out, limits, not why_not, sources)
    started_phase_one = time.perf_counter()
    slots: queue.Queue = queue.Queue()
    for slot in range(max(1, options.jobs)):
        slots.put(slot)
    with (
        ThreadPoolExecutor(max_workers=max(1, options.jobs)) as pool,
        tqdm(total=len(todo), desc="grading", unit="notebook", file=sys.stderr) as bar,
    ):
        for done in as_completed([pool.submit(execute, t, s, slots) for t in todo]):
            task = done.result()
            bar.update()
            bar.write(f"  {task.learner} / {task.part}: {task.status} ({task.seconds:.0f} s) {task.reason}")
    executed = time.perf_counter()
    phase_two(todo, out, sources)
    print(
        f"prepared in {started_phase_one - started:.0f} s, executed in {executed - started_phase_one:.0f} s, "
        f"scored in {time.perf_counter() - executed:.0f} s",
        file=sys.stderr,
    )
    for task in todo:
        state["results"][f"{task.student_id}/{task.part}"] = {
            "digest": task.digest,
            "status": task.status,
            "reason": task.reason,
            "score": task.score,
            "timed_out_cells": task.timed_out_cells,
            "seconds": round(task.seconds, 1),
        }
    state_path.write_text(json.dumps(state, indent=1, ensure_ascii=False))
    protections = reports.protections(limits, why_not)
    print(reports.write(out, state, tasks, unrecognised, protections, sources))
    return 0
