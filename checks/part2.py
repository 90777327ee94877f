"""Part 2 — Neural networks: the checks of ``02_neural_networks.ipynb``.

The learner's functions and networks are applied to inputs of the check's own (in the notebook: seeded; at
grading: drawn by the grader). A network is judged on weights of the check's own too: the kernel loads them
into the learner's ``nn.Linear`` layers (matched by shape, in the order the network registers them) and sends
back the scores on the check's inputs (and how many times each layer ran, which only names a wrong answer's
misconception); the judge computes the expected scores from its own copy of the weights, so a network passes
only if its ``forward`` computes what the exercise asks for. The softmax rule
(no PyTorch softmax) is decided by the judge too, from data: the answer cell's source, which it parses, and
the names of the operations PyTorch ran while the learner's ``softmax`` computed.

Every answer's type, shape and dtype (and every entry of a network's description) is checked before a judge
computes with it, so an answer of any shape fails with what was expected and what was given. At grading no
message, passed or failed, names what the grader drew: values computed on hidden inputs are not shown.
"""

from __future__ import annotations

import ast
import copy
import linecache
from itertools import pairwise

import torch

from checks.core import (
    Check,
    Inputs,
    Like,
    Misconception,
    attempt,
    cpu,
    expect_close,
    expect_shape,
    fail,
    hidden,
    is_close,
    kind,
    lookup,
    need,
    parse_cell,
    pick,
    value,
)
from checks.kernel import hint as hint  # check.hint(): the next hint after a failed check
from checks.wire import Raised

