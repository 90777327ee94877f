"""The trusted side of the checks (checks/): judges' messages, answers as data only, verdicts written by the
grader.

The checks themselves are tried on every registered wrong and right answer inside nbval's execution of the
solutions (harness.py), in the notebook and as the grader would judge them; these are the pieces underneath.
"""

from __future__ import annotations

import base64
import json
import os
import pickle
from itertools import pairwise

import nbformat
import pytest
import torch
from nbformat.v4 import new_code_cell

import checks
import course
from checks import wire
from checks.core import Check, CheckFailed, Inputs, close, expect_close, expect_shape, is_close, number
from checks.wire import Opaque, Raised
from grader.execution import _create
from grader.verdicts import put_back, seed, verdict_output


def test_expect_shape_and_expect_close_say_what_was_expected():
    with pytest.raises(
        CheckFailed, match=r"out: expected shape \(64, 10\), got \(64, 784\) — did you flatten"
    ):
        expect_shape(torch.zeros(64, 784), (64, 10), "out", hint="did you flatten the images?")
    with pytest.raises(CheckFailed, match="expected a tensor of shape"):
        expect_shape([1, 2], (2,), "x")
    with pytest.raises(
        CheckFailed, match=r"expected \[1.0, 2.0\], got \[1.0, 2.5\] \(largest difference 0\.5"
    ):
        expect_close(torch.tensor([1.0, 2.5]), torch.tensor([1.0, 2.0]), "x")
    expect_close(torch.tensor([1.0, 2.0 + 1e-7]), torch.tensor([1.0, 2.0]), "x")


def test_no_nan_or_inf_passes_a_comparison():
    """expect_close, is_close and close fail on NaN and ±inf, in the answer or in the reference: inf equals
    inf for torch.allclose, and "fail when |got − want| ≥ tol" is false for NaN."""
    inf, nan = float("inf"), float("nan")
    with pytest.raises(CheckFailed, match="x: holds inf — expected finite numbers"):
        expect_close(torch.tensor([1.0, inf]), torch.tensor([1.0, inf]), "x")
    with pytest.raises(CheckFailed, match="x: holds NaN"):
        expect_close(torch.tensor([nan]), torch.tensor([1.0]), "x")
    with pytest.raises(CheckFailed, match="not finite"):
        expect_close(torch.tensor([1.0]), torch.tensor([nan]), "x")
    assert not is_close(torch.tensor([inf]), torch.tensor([inf])) and is_close(torch.ones(2), torch.ones(2))
    assert not any(close(x, 1.0, 0.5) for x in (nan, inf, -inf, 10**400, True, "1", torch.tensor(1.0)))
    assert close(1.2, 1.0, 0.5) and close(1, 1.0, 0.5) and not close(1.0, nan, 0.5)
    with pytest.raises(CheckFailed, match="expected a finite number"):
        number({"x": 10**400}, "x")
    with pytest.raises(CheckFailed, match="expected a Python float, got bool"):
        number({"x": True}, "x")


def test_an_answer_that_holds_nan_or_inf_fails_before_its_judge_runs_and_says_where():
    judged = []
    check = Check(
        "test_x",
        after="x",
        judge=lambda i, a: judged.append(a) or "judged",
        ask=lambda ns, sent: {},
        given=lambda ns: Inputs(),
        hidden=lambda g: Inputs(),
    )
    nested = {"history": {"valid_loss": [0.5, float("nan")]}, "y": torch.ones(2)}
    verdict = check.verdict(Inputs(), nested, hidden=True)
    assert not verdict.passed and verdict.message.startswith("history['valid_loss'][1]: holds NaN"), verdict
    for answers, what in (
        ({"y": torch.tensor([1.0, float("-inf")])}, "y: holds inf"),
        ({"pair": [1.0, float("inf")]}, "pair[1]: holds inf"),
        ({"y": torch.tensor([float("nan")], dtype=torch.float64)}, "y: holds NaN"),
    ):
        assert check.verdict(Inputs(), answers, hidden=False).message.startswith(what)
    assert not judged
    ok = {"n": 3, "ints": torch.tensor([1, 2]), "s": "nan", "y": torch.ones(2), "f": [0.5]}
    assert check.verdict(Inputs(), ok, hidden=True).passed and len(judged) == 1
    allowed = Check(**{**vars(check), "nonfinite": ("big",)})  # an answer whose judge diagnoses NaN itself
    assert allowed.verdict(Inputs(), {"big": torch.tensor([float("nan")])}, hidden=True).passed
    from checks import part5

    shown = part5.batch_accuracy.verdict(Inputs(), {"batch_accuracy": float("nan")}, hidden=True)
    assert shown.misconception == "not-finite-part5" and "NaN or inf taken for a number" in shown.message


def test_the_wire_refuses_tensors_too_large_or_of_too_many_dimensions_before_making_them():
    from safetensors.torch import save

    def payload(tensors: dict) -> dict:
        return {"json": json.dumps({"$tensor": "0"}), "tensors": base64.b64encode(save(tensors)).decode()}

    assert torch.equal(wire.decode(payload({"0": torch.ones(3, 2)})), torch.ones(3, 2))
    with pytest.raises(wire.WireError, match="too large"):
        wire.decode(payload({"0": torch.zeros((1,) * (wire.MAX_DIMS + 1))}))
    half = wire.MAX_ELEMENTS // 2 + 1  # bytes each: 16 MiB in all, under MAX_BYTES
    with pytest.raises(wire.WireError, match="numbers"):
        wire.decode(payload({k: torch.zeros(half, dtype=torch.bool) for k in ("0", "1")}))
    with pytest.raises(wire.WireError, match="integer too large"):
        wire.decode({"json": json.dumps({"$dict": [["n", 2**64]]}), "tensors": ""})
    assert wire.decode({"json": json.dumps([2**63, -(2**63)]), "tensors": ""}) == [2**63, -(2**63)]


