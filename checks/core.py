"""What every check is made of: a judge that decides from plain data, and the two ways of getting that data.

A check (:class:`Check`) has three parts:

- ``ask(namespace, sent) -> answers``: runs in the learner's kernel and collects the learner's values: names
  of the notebook, or the learner's functions and models applied to the inputs ``sent``. Whatever it returns
  crosses to the judge as data only (:mod:`checks.wire`): tensors, numbers, strings, lists and dicts.
- ``judge(inputs, answers) -> str``: trusted code. It raises :class:`CheckFailed` with a message that says
  what was expected and what was given, or returns what it tested (the text of the ✓ line).
- the inputs: ``given(namespace)`` in the notebook (the notebook's own seeded values), ``hidden(generator)``
  at grading (drawn by the grader from its secret; the learner's kernel never sees what the judge keeps, such
  as labels and reference values). Both return :class:`Inputs`: what is sent to the kernel, what stays with
  the judge.

In a notebook, ``check.neuron_sum()`` runs all three in the kernel (a self-check: ✓ line or the message). At
grading the grader sends only the request (``ask`` on hidden inputs; for a ``rerun`` check, the learner's
answer cell is first run again with the hidden inputs bound), reads the answers as data, and runs the judge in
its own process: the same judge, so what learners see and what grades can never drift apart.
"""

from __future__ import annotations

import ast
import contextlib
import contextvars
import dis
import functools
import inspect
import math
import random
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from checks import wire
from checks.wire import Opaque, Raised  # the data that crosses: the wire's own types

TICK = "✓"
MAX_MESSAGE = 4000  # characters of a verdict's message (a judge may quote what it was given)
_hidden = contextvars.ContextVar("hidden", default=False)


@dataclass(frozen=True)
class Misconception:
    """A belief that one of a check's typical wrong answers reveals, named for the learner: what they took for
    true (``name``), where the course teaches otherwise (``section``: a heading of part ``part``'s notebook;
    ``glossary``: a term of GLOSSARY.md), and the hint ladder (:attr:`hints`): the concept, what the course
    says there, a skeleton of the answer (``skeleton``: code with the learner's part left as ``...``). A judge
    that recognises the answer fails with it (``need(..., misconception=M)``); created once, registered by
    ``id``.
    """

    id: str
    name: str
    part: int
    section: str
    concept: str
    skeleton: str
    glossary: str = ""

    def __post_init__(self) -> None:
        known = MISCONCEPTIONS.setdefault(self.id, self)
        if known is not self and known != self:
            raise ValueError(f"two misconceptions share the id {self.id!r}")

    def where(self) -> str:
        """Where the course teaches it: "Part 2, section “Softmax”, and the glossary's *softmax*"."""
        term = self.glossary.replace("-", " ")
        glossary = f", and the glossary's *{term}*" if self.glossary else ""
        return f"Part {self.part}, section “{self.section}”{glossary}"

    @property
    def hints(self) -> tuple[str, str, str]:
        """The hint ladder, one step at a time: the concept; what the course says where the failure message
        sent the learner (the glossary's entry, else the opening of the section), which that message only
        names; a skeleton."""
        return (self.concept, self.course_says(), self.skeleton)

    def course_says(self) -> str:
        """The course's own words on it: the glossary's entry for ``glossary``, else the opening of the
        section; where neither can be read, where to read them."""
        said = _glossary().get(self.glossary) if self.glossary else None
        if said:
            return f"The glossary says: {said}"
        said = _section_opening(self.part, self.section)
        if said:
            return f"Part {self.part}, section “{self.section}”, says: {said}"
        return f"Read again {self.where()}."


MISCONCEPTIONS: dict[str, Misconception] = {}  # id → misconception: every one the checks can recognise
OPENING = 400  # characters at most of a section's opening in a hint


