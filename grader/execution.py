"""Phase 1: execute one learner's notebook of one part with nbgrader, its kernel in the sandbox.

nbgrader's autograde runs here, in the grader's own (trusted) process, in a scratch course that the sandbox
cannot see; only the *kernel* runs inside the sandbox (:class:`SandboxedKernelManager`). The check cells,
hidden tests included, reach the kernel as messages over its sockets, never as files, and the executed
notebook is assembled and written by this process from those messages: nothing the learner's code does
(a daemon left behind, a file rewritten) can touch it. Every process of the sandbox is dead before the
notebook is read: the kernel's own PID namespace ends with it.

Run as ``python -m grader.execution TASK.json`` (one process per task, so a crash of nbgrader or a memory
blow-up in this process costs only this task); it writes ``result.json`` next to the task.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from nbclient.exceptions import DeadKernelError
from nbconvert.preprocessors import Preprocessor
from nbformat import NotebookNode
from nbgrader.preprocessors import Execute
from traitlets import Bool, Dict, Int, List, Unicode
from traitlets.config import Config

from grader.sandbox import Limits, Sandbox

TICK = "✓"
TEXT_LIMIT = 100_000  # bytes of one text output kept in the graded notebook and its feedback
IMAGE_LIMIT = 2_000_000


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel started inside the sandbox, talking over Unix sockets in the scratch folder."""

    scratch = Unicode(config=True, help="the sandbox's scratch folder (same path inside and out)")
    uid = Int(-1, config=True, help="the sandbox's uid when the grader is root; -1: the caller's own")
    readonly = List(Unicode(), config=True)
    symlinks = List(List(Unicode()), config=True)
    environment = Dict(config=True)
    limits = Dict(config=True)
    enabled = Bool(True, config=True, help="False: no bubblewrap (trusted code only)")

    def sandbox(self) -> Sandbox:
        return Sandbox(
            Path(self.scratch),
            tuple(Path(p) for p in self.readonly),
            tuple((target, link) for target, link in self.symlinks),
            None if self.uid < 0 else self.uid,
            Limits(**self.limits),
            dict(self.environment),
            self.enabled,
        )

    async def _async_pre_start_kernel(self, **kw):
        # No network inside: the channels are Unix sockets in the scratch, which both sides see.
        self.transport = "ipc"
        self.ip = str(Path(self.scratch) / "kernel" / "k")
        self.connection_file = str(Path(self.scratch) / "kernel" / "connection.json")
        return await super()._async_pre_start_kernel(**kw)

    def write_connection_file(self, **kwargs) -> tuple[str, dict]:
        result = super().write_connection_file(**kwargs)
        if self.uid >= 0:  # the kernel runs as the sandbox's uid: the file is its to read
            os.chown(self.connection_file, self.uid, self.uid)
        return result

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        return self.sandbox().command(super().format_kernel_cmd(extra_arguments))

    def kernel_pid(self) -> int | None:
        """The kernel's process id as this machine sees it: bubblewrap's descendant running ipykernel."""
        parents: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
        todo = [self.provisioner.process.pid] if self.provisioner and self.provisioner.process else []
        while todo:
            pid = todo.pop(0)
            try:
                program = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if Path(program[0].decode(errors="replace")).name.startswith("python"):  # not bwrap, setpriv, env
                return pid
            todo += parents.get(pid, [])
        return None

    async def interrupt_kernel(self) -> None:  # AsyncKernelManager binds this name, not _async_…
        # A signal to the process group would reach bubblewrap, not the kernel: the kernel itself gets it.
        pid = self.kernel_pid()
        if pid is not None:
            os.kill(pid, signal.SIGINT)


class SandboxedExecute(Execute):
    """nbgrader's Execute with the sandboxed kernel; a dead kernel ends the run, not the grading: the cells
    that ran keep their outputs, the one that was running says what happened."""

    def __init__(self, **kwargs):
        kwargs["kernel_manager_class"] = SandboxedKernelManager
        super().__init__(**kwargs)
        self._running = -1

    def preprocess_cell(self, cell, resources, index):
        self._running = index
        return super().preprocess_cell(cell, resources, index)

    def preprocess(self, nb, resources=None, km=None):
        try:
            return super().preprocess(nb, resources, km)
        except DeadKernelError:
            cell = nb.cells[self._running]
            cell.outputs.append(
                error_output(
                    "DeadKernelError",
                    "the kernel died while running this cell (the code exited Python, crashed it, or used "
                    "more memory than allowed); the cells after it did not run",
                )
            )
            resources.setdefault("course", {})["kernel_died"] = self._running
            return nb, resources


def error_output(name: str, value: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=name, evalue=value, traceback=[f"{name}: {value}"])


def is_check(cell: NotebookNode) -> bool:
    meta = cell.metadata.get("nbgrader", {})
    return cell.cell_type == "code" and bool(meta.get("grade")) and not meta.get("solution")


class RequireTick(Preprocessor):
    """A check earns its points only if it printed its ✓ line: the last thing it does, after all its
    assertions. A check that ran without an error but without ✓ (its assertions skipped by an exception
    handler the learner installed, its output hidden, or never run because the kernel died) gets an
    error output, so nbgrader scores it 0, and the feedback says why."""

    enabled = True

    def preprocess_cell(self, cell, resources, index):
        if not is_check(cell) or any(o.output_type == "error" for o in cell.outputs):
            return cell, resources
        printed = "".join(
            o.get("text", "") if o.output_type == "stream" else o.get("data", {}).get("text/plain", "")
            for o in cell.outputs
        )
        if TICK not in printed:
            died = resources.get("course", {}).get("kernel_died")
            reason = (
                "not run: the kernel died in an earlier cell"
                if died is not None and index > died
                else f"this check did not print its {TICK} line, so it did not run all its tests"
            )
            cell.outputs.append(error_output("CheckNotCompleted", reason))
        return cell, resources


