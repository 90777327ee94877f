"""Grading on Dask: each learner × part is one task, on an embedded local cluster or on a running one.

A task (:class:`Job`) carries all a worker needs: the submission's bytes, the part's *exercise* source
(solutions removed, check cells kept), the limits, the secret and the course version; it returns the learner ×
part's record (:class:`grader.records.Record`): so workers share no filesystem with the instructor and never
see a solution. Each worker needs the course environment (``make env``), bubblewrap (``make sandbox``) and the
data, which it prepares itself (from its mirror, or by download) the first time a part needs them.

Workers are chosen by what they are (:class:`Enlist`, a worker plugin): one whose course version
(:func:`course_version`: the grader's code, the course's modules and the packages) matches the instructor's
and that can sandbox takes the resource every grading task requires; the others are refused, with the
reason.

On the worker, :func:`run_job` builds a scratch course in its own folder, runs nbgrader in a process of its
own (``python -m grader.execution``, the notebook's kernel in the sandbox), judges the answers, scores the
verdicts and renders the feedback (:mod:`grader.scoring`).
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
import platform
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
from importlib import metadata
from pathlib import Path

import nbformat
from distributed.diagnostics.plugin import WorkerPlugin

import course
from grader import cells, records, sandbox, scoring

GRADER = Path(__file__).resolve().parent
# The modules of the grader whose code decides a record (grading_version), and the packages that do.
RECORD_MODULES = ("cells.py", "execution.py", "feedback.py", "sandbox.py", "scoring.py", "verdicts.py")
PACKAGES = (
    "torch",
    "torchvision",
    "numpy",
    "safetensors",
    "matplotlib",
    "nbgrader",
    "nbclient",
    "nbconvert",
    "nbformat",
    "ipykernel",
    "ipython",
    "jupyter_client",
    "pyzmq",
    "traitlets",
    "bleach",
)
ALLOWED_FAILURES = 2  # workers a task may take down with it before it is recorded as an error


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
    digest: str  # the record's cache key (grader.cli.cache_key)
    submission: bytes  # the notebook as nbgrader should see it (foreign nbgrader cells already stripped)
    source: bytes  # the part's exercise source: check cells, no solution
    limits: sandbox.Limits
    sandboxed: bool
    version: str
    secret: str  # the seed of the checks' hidden inputs (grader.execution.seed)
    hint_cost: float = 0.0  # points each hint the learner took costs on its check
    variants: bool = False  # hidden inputs of the learner's own (grader.verdicts.seed)


@functools.cache
def course_version() -> str:
    """What a worker must share with the instructor's client: all of the grader's code, the course's modules,
    Python and the packages (a worker that differs in any of them is refused)."""
    digest = hashlib.sha256(grading_version().encode())
    for path in sorted(GRADER.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@functools.cache
def grading_version() -> str:
    """What a record depends on besides the submission, the part's source, the limits and the secret (the
    cache key, grader.cli.cache_key): the modules that execute, judge and score a notebook (not the grader's
    client, merge or reports), the course's own modules, the lock of every package, and the versions of Python
    and of the packages that run a kernel, talk to it and score it."""
    digest = hashlib.sha256()
    files = [GRADER / name for name in RECORD_MODULES] + sorted((course.ROOT / "checks").glob("*.py"))
    files += [course.ROOT / name for name in (*course.MODULES, "requirements/course.lock")]
    for path in files:
        digest.update(path.name.encode() + b"\0" + (path.read_bytes() if path.exists() else b"(missing)"))
    for name in PACKAGES:
        digest.update(f"{name}=={metadata.version(name)}".encode())
    digest.update(platform.python_version().encode())
    return digest.hexdigest()


@functools.cache
def _sandbox_here() -> str:
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
    why_not = _sandbox_here() if job.sandboxed else ""
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
        if executed:
            # Every process of the sandbox is gone: the answers are judged here, the verdicts written, and
            # nbgrader scores them (without executing anything) and renders the feedback.
            answers = json.loads((root / "answers.json").read_text())
            judged = verdicts.judge(job.part, inputs, answers)
            verdicts.write(executed, job.part, judged, job.source, hints, job.hint_cost)
            shutil.copyfile(executed, submitted)
            scored = scoring.score(root, job.part, job.student_id)
            record.log += scored.log
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
                message = verdict.message if verdict else "not run: this check is not in the grader's checks"
                record.checks[grade_id] = {
                    "points": float(record.grades.get(grade_id) or 0.0),
                    "max_points": maximum,
                    "passed": bool(verdict and verdict.passed),
                    "reached": not message.startswith("not run"),
                    "message": message,
                    "misconception": verdicts.misconception_of(verdict),
                    "hints": hints.get(grade_id, 0),
                }
        else:
            for grade_id, maximum in points.items():
                record.checks[grade_id] = {
                    "points": 0.0,
                    "max_points": maximum,
                    "passed": False,
                    "reached": False,
                    "message": f"not run: {record.reason}",
                }
        record.seconds = round(time.perf_counter() - start, 1)
        return record
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _execute(task, root: Path, notebook_seconds: int, record: records.Record) -> Path | None:
    """The grading process (``python -m grader.execution``) on the task; the executed notebook, or None (and
    the record says why)."""
    (root / "task.json").write_text(json.dumps(asdict(task)))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("MPLBACKEND", None)  # kernels draw inline, so the feedback shows the learner's figures
    process = subprocess.Popen(
        _dies_with_worker([sys.executable, "-m", "grader.execution", str(root / "task.json")]),
        cwd=course.ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: a timeout kills it and all it started
    )
    try:
        log, _ = process.communicate(timeout=notebook_seconds)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the kernel's sandbox dies with its parent
        log, _ = process.communicate()
        record.log = (log or b"").decode(errors="replace")
        record.status, record.reason = "timed out", f"the notebook ran over {notebook_seconds} s"
        return None
    text = (log or b"").decode(errors="replace")
    if (root / "autograde.log").exists():
        text += (root / "autograde.log").read_text(errors="replace")
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


# ------------------------------------------------------------------------------------------- the client
class SchedulerUnreachable(RuntimeError):
    pass


# Dask's housekeeping, tuned for tasks that each run for seconds to minutes: its defaults (an event-loop tick
# every 20 ms, a system monitor every 0.5 s, a profiler sampling every worker thread every 10 ms) kept a fifth
# of a core busy in an embedded cluster of two waiting workers (measured: 0.19 cores, 0.02 with these).
# Workers started by `dask worker` take the same settings from the environment (README, "Scaling out").
QUIET = {
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.worker.profile.enabled": False,
}


@contextlib.contextmanager
def client(scheduler: str | None, jobs: int, folder: Path) -> Iterator:
    """A Dask client: of an embedded cluster on this machine (``jobs`` workers, one notebook each, working in
    ``folder``: not a /tmp folder another user may own), or of the running scheduler at ``scheduler``
    (tcp://HOST:PORT)."""
    import logging

    import dask
    from distributed import Client, LocalCluster

    with dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES, **QUIET}):
        if scheduler is None:
            with dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"}):
                _preload_forkserver()
                with (
                    LocalCluster(
                        n_workers=max(1, jobs),
                        threads_per_worker=1,
                        processes=True,
                        dashboard_address=None,
                        memory_limit=0,
                        silence_logs=logging.ERROR,
                        local_directory=str(folder),
                    ) as cluster,
                    Client(cluster) as embedded,
                ):
                    yield embedded
            return
        try:
            remote = Client(scheduler, timeout="15s")
        except (OSError, TimeoutError) as error:
            raise SchedulerUnreachable(
                f"cannot reach the Dask scheduler at {scheduler} ({error}). Start one (`dask scheduler`, "
                "see the README's 'Scaling out'), check the address and that its port is open to this "
                "machine, or leave --scheduler out to grade on this machine."
            ) from None
        with remote:
            yield remote


