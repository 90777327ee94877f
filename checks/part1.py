"""Part 1 — Tensors: the checks of ``01_tensors.ipynb``.

Each exercise computes values from tensors the notebook creates with a seed. In the notebook a check judges
the notebook's own values; at grading the learner's answer cell runs again on tensors the grader draws (hidden
inputs), so the values can only be right if the code is. Exercises 1 and 5 are predictions (the shapes that
broadcasting gives; which snippets change a NumPy array): the judge works out the truth itself, from the
expressions and the snippets.
"""

from __future__ import annotations

import operator

import torch

from checks.core import (
    Check,
    Inputs,
    Like,
    Misconception,
    expect_close,
    expect_shape,
    fail_if_stopped,
    is_close,
    kind,
    lookup,
    need,
    pick,
    seen,
    stopped_with,
    tensor,
    value,
)
from checks.kernel import hint as hint  # check.hint(): the next hint after a failed check
from checks.wire import Opaque, Raised


def _sigmoid(x: torch.Tensor) -> torch.Tensor:
    return 1 / (1 + torch.exp(-x))


# ------------------------------------------------------------------------------------------ misconceptions
NO_ACTIVATION = Misconception(
    "neuron-without-activation",
    "a neuron without its activation function",
    1,
    "A single neuron",
    "A neuron's output is activation(weighted sum + bias): the sigmoid squeezes the sum into (0, 1).",
    "y = activation(torch.sum(features * weights) + ...)",
    "activation-function",
)
BIAS_IN_SUM = Misconception(
    "bias-added-to-every-input",
    "the bias added to every product, before the sum, instead of once after it",
    1,
    "A single neuron",
    "The bias is one number added once, to the weighted sum: sum(features × weights) + bias.",
    "y = activation(torch.sum(features * weights) + ...)",
    "bias",
)
NUMBER_FOR_TENSOR = Misconception(
    "number-for-tensor",
    "a plain number taken for the (1, 1) tensor",
    1,
    "Tensors",
    "A shape is part of the answer: bias is a (1, 1) tensor and adding it keeps the result (1, 1); .item() "
    "gives a Python number, which has no shape.",
    "y = activation(torch.sum(features * weights) + bias)  # bias as it is: shape (1, 1)",
    "shape",
)
RESIZE_IN_PLACE = Misconception(
    "resize-in-place",
    "resize_ taken for a reshape that leaves its tensor alone",
    1,
    "Matrix multiplication, and changing a tensor's shape",
    "A method whose name ends in _ changes its tensor in place: weights.resize_(5, 1) changes weights "
    "itself. view and reshape return the same numbers in a new shape and leave weights as it was.",
    "y_mm = activation(torch.mm(features, weights.view(..., ...)) + bias)",
    "shape",
)
ELEMENTWISE_FOR_MATMUL = Misconception(
    "elementwise-for-matmul",
    "* (element by element) taken for the matrix product",
    1,
    "Matrix multiplication, and changing a tensor's shape",
    "* multiplies element by element, broadcasting shapes that differ: (1, 5) * (5, 1) is (5, 5). torch.mm "
    "and @ multiply matrices: (1, 5) @ (5, 1) is (1, 1).",
    "y_mm = activation(features @ weights.view(5, 1) + ...)",
)
FACTORS_SWAPPED = Misconception(
    "matmul-factors-swapped",
    "the matrix product's factors taken to commute",
    1,
    "Matrix multiplication, and changing a tensor's shape",
    "Order matters in a matrix product: (1, 5) @ (5, 1) is (1, 1), the weighted sum; (5, 1) @ (1, 5) is "
    "(5, 5), every weight times every feature (as (1, 5) * (5, 1) gives too, broadcasting). features comes "
    "first.",
    "y_mm = activation(torch.mm(features, ...) + bias)",
)
OUTPUT_WITHOUT_ACTIVATION = Misconception(
    "output-without-activation",
    "the output layer left without its activation",
    1,
    "Stacking neurons into a network",
    "In this network every layer applies the activation, the output layer too.",
    "h = activation(features @ W1 + B1)\noutput = activation(... @ W2 + B2)",
    "activation-function",
)
LAYER_WITHOUT_BIAS = Misconception(
    "layer-without-bias",
    "a layer's bias left out",
    1,
    "Stacking neurons into a network",
    "Each layer adds its own bias after multiplying by its weights: B1 in the hidden layer, B2 in the "
    "output.",
    "h = activation(features @ W1 + ...)",
    "bias",
)
COLUMN_VECTORS = Misconception(
    "column-vector-convention",
    "the input taken for a column vector, weights first (W x), as some other courses write it",
    1,
    "Stacking neurons into a network",
    "Here an example is a row: features is (1, 3) and W1 is (inputs, hidden units) = (3, 2), so a layer is "
    "features @ W1 + B1: (1, 3) @ (3, 2) + (1, 2) gives h as (1, 2). Writing W x with x a column turns every "
    "shape around: h comes out (2, 1), or (2, 2) once the (1, 2) bias is broadcast onto it.",
    "h = activation(features @ ... + B1)  # (1, 3) @ (3, 2) + (1, 2): h is (1, 2)",
)
_BROADCAST = "Indexing, slicing and broadcasting"
_BROADCAST_SKELETON = (
    'shapes = {"A": (..., ...), "B": ..., "C": ..., "D": ..., "E": ...}  # each a shape tuple, or "error"'
)
FROM_THE_LEFT = Misconception(
    "broadcast-from-the-left",
    "shapes lined up from the left, not from the right",
    1,
    _BROADCAST,
    "Broadcasting lines shapes up from their last size: (2, 3) and (3,) pair 3 with 3, and the size (3,) "
    "lacks counts as 1. (2, 3) and (2,) pair 3 with 2: an error.",
    _BROADCAST_SKELETON,
    "broadcasting",
)
ONE_DOES_NOT_STRETCH = Misconception(
    "size-one-does-not-stretch",
    "a size of 1 taken to clash with another size, or to stay 1",
    1,
    _BROADCAST,
    "A size of 1, or a missing one, stretches to match the other size: (1, 3) + (3, 1) is (3, 3), and "
    "(2, 3) / (2, 1) is (2, 3), each row divided by its own number.",
    _BROADCAST_SKELETON,
    "broadcasting",
)
SHAPE_AS_TEXT = Misconception(
    "shape-as-text",
    "a shape written as text, in quotes, where a tuple of numbers was asked for",
    1,
    _BROADCAST,
    "A shape is a tuple of whole numbers, as .shape prints it (without torch.Size): (2, 3). Only the word "
    '"error" is a string.',
    _BROADCAST_SKELETON,
    "shape",
)
VECTOR_PAIRS_WITH_COLUMN = Misconception(
    "vector-pairs-with-column",
    "a (3,) vector and a (3, 1) column taken to add element by element",
    1,
    _BROADCAST,
    "A (3,) vector lined up from the right counts as a row, (1, 3). Against a (3, 1) column both stretch: "
    "(3, 3), every element plus every element.",
    _BROADCAST_SKELETON,
    "broadcasting",
)
_BRIDGE = "NumPy to Torch and back"
_BRIDGE_SKELETON = 'changes = {"...", "..."}  # the letters of the snippets that write into arr\'s memory'
BRIDGE_MISCONCEPTIONS = {  # the first letter a prediction gets wrong → the belief it shows
    "A": Misconception(
        "from-numpy-copies",
        "torch.from_numpy taken for a copy",
        1,
        _BRIDGE,
        "torch.from_numpy never copies: the tensor and the array share one block of memory.",
        _BRIDGE_SKELETON,
    ),
    "B": Misconception(
        "tensor-shares",
        "torch.tensor taken to share the array's memory",
        1,
        _BRIDGE,
        "torch.tensor always copies its data: changing the tensor leaves the array alone.",
        _BRIDGE_SKELETON,
    ),
    "C": Misconception(
        "rebinding-for-in-place",
        "t = t + 1 taken for an in-place change",
        1,
        _BRIDGE,
        "t + 1 computes a new tensor; t = … only gives it the name t. Only in-place operations (+=, t[0] = "
        "…, methods ending in _) write into the memory t had.",
        _BRIDGE_SKELETON,
    ),
    "D": Misconception(
        "as-tensor-copies",
        "torch.as_tensor taken for a copy",
        1,
        _BRIDGE,
        "torch.as_tensor shares the array's memory when it can (same dtype, on the CPU); it copies only "
        "when it must.",
        _BRIDGE_SKELETON,
    ),
    "E": Misconception(
        "conversion-shares",
        "a dtype conversion taken to share memory",
        1,
        _BRIDGE,
        "Converting float64 to float32 (.float()) makes new numbers, so new memory: a copy. NumPy's arrays "
        "are float64 unless told otherwise.",
        _BRIDGE_SKELETON,
    ),
    "F": Misconception(
        "same-dtype-conversion-copies",
        "a conversion to the dtype the tensor already has taken for a copy",
        1,
        _BRIDGE,
        "A conversion that changes nothing returns the same tensor: .double() of a float64 tensor is still "
        "the array's memory.",
        _BRIDGE_SKELETON,
    ),
}
COUNT_FOR_LETTERS = Misconception(
    "count-for-letters",
    "how many snippets taken for which ones",
    1,
    "Exercise 5 — which snippets change the array?",
    "The answer names the snippets: a set of their letters, not their number.",
    _BRIDGE_SKELETON,
)