def test_the_wire_imports_nothing_of_the_judges():
    """checks.wire defines the data that crosses (Raised, Opaque): it imports neither checks.core nor
    checks.kernel, which import it."""
    import subprocess
    import sys

    code = "import sys, checks.wire; print(sorted(m for m in sys.modules if m.startswith('checks')))"
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "['checks', 'checks.wire']", found.stdout + found.stderr


def _judge(inputs: dict, answers: dict) -> str:
    expect_close(answers["y"], inputs["x"] * 2, "y")
    return "y = 2x"


DOUBLE = Check(
    "test_double",
    after="double",
    judge=_judge,
    ask=lambda ns, sent: {"y": ns["y"]},
    given=lambda ns: Inputs({"x": ns["x"]}),
    hidden=lambda g: Inputs({"x": torch.randn(3, generator=g)}),
)


def test_at_grading_a_judge_shows_no_expected_value_and_says_what_it_tested():
    inputs = Inputs({"x": torch.tensor([0.1234, 0.5678, 0.9])})
    wrong = DOUBLE.verdict(inputs, {"y": torch.zeros(3)}, hidden=True)
    assert not wrong.passed and "on the grader's inputs" in wrong.message
    assert "0.2468" not in wrong.message and "1.1356" not in wrong.message
    in_the_notebook = DOUBLE.verdict(inputs, {"y": torch.zeros(3)}, hidden=False)
    assert "expected [0.2468, 1.1356, 1.8]" in in_the_notebook.message
    right = DOUBLE.verdict(inputs, {"y": inputs.sent["x"] * 2}, hidden=True)
    assert right.passed and right.message == "y = 2x (on the grader's hidden inputs)"


def test_a_verdict_never_raises_and_an_unjudgeable_answer_earns_nothing():
    inputs = Inputs({"x": torch.ones(3)})
    assert not DOUBLE.verdict(inputs, {}, hidden=True).passed  # the judge's KeyError: no points, and why
    raised = DOUBLE.verdict(inputs, {"$cell": Raised("NotImplementedError")}, hidden=True)
    assert "replace raise NotImplementedError() with your answer" in raised.message and not raised.passed
    assert not DOUBLE.verdict(inputs, {"y": Opaque("function")}, hidden=True).passed