@functools.cache
def _glossary() -> dict[str, str]:
    """GLOSSARY.md's entries by anchor: each entry's paragraph, on one line, its anchors left out (empty when
    the file cannot be read)."""
    import course

    try:
        text = (course.ROOT / "GLOSSARY.md").read_text(encoding="utf-8")
    except OSError:
        return {}
    entries = {}
    for paragraph in text.split("\n\n"):
        entry = " ".join(re.sub(r'<a id="[^"]*"></a>', "", paragraph).split())
        for anchor in re.findall(r'<a id="([^"]+)"></a>', paragraph):
            entries[anchor] = entry
    return entries


@functools.cache
def _section_opening(part: int, section: str) -> str:
    """The first paragraph under the heading ``section`` of part ``part``'s notebook, on one line, cut after a
    sentence to at most OPENING characters (empty when the notebook cannot be read)."""
    import json

    import course

    known = 0 < part <= len(course.PARTS)
    paths = [course.PARTS[part - 1].exercise, course.PARTS[part - 1].solution] if known else []
    for path in paths:
        try:
            cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        text = "\n\n".join("".join(c["source"]) for c in cells if c.get("cell_type") == "markdown")
        lines = text.splitlines()
        headings = (k for k, line in enumerate(lines) if line.startswith("#") and line.strip("# ") == section)
        heading = next(headings, None)
        if heading is None:
            continue
        body = "\n".join(lines[heading + 1 :]).strip()
        blocks = body.split("\n\n") if body and not body.startswith("#") else [""]
        paragraph = " ".join(blocks[0].split())
        if paragraph.endswith(":"):  # a sentence that announces what follows: leave it out, or show the first
            announced = paragraph.rfind(". ")
            items = re.split(r"\n\s*[-*] ", "\n" + blocks[1].strip()) if len(blocks) > 1 else [""]
            following = " ".join((items[1] if len(items) > 1 else items[0]).split())  # its first item
            paragraph = paragraph[: announced + 1] if announced > 0 else f"{paragraph} {following}".strip()
        if len(paragraph) <= OPENING:
            return paragraph
        cut = paragraph[:OPENING].rfind(". ")
        return paragraph[: cut + 1] if cut > 0 else paragraph[: OPENING - 1] + "…"
    return ""


def not_finite(part: int, section: str, glossary: str = "") -> Misconception:
    """Part ``part``'s misconception for an answer that holds NaN or ±inf (see ``Check.nonfinite_shows``)."""
    return Misconception(
        f"not-finite-part{part}",
        "NaN or inf taken for a number",
        part,
        section,
        "NaN (not a number) and inf are what 0/0, log(0), the mean of nothing, a placeholder float('nan') "
        "or a training that diverged give. NaN compares false with everything, so it is never a right "
        "answer: find where it first appears and compute the value the exercise asks for.",
        "import math\nassert math.isfinite(value), value  # before the check: where does NaN or inf appear?",
        glossary,
    )


