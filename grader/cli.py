"""Grade a folder of learner submissions with nbgrader: grades CSV, feedback HTML, summary, LMS gradebooks.

    python -m grader SUBMISSIONS [--out grades] [--jobs 2 | --scheduler tcp://HOST:PORT]
                                 [--layout auto|flat|nbgrader] [--cell-timeout 600]
                                 [--notebook-timeout 1800] [--memory-gb 10] [--force] [--source solutions]
                                 [--no-sandbox]

SUBMISSIONS holds one folder per learner with any of the course's notebooks under their course file names,
either flat (``alice/01_tensors.ipynb``) or one folder per part as in ``notebooks/``
(``alice/01_tensors/01_tensors.ipynb``); or it is an nbgrader course folder (``submitted/<learner>/<part>/``).

The pipelines, a module each:
1. The intake (:mod:`grader.intake`): every learner's folder and notebooks read once, without following links,
   within limits; each notebook admitted (a notebook of the part, its nbgrader metadata reset from the source)
   or refused with a reason.
2. Grading, on Dask (:mod:`grader.cluster`): each learner × part is one task that grades it whole on a worker
   (:mod:`grader.grading`: executed with nbgrader, the kernel in the sandbox; judged under limits; scored and
   rendered as feedback); it returns the learner × part's record (:mod:`grader.records`), stored in
   OUT/records as it arrives. An embedded cluster of ``--jobs`` workers on this machine, or the workers of a
   running scheduler (``--scheduler``).
3. The merge, here (:mod:`grader.merge`): the records of the learners in SUBMISSIONS into nbgrader's gradebook
   (OUT/course, which formgrader opens), grades.csv, the LMS gradebooks (OUT/lms), summary.txt,
   class_report.png, feedback/, logs/, and a table (:mod:`grader.reports`).
A re-run grades what is new or changed (:func:`grader.versions.cache_key`: the submission, the part's checks,
the grading code and packages, the limits, the sandbox) and what the grader or its machines failed on last
time; a notebook that failed the same way twice is the notebook's (a 0, with the reason). ``--source`` grades
with another copy of the parts' nbgrader sources (say, other points per check). Without a sandbox on a machine
that runs the learners' code the run stops, unless ``--no-sandbox`` says so (trusted code only).

This module keeps the command line and what joins the pipelines; one learner's trouble at any step costs that
learner's part, never the class's run.
"""

from __future__ import annotations

import argparse
import csv
import functools
import os
import re
import secrets
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

import course
from grader import cluster, grading, intake, records, sandbox, sources, versions
from grader.escape import printable
from grader.intake import Submission
from grader.merge import Merge

# Errors of the machines, not of the notebook: graded again on every run, however often they repeat.
MACHINE_ERRORS = (grading.StaleWorker, grading.NoSandbox)


def job(
    task: Submission,
    limits: sandbox.Limits,
    sandboxed: bool,
    part_sources: Path,
    secret: str,
    hint_cost: float = 0.0,
    variants: bool = False,
) -> grading.Job | records.Record:
    """The task as it travels to a Dask worker, or its record when it is not graded (not a notebook of this
    part, or refused at the intake)."""
    admitted, reason = intake.admit(task, part_sources)
    if reason:
        return _unjudged(task, "invalid", reason, part_sources)
    return grading.Job(
        task.learner,
        task.student_id,
        task.part,
        task.digest,
        admitted,
        sources.exercise_bytes(task.part, part_sources),
        limits,
        sandboxed,
        versions.course_version(),
        secret,
        hint_cost,
        variants,
    )


def _unjudged(task: Submission, status: str, reason: str, part_sources: Path) -> records.Record:
    points = sources.checks_points(task.part, part_sources)
    return records.unjudged(task.learner, task.student_id, task.part, task.digest, status, reason, points)


def outcome(future, task: Submission, previous: records.Record | None, part_sources: Path) -> records.Record:
    """A finished Dask task's record. A task that failed on every try is the grader's error, with the reason
    (graded again by the next run); the same submission failing again is the submission's (:func:`settle`)."""
    from distributed import KilledWorker

    try:
        return settle(future.result(), previous)
    except KilledWorker:
        reason = "grading this notebook took down the Dask worker running it on every try"
    except MACHINE_ERRORS as error:
        return _unjudged(task, "error", str(error), part_sources)
    except Exception as error:  # recorded for this task; the class goes on
        reason = f"the grader failed on it: {type(error).__name__}: {one_line(str(error))}"
    return settle(_unjudged(task, "error", reason, part_sources), previous)


def settle(record: records.Record, previous: records.Record | None) -> records.Record:
    """An error that repeats on the same submission (the same cache key) is the submission's: the second
    time it is a 0 with the reason, kept, and not executed again on every run."""
    if record.status != "error":
        return record
    again = previous is not None and previous.status == "error" and previous.digest == record.digest
    record.failures = (previous.failures if again else 0) + 1
    if record.failures >= 2:
        record.status = "invalid"
        record.reason = f"grading this notebook failed twice the same way: {record.reason}"
    return record