class Liar(torch.Tensor):
    """A tensor that says it equals anything, and is close to anything."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in (torch.allclose, torch.equal, torch.Tensor.__eq__, torch.isclose):
            return True
        return super().__torch_function__(func, types, args, kwargs or {})


def test_answers_travel_as_data_only():
    liar = torch.zeros(2).as_subclass(Liar)
    sent = {"t": liar, "n": 3, "f": 0.5, "nan": float("nan"), "s": "x", "l": [1, (2, 3)], "d": {"k": None}}
    sent.update({"fn": len, "arr": __import__("numpy").zeros((2, 3)), "err": Raised("ValueError: no")})
    got = wire.decode(json.loads(json.dumps(wire.encode(sent))))
    assert type(got["t"]) is torch.Tensor and torch.equal(
        got["t"], torch.zeros(2)
    )  # a plain tensor: it lies no more
    assert not torch.allclose(got["t"], torch.ones(2))
    assert got["n"] == 3 and got["f"] == 0.5 and got["nan"] != got["nan"] and got["l"] == [1, [2, 3]]
    assert got["fn"] == Opaque("builtin_function_or_method") and got["arr"] == Opaque("ndarray", (2, 3))
    assert got["err"] == Raised("ValueError: no") and got["d"] == {"k": None}


@pytest.mark.parametrize(
    "payload",
    [
        "not a dict",
        {"json": json.dumps({"$tensor": "0"}), "tensors": ""},  # a reference to no tensor
        {"json": json.dumps({"$python": "os.system('x')"}), "tensors": ""},  # a kind the grader does not know
        {"json": json.dumps([{"$dict": [[1, 2]]}]), "tensors": ""},
        {"json": "[1, 2", "tensors": ""},
        {"json": "[]", "tensors": base64.b64encode(pickle.dumps({"a": torch.zeros(1)})).decode()},  # a pickle
        {"json": "[]", "tensors": "!!! not base64"},
        {"json": "[" * 100 + "]" * 100, "tensors": ""},
        {"json": " " * (wire.MAX_JSON + 1), "tensors": ""},
    ],
)
def test_what_is_not_an_answer_is_refused_unread(payload):
    with pytest.raises(wire.WireError):
        wire.decode(payload)


def test_a_request_is_written_new_never_through_a_planted_link(tmp_path):
    folder = tmp_path / "requests"
    folder.mkdir()
    (tmp_path / "victim").write_text("intact")
    os.symlink(tmp_path / "victim", folder / "planted.json")
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(FileExistsError):
            _create(fd, "planted.json", b"{}")
        structure, blob = wire.request_parts({"x": torch.ones(2), "k": 3})
        meta = {"part": "01_tensors", "grade_id": "g", "source": None, "sent": structure}
        _create(fd, "new.json", json.dumps(meta).encode())
        _create(fd, "new.safetensors", blob)
    finally:
        os.close(fd)
    assert (tmp_path / "victim").read_text() == "intact"
    meta, sent = wire.read_request(folder / "new")
    assert meta == {"part": "01_tensors", "grade_id": "g", "source": None}
    assert sent["k"] == 3 and torch.equal(sent["x"], torch.ones(2))


def test_hidden_inputs_depend_on_the_secret_and_the_check():
    assert seed("a", "01_tensors", "test_x") == seed("a", "01_tensors", "test_x")
    assert (
        len(
            {
                seed("a", "01_tensors", "test_x"),
                seed("b", "01_tensors", "test_x"),
                seed("a", "01_tensors", "test_y"),
            }
        )
        == 3
    )


def test_every_check_of_every_part_has_hidden_inputs_that_the_judge_can_use():
    for part in course.PART_NAMES:
        for check in checks.of_part(part):
            assert check.grade_id.startswith("test_") and check.after, (part, check.grade_id)
            assert callable(check.hidden) and callable(check.given) and callable(check.ask), (
                part,
                check.grade_id,
            )


def test_verdicts_are_the_only_outputs_of_check_cells_and_deleted_checks_come_back(tmp_path):
    source = nbformat.read(course.PARTS[0].exercise, as_version=4)
    nb = nbformat.read(course.PARTS[0].solution, as_version=4)
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "test_two_layer"]
    kept = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_neuron_sum")
    kept.outputs = [nbformat.v4.new_output("stream", text="✓ forged by the learner\n")]
    part_checks = checks.of_part(course.PARTS[0].name)
    from checks.core import Verdict

    verdicts = {
        c.grade_id: Verdict(c.grade_id, c.grade_id != "test_neuron_mm", "tested") for c in part_checks
    }
    verdicts["test_numpy_bridge"] = Verdict(
        "test_numpy_bridge", False, "not run: the kernel died in an earlier cell"
    )
    put_back(nb, verdicts, part_checks, source)
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]
    assert ids.index("test_two_layer") == ids.index("two_layer") + 1
    cells = {i: c for i, c in zip(ids, nb.cells, strict=True)}
    assert cells["test_neuron_sum"].outputs == verdict_output(verdicts["test_neuron_sum"])
    assert cells["test_neuron_sum"].outputs[0].text == "✓ tested\n"
    assert cells["test_neuron_mm"].outputs[0].ename == "CheckFailed"
    assert cells["test_numpy_bridge"].outputs[0].ename == "CheckNotRun"
    assert (
        "put it back" in cells["test_two_layer"].source
        and cells["test_two_layer"].outputs[0].text == "✓ tested\n"
    )
    assert not [c for c in nb.cells if c.cell_type == "code" and "forged" in str(c.get("outputs"))]


def test_a_request_runs_the_answer_cell_again_and_leaves_the_notebook_as_it_was():
    from checks import kernel, part1

    namespace = {"torch": torch, "activation": torch.sigmoid, "y": "the learner's own y"}
    source = "y = activation(torch.sum(features * weights) + bias)"
    verdict = kernel.simulate(part1.neuron_sum, namespace, source, seed=3)
    assert verdict.passed, verdict.message
    assert namespace["y"] == "the learner's own y" and "features" not in namespace
    wrong = kernel.simulate(part1.neuron_sum, namespace, "y = torch.sum(features * weights) + bias", seed=3)
    assert not wrong.passed and "activation" in wrong.message
    assert not kernel.simulate(part1.neuron_sum, namespace, new_code_cell("raise ValueError").source).passed


def test_hints_are_counted_from_the_handed_in_notebook_and_charged_as_nbgrader_partial_credit():
    """hints_taken counts each distinct (check, misconception, level) record check.hint() left in the outputs,
    of this part's checks only; put_back charges them on a passed check as the partial credit nbgrader's own
    determine_grade reads (never below 0, nothing on a failed check)."""
    from nbgrader.utils import determine_grade

    from checks import HINT_METADATA
    from checks.core import Verdict
    from grader.verdicts import hints_taken

    def hint_output(**record):
        return nbformat.v4.new_output(
            "display_data", data={"text/plain": "a hint"}, metadata={HINT_METADATA: record}
        )

    nb = nbformat.read(course.PARTS[0].solution, as_version=4)
    mine = {"check": "test_neuron_sum", "misconception": "bias-added-to-every-input"}
    nb.cells[-1].outputs = [
        hint_output(**mine, level=1),
        hint_output(**mine, level=2),
        hint_output(**mine, level=2),  # the same hint shown again: counted once
        hint_output(check="test_softmax", misconception="softmax-wrong-dim", level=1),  # another part's
        hint_output(**mine, level=7),  # not a level of the ladder
        nbformat.v4.new_output("display_data", data={}, metadata={HINT_METADATA: "forged"}),
    ]
    nb.cells[-1].cell_type, nb.cells[-1].execution_count = "code", None
    assert hints_taken(nbformat.writes(nb).encode(), course.PARTS[0].name) == {"test_neuron_sum": 2}
    assert hints_taken(b"not a notebook", course.PARTS[0].name) == {}

    source = nbformat.read(course.PARTS[0].exercise, as_version=4)
    part_checks = checks.of_part(course.PARTS[0].name)
    for cost, left in ((0.4, 0.2), (1.0, 0.0), (0.0, 1.0)):
        verdicts = {c.grade_id: Verdict(c.grade_id, True, "tested") for c in part_checks}
        verdicts["test_two_layer"] = Verdict("test_two_layer", False, "values differ")
        graded = nbformat.read(course.PARTS[0].solution, as_version=4)
        put_back(graded, verdicts, part_checks, source, {"test_neuron_sum": 2, "test_two_layer": 1}, cost)
        cell = next(
            c for c in graded.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_neuron_sum"
        )
        assert determine_grade(cell) == (left, 1.0), (cost, cell.outputs)
        assert ("2 hints taken" in cell.outputs[0].text) == (cost > 0), cell.outputs
        failed = next(
            c for c in graded.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_two_layer"
        )
        assert determine_grade(failed)[0] == 0


def test_the_hint_ladder_adds_to_the_failure_and_after_a_pass_says_what_failed():
    """check.hint()'s ladder, in a kernel of its own: each of its three hints says what the failure's message
    did not; once the failed check passes, it says that no hint is needed and which checks failed before."""
    from checks import kernel, part1
    from checks.core import LADDER, MISCONCEPTIONS, Ladder, self_check

    saved = dict(vars(LADDER))
    vars(LADDER).update(vars(Ladder()))  # a kernel just started
    try:
        assert kernel.next_hint().text.startswith("No check has failed since this kernel started")
        torch.manual_seed(7)
        namespace = {"features": torch.randn(1, 5), "weights": torch.randn(1, 5), "bias": torch.randn(1, 1)}
        wrong = torch.sigmoid(torch.sum(namespace["features"] * namespace["weights"] + namespace["bias"]))
        namespace["y"] = wrong  # the bias inside the sum, a 0-d tensor
        for _ in range(2):
            with pytest.raises(CheckFailed) as failed:
                self_check(part1.neuron_sum, namespace)
        assert failed.value.misconception.id == "bias-added-to-every-input", failed.value
        hints = [kernel.next_hint() for _ in range(4)]
        ladder = MISCONCEPTIONS["bias-added-to-every-input"].hints
        assert [(h.level, h.text) for h in hints] == [*enumerate(ladder, 1), (3, ladder[2])]
        assert hints[1].text.startswith("The glossary says: **weight**, **bias** — the numbers a layer")
        assert not any(h.text in str(failed.value) for h in hints), (hints, failed.value)
        features, weights, bias = (namespace[name] for name in ("features", "weights", "bias"))
        namespace["y"] = torch.sigmoid(torch.sum(features * weights) + bias)
        self_check(part1.neuron_sum, namespace)
        said = kernel.next_hint()
        assert (said.level, said.text) == (
            0,
            "Your last check passed: no hint needed. Failed earlier in this kernel: "
            "test_neuron_sum (2 times, passed since).",
        )
        LADDER.failures["test_neuron_mm"], LADDER.latest["test_neuron_mm"] = 1, False
        assert "test_neuron_mm (1 time, not passed since) — run a check" in kernel.next_hint().text
    finally:
        vars(LADDER).clear()
        vars(LADDER).update(saved)


def test_per_learner_variants_differ_and_each_learner_is_judged_against_their_own_inputs(tmp_path):
    """With variants, a check's hidden inputs derive from HMAC(secret, part, check, learner): two learners get
    different ones (and the requests the grader sends them differ); a learner's answer, computed on their own
    inputs, passes their judge; the same numbers handed in by another learner fail that learner's."""
    from checks import kernel, part1, wire
    from checks.core import Inputs
    from grader.verdicts import prepare

    seeds = {who: seed("k", "01_tensors", "test_neuron_sum", who) for who in ("alice", "bob", "")}
    assert len(set(seeds.values())) == 3 and seeds["alice"] == seed(
        "k", "01_tensors", "test_neuron_sum", "alice"
    )
    check = part1.neuron_sum
    drawn = {who: check.hidden(torch.Generator().manual_seed(s)) for who, s in seeds.items()}
    assert not torch.equal(drawn["alice"].sent["features"], drawn["bob"].sent["features"])
    namespace = {"torch": torch, "activation": torch.sigmoid}
    answer_cell = "y = activation(torch.sum(features * weights) + bias)"
    sent = wire.roundtrip(drawn["alice"].sent)
    alices = wire.roundtrip(kernel.collect(check, namespace, sent, answer_cell))
    assert check.verdict(Inputs(sent, drawn["alice"].kept), alices, hidden=True).passed
    bobs_inputs = Inputs(wire.roundtrip(drawn["bob"].sent), drawn["bob"].kept)
    copied = check.verdict(bobs_inputs, alices, hidden=True)
    assert not copied.passed and "values differ" in copied.message, copied.message
    folders = {
        who: prepare("01_tensors", "k", tmp_path / "requests", True, who)[0] for who in ("alice", "bob")
    }
    assert folders["alice"] != folders["bob"]
    requests = {who: (folder / "test_neuron_sum.safetensors").read_bytes() for who, folder in folders.items()}
    assert requests["alice"] != requests["bob"]


