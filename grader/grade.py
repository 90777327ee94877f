"""Grade a folder of learner submissions with nbgrader: grades CSV, feedback HTML, summary.

    python grader/grade.py SUBMISSIONS [--out grades] [--jobs 2] [--cell-timeout 600]
                                       [--notebook-timeout 1800] [--memory-gb 12]

SUBMISSIONS holds one folder per learner with any of the course's notebooks under their course file names,
either flat (``alice/01_tensors.ipynb``) or one folder per part as in ``notebooks/``
(``alice/01_tensors/01_tensors.ipynb``). nbgrader's own ``submitted/`` folder is accepted as it is.

How it works (see README, "Instructors"):
1. Phase 1, untrusted, in parallel: each learner × part is executed by ``nbgrader autograde`` in a scratch
   course of its own, inside a bubblewrap sandbox where only that scratch folder is writable, there is no
   network, other learners' work, the submissions, the instructor's files and the solutions are hidden,
   and memory and time are limited.
2. Phase 2, trusted, in OUT/course (the gradebook): nbgrader autogrades the executed notebooks without
   executing them again (nbgrader restores the test cells and scores their outputs), then writes feedback
   (hidden tests removed) and exports the grades.
Re-running with the same OUT grades new or changed submissions and keeps every earlier result.
"""

from __future__ import annotations

import argparse
import csv
import functools
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.preprocessors import ClearSolutions

import course

REPO = course.ROOT
SOLUTIONS = course.SOLUTIONS
PARTS = list(course.PART_NAMES)


@dataclass
class Task:
    learner: str
    student_id: str
    part: str
    source: str
    digest: str
    status: str = "pending"  # graded | timed out | error | invalid | skipped (unchanged)
    reason: str = ""
    seconds: float = 0.0


@dataclass
class Run:
    tasks: list[Task] = field(default_factory=list)
    unrecognised: dict[str, list[str]] = field(default_factory=dict)
    protections: dict[str, str] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------- discovery
def student_id(name: str) -> str:
    """An nbgrader-safe, stable id for a learner folder name (spaces, unicode and all)."""
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
        for part in PARTS:
            for candidate in (folder / f"{part}.ipynb", folder / part / f"{part}.ipynb"):
                if candidate.is_file():
                    digest = hashlib.sha256(candidate.read_bytes()).hexdigest()
                    tasks.append(Task(folder.name, student_id(folder.name), part, str(candidate), digest))
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


# ------------------------------------------------------------------------------------------- sandbox
def sandbox_available() -> bool:
    if not shutil.which("bwrap"):
        return False
    probe = [
        "bwrap",
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--unshare-net",
        "--unshare-pid",
        "--die-with-parent",
        "true",
    ]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


def sandbox_command(scratch: Path, hidden: list[Path], command: list[str]) -> list[str]:
    """bubblewrap: the whole system read-only (/tmp too: TMPDIR points into `scratch`), `hidden` folders
    replaced by empty ones, only `scratch` writable, no network (a new network namespace with only
    loopback), its own process tree."""
    args = [
        "bwrap",
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--unshare-net",
        "--unshare-pid",
        "--unshare-ipc",
        "--die-with-parent",
        "--new-session",
    ]
    hidden = [folder for folder in hidden if folder.exists()]
    for folder in hidden:
        args += ["--tmpfs", str(folder)]
    args += ["--bind", str(scratch), str(scratch)]
    for folder in hidden:  # the empty stand-ins read-only too; the scratch bind inside stays writable
        args += ["--remount-ro", str(folder)]
    return [*args, "--chdir", str(scratch), *command]


def exercise_source(part: str) -> nbformat.NotebookNode:
    """The part's nbgrader source with the solutions removed (tests, hidden ones too, kept): graded runs
    and feedback never hold the instructor's solutions."""
    nb = nbformat.read(SOLUTIONS / part / f"{part}.ipynb", as_version=4)
    nb, _ = ClearSolutions().preprocess(nb, {})
    return nb