def one_line(text: str) -> str:
    """A message in one line: its first line and, when it holds a traceback, the exception at its end."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()] or ["unknown error"]
    raised = [line for line in lines[1:] if re.match(r"^[\w.]+(Error|Exception)\b", line)]
    return " — ".join([lines[0], *raised[-1:]])[:400]


def read_roster(path: Path) -> dict[str, dict[str, str]]:
    """The instructor's roster (a CSV file with a header: ``folder``, ``login`` and optionally ``email`` and
    ``name``): each learner's folder name (as the summary shows it) → their LMS login, e-mail and display
    name, for the LMS files."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise SystemExit(f"error: the roster {path} cannot be read ({error}): save it as UTF-8 CSV") from None
    if not rows or not {"folder", "login"} <= set(rows[0]):
        raise SystemExit(f"error: the roster {path} needs a header with the columns folder and login")
    folders = Counter(row["folder"] for row in rows)
    logins = Counter((row.get("login") or "").strip() for row in rows)
    wrong = [f"folder {name!r} twice" for name, n in folders.items() if n > 1]
    wrong += [f"login {name!r} for {n} folders" for name, n in logins.items() if name and n > 1]
    wrong += [f"no login for {row['folder']!r}" for row in rows if not (row.get("login") or "").strip()]
    if wrong:
        raise SystemExit(f"error: the roster {path}: {'; '.join(wrong[:10])}")
    return {
        row["folder"]: {k: (row.get(k) or "").strip() for k in ("login", "email", "name")} for row in rows
    }


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


# ------------------------------------------------------------------------------------------- on Dask
def grade_on_dask(
    todo: list[Submission],
    jobs: dict[str, grading.Job],
    options: argparse.Namespace,
    out: Path,
    sandboxed: bool,
    arrived: Callable[[records.Record], None],
    previous: dict[str, records.Record],
) -> None:
    """Every job through Dask (an embedded cluster, or options.scheduler's), on workers that run this course
    version (and sandbox, unless --no-sandbox); each record stored as it arrives, so an interrupted run
    resumes where it stopped; ``arrived`` merges it."""
    from distributed import as_completed

    with cluster.client(options.scheduler, options.jobs, out / "dask") as dask_client:
        if options.scheduler:
            has_dashboard = "dashboard" in dask_client.scheduler_info().get("services", {})
            dashboard = dask_client.dashboard_link if has_dashboard else "none (started with --no-dashboard)"
            print(f"Dask scheduler {options.scheduler}; dashboard: {dashboard}", file=sys.stderr)
        version = versions.course_version()
        resource, refused = cluster.enlist(dask_client, version, sandboxed)
        for address, why in refused.items():
            print(f"worker {address} refused: {why}", file=sys.stderr)
        by_key = {f"{t.student_id}/{t.part}": t for t in todo}
        futures = {
            dask_client.submit(
                grading.run_job,
                jobs[key],
                key=f"grade-{task.student_id}-{task.part}-{task.digest[:12]}",
                resources={resource: 1},
                retries=1,
                pure=False,
            ): task
            for key, task in by_key.items()
        }
        with tqdm(total=len(futures), desc="grading", unit="notebook", file=sys.stderr) as bar:
            for future in as_completed(futures):
                task = futures[future]
                record = outcome(future, task, previous.get(task.key), options.sources)
                records.save(out, record)
                arrived(record)
                bar.update()
                if record.status != "graded" or record.reason:  # what an instructor may act on
                    bar.write(printable(f"  {task.learner} / {task.part}: {record.status}: {record.reason}"))