# Answers of Part 2 whose failures quote what the learner's code gave or raised, which holds the hidden sizes
# or numbers when they are shown as they are (check's answer cell → code run after it)
QUOTING = {
    "softmax": [
        # right on ordinary scores; on large ones, the scores themselves with inf where they were 0
        "_right = softmax\n\n\ndef softmax(x):\n"
        "    return torch.where(x == 0, float('inf'), x) if x.abs().max() > 100 else _right(x)\n",
    ],
    "network_class": [
        "class Network(nn.Module):\n    def __init__(self):\n"
        "        raise ValueError(f'no network of sizes {[784, 128, 64, 10]}')\n",
        "class Network(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        sizes = [784, 64, 128, 10]\n"
        "        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in pairwise(sizes))\n"
        "    def forward(self, x):\n        for layer in self.layers:\n            x = layer(x)\n"
        "        return x\n",
        "_Right = Network\n\n\nclass Network(_Right):\n    def forward(self, x):\n"
        "        return F.relu(self.fc2(F.relu(self.fc1(x))))\n",
        "_Right = Network\n\n\nclass Network(_Right):\n    def forward(self, x):\n"
        "        return self.fc1(self.output(x))\n",
        "_Right = Network\n\n\nclass Network(_Right):\n    def forward(self, x):\n"
        "        scores = super().forward(x)\n        raise ValueError(f'scores of shape {scores.shape}')\n",
    ],
}


