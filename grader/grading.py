"""On a Dask worker (or any machine with the course environment): one learner's notebook of one part, graded
whole into its record.

:func:`run_job` takes a :class:`Job` (all a worker needs: the notebook as the intake admitted it, the part's
*exercise* source — check cells, no solution —, the limits, the secret and the course version), builds a
scratch course in its own folder, runs nbgrader in a process of its own (``python -m grader.execution``, the
notebook's kernel in the sandbox, :mod:`grader.sandbox`), judges the answers in a child process under a memory
and a time limit (:func:`judge_bounded`: a hostile answer costs its own check, never the worker), scores the
verdicts and renders the feedback (:mod:`grader.scoring`), and returns the record (:mod:`grader.records`).
Workers share no filesystem with the instructor and never see a solution.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import functools
import hashlib
import io
import json
import os
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import nbformat

import course
from grader import cells, records, sandbox, scoring
from grader.escape import printable
from grader.versions import course_version


class StaleWorker(RuntimeError):
    """This worker runs another version of the course than the instructor's."""


class NoSandbox(RuntimeError):
    """This worker was sent a notebook to sandbox and cannot."""


@dataclass(frozen=True)
class Job:
    """One learner's notebook of one part, as it travels to a worker."""

    learner: str
    student_id: str
    part: str
    digest: str  # the record's cache key (grader.versions.cache_key)
    submission: bytes  # the notebook as nbgrader should see it (foreign nbgrader cells already stripped)
    source: bytes  # the part's exercise source: check cells, no solution
    limits: sandbox.Limits
    sandboxed: bool
    version: str
    secret: str  # the seed of the checks' hidden inputs (grader.execution.seed)
    hint_cost: float = 0.0  # points each hint the learner took costs on its check
    variants: bool = False  # hidden inputs of the learner's own (grader.verdicts.seed)


@functools.cache
def sandbox_here() -> str:
    """Why this machine cannot sandbox a notebook ('' when it can), asked once per worker process."""
    return sandbox.available()


# ------------------------------------------------------------------------------------------- on a worker
def _work_folder() -> Path:
    """The grader's folder in the workspace of this worker (``dask worker --local-directory``: Dask's
    ``dask-scratch-space``), shared by the workers started in the same one (the embedded cluster's), so that
    each part's gradebook template, hidden inputs and judges' cache are made once per machine, not once per
    worker; or a private one of this process's outside Dask (never a shared one in /tmp)."""
    try:
        from distributed import get_worker

        folder = Path(get_worker().local_directory).parent / "course-grader"
    except ValueError:  # not inside a Dask worker
        folder = _private_folder()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@functools.cache
def _private_folder() -> Path:
    return Path(tempfile.mkdtemp(prefix="course-grader-"))


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between the processes (and threads) of this machine."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# As root, the locks of the sandboxes' uids: machine-wide (every worker of the machine), in a folder that only
# root can write, made by the grader itself; never one in /tmp that another user could have made first.
UID_LOCKS = Path("/run/intro-pytorch-grader-uids")