class CheckFailed(AssertionError):
    """A check's verdict: the answer is not what was expected. Its message says what was expected and what was
    given (and ``misconception``, when the judge recognised which belief the answer shows); IPython shows only
    that message, not the judge's traceback."""

    def __init__(self, message: str = "", misconception: Misconception | None = None):
        super().__init__(message)
        self.misconception = misconception

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[0;31mCheckFailed\x1b[0m: {self}"]


@dataclass
class Inputs:
    """What a check's answers are computed from: ``sent`` to the kernel, ``kept`` by the judge alone."""

    sent: dict = field(default_factory=dict)
    kept: dict = field(default_factory=dict)

    def all(self) -> dict:
        return {**self.sent, **self.kept}


@dataclass(frozen=True)
class Verdict:
    grade_id: str
    passed: bool
    message: str  # what was tested (passed) or what went wrong (failed), the misconception named
    misconception: str = ""  # the id of the misconception the judge recognised in a failed answer, if any

    def line(self) -> str:
        return f"{TICK} {self.message}" if self.passed else self.message


Judge = Callable[[dict, dict], str]
Ask = Callable[[dict, dict], dict]


@dataclass
class Check:
    """One graded check of a part. ``grade_id`` is its nbgrader cell's id; ``after`` the answer cell it
    follows (at grading the request is sent right after that cell ran)."""

    grade_id: str
    after: str
    judge: Judge
    ask: Ask
    given: Callable[[dict], Inputs]
    hidden: Callable[[torch.Generator], Inputs]
    rerun: bool = False  # at grading, the answer cell runs again with the hidden inputs bound (bind's result)
    bind: Callable[[dict, dict], dict] | None = None  # kernel side: names to bind for the re-run
    doc: str = ""
    # the answers (top-level names) that may hold NaN or ±inf, for a judge that diagnoses them itself; every
    # other answer that holds one fails before its judge runs, showing ``nonfinite_shows`` (when given)
    nonfinite: tuple[str, ...] = ()
    nonfinite_shows: Misconception | None = None

    def __call__(self) -> None:
        """The self-check in the notebook: judge the notebook's own values; print the ✓ line or fail."""
        caller = inspect.currentframe().f_back
        self_check(self, caller.f_globals)

    def verdict(self, inputs: Inputs, answers: dict, hidden: bool) -> Verdict:
        """The judge's verdict on answers (already decoded from data). Never raises: a judge that trips over
        an unexpected answer fails it with the reason (the grader fails closed). An answer that holds NaN or
        ±inf (unless ``nonfinite`` names it) fails before the judge runs: a comparison such as "fail when
        |got − want| ≥ tol" is false for NaN, so no judge ever sees one."""
        token = _hidden.set(hidden)
        try:
            if isinstance(answers.get("$cell"), Raised):
                raised = answers["$cell"].message
                raise CheckFailed(
                    f"your answer cell raised {raised}"
                    + (" when it ran again on the grader's inputs" if hidden else "")
                    + (
                        " — replace raise NotImplementedError() with your answer"
                        if "NotImplementedError" in raised
                        else ""
                    )
                )
            if isinstance(answers.get("$problem"), Raised):  # an answer the check could not even ask about
                raise CheckFailed(answers["$problem"].message)
            refuse_nonfinite(answers, self.nonfinite, self.nonfinite_shows)
            tested = self.judge(inputs.all(), answers)
            return Verdict(
                self.grade_id, True, tested + (" (on the grader's hidden inputs)" if hidden else "")
            )
        except CheckFailed as failure:
            found = failure.misconception
            if found is None:
                return Verdict(self.grade_id, False, _short(str(failure)))
            return Verdict(self.grade_id, False, named(_short(str(failure)), found), found.id)
        except Exception as error:  # a judge's own bug, or an answer of a shape nobody foresaw: no points
            return Verdict(
                self.grade_id,
                False,
                _short(f"the check could not judge this answer: {type(error).__name__}: {error}"),
            )
        finally:
            _hidden.reset(token)


def _short(message: str) -> str:
    """A message of at most MAX_MESSAGE characters (a judge may quote a long answer)."""
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 1] + "…"


def refuse_nonfinite(
    answers: dict, allowed: Sequence[str] = (), misconception: Misconception | None = None
) -> None:
    """Fail, naming where (a failure that shows ``misconception``, when given), if an answer (but those
    ``allowed``) holds NaN or ±inf: a float, or an element of a floating-point tensor, anywhere in its lists
    and dicts."""
    for name, x in answers.items():
        if name in allowed or str(name).startswith("$"):
            continue
        found = _nonfinite(x, str(name), 0)
        if found is not None:
            where, what = found
            raise CheckFailed(
                f"{where}: holds {what} — the check expected finite numbers, got {what} (a training that "
                "diverged, a division by zero, or a placeholder left in?)",
                misconception,
            )


def _nonfinite(x: object, where: str, depth: int) -> tuple[str, str] | None:
    if isinstance(x, float):
        return None if math.isfinite(x) else (where, "NaN" if math.isnan(x) else "inf" if x > 0 else "-inf")
    if isinstance(x, torch.Tensor):
        if not (x.is_floating_point() or x.is_complex()) or bool(torch.isfinite(x).all()):
            return None
        return where, "NaN" if bool(torch.isnan(x).any()) else "inf"
    if depth > 2 * wire.MAX_DEPTH:  # deeper than any decoded answer
        return None
    if isinstance(x, dict):
        items = ((f"{where}[{k!r}]", v) for k, v in x.items())
    elif isinstance(x, list | tuple):
        items = ((f"{where}[{k}]", v) for k, v in enumerate(x))
    else:
        return None
    return next((found for w, v in items if (found := _nonfinite(v, w, depth + 1)) is not None), None)


def self_check(check: Check, namespace: dict) -> None:
    """The notebook's own check: the learner's values on the notebook's inputs, collected, sent through the
    wire (as at grading) and judged right here; the ✓ line, or the failure (which the hint ladder keeps)."""
    with unchanged_random_state():
        inputs = check.given(namespace)
        answers = as_answers(attempt(check.ask, namespace, inputs.sent))
        try:
            answers = wire.roundtrip(answers)
        except wire.WireError as error:
            answers = {"$problem": Raised(f"your answers cannot be judged: {error}")}
    verdict = check.verdict(Inputs(wire.roundtrip(inputs.sent), inputs.kept), answers, hidden=False)
    LADDER.latest[check.grade_id] = verdict.passed
    if not verdict.passed:
        LADDER.last = (check.grade_id, verdict.misconception)
        LADDER.failures[check.grade_id] = LADDER.failures.get(check.grade_id, 0) + 1
        raise CheckFailed(verdict.message, MISCONCEPTIONS.get(verdict.misconception))
    if LADDER.last and LADDER.last[0] == check.grade_id:
        LADDER.last = None
    print(verdict.line())


def as_answers(answers: object) -> dict:
    """Answers, or what went wrong while the check collected them (the learner's objects behaving
    unexpectedly): a failure with that reason, never a crash of the check."""
    if isinstance(answers, Raised):
        return {"$problem": Raised(f"the check could not collect your answers: {answers.message}")}
    if not isinstance(answers, dict):
        return {
            "$problem": Raised(f"the check could not collect your answers (got {type(answers).__name__})")
        }
    return answers


@dataclass
class Ladder:
    """The learner's hints in this kernel: the last failed self-check (its grade_id and the id of the
    misconception it recognised, "" for none; None once that check passed) and how many hints of each (check,
    misconception) were given (:mod:`checks.kernel` gives them); and what the self-checks did: how many times
    each failed, and whether each one's latest run passed."""

    last: tuple[str, str] | None = None
    taken: dict[tuple[str, str], int] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)  # grade_id → its failed self-checks
    latest: dict[str, bool] = field(default_factory=dict)  # grade_id → whether its latest self-check passed