@functools.cache
def nbgrader_ids(part: str) -> frozenset[str]:
    """The ids of the cells nbgrader tracks in a part (exercises, checks)."""
    nb = nbformat.read(SOLUTIONS / part / f"{part}.ipynb", as_version=4)
    return frozenset(c.metadata["nbgrader"]["grade_id"] for c in nb.cells if "nbgrader" in c.metadata)


def match_part(nb: nbformat.NotebookNode, part: str) -> tuple[nbformat.NotebookNode, str]:
    """The submission as nbgrader should see it, or a reason not to grade it.

    Cells with the nbgrader metadata of no cell of this part (pasted from another notebook) become learner's
    own cells: nbgrader would refuse the whole notebook for them. A notebook whose nbgrader cells all belong
    to another part is that part handed in under the wrong name: it is not graded, and the reason says so.
    """
    ids = {c.metadata["nbgrader"].get("grade_id") for c in nb.cells if "nbgrader" in c.metadata}
    if ids and not ids & nbgrader_ids(part):
        other = max(course.PART_NAMES, key=lambda name: len(ids & nbgrader_ids(name)))
        if ids & nbgrader_ids(other):
            return nb, (
                f"this notebook is Part {course.part(other).number} ({other}), handed in as "
                f"Part {course.part(part).number} ({part}.ipynb)"
            )
    for cell in nb.cells:
        foreign = cell.metadata.get("nbgrader", {}).get("grade_id") not in nbgrader_ids(part)
        if "nbgrader" in cell.metadata and foreign:
            del cell.metadata["nbgrader"]
    return nb, ""


def course_config(root: Path, cell_timeout: int, phase: str) -> str:
    lines = [
        "import sys",
        f"sys.path.insert(0, {str(REPO / 'grader')!r})",
        "c = get_config()",
        f"c.CourseDirectory.root = {str(root)!r}",
        f"c.CourseDirectory.course_id = {course.COURSE_ID!r}",
        f"c.CourseDirectory.db_url = 'sqlite:///' + {str(root / 'gradebook.db')!r}",
        # A cell that runs too long is interrupted and the notebook goes on (nbgrader reads Execute.timeout).
        f"c.Execute.timeout = {cell_timeout}",
        "c.Execute.interrupt_on_timeout = True",
        "c.Autograde.create_student = True",
    ]
    if phase == "score":
        lines += [
            "from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor",
            "from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, ClearHiddenTests,",
            "    DeduplicateIds, GetGrades, IgnorePattern, LimitOutput, OverwriteCells, OverwriteKernelspec,",
            "    SaveAutoGrades)",
            "from course_preprocessors import HideTestDetails",
            # The notebooks were executed in the sandbox: keep their outputs, restore the test cells, score.
            "c.Autograde.sanitize_preprocessors = [DeduplicateIds, OverwriteKernelspec, OverwriteCells,",
            "    CheckCellMetadata]",
            "c.Autograde.autograde_preprocessors = [IgnorePattern, ClearMetadataPreprocessor, LimitOutput,",
            "    SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]",
            "c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, HideTestDetails,",
            "    CSSHTMLHeaderPreprocessor]",
        ]
    text = "\n".join(lines) + "\n"
    # nbgrader logs a broken config file and carries on with its defaults (which would execute learners'
    # code outside the sandbox in phase 2): load it here first, so a broken one stops the run.
    from traitlets.config import Config

    exec(compile(text, "nbgrader_config.py", "exec"), {"get_config": Config})
    return text