# ------------------------------------------------------------------------------------------- the run
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
    parser.add_argument(
        "--layout",
        choices=intake.LAYOUTS,
        default="auto",
        help="flat: a folder per learner; nbgrader: an nbgrader course folder (submitted/<learner>/<part>/); "
        "auto (default): nbgrader's only when SUBMISSIONS is plainly an nbgrader course folder",
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
        "--lms-checks",
        action="store_true",
        help="a column per check too in the LMS gradebooks (OUT/lms), beside the one per part",
    )
    parser.add_argument(
        "--roster",
        help="a CSV file with the columns folder, login (and email, name): each learner's LMS login for "
        "lms/canvas.csv and lms/moodle.csv (default: the folder name); every learner's folder must be in it",
    )
    parser.add_argument(
        "--hand-grades",
        choices=("keep", "drop"),
        default="keep",
        help="a hand grade or comment given in formgrader to a notebook that is graded again (a "
        "resubmission): keep it (default, as nbgrader does; the summary names it) or drop it",
    )
    parser.add_argument(
        "--no-sandbox", action="store_true", help="run learners' code without bubblewrap (trusted code only)"
    )
    parser.add_argument(
        "--hint-cost",
        type=float,
        default=0.0,
        help="points each hint a learner took (check.hint(), recorded in the notebook) costs on its check, "
        "never below 0 (default 0: hints are counted in grades.csv, not charged)",
    )
    parser.add_argument(
        "--variants",
        action=argparse.BooleanOptionalAction,
        default=course.VARIANTS,
        help="each learner's hidden inputs their own, drawn from HMAC(secret, learner id) (default: "
        f"course.VARIANTS, {'on' if course.VARIANTS else 'off'})",
    )
    parser.add_argument(
        "--secret-file",
        help="the file whose contents seed the checks' hidden inputs (default: OUT/secret.key, made on the "
        "first run); keep it from learners, and keep it between runs so that grades stay the same",
    )
    options = parser.parse_args(argv)
    # the course environment's tools first on PATH, wherever this was started from (nbgrader would run
    # `alembic` from it for a gradebook it made itself; each one here starts from scoring.empty_gradebook)
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    submissions, out = Path(options.submissions).resolve(), Path(options.out).resolve()
    if not submissions.is_dir():
        parser.error(f"no folder of submissions at {submissions}")
    part_sources = options.sources = Path(options.source).resolve()
    missing = [str(sources.part_source(p, part_sources)) for p in course.PART_NAMES]
    missing = [path for path in missing if not Path(path).is_file()]
    if missing:
        parser.error(f"--source {part_sources} lacks the parts' nbgrader sources: {', '.join(missing)}")
    sandboxed = not options.no_sandbox
    if sandboxed and not options.scheduler:  # workers elsewhere check their own (grader.cluster.enlist)
        why_not = sandbox.available()
        if why_not:
            print(
                f"error: the learners' code cannot be sandboxed on this machine: {why_not}. Install "
                "bubblewrap (`make sandbox`), or grade trusted notebooks only with --no-sandbox.",
                file=sys.stderr,
            )
            return 2
    if options.hint_cost < 0:
        parser.error("--hint-cost is what a hint takes away: 0 or more points")
    out.mkdir(parents=True, exist_ok=True)
    secret = read_secret(Path(options.secret_file) if options.secret_file else out / "secret.key")
    limits = sandbox.Limits(
        memory_bytes=options.memory_gb * 2**30,
        cell_seconds=options.cell_timeout,
        notebook_seconds=options.notebook_timeout,
    )
    taken = intake.take_in(submissions, options.layout)
    roster = read_roster(Path(options.roster)) if options.roster else None
    if roster is not None:  # said before anything is graded or written
        absent = [learner.name for learner in taken.graded if learner.name not in roster]
        if absent:
            print(
                f"error: the roster {options.roster} lacks these folders: {', '.join(absent)}",
                file=sys.stderr,
            )
            return 2
    previous: dict[str, records.Record] = {}
    todo: list[Submission] = []
    jobs: dict[str, grading.Job] = {}
    to_run = []
    for task in taken.submissions:
        try:  # each learner's notebook on its own: its trouble is a 0 with the reason, never the class's
            source = sources.part_source(task.part, part_sources)
            task.digest = versions.cache_key(
                task.data, source, limits, secret, sandboxed, options.hint_cost, options.variants
            )
            kept = records.load(out, task.student_id, task.part)
            if not (options.force or kept is None or kept.digest != task.digest or not kept.final):
                continue
            todo.append(task)
            if kept is not None:
                previous[task.key] = kept
            made = job(task, limits, sandboxed, part_sources, secret, options.hint_cost, options.variants)
        except Exception as error:
            made = _unjudged(
                task, "invalid", f"the grader could not take it in ({type(error).__name__})", part_sources
            )
        if isinstance(made, records.Record):  # not graded: its record is made here
            records.save(out, made)
        else:
            jobs[task.key] = made
            to_run.append(task)
    # Longest first (later parts train more), so that the last notebook still running is a short one.
    to_run.sort(key=lambda t: t.part, reverse=True)

    started = time.perf_counter()
    needed = course.datasets_for({t.part for t in to_run})
    if needed and not options.scheduler:
        import coursedata  # torch with it only where a data set needs it (Part 1 needs none)

        try:  # one clear message, before any notebook runs (remote workers prepare their own)
            coursedata.prepare_data(needed)
        except coursedata.DataNotFoundError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    timestamps = {t.key: t.modified for t in taken.submissions}
    drop_hand = options.hand_grades == "drop"
    parts = {t.part for t in taken.submissions}
    with Merge(out, part_sources, parts, timestamps, drop_hand, roster) as merging:
        started_grading = time.perf_counter()
        if to_run:
            try:  # each record merged into the gradebook as it arrives, while the workers grade the others
                arrived = functools.partial(merging.add, arrived=True)
                grade_on_dask(to_run, jobs, options, out, sandboxed, arrived, previous)
            except cluster.SchedulerUnreachable as error:
                print(f"error: {error}", file=sys.stderr)
                return 2
        graded = time.perf_counter()
        report = merging.finish(taken, len(todo), options.lms_checks)
    print(
        f"prepared in {started_grading - started:.0f} s, graded in {graded - started_grading:.0f} s, "
        f"merged in {time.perf_counter() - graded:.1f} s",
        file=sys.stderr,
    )
    print(report)
    return 0