LADDER = Ladder()


def named(message: str, misconception: Misconception) -> str:
    """A failure's message with the misconception it shows, and where to read about it."""
    return (
        f"{message} — this looks like {misconception.name}: read again {misconception.where()} "
        "(check.hint() gives a hint)"
    )


# ------------------------------------------------------------------------------------------ for judges
def hidden() -> bool:
    """True while a judge runs at grading, on hidden inputs: messages then show no expected value."""
    return _hidden.get()


def seen(text: str) -> str:
    """``text`` in the notebook; nothing at grading (a value computed on hidden inputs is never shown)."""
    return "" if hidden() else text


def fail(message: str, misconception: Misconception | None = None) -> None:
    raise CheckFailed(message, misconception)


def need(condition: object, message: str, misconception: Misconception | None = None) -> None:
    """Fail with ``message`` unless ``condition`` (a failure that shows ``misconception``, when given)."""
    if not condition:
        raise CheckFailed(message, misconception)


def value(answers: dict, name: str, label: str | None = None) -> object:
    """The answer called ``name``; fails with what the kernel raised while computing it."""
    got = answers.get(name, Raised("no answer came back for it"))
    if isinstance(got, Raised):
        raise CheckFailed(f"{label or name}: {got.message}")
    return got


def kind(x: object) -> str:
    """The type name a learner recognises: Tensor, float, list, function, ndarray …"""
    if isinstance(x, Opaque):
        return x.kind
    if isinstance(x, torch.Tensor):
        return "Tensor"
    return type(x).__name__