# Exercise 1's expressions, as data: (the left shape, the operator, the right shape). The notebook shows them
# as BROADCASTS says them; the judge evaluates them itself to know what each gives.
_BROADCAST_CASES = {
    "A": ((2, 3), "+", (3,)),
    "B": ((1, 3), "+", (3, 1)),
    "C": ((3,), "+", (3, 1)),
    "D": ((2, 3), "/", (2,)),
    "E": ((2, 3), "/", (2, 1)),
}
BROADCASTS = {
    letter: f"torch.ones({', '.join(map(str, a))}) {op} torch.ones({', '.join(map(str, b))})"
    for letter, (a, op, b) in _BROADCAST_CASES.items()
}
_ERROR_WORDS = {"error", "raises", "an error", "runtimeerror"}
_TYPICAL = {  # a typical wrong prediction of each expression → the belief it shows
    "A": {"error": FROM_THE_LEFT},
    "B": {"error": ONE_DOES_NOT_STRETCH, (1, 3): ONE_DOES_NOT_STRETCH, (3, 1): ONE_DOES_NOT_STRETCH},
    "C": {(3,): VECTOR_PAIRS_WITH_COLUMN, (3, 1): VECTOR_PAIRS_WITH_COLUMN, "error": ONE_DOES_NOT_STRETCH},
    "D": {(2, 3): FROM_THE_LEFT},
    "E": {"error": ONE_DOES_NOT_STRETCH},
}
_MAX_ENTRIES = 50  # more entries than that is no answer to five questions: sent as its kind and size only


