"""The kernel's side of the checks: self-checks in a notebook, and the grader's requests at grading.

Nothing here decides a grade. :func:`answer` is what the grader's request calls: it reads the request's
inputs, runs the learner's answer cell again on them if the check asks for that, collects the answers
(``ask``) and publishes them as one display output of type :data:`checks.wire.MIME`, which the grader reads as
data. Whatever the learner's code does to this module, its requests or its outputs, can only change the data
the judge receives, never the judge.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from checks import HINT_METADATA, wire
from checks.core import (
    MISCONCEPTIONS,
    Check,
    CheckFailed,
    Inputs,
    Raised,
    Verdict,
    attempt,
    unchanged_random_state,
)


def find(part: str, grade_id: str) -> Check:
    """The check ``grade_id`` of the part called ``part`` (e.g. "01_tensors")."""
    from checks import of_part

    return next(c for c in of_part(part) if c.grade_id == grade_id)


def self_check(check: Check, namespace: dict) -> None:
    """The notebook's own check: the learner's values on the notebook's inputs, judged right here."""
    with unchanged_random_state():
        inputs = check.given(namespace)
        answers = attempt(check.ask, namespace, inputs.sent)
        answers = wire.roundtrip(_problem(answers))
    verdict = check.verdict(Inputs(wire.roundtrip(inputs.sent), inputs.kept), answers, hidden=False)
    if not verdict.passed:
        LADDER.last = (check.grade_id, verdict.misconception)
        raise CheckFailed(verdict.message, MISCONCEPTIONS.get(verdict.misconception))
    if LADDER.last and LADDER.last[0] == check.grade_id:
        LADDER.last = None
    print(verdict.line())


# ------------------------------------------------------------------------------------------ the hint ladder
@dataclass
class Ladder:
    """The learner's hints in this kernel: the last failed self-check (its grade_id and the id of the
    misconception it recognised, "" for none) and how many hints of each (check, misconception) were given."""

    last: tuple[str, str] | None = None
    taken: dict[tuple[str, str], int] = field(default_factory=dict)


LADDER = Ladder()


@dataclass(frozen=True)
class Hint:
    grade_id: str
    misconception: str  # its id
    level: int  # 1: the concept, 2: where the course teaches it, 3: a skeleton of the answer; 0: no hint
    text: str


def next_hint() -> Hint:
    """The next hint of the last failed self-check's misconception (after the third, the third again)."""
    if LADDER.last is None:
        return Hint(
            "", "", 0, "No check has failed since this kernel started: a hint follows a failed check."
        )
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
    """Show the next hint for the last check that failed here: first the concept, then where the course
    teaches it, then a skeleton of the answer. Each hint shown is kept in the cell's output (its metadata),
    so the saved notebook records the hints taken; the grader counts them (and, where the instructor says so,
    each costs points)."""
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
    answers = _problem(attempt(collect, check, globals_of_the_notebook(), sent, meta.get("source")))
    display({wire.MIME: wire.encode(answers)}, raw=True)


def _problem(answers: object) -> dict:
    """Answers, or what went wrong while the check collected them (the learner's objects behaving
    unexpectedly): a failure with that reason, never a crash of the check."""
    if isinstance(answers, Raised):
        return {"$problem": Raised(f"the check could not collect your answers: {answers.message}")}
    if not isinstance(answers, dict):
        return {
            "$problem": Raised(f"the check could not collect your answers (got {type(answers).__name__})")
        }
    return answers


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
    answers = _problem(attempt(collect, check, namespace, sent, source))
    return check.verdict(Inputs(sent, inputs.kept), wire.roundtrip(answers), hidden=True)
