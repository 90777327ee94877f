"""Grade a folder of learner submissions with nbgrader: grades CSV, feedback HTML, summary, LMS gradebooks.

    python -m grader SUBMISSIONS [--out grades] [--jobs 2 | --scheduler tcp://HOST:PORT]
                                 [--cell-timeout 600] [--notebook-timeout 1800] [--memory-gb 10]
                                 [--force] [--source solutions] [--no-sandbox]

SUBMISSIONS holds one folder per learner with any of the course's notebooks under their course file names,
either flat (``alice/01_tensors.ipynb``) or one folder per part as in ``notebooks/``
(``alice/01_tensors/01_tensors.ipynb``). nbgrader's own ``submitted/`` folder is accepted as it is.

1. On Dask (:mod:`grader.cluster`), each learner × part is one task that grades it whole on a worker: executed
   with nbgrader in a scratch course of its own (:mod:`grader.execution`, the kernel in the sandbox,
   :mod:`grader.sandbox`), judged (:mod:`grader.verdicts`), scored and rendered as feedback
   (:mod:`grader.scoring`); it returns the learner × part's record (:mod:`grader.records`), stored in
   OUT/records as it arrives. An embedded cluster of ``--jobs`` workers on this machine, or the workers of a
   running scheduler (``--scheduler``).
2. The merge, here: the records of the learners in SUBMISSIONS into nbgrader's gradebook (OUT/course, which
   formgrader opens), grades.csv, the LMS gradebooks (OUT/lms), summary.txt (with what the class missed,
   check by check), class_report.png, feedback/, logs/, and a table (:mod:`grader.reports`).
A re-run grades what is new or changed (the submission, the part's checks, the course version, the limits,
the sandbox) and what the grader or its machines failed on last time. ``--source`` grades with another copy
of the parts' nbgrader sources (say, other points per check). Without a sandbox on a machine that runs the
learners' code the run stops, unless ``--no-sandbox`` says so (trusted code only).
"""

from __future__ import annotations

import argparse
import datetime
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
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import nbformat
from nbgrader.preprocessors import ClearSolutions
from tqdm import tqdm

import course
from grader import cells, cluster, records, reports, sandbox, scoring


@dataclass
class Submission:
    """A learner's notebook of a part, as found in SUBMISSIONS."""

    learner: str
    student_id: str
    part: str
    source: str
    digest: str = ""