def broadcast_results() -> dict[str, tuple[int, ...] | str]:
    """What each expression of BROADCASTS gives, found by running it: its shape, or "error"."""
    results: dict[str, tuple[int, ...] | str] = {}
    for letter, expression in BROADCASTS.items():
        try:
            results[letter] = tuple(eval(expression, {"torch": torch}).shape)
        except RuntimeError:
            results[letter] = "error"
    return results


def _why_broadcast(letter: str) -> str:
    """The rule, applied to one expression: its shapes lined up from the right, size by size."""
    a, _, b = _BROADCAST_CASES[letter]
    n = max(len(a), len(b))
    left, right = (1,) * (n - len(a)) + a, (1,) * (n - len(b)) + b
    lined = f"{_counts_as(a, left)} against {_counts_as(b, right)}".rstrip(",")
    clash = next((k for k in reversed(range(n)) if 1 != left[k] != right[k] != 1), None)
    if clash is not None:
        x, y = left[clash], right[clash]
        return f"lined up from the right, {lined}: sizes {x} and {y} meet, and neither is 1"
    result = tuple(max(x, y) for x, y in zip(left, right, strict=True))
    return f"lined up from the right, {lined}: each 1 stretches to the other size, so {result}"


def _counts_as(shape: tuple[int, ...], lined_up: tuple[int, ...]) -> str:
    return f"{shape}, which counts as {lined_up}," if shape != lined_up else str(shape)


def _shown_prediction(p: tuple[int, ...] | str) -> str:
    return '"error"' if p == "error" else str(p)


def _plain_prediction(v: object) -> object:
    """Kernel side: one prediction as data (a shape as a list of ints, a string); what is neither, as its
    kind."""
    if isinstance(v, str):
        return v[:100]
    if isinstance(v, tuple | list):  # torch.Size is a tuple
        if len(v) > 8:
            return Opaque(f"{type(v).__name__} of {len(v)} items")
        return [int(operator.index(x)) if _index(x) else _size(x) for x in v]
    if isinstance(v, bool | int | float) or v is None:
        return v
    return Opaque(kind(v), tuple(v.shape) if isinstance(v, torch.Tensor) else None)


