"""Grading on Dask, and nothing else: each learner × part is one task (:class:`grader.grading.Job`, graded by
:func:`grader.grading.run_job`), on an embedded local cluster or on a running one.

Each worker needs the course environment (``make env``), bubblewrap (``make sandbox``) and the data, which it
prepares itself (from its mirror, or by download) the first time a part needs them. Workers are chosen by what
they are (:class:`Enlist`, a worker plugin): one whose course version (:func:`grader.versions.course_version`:
the grader's code, the course's modules and the packages) matches the instructor's and that can sandbox takes
the resource every grading task requires; the others are refused, with the reason.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

from distributed.diagnostics.plugin import WorkerPlugin

import course
from grader.grading import sandbox_here
from grader.versions import course_version

ALLOWED_FAILURES = 2  # workers a task may take down with it before it is recorded as an error


# ------------------------------------------------------------------------------------------- the client
class SchedulerUnreachable(RuntimeError):
    pass


# Dask's housekeeping, tuned for tasks that each run for seconds to minutes: its defaults (an event-loop tick
# every 20 ms, a system monitor every 0.5 s, a profiler sampling every worker thread every 10 ms) kept a fifth
# of a core busy in an embedded cluster of two waiting workers (measured: 0.19 cores, 0.02 with these).
# Workers started by `dask worker` take the same settings from the environment (docs/grading.md, "Scaling
# out").
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
                "see docs/grading.md, 'Scaling out'), check the address and that its port is open to this "
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
    why_not = sandbox_here() if sandboxed else ""
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
            "bubblewrap (docs/grading.md: Scaling out)"
        )
    return plugin.name, refused