# ------------------------------------------------------------------------------------------ misconceptions
UNFLATTENED = Misconception(
    "images-not-flattened",
    "a batch of images used as it comes, unflattened",
    2,
    "A forward pass with raw tensors",
    "A layer of weights multiplies vectors: each (1, 28, 28) image must become one row of 784 numbers, so "
    "the batch (64, 1, 28, 28) becomes (64, 784).",
    "inputs = images.view(images.shape[0], ...)",
    "shape",
)
SQUASHED_SCORES = Misconception(
    "activation-on-the-scores",
    "an activation on the output layer, whose scores go to softmax as they are",
    2,
    "A forward pass with raw tensors",
    "The hidden layer has the activation; the output layer gives raw scores (logits), which softmax or the "
    "loss turns into probabilities.",
    "h = torch.sigmoid(inputs @ W1 + b1)\nout = h @ W2 + ...",
    "logit",
)
SOFTMAX_WRONG_DIM = Misconception(
    "softmax-wrong-dim",
    "the softmax normalised over the batch instead of each example's classes",
    2,
    "Softmax",
    "Each row is one example: its 10 probabilities must sum to 1, so the sum runs over dim=1 (the classes), "
    "not dim=0 (the batch).",
    "def softmax(x):\n    return torch.exp(x) / torch.sum(torch.exp(x), dim=..., keepdim=True)",
    "softmax",
)
NO_KEEPDIM = Misconception(
    "sum-without-keepdim",
    "a sum over the rows that drops its dimension, so it cannot divide each row",
    2,
    "Softmax",
    "x.sum(dim=1) has shape (64,), which broadcasts against (64, 10) along the wrong axis; keepdim=True "
    "keeps it (64, 1), one sum per row.",
    "def softmax(x):\n    return torch.exp(x) / torch.sum(torch.exp(x), dim=1, keepdim=...)",
    "softmax",
)
SOFTMAX_OVERFLOW = Misconception(
    "softmax-overflow",
    "exp taken of large scores as they are, which overflows to inf",
    2,
    "Softmax",
    "exp(1000) is inf in float32; softmax(x) = softmax(x − c) for any c, so subtract each row's maximum "
    "first and the largest exponent is exp(0) = 1.",
    "def softmax(x):\n    x = x - x.max(dim=1, keepdim=True).values\n    return ...",
    "softmax",
)
LIBRARY_SOFTMAX = Misconception(
    "library-for-formula",
    "PyTorch's own softmax taken for the formula the exercise asks you to write",
    2,
    "Exercise 2 — write `softmax`",
    "The exercise is the formula itself: torch.exp of the scores, divided by their sum over each row — no "
    "torch.softmax, F.softmax or nn.Softmax.",
    "def softmax(x):\n    e = torch.exp(x - x.max(dim=1, keepdim=True).values)\n    return e / ...",
    "softmax",
)
PLAIN_LIST = Misconception(
    "plain-list-of-layers",
    "a plain Python list taken to register its layers with the module",
    2,
    "Building networks with `nn.Module`",
    "nn.Module finds parameters in attributes that are modules; a Python list is not one, so its layers are "
    "invisible to parameters(), .to(device) and optimizers. Assign each layer to self, or keep them in an "
    "nn.ModuleList or an nn.Sequential.",
    "self.fc1 = nn.Linear(784, 128)\nself.fc2 = nn.Linear(...)\nself.output = nn.Linear(...)",
    "layer",
)
NO_NONLINEARITY = Misconception(
    "linear-layers-without-activation",
    "Linear layers stacked without an activation between them",
    2,
    "Why an activation function?",
    "Linear layers composed are one Linear layer: without ReLU between them, depth adds nothing. Apply the "
    "activation after every layer but the last.",
    "x = F.relu(self.fc1(x))\nx = F.relu(...)\nreturn self.output(x)",
    "activation-function",
)
SOFTMAX_IN_FORWARD = Misconception(
    "probabilities-from-forward",
    "forward returning probabilities instead of the scores",
    2,
    "Building networks with `nn.Module`",
    "The network's last layer gives scores (logits); the softmax comes afterwards, where probabilities are "
    "needed (the loss applies its own).",
    "def forward(self, x):\n    ...\n    return self.output(x)  # scores, no softmax",
    "logit",
)
RELU_ON_SCORES = Misconception(
    "activation-after-the-last-layer",
    "a ReLU after the last layer too, which zeroes every negative score",
    2,
    "Building networks with `nn.Module`",
    "Scores may be negative: the last layer's output goes out as it is, ReLU only between layers.",
    "x = F.relu(self.fc1(x))\nx = F.relu(self.fc2(x))\nreturn ...",
    "logit",
)
SIGMOID_FOR_RELU = Misconception(
    "sigmoid-for-relu",
    "the sigmoid of the worked example kept where ReLU was asked for",
    2,
    "Building networks with `nn.Module`",
    "Each activation bends the numbers its own way: sigmoid squashes them into (0, 1), ReLU keeps the "
    "positive ones and zeroes the rest. Exercise 3's network uses ReLU, as most networks today do.",
    "x = F.relu(self.fc1(x))  # or an nn.ReLU() module\nx = ...\nreturn self.output(x)",
    "activation-function",
)
SUPER_INIT_FORGOTTEN = Misconception(
    "super-init-forgotten",
    "a network's __init__ that skips nn.Module's own, super().__init__()",
    2,
    "Building networks with `nn.Module`",
    "nn.Module sets up the registry its layers go into in its own __init__: a network's __init__ calls "
    "super().__init__() before it assigns any layer to self.",
    "def __init__(self):\n    super().__init__()  # first\n    self.fc1 = nn.Linear(...)",
    "layer",
)
EXTRA_WEIGHTS = Misconception(
    "weights-besides-the-layers",
    "a weight of the network's own added besides the nn.Linear layers asked for",
    2,
    "Exercise 3 — your first network class",
    "The network asked for is its three nn.Linear layers and ReLU between them: every weight it has is one "
    "of those layers' weight or bias.",
    "self.fc1 = nn.Linear(784, 128)\nself.fc2 = ...\nself.output = ...  # and nothing else",
    "weight",
)
NO_RETURN = Misconception(
    "forward-without-return",
    "forward's scores computed but not returned",
    2,
    "Building networks with `nn.Module`",
    "Calling the network, model(x), gives what forward returns: a function without return gives None.",
    "def forward(self, x):\n    ...\n    return self.output(x)",
    "layer",
)
LAYER_CALLED_TWICE = Misconception(
    "layer-called-twice",
    "one nn.Linear called twice in forward, where each layer runs once",
    2,
    "Building networks with `nn.Module`",
    "Each nn.Linear holds its own weights and runs once, in order: 784 → 128 is one layer, 128 → 64 another, "
    "64 → 10 a third. A layer called again gets the wrong number of inputs, or repeats its weights.",
    "x = F.relu(self.fc1(x))\nx = F.relu(self.fc2(x))\nreturn self....(x)",
    "layer",
)
SEQUENTIAL_WITHOUT_RELU = Misconception(
    "sequential-without-activation",
    "an nn.Sequential of Linear layers without the ReLU modules between them",
    2,
    "`nn.Sequential`",
    "nn.Sequential runs exactly the modules it holds, in order: the activations are modules too (nn.ReLU()), "
    "one between each pair of Linear layers.",
    "nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), ..., nn.Linear(64, 10))",
    "activation-function",
)
UNNAMED_LAYERS = Misconception(
    "sequential-names",
    "nn.Sequential given its layers as arguments where names were asked for",
    2,
    "`nn.Sequential`",
    "Layers passed as arguments are named 0, 1, 2, …; an OrderedDict of (name, module) pairs names them.",
    'nn.Sequential(OrderedDict([("fc1", nn.Linear(784, 128)), ("relu1", nn.ReLU()), ...]))',
    "layer",
)

WEIGHTS_NOT_RANDOM = Misconception(
    "weights-not-random",
    "weights set by hand (zeros, ones) where random ones were asked for",
    2,
    "A forward pass with raw tensors",
    "A network's weights start random: with all-zero weights every hidden unit computes the same value and "
    "the scores no longer depend on the image. torch.randn(rows, columns) draws each weight from the "
    "standard normal distribution (mean 0, standard deviation 1).",
    "W1 = torch.randn(784, 256)\nb1 = torch.randn(...)",
    "weight",
)
LAYERS_UNUSED = Misconception(
    "forward-ignores-layers",
    "a forward pass that does not compute with the layers made in __init__",
    2,
    "Building networks with `nn.Module`",
    "The layers made in __init__ hold the network's weights, the ones an optimizer trains: forward must pass "
    "x through each of them (self.fc1…), not through new layers or values of its own.",
    "def forward(self, x):\n    x = F.relu(self.fc1(x))\n    ...",
    "layer",
)
WRONG_WIDTHS = Misconception(
    "layer-widths",
    "the layer widths of another network than the one asked for",
    2,
    "Exercise 3 — your first network class",
    "Exercises 3 and 4 build the same network: 784 inputs, hidden layers of 128 and 64 units, 10 scores. "
    "Each nn.Linear(n_in, n_out) takes the previous layer's n_out as its n_in.",
    "nn.Linear(784, ...), nn.Linear(..., 64), nn.Linear(64, 10)",
    "layer",
)


