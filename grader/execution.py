"""On the worker: execute one learner's notebook of one part with nbgrader, its kernel in the sandbox, and ask
it for each check's answers.

nbgrader's autograde runs here, in the grader's own (trusted) process, in a scratch course that the sandbox
cannot see; only the *kernel* runs inside the sandbox (:class:`SandboxedKernelManager`). The learner's cells
run in it; the check cells do not. Instead, right after each check's answer cell, :class:`AskingExecute` sends
the kernel a *request*: a new file in a folder of the scratch that only this process can write, with the
check's hidden inputs (prepared by the worker, :mod:`grader.verdicts`) and, for a check that runs the answer
cell again, that cell's source; and one line of code that names the file. The kernel answers with one display
output of type ``checks.MIME``, JSON with the tensors as safetensors (:mod:`checks.wire`): data, tied to its
request by the message it answers, read by no code of the kernel's choosing. The answers are kept as they
came; the worker decodes and judges them, and writes the verdicts into the check cells, once every process of
the sandbox is dead (the kernel's own PID namespace ends with it). This process never imports torch, nor sees
the secret.

Why a file one way and a message the other: the inputs can be large (every test image of a part), and a file
in a folder the kernel cannot write is one the kernel can only read; the answers come as a message on the
kernel's own socket, in reply to the request, so they cannot be confused with anything the notebook left on
disk.

Run as ``python -m grader.execution TASK.json`` (one process per task, so a crash of nbgrader or a memory
blow-up in this process costs only this task); it writes ``result.json`` next to the task.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from nbclient.exceptions import DeadKernelError
from nbconvert.preprocessors import Preprocessor
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell
from nbgrader.preprocessors import Execute
from traitlets import Bool, Dict, Int, List, Unicode
from traitlets.config import Config

from checks import MIME  # the package alone: this process never imports torch
from grader import scoring
from grader.cells import error_output
from grader.sandbox import Limits, Sandbox

TICK = "✓"
TEXT_LIMIT = 100_000  # bytes of one text output kept in the graded notebook and its feedback
CELL_OUTPUT_LIMIT = 8 * 2**20  # bytes of output kept of one cell as they arrive (before TEXT_LIMIT's cut)
DROPPED = "dropped by the grader"
# What the trusted process takes in from a kernel, at most: messages of ANSWER_LIMIT bytes (the largest
# answer, Part 6's model, is a few MB), QUEUED of them waiting in ZMQ's queue; a kernel that sends more loses
# them.
ANSWER_LIMIT = 96 * 2**20
QUEUED = 100
IMAGE_LIMIT = 2_000_000
# What a whole graded notebook keeps of its outputs (after each output's own cut), and of markup among them
# (HTML, SVG, markdown, LaTeX): what the feedback page's sanitiser reads is bounded, whatever the cells.
NOTEBOOK_OUTPUT_LIMIT = 16 * 2**20
MARKUP_LIMIT = 2 * 2**20
MARKUP = ("text/html", "image/svg+xml", "text/markdown", "text/latex")


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel started inside the sandbox, talking over Unix sockets in the scratch folder."""

    scratch = Unicode(config=True, help="the sandbox's scratch folder (same path inside and out)")
    uid = Int(-1, config=True, help="the sandbox's uid when the grader is root; -1: the caller's own")
    readonly = List(Unicode(), config=True)
    symlinks = List(List(Unicode()), config=True)
    environment = Dict(config=True)
    limits = Dict(config=True)
    enabled = Bool(True, config=True, help="False: no bubblewrap (trusted code only)")
    cgroups = List(Unicode(), config=True, help="the sandbox's own cgroups (grader.sandbox.confined)")

    def sandbox(self) -> Sandbox:
        return Sandbox(
            Path(self.scratch),
            tuple(Path(p) for p in self.readonly),
            tuple((target, link) for target, link in self.symlinks),
            None if self.uid < 0 else self.uid,
            Limits(**self.limits),
            dict(self.environment),
            self.enabled,
            tuple(self.cgroups),
        )

    async def _async_pre_start_kernel(self, **kw):
        # No network inside: the channels are Unix sockets in the scratch, which both sides see.
        self.transport = "ipc"
        self.ip = str(Path(self.scratch) / "kernel" / "k")
        self.connection_file = str(Path(self.scratch) / "kernel" / "connection.json")
        command, kw = await super()._async_pre_start_kernel(**kw)
        # The kernel's own stdout and stderr lead nowhere: what a learner's code writes past IPython's streams
        # (ipykernel keeps the original descriptors) never reaches this process, its log or the worker.
        kw["stdout"] = kw["stderr"] = subprocess.DEVNULL
        return command, kw

    def client(self, **kwargs):
        """The grader's end of the kernel's channels, taking in no message over ANSWER_LIMIT bytes (ZMQ drops
        a longer one, and the connection, which it opens again) and queueing at most QUEUED of them (more are
        dropped), so that no kernel can make this process hold more, whatever it sends."""
        import zmq
        import zmq.asyncio

        context = zmq.asyncio.Context()
        context.setsockopt(zmq.MAXMSGSIZE, ANSWER_LIMIT)
        context.setsockopt(zmq.RCVHWM, QUEUED)
        return super().client(context=context, **kwargs)

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
        self._asking = False  # a request of the grader's is running: its answer has a budget of its own
        self._kept: dict[int, int] = defaultdict(int)  # cell → bytes of output kept as they came
        self._dropped: dict[int, int] = defaultdict(int)

    def preprocess_cell(self, cell, resources, index):
        self._running = index
        return super().preprocess_cell(cell, resources, index)

    def output(self, outs, msg, display_id, cell_index):
        """Each output as it arrives, within the cell's budget (CELL_OUTPUT_LIMIT bytes): a print loop of
        gigabytes costs this process a few megabytes. Text over the budget is cut, with a note, and what
        follows is dropped; the grader's answers (during a request) have the wire's own cap."""
        content = msg.get("content", {})
        answer = self._asking and MIME in content.get("data", {})
        size = _size(content)
        limit = ANSWER_LIMIT if answer else CELL_OUTPUT_LIMIT
        room = limit - self._kept[cell_index]
        if size > room:
            if not self._dropped[cell_index] and msg["msg_type"] == "stream" and room > 0:
                content["text"] = content.get("text", "")[:room] + (
                    f"\n… {DROPPED}: this cell's output is over {limit // 2**20} MB; the rest of it was "
                    "dropped as it came\n"
                )
                self._kept[cell_index] = limit
                self._dropped[cell_index] += size - room
                return super().output(outs, msg, display_id, cell_index)
            self._dropped[cell_index] += size
            return None
        self._kept[cell_index] += size
        return super().output(outs, msg, display_id, cell_index)

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