def _drawn_numbers(x: object) -> set[float]:
    """The numbers of hidden inputs that a message could write out: every int, every value of a tensor of at
    most 10 elements (a message shows no more of one), but 0 and ±1."""
    if isinstance(x, dict):
        return set().union(*map(_drawn_numbers, x.values()))
    if isinstance(x, list | tuple):
        return set().union(*map(_drawn_numbers, x))
    if isinstance(x, torch.Tensor):
        return _drawn_numbers(x.flatten().tolist()) if x.numel() <= 10 else set()
    if isinstance(x, int | float) and not isinstance(x, bool):
        return {float(x)} - {0.0, 1.0, -1.0}
    return set()


def test_part2_messages_at_grading_name_no_hidden_size_or_number():
    """At grading, a Part 2 check's message, the ✓ line's text or a failure, never writes out what the grader
    drew (the hidden sizes of Network, the large scores given to softmax): the solution's answers, and answers
    whose failures quote what the learner's code gave or raised, judged as the grader would
    (:func:`checks.kernel.simulate`, the hidden inputs from seeded generators)."""
    import contextlib
    import io
    import re

    import torch.nn.functional as F
    from torch import nn

    from checks import kernel, part2

    solution = nbformat.read(course.PARTS[1].solution, as_version=4)
    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in solution.cells}
    judged = 0
    for check in part2.CHECKS:
        for answer in [None, *QUOTING.get(check.after, [])]:
            for drawing in range(3):
                namespace = {
                    "torch": torch,
                    "nn": nn,
                    "F": F,
                    "pairwise": pairwise,
                    "out": torch.randn(64, 10),
                }
                source = cells[check.after] + (f"\n{answer}" if answer else "")
                with contextlib.redirect_stdout(io.StringIO()):
                    if not check.rerun:
                        exec(compile(source, f"<{check.after}>", "exec"), namespace)
                    verdict = kernel.simulate(check, namespace, source if check.rerun else None, seed=drawing)
                assert verdict.passed == (answer is None), (check.grade_id, answer, verdict.message)
                drawn = _drawn_numbers(check.hidden(torch.Generator().manual_seed(drawing)).all())
                # raw_forward's and sequential's: large tensors only (images, weights), which no message shows
                assert drawn or check in (part2.raw_forward, part2.sequential), check.grade_id
                written = [float(n) for n in re.findall(r"\d+(?:\.\d+)?(?:e[-+]?\d+)?", verdict.message)]
                shown = {d for d in drawn for n in written if abs(n - d) <= 5e-3 * abs(d)}
                assert not shown, f"{check.grade_id} names the hidden {shown}: {verdict.message}"
                judged += 1
    assert judged == 3 * (len(part2.CHECKS) + sum(map(len, QUOTING.values()))), judged


# ------------------------------------------------------------------------------------------ hostile answers
# What a judge receives is the learner's data: a few kilobytes can hold a (N, 1) and a (1, N) tensor that
# broadcast against each other into N² elements, indices or sizes of any value, any number of dimensions. Each
# check's judge gets, for every tensor, number and top-level answer of a plausible answer of the right
# structure, each of these in its place; it must fail (without raising: Check.verdict) and allocate nothing
# large. N = 8192: a judge that broadcast (N, 1) against (1, N) would make 67 million elements, 268 MB of
# float32 — more than the test allows.
HOSTILE_N = 8192


def _hostile_tensors() -> list[torch.Tensor]:
    n = HOSTILE_N
    return [
        torch.zeros(n, 1),
        torch.zeros(1, n),
        torch.tensor(0.5),  # 0-d
        torch.zeros((1,) * 40),  # far more dimensions than any answer has
        torch.full((n,), 2**62, dtype=torch.long),  # indices or counts of absurd size
        torch.zeros(n, 1, dtype=torch.uint8),
    ]


HOSTILE_NUMBERS = [2**63 - 1, -(2**63), 10**30, float("nan"), float("inf"), 1e308]


def _net_description(shapes: list[tuple[int, int]], rows: int) -> dict:
    """Part 2's description of a network, as its ask sends it."""
    return {
        "is Sequential": True,
        "type": "Sequential",
        "kinds": ["Linear", "ReLU", "Linear", "ReLU", "Linear"],
        "names": ["fc1", "relu1", "fc2", "relu2", "output"],
        "shapes": [list(s) for s in shapes],
        "biases": [True] * len(shapes),
        "plain list": False,
        "calls": [1] * len(shapes),
        "out": torch.rand(rows, 10),
        "out, zero weights": torch.rand(rows, 10),
    }


def _mlp_state(sizes: list[int]) -> dict:
    """The state_dict of Linear layers of these sizes with a ReLU between them (nn.Sequential's names)."""
    layers = [torch.nn.Linear(a, b) for a, b in pairwise(sizes)]
    return {
        f"{2 * k}.{name}": t.detach()
        for k, layer in enumerate(layers)
        for name, t in layer.state_dict().items()
    }