# ------------------------------------------------------------------------------------------ raw forward
def _expect_randn(t: torch.Tensor, name: str) -> None:
    """``t`` holds draws of torch.randn: mean about 0 and standard deviation about 1, within bounds that a
    true draw of its size misses about once in a million (zeros, ones or other hand-picked values never pass,
    and with them a forward pass that weights of 0 would make trivial)."""
    values = t.detach().double().flatten()
    n = values.numel()
    mean, std = (values.mean().item(), values.std().item()) if n > 1 else (float("nan"), float("nan"))
    spread = (2 * n) ** -0.5  # about the standard deviation of the standard deviation of n draws
    need(
        abs(mean) <= 6 * n**-0.5 and max(0.25, 1 - 5 * spread) <= std <= 1 + 6 * spread,
        f"{name} should hold torch.randn's random draws (mean 0, standard deviation 1): its values have mean "
        f"{mean:.3g} and standard deviation {std:.3g}",
        WEIGHTS_NOT_RANDOM,
    )


def _floats(
    answers: dict,
    name: str,
    shape: tuple[int, ...],
    label: str | None = None,
    hint: str = "",
    like: Like = (),
) -> torch.Tensor:
    """The answer ``name``: a tensor of ``shape`` that holds floating-point numbers; otherwise a failure that
    says what was expected and what was given (checked before anything is computed from it)."""
    label = label or name
    got = value(answers, name, label)
    expect_shape(got, shape, label, hint=hint, like=like)
    need(isinstance(got, torch.Tensor), f"{label}: expected a tensor of shape {shape}, got {kind(got)}")
    need(
        got.is_floating_point(),
        f"{label}: expected a tensor of floating-point numbers (torch.float32), got {got.dtype}",
    )
    return got


def _judge_raw_forward(i: dict, a: dict) -> str:
    hint = "flatten each image: images.view(images.shape[0], -1)"
    inputs = _floats(a, "inputs", (64, 784), hint=hint, like=[((64, 1, 28, 28), UNFLATTENED)])
    expect_close(inputs, i["images"].reshape(64, -1), "inputs", hint="flatten each image, in order")
    W1, W2 = _floats(a, "W1", (784, 256)), _floats(a, "W2", (256, 10))
    b1, b2 = _floats(a, "b1", (256,)), _floats(a, "b2", (10,))
    for name, t in (("W1", W1), ("b1", b1), ("W2", W2), ("b2", b2)):
        _expect_randn(t, name)
    out = _floats(a, "out", (64, 10), hint="did you flatten the images and multiply by both W1 and W2?")
    # in float32 whatever floating-point type each answer has (float16 and float64 do not multiply together)
    inputs, W1, b1, W2, b2 = (t.float() for t in (inputs, W1, b1, W2, b2))
    expected = torch.sigmoid(inputs @ W1 + b1) @ W2 + b2
    hint = "sigmoid on the hidden layer only; the output layer has no activation"
    like = [(torch.sigmoid(expected), SQUASHED_SCORES)]
    expect_close(out, expected, "out", atol=1e-3, hint=hint, like=like)
    return "forward pass: out = sigmoid(inputs @ W1 + b1) @ W2 + b2, shape (64, 10), random weights"


raw_forward = Check(
    "test_raw_forward",
    after="raw_forward",
    judge=_judge_raw_forward,
    ask=lambda ns, sent: {n: lookup(ns, n) for n in ("inputs", "W1", "b1", "W2", "b2", "out")},
    given=lambda ns: Inputs({"images": pick(ns, "images")["images"]}),
    hidden=lambda g: Inputs({"images": torch.randn(64, 1, 28, 28, generator=g).clamp(-1, 1)}),
    rerun=True,
)


# ------------------------------------------------------------------------------------------ softmax
_BIG = torch.tensor([[1000.0, 0.0], [0.0, 1000.0]])
# What PyTorch calls its softmax, wherever it lives: torch.softmax, F.softmax, Tensor.softmax, nn.Softmax,
# torch.special.softmax, their log_ and softmin relatives, the aten operators.
_LIBRARY = frozenset(
    {"softmax", "log_softmax", "Softmax", "LogSoftmax", "softmin", "Softmin", "_softmax", "_log_softmax"}
)
_LOOKUPS = frozenset({"getattr", "attrgetter", "__getattribute__", "__getattr__"})
_MAX_SOURCE = 200_000


def _ask_softmax(namespace: dict, sent: dict) -> dict:
    softmax = lookup(namespace, "softmax")
    if isinstance(softmax, Raised) or not callable(softmax):
        return {
            "softmax(scores)": softmax if isinstance(softmax, Raised) else Raised("softmax is not a function")
        }
    return {
        "softmax(scores)": attempt(softmax, sent["scores"]),
        "softmax(big)": attempt(softmax, sent["big"]),
        "operations": attempt(_operations, softmax, sent["scores"]),
        "source": {"definition": _definition_source(softmax)},
    }