# ------------------------------------------------------------------------------------------- discovery
def student_id(name: str) -> str:
    """An nbgrader-safe, stable id for a learner folder name (spaces, unicode and all): "Zoë Ångström" →
    "zoe-angstrom-" and six hex digits of its hash."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9]+", "-", ascii_name).strip("-").lower()[:40] or "learner"
    return f"{slug}-{hashlib.sha1(name.encode()).hexdigest()[:6]}"


def discover(submissions: Path) -> tuple[list[str], list[Submission], dict[str, list[str]]]:
    """The learners (one folder each), their notebooks to grade, and notebooks named like no part."""
    root = submissions / "submitted" if (submissions / "submitted").is_dir() else submissions
    learners, tasks, unrecognised = [], [], {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        learners.append(folder.name)
        found = set()
        for part in course.PART_NAMES:
            for candidate in (folder / f"{part}.ipynb", folder / part / f"{part}.ipynb"):
                if candidate.is_file():
                    tasks.append(Submission(folder.name, student_id(folder.name), part, str(candidate)))
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
    return frozenset(cells.grade_id(c) for c in nb.cells if cells.grade_id(c))


def match_part(
    nb: nbformat.NotebookNode, part: str, sources: Path = course.SOLUTIONS
) -> tuple[nbformat.NotebookNode, str]:
    """The submission as nbgrader should see it, or a reason not to grade it.

    Cells with the nbgrader metadata of no cell of this part (pasted from another notebook) become learner's
    own cells: nbgrader would refuse the whole notebook for them. A notebook whose nbgrader cells all belong
    to another part is that part handed in under the wrong name: it is not graded, and the reason says so.
    """
    ids = {cells.grade_id(c) for c in nb.cells if "nbgrader" in c.metadata}
    if ids and not ids & nbgrader_ids(part, sources):
        other = max(course.PART_NAMES, key=lambda name: len(ids & nbgrader_ids(name, sources)))
        if ids & nbgrader_ids(other, sources):
            return nb, (
                f"this is Part {course.part(other).number} ({other}), expected Part "
                f"{course.part(part).number} ({part}.ipynb)"
            )
    for cell in nb.cells:
        if "nbgrader" in cell.metadata and cells.grade_id(cell) not in nbgrader_ids(part, sources):
            del cell.metadata["nbgrader"]
    return nb, ""


def cache_key(
    task: Submission,
    limits: sandbox.Limits,
    sources: Path = course.SOLUTIONS,
    secret: str = "",
    sandboxed: bool = True,
    hint_cost: float = 0.0,
    variants: bool = False,
) -> str:
    """What a record depends on: the submission, the part's source, the course version (the packages and
    course modules that execute, judge and score a notebook), the limits, whether it ran in the sandbox, the
    secret the hidden inputs are drawn from (and whether they are the learner's own), and what a hint costs. A
    re-run grades a notebook again when any of them changed."""
    digest = hashlib.sha256()
    for piece in (
        Path(task.source).read_bytes(),
        part_source(task.part, sources).read_bytes(),
        cluster.grading_version().encode(),
        json.dumps(asdict(limits), sort_keys=True).encode(),
        b"sandboxed" if sandboxed else b"NOT sandboxed (--no-sandbox)",
        secret.encode(),
        f"a hint costs {hint_cost!r} points".encode(),
        b"per-learner variants" if variants else b"one set of hidden inputs for the class",
    ):
        digest.update(hashlib.sha256(piece).digest())
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------- the records
def record_of(task: Submission, status: str, reason: str, sources: Path) -> records.Record:
    """A record made here, for a notebook no worker graded: an invalid one, or the grader's failure."""
    points = checks_points(task.part, sources)
    return records.Record(
        task.learner,
        task.student_id,
        task.part,
        task.digest,
        status,
        reason,
        max_score=sum(points.values()),
        checks={
            grade_id: {
                "points": 0.0,
                "max_points": maximum,
                "passed": False,
                "reached": False,
                "message": f"not run: {reason}",
            }
            for grade_id, maximum in points.items()
        },
        version=cluster.course_version(),
        graded_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    )


@functools.cache
def checks_points(part: str, sources: Path = course.SOLUTIONS) -> dict[str, float]:
    """Each check of the part and its points, in the notebook's order."""
    nb = nbformat.read(part_source(part, sources), as_version=4)
    return {
        cells.grade_id(c): float(c.metadata["nbgrader"].get("points", 0))
        for c in nb.cells
        if cells.is_check(c)
    }


def job(
    task: Submission,
    limits: sandbox.Limits,
    sandboxed: bool,
    sources: Path,
    secret: str,
    hint_cost: float = 0.0,
    variants: bool = False,
) -> cluster.Job | records.Record:
    """The task as it travels to a Dask worker, or its record when it cannot be graded (not a notebook of
    this part)."""
    try:
        nb = nbformat.read(task.source, as_version=4)
        nbformat.validate(nb)
    except Exception as error:  # invalid JSON, empty file, not a notebook
        reason = (
            f"not a readable notebook: {str(error).splitlines()[0][:200]}"
            if str(error)
            else "not a readable notebook"
        )
        return record_of(task, "invalid", reason, sources)
    nb, wrong_part = match_part(nb, task.part, sources)
    if wrong_part:
        return record_of(task, "invalid", wrong_part, sources)
    return cluster.Job(
        task.learner,
        task.student_id,
        task.part,
        task.digest,
        nbformat.writes(nb).encode(),
        nbformat.writes(exercise_source(task.part, sources)).encode(),
        limits,
        sandboxed,
        cluster.course_version(),
        secret,
        hint_cost,
        variants,
    )


def answer_code(tasks: list[Submission], sources: Path) -> dict[str, dict[str, str]]:
    """Each learner's own code in the answer cells of each part they handed in (for the similarity report):
    learner → part → code. A notebook that cannot be read has none."""
    from grader import similarity

    exercises = {part: exercise_source(part, sources) for part in {t.part for t in tasks}}
    code: dict[str, dict[str, str]] = {}
    for task in tasks:
        try:
            nb = json.loads(Path(task.source).read_text())
        except (OSError, ValueError):
            continue
        code.setdefault(task.learner, {})[task.part] = similarity.answer_code(nb, exercises[task.part])
    return code


def outcome(future, task: Submission, sources: Path) -> records.Record:
    """A finished Dask task's record; a task that failed on every try is the grader's error, with the reason
    (graded again by the next run)."""
    from distributed import KilledWorker

    try:
        return future.result()
    except KilledWorker:
        reason = "grading this notebook took down the Dask worker running it on every try"
    except (cluster.StaleWorker, cluster.NoSandbox) as error:
        reason = str(error)
    except Exception as error:  # recorded for this task; the class goes on
        reason = f"the grader failed on it: {type(error).__name__}: {one_line(str(error))}"
    return record_of(task, "error", reason, sources)


def one_line(text: str) -> str:
    """A message in one line: its first line and, when it holds a traceback, the exception at its end."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()] or ["unknown error"]
    raised = [line for line in lines[1:] if re.match(r"^[\w.]+(Error|Exception)\b", line)]
    return " — ".join([lines[0], *raised[-1:]])[:400]


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
    jobs: dict[str, cluster.Job],
    options: argparse.Namespace,
    out: Path,
    sandboxed: bool,
    arrived: Callable[[records.Record], None],
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
        version = cluster.course_version()
        resource, refused = cluster.enlist(dask_client, version, sandboxed)
        for address, why in refused.items():
            print(f"worker {address} refused: {why}", file=sys.stderr)
        by_key = {f"{t.student_id}/{t.part}": t for t in todo}
        futures = {
            dask_client.submit(
                cluster.run_job,
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
                record = outcome(future, task, options.sources)
                records.save(out, record)
                arrived(record)
                bar.update()
                if record.status != "graded" or record.reason:  # what an instructor may act on
                    bar.write(f"  {task.learner} / {task.part}: {record.status}: {record.reason}")


# ------------------------------------------------------------------------------------------- the merge
class Merge:
    """The records of this class into the outputs: into nbgrader's gradebook and its folders in OUT/course as
    they arrive (:meth:`add`), then (:meth:`finish`) whatever is left, feedback/ and logs/ per learner,
    grades.csv, the LMS gradebooks, summary.txt and the class report. Records of learners or notebooks no
    longer in SUBMISSIONS are left out, and said so. ``course/merged.json`` says which record is in the
    gradebook and the folders."""

    def __init__(self, out: Path, sources: Path, parts: set[str]) -> None:
        self.out, self.sources, self.root = out, sources, out / "course"
        self.merged_file = self.root / "merged.json"
        fresh = not (self.root / "gradebook.db").exists()
        if fresh:
            self.root.mkdir(parents=True, exist_ok=True)
            scoring.empty_gradebook(self.root / "gradebook.db")
        self.merged = (
            {} if fresh or not self.merged_file.exists() else json.loads(self.merged_file.read_text())
        )
        self.links = self.merged.setdefault("records", {})
        changed = []  # each part's source into the gradebook, when it is new or changed
        for part in sorted(parts):
            exercise = nbformat.writes(exercise_source(part, sources))
            digest = hashlib.sha256(exercise.encode()).hexdigest()
            if self.merged.setdefault("sources", {}).get(part) != digest:
                (self.root / "source" / part).mkdir(parents=True, exist_ok=True)
                (self.root / "source" / part / f"{part}.ipynb").write_text(exercise)
                changed.append(part)
                self.merged["sources"][part] = digest
        scoring.generate(self.root, changed)

    def __enter__(self) -> Merge:
        self.book = scoring.ClassGradebook(self.root).__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.book.__exit__(*exc)
        self.merged_file.parent.mkdir(parents=True, exist_ok=True)
        self.merged_file.write_text(json.dumps(self.merged, indent=1, ensure_ascii=False))

    def add(self, record: records.Record) -> None:
        """One record into the gradebook and nbgrader's folders (a graded one; the others have no notebook)
        and out of them when it is no longer graded."""
        if record.status != "graded":
            if record.key in self.links:
                self._remove(record.key)
            return
        if self.links.get(record.key) == f"{record.digest}:{record.learner}":
            return
        self.book.add(record)
        for name, target in (
            ("notebook.ipynb", scoring.path(self.root, "autograded", record.student_id, record.part)),
            ("feedback.html", scoring.path(self.root, "feedback", record.student_id, record.part, ".html")),
            ("feedback.html", self.out / "feedback" / record.learner / f"{record.part}.html"),
        ):
            found = records.path(self.out, record, name)
            if found is not None:
                records.link(found, target)
        self.links[record.key] = f"{record.digest}:{record.learner}"

    def _remove(self, key: str) -> None:
        sid, part = key.split("/")
        learner = self.links[key].split(":", 1)[1]
        self.book.remove(sid, part)
        for path in (
            scoring.path(self.root, "autograded", sid, part),
            scoring.path(self.root, "feedback", sid, part, ".html"),
            self.out / "feedback" / learner / f"{part}.html",
            self.out / "logs" / learner / f"{part}.log",
        ):
            path.unlink(missing_ok=True)
        del self.links[key]

    def finish(
        self,
        learners: list[str],
        tasks: list[Submission],
        unrecognised: dict[str, list[str]],
        executed: int,
        per_check: bool = False,
    ) -> str:
        """Every record of the class merged, the others taken out; the reports. Returns the summary and the
        table."""
        out = self.out
        current = {}
        for task in tasks:
            record = records.load(out, task.student_id, task.part)
            if record is None or record.digest != task.digest:  # lost on the way (an interrupted run)
                record = record_of(task, "error", "no record of it came back from the workers", self.sources)
            record.learner = task.learner
            current[record.key] = record
            self.add(record)
        for key in [k for k in self.links if k not in current]:
            self._remove(key)
        for record in current.values():  # every log, the failures' too
            found = records.path(out, record, "log.txt")
            if found is not None:
                records.link(found, out / "logs" / record.learner / f"{record.part}.log")
        for top in (out / "feedback", out / "logs"):  # learners no longer in SUBMISSIONS: out of the outputs
            for folder in top.glob("*/"):
                if folder.name not in learners:
                    shutil.rmtree(folder)
        names = {t.student_id for t in tasks}
        dropped = sorted(
            {r.learner for r in records.stored(out) if r.key not in current and r.student_id not in names}
        )
        ids = {name: student_id(name) for name in learners}
        points = {part: checks_points(part, self.sources) for part in course.PART_NAMES}
        answers = answer_code(tasks, self.sources)
        return reports.write(out, ids, current, unrecognised, points, executed, dropped, per_check, answers)


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
        "--lms-checks",
        action="store_true",
        help="a column per check too in the LMS gradebooks (OUT/lms), beside the one per part",
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
    sources = options.sources = Path(options.source).resolve()
    missing = [str(part_source(p, sources)) for p in course.PART_NAMES]
    missing = [path for path in missing if not Path(path).is_file()]
    if missing:
        parser.error(f"--source {sources} lacks the parts' nbgrader sources: {', '.join(missing)}")
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
    learners, tasks, unrecognised = discover(submissions)
    todo: list[Submission] = []
    for task in tasks:
        task.digest = cache_key(task, limits, sources, secret, sandboxed, options.hint_cost, options.variants)
        kept = records.load(out, task.student_id, task.part)
        if options.force or kept is None or kept.digest != task.digest or not kept.final:
            todo.append(task)
    jobs: dict[str, cluster.Job] = {}
    to_run = []
    for task in todo:
        made = job(task, limits, sandboxed, sources, secret, options.hint_cost, options.variants)
        if isinstance(made, records.Record):  # not a notebook of this part: its record is made here
            records.save(out, made)
        else:
            jobs[f"{task.student_id}/{task.part}"] = made
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
    with Merge(out, sources, {t.part for t in tasks}) as merging:
        started_grading = time.perf_counter()
        if to_run:
            try:  # each record merged into the gradebook as it arrives, while the workers grade the others
                grade_on_dask(to_run, jobs, options, out, sandboxed, merging.add)
            except cluster.SchedulerUnreachable as error:
                print(f"error: {error}", file=sys.stderr)
                return 2
        graded = time.perf_counter()
        report = merging.finish(learners, tasks, unrecognised, len(todo), options.lms_checks)
    print(
        f"prepared in {started_grading - started:.0f} s, graded in {graded - started_grading:.0f} s, "
        f"merged in {time.perf_counter() - graded:.1f} s",
        file=sys.stderr,
    )
    print(report)
    return 0
