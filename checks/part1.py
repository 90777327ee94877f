"""Part 1 — Tensors: the checks of ``01_tensors.ipynb``.

Each exercise computes values from tensors the notebook creates with a seed. In the notebook a check judges
the notebook's own values; at grading the learner's answer cell runs again on tensors the grader draws (hidden
inputs), so the values can only be right if the code is.
"""

from __future__ import annotations

import torch

from checks.core import (
    Check,
    Inputs,
    Raised,
    expect_close,
    expect_shape,
    fail,
    is_close,
    kind,
    lookup,
    need,
    pick,
    seen,
    tensor,
    value,
)


def _sigmoid(x: torch.Tensor) -> torch.Tensor:
    return 1 / (1 + torch.exp(-x))


def _neuron_inputs(g: torch.Generator) -> Inputs:
    return Inputs({name: torch.randn(shape, generator=g) for name, shape in _NEURON.items()})


_NEURON = {"features": (1, 5), "weights": (1, 5), "bias": (1, 1)}


def _ask_names(*names: str):
    return lambda namespace, sent: {name: lookup(namespace, name) for name in names}


def _judge_neuron_sum(i: dict, a: dict) -> str:
    y = tensor(a, "y")
    expect_shape(y, (1, 1), "y", hint="add the (1, 1) bias after summing, so the result is (1, 1)")
    need(
        0 < y.item() < 1,
        f"y should be a sigmoid output between 0 and 1, got {y.item():.4f} — did you apply activation?",
    )
    expected = _sigmoid((i["features"] * i["weights"]).sum() + i["bias"])
    hint = "multiply features and weights element-wise, sum, add bias, then apply activation"
    expect_close(y, expected, "y", hint=hint)
    return "y = activation(sum(features × weights) + bias)" + seen(f" = {y.item():.4f}")


neuron_sum = Check(
    "test_neuron_sum",
    after="neuron_sum",
    judge=_judge_neuron_sum,
    ask=_ask_names("y"),
    given=lambda ns: Inputs(pick(ns, *_NEURON)),
    hidden=_neuron_inputs,
    rerun=True,
)


def _judge_neuron_mm(i: dict, a: dict) -> str:
    weights = value(a, "weights")
    expect_shape(
        weights,
        (1, 5),
        "weights",
        hint="resize_ changed weights itself, in place (perhaps in an earlier run of the cell above). Use "
        "view "
        "or reshape, run the cell that creates weights (torch.manual_seed(7)) again, then the cell above",
    )
    y_mm = tensor(a, "y_mm")
    expect_shape(y_mm, (1, 1), "y_mm", hint="a (1, 5) matrix times a (5, 1) matrix is (1, 1)")
    expected = _sigmoid(i["features"] @ i["weights"].reshape(5, 1) + i["bias"])
    hint = "the matrix product must give the same neuron output as the element-wise sum of Exercise 1"
    expect_close(y_mm, expected, "y_mm", hint=hint)
    return "y_mm = activation(features @ weights reshaped to (5, 1) + bias), weights left (1, 5)" + seen(
        f": {y_mm.item():.4f}"
    )


neuron_mm = Check(
    "test_neuron_mm",
    after="neuron_mm",
    judge=_judge_neuron_mm,
    ask=_ask_names("y_mm", "weights"),
    given=lambda ns: Inputs(pick(ns, *_NEURON)),
    hidden=_neuron_inputs,
    rerun=True,
)

_LAYERS = {"features": (1, 3), "W1": (3, 2), "W2": (2, 1), "B1": (1, 2), "B2": (1, 1)}


def _judge_two_layer(i: dict, a: dict) -> str:
    h, output = tensor(a, "h"), tensor(a, "output")
    expect_shape(h, (1, 2), "h", hint="features (1, 3) @ W1 (3, 2) gives the hidden layer (1, 2)")
    expect_shape(output, (1, 1), "output", hint="h (1, 2) @ W2 (2, 1) gives the output (1, 1)")
    expected_h = _sigmoid(i["features"] @ i["W1"] + i["B1"])
    expect_close(h, expected_h, "h", hint="h = activation(features @ W1 + B1)")
    hint = "output = activation(h @ W2 + B2): the activation applies to the output layer too"
    expect_close(output, _sigmoid(expected_h @ i["W2"] + i["B2"]), "output", hint=hint)
    return "h = activation(features @ W1 + B1) and output = activation(h @ W2 + B2)" + seen(
        f"; output: {output.item():.4f}"
    )


two_layer = Check(
    "test_two_layer",
    after="two_layer",
    judge=_judge_two_layer,
    ask=_ask_names("h", "output"),
    given=lambda ns: Inputs(pick(ns, *_LAYERS)),
    hidden=lambda g: Inputs({name: torch.randn(shape, generator=g) for name, shape in _LAYERS.items()}),
    rerun=True,
)


def _bridge_inputs(g: torch.Generator) -> Inputs:
    arr = torch.randint(-50, 50, (2, 3), generator=g).float()
    return Inputs({"arr": arr, "change": torch.randint(1, 9, (2, 3), generator=g).float()})


def _bind_bridge(namespace: dict, sent: dict) -> dict:
    return {"arr": sent["arr"].numpy().copy()}


def _ask_bridge(namespace: dict, sent: dict) -> dict:
    """The two tensors as they are, then again after ``arr`` is changed in place: a tensor that shares memory
    with ``arr`` changes with it, a copy does not."""
    import numpy as np

    found = {name: lookup(namespace, name) for name in ("shared", "independent")}
    arr = namespace.get("arr")
    if not isinstance(arr, np.ndarray) or arr.shape != (2, 3):
        return {"$problem": Raised("arr is no longer the (2, 3) NumPy array of the cell above: run it again")}
    before = {f"{name} before": _snapshot(x) for name, x in found.items()}
    arr += sent["change"].numpy().astype(arr.dtype)
    after = {f"{name} after": _snapshot(x) for name, x in found.items()}
    arr -= sent["change"].numpy().astype(arr.dtype)
    return {**before, **after}


def _snapshot(x: object) -> object:
    return x.clone() if isinstance(x, torch.Tensor) else x


def _judge_bridge(i: dict, a: dict) -> str:
    for name in ("shared", "independent"):
        got = value(a, f"{name} before", name)
        need(
            isinstance(got, torch.Tensor),
            f"shared and independent should be tensors, got {kind(value(a, 'shared before', 'shared'))} and "
            f"{kind(value(a, 'independent before', 'independent'))}",
        )
        expect_close(got, i["arr"], name, hint="make it from arr")
    changed = i["arr"] + i["change"]
    if not is_close(a["shared after"], changed):
        fail(
            "shared does not share memory with arr (it did not change when arr did) — use "
            "torch.from_numpy(arr)"
        )
    if not is_close(a["independent after"], i["arr"]):
        fail(
            "independent shares memory with arr (it changed when arr did) — make a copy, "
            "e.g. torch.tensor(arr) or torch.from_numpy(arr).clone()"
        )
    return "shared changes when arr changes, independent does not"


numpy_bridge = Check(
    "test_numpy_bridge",
    after="numpy_bridge",
    judge=_judge_bridge,
    ask=_ask_bridge,
    given=lambda ns: Inputs(
        {"arr": torch.from_numpy(pick(ns, "arr")["arr"].copy()), "change": torch.ones(2, 3)}
    ),
    hidden=_bridge_inputs,
    rerun=True,
    bind=_bind_bridge,
)

CHECKS = [neuron_sum, neuron_mm, two_layer, numpy_bridge]