def _config(layers: list[int]) -> dict:
    import helper

    model = helper.MLP(784, 10, layers)
    return {
        "is MLP": True,
        "type": "MLP",
        "input_size": 784,
        "output_size": 10,
        "hidden_layers": layers,
        "drop_p": 0.2,
        "state": {k: v.detach() for k, v in model.state_dict().items()},
    }


def _outcome(error: str, bases: list[str], message: str) -> list:
    return [error, bases, message]


def _pixels(n: int = 20) -> torch.Tensor:
    return torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8)


def _labels(n: int = 20, classes: int = 10) -> torch.Tensor:
    return torch.randint(0, classes, (n,))


def test_part8s_judge_makes_the_photos_as_the_notebook_does():
    """The photos (and so the features) Part 8's judge computes at grading are those the learner's notebook
    makes: its own transform cell (transforms.v2), run here, gives the same tensors as checks.data."""
    from PIL import Image

    from checks import data

    nb = nbformat.read(course.part("08_transfer_learning").solution, as_version=4)
    cell = next(c for c in nb.cells if c.get("id") == "code-07").source
    made = cell[: cell.index("\ndata_dir")]  # the transforms, before the data sets
    backbone = data._backbone()
    paths, _ = data.catdog_files("test")
    for size in (128, 224):
        device = torch.device("cuda" if size == 224 else "cpu")  # the notebook's size rule
        namespace = {"torch": torch, "backbone": backbone, "device": device}
        exec("from torchvision.transforms import v2\n" + made, namespace)
        assert namespace["image_size"] == size
        photos = [Image.open(p).convert("RGB") for p in paths[:6]]
        expected = torch.stack([namespace["test_transforms"](photo) for photo in photos])
        assert torch.equal(data.catdog_inputs(paths[:6], size), expected), size


# Inputs of the checks whose own need data sets, photos or a backbone (small stand-ins of the same structure)
FAKE_INPUTS = {
    "test_training_loop": lambda: Inputs({"pixels": _pixels()}, {"labels": _labels()}),
    "test_network": lambda: Inputs({"images": torch.randn(128, 1, 28, 28), "order": torch.randperm(128)}),
    "test_train": lambda: Inputs({"pixels": _pixels()}, {"labels": _labels()}),
    "test_predict": lambda: Inputs({"images": torch.randn(128, 1, 28, 28)}),
    "test_dropout_model": lambda: Inputs(
        {"x": torch.randn(16, 1, 28, 28), "pixels": _pixels()}, {"labels": _labels()}
    ),
    "test_best_model": lambda: Inputs(
        {"valid": _pixels(), "test": _pixels()}, {"valid labels": _labels(), "test labels": _labels()}
    ),
    "test_round_trip": lambda: Inputs(
        {"layers": [16, 8], "drop_p": 0.2, "state": _config([16, 8])["state"], "pixels": _pixels()},
        {"labels": _labels()},
    ),
    "test_transforms": lambda: Inputs({"photo": torch.randint(0, 256, (240, 300, 3), dtype=torch.uint8)}),
    "test_loaders": lambda: Inputs(
        {"index": 3, "seed": 0}, {"label": 1, "counts": {"train": 40, "test": 20}}
    ),
    "test_freeze": lambda: Inputs({"photos": torch.randn(1, 3, 32, 32)}),
    "test_photo_loop": lambda: Inputs(
        {
            "photos": torch.randn(8, 3, 32, 32),
            "features": torch.rand(64, 1280),
            "batch": torch.rand(32, 1280),
            "batch labels": _labels(32, 2),
        },
        {"expected": torch.rand(8, 1280), "labels": _labels(64, 2)},
    ),
    "test_extract_features": lambda: Inputs(
        {"indices": list(range(8))}, {"expected": torch.rand(8, 1280), "labels": [0] * 4 + [1] * 4}
    ),
    "test_accuracy": lambda: Inputs(
        {"features": torch.rand(40, 1280), "photos": torch.rand(16, 3, 32, 32), "rows": torch.arange(16)},
        {"labels": _labels(40, 2)},
    ),
}
AT_GRADING = {"test_extract_features": False}  # at grading it computes the backbone's features itself