def tensor(answers: dict, name: str, label: str | None = None) -> torch.Tensor:
    got = value(answers, name, label)
    need(isinstance(got, torch.Tensor), f"{label or name}: expected a tensor, got {kind(got)}")
    return got


Like = Sequence[tuple[object, Misconception]]  # what a typical wrong answer gives, and what it shows


def expect_shape(
    x: object,
    expected: tuple[int, ...],
    name: str,
    hint: str = "",
    misconception: Misconception | None = None,
    like: Like = (),
) -> None:
    """Fail, saying what was expected and what was given, unless ``x`` is a tensor of shape ``expected``. A
    wrong shape shows ``misconception``, or the one ``like`` pairs with that shape (a tuple).

    >>> expect_shape(torch.zeros(64, 10), (64, 10), "out")         # right: nothing happens
    >>> expect_shape(torch.zeros(64, 784), (64, 10), "out", hint="did you flatten the images?")
    Traceback (most recent call last):
    checks.core.CheckFailed: out: expected shape (64, 10), got (64, 784) — did you flatten the images?
    """
    if isinstance(x, Raised):
        raise CheckFailed(f"{name}: {x.message}")
    shape = (
        tuple(x.shape)
        if isinstance(x, torch.Tensor | np.ndarray)
        else x.shape
        if isinstance(x, Opaque)
        else None
    )
    if shape is None:
        raise CheckFailed(f"{name}: expected a tensor of shape {tuple(expected)}, got {kind(x)}")
    if shape != tuple(expected):
        shown = next((m for typical, m in like if tuple(typical) == shape), misconception)
        raise CheckFailed(
            f"{name}: expected shape {tuple(expected)}, got {shape}" + (f" — {hint}" if hint else ""), shown
        )


def expect_close(
    actual: object,
    expected: torch.Tensor,
    name: str,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    hint: str = "",
    like: Like = (),
    misconception: Misconception | None = None,
) -> None:
    """Compare on the CPU with a tolerance. In the notebook the message gives the largest difference, and both
    values when they are small (at most 10 numbers); at grading it gives neither (no hidden reference shown).
    Values that differ show the misconception of the first typical wrong value in ``like`` they are close
    to (else ``misconception``, when any difference shows the same one).

    >>> expect_close(torch.tensor([0.5, 0.5]), torch.tensor([0.5, 0.5 + 1e-7]), "ps")   # close enough
    >>> expect_close(torch.tensor([0.9, 0.1]), torch.tensor([0.5, 0.5]), "ps")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    checks.core.CheckFailed: ps: values differ from the expected ones: expected [0.5, 0.5], got [0.9, 0.1] ...
    """
    expected = torch.as_tensor(expected).detach().cpu()
    if not isinstance(actual, torch.Tensor):
        raise CheckFailed(f"{name}: expected a tensor, got {kind(actual)}")
    typical_shapes = [(tuple(torch.as_tensor(typical).shape), m) for typical, m in like]
    expect_shape(actual, tuple(expected.shape), name, hint, misconception, typical_shapes)
    expect_finite(actual, name)
    actual = actual.detach().cpu().to(expected.dtype)
    if not _finite(expected):  # a reference computed from the learner's own weights can overflow
        raise CheckFailed(f"{name}: the values to compare with are not finite numbers (NaN or inf)")
    if torch.allclose(actual, expected, atol=atol, rtol=rtol, equal_nan=False):
        return
    tolerance = f"tolerance {atol:g} + {rtol:g}×|expected|"
    if hidden():
        detail = f" on the grader's inputs ({tolerance})"
    else:
        worst = (actual - expected).abs().max().item()
        both = ""
        if expected.numel() <= 10:
            values = [[round(x, 4) for x in t.flatten().tolist()] for t in (expected.float(), actual.float())]
            both = f": expected {values[0]}, got {values[1]}"
        detail = f"{both} (largest difference {worst:.3g}, {tolerance})"
    shown = next(
        (m for typical, m in like if is_close(actual, torch.as_tensor(typical), atol, rtol)), misconception
    )
    raise CheckFailed(
        f"{name}: values differ from the expected ones{detail}" + (f" — {hint}" if hint else ""), shown
    )