def _operations(function, x: torch.Tensor) -> list[str]:
    """The names of the operators PyTorch ran while ``function(x)`` computed (``aten.exp.default``, …): every
    call of torch reaches its dispatcher, whatever name it was called by, on a detached tensor or under
    no_grad too. Only the names are sent; the judge decides what they show."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Watch(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.names: set[str] = set()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.names.add(str(func))
            return func(*args, **(kwargs or {}))

    watch = Watch()
    with watch:
        function(x.clone())
    return sorted(watch.names)


def _definition_source(function: object) -> str | None:
    """The source of the notebook cell that defined ``function`` (IPython keeps each cell's source for its
    tracebacks), or None (a function of a module, or run from a string)."""
    code = getattr(function, "__code__", None)
    if getattr(function, "__module__", None) != "__main__" or code is None:
        return None
    lines = linecache.getlines(code.co_filename)
    return "".join(lines)[:_MAX_SOURCE] or None


def _library_calls(source: str) -> list[str]:
    """Where the cell's ``softmax`` (its ``def``, or what the cell assigns or imports to the name) names
    PyTorch's softmax: an attribute (``torch.softmax``, ``F.log_softmax``, ``x.softmax``, ``nn.Softmax``, also
    under ``import … as``), a name the cell imported or assigned it to (``from torch.nn.functional import
    softmax as f``, ``f = torch.softmax``), a name looked up by a literal string (``getattr(torch,
    "softmax")``, ``vars(F)["softmax"]``): each as "what on line N". The rest of the cell may use the library
    (to compare, say). A name built at run time, or a helper defined elsewhere, escapes it; the operations
    PyTorch ran do not."""
    tree = parse_cell(source)
    need(tree is not None, "the check could not read the cell that defines softmax as Python")
    aliases, found = set(), []
    for node in ast.walk(tree):  # the names the cell binds to PyTorch's softmax
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name in _LIBRARY:
                    aliases.add(alias.asname or alias.name)
                    if (alias.asname or alias.name) == "softmax":  # the cell's softmax is the library's
                        found.append(f"from {node.module} import {alias.name} on line {node.lineno}")
        elif isinstance(node, ast.Assign) and _is_library(node.value, aliases):
            aliases |= {target.id for target in node.targets if isinstance(target, ast.Name)}
    for node in ast.walk(tree):  # what the cell's softmax is made of
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "softmax":
            found += _library_uses(node, aliases)
        elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "softmax" for t in targets):
                found += _library_uses(node.value, aliases)
    return list(dict.fromkeys(found))


def _is_library(value: ast.expr, aliases: set[str]) -> bool:
    """Whether ``value`` is PyTorch's softmax itself (``F.softmax``, ``nn.Softmax(dim=1)``,
    ``partial(torch.softmax, dim=1)``, another name for it), not merely an expression that uses it."""
    if isinstance(value, ast.Attribute):
        return value.attr in _LIBRARY
    if isinstance(value, ast.Name):
        return value.id in aliases
    if isinstance(value, ast.Call):
        return _is_library(value.func, aliases) or any(_is_library(arg, aliases) for arg in value.args)
    return False


def _library_uses(tree: ast.AST, aliases: set[str]) -> list[str]:
    """The places in ``tree`` that name PyTorch's softmax (``aliases``: the cell's own names for it)."""
    found = []
    for node in ast.walk(tree):
        named = (
            (isinstance(node, ast.Attribute) and node.attr in _LIBRARY)
            or (isinstance(node, ast.Name) and node.id in aliases and isinstance(node.ctx, ast.Load))
            or (isinstance(node, ast.ImportFrom) and any(a.name in _LIBRARY for a in node.names))
            or (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", getattr(node.func, "attr", "")) in _LOOKUPS
                and any(isinstance(arg, ast.Constant) and arg.value in _LIBRARY for arg in node.args)
            )
            or (
                isinstance(node, ast.Subscript)
                and isinstance(node.slice, ast.Constant)
                and node.slice.value in _LIBRARY
            )
        )
        if isinstance(node, ast.Name) and named:
            found.append(f"{node.id}, another name for it, on line {node.lineno}")
        elif named:
            found.append(f"{_unparsed(node)} on line {node.lineno}")
    return found


def _unparsed(node: ast.AST) -> str:
    """``node`` as source, cut short (an expression nested too deep to write back: its kind)."""
    try:
        text = ast.unparse(node)
    except (RecursionError, MemoryError, ValueError):
        return type(node).__name__
    return text if len(text) <= 80 else text[:79] + "…"


_FORMULA = (
    "the values are right, but the exercise asks for the formula: torch.exp of the scores divided by their "
    "torch.sum over each row"
)


def _judge_library(a: dict) -> None:
    """The rule of Exercise 2, decided here from data: the answer cell's source and the operations PyTorch
    ran."""
    sources = value(a, "source")
    need(isinstance(sources, dict), f"the source of softmax's cell came back as {kind(sources)}")
    cell = a.get("$source")  # at grading: the answer cell as the grader holds it (grader.verdicts.judge_one)
    need(
        isinstance(cell, str) or not hidden(),
        "the grader has no source of your answer cell: the check cannot tell how softmax computes",
    )
    for where, source in (
        ("your answer cell", cell),
        ("the cell that defines softmax", sources.get("definition")),
    ):
        if isinstance(source, str):
            calls = _library_calls(source)
            need(
                not calls,
                f"{where} calls PyTorch's own softmax ({'; '.join(calls[:3])}): {_FORMULA}",
                LIBRARY_SOFTMAX,
            )
    operations = value(a, "operations", "softmax(scores), watched")
    need(
        isinstance(operations, list) and all(isinstance(op, str) for op in operations),
        f"the operations softmax ran came back as {kind(operations)}",
    )
    library = [op for op in operations if "softmax" in op.lower() or "softmin" in op.lower()]
    need(
        not library,
        f"softmax runs PyTorch's own softmax ({', '.join(library)} ran while it computed): {_FORMULA}",
        LIBRARY_SOFTMAX,
    )


def _judge_softmax(i: dict, a: dict) -> str:
    ps = a.get("softmax(scores)")
    if isinstance(ps, Raised):
        fail(
            f"softmax(scores) of shape (64, 10) raised: {ps.message}"
            + (
                " — sum over dim=1 with keepdim=True, so that the sums have shape (64, 1) and each row is "
                "divided by its own sum"
                if "RuntimeError" in ps.message
                else ""
            ),
            NO_KEEPDIM if "RuntimeError" in ps.message else None,
        )
    ps = _floats(a, "softmax(scores)", (64, 10), hint="softmax keeps the input's shape")
    hint = "divide by the sum over dim=1 (each example's scores), with keepdim=True"
    expect_close(
        ps.sum(dim=1), torch.ones(64), "the sum of each row", hint=hint, misconception=SOFTMAX_WRONG_DIM
    )
    expect_close(ps, torch.softmax(i["scores"], dim=1), "softmax(scores)")
    big = _floats(
        a, "softmax(big)", (2, 2), "softmax of large scores", hint="softmax keeps the input's shape"
    )
    need(
        bool(torch.isfinite(big).all()),
        # its values only in the notebook: at grading the large scores are the grader's
        f"softmax of large scores gave {'NaN or inf' if hidden() else big.tolist()} — subtract each row's "
        "maximum first",
        SOFTMAX_OVERFLOW,
    )
    expect_close(big, torch.softmax(i["big"], dim=1), "softmax of large scores")
    _judge_library(a)
    return (
        "softmax: rows of probabilities that sum to 1, equal to torch.softmax, finite for large scores, "
        "written without PyTorch's softmax"
    )


softmax = Check(
    "test_softmax",
    after="softmax",
    judge=_judge_softmax,
    ask=_ask_softmax,
    given=lambda ns: Inputs(
        {"scores": torch.randn(64, 10, generator=torch.Generator().manual_seed(0)), "big": _BIG}
    ),
    hidden=lambda g: Inputs(
        {"scores": 3 * torch.randn(64, 10, generator=g), "big": _BIG * (1 + torch.rand(1, generator=g))}
    ),
    rerun=True,  # at grading the cell runs again from the grader's copy of its source, which the judge reads
    bind=lambda ns, sent: {},  # with nothing bound: the inputs go to softmax, not to the cell
    nonfinite=("softmax(big)",),  # the judge diagnoses an overflow (SOFTMAX_OVERFLOW) itself
)


# ------------------------------------------------------------------------------------------ check's weights
def _weights(sizes: list[int], g: torch.Generator) -> list[dict]:
    """One nn.Linear's worth of weights for each pair of neighbouring sizes, drawn as nn.Linear draws its own
    (uniform within ±1/√n_in), so that ReLU cuts about half of each hidden layer."""
    return [
        {
            "weight": (2 * torch.rand(n_out, n_in, generator=g) - 1) / n_in**0.5,
            "bias": (2 * torch.rand(n_out, generator=g) - 1) / n_in**0.5,
        }
        for n_in, n_out in pairwise(sizes)
    ]


def _scores(x: torch.Tensor, weights: list[dict], relu: bool = True, activation=torch.relu) -> torch.Tensor:
    """The judge's own forward pass: each layer, ReLU (or ``activation``) after each but the last (none with
    ``relu=False``)."""
    for k, layer in enumerate(weights):
        x = x @ layer["weight"].T + layer["bias"]
        if relu and k < len(weights) - 1:
            x = activation(x)
    return x


def _layers(net: object) -> dict:
    """What the network registered: the shape of each nn.Linear's weight (in the order the network registers
    them) and whether it has a bias."""
    from torch import nn

    linear = [m for m in net.modules() if isinstance(m, nn.Linear)]
    return {
        "shapes": [list(m.weight.shape) for m in linear],
        "biases": [isinstance(m.bias, torch.Tensor) for m in linear],
    }


def _load(net: object, weights: list[dict]) -> None:
    """The check's weights into the network's nn.Linear layers, each into the first layer of its shape not yet
    given one (so in the order the network registers them), with ``load_state_dict(strict=True)``: whatever
    the layers are called, every parameter and buffer of the network must be one of them."""
    from torch import nn

    free = [(name, m) for name, m in net.named_modules() if isinstance(m, nn.Linear)]
    state = {}
    for k, layer in enumerate(weights, 1):
        shape = tuple(layer["weight"].shape)
        match = next((pair for pair in free if tuple(pair[1].weight.shape) == shape), None)
        if match is None:  # its shape unsaid: at grading it would show the grader's hidden sizes
            raise ValueError(
                f"no nn.Linear layer of the shape of the check's layer {k} to load its weights into"
            )
        free.remove(match)
        prefix = f"{match[0]}." if match[0] else ""
        state.update({prefix + "weight": layer["weight"], prefix + "bias": layer["bias"]})
    other = [name for name, _ in net.named_parameters() if name not in state]
    if other:
        raise ValueError(
            f"it holds weights other than its nn.Linear layers' ({', '.join(other[:3])[:120]}): give the "
            "network only the three nn.Linear layers"
        )
    net.load_state_dict(state, strict=True)


def _run(net: object, weights: list[dict], x: torch.Tensor) -> dict:
    """The network's scores on ``x`` with the check's weights loaded, how many times each of its nn.Linear
    layers ran meanwhile (in the order of :func:`_layers`; counted even when forward stops with an error),
    and the scores again with every parameter set to 0 (a network that computes with its layers then gives
    scores of 0)."""
    from torch import nn

    loaded = attempt(_load, net, weights)
    if isinstance(loaded, Raised):
        return {"out": Raised(f"the check's weights could not be loaded into its layers: {loaded.message}")}
    linear = [m for m in net.modules() if isinstance(m, nn.Linear)]
    calls = [0] * len(linear)

    def counter(k: int):
        def count(module, inputs) -> None:
            calls[k] += 1

        return count

    hooks = [layer.register_forward_pre_hook(counter(k)) for k, layer in enumerate(linear)]
    try:
        with torch.no_grad():
            out = cpu(attempt(net, x))
    finally:
        for hook in hooks:
            hook.remove()
    with torch.no_grad():
        zeroed = attempt(lambda: [p.zero_() for p in net.parameters()])
        zero = zeroed if isinstance(zeroed, Raised) else cpu(attempt(net, x))
    return {"out": out, "calls": list(calls), "out, zero weights": zero}


def _expect_scores(net: dict, x: torch.Tensor, weights: list[dict], label: str, like: list) -> None:
    """The network's scores with the check's weights against the judge's own forward pass; scores that are
    none of the typical wrong ones and are not 0 with weights of 0 come from something else than its
    layers."""
    scores = _floats(net, "out", (len(x), 10), f"{label}(x)")
    expected = _scores(x, weights)
    if not is_close(scores, expected, atol=1e-4) and not any(is_close(scores, t, atol=1e-4) for t, _ in like):
        zero = _floats(net, "out, zero weights", (len(x), 10), f"{label}(x) with weights of 0")
        need(
            is_close(zero, torch.zeros(len(x), 10)),
            f"{label}'s forward does not compute with its layers: with every weight and bias set to 0 its "
            "scores are still not 0 — pass x through the nn.Linear layers made in __init__",
            LAYERS_UNUSED,
        )
    hint = "a Linear layer for each pair of sizes, ReLU after each but the last, nothing after the last"
    expect_close(scores, expected, f"{label}(x)", atol=1e-4, hint=hint, like=like)


def _count(n: object) -> bool:
    return isinstance(n, int) and not isinstance(n, bool)


# What the kernel describes of a network (_describe, _ask_network), and what each entry must be before the
# judge uses it: what it is called in a message, and the test.
_ENTRIES = {
    "is Sequential": ("True or False", lambda v: isinstance(v, bool)),
    "type": ("a type's name", lambda v: isinstance(v, str)),
    "kinds": (
        "a list of the types of its layers",
        lambda v: isinstance(v, list) and all(isinstance(k, str) for k in v),
    ),
    "names": (
        "a list of the names of its layers",
        lambda v: isinstance(v, list) and all(isinstance(k, str) for k in v),
    ),
    "shapes": (
        "a list of the [out_features, in_features] of its nn.Linear layers",
        lambda v: (
            isinstance(v, list)
            and all(isinstance(s, list) and len(s) == 2 and all(map(_count, s)) for s in v)
        ),
    ),
    "biases": (
        "a list of True or False",
        lambda v: isinstance(v, list) and all(isinstance(b, bool) for b in v),
    ),
    "plain list": ("True or False", lambda v: isinstance(v, bool)),
    "calls": (
        "a list of how many times each nn.Linear layer ran",
        lambda v: isinstance(v, list) and all(_count(n) and 0 <= n < 2**31 for n in v),
    ),
}


def _entry(net: dict, key: str, label: str) -> object:
    """The entry ``key`` of a network's description, of the type :data:`_ENTRIES` says; else a failure that
    says what came back instead."""
    what, ok = _ENTRIES[key]
    got = value(net, key, f"{label}: {key}")
    need(ok(got), f"{label}: the check expected {key} as {what}, got {_what(got)}")
    return got


def _what(x: object) -> str:
    """What a value is, for a message: its type; a list of plain values as it is (cut short), another list
    as its length and the types it holds."""
    if not isinstance(x, list):
        return kind(x)
    plain = (str, int, float, bool, type(None))
    if len(x) <= 50 and all(
        isinstance(v, plain)
        or (isinstance(v, list) and len(v) <= 50 and all(isinstance(w, plain) for w in v))
        for v in x
    ):
        text = repr(x)
        return text if len(text) <= 200 else text[:199] + "…"
    kinds = sorted({kind(v) for v in x[:1000]})
    return f"a list of {len(x)}" + (f" ({', '.join(kinds[:4])})" if kinds else "")


def _description(got: object, label: str) -> dict:
    """One network's description as the kernel sent it: a dict; fails with what the kernel raised while it
    described the network (``$raised``) or with what came back instead."""
    need(isinstance(got, dict), f"{label}: the check expected a description of the network, got {_what(got)}")
    raised = got.get("$raised")
    if isinstance(raised, Raised):
        forgot = "before Module.__init__() call" in raised.message  # nn.Module's own words for it
        advice = ": call super().__init__() first in __init__"
        need(not forgot, f"{label}: {raised.message}{advice}", SUPER_INIT_FORGOTTEN)
        fail(f"{label}: {raised.message}")
    return got


def _arrows(shapes: list) -> str:
    """The layers of weight shapes ``shapes`` (out_features, in_features): "784 → 128 → 10" when each takes
    the previous one's outputs, else each as nn.Linear(in_features, out_features)."""
    if not shapes:
        return "no layers"
    if all(s[1] == previous[0] for previous, s in pairwise(shapes)):
        return " → ".join(str(n) for n in [shapes[0][1], *(s[0] for s in shapes)])
    return ", ".join(f"nn.Linear({n_in}, {n_out})" for n_out, n_in in shapes)