def _size(x: object) -> object:
    """Kernel side: a size that is not a whole number, as data (a float, a string) or as its kind."""
    return x[:20] if isinstance(x, str) else x if isinstance(x, float) else Opaque(kind(x))


def _index(x: object) -> bool:
    """Whether ``x`` is a whole number (an int, a NumPy integer, a 0-d integer tensor), not a bool."""
    if isinstance(x, bool) or (isinstance(x, torch.Tensor) and x.is_floating_point()):
        return False
    try:
        operator.index(x)
        return True
    except Exception:
        return False


def _ask_broadcast(namespace: dict, sent: dict) -> dict:
    stopped = stopped_with(namespace, "shapes")
    if stopped is not None:  # the latest run of the answer cell stopped: what shapes holds is older
        return {"stopped": stopped}
    shapes = lookup(namespace, "shapes")
    sized = isinstance(shapes, dict | list | tuple | set | frozenset | str)
    if sized and len(shapes) > _MAX_ENTRIES:
        return {"shapes": Opaque(f"{type(shapes).__name__} of {len(shapes)} entries")}
    if isinstance(shapes, dict):
        return {"shapes": {str(k)[:40]: _plain_prediction(v) for k, v in shapes.items()}}
    return {"shapes": shapes if isinstance(shapes, Raised) else _plain_prediction(shapes)}


def _prediction(letter: str, v: object) -> tuple[int, ...] | str:
    """Judge side: one prediction read as a shape (a tuple of sizes) or "error"; fails on anything else."""
    example = 'expected a shape such as (2, 3), or "error" for an expression that raises'
    if isinstance(v, str):
        quoted = any(c.isdigit() for c in v) and v.strip().lower() not in _ERROR_WORDS
        need(
            not quoted,
            f"shapes[{letter!r}] is the string {v[:40]!r}: write a shape as a tuple of numbers, such as "
            '(2, 3), without quotes; only "error" is a string',
            SHAPE_AS_TEXT,
        )
        need(v.strip().lower() in _ERROR_WORDS, f"shapes[{letter!r}]: {example}, got {v[:40]!r}")
        return "error"
    need(isinstance(v, list), f"shapes[{letter!r}]: {example}, got {kind(v)}")
    sizes = all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n < 2**31 for n in v)
    shown = ", ".join(kind(n) if not isinstance(n, int) else str(n)[:12] for n in v[:8])
    need(sizes, f"shapes[{letter!r}] holds ({shown}): a shape's sizes are whole numbers, such as (2, 3)")
    return tuple(v)


def _judge_broadcast(i: dict, a: dict) -> str:
    fail_if_stopped(a)
    shapes = value(a, "shapes")
    need(
        isinstance(shapes, dict),
        'shapes should be a dict from each letter to a shape or "error", such as {"A": (2, 3), "D": '
        f'"error"}}, got {kind(shapes)}',
    )
    said: dict[str, tuple[int, ...] | str] = {}
    for key, v in shapes.items():
        letter = key.strip().upper()
        need(letter in BROADCASTS, f"shapes holds {key[:20]!r}: the expressions are A to E")
        need(letter not in said, f"shapes holds {letter} twice: give one prediction for each letter")
        said[letter] = _prediction(letter, v)
    missing = sorted(set(BROADCASTS) - set(said))
    need(not missing, f"shapes has no prediction for {', '.join(missing)}: give one for each of A to E")
    truth = broadcast_results()
    wrong = [letter for letter in BROADCASTS if said[letter] != truth[letter]]
    mistakes = [
        f"{letter} gives {'an error' if truth[letter] == 'error' else truth[letter]}, not "
        f"{_shown_prediction(said[letter])}: {_why_broadcast(letter)}"
        for letter in wrong
    ]
    typical = (_TYPICAL[letter].get(said[letter]) for letter in wrong)
    if sum(said[letter] == "error" for letter in wrong) >= 2:  # not one belief about A: no size stretches
        typical = iter([ONE_DOES_NOT_STRETCH])
    need(
        not wrong,
        f"shapes: {len(wrong)} of {len(BROADCASTS)} wrong — " + "; ".join(mistakes),
        next((m for m in typical if m is not None), None),
    )
    given = ", ".join(f"{letter} {'an error' if p == 'error' else p}" for letter, p in truth.items())
    return f"shapes: all {len(truth)} predictions are what PyTorch gives ({given})"


broadcast_shapes = Check(
    "test_broadcast_shapes",
    after="broadcast_shapes",
    judge=_judge_broadcast,
    ask=_ask_broadcast,
    given=lambda ns: Inputs(),
    hidden=lambda g: Inputs(),
)


