"""Grade a folder of learner submissions with nbgrader: grades CSV, feedback HTML, summary.

    python -m grader SUBMISSIONS [--out grades] [--jobs 2 | --scheduler tcp://HOST:PORT]
                                 [--cell-timeout 600] [--notebook-timeout 1800] [--memory-gb 10]
                                 [--force] [--source solutions]

SUBMISSIONS holds one folder per learner with any of the course's notebooks under their course file names,
either flat (``alice/01_tensors.ipynb``) or one folder per part as in ``notebooks/``
(``alice/01_tensors/01_tensors.ipynb``). nbgrader's own ``submitted/`` folder is accepted as it is.

1. Phase 1 (:mod:`grader.cluster`, :mod:`grader.execution`), in parallel on Dask: each learner × part is a
   task that autogrades it with nbgrader in a scratch course of its own on a worker, its kernel in the
   sandbox (:mod:`grader.sandbox`); an embedded cluster of ``--jobs`` workers on this machine, or the workers
   of a running scheduler (``--scheduler``). Results are saved as they arrive: an interrupted run resumes.
2. Phase 2 (:mod:`grader.scoring`), in OUT/course: nbgrader scores the executed notebooks without executing
   them again (the check cells restored from the source) and writes the feedback.
3. Reports (:mod:`grader.reports`): grades.csv, summary.txt (with what the class missed, check by check),
   class_report.png, feedback/, logs/, and a table.
A re-run grades what is new or changed (the submission, the part's checks, the grader or the limits).
``--source`` grades with another copy of the parts' nbgrader sources (say, other points per check).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import re
import secrets
import shutil
import sys
import time
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat
from nbgrader.preprocessors import ClearSolutions
from tqdm import tqdm

import course
from grader import cluster, reports, sandbox, scoring


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
    """The part's nbgrader source notebook (solutions and check cells) in the folder of sources."""
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


def cache_key(task: Task, limits: sandbox.Limits, sources: Path = course.SOLUTIONS, secret: str = "") -> str:
    """What a grade depends on: the submission, the part's source, the course version (the grader, the checks,
    the course's modules, the packages), the limits and the secret the hidden inputs are drawn from. A re-run
    executes a notebook again when any of them changed."""
    digest = hashlib.sha256()
    for piece in (
        Path(task.source).read_bytes(),
        part_source(task.part, sources).read_bytes(),
        cluster.course_version().encode(),
        json.dumps(asdict(limits), sort_keys=True).encode(),
        secret.encode(),
    ):
        digest.update(hashlib.sha256(piece).digest())
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------- phase 1
def job(
    task: Task, limits: sandbox.Limits, sandboxed: bool, sources: Path, secret: str
) -> cluster.Job | None:
    """The task as it travels to a Dask worker, or None (and the task says why) when it cannot be graded."""
    try:
        nb = nbformat.read(task.source, as_version=4)
        nbformat.validate(nb)
    except Exception as error:  # invalid JSON, empty file, not a notebook
        task.status, task.reason = "invalid", f"not a readable notebook: {str(error).splitlines()[0][:200]}"
        return None
    nb, wrong_part = match_part(nb, task.part, sources)
    if wrong_part:
        task.status, task.reason = "invalid", wrong_part
        return None
    return cluster.Job(
        task.student_id,
        task.part,
        nbformat.writes(nb).encode(),
        nbformat.writes(exercise_source(task.part, sources)).encode(),
        limits,
        sandboxed,
        cluster.course_version(),
        secret,
    )


def executed_path(out: Path, task: Task) -> Path:
    """Where phase 1 leaves a task's executed notebook for phase 2."""
    return reports.executed_path(out, task.student_id, task.part)


def outcome(future) -> cluster.Result:
    """A finished Dask task's result; a task that failed on every try is an error with the reason."""
    from distributed import KilledWorker

    try:
        return future.result()
    except KilledWorker:
        return cluster.Result(
            "error",
            "grading this notebook took down the Dask worker running it on every try; it was not tried again",
        )
    except cluster.StaleWorker as error:
        return cluster.Result("error", str(error))
    except Exception as error:  # recorded for this task; the class goes on
        return cluster.Result(
            "error", f"the grader failed on it: {type(error).__name__}: {one_line(str(error))}"
        )