class AskingExecute(SandboxedExecute):
    """The learner's cells run in the sandboxed kernel; check cells do not. Right after each check's answer
    cell the kernel is asked for that check's answers: its request is a new file in the grader's folder of
    the scratch (the check's hidden inputs, prepared by the worker, and the answer cell's source when the
    check runs it again), named in one line of code; the answers come back as one display output of type
    ``checks.MIME``, kept as they came for the worker to decode and judge (:mod:`grader.verdicts`)."""

    checks = List(Dict(), config=True, help="the part's checks: grade_id, after (the answer cell), rerun")
    requests = Unicode(
        config=True, help="the worker's folder of prepared inputs: GRADE_ID.json, .safetensors"
    )
    answers_file = Unicode(config=True, help="where the answers are written, as they came, in JSON")

    def preprocess(self, nb, resources=None, km=None):
        self._part = resources["nbgrader"]["assignment"]
        ids = {check["grade_id"] for check in self.checks}
        cells = [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]
        where = {grade_id: i for i, grade_id in enumerate(cells) if grade_id}
        self._anchors: dict[int, list[dict]] = defaultdict(list)
        for check in self.checks:  # after its answer cell; or where its check cell is; or at the end
            anchor = where.get(check["after"], where.get(check["grade_id"], len(nb.cells) - 1))
            self._anchors[anchor].append(check)
        self._sources = {grade_id: nb.cells[i].source for grade_id, i in where.items()}
        self._skip = {i for i, grade_id in enumerate(cells) if grade_id in ids}
        self._answers: dict[str, dict] = {}
        self._timed_out: set[int] = set()
        folder = Path(self.config.SandboxedKernelManager.scratch) / "requests"
        folder.mkdir(mode=0o755)
        os.chmod(folder, 0o755)  # the sandbox's uid reads it; only the grader writes in it
        self._folder, self._folder_fd = folder, os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            nb, resources = super().preprocess(nb, resources, km)
        finally:
            os.close(self._folder_fd)
            record = {"answers": self._answers, "kernel_died": resources.get("course", {}).get("kernel_died")}
            Path(self.answers_file).write_text(json.dumps(record))
        return nb, resources

    def preprocess_cell(self, cell, resources, index):
        if index in self._skip:  # a check cell: judged by the grader, never run in the learner's kernel
            cell.outputs, cell.execution_count = [], None
            self._running = index
        else:
            cell, resources = super().preprocess_cell(cell, resources, index)
            if any(o.get("ename") == "CellTimeoutError" for o in cell.get("outputs", [])):
                self._timed_out.add(index)
        for check in self._anchors.get(index, []):
            self._answers[check["grade_id"]] = self._ask(check, index)
        return cell, resources

    def _ask(self, check: dict, index: int) -> dict:
        """One request; its answers as they came (``{"payload": ...}``), or why there are none."""
        if check["rerun"] and index in self._timed_out:  # it would only time out again
            return {
                "reason": f"your answer cell ran longer than the limit of {self.timeout} s, so the grader "
                "could not run it again on its inputs"
            }
        prepared = Path(self.requests) / check["grade_id"]
        name = secrets.token_hex(8)
        meta = {
            "part": self._part,
            "grade_id": check["grade_id"],
            "source": self._sources.get(check["after"]) if check["rerun"] else None,
            "sent": json.loads(prepared.with_suffix(".json").read_text()),
        }
        _create(self._folder_fd, f"{name}.safetensors", prepared.with_suffix(".safetensors").read_bytes())
        _create(self._folder_fd, f"{name}.json", json.dumps(meta).encode())
        request = new_code_cell(
            f"__import__('checks.kernel', fromlist=['answer']).answer({str(self._folder / name)!r})"
        )
        saved = self.nb.cells[index]
        self._asking = True
        try:
            self.execute_cell(request, index, store_history=False)
        except DeadKernelError:
            self._answers[check["grade_id"]] = {
                "reason": "the kernel died while the grader collected this check's answers"
            }
            raise
        finally:
            self._asking = False
            self.nb.cells[index] = saved  # nbclient puts the cell it ran in the notebook: not this one
            for suffix in (".safetensors", ".json"):
                os.unlink(name + suffix, dir_fd=self._folder_fd)
        if any(o.get("ename") == "CellTimeoutError" for o in request.outputs):
            return {
                "reason": f"collecting this check's answers ran longer than the limit of {self.timeout} s "
                "(your code, called by the check, may loop forever)"
            }
        payloads = [
            o["data"][MIME]
            for o in request.outputs
            if o.output_type in ("display_data", "execute_result") and MIME in o.get("data", {})
        ]
        if not payloads:
            return {"reason": "no answer came back for this check: code in the notebook stopped the request"}
        return {"payload": payloads[-1]}


