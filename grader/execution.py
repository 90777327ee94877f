"""Phase 1: execute one learner's notebook of one part with nbgrader, its kernel in the sandbox, and judge it.

nbgrader's autograde runs here, in the grader's own (trusted) process, in a scratch course that the sandbox
cannot see; only the *kernel* runs inside the sandbox (:class:`SandboxedKernelManager`). The learner's cells
run in it; the check cells do not. Instead, right after each check's answer cell, :class:`JudgedExecute` sends
the kernel a *request*: the check's inputs (drawn here, from the grader's secret, and written to a file the
kernel can read but not change) and the name of the check; the kernel answers with data (:mod:`checks.wire`:
JSON and safetensors, nothing executable). When every process of the sandbox is dead (the kernel's own PID
namespace ends with it), this process runs each check's judge (:mod:`checks`) on the answers and writes its
verdict, and only its verdict, into the check cell: the ✓ line, or the judge's message as the cell's error.
What the learner's code printed stays in the learner's own cells and never changes a score. A check cell the
learner deleted is put back; one the learner edited is judged as the instructor wrote it.

Run as ``python -m grader.execution TASK.json`` (one process per task, so a crash of nbgrader or a memory
blow-up in this process costs only this task); it writes ``result.json`` next to the task.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import secrets
import signal
import sys
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from nbclient.exceptions import DeadKernelError
from nbconvert.preprocessors import Preprocessor
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell
from nbgrader.preprocessors import Execute
from traitlets import Bool, Dict, Int, List, Unicode
from traitlets.config import Config

import checks
from checks import wire
from checks.core import Check, Inputs, Verdict
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


def seed(secret: str, part: str, grade_id: str) -> int:
    """The seed of one check's hidden inputs: from the grader's secret, the part and the check, nothing else
    (the
    same learner graded twice with the same secret gets the same inputs; learners cannot work them out)."""
    digest = hashlib.sha256(f"{secret}\0{part}\0{grade_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & (2**63 - 1)


def verdict_output(verdict: Verdict) -> NotebookNode:
    """A verdict as the check cell's only output: its ✓ line (full points for nbgrader) or an error (none)."""
    if verdict.passed:
        return NotebookNode(output_type="stream", name="stdout", text=verdict.line() + "\n")
    name = "CheckNotRun" if verdict.message.startswith("not run") else "CheckFailed"
    return error_output(name, verdict.message)


class JudgedExecute(SandboxedExecute):
    """The learner's cells run in the sandboxed kernel; check cells do not. After each check's answer cell the
    kernel is asked for that check's answers (its request: hidden inputs in a file, one line of code naming
    the
    check); once the kernel is gone, each check is judged here and its verdict becomes the check cell's
    output."""

    secret = Unicode(config=True, help="the grader's secret: the seed of every hidden input")
    source_notebook = Unicode(config=True, help="the part's exercise source: check cells to put back")
    verdicts_file = Unicode("", config=True, help="where the verdicts are written as JSON")

    def preprocess(self, nb, resources=None, km=None):
        self._part = resources["nbgrader"]["assignment"]
        self._checks: list[Check] = checks.of_part(self._part)
        ids = {check.grade_id for check in self._checks}
        where = {
            c.metadata["nbgrader"].get("grade_id"): i
            for i, c in enumerate(nb.cells)
            if "nbgrader" in c.metadata
        }
        self._anchors: dict[int, list[Check]] = defaultdict(list)
        for check in self._checks:
            self._anchors[where.get(check.after, where.get(check.grade_id, len(nb.cells) - 1))].append(check)
        self._sources = {
            c.metadata["nbgrader"].get("grade_id"): c.source for c in nb.cells if "nbgrader" in c.metadata
        }
        self._skip = {
            i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") in ids
        }
        self._answers: dict[str, tuple[Inputs, dict] | str] = {}
        self._timed_out: set[int] = set()
        folder = Path(self.km_scratch()) / "requests"
        folder.mkdir(mode=0o755)
        os.chmod(folder, 0o755)  # the sandbox's uid reads it; only the grader writes in it
        self._folder, self._folder_fd = folder, os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            nb, resources = super().preprocess(nb, resources, km)
        finally:
            os.close(self._folder_fd)
        # Every process of the sandbox is dead now: judge, and write each verdict into its check cell.
        died = resources.get("course", {}).get("kernel_died")
        verdicts = {check.grade_id: self._verdict(check, died) for check in self._checks}
        put_back(nb, verdicts, self._checks, self.source_notebook)
        record = {grade_id: {"passed": v.passed, "message": v.message} for grade_id, v in verdicts.items()}
        if self.verdicts_file:
            Path(self.verdicts_file).write_text(json.dumps(record, ensure_ascii=False))
        return nb, resources

    def km_scratch(self) -> str:
        return self.config.SandboxedKernelManager.scratch

    def preprocess_cell(self, cell, resources, index):
        if index in self._skip:  # a check cell: judged by the grader, never run in the learner's kernel
            cell.outputs, cell.execution_count = [], None
            self._running = index
        else:
            cell, resources = super().preprocess_cell(cell, resources, index)
            if any(o.get("ename") == "CellTimeoutError" for o in cell.get("outputs", [])):
                self._timed_out.add(index)
        for check in self._anchors.get(index, []):
            self._ask(check, index)
        return cell, resources

    def _ask(self, check: Check, index: int) -> None:
        """One request: the check's hidden inputs into a new file, then one line of code in the kernel that
        names
        the check; its answers come back as one display output of type checks.wire.MIME."""
        if check.rerun and index in self._timed_out:  # it would only time out again
            self._answers[check.grade_id] = (
                f"your answer cell ran longer than the limit of {self.timeout} s, so the grader could not "
                "run it "
                "again on its inputs"
            )
            return
        generator = __import__("torch").Generator().manual_seed(seed(self.secret, self._part, check.grade_id))
        inputs = check.hidden(generator)
        source = self._sources.get(check.after)
        name = f"{secrets.token_hex(8)}.safetensors"
        meta = {"part": self._part, "grade_id": check.grade_id, "source": source if check.rerun else None}
        wire.write_request(self._folder_fd, name, meta, inputs.sent)
        request = new_code_cell(
            f"__import__('checks.kernel', fromlist=['answer']).answer({str(self._folder / name)!r})"
        )
        saved = self.nb.cells[index]
        try:
            self.execute_cell(request, index, store_history=False)
        except DeadKernelError:
            self._answers[check.grade_id] = "the kernel died while the grader collected this check's answers"
            raise
        finally:
            self.nb.cells[index] = (
                saved  # nbclient puts the cell it ran in the notebook: the request is not kept
            )
            os.unlink(name, dir_fd=self._folder_fd)
        timed_out = any(o.get("ename") == "CellTimeoutError" for o in request.outputs)
        payloads = [
            o["data"][wire.MIME]
            for o in request.outputs
            if o.output_type in ("display_data", "execute_result") and wire.MIME in o.get("data", {})
        ]
        if timed_out:
            self._answers[check.grade_id] = (
                f"collecting this check's answers ran longer than the limit of {self.timeout} s (your code, "
                "called by the check, may loop forever)"
            )
        elif not payloads:
            self._answers[check.grade_id] = (
                "no answer came back for this check: code in the notebook stopped the grader's request"
            )
        else:
            try:
                self._answers[check.grade_id] = inputs, wire.decode(payloads[-1])
            except wire.WireError as error:
                self._answers[check.grade_id] = (
                    f"the answer that came back for this check could not be read: {error}"
                )

    def _verdict(self, check: Check, died: int | None) -> Verdict:
        got = self._answers.get(check.grade_id)
        if isinstance(got, tuple):
            return check.verdict(*got, hidden=True)
        if got is not None:
            return Verdict(check.grade_id, False, got)
        if died is not None:
            return Verdict(check.grade_id, False, "not run: the kernel died in an earlier cell")
        return Verdict(check.grade_id, False, "not run: the notebook stopped before this check")