def one_line(text: str) -> str:
    """A message in one line: its first line and, when it holds a traceback, the exception at its end."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()] or ["unknown error"]
    raised = [line for line in lines[1:] if re.match(r"^[\w.]+(Error|Exception)\b", line)]
    return " — ".join([lines[0], *raised[-1:]])[:400]


def keep(task: Task, result: cluster.Result, out: Path) -> None:
    """A task's result, saved as it arrives: its executed notebook and log where phase 2 reads them."""
    task.status, task.reason = result.status, result.reason
    task.timed_out_cells, task.seconds = result.timed_out_cells, result.seconds
    folder = out / "work" / task.student_id / task.part
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "phase1.log").write_text(result.log)
    if result.executed is not None:
        executed_path(out, task).parent.mkdir(parents=True)
        executed_path(out, task).write_bytes(result.executed)


def read_secret(path: Path) -> str:
    """The grader's secret: the seed of every check's hidden inputs. Made (random, readable by its owner only)
    the first time; a secret file that cannot be read stops the run rather than grading with another secret.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32) + "\n")
    text = path.read_text().strip()
    if not text:
        raise SystemExit(f"error: the secret file {path} is empty")
    return text


def save(state: dict, path: Path) -> None:
    """state.json, replaced whole (an interrupted run never leaves half a file)."""
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(state, indent=1, ensure_ascii=False))
    partial.replace(path)


def phase_one(
    todo: list[Task], jobs: dict[str, cluster.Job], options: argparse.Namespace, out: Path, state: dict
) -> None:
    sandboxed = any(job.sandboxed for job in jobs.values())
    """Every job through Dask (an embedded cluster, or options.scheduler's); each result saved as it arrives,
    so an interrupted run resumes where it stopped."""
    from distributed import as_completed

    with cluster.client(options.scheduler, options.jobs, out / "dask") as dask_client:
        if options.scheduler:
            has_dashboard = "dashboard" in dask_client.scheduler_info().get("services", {})
            dashboard = dask_client.dashboard_link if has_dashboard else "none (started with --no-dashboard)"
            print(f"Dask scheduler {options.scheduler}; dashboard: {dashboard}", file=sys.stderr)
        version = cluster.course_version()
        usable, refused = cluster.usable_workers(dask_client, version, sandboxed)
        for address, why in refused.items():
            print(f"worker {address} refused: {why}", file=sys.stderr)
        if not usable:
            raise cluster.SchedulerUnreachable(
                f"no worker of the scheduler runs this course version ({version[:12]}): start workers "
                "from this checkout and environment (README: Scaling out)"
            )
        futures = {
            dask_client.submit(
                cluster.run_job,
                jobs[key],
                key=f"grade-{task.student_id}-{task.part}-{task.digest[:12]}",
                workers=usable,
                retries=1,
                pure=False,
            ): (key, task)
            for key, task in ((f"{t.student_id}/{t.part}", t) for t in todo)
        }
        with tqdm(total=len(futures), desc="grading", unit="notebook", file=sys.stderr) as bar:
            for future in as_completed(futures):
                key, task = futures[future]
                keep(task, outcome(future), out)
                state["executed"][key] = {
                    "digest": task.digest,
                    "status": task.status,
                    "reason": task.reason,
                    "timed_out_cells": task.timed_out_cells,
                    "seconds": round(task.seconds, 1),
                }
                save(state, out / "state.json")
                bar.update()
                bar.write(
                    f"  {task.learner} / {task.part}: {task.status} ({task.seconds:.0f} s) {task.reason}"
                )


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
        shutil.copyfile(executed_path(out, task), target / f"{task.part}.ipynb")
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader", description=__doc__.split("\n\n")[0])
    parser.add_argument("submissions")
    parser.add_argument("--out", default="grades")
    parser.add_argument(
        "--jobs", type=int, default=2, help="notebooks executed at once on this machine (default 2)"
    )
    parser.add_argument(
        "--scheduler",
        help="tcp://HOST:PORT of a running Dask scheduler whose workers execute the notebooks "
        "(default: an embedded cluster on this machine, --jobs workers)",
    )
    parser.add_argument("--cell-timeout", type=int, default=600, help="seconds per cell (default 600)")
    parser.add_argument("--notebook-timeout", type=int, default=1800, help="seconds per notebook (1800)")
    parser.add_argument("--memory-gb", type=int, default=10, help="address space per notebook (10 GiB)")
    parser.add_argument("--force", action="store_true", help="grade every notebook again")
    parser.add_argument(
        "--source",
        default=str(course.SOLUTIONS),
        help="the parts' nbgrader sources, NN_topic/NN_topic.ipynb, with their check cells and points "
        "(default: the course's solutions/)",
    )
    parser.add_argument(
        "--no-sandbox", action="store_true", help="run learners' code without bubblewrap (trusted code only)"
    )
    parser.add_argument(
        "--secret-file",
        help="the file whose contents seed the checks' hidden inputs (default: OUT/secret.key, made on the "
        "first "
        "run); keep it from learners, and keep it between runs so that grades stay the same",
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
    secret = read_secret(Path(options.secret_file) if options.secret_file else out / "secret.key")
    limits = sandbox.Limits(
        memory_bytes=options.memory_gb * 2**30,
        cell_seconds=options.cell_timeout,
        notebook_seconds=options.notebook_timeout,
    )
    # Workers elsewhere check their own bubblewrap; on this machine, it is checked here.
    why_not = "disabled (--no-sandbox)" if options.no_sandbox else sandbox.available()
    state_path = out / "state.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    for name in ("learners", "results", "executed"):
        state.setdefault(name, {})

    learners, tasks, unrecognised = discover(submissions)
    for learner in learners:
        state["learners"].setdefault(learner, {"student_id": student_id(learner)})
    for task in tasks:
        task.digest = cache_key(task, limits, sources, secret)
        key = f"{task.student_id}/{task.part}"
        previous = state["results"].get(key)
        if previous and previous.get("digest") == task.digest and not options.force:
            task.status = "skipped"
    todo = [t for t in tasks if t.status == "pending"]
    jobs: dict[str, cluster.Job] = {}
    to_run, resumed = [], 0
    for task in todo:
        key = f"{task.student_id}/{task.part}"
        earlier = state["executed"].get(key)
        if (
            earlier
            and earlier["digest"] == task.digest
            and not options.force
            and (earlier["status"] != "graded" or executed_path(out, task).exists())
        ):  # executed by an interrupted run: only phase 2 is left
            task.status, task.reason = earlier["status"], earlier["reason"]
            task.timed_out_cells, task.seconds = earlier["timed_out_cells"], earlier["seconds"]
            resumed += 1
            continue
        job_or_none = job(task, limits, not why_not, sources, secret)
        if job_or_none is not None:
            jobs[key] = job_or_none
            to_run.append(task)
    # Longest first (later parts train more), so that the last notebook still running is a short one.
    to_run.sort(key=lambda t: t.part, reverse=True)
    if resumed:
        print(
            f"{resumed} notebook(s) executed by an earlier, interrupted run: not executed again",
            file=sys.stderr,
        )

    started = time.perf_counter()
    if to_run and not options.scheduler:
        import helper

        try:  # one clear message, before any notebook runs (remote workers prepare their own)
            helper.prepare_data(course.datasets_for({t.part for t in to_run}))
        except helper.DataNotFoundError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    started_phase_one = time.perf_counter()
    if to_run:
        try:
            phase_one(to_run, jobs, options, out, state)
        except cluster.SchedulerUnreachable as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
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
    save(state, state_path)
    protections = reports.protections(limits, why_not)
    print(reports.write(out, state, tasks, unrecognised, protections, sources))
    return 0
