"""Phase 1 on Dask: each learner × part is one task, on an embedded local cluster or on a running one.

A task (:class:`Job`) carries all a worker needs: the submission's bytes, the part's *exercise* source
(solutions removed, check cells kept), the limits, the secret and the course version; it returns
(:class:`Result`) the executed notebook's bytes and what happened. So workers share no filesystem with the
instructor and never see a solution. Each worker needs the course environment (``make env``), bubblewrap
(``make sandbox``) and the data, which it prepares itself (from its mirror, or by download) the first time
a part needs them. A worker whose course version (:func:`course_version`: the grader's code, the course's
modules and the versions of the packages that execute and score a notebook) differs from the instructor's is
refused, with the reason.

On the worker, :func:`run_job` builds a scratch course in its own folder and runs nbgrader in a process of its
own (``python -m grader.execution``), the notebook's kernel in the sandbox, exactly as on one machine.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
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
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

import course
from grader import sandbox

GRADER = Path(__file__).resolve().parent
PACKAGES = ("torch", "torchvision", "nbgrader", "nbclient", "nbconvert", "ipykernel", "numpy")
ALLOWED_FAILURES = 2  # workers a task may take down with it before it is recorded as an error


class StaleWorker(RuntimeError):
    """This worker runs another version of the course than the instructor's."""


@dataclass(frozen=True)
class Job:
    """One learner's notebook of one part, as it travels to a worker."""

    student_id: str
    part: str
    submission: bytes  # the notebook as nbgrader should see it (foreign nbgrader cells already stripped)
    source: bytes  # the part's exercise source: check cells, no solution
    limits: sandbox.Limits
    sandboxed: bool
    version: str
    secret: str  # the seed of the checks' hidden inputs (grader.execution.seed)


@dataclass
class Result:
    status: str  # graded | timed out | error
    reason: str = ""
    timed_out_cells: list[int] = field(default_factory=list)
    seconds: float = 0.0
    executed: bytes | None = None  # the executed notebook, when graded
    log: str = ""
    worker: str = ""
    verdicts: dict | None = None  # each check's verdict: {"passed": bool, "message": str}


@functools.cache
def course_version() -> str:
    """What a grade depends on besides the submission and the part's source: the grader's code, the course's
    modules, Python and the packages that execute and score a notebook."""
    digest = hashlib.sha256()
    files = sorted(GRADER.glob("*.py")) + sorted((course.ROOT / "checks").glob("*.py"))
    files += [course.ROOT / n for n in ("helper.py", "course.py", "efficientnet_lite.py")]
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    for name in PACKAGES:
        digest.update(f"{name}=={metadata.version(name)}".encode())
    digest.update(platform.python_version().encode())
    return digest.hexdigest()


def worker_version() -> tuple[str, str, str]:
    """What the instructor's client asks every worker: its course version, where it runs, and why it cannot
    sandbox a notebook ('' when it can)."""
    return course_version(), f"{socket.gethostname()}:{course.ROOT}", sandbox.available()


# ------------------------------------------------------------------------------------------- on a worker
def _work_folder() -> Path:
    """This worker's own folder (``dask worker --local-directory``), or a temporary one outside Dask."""
    try:
        from distributed import get_worker

        folder = Path(get_worker().local_directory) / "course-grader"
    except ValueError:  # not inside a Dask worker
        folder = Path(tempfile.gettempdir()) / f"course-grader-{os.getuid()}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


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


@contextlib.contextmanager
def _sandbox_uid() -> Iterator[int | None]:
    """As root, a uid of its own for this sandbox, free on this whole machine (one per running notebook,
    whichever worker runs it); otherwise None (the caller's uid, in a user namespace)."""
    if os.geteuid() != 0:
        yield None
        return
    folder = Path(tempfile.gettempdir()) / "course-grader-uids"
    folder.mkdir(mode=0o700, exist_ok=True)
    for offset in range(4096):
        handle = open(folder / str(sandbox.FIRST_UID + offset), "a")  # noqa: SIM115 (held while in use)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        try:
            yield sandbox.FIRST_UID + offset
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()
        return
    raise RuntimeError("4096 sandboxes are running on this machine: no uid left for another")


_templates = threading.Lock()


def _template(part: str, source: bytes) -> Path:
    """The part's exercise source in a gradebook, generated once per worker and source: each task's scratch
    course starts from a copy."""
    from grader import scoring

    folder = _work_folder() / "templates" / f"{part}-{hashlib.sha256(source).hexdigest()[:16]}"
    with _templates, _file_lock(folder.with_suffix(".lock")):
        if not (folder / "gradebook.db").exists():
            building = Path(tempfile.mkdtemp(dir=folder.parent))
            (building / "source" / part).mkdir(parents=True)
            (building / "source" / part / f"{part}.ipynb").write_bytes(source)
            scoring.generate(building, [part])
            shutil.rmtree(folder, ignore_errors=True)
            building.rename(folder)
    return folder


def _environment() -> tuple[tuple[Path, ...], dict[str, str]]:
    """What every sandbox on this worker gets: the allow-list (with the data and the weights cache) and the
    environment."""
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
    return sandbox.readonly([data, hub]), environment