# What every worker imports to grade (torch, torchvision, nbgrader, nbconvert, the judges): about 7 s of CPU.
WORKER_MODULES = [
    "distributed",
    "grader.cluster",
    "grader.verdicts",
    "checks.data",
    "torchvision",
    "nbgrader.apps",
]


def _preload_forkserver() -> None:
    """The embedded cluster's workers fork from a server process that imported WORKER_MODULES once (Dask's
    ``forkserver`` method, which the caller sets; the server imports nothing else and runs no threads),
    instead of each spawning a fresh interpreter that imports them again."""
    from distributed.utils import get_mp_context

    get_mp_context().set_forkserver_preload(WORKER_MODULES)  # after Dask's own list: this one wins


def resource_name(version: str, sandboxed: bool) -> str:
    """The Dask resource that marks a worker able to grade for this course version (and sandbox)."""
    return f"intro-pytorch-grader-{version[:16]}" + ("-sandboxed" if sandboxed else "")


def _can_grade(version: str, sandboxed: bool) -> str:
    """'' when this worker grades for ``version`` (and sandboxes, when asked to), else why not."""
    if course_version() != version:
        return (
            f"it runs course version {course_version()[:12]} at {socket.gethostname()}:{course.ROOT}, the "
            f"instructor's is {version[:12]}: update its checkout and environment (git pull && make env) "
            "and restart it"
        )
    why_not = _sandbox_here() if sandboxed else ""
    return (
        f"it cannot sandbox learners' code at {socket.gethostname()}:{course.ROOT}: {why_not}"
        if why_not
        else ""
    )