def _size(content: dict) -> int:
    """About how many bytes an output's message holds (its text, its data, its traceback)."""
    pieces = [content.get("text", ""), content.get("evalue", ""), *content.get("traceback", [])]
    pieces += [v if isinstance(v, str) else json.dumps(v) for v in content.get("data", {}).values()]
    return sum(len(p) for p in pieces if isinstance(p, str))


def _create(folder_fd: int, name: str, data: bytes) -> None:
    """A new file in the folder open as ``folder_fd``, never through a link the kernel may have planted."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    with os.fdopen(os.open(name, flags, 0o644, dir_fd=folder_fd), "wb") as handle:
        handle.write(data)


class CapOutputs(Preprocessor):
    """Each output at most TEXT_LIMIT bytes of text (IMAGE_LIMIT of an image), with a note where cut; the
    whole notebook's outputs at most NOTEBOOK_OUTPUT_LIMIT bytes, of which markup at most MARKUP_LIMIT (past
    it, an output keeps its plain text)."""

    enabled = True

    def preprocess(self, nb, resources):
        nb, resources = super().preprocess(nb, resources)
        kept = markup = 0
        for cell in nb.cells:
            outputs = []
            for output in cell.get("outputs", []):
                data = output.get("data", {})
                size = _size(output)
                if markup + sum(len(str(data[k])) for k in MARKUP if k in data) > MARKUP_LIMIT:
                    for key in MARKUP:
                        data.pop(key, None)
                    size = _size(output)
                markup += sum(len(str(data[k])) for k in MARKUP if k in data)
                if kept + size > NOTEBOOK_OUTPUT_LIMIT:
                    note = (
                        f"… {DROPPED}: the notebook's outputs are over {NOTEBOOK_OUTPUT_LIMIT // 2**20} MB\n"
                    )
                    outputs.append(NotebookNode(output_type="stream", name="stdout", text=note))
                    break
                kept += size
                if output.output_type != "display_data" or data:
                    outputs.append(output)
            if "outputs" in cell:
                cell.outputs = outputs
        return nb, resources

    @staticmethod
    def _cut(text, limit: int):
        if not isinstance(text, str | list):  # JSON outputs (a tqdm widget): small, kept as they are
            return text
        joined = "".join(text) if isinstance(text, list) else text
        try:
            joined.encode()
        except UnicodeEncodeError:  # a lone surrogate the kernel printed: no file could hold it
            text = joined = joined.encode(errors="replace").decode()
        if len(joined.encode()) <= limit:
            return text
        kept = joined.encode()[:limit].decode(errors="ignore")
        dropped = joined.rfind(DROPPED, len(joined) - 500)  # more was dropped as it came: say so too
        tail = joined[dropped:] if dropped >= 0 else ""
        return kept + f"\n… truncated by the grader ({len(joined.encode()):,} bytes in all)\n" + tail

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
    checks: list[dict] = field(default_factory=list)  # the part's checks: grade_id, after, rerun
    requests: str = ""  # the worker's folder of the checks' prepared inputs


@dataclass
class Outcome:
    status: str  # graded | error
    reason: str = ""
    timed_out_cells: list[int] | None = None
    kernel_died: int | None = None
    seconds: float = 0.0
    peak_mb: float = 0.0  # this process's peak resident memory (the kernel's output passes through it)


def autograde_config(task: Task, scratch: Path, cgroups: tuple[str, ...] = ()) -> Config:
    """The scoring configuration (grader.scoring), with execution in front: nbgrader's own sanitizing
    (outputs cleared, checks restored), then the sandboxed run, the ✓ rule and the output caps."""
    c = scoring.config(Path(task.course_root))
    del c.Autograde["sanitize_preprocessors"]  # from a learner's notebook: nbgrader's own defaults
    c.Autograde.autograde_preprocessors = [AskingExecute, CapOutputs, *c.Autograde.autograde_preprocessors]
    c.Execute.timeout = task.cell_timeout
    c.Execute.interrupt_on_timeout = True
    c.Execute.error_on_timeout = {
        "ename": "CellTimeoutError",
        "evalue": f"this cell ran longer than the limit of {task.cell_timeout} s and was stopped",
        "traceback": [f"CellTimeoutError: this cell ran longer than the limit of {task.cell_timeout} s"],
    }
    # nbgrader's own choices (4 s for a cell's last outputs, then the whole notebook fails; 60 s for a kernel
    # to start) fail whole notebooks on a loaded machine: a kernel gets 5 minutes to start, and outputs that
    # come late (a busy machine) are waited for a minute, then the cell's verdict stands without them.
    c.Execute.startup_timeout = 300
    c.Execute.iopub_timeout = 60
    c.Execute.raise_on_iopub_timeout = False
    k = c.SandboxedKernelManager
    k.scratch, k.readonly, k.symlinks = str(scratch), task.readonly, task.symlinks
    k.uid = -1 if task.uid is None or not task.sandboxed else task.uid
    k.enabled, k.cgroups = task.sandboxed, list(cgroups)
    k.limits, k.environment = task.limits, {**task.environment, **sandbox_home(scratch)}
    c.AskingExecute.checks, c.AskingExecute.requests = task.checks, task.requests
    c.AskingExecute.answers_file = str(Path(task.course_root) / "answers.json")
    return c


def sandbox_home(scratch: Path) -> dict[str, str]:
    return {
        "HOME": str(scratch / "home"),
        "TMPDIR": str(scratch / "work"),  # short: multiprocessing's socket paths (DataLoader workers) fit
        "MPLCONFIGDIR": str(scratch / "home" / "matplotlib"),
        "JUPYTER_RUNTIME_DIR": str(scratch / "home" / "runtime"),
        "IPYTHONDIR": str(scratch / "home" / "ipython"),
    }


def run(task: Task) -> Outcome:
    from nbgrader.apps import NbGraderAPI

    from grader.sandbox import confined, make_scratch, remove_scratch

    start = time.perf_counter()
    scratch = make_scratch(task.uid if task.sandboxed else None)
    try:
        with confined(Limits(**task.limits)) as cgroups:
            api = NbGraderAPI(config=autograde_config(task, scratch, cgroups))
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


def peak_memory_mb() -> float:
    """This process's peak resident memory (VmHWM: since its exec, unlike getrusage's, which counts the
    worker it was forked from)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def main(argv: list[str]) -> int:
    task_file = Path(argv[0])
    task = Task(**json.loads(task_file.read_text()))
    try:
        outcome = run(task)
    except Exception as error:  # recorded for this task; the class goes on
        outcome = Outcome("error", f"the grader failed on it: {type(error).__name__}: {str(error)[:300]}")
    outcome.peak_mb = peak_memory_mb()
    (task_file.parent / "result.json").write_text(json.dumps(asdict(outcome)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