# A plausible answer of each check (wrong values, the right structure), from its inputs
TEMPLATES = {
    # Part 1
    "test_broadcast_shapes": lambda i: {
        "shapes": {"A": [2, 3], "B": [1, 3], "C": [3], "D": "error", "E": [2, 3]}
    },
    "test_neuron_sum": lambda i: {"y": torch.rand(1, 1)},
    "test_neuron_mm": lambda i: {"y_mm": torch.rand(1, 1), "weights": torch.rand(1, 5)},
    "test_two_layer": lambda i: {"h": torch.rand(1, 2), "output": torch.rand(1, 1)},
    "test_numpy_bridge": lambda i: {"changes": ["A", "B"]},
    # Part 2
    "test_raw_forward": lambda i: {
        "inputs": torch.rand(64, 784),
        "W1": torch.randn(784, 256),
        "b1": torch.randn(256),
        "W2": torch.randn(256, 10),
        "b2": torch.randn(10),
        "out": torch.rand(64, 10),
    },
    "test_softmax": lambda i: {
        "softmax(scores)": torch.rand(64, 10),
        "softmax(big)": torch.rand(2, 2),
        "library": [],
        "source": {"cell": "x = 1", "definition": "x = 1"},
        "operations": [],
    },
    "test_network_class": lambda i: {"network": _net_description([(128, 784), (64, 128), (10, 64)], 64)},
    "test_sequential": lambda i: {
        label: _net_description([(128, 784), (64, 128), (10, 64)], 3)
        for label in ("seq_model", "named_model")
    },
    # Part 3
    "test_expected_loss": lambda i: {"expected_loss": 2.0},
    "test_log_softmax": lambda i: {
        "log_ps": torch.rand(64, 10),
        "state": _mlp_state([784, 128, 64, 10]),
        "kinds": ["Linear", "ReLU", "Linear", "ReLU", "Linear", "LogSoftmax"],
        "criterion": "NLLLoss",
        "nll_loss": torch.tensor(2.0),
    },
    "test_ce_loss": lambda i: {
        "ce_loss": torch.tensor(2.0),
        "state": _mlp_state([784, 128, 64, 10]),
        "copied": [],
    },
    "test_task_losses": lambda i: {"regression_loss": torch.tensor(1.0), "binary_loss": torch.tensor(1.0)},
    "test_one_step": lambda i: {
        "weight": torch.rand(128, 784),
        "grad": torch.zeros(128, 784),  # cleared after the step: the judge retraces runs of the cell
        "optimizer": {"kind": "SGD", "lr": 0.01, "momentum": 0, "weight_decay": 0, "nesterov": False},
    },
    "test_training_loop": lambda i: {"train_losses": [2.0, 1.0], "scores": torch.rand(20, 10)},
    # Part 4
    "test_network": lambda i: {
        "scores": torch.randn(128, 10),
        "scores of the reordered batch": torch.randn(128, 10),
    },
    "test_train": lambda i: {"train_losses": [1.0], "scores": torch.rand(20, 10)},
    "test_predict": lambda i: {
        "ps": torch.rand(128, 10),
        "requires_grad": False,
        "scores": torch.randn(128, 10),
        "images": torch.rand(128, 1, 28, 28),
    },
    # Part 5
    "test_batch_accuracy": lambda i: {"equals": torch.rand(128, 1) < 0.5, "batch_accuracy": 0.5},
    "test_validate": lambda i: {
        "validate(model, loader, criterion)": [0.5, 0.5],
        "twice": [[0.5, 0.5], [0.5, 0.5]],
    },
    "test_train_loop": lambda i: {
        "history": {
            "train_loss": [1.0, 1.0, 1.0],
            "valid_loss": [1.0, 1.0, 1.0],
            "valid_accuracy": [0.5] * 3,
        },
        "best": {"1.weight": torch.rand(10, 784), "1.bias": torch.rand(10)},
        "final": {"1.weight": torch.rand(10, 784), "1.bias": torch.rand(10)},
        "patience": [3.0, 3.1, 2.9, 3.0, 3.0],
    },
    "test_dropout_model": lambda i: {
        "training": [torch.rand(16, 10), torch.rand(16, 10)],
        "evaluation": [torch.rand(16, 10), torch.rand(16, 10)],
        "history": [0.5],
        "scores": torch.rand(20, 10),
    },
    "test_best_model": lambda i: {
        "file": True,
        "saved keys": ["a"],
        "state keys": ["a"],
        "valid losses": [0.5],
        "test_loss": 0.5,
        "test_accuracy": 0.5,
        "valid scores": torch.rand(20, 10),
        "test scores": torch.rand(20, 10),
    },
    "test_confusion": lambda i: {
        "matrix": torch.randint(0, 5, (10, 10)),
        "twice": [torch.randint(0, 5, (10, 10)), torch.randint(0, 5, (10, 10))],
    },
    "test_precision_recall": lambda i: {"precision": torch.rand(10), "recall": torch.rand(10)},
    # Part 6
    "test_round_trip": lambda i: {
        "file": {"kind": "dict", "only tensors": False},
        "rebuilt": _config([16, 8]),
        "restored": _config([16, 8]),
        "model": _config([16, 8]),
        "restored scores": torch.rand(20, 10),
    },
    "test_bad_files": lambda i: {
        "state_dict": _outcome("ValueError", ["ValueError"], i["names"]["state_dict"]),
        "pickle": _outcome("ValueError", ["ValueError"], i["names"]["pickle"]),
        "pickle's code ran": False,
    },
    "test_resume": lambda i: {
        "start": 3,
        "resumed": {k: torch.rand_like(v) for k, v in i["init"].items()},
        "after": {k: torch.rand_like(v) for k, v in i["init"].items()},
    },
    # Part 7
    "test_transforms": lambda i: {
        "train_transforms": [torch.rand(3, 224, 224), torch.rand(3, 224, 224)],
        "test_transforms": [torch.rand(3, 224, 224), torch.rand(3, 224, 224)],
        "train_transforms(grey photo)": torch.rand(3, 224, 224),
    },
    "test_loaders": lambda i: {
        "classes": [["cat", "dog"], ["cat", "dog"]],
        "sizes": [40, 20],
        "transforms": [True, True],
        "batch": [[32, 3, 224, 224], _labels(32, 2)],
        "test batch": [64, 3, 224, 224],
        "test sampler": "SequentialSampler",
        "item": [1, torch.rand(3, 224, 224), torch.rand(3, 224, 224)],
    },
    "test_csv_dataset": lambda i: {
        "len": 6,
        "classes": sorted(set(i["labels"])),
        "items": [[torch.rand(3, 12, 16), 0] for _ in range(6)],
        "again": [torch.rand(3, 12, 16), 0],
        "batch": [[6, 3, 12, 16], torch.zeros(6, dtype=torch.long)],
    },
    # Part 8
    "test_freeze": lambda i: {"unfrozen": [], "head": [True, True], "scores": torch.rand(1, 2)},
    "test_photo_loop": lambda i: {
        "unfrozen": [],
        "optimizer": {"classifier": 2, "others": 0, "of the classifier": 2},
        "gradient": 1.0,
        "fresh gradient": 1.0,
        "features": torch.rand(8, 1280),
        "scores": torch.rand(64, 2),
    },
    "test_extract_features": lambda i: {
        "features": torch.rand(8, 1280),
        "labels": torch.tensor([0] * 4 + [1] * 4),
        "requires_grad": False,
        "image_size": 128,
        "backbone": "EfficientNet-B0",
    },
    "test_accuracy": lambda i: {
        "rows": torch.arange(16),
        "whole": torch.rand(16, 2),
        "scores": torch.rand(40, 2),
    },
}