def put_back(nb: NotebookNode, verdicts: dict[str, Verdict], part_checks: list[Check], source: str) -> None:
    """Each verdict as the only output of its check cell; a check cell missing from the notebook is put back
    (the exercise's own) right after its answer cell, or at the end."""
    import nbformat

    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells}
    originals = {}
    if source and Path(source).exists():
        originals = {
            c.metadata.get("nbgrader", {}).get("grade_id"): c
            for c in nbformat.read(source, as_version=4).cells
        }
    for check in part_checks:
        cell = cells.get(check.grade_id)
        if cell is None:
            original = originals.get(check.grade_id)
            cell = (
                copy.deepcopy(original)
                if original is not None
                else new_code_cell("", metadata={"nbgrader": {}})
            )
            cell.source = (
                "# This check cell was missing from the notebook: the grader put it back and judged your "
                "answers.\n" + cell.source
            )
            after = next(
                (
                    i
                    for i, c in enumerate(nb.cells)
                    if c.metadata.get("nbgrader", {}).get("grade_id") == check.after
                ),
                None,
            )
            nb.cells.insert(len(nb.cells) if after is None else after + 1, cell)
            cells[check.grade_id] = cell
        cell.outputs, cell.execution_count = [verdict_output(verdicts[check.grade_id])], None


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
    secret: str = ""  # the seed of the checks' hidden inputs


@dataclass
class Outcome:
    status: str  # graded | error
    reason: str = ""
    timed_out_cells: list[int] | None = None
    kernel_died: int | None = None
    seconds: float = 0.0
    verdicts: dict | None = None  # grade_id → {"passed": bool, "message": str}, as the judges decided


def autograde_config(task: Task, scratch: Path) -> Config:
    """Phase 2's configuration (grader.scoring), with execution in front: nbgrader's own sanitizing
    (outputs cleared, checks restored), then the sandboxed run, the ✓ rule and the output caps."""
    from grader import scoring  # imported here: scoring → feedback → this module

    c = scoring.config(Path(task.course_root))
    del c.Autograde["sanitize_preprocessors"]  # phase 1 starts from a learner's notebook: nbgrader's defaults
    c.Autograde.autograde_preprocessors = [JudgedExecute, CapOutputs, *c.Autograde.autograde_preprocessors]
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
    c.JudgedExecute.secret = task.secret
    c.JudgedExecute.source_notebook = str(
        Path(task.course_root) / "source" / task.part / f"{task.part}.ipynb"
    )
    c.JudgedExecute.verdicts_file = str(Path(task.course_root) / "verdicts.json")
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

    from checks import data
    from grader.sandbox import make_scratch, remove_scratch

    data.CACHE = (
        Path(task.course_root).parent / "cache"
    )  # the worker's own folder: computed once, for every task
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
    verdicts_file = Path(task.course_root) / "verdicts.json"
    verdicts = json.loads(verdicts_file.read_text()) if verdicts_file.exists() else None
    return Outcome("graded", "", timed_out, died, seconds, verdicts)


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