# ------------------------------------------------------------------------------------------ Network
_WIDTHS = [784, 128, 64, 10]  # Exercise 3's network, and Exercise 4's
_LINEARS = [f"nn.Linear({n_in}, {n_out})" for n_in, n_out in pairwise(_WIDTHS)]


def _fixed_inputs(g: torch.Generator) -> Inputs:
    """The check's weights for 784 → 128 → 64 → 10, and a batch of 64 inputs."""
    return Inputs({"weights": _weights(_WIDTHS, g), "x": torch.randn(64, 784, generator=g)})


def _ask_network(namespace: dict, sent: dict) -> dict:
    """Network(), as the check sees it: the nn.Linear layers it registered, whether it keeps modules in a
    plain list, and its scores with the check's weights loaded (with how many times each layer ran, and the
    scores with weights of 0)."""
    from torch import nn

    network_class = lookup(namespace, "Network")
    if isinstance(network_class, Raised):
        return {"network": {"$raised": network_class}}
    net = attempt(network_class)
    if isinstance(net, Raised):
        return {"network": {"$raised": Raised(f"raised {net.message}")}}
    if not isinstance(net, nn.Module):
        return {"network": {"$raised": Raised(f"is not an nn.Module (got {type(net).__name__})")}}
    plain = any(  # modules kept where nn.Module does not look (its own registry is _modules)
        any(isinstance(m, nn.Module) for m in (v.values() if isinstance(v, dict) else v))
        for name, v in vars(net).items()
        if name != "_modules" and isinstance(v, list | tuple | dict)
    )
    return {"network": {**_layers(net), "plain list": plain, **_run(net, sent["weights"], sent["x"])}}