def _dies_with_worker(argv: list[str]) -> list[str]:
    """`argv`, killed when the worker that started it dies (a worker killed mid-task leaves no grading
    behind): util-linux's setpriv sets the parent-death signal, kept across exec."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", *argv] if setpriv else argv


def prepare(part: str) -> None:
    """The data sets this part needs, in this worker's data root (one worker of the machine at a time)."""
    import helper

    with _file_lock(_work_folder().parent / "course-grader-data.lock"):
        helper.prepare_data(course.datasets_for({part}))


def run_job(job: Job) -> Result:
    """Phase 1 of one notebook, on whichever machine runs this: a scratch course, then nbgrader in a process
    of its own, the kernel in the sandbox."""
    from grader import execution

    where = f"{socket.gethostname()}:{course.ROOT}"
    if job.version != course_version():
        raise StaleWorker(
            f"the worker at {where} runs course version {course_version()[:12]}, the instructor's is "
            f"{job.version[:12]}: update its checkout and environment (git pull && make env) and restart it"
        )
    # nbgrader runs `alembic` from PATH: the course environment's tools first, however the worker started
    bin_folder = str(Path(sys.executable).parent)
    if os.environ.get("PATH", "").split(os.pathsep)[0] != bin_folder:
        os.environ["PATH"] = f"{bin_folder}{os.pathsep}{os.environ.get('PATH', '')}"
    prepare(job.part)
    readonly, environment = _environment()
    from grader import verdicts

    requests, inputs = verdicts.prepare(job.part, job.secret, _work_folder() / "requests", job.sandboxed)
    root = Path(tempfile.mkdtemp(prefix="course-", dir=_work_folder()))
    try:
        template = _template(job.part, job.source)
        shutil.copytree(template / "source", root / "source")
        shutil.copyfile(template / "gradebook.db", root / "gradebook.db")
        submitted = root / "submitted" / job.student_id / job.part
        submitted.mkdir(parents=True)
        (submitted / f"{job.part}.ipynb").write_bytes(job.submission)
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
            result = _execute(task, root, job.limits.notebook_seconds)
        result.worker = where
        executed = root / "autograded" / job.student_id / job.part / f"{job.part}.ipynb"
        if result.status == "graded":
            # Every process of the sandbox is gone: the answers are judged here, the verdicts written.
            record = json.loads((root / "answers.json").read_text())
            judged = verdicts.judge(job.part, inputs, record)
            verdicts.write(executed, job.part, judged, job.source)
            result.verdicts = {k: {"passed": v.passed, "message": v.message} for k, v in judged.items()}
            result.executed = executed.read_bytes()
        return result
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _execute(task, root: Path, notebook_seconds: int) -> Result:
    (root / "task.json").write_text(json.dumps(asdict(task)))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("MPLBACKEND", None)  # kernels draw inline, so the feedback shows the learner's figures
    start = time.perf_counter()
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
        seconds = time.perf_counter() - start
        text = (log or b"").decode(errors="replace")
        return Result("timed out", f"the notebook ran over {notebook_seconds} s", [], seconds, None, text)
    seconds = time.perf_counter() - start
    text = (log or b"").decode(errors="replace")
    if (root / "autograde.log").exists():
        text += (root / "autograde.log").read_text(errors="replace")
    outcome_file = root / "result.json"
    if not outcome_file.exists():
        last = next((line for line in reversed(text.strip().splitlines()) if line.strip()), "no output")
        return Result("error", f"the grader's process failed: {last[:300]}", [], seconds, None, text)
    outcome = json.loads(outcome_file.read_text())
    reason = outcome["reason"]
    if outcome.get("kernel_died") is not None:
        cell = outcome["kernel_died"] + 1
        reason = f"the kernel died in cell {cell} of the notebook; the checks after it did not run"
    result = Result(outcome["status"], reason, outcome.get("timed_out_cells") or [], seconds, None, text)
    result.verdicts = outcome.get("verdicts")
    return result


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


def usable_workers(
    dask_client, version: str, sandboxed: bool, wait_seconds: float = 60
) -> tuple[list[str], dict[str, str]]:
    """The workers that run this course version (and can sandbox, when asked to), and why each other one is
    refused."""
    deadline = time.monotonic() + wait_seconds
    while not dask_client.scheduler_info()["workers"] and time.monotonic() < deadline:
        time.sleep(0.5)  # a scheduler started a moment ago: its workers are still joining
    answers = dask_client.run(worker_version, on_error="return")
    usable, refused = [], {}
    for address, answer in sorted(answers.items()):
        if isinstance(answer, BaseException):
            refused[address] = f"it could not report its course version: {type(answer).__name__}: {answer}"
        elif answer[0] != version:
            refused[address] = (
                f"it runs course version {answer[0][:12]} at {answer[1]}, the instructor's is "
                f"{version[:12]}: update its checkout and environment (git pull && make env) and restart it"
            )
        elif sandboxed and answer[2]:
            refused[address] = f"it cannot sandbox learners' code at {answer[1]}: {answer[2]}"
        else:
            usable.append(address)
    return usable, refused