def _leaves(x: object, path: tuple = ()):
    """The places of ``x`` a hostile value can take: tensors, numbers, lists of tensors; with their paths."""
    if isinstance(x, torch.Tensor) or (isinstance(x, int | float) and not isinstance(x, bool)):
        yield path, x
    elif isinstance(x, dict):
        for k, v in x.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(x, list):
        if len(x) >= 2 and all(isinstance(v, torch.Tensor) for v in x):
            yield path, x
        for k, v in enumerate(x):
            yield from _leaves(v, (*path, k))


def _replaced(x: object, path: tuple, new: object) -> object:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(x, dict):
        return {k: _replaced(v, rest, new) if k == head else v for k, v in x.items()}
    return [_replaced(v, rest, new) if k == head else v for k, v in enumerate(x)]


def _hostile_variants(answers: dict):
    """Each hostile value in each place of ``answers``, one at a time; then every tensor at once, (N, 1) and
    (1, N) in turn."""
    tensors, n = _hostile_tensors(), HOSTILE_N
    for key in answers:  # each top-level answer replaced by each hostile value
        for new in [*tensors, *HOSTILE_NUMBERS, [torch.zeros(n, 1), torch.zeros(1, n)]]:
            yield f"{key} = {_shown(new)}", {**answers, key: new}
    for path, old in _leaves(answers):
        if len(path) < 2:
            continue  # done above
        if isinstance(old, list):
            choices = [[torch.zeros(n, 1) if k % 2 == 0 else torch.zeros(1, n) for k in range(len(old))]]
        elif isinstance(old, torch.Tensor):
            choices = tensors
        else:
            choices = HOSTILE_NUMBERS
        for new in choices:
            yield f"{path} = {_shown(new)}", _replaced(answers, path, new)
    count = 0

    def every(x: object) -> object:
        nonlocal count
        if isinstance(x, torch.Tensor):
            count += 1
            return torch.zeros(n, 1) if count % 2 else torch.zeros(1, n)
        if isinstance(x, dict):
            return {k: every(v) for k, v in x.items()}
        if isinstance(x, list):
            return [every(v) for v in x]
        return x

    changed = every(answers)
    if count:
        yield "every tensor (N, 1) or (1, N)", changed


def _shown(x: object) -> str:
    if isinstance(x, torch.Tensor):
        return f"tensor{tuple(x.shape)} {x.dtype}"
    if isinstance(x, list):
        return f"[{', '.join(map(_shown, x))}]"
    return repr(x)[:30]


def test_every_judge_fails_hostile_answers_without_raising_or_allocating_much():
    """Every check of the eight parts (Part 2's too): answers of the right structure with, in each place, a
    tensor of shape (N, 1) or (1, N) (which broadcast into N² elements against each other), a 0-d tensor, a
    tensor of 40 dimensions, indices of 2⁶², a huge or non-finite number. Every verdict fails, none raises,
    each says in its judge's own words what was expected and what was given (never "the check could not judge
    this answer": a judge that tripped over it), and the process's peak memory grows by less than 200 MB."""
    import resource
    import time

    torch.manual_seed(0)
    started, cases = time.monotonic(), []
    for part in course.PART_NAMES:
        for check in checks.of_part(part):
            assert check.grade_id in TEMPLATES, f"{part}: no hostile-answer template for {check.grade_id}"
            fake = FAKE_INPUTS.get(check.grade_id)
            inputs = fake() if fake else check.hidden(torch.Generator().manual_seed(0))
            inputs = Inputs(wire.roundtrip(inputs.sent), inputs.kept)
            at_grading = AT_GRADING.get(check.grade_id, True)
            template = TEMPLATES[check.grade_id](inputs.all())
            check.verdict(inputs, template, hidden=at_grading)  # what is imported or cached on first use
            cases.append((part, check, inputs, at_grading, template))
    peak, tried = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, 0
    for part, check, inputs, at_grading, template in cases:
        for label, answers in _hostile_variants(template):
            verdict = check.verdict(inputs, answers, hidden=at_grading)
            assert not verdict.passed, f"{part} {check.grade_id} passed {label}: {verdict.message}"
            assert "could not judge" not in verdict.message, (
                f"{part} {check.grade_id} tripped over {label}: {verdict.message}"
            )
            tried += 1
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak) / 1024  # kB on Linux
    assert grown < 200, f"the judges' peak memory grew by {grown:.0f} MB over {tried} hostile answers"
    assert tried > 1000, tried
    print(
        f"{tried} hostile answers judged in {time.monotonic() - started:.1f} s, peak memory +{grown:.0f} MB"
    )
