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

import nbformat
import pytest
import torch
from nbformat.v4 import new_code_cell

import checks
import course
from checks import wire
from checks.core import Check, CheckFailed, Inputs, Opaque, Raised, expect_close, expect_shape
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