def _judge_network(i: dict, a: dict) -> str:
    label, x, weights = "Network()", i["x"], i["weights"]
    net = _description(value(a, "network"), label)
    shapes = [tuple(s) for s in _entry(net, "shapes", label)]
    if not shapes:
        need(
            not _entry(net, "plain list", label),
            f"{label} keeps its layers in a plain Python list: PyTorch does not see into it, so the "
            "network has no parameters (model.parameters() is empty, an optimizer would train nothing) — "
            "assign each layer to self, or keep them in an nn.ModuleList or an nn.Sequential",
            PLAIN_LIST,
        )
        fail(f"{label} has no nn.Linear layers: create them in __init__, as attributes of self")
    expected_shapes = [(n_out, n_in) for n_in, n_out in pairwise(_WIDTHS)]
    need(
        sorted(shapes) == sorted(expected_shapes),
        f"{label} should be {' → '.join(map(str, _WIDTHS))}, got {_arrows(shapes)} — {', '.join(_LINEARS)}",
        WRONG_WIDTHS,
    )
    need(
        all(_entry(net, "biases", label)),
        "the layers should have biases: nn.Linear(in_features, out_features)",
    )
    out = net.get("out")
    if "calls" not in net and isinstance(out, Raised):  # the check's weights could not be loaded
        other = "holds weights other than its nn.Linear layers'" in out.message
        need(not other, f"{label}: {out.message}", EXTRA_WEIGHTS)
        fail(f"{label}: {out.message}")
    returned = out is not None
    need(returned, f"{label}(x) gave None: forward must end with return, the last layer's scores", NO_RETURN)
    calls = _entry(net, "calls", label)
    need(len(calls) == len(shapes), f"{label}: expected a count for each of its {len(shapes)} layers")
    ran = {f"nn.Linear({n_in}, {n_out})": n for (n_out, n_in), n in zip(shapes, calls, strict=True)}
    twice = [f"{layer} ran {n} times" for layer, n in ran.items() if n > 1]
    unused = [layer for layer, n in ran.items() if n == 0]
    scores = net.get("out")
    right = (
        isinstance(scores, torch.Tensor)
        and tuple(scores.shape) == (len(x), 10)
        and scores.is_floating_point()
        and is_close(scores, _scores(x, weights), atol=1e-4)
    )
    if not right:  # what went wrong, from how many times each layer ran
        need(
            not twice,
            f"{label}'s forward calls a layer more than once ({'; '.join(twice)}): each nn.Linear runs once, "
            "in order, 784 → 128 → 64 → 10",
            LAYER_CALLED_TWICE,
        )
        need(
            not unused,
            f"{label}'s forward does not compute with its layers: {', '.join(unused)} never ran — pass x "
            "through each nn.Linear made in __init__",
            LAYERS_UNUSED,
        )
    scores = _floats(net, "out", (len(x), 10), f"{label}(x)")
    need(
        not is_close(scores.sum(dim=1), torch.ones(len(scores)), atol=1e-3, rtol=0),
        "forward returns probabilities: return the scores of the last layer, the softmax comes afterwards",
        SOFTMAX_IN_FORWARD,
    )
    need(
        not is_close(scores, _scores(x, weights, relu=False), atol=1e-4),
        f"{label} is linear: apply ReLU after every layer except the last",
        NO_NONLINEARITY,
    )
    like = [
        (torch.relu(_scores(x, weights)), RELU_ON_SCORES),
        (_scores(x, weights, activation=torch.sigmoid), SIGMOID_FOR_RELU),
    ]
    _expect_scores(net, x, weights, label, like=like)
    return (
        f"{label}: 784 → 128 → 64 → 10, every layer registered and run once; with the check's weights "
        "loaded, ReLU between the layers and scores out"
    )