def _neuron_inputs(g: torch.Generator) -> Inputs:
    return Inputs({name: torch.randn(shape, generator=g) for name, shape in _NEURON.items()})


_NEURON = {"features": (1, 5), "weights": (1, 5), "bias": (1, 1)}


def _ask_names(*names: str):
    return lambda namespace, sent: {name: lookup(namespace, name) for name in names}


def _holds(x: torch.Tensor, typical: torch.Tensor) -> bool:
    """Whether ``x`` holds ``typical``'s numbers, in the same order, whatever its shape."""
    return x.numel() == typical.numel() and is_close(x.reshape(typical.shape), typical)


def _shape_after_probes(
    x: object,
    expected: torch.Tensor,
    name: str,
    hint: str,
    like: Like = (),
    reshaped: Like = (),
    shapes: Like = (),
) -> None:
    """The shape test, after the misconception probes whose symptom a wrong shape often is: ``x`` must be a
    tensor of ``expected``'s shape. One of another shape fails with the misconception of the first typical
    wrong value in ``like`` whose numbers it holds; else, holding the right numbers, with the one ``reshaped``
    pairs with its shape; else with the one ``shapes`` pairs with its shape."""
    need(isinstance(x, torch.Tensor), f"{name}: expected a tensor, got {kind(x)}")
    if tuple(x.shape) == tuple(expected.shape):
        return
    shown = next((m for typical, m in like if _holds(x, torch.as_tensor(typical))), None)
    right = shown is None and _holds(x, expected)
    if right:
        shown = next((m for shape, m in reshaped if tuple(shape) == tuple(x.shape)), None)
    said = f"its numbers are right, its shape is not: {hint}" if right else hint
    expect_shape(x, tuple(expected.shape), name, said, shown, () if shown else shapes)


def _judge_neuron_sum(i: dict, a: dict) -> str:
    y = tensor(a, "y")
    features, weights, bias = i["features"], i["weights"], i["bias"]
    expected = _sigmoid((features * weights).sum() + bias)
    like = [
        (_sigmoid((features * weights + bias).sum()).view(1, 1), BIAS_IN_SUM),
        ((features * weights).sum() + bias, NO_ACTIVATION),
    ]
    hint = "keep bias a (1, 1) tensor and add it once, after the sum: the result is (1, 1)"
    _shape_after_probes(y, expected, "y", hint, like, reshaped=[((), NUMBER_FOR_TENSOR)])
    need(
        0 < y.item() < 1,
        f"y should be a sigmoid output between 0 and 1, got {y.item():.4f} — did you apply activation?",
        NO_ACTIVATION,
    )
    hint = "multiply features and weights element-wise, sum, add bias, then apply activation"
    expect_close(y, expected, "y", hint=hint, like=like)
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
        "view or reshape, run the cell that creates weights (torch.manual_seed(7)) again, then the cell "
        "above",
        misconception=RESIZE_IN_PLACE,
    )
    y_mm = tensor(a, "y_mm")
    features, weights, bias = i["features"], i["weights"], i["bias"]
    expected = _sigmoid(features @ weights.reshape(5, 1) + bias)
    like = [  # the first is also what features * weights.view(5, 1) gives
        (_sigmoid(weights.reshape(5, 1) @ features + bias), FACTORS_SWAPPED),
        (_sigmoid(features.reshape(5, 1) @ weights + bias), FACTORS_SWAPPED),
        (_sigmoid(features * weights + bias), ELEMENTWISE_FOR_MATMUL),
    ]
    shapes = [((1, 5), ELEMENTWISE_FOR_MATMUL), ((5, 5), FACTORS_SWAPPED)]
    hint = "a (1, 5) matrix times a (5, 1) matrix is (1, 1)"
    _shape_after_probes(y_mm, expected, "y_mm", hint, like, shapes=shapes)
    hint = "the matrix product must give the same neuron output as the element-wise sum of Exercise 2"
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
    features, W1, B1, W2, B2 = (i[name] for name in ("features", "W1", "B1", "W2", "B2"))
    expected_h = _sigmoid(features @ W1 + B1)
    like = [
        (_sigmoid(features @ W1), LAYER_WITHOUT_BIAS),
        (_sigmoid((features @ W1).T + B1), COLUMN_VECTORS),  # W1.T @ features.T + B1: (2, 1) + (1, 2)
    ]
    hint = "features (1, 3) @ W1 (3, 2) gives the hidden layer (1, 2)"
    _shape_after_probes(h, expected_h, "h", hint, like, reshaped=[((2, 1), COLUMN_VECTORS)])
    expect_close(h, expected_h, "h", hint="h = activation(features @ W1 + B1)", like=like)
    raw = expected_h @ W2 + B2
    like = [(raw, OUTPUT_WITHOUT_ACTIVATION)]
    expected = _sigmoid(raw)
    _shape_after_probes(output, expected, "output", "h (1, 2) @ W2 (2, 1) gives the output (1, 1)", like)
    hint = "output = activation(h @ W2 + B2): the activation applies to the output layer too"
    expect_close(output, expected, "output", hint=hint, like=like)
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