def is_close(actual: object, expected: torch.Tensor, atol: float = 1e-5, rtol: float = 1e-4) -> bool:
    """Whether ``actual`` is a tensor of ``expected``'s shape and values, all finite (no message: for telling
    mistakes apart)."""
    expected = torch.as_tensor(expected)
    if not isinstance(actual, torch.Tensor) or tuple(actual.shape) != tuple(expected.shape):
        return False
    if not (_finite(actual) and _finite(expected)):  # before a cast, which could make NaN a number
        return False
    return torch.allclose(actual.detach().cpu().to(expected.dtype), expected.cpu(), atol=atol, rtol=rtol)


def _finite(x: torch.Tensor) -> bool:
    return not (x.is_floating_point() or x.is_complex()) or bool(torch.isfinite(x).all())


def expect_finite(x: torch.Tensor, name: str) -> None:
    """Fail unless every element of the tensor ``x`` is a finite number (no NaN, no ±inf)."""
    if not _finite(x):
        what = "NaN" if bool(torch.isnan(x).any()) else "inf"
        raise CheckFailed(f"{name}: holds {what} — expected finite numbers")


def close(actual: object, expected: float, tol: float) -> bool:
    """Whether the number ``actual`` is within ``tol`` of ``expected``: False for anything but a finite int or
    float (so NaN, ±inf and what is not a number are never close, as "|a − b| ≥ tol" would let NaN be)."""
    if isinstance(actual, bool) or not isinstance(actual, int | float):
        return False
    try:
        return math.isfinite(actual) and math.isfinite(expected) and abs(actual - expected) < tol
    except OverflowError:  # an int too large for a float
        return False


def number(answers: dict, name: str, label: str | None = None) -> float:
    """The answer ``name`` as a finite Python number (a float or an int); fails with what was given otherwise
    (a bool, a tensor, NaN, ±inf, an int too large for a float)."""
    got = value(answers, name, label)
    ok = not isinstance(got, bool) and isinstance(got, int | float)
    need(ok, f"{label or name}: expected a Python float, got {kind(got)}")
    try:
        finite = math.isfinite(got)
    except OverflowError:
        finite = False
    shown = got if isinstance(got, float) else "an int too large for a float"
    need(finite, f"{label or name}: expected a finite number, got {shown}")
    return got


def state(
    answers: dict, name: str, keys: list[str] | dict[str, tuple[int, ...]], label: str
) -> dict[str, torch.Tensor]:
    """A state_dict the kernel sent: a dict of tensors with exactly ``keys``; when ``keys`` maps each to its
    shape, of those shapes too (checked here, before anything is computed from them)."""
    got = value(answers, name, label)
    need(isinstance(got, dict), f"{label}: expected a state_dict, got {kind(got)}")
    names = ", ".join(sorted(got)[:20]) + (", …" if len(got) > 20 else "")
    need(
        sorted(got) == sorted(keys),
        f"{label}: expected the parameters {', '.join(keys)}, got {names or 'none'}",
    )
    need(all(isinstance(t, torch.Tensor) for t in got.values()), f"{label}: its values should be tensors")
    if isinstance(keys, dict):
        for key, shape in keys.items():
            expect_shape(got[key], shape, f"{label}: {key}")
    return got