def trusted_folder(path: Path) -> int:
    """``path`` as a folder only root can touch, made if missing and opened without following a link; its
    file descriptor. A link there, or a folder another user owns or may write, stops the grader."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as error:
        raise RuntimeError(f"{path} is not a folder the grader made (a link, or a file): {error}") from None
    info = os.fstat(fd)
    if info.st_uid != 0 or info.st_mode & 0o077:
        os.close(fd)
        raise RuntimeError(
            f"{path} is owned by uid {info.st_uid} with mode {info.st_mode & 0o777:o}: the grader trusts "
            "only a folder of root's that nobody else may write; remove it and grade again"
        )
    return fd


@contextlib.contextmanager
def _sandbox_uid(locks: Path = UID_LOCKS) -> Iterator[int | None]:
    """As root, a uid of its own for this sandbox, free on this whole machine (one per running notebook,
    whichever worker runs it); otherwise None (the caller's uid, in a user namespace)."""
    if os.geteuid() != 0:
        yield None
        return
    folder = trusted_folder(locks)
    try:
        for offset in range(4096):
            flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW
            handle = os.open(str(sandbox.FIRST_UID + offset), flags, 0o600, dir_fd=folder)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(handle)
                continue
            try:
                yield sandbox.FIRST_UID + offset
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
                os.close(handle)
            return
    finally:
        os.close(folder)
    raise RuntimeError("4096 sandboxes are running on this machine: no uid left for another")


_templates = threading.Lock()


def _template(part: str, source: bytes) -> Path:
    """The part's exercise source in a gradebook, generated once per worker folder and source: each task's
    scratch course starts from a copy."""
    folder = _work_folder() / "templates" / f"{part}-{hashlib.sha256(source).hexdigest()[:16]}"
    with _templates, _file_lock(folder.with_suffix(".lock")):
        if not (folder / "gradebook.db").exists():
            building = Path(tempfile.mkdtemp(dir=folder.parent))
            (building / "source" / part).mkdir(parents=True)
            (building / "source" / part / f"{part}.ipynb").write_bytes(source)
            shutil.copyfile(_empty_gradebook(), building / "gradebook.db")
            scoring.generate(building, [part])
            shutil.rmtree(folder, ignore_errors=True)
            building.rename(folder)
    return folder


def _empty_gradebook() -> Path:
    """An empty gradebook of the course, made once per worker folder; each part's template starts from a
    copy."""
    empty = _work_folder() / "empty-gradebook.db"
    with _file_lock(empty.with_suffix(".lock")):
        if not empty.exists():
            making = empty.with_name(f".{empty.name}.{os.getpid()}")
            making.unlink(missing_ok=True)
            scoring.empty_gradebook(making)
            making.rename(empty)
    return empty


def _environment() -> tuple[tuple[Path, ...], dict[str, str]]:
    """What every sandbox on this worker gets: the allow-list (with the data and the weights cache) and the
    environment."""
    import torch

    import coursedata

    data, hub = coursedata.data_root(), Path(torch.hub.get_dir()).parent
    environment = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "PYTORCH_COURSE_DATA": str(data),  # prepared beforehand, read-only inside
        "TORCH_HOME": str(hub),
        "OMP_NUM_THREADS": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "LANG": "C.UTF-8",
        "USER": "learner",
    }
    return sandbox.readonly([data, hub]), environment


def _dies_with_worker(argv: list[str]) -> list[str]:
    """`argv`, killed when the worker that started it dies (a worker killed mid-task leaves no grading
    behind): util-linux's setpriv sets the parent-death signal, kept across exec."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", *argv] if setpriv else argv


def prepare(part: str) -> None:
    """The data sets this part needs, in this worker's data root (one worker of the machine at a time)."""
    import coursedata

    with _file_lock(_work_folder().parent / "course-grader-data.lock"):
        coursedata.prepare_data(course.datasets_for({part}))