network_class = Check(
    "test_network_class",
    after="network_class",
    judge=_judge_network,
    ask=_ask_network,
    given=lambda ns: _fixed_inputs(torch.Generator().manual_seed(0)),
    hidden=_fixed_inputs,
)


# ------------------------------------------------------------------------------------------ Sequential
_KINDS = ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
_NAMES = ["fc1", "relu1", "fc2", "relu2", "output"]


def _describe(net: object, x: torch.Tensor, weights: list[dict]) -> dict:
    """The learner's model as the check sees it: its kind, its children, its Linear layers, and the scores of
    a copy of it (the notebook's own model is left as it was) with the check's weights loaded."""
    if isinstance(net, Raised):
        return {"$raised": net}
    from torch import nn

    if not isinstance(net, nn.Module):
        return {"is Sequential": False, "type": type(net).__name__}
    children = list(net.named_children())
    copied = attempt(copy.deepcopy, net)
    run = {"out": copied} if isinstance(copied, Raised) else _run(copied, weights, x)
    return {
        "is Sequential": isinstance(net, nn.Sequential),
        "type": type(net).__name__,
        "kinds": [type(layer).__name__ for _, layer in children],
        "names": [name for name, _ in children],
        **_layers(net),
        **run,
    }


def _ask_sequential(namespace: dict, sent: dict) -> dict:
    return {
        label: _describe(lookup(namespace, label), sent["x"], sent["weights"])
        for label in ("seq_model", "named_model")
    }