# ------------------------------------------------------------------------------------------ for asks
@contextlib.contextmanager
def unchanged_random_state() -> Iterator[None]:
    """Python's, NumPy's and PyTorch's (CPU and CUDA) random generators as they were: a check, or a grader's
    request, never changes which random numbers the notebook's next cells draw."""
    python, numpy_state = random.getstate(), np.random.get_state()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            random.setstate(python)
            np.random.set_state(numpy_state)


def attempt(function: Callable, *args, **kwargs) -> object:
    """``function(*args, **kwargs)``, or :class:`Raised` with what it raised (the learner's code may fail)."""
    try:
        return function(*args, **kwargs)
    except Exception as error:
        return Raised(described(error))


def described(error: BaseException) -> str:
    """An exception in one line: "ValueError: bad value", or its type's name when it has no message."""
    text = str(error).strip()
    return f"{type(error).__name__}: {text}"[:2000] if text else type(error).__name__


def lookup(namespace: dict, name: str) -> object:
    """A name of the notebook, or :class:`Raised` when it is not defined."""
    if name in namespace:
        return namespace[name]
    return Raised(f"NameError: name {name!r} is not defined — run the cells above first")


def pick(namespace: dict, *names: str) -> dict:
    """Names of the notebook, for ``given``: missing ones are a failure that says to run the cells above."""
    missing = [name for name in names if name not in namespace]
    if missing:
        raise CheckFailed(
            f"{', '.join(missing)} not defined: run the notebook's cells from the top, in order"
        )
    return {name: namespace[name] for name in names}


def device_of(model: object) -> torch.device:
    """Where a model's parameters live (CPU when it has none)."""
    try:
        return next(model.parameters()).device
    except (AttributeError, StopIteration, TypeError):
        return torch.device("cpu")


def notebook_device(namespace: dict) -> torch.device:
    """The notebook's ``device`` (where its training loops move each batch), for the check's own small models;
    the CPU when the notebook has none."""
    device = namespace.get("device")
    try:
        return torch.device(device) if isinstance(device, torch.device | str) else torch.device("cpu")
    except (RuntimeError, TypeError):
        return torch.device("cpu")


def cpu(x: object) -> object:
    """Tensors, in a result to send back, detached and on the CPU."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu()
    if isinstance(x, list | tuple):
        return [cpu(v) for v in x]
    if isinstance(x, dict):
        return {k: cpu(v) for k, v in x.items()}
    return x


def state_of(module: object) -> object:
    """A module's state_dict as plain CPU tensors, or what went wrong."""
    if isinstance(module, Raised):
        return module
    try:
        return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
    except Exception as error:
        return Raised(described(error))


# ------------------------------------------------------------------------ answer cells that stopped
# What a check asks first of an answer cell: did its latest run stop with an error (kernel side), and if so,
# fail with "fix it first" before any diagnosis (judge side). Parts 1, 3 and 8 use them.
def parse_cell(source: str) -> ast.Module | None:
    """A cell's source as Python, IPython's syntax (``%time``, ``files = !ls``) turned into the calls IPython
    runs (its own transformer: text to text, nothing run), and the Python under a cell magic (``%%time``) as
    it is; None if it is not Python."""
    from IPython.core.inputtransformer2 import TransformerManager

    # a source nested too deep for the parser raises MemoryError or RecursionError, not SyntaxError
    with contextlib.suppress(SyntaxError, ValueError, MemoryError, RecursionError):
        return ast.parse(source)  # plain Python: its own line numbers
    if source.lstrip().startswith("%%"):
        source = "#\n" + source.lstrip().partition("\n")[2]
    try:
        return ast.parse(TransformerManager().transform_cell(source))
    except Exception:  # SyntaxError, RecursionError, whatever IPython's transformer makes of a broken cell
        return None


def assigns_name(source: object, name: str) -> bool:
    """Whether the cell ``source`` assigns ``name`` (anywhere in it)."""
    tree = parse_cell(source) if isinstance(source, str) else None
    return tree is not None and any(
        isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Store)
        for node in ast.walk(tree)
    )