def run_job(job: Job) -> records.Record:
    """One learner's notebook of one part, graded whole on whichever machine runs this: executed in a
    scratch course (nbgrader in a process of its own, the kernel in the sandbox), judged, scored and rendered
    as feedback; returned as its record."""
    from grader import execution, verdicts  # verdicts imports torch: the instructor's side never needs it

    where = f"{socket.gethostname()}:{course.ROOT}"
    if job.version != course_version():
        raise StaleWorker(
            f"the worker at {where} runs course version {course_version()[:12]}, the instructor's is "
            f"{job.version[:12]}: update its checkout and environment (git pull && make env) and restart it"
        )
    why_not = sandbox_here() if job.sandboxed else ""
    if why_not:  # fails closed: no learner's code runs here without the sandbox it was sent to
        raise NoSandbox(f"the worker at {where} cannot sandbox learners' code: {why_not}")
    # nbgrader runs `alembic` from PATH: the course environment's tools first, however the worker started
    bin_folder = str(Path(sys.executable).parent)
    if os.environ.get("PATH", "").split(os.pathsep)[0] != bin_folder:
        os.environ["PATH"] = f"{bin_folder}{os.pathsep}{os.environ.get('PATH', '')}"
    log = io.StringIO()
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):  # into the record, not a terminal
        prepare(job.part)
        readonly, environment = _environment()
        learner = job.student_id if job.variants else ""
        requests, inputs = verdicts.prepare(
            job.part, job.secret, _work_folder() / "requests", job.sandboxed, learner
        )
    record = records.Record(
        job.learner,
        job.student_id,
        job.part,
        job.digest,
        "error",
        version=job.version,
        limits=asdict(job.limits),
        protections=sandbox.protections(job.limits, job.sandboxed),
        worker=where,
        graded_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    )
    source = nbformat.reads(job.source.decode(), as_version=4)
    points = {
        cells.grade_id(c): float(c.metadata["nbgrader"].get("points", 0))
        for c in source.cells
        if cells.is_check(c)
    }
    record.max_score = sum(points.values())
    root = Path(tempfile.mkdtemp(prefix="course-", dir=_work_folder()))
    start = time.perf_counter()
    try:
        template = _template(job.part, job.source)
        shutil.copytree(template / "source", root / "source")
        shutil.copyfile(template / "gradebook.db", root / "gradebook.db")
        submitted = scoring.path(root, "submitted", job.student_id, job.part)
        submitted.parent.mkdir(parents=True)
        submitted.write_bytes(job.submission)
        hints = verdicts.hints_taken(job.submission, job.part)  # what the learner's notebook recorded
        record.hints = hints
        with _sandbox_uid() as uid:
            task = execution.Task(
                job.student_id,
                job.part,
                str(root),
                job.limits.cell_seconds,
                [str(p) for p in readonly],
                [list(pair) for pair in sandbox.system_links()],
                uid,
                asdict(job.limits),
                environment,
                job.sandboxed,
                verdicts.plan(job.part),
                str(requests),
            )
            executed = _execute(task, root, job.limits.notebook_seconds, record)
        log.write(record.log)
        record.log = log.getvalue()
        if not executed:
            record.not_run(points)
            return record
        # Every process of the sandbox is gone: the answers are judged (in a child process of their own, under
        # limits), the verdicts written, and nbgrader scores them (without executing anything) and renders
        # the feedback.
        answers = json.loads((root / "answers.json").read_text())
        judged = judge_bounded(job.part, inputs, answers, verdicts.answer_cells(job.submission))
        verdicts.write(executed, job.part, judged, job.source, hints, job.hint_cost)
        shutil.copyfile(executed, submitted)
        scored = scoring.score(root, job.part, job.student_id)
        record.log += "".join(printable(line) + "\n" for line in scored.log[-LOG_LIMIT:].split("\n"))
        if scored.score is None:
            record.status, record.reason = "error", scored.error
        else:
            record.score, record.max_score = scored.score, scored.max_score
            record.grades, record.comments = scored.grades, scored.comments
            record.reason = "; ".join(r for r in (record.reason, scored.feedback_error) if r)
            record.notebook = scoring.path(root, "autograded", job.student_id, job.part).read_bytes()
            page = scoring.path(root, "feedback", job.student_id, job.part, ".html")
            record.feedback = page.read_bytes() if page.exists() else None
        for grade_id, maximum in points.items():
            verdict = judged.get(grade_id)
            record.checks[grade_id] = records.CheckResult.judged(
                float(record.grades.get(grade_id) or 0.0),
                maximum,
                bool(verdict and verdict.passed),
                verdict.message if verdict else "not run: this check is not in the grader's checks",
                verdicts.misconception_of(verdict),
                hints.get(grade_id, 0),
            )
        return record
    finally:
        record.seconds = round(time.perf_counter() - start, 1)
        shutil.rmtree(root, ignore_errors=True)


# What judging one check may take, in a child process of the worker (judge_bounded): memory above what the
# worker already holds, and seconds. Part 8's first judging computes the test photos' features (about 1 GiB,
# a minute on a loaded CPU); every other judge takes megabytes and milliseconds.
JUDGE_MEMORY = 4 * 2**30
JUDGE_SECONDS = 300
JUDGE_TOTAL = 900  # seconds for judging one notebook, all its checks
TOO_BIG = "judging this answer needed more memory than allowed"


def judge_bounded(
    part: str,
    inputs: dict,
    answers: dict,
    cells: dict[str, str] | None = None,
    memory: int = JUDGE_MEMORY,
    seconds: float = JUDGE_SECONDS,
):
    """Each check's verdict (grader.verdicts.judge), judged in a child process forked from this one, under an
    address-space limit of ``memory`` bytes more than this process holds and ``seconds`` per check: an answer
    that would make a judge allocate gigabytes or run for ever fails its own check, with the reason, and the
    worker, its other tasks and the other checks go on (a fresh child judges the checks after it)."""
    import checks
    from checks.core import Verdict
    from grader import verdicts

    todo = [c.grade_id for c in checks.of_part(part)]
    judged: dict[str, Verdict] = {}
    ends = time.monotonic() + JUDGE_TOTAL
    while todo:
        if time.monotonic() >= ends:  # no time left for this notebook: the checks not judged yet fail
            for grade_id in todo:
                why = f"judging this notebook took longer than {JUDGE_TOTAL} s in all"
                judged[grade_id] = Verdict(grade_id, False, f"the check could not judge this answer: {why}")
            break
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: judges what is left, a verdict a line, and leaves without cleaning up
            status = 0
            try:
                os.close(read_end)
                _limit_address_space(memory)
                import torch

                torch.set_num_threads(1)  # as DataLoader's forked workers do
                for grade_id in todo:
                    try:
                        verdict = verdicts.judge_one(part, grade_id, inputs, answers, cells)
                    except MemoryError:
                        verdict = Verdict(
                            grade_id, False, f"the check could not judge this answer: {TOO_BIG}"
                        )
                    except Exception as error:  # the judge's own bug: no points, the reason said
                        why = f"the check could not judge this answer: {type(error).__name__}"
                        verdict = Verdict(grade_id, False, why)
                    os.write(write_end, (json.dumps(asdict(verdict)) + "\n").encode())
            except BaseException:
                status = 1
            finally:
                os._exit(status)
        os.close(write_end)
        try:
            _collect(read_end, pid, todo, judged, seconds, ends)
        finally:
            os.close(read_end)
    return judged