def tool_env(**extra: str) -> dict[str, str]:
    """The environment for nbgrader: the course environment's tools (nbgrader calls `alembic`) first."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "PATH": path, **extra}
    env.pop("MPLBACKEND", None)  # kernels draw inline, so the feedback shows the learner's figures
    return env


def nbgrader(*args: str) -> list[str]:
    return [sys.executable, "-m", "nbgrader", *args, "--log-level=ERROR"]


def execute(task: Task, out: Path, options: argparse.Namespace, sandboxed: bool) -> Task:
    """Phase 1: run the submission through nbgrader autograde in its own scratch course."""
    scratch = out / "work" / task.student_id / task.part
    shutil.rmtree(scratch, ignore_errors=True)
    (scratch / "source" / task.part).mkdir(parents=True)
    (scratch / "home").mkdir()
    (scratch / "tmp").mkdir()
    submitted = scratch / "submitted" / task.student_id / task.part
    submitted.mkdir(parents=True)
    try:
        nb = nbformat.read(task.source, as_version=4)
        nbformat.validate(nb)
    except Exception as error:  # invalid JSON, empty file, not a notebook
        task.status, task.reason = "invalid", f"not a readable notebook: {str(error).splitlines()[0][:200]}"
        return task
    nb, wrong_part = match_part(nb, task.part)
    if wrong_part:
        task.status, task.reason = "invalid", wrong_part
        return task
    template = out / "template"
    shutil.copyfile(
        template / "source" / task.part / f"{task.part}.ipynb",
        scratch / "source" / task.part / f"{task.part}.ipynb",
    )
    shutil.copyfile(template / "gradebook.db", scratch / "gradebook.db")
    nbformat.write(nb, submitted / f"{task.part}.ipynb")
    (scratch / "nbgrader_config.py").write_text(course_config(scratch, options.cell_timeout, "execute"))
    script = " ".join(nbgrader("autograde", task.part, "--student", task.student_id, "--force"))
    memory = options.memory_gb * 2**30
    command = ["prlimit", f"--as={memory}", "--", "sh", "-c", script]
    env = tool_env(
        HOME=str(scratch / "home"),
        JUPYTER_RUNTIME_DIR=str(scratch / "home" / "runtime"),
        MPLCONFIGDIR=str(scratch / "home" / "mpl"),
        TMPDIR=str(scratch / "tmp"),
        OMP_NUM_THREADS="1",
        PYTHONDONTWRITEBYTECODE="1",
        TORCH_HOME=os.environ.get("TORCH_HOME", str(Path.home() / ".cache" / "torch")),
    )
    import helper

    env["PYTORCH_COURSE_DATA"] = str(helper.data_root())  # HOME moves; the data, prepared beforehand, stay
    env.pop("PYTORCH_COURSE_MIRROR", None)
    if sandboxed:
        hidden = [
            out,
            REPO / "solutions",
            REPO / "tests",
            REPO / "grader",
            Path(options.submissions).resolve(),
        ]
        command = sandbox_command(scratch, hidden, command)
    start = time.perf_counter()
    process = subprocess.Popen(
        command,
        cwd=scratch,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        log, _ = process.communicate(timeout=options.notebook_timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        task.status, task.reason = "timed out", f"the notebook ran over {options.notebook_timeout} s"
        return task
    finally:
        task.seconds = time.perf_counter() - start
    executed = scratch / "autograded" / task.student_id / task.part / f"{task.part}.ipynb"
    text = log.decode(errors="replace")
    (scratch / "grading.log").write_text(text)
    if process.returncode == 0 and executed.exists():
        task.status = "graded"
    elif "DeadKernelError" in text or "Kernel died" in text or "kernel died" in text.lower():
        task.status, task.reason = "error", "the kernel died (the notebook exited or crashed Python)"
    else:
        errors = [
            line.split("ERROR]", 1)[1].strip()
            for line in text.splitlines()
            if "| ERROR]" in line
            and not any(w in line for w in ("Traceback", "Please see", "There was an error"))
        ]
        task.status, task.reason = (
            "error",
            f"nbgrader could not grade it: {(errors or ['see grading.log'])[-1][:200]}",
        )
    return task


# ------------------------------------------------------------------------------------------- phase 2
def score(run: Run, out: Path, options: argparse.Namespace) -> None:
    course = out / "course"
    (course / "source").mkdir(parents=True, exist_ok=True)
    (course / "nbgrader_config.py").write_text(course_config(course, options.cell_timeout, "score"))
    env = tool_env()

    def call(*args: str) -> None:
        subprocess.run(nbgrader(*args), cwd=course, env=env, check=True, capture_output=True)

    graded = [t for t in run.tasks if t.status == "graded"]
    parts = sorted({t.part for t in graded})
    for part in parts:
        (course / "source" / part).mkdir(exist_ok=True)
        nbformat.write(exercise_source(part), course / "source" / part / f"{part}.ipynb")
    if parts:
        call("generate_assignment", "*", "--force")  # every part in source/, in one nbgrader process
    for task in graded:
        target = course / "submitted" / task.student_id / task.part
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        executed = out / "work" / task.student_id / task.part / "autograded" / task.student_id / task.part
        shutil.copyfile(executed / f"{task.part}.ipynb", target / f"{task.part}.ipynb")
    for part in parts:
        for step in ("autograde", "generate_feedback"):
            try:
                call(
                    step, part, "--force"
                )  # every learner of the part at once; earlier ones score the same again
            except subprocess.CalledProcessError:
                for task in [t for t in graded if t.part == part and t.status == "graded"]:
                    try:
                        call(step, part, "--student", task.student_id, "--force")
                    except subprocess.CalledProcessError as error:
                        message = error.stderr.decode(errors="replace").strip().splitlines()
                        task.status = "error"
                        task.reason = f"nbgrader could not score it ({step}): {(message or [''])[-1][:200]}"
    call("export", "--to", str(out / "nbgrader_export.csv"))


def max_points(part: str) -> float:
    nb = nbformat.read(SOLUTIONS / part / f"{part}.ipynb", as_version=4)
    return float(
        sum(
            c.metadata.get("nbgrader", {}).get("points", 0)
            for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade")
        )
    )


# ------------------------------------------------------------------------------------------- reports
def write_reports(run: Run, out: Path, state: dict) -> str:
    with open(out / "nbgrader_export.csv", newline="") as f:
        exported = {(row["student_id"], row["assignment"]): row for row in csv.DictReader(f)}
    max_scores = {part: max_points(part) for part in PARTS}
    learners = {info["student_id"]: name for name, info in state["learners"].items()}
    rows = []
    for name in sorted(state["learners"]):
        sid = state["learners"][name]["student_id"]
        total = total_max = 0.0
        for part in PARTS:
            record = state["results"].get(f"{sid}/{part}", {"status": "missing", "reason": "no submission"})
            row = exported.get((sid, part))
            score = float(row["score"]) if row and record["status"] == "graded" else 0.0
            maximum = max_scores.get(part, 0.0)
            total, total_max = total + score, total_max + maximum
            rows.append(
                [name, sid, part, f"{score:g}", f"{maximum:g}", record["status"], record.get("reason", "")]
            )
            feedback = out / "course" / "feedback" / sid / part / f"{part}.html"
            if record["status"] == "graded" and feedback.exists():
                (out / "feedback" / name).mkdir(parents=True, exist_ok=True)
                shutil.copyfile(feedback, out / "feedback" / name / f"{part}.html")
        rows.append([name, sid, "TOTAL", f"{total:g}", f"{total_max:g}", "", ""])
    with open(out / "grades.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["learner", "student_id", "part", "score", "max_score", "status", "reason"])
        writer.writerows(rows)

    results = state["results"]
    executed = sum(t.status != "skipped" for t in run.tasks)
    lines = [
        f"Graded {len(learners)} learner(s); this run executed {executed} notebook(s) "
        f"({len(run.tasks) - executed} unchanged, kept)."
    ]
    for label, statuses in [("timed out", {"timed out"}), ("errored", {"error", "invalid"})]:
        bad = [(k, v) for k, v in sorted(results.items()) if v["status"] in statuses]
        lines.append(f"Parts that {label}: {len(bad)}")
        lines += [f"  {learners.get(k.split('/')[0], k)} / {k.split('/')[1]}: {v['reason']}" for k, v in bad]
    missing = [
        (name, part)
        for name, info in sorted(state["learners"].items())
        for part in PARTS
        if f"{info['student_id']}/{part}" not in results
    ]
    lines.append(f"Parts missing: {len(missing)}")
    lines += [
        f"  {name}: {', '.join(p for n, p in missing if n == name)}"
        for name in dict.fromkeys(n for n, _ in missing)
    ]
    for name, files in sorted(run.unrecognised.items()):
        lines.append(f"  {name}: ignored notebook(s) with names not in the course: {', '.join(files)}")
    lines.append("Protections: " + "; ".join(f"{k}: {v}" for k, v in run.protections.items()))
    lines.append(f"Grades: {out / 'grades.csv'}   Feedback: {out / 'feedback'}")
    summary = "\n".join(lines)
    (out / "summary.txt").write_text(summary + "\n")
    return summary


def prepare_templates(parts: set[str], out: Path, cell_timeout: int) -> None:
    """Run nbgrader generate_assignment here, once, on the parts' exercise sources: each learner's scratch
    course starts from a copy of this gradebook, so the sandbox runs nothing but nbgrader autograde."""
    template = out / "template"
    shutil.rmtree(template, ignore_errors=True)
    if not parts:
        return
    for part in sorted(parts):
        (template / "source" / part).mkdir(parents=True)
        nbformat.write(exercise_source(part), template / "source" / part / f"{part}.ipynb")
    (template / "nbgrader_config.py").write_text(course_config(template, cell_timeout, "execute"))
    subprocess.run(nbgrader("generate_assignment", "*", "--force"), cwd=template, env=tool_env(),
                   check=True, capture_output=True)  # fmt: skip


def prepare_data(parts: set[str]) -> None:
    """Fetch or copy the data sets the submitted parts need, before any sandbox (which cannot)."""
    import helper

    helper.prepare_data(course.datasets_for(parts))  # the backbone: caches torchvision's weights if it can


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("submissions")
    parser.add_argument("--out", default="grades")
    parser.add_argument("--jobs", type=int, default=2, help="notebooks executed at once (default 2)")
    parser.add_argument("--cell-timeout", type=int, default=600, help="seconds per cell (default 600)")
    parser.add_argument(
        "--notebook-timeout", type=int, default=1800, help="seconds per notebook (default 1800)"
    )
    parser.add_argument(
        "--memory-gb", type=int, default=10, help="address-space limit per notebook (default 10)"
    )
    parser.add_argument(
        "--no-sandbox", action="store_true", help="run without bubblewrap (trusted submissions)"
    )
    options = parser.parse_args(argv)
    submissions, out = Path(options.submissions).resolve(), Path(options.out).resolve()
    if not submissions.is_dir():
        parser.error(f"no folder of submissions at {submissions}")
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / "state.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {"learners": {}, "results": {}}

    run = Run()
    learners, run.tasks, run.unrecognised = discover(submissions)
    for learner in learners:
        state["learners"].setdefault(learner, {"student_id": student_id(learner)})
    sandboxed = not options.no_sandbox and sandbox_available()
    run.protections = {
        "time limits": f"{options.cell_timeout} s per cell, {options.notebook_timeout} s per notebook",
        "memory limit": f"{options.memory_gb} GiB address space per notebook",
        "scratch copy per notebook": "on",
        "filesystem isolation": "on (bubblewrap)"
        if sandboxed
        else "OFF (bubblewrap not available or disabled)",
        "network": "off (own network namespace)"
        if sandboxed
        else "NOT blocked (bubblewrap not available or disabled)",
    }
    for task in run.tasks:
        previous = state["results"].get(f"{task.student_id}/{task.part}")
        if previous and previous.get("digest") == task.digest and previous["status"] != "pending":
            task.status = "skipped"
    # Longest first (later parts train more), so that the last notebook still running is a short one.
    todo = sorted((t for t in run.tasks if t.status == "pending"), key=lambda t: t.part, reverse=True)
    prepare_data({t.part for t in todo})
    prepare_templates({t.part for t in todo}, out, options.cell_timeout)
    with ThreadPoolExecutor(max_workers=max(1, options.jobs)) as pool:
        for task in pool.map(lambda t: execute(t, out, options, sandboxed), todo):
            print(
                f"  {task.learner} / {task.part}: {task.status} ({task.seconds:.0f} s) {task.reason}",
                flush=True,
            )
    score(run, out, options)
    for task in todo:
        state["results"][f"{task.student_id}/{task.part}"] = {
            "digest": task.digest,
            "status": task.status,
            "reason": task.reason,
            "seconds": round(task.seconds, 1),
        }
    state_path.write_text(json.dumps(state, indent=1, ensure_ascii=False))
    print(write_reports(run, out, state))
    return 0


if __name__ == "__main__":
    sys.exit(main())