def _stores(code: object, name: str) -> bool:
    """Whether the compiled module-level code ``code`` assigns ``name``."""
    try:
        return any(
            i.opname in ("STORE_NAME", "STORE_GLOBAL") and i.argval == name
            for i in dis.get_instructions(code)
        )
    except Exception:
        return False


def stopped_with(ns: dict, assigns: str, model: object = None, unless: Sequence[str] = ()) -> str | None:
    """Kernel side: the error the latest run of the answer cell (the cell that assigns ``assigns`` and none of
    ``unless``, names given to a later cell that assigns ``assigns`` too) stopped with, in one line; None when
    it did not stop with one. IPython keeps the last error a cell raised as
    ``sys.last_value`` when it shows its traceback. That error is of the latest run of the answer cell when
    IPython ran it in a cell that assigns ``assigns`` and no cell that assigns it ran since (its execution
    counts); for code run otherwise (``exec``, with no count), when that code assigns ``assigns`` and either
    the error was raised inside ``model``, the network the answers come from (a later run would make another),
    or the code that ran it is still running (exec's caller, or its caller's: the check's own collection), so
    that this check is part of the same run."""
    error = getattr(sys, "last_value", None)  # IPython sets it on every Python (and last_exc from 3.12 on)
    if not isinstance(error, BaseException):
        return None

    def answer(source: object) -> bool:
        return assigns_name(source, assigns) and not any(assigns_name(source, name) for name in unless)

    frames, tb = [], error.__traceback__
    while tb is not None and len(frames) < 1000:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    cell = next((f for f in frames if f.f_globals is ns and f.f_code.co_name == "<module>"), None)
    if cell is None:
        return None
    run = next((f.f_locals.get("result") for f in frames if f.f_code.co_name == "run_code"), None)
    count = getattr(run, "execution_count", None)
    if isinstance(count, int) and not isinstance(count, bool):  # IPython ran it: its cell, its count
        if not answer(getattr(getattr(run, "info", None), "raw_cell", None)):
            return None  # another cell's error
        history = ns.get("In")
        later = history[count + 1 :] if isinstance(history, list) else []
        if any(answer(source) for source in later):
            return None  # the answer cell ran again since
    else:
        if not _stores(cell.f_code, assigns) or any(_stores(cell.f_code, name) for name in unless):  # exec
            return None
        modules = {id(m) for m in model.modules()} if isinstance(model, nn.Module) else set()
        inside = any(id(f.f_locals.get("self")) in modules for f in frames)
        if not inside and not _still_running(cell):
            return None
    lines = described(error).splitlines()
    return lines[0][:300] if lines else type(error).__name__


def _still_running(frame: object) -> bool:
    """Whether the code that ran ``frame`` (its caller, or its caller's caller) is still running: on the
    stack of the code that asks now."""
    callers, caller = [], getattr(frame, "f_back", None)
    while caller is not None and len(callers) < 2:
        callers.append(caller)
        caller = caller.f_back
    running = sys._getframe(1)
    while running is not None:
        if any(running is c for c in callers):
            return True
        running = running.f_back
    return False


def fail_if_stopped(a: dict, recognised: Sequence[tuple[str, Misconception]] = ()) -> None:
    """Judge side, before any other diagnosis: fail when the answer cell stopped with an error (``stopped``:
    its line), naming the misconception of the first pattern of ``recognised`` the error matches."""
    stopped = a.get("stopped")
    if stopped is None:
        return
    line = stopped if isinstance(stopped, str) else kind(stopped)
    shown = next((m for pattern, m in recognised if re.search(pattern, line)), None)
    fail(
        f"your answer cell stopped with an error: fix it first — {line[:300]}"
        + (
            " (replace raise NotImplementedError() with your answer)" if "NotImplementedError" in line else ""
        ),
        shown,
    )