def _collect(read_end: int, pid: int, todo: list[str], judged: dict, seconds: float, ends: float) -> None:
    """The child's verdicts as they come; the check it was judging when it died or ran out of time fails."""
    from checks.core import Verdict

    buffer, deadline = b"", min(time.monotonic() + seconds, ends)
    while todo:
        ready, _, _ = select.select([read_end], [], [], max(0.0, deadline - time.monotonic()))
        chunk = os.read(read_end, 2**16) if ready else None
        if chunk:
            buffer += chunk
            while b"\n" in buffer and todo:
                line, buffer = buffer.split(b"\n", 1)
                verdict = json.loads(
                    line
                )  # a message may quote what the learner's code raised: valid text only
                verdict["message"] = verdict["message"].encode(errors="replace").decode()
                judged[todo.pop(0)] = Verdict(**verdict)
                deadline = min(time.monotonic() + seconds, ends)
            continue
        if chunk is None:  # out of time
            os.kill(pid, signal.SIGKILL)
            why = (
                f"judging this notebook took longer than {JUDGE_TOTAL} s in all"
                if time.monotonic() >= ends
                else f"judging this answer took longer than {seconds:g} s"
            )
        _, status = os.waitpid(pid, 0)
        if chunk is not None:  # the child ended with checks left to judge
            killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
            why = TOO_BIG if killed else "the judge stopped"
        grade_id = todo.pop(0)
        judged[grade_id] = Verdict(grade_id, False, f"the check could not judge this answer: {why}")
        return
    os.waitpid(pid, 0)


def _limit_address_space(extra: int) -> None:
    """This process's address space capped at what it holds now plus ``extra`` bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            limit = int(line.split()[1]) * 1024 + extra
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            return


LOG_LIMIT = 256 * 2**10  # bytes kept of each log of a notebook's grading (its end)


def _log_tail(path: Path) -> str:
    """The end of a log (at most LOG_LIMIT bytes), each line escaped (grader.escape.printable): a log is a
    file a person reads, and the learner's code may have written to it."""
    if not path.exists():
        return ""
    with open(path, "rb") as handle:
        handle.seek(max(0, handle.seek(0, os.SEEK_END) - LOG_LIMIT))
        text = handle.read().decode(errors="replace")
    return "".join(printable(line) + "\n" for line in text.split("\n"))  # other line breaks escaped


def _execute(task, root: Path, notebook_seconds: int, record: records.Record) -> Path | None:
    """The grading process (``python -m grader.execution``) on the task; the executed notebook, or None (and
    the record says why)."""
    (root / "task.json").write_text(json.dumps(asdict(task)))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("MPLBACKEND", None)  # kernels draw inline, so the feedback shows the learner's figures
    with open(
        root / "process.log", "wb"
    ) as output:  # a file, read back in part: no pipe to fill this process
        process = subprocess.Popen(
            _dies_with_worker([sys.executable, "-m", "grader.execution", str(root / "task.json")]),
            cwd=course.ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a timeout kills it and all it started
        )
    try:
        process.wait(timeout=notebook_seconds)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the kernel's sandbox dies with its parent
        process.wait()
        record.log = _log_tail(root / "process.log")
        record.status, record.reason = "timed out", f"the notebook ran over {notebook_seconds} s"
        return None
    text = _log_tail(root / "process.log") + _log_tail(root / "autograde.log")
    record.log = text
    outcome_file = root / "result.json"
    if not outcome_file.exists():
        last = next((line for line in reversed(text.strip().splitlines()) if line.strip()), "no output")
        record.status, record.reason = "error", f"the grader's process failed: {last[:300]}"
        return None
    outcome = json.loads(outcome_file.read_text())
    record.status, record.reason = outcome["status"], outcome["reason"]
    record.timed_out_cells = outcome.get("timed_out_cells") or []
    record.grading_process_mb = outcome.get("peak_mb", 0.0)
    if outcome.get("kernel_died") is not None:
        cell = outcome["kernel_died"] + 1
        record.reason = f"the kernel died in cell {cell} of the notebook; the checks after it did not run"
    if record.status != "graded":
        return None
    return scoring.path(root, "autograded", task.student_id, task.part)
