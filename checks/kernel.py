"""The kernel's side of the checks: the hint ladder, and the grader's requests at grading.

Nothing here decides a grade. :func:`answer` is what the grader's request calls: it reads the request's
inputs, runs the learner's answer cell again on them if the check asks for that, collects the answers
(``ask``) and publishes them as one display output of type :data:`checks.wire.MIME`, which the grader reads as
data. Whatever the learner's code does to this module, its requests or its outputs, can only change the data
the judge receives, never the judge. (A notebook's self-check, ``check.neuron_sum()``, is
:func:`checks.core.self_check`.)

The modules import one way only: :mod:`checks.wire` (the data that crosses) ← :mod:`checks.core` (what a
check is made of) ← this module.
"""

from __future__ import annotations

from dataclasses import dataclass

from checks import HINT_METADATA, wire
from checks.core import (
    LADDER,
    MISCONCEPTIONS,
    Check,
    Inputs,
    Verdict,
    as_answers,
    attempt,
    unchanged_random_state,
)
from checks.wire import Raised


def find(part: str, grade_id: str) -> Check:
    """The check ``grade_id`` of the part called ``part`` (e.g. "01_tensors")."""
    from checks import of_part

    return next(c for c in of_part(part) if c.grade_id == grade_id)


# ------------------------------------------------------------------------------------------ the hint ladder
@dataclass(frozen=True)
class Hint:
    grade_id: str
    misconception: str  # its id
    level: int  # 1: the concept, 2: what the course says about it, 3: a skeleton of the answer; 0: no hint
    text: str


def next_hint() -> Hint:
    """The next hint of the last failed self-check's misconception (after the third, the third again); when
    that check has passed since, what the self-checks of this kernel did."""
    if LADDER.last is None:
        if not LADDER.failures:
            return Hint(
                "", "", 0, "No check has failed since this kernel started: a hint follows a failed check."
            )
        failed = "; ".join(
            f"{grade_id} ({times} time{'s' if times > 1 else ''}, "
            f"{'passed since' if LADDER.latest.get(grade_id) else 'not passed since'})"
            for grade_id, times in LADDER.failures.items()
        )
        pending = not all(LADDER.latest.get(grade_id) for grade_id in LADDER.failures)
        again = " — run a check that has not passed since again, then check.hint()" if pending else ""
        said = f"Your last check passed: no hint needed. Failed earlier in this kernel: {failed}{again}."
        return Hint("", "", 0, said)
    grade_id, found = LADDER.last
    misconception = MISCONCEPTIONS.get(found)
    if misconception is None:
        return Hint(
            grade_id,
            "",
            0,
            f"{grade_id} failed without recognising a typical mistake, so it has no hints for it: its "
            "message says what it expected and what it got.",
        )
    level = min(LADDER.taken.get((grade_id, found), 0) + 1, len(misconception.hints))
    LADDER.taken[(grade_id, found)] = level
    return Hint(grade_id, found, level, misconception.hints[level - 1])


def hint() -> None:
    """Show the next hint for the last check that failed here: first the concept, then what the course says
    about it (where the failure message sent you), then a skeleton of the answer. Each hint shown is kept in
    the cell's output (its metadata), so the saved notebook records the hints taken; the grader counts them
    (and, where the instructor says so, each costs points)."""
    from IPython.display import display

    given = next_hint()
    if not given.level:
        print(given.text)
        return
    misconception = MISCONCEPTIONS[given.misconception]
    title = f"Hint {given.level} of {len(misconception.hints)} for {given.grade_id} ({misconception.name})"
    body = f"```python\n{given.text}\n```" if given.level == len(misconception.hints) else given.text
    record = {"check": given.grade_id, "misconception": given.misconception, "level": given.level}
    display(
        {"text/markdown": f"**{title}**\n\n{body}", "text/plain": f"{title}\n{given.text}"},
        raw=True,
        metadata={HINT_METADATA: record},
    )


def collect(check: Check, namespace: dict, sent: dict, source: str | None) -> dict:
    """The answers of one request: for a ``rerun`` check the answer cell ``source`` runs again first, in a
    copy of the notebook's names with the request's inputs bound; the notebook's own names are left as they
    were."""
    with unchanged_random_state():
        if not check.rerun:
            return check.ask(namespace, sent)
        scope = dict(namespace)
        bound = attempt(check.bind, namespace, sent) if check.bind else sent
        if isinstance(bound, Raised):
            return {"$cell": bound}
        scope.update(bound)
        if source is None:
            return {"$cell": Raised(f"the answer cell {check.after!r} is not in the notebook")}
        ran = attempt(exec, compile(_python(source), f"<answer cell {check.after}>", "exec"), scope)
        if isinstance(ran, Raised):
            return {"$cell": ran}
        return check.ask(scope, sent)


def answer(path: str) -> None:
    """The grader's request (the inputs file at ``path``): the answers, published as data."""
    from IPython.display import display

    meta, sent = wire.read_request(path)
    check = find(meta["part"], meta["grade_id"])
    answers = as_answers(attempt(collect, check, globals_of_the_notebook(), sent, meta.get("source")))
    display({wire.MIME: wire.encode(answers)}, raw=True)


def globals_of_the_notebook() -> dict:
    from IPython import get_ipython

    return get_ipython().user_ns


def _python(source: str) -> str:
    """A cell's source as Python: IPython's magics (``%matplotlib``, ``!ls``) turned into calls."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:
            return shell.transform_cell(source)
    except Exception:
        pass
    return source


def simulate(check: Check, namespace: dict, source: str | None, seed: int = 0) -> Verdict:
    """The verdict the grader would give on this notebook's answers, worked out here, in one process (for the
    tests): hidden inputs from ``seed``, the request's collection (``source``: the answer cell, for a
    ``rerun`` check), the answers through the wire, the judge at grading."""
    import torch

    inputs = check.hidden(torch.Generator().manual_seed(seed))
    sent = wire.roundtrip(inputs.sent)
    answers = as_answers(attempt(collect, check, namespace, sent, source))
    try:
        answers = wire.roundtrip(answers)
    except wire.WireError as error:  # as the grader's judge_one: an answer that cannot be read earns nothing
        return Verdict(
            check.grade_id, False, f"the answer that came back for this check could not be read: {error}"
        )
    if isinstance(answers, dict):  # as grader.verdicts.judge_one: the answer cell as the grader holds it
        answers.pop("$source", None)
        if check.rerun and source is not None:
            answers["$source"] = source
    return check.verdict(Inputs(sent, inputs.kept), answers, hidden=True)