# Exercise 5's snippets: each runs on a fresh ``arr = np.zeros(3)`` (float64); the notebook shows them, the
# judge runs them itself to know which ones change ``arr``.
BRIDGE_SNIPPETS = {
    "A": "t = torch.from_numpy(arr)\nt += 1",
    "B": "t = torch.tensor(arr)\nt += 1",
    "C": "t = torch.from_numpy(arr)\nt = t + 1",
    "D": "t = torch.as_tensor(arr)\nt[0] = 5",
    "E": "t = torch.from_numpy(arr).float()\nt += 1",
    "F": "t = torch.from_numpy(arr).double()\nt += 1",
}
_WHY = {
    "A": "torch.from_numpy shares arr's memory and += writes into it, in place",
    "B": "torch.tensor always copies: t has memory of its own",
    "C": "t + 1 computes a new tensor; t = … only gives the name t to it",
    "D": "torch.as_tensor shares memory when it can (same dtype, on the CPU), and t[0] = 5 writes into it",
    "E": "arr is float64 (NumPy's default): .float() converts to float32, which needs new memory — a copy",
    "F": "arr is already float64, so .double() converts nothing and returns the same tensor: still shared",
}


def bridge_changes() -> set[str]:
    """The letters of the snippets that change ``arr``, found by running each on a fresh array."""
    import numpy as np

    changed = set()
    for letter, snippet in BRIDGE_SNIPPETS.items():
        scope = {"torch": torch, "arr": np.zeros(3)}
        exec(snippet, scope)
        if scope["arr"].any():
            changed.add(letter)
    return changed


def _ask_bridge(namespace: dict, sent: dict) -> dict:
    changes = lookup(namespace, "changes")
    if isinstance(changes, str):
        changes = [letter for letter in changes if letter.isalpha()]
    if isinstance(changes, set | frozenset | list | tuple):
        return {"changes": sorted(str(letter) for letter in changes)}
    return {"changes": changes}


def _judge_bridge(i: dict, a: dict) -> str:
    changes = value(a, "changes")
    need(
        isinstance(changes, list),
        f'changes should be a set of letters, such as {{"A", "B"}}, got {kind(changes)}',
        COUNT_FOR_LETTERS if isinstance(changes, int | float) else None,
    )
    kinds = ", ".join(sorted({kind(letter) for letter in changes}))
    need(
        all(isinstance(letter, str) for letter in changes),
        f'changes should be a set of letters, such as {{"A", "B"}}, got {kinds}',
    )
    said = {letter.strip().upper() for letter in changes}
    unknown = sorted(said - set(BRIDGE_SNIPPETS))
    need(not unknown, f"changes holds {', '.join(map(repr, unknown))}: the snippets are A to F")
    truth = bridge_changes()
    mistakes = [
        f"{letter} {'does' if letter in truth else 'does not'} change arr ({_WHY[letter]})"
        for letter in sorted(said ^ truth)
    ]
    need(
        not mistakes,
        f"changes is {{{', '.join(sorted(said)) or ''}}}: {len(mistakes)} of 6 wrong — "
        + "; ".join(mistakes),
        BRIDGE_MISCONCEPTIONS[min(said ^ truth)] if mistakes else None,
    )
    return f"changes: {', '.join(sorted(truth))}, the snippets that write into memory shared with arr"


numpy_bridge = Check(
    "test_numpy_bridge",
    after="numpy_bridge",
    judge=_judge_bridge,
    ask=_ask_bridge,
    given=lambda ns: Inputs(),
    hidden=lambda g: Inputs(),
)

CHECKS = [broadcast_shapes, neuron_sum, neuron_mm, two_layer, numpy_bridge]