class CapOutputs(Preprocessor):
    """Each output at most TEXT_LIMIT bytes of text (IMAGE_LIMIT of an image), with a note where cut."""

    enabled = True

    @staticmethod
    def _cut(text, limit: int):
        if not isinstance(text, str | list):  # JSON outputs (a tqdm widget): small, kept as they are
            return text
        joined = "".join(text) if isinstance(text, list) else text
        if len(joined.encode()) <= limit:
            return text
        kept = joined.encode()[:limit].decode(errors="ignore")
        return kept + f"\n… truncated by the grader ({len(joined.encode()):,} bytes in all)\n"

    def preprocess_cell(self, cell, resources, index):
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                output.text = self._cut(output.text, TEXT_LIMIT)
            elif output.output_type == "error":
                output.evalue = self._cut(output.evalue, TEXT_LIMIT)
                output.traceback = [self._cut(line, TEXT_LIMIT) for line in output.traceback[-50:]]
            else:
                for key in list(output.get("data", {})):
                    limit = IMAGE_LIMIT if key.startswith("image/") else TEXT_LIMIT
                    cut = self._cut(output.data[key], limit)
                    if cut is not output.data[key] and key.startswith("image/"):
                        del output.data[key]  # half an image is no image
                    else:
                        output.data[key] = cut
        return cell, resources


@dataclass
class Task:
    """One learner's notebook of one part, and where to grade it."""

    student_id: str
    part: str
    course_root: str  # the trusted scratch course: source/, submitted/, gradebook.db
    cell_timeout: int
    readonly: list[str]
    symlinks: list[list[str]]
    uid: int | None
    limits: dict
    environment: dict
    sandboxed: bool = True


@dataclass
class Outcome:
    status: str  # graded | error
    reason: str = ""
    timed_out_cells: list[int] | None = None
    kernel_died: int | None = None
    seconds: float = 0.0


def autograde_config(task: Task, scratch: Path) -> Config:
    """Phase 2's configuration (grader.scoring), with execution in front: nbgrader's own sanitizing
    (outputs cleared, checks restored), then the sandboxed run, the ✓ rule and the output caps."""
    from grader import scoring  # imported here: scoring → feedback → this module

    c = scoring.config(Path(task.course_root))
    del c.Autograde["sanitize_preprocessors"]  # phase 1 starts from a learner's notebook: nbgrader's defaults
    c.Autograde.autograde_preprocessors = [
        SandboxedExecute,
        RequireTick,
        CapOutputs,
        *c.Autograde.autograde_preprocessors,
    ]
    c.Execute.timeout = task.cell_timeout
    c.Execute.interrupt_on_timeout = True
    c.Execute.error_on_timeout = {
        "ename": "CellTimeoutError",
        "evalue": f"this cell ran longer than the limit of {task.cell_timeout} s and was stopped",
        "traceback": [f"CellTimeoutError: this cell ran longer than the limit of {task.cell_timeout} s"],
    }
    k = c.SandboxedKernelManager
    k.scratch, k.readonly, k.symlinks = str(scratch), task.readonly, task.symlinks
    k.uid = -1 if task.uid is None or not task.sandboxed else task.uid
    k.enabled = task.sandboxed
    k.limits, k.environment = task.limits, {**task.environment, **sandbox_home(scratch)}
    return c


def sandbox_home(scratch: Path) -> dict[str, str]:
    return {
        "HOME": str(scratch / "home"),
        "TMPDIR": str(scratch),  # short: multiprocessing's socket paths (DataLoader workers) fit
        "MPLCONFIGDIR": str(scratch / "home" / "matplotlib"),
        "JUPYTER_RUNTIME_DIR": str(scratch / "home" / "runtime"),
        "IPYTHONDIR": str(scratch / "home" / "ipython"),
    }


def run(task: Task) -> Outcome:
    from nbgrader.apps import NbGraderAPI

    from grader.sandbox import make_scratch, remove_scratch

    start = time.perf_counter()
    scratch = make_scratch(task.uid if task.sandboxed else None)
    try:
        api = NbGraderAPI(config=autograde_config(task, scratch))
        result = api.autograde(task.part, task.student_id, force=True, create=True)
    finally:
        remove_scratch(scratch)
    (Path(task.course_root) / "autograde.log").write_text(result.get("log", ""))
    seconds = time.perf_counter() - start
    executed = Path(task.course_root) / "autograded" / task.student_id / task.part / f"{task.part}.ipynb"
    if not result["success"] or not executed.exists():
        message = (result.get("error") or "").strip().splitlines()
        return Outcome("error", f"nbgrader could not grade it: {(message or ['unknown error'])[-1][:300]}")
    import nbformat

    nb = nbformat.read(executed, as_version=4)
    timed_out = [
        i
        for i, cell in enumerate(nb.cells)
        if any(o.get("ename") == "CellTimeoutError" for o in cell.get("outputs", []))
    ]
    died = next(
        (
            i
            for i, cell in enumerate(nb.cells)
            if any(o.get("ename") == "DeadKernelError" for o in cell.get("outputs", []))
        ),
        None,
    )
    return Outcome("graded", "", timed_out, died, seconds)


def main(argv: list[str]) -> int:
    task_file = Path(argv[0])
    task = Task(**json.loads(task_file.read_text()))
    try:
        outcome = run(task)
    except Exception as error:  # recorded for this task; the class goes on
        outcome = Outcome("error", f"the grader failed on it: {type(error).__name__}: {str(error)[:300]}")
    (task_file.parent / "result.json").write_text(json.dumps(asdict(outcome)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
