"""The kernel's side of the checks: self-checks in a notebook, and the grader's requests at grading.

Nothing here decides a grade. :func:`answer` is what the grader's request calls: it reads the request's
inputs, runs the learner's answer cell again on them if the check asks for that, collects the answers
(``ask``) and publishes them as one display output of type :data:`checks.wire.MIME`, which the grader reads as
data. Whatever the learner's code does to this module, its requests or its outputs, can only change the data
the judge receives, never the judge.
"""

from __future__ import annotations

from checks import wire
from checks.core import Check, CheckFailed, Inputs, Raised, Verdict, attempt, unchanged_random_state


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
        raise CheckFailed(verdict.message)
    print(verdict.line())


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