class Enlist(WorkerPlugin):
    """A Dask worker plugin: each worker checks for itself that it runs the instructor's course version (and
    can sandbox, unless --no-sandbox), and only then takes the resource that every grading task requires.
    Dask sets it up on every worker of the cluster, on those that join later and on those a nanny restarts,
    so tasks go to whichever workers qualify, wherever they are; as many at once as the worker has threads."""

    def __init__(self, version: str, sandboxed: bool) -> None:
        self.version, self.sandboxed = version, sandboxed
        self.name = resource_name(version, sandboxed)

    async def setup(self, worker) -> None:
        try:
            why_not = _can_grade(self.version, self.sandboxed)
        except Exception as error:  # a worker plugin that raises would stop the instructor's whole run
            why_not = f"it could not check itself: {type(error).__name__}: {error}"
        if why_not:
            import logging

            logging.getLogger("distributed.worker").warning("not grading for this course: %s", why_not)
            return
        await worker.set_resources(**{self.name: worker.state.nthreads})  # a notebook a thread


def enlist(
    dask_client, version: str, sandboxed: bool, wait_seconds: float = 60
) -> tuple[str, dict[str, str]]:
    """The resource that the grading tasks require, once the workers that qualify have taken it, and why
    each other worker was refused. Stops the run (SchedulerUnreachable) when no worker qualifies."""
    plugin = Enlist(version, sandboxed)
    try:
        dask_client.wait_for_workers(1, timeout=wait_seconds)
    except TimeoutError:
        raise SchedulerUnreachable(f"no Dask worker joined the scheduler in {wait_seconds:g} s") from None
    refused = {}
    for address, answer in sorted(dask_client.run(_can_grade, version, sandboxed, on_error="return").items()):
        if isinstance(answer, BaseException):
            refused[address] = f"it could not report its course version: {type(answer).__name__}: {answer}"
        elif answer:
            refused[address] = answer
    try:
        dask_client.register_plugin(plugin, name=plugin.name)
    except Exception as error:  # a worker that cannot even load the plugin: another environment
        refused["(some worker)"] = f"it could not load the grader's plugin: {type(error).__name__}: {error}"
    workers = dask_client.scheduler_info()["workers"].values()
    if not any(plugin.name in w.get("resources", {}) for w in workers):
        raise SchedulerUnreachable(
            f"no worker of the scheduler can grade for this course version ({version[:12]}"
            f"{', sandboxed' if sandboxed else ''}): start workers from this checkout and environment, with "
            "bubblewrap (README: Scaling out)"
        )
    return plugin.name, refused