def _judge_sequential(i: dict, a: dict) -> str:
    want = [(n_out, n_in) for n_in, n_out in pairwise(_WIDTHS)]
    for label in ("seq_model", "named_model"):
        net = _description(value(a, label), label)
        need(
            _entry(net, "is Sequential", label),
            f"{label} should be an nn.Sequential, got {_entry(net, 'type', label)}",
        )
        kinds = _entry(net, "kinds", label)
        need(
            kinds == _KINDS,
            f"{label}: expected layers {', '.join(_KINDS)}, got {', '.join(kinds) or 'none'}",
            SEQUENTIAL_WITHOUT_RELU if "ReLU" not in kinds else None,
        )
        shapes = [tuple(s) for s in _entry(net, "shapes", label)]
        need(
            shapes == want,
            f"{label} should be {' → '.join(map(str, _WIDTHS))}, got {_arrows(shapes)} — Exercise 3's "
            f"Network(): {', '.join(_LINEARS)}",
            WRONG_WIDTHS,
        )
        need(all(_entry(net, "biases", label)), f"{label}: the layers should have biases")
        if label == "named_model":
            names = _entry(net, "names", label)
            need(
                names == _NAMES,
                f"named_model's layers should be named {', '.join(_NAMES)}, got {names}",
                UNNAMED_LAYERS if all(n.isdigit() for n in names) else None,
            )
        _expect_scores(net, i["x"], i["weights"], label, like=[])
    return (
        "seq_model and named_model: 784 → 128 → 64 → 10, Linear, ReLU, Linear, ReLU, Linear, named fc1, "
        "relu1, fc2, relu2, output; with the check's weights loaded, the scores of that network"
    )


sequential = Check(
    "test_sequential",
    after="sequential",
    judge=_judge_sequential,
    ask=_ask_sequential,
    given=lambda ns: Inputs(
        {
            "x": torch.randn(3, 784, generator=torch.Generator().manual_seed(0)),
            "weights": _weights(_WIDTHS, torch.Generator().manual_seed(1)),
        }
    ),
    hidden=lambda g: Inputs({"x": torch.randn(3, 784, generator=g), "weights": _weights(_WIDTHS, g)}),
)

CHECKS = [raw_forward, softmax, network_class, sequential]
