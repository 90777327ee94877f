"""On the worker, trusted: the checks' hidden inputs before a notebook runs, their verdicts after it ran.

A worker prepares each part's hidden inputs once (they depend on the part, the check and the secret, nothing
else): :func:`prepare` draws them with the checks' own ``hidden`` functions and writes what the kernel will be
sent, for :mod:`grader.execution` to copy into each request. When the notebook's grading process has ended
(and with it every process of the sandbox), :func:`judge` decodes the answers it kept (:mod:`checks.wire`:
JSON and safetensors, nothing run or unpickled) and runs each check's judge on them with what the judge alone
keeps (labels, reference values); :func:`write` makes each verdict the only output of its check cell, putting
back a check cell the learner deleted.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import hmac
import json
import os
import textwrap
from collections import Counter
from pathlib import Path

import nbformat
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell

import checks
from checks import HINT_METADATA, data, wire
from checks.core import Check, Inputs, Verdict
from grader.cells import error_output

MISSING = "# This check cell was missing from the notebook: the grader put it back and judged your answers."


def seed(secret: str, part: str, grade_id: str, learner: str = "") -> int:
    """The seed of one check's hidden inputs: from the grader's secret, the part and the check, and with
    per-learner variants the learner's id, HMAC(secret, part, check, learner) — nothing else (the same learner
    graded twice with the same secret gets the same inputs; learners cannot work them out, nor one learner
    another's)."""
    if learner:
        message = f"{part}\0{grade_id}\0{learner}".encode()
        digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    else:
        digest = hashlib.sha256(f"{secret}\0{part}\0{grade_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & (2**63 - 1)


def plan(part: str) -> list[dict]:
    """What the grading process needs to know of a part's checks: which cell each follows, which rerun it."""
    return [{"grade_id": c.grade_id, "after": c.after, "rerun": c.rerun} for c in checks.of_part(part)]


@functools.lru_cache(maxsize=8)  # with variants, each learner's own: a worker keeps a few
def _inputs(part: str, secret: str, sandboxed: bool, learner: str = "") -> dict[str, Inputs]:
    import torch

    # the sandbox binds no GPU: Part 8 at the CPU's image size
    data.KERNEL_CUDA = False if sandboxed else None
    return {
        check.grade_id: check.hidden(
            torch.Generator().manual_seed(seed(secret, part, check.grade_id, learner))
        )
        for check in checks.of_part(part)
    }


def prepare(
    part: str, secret: str, folder: Path, sandboxed: bool = True, learner: str = ""
) -> tuple[Path, dict[str, Inputs]]:
    """The part's hidden inputs (the learner's own, with variants: ``learner`` their id), drawn once per
    worker, and the folder where what the kernel is sent lies: ``GRADE_ID.json`` (the structure) and
    ``GRADE_ID.safetensors`` (the tensors)."""
    data.CACHE = folder.parent / "cache"  # what the judges compute once (Part 8's features): the worker's own
    inputs = _inputs(part, secret, sandboxed, learner)
    key = hashlib.sha256(f"{part}\0{secret}\0{sandboxed}\0{learner}".encode()).hexdigest()[:16]
    target = folder / f"{part}-{key}"
    if not (target / "complete").exists():
        building = folder / f".{part}-{key}-{os.getpid()}"
        building.mkdir(parents=True, exist_ok=True)
        for grade_id, each in inputs.items():
            structure, blob = wire.request_parts(each.sent)
            (building / f"{grade_id}.json").write_text(json.dumps(structure))
            (building / f"{grade_id}.safetensors").write_bytes(blob)
        (building / "complete").touch()
        # another worker of this machine may have been faster: its folder is the same
        with contextlib.suppress(OSError):
            building.rename(target)
    return target, inputs


def answer_cells(submission: bytes) -> dict[str, str]:
    """The source of each cell nbgrader tracks in the notebook as the intake admitted it (grade id →
    source): what a ``rerun`` check's answer cell ran again from, as the grader holds it (not as the kernel
    reports it)."""
    nb = nbformat.reads(submission.decode(), as_version=4)
    found: dict[str, str] = {}
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id and grade_id not in found:
            found[grade_id] = cell.source
    return found


def judge_one(
    part: str, grade_id: str, inputs: dict[str, Inputs], record: dict, cells: dict[str, str] | None = None
) -> Verdict:
    """One check's verdict on the answers the grading process kept (``answers.json``). A ``rerun`` check's
    answers get its answer cell's source from ``cells`` (the grader's copy) as ``$source``, whatever the
    kernel sent under that name."""
    check = next(c for c in checks.of_part(part) if c.grade_id == grade_id)
    answers, died = record.get("answers", {}), record.get("kernel_died")
    got = answers.get(grade_id) if isinstance(answers, dict) else None
    if not isinstance(got, dict):
        reason = "not run: " + (
            "the kernel died in an earlier cell"
            if died is not None
            else "the notebook stopped before this check"
        )
        return Verdict(grade_id, False, reason)
    if "payload" not in got:
        return Verdict(grade_id, False, str(got.get("reason", "no answer")))
    try:
        decoded = wire.decode(got["payload"])
    except wire.WireError as error:
        return Verdict(
            grade_id, False, f"the answer that came back for this check could not be read: {error}"
        )
    if not isinstance(decoded, dict):
        decoded = {"$problem": wire.Raised("the answer that came back is not a set of answers")}
    decoded.pop("$source", None)
    if check.rerun and cells is not None and check.after in cells:
        decoded["$source"] = cells[check.after]
    return check.verdict(inputs[grade_id], decoded, hidden=True)


def misconception_of(verdict: Verdict | None) -> dict[str, str]:
    """What the record keeps of the misconception a failed verdict named (for the class report, which reads it
    without the checks): its id, name and where the course teaches it; empty for none."""
    from checks.core import MISCONCEPTIONS

    found = MISCONCEPTIONS.get(verdict.misconception) if verdict and verdict.misconception else None
    return {"id": found.id, "name": found.name, "where": found.where()} if found else {}


def hints_taken(submission: bytes, part: str) -> dict[str, int]:
    """How many hints of each check the notebook records (the outputs ``check.hint()`` left, each with its
    check, misconception and level in its metadata): the distinct ones, per check of the part. Read as data,
    from the notebook as it was handed in; an output that is not such a record is not counted. A learner can
    erase them (clear the outputs), never add one that costs anyone else."""
    known = {c.grade_id for c in checks.of_part(part)}
    try:  # a validated notebook (grader.intake.admit): only the records themselves are the learner's to shape
        nb = nbformat.reads(submission.decode(), as_version=4)
    except Exception:
        return {}
    found = set()
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            hint = output.get("metadata", {}).get(HINT_METADATA)
            if not isinstance(hint, dict):
                continue
            check, misconception, level = hint.get("check"), hint.get("misconception"), hint.get("level")
            if check in known and isinstance(misconception, str) and level in (1, 2, 3):
                found.add((check, misconception, level))
    return dict(Counter(check for check, _, _ in found))


def verdict_output(verdict: Verdict, points: float = 0.0, hints: int = 0, cost: float = 0.0) -> list:
    """A verdict as the check cell's outputs: its ✓ line (full points for nbgrader) or an error (none). A
    passed check whose hints cost points (``hints`` × ``cost``, of the check's ``points``) adds what is left
    as an execute_result, which nbgrader scores as partial credit."""
    if not verdict.passed:
        name = "CheckNotRun" if verdict.message.startswith("not run") else "CheckFailed"
        failed = error_output(name, verdict.message)
        # formgrader shows the traceback in a box that never wraps: wrapped here (evalue keeps it whole)
        failed.traceback = [textwrap.fill(f"{name}: {verdict.message}", 100, break_long_words=False)]
        return [failed]
    charge = min(points, hints * cost)
    if not charge:
        return [NotebookNode(output_type="stream", name="stdout", text=verdict.line() + "\n")]
    taken = f" — {hints} hint{'s' if hints > 1 else ''} taken: {charge:g} of its {points:g} points"
    return [
        NotebookNode(output_type="stream", name="stdout", text=verdict.line() + taken + "\n"),
        NotebookNode(
            output_type="execute_result",
            execution_count=None,
            metadata={},
            data={"text/plain": f"{points - charge:g}"},
        ),
    ]


def put_back(
    nb: NotebookNode,
    verdicts: dict[str, Verdict],
    part_checks: list[Check],
    source: NotebookNode,
    hints: dict[str, int] | None = None,
    hint_cost: float = 0.0,
) -> None:
    """Each verdict as the only output of its check cell (less what the hints taken cost); a check cell
    missing from the notebook is put back (the exercise's own) right after its answer cell, or at the end."""
    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells}
    originals = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in source.cells}
    for check in part_checks:
        cell = cells.get(check.grade_id)
        if cell is None:
            original = originals.get(check.grade_id)
            cell = copy.deepcopy(original) if original is not None else new_code_cell("")
            if "id" in cell:  # the learner's notebook may hold a cell of that id (its metadata forged away)
                cell.id = new_code_cell("").id
            cell.source = f"{MISSING}\n{cell.source}"
            ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]
            after = ids.index(check.after) + 1 if check.after in ids else len(nb.cells)
            nb.cells.insert(after, cell)
            cells[check.grade_id] = cell
        original = originals.get(check.grade_id)
        points = float(original.metadata["nbgrader"].get("points", 0)) if original is not None else 0.0
        taken = (hints or {}).get(check.grade_id, 0)
        cell.outputs = verdict_output(verdicts[check.grade_id], points, taken, hint_cost)
        answer = cells.get(check.after)  # judged right after its answer cell ran: shown with its number
        cell.execution_count = answer.get("execution_count") if answer is not None else None


def write(
    executed: Path,
    part: str,
    verdicts: dict[str, Verdict],
    source: bytes,
    hints: dict[str, int] | None = None,
    hint_cost: float = 0.0,
) -> None:
    """The verdicts into the executed notebook, which is replaced (nbgrader leaves it read-only: mode 444)."""
    nb = nbformat.read(executed, as_version=4)
    source_nb = nbformat.reads(source.decode(), as_version=4)
    put_back(nb, verdicts, checks.of_part(part), source_nb, hints, hint_cost)
    written = executed.with_name(f".{executed.name}.verdicts")
    nbformat.write(nb, written)
    os.replace(written, executed)
