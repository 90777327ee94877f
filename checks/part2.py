"""Part 2 — Neural networks: the checks of ``02_neural_networks.ipynb``.

The learner's functions and networks are applied to inputs of the check's own (in the notebook: seeded; at
grading: drawn by the grader); the judge recomputes every expected value from the parameters the learner's
network holds, so a network passes only if it computes what the exercise asks for.
"""

from __future__ import annotations

from itertools import pairwise

import torch

from checks.core import (
    Check,
    Inputs,
    Misconception,
    Raised,
    attempt,
    cpu,
    expect_close,
    expect_shape,
    fail,
    is_close,
    kind,
    lookup,
    need,
    pick,
    state_of,
    tensor,
    value,
)
from checks.kernel import hint as hint  # check.hint(): the next hint after a failed check

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
    "invisible to parameters(), .to(device) and optimizers. nn.ModuleList or nn.Sequential register them.",
    "self.layers = nn.ModuleList(nn.Linear(n_in, n_out) for n_in, n_out in pairwise(...))",
    "layer",
)
FIXED_SIZES = Misconception(
    "fixed-layer-sizes",
    "the layer sizes written in instead of built from hidden_sizes",
    2,
    "Exercise 3 — a network of any depth",
    "The sizes are an argument: the layers are 784 → each of hidden_sizes → 10, so one nn.Linear per pair of "
    "neighbouring sizes, whatever the list holds.",
    "sizes = [784, *hidden_sizes, 10]\nself.layers = nn.ModuleList(nn.Linear(a, b) for a, b in "
    "pairwise(...))",
    "layer",
)
NO_NONLINEARITY = Misconception(
    "linear-layers-without-activation",
    "Linear layers stacked without an activation between them",
    2,
    "Why an activation function?",
    "Linear layers composed are one Linear layer: without ReLU between them, depth adds nothing. Apply the "
    "activation after every layer but the last.",
    "for layer in self.layers[:-1]:\n    x = torch.relu(layer(x))\nreturn self.layers[-1](x)",
    "activation-function",
)
SOFTMAX_IN_FORWARD = Misconception(
    "probabilities-from-forward",
    "forward returning probabilities instead of the scores",
    2,
    "Building networks with `nn.Module`",
    "The network's last layer gives scores (logits); the softmax comes afterwards, where probabilities are "
    "needed (the loss applies its own).",
    "def forward(self, x):\n    ...\n    return self.layers[-1](x)  # scores, no softmax",
    "logit",
)
RELU_ON_SCORES = Misconception(
    "activation-after-the-last-layer",
    "a ReLU after the last layer too, which zeroes every negative score",
    2,
    "Building networks with `nn.Module`",
    "Scores may be negative: the last layer's output goes out as it is, ReLU only between layers.",
    "for layer in self.layers[:-1]:\n    x = torch.relu(layer(x))\nreturn self.layers[-1](...)",
    "logit",
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


# ------------------------------------------------------------------------------------------ raw forward
def _judge_raw_forward(i: dict, a: dict) -> str:
    inputs = tensor(a, "inputs")
    hint = "flatten each image: images.view(images.shape[0], -1)"
    expect_shape(inputs, (64, 784), "inputs", hint=hint, like=[((64, 1, 28, 28), UNFLATTENED)])
    expect_close(inputs, i["images"].reshape(64, -1), "inputs", hint="flatten each image, in order")
    W1, W2 = tensor(a, "W1"), tensor(a, "W2")
    expect_shape(W1, (784, 256), "W1")
    expect_shape(W2, (256, 10), "W2")
    b1, b2 = tensor(a, "b1"), tensor(a, "b2")
    expect_shape(b1, (256,), "b1")
    expect_shape(b2, (10,), "b2")
    out = tensor(a, "out")
    expect_shape(out, (64, 10), "out", hint="did you flatten the images and multiply by both W1 and W2?")
    expected = torch.sigmoid(inputs @ W1 + b1) @ W2 + b2
    hint = "sigmoid on the hidden layer only; the output layer has no activation"
    like = [(torch.sigmoid(expected), SQUASHED_SCORES)]
    expect_close(out, expected, "out", atol=1e-3, hint=hint, like=like)
    return "forward pass: out = sigmoid(inputs @ W1 + b1) @ W2 + b2, shape (64, 10)"


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


def _ask_softmax(namespace: dict, sent: dict) -> dict:
    softmax = lookup(namespace, "softmax")
    if isinstance(softmax, Raised) or not callable(softmax):
        return {
            "softmax(scores)": softmax if isinstance(softmax, Raised) else Raised("softmax is not a function")
        }
    return {
        "softmax(scores)": attempt(softmax, sent["scores"]),
        "softmax(big)": attempt(softmax, sent["big"]),
        "library": _library_softmax(softmax, sent["scores"]),
    }


def _library_softmax(softmax, scores: torch.Tensor) -> list[str]:
    """PyTorch's own softmax operations in the autograd graph of ``softmax(scores)``: a call of
    torch.softmax, F.softmax, Tensor.softmax, nn.Softmax or log_softmax leaves its backward node there
    (``SoftmaxBackward0``), however it was imported or renamed. A formula of exp and sum leaves none."""
    out = attempt(softmax, scores.detach().clone().requires_grad_())
    found, todo, seen = set(), [getattr(out, "grad_fn", None)], set()
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if "Softmax" in node.name():
            found.add(node.name())
        todo += [parent for parent, _ in node.next_functions]
    return sorted(found)


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
    expect_shape(ps, (64, 10), "softmax(scores)", hint="softmax keeps the input's shape")
    hint = "divide by the sum over dim=1 (each example's scores), with keepdim=True"
    expect_close(
        ps.sum(dim=1), torch.ones(64), "the sum of each row", hint=hint, misconception=SOFTMAX_WRONG_DIM
    )
    expect_close(ps, torch.softmax(i["scores"], dim=1), "softmax(scores)")
    big = value(a, "softmax(big)")
    need(isinstance(big, torch.Tensor), f"softmax of large scores gave {kind(big)}, expected a tensor")
    need(
        bool(torch.isfinite(big).all()),
        f"softmax of large scores gave {big.tolist()} — subtract each row's maximum first",
        SOFTMAX_OVERFLOW,
    )
    expect_close(big, torch.softmax(i["big"], dim=1), "softmax of large scores")
    library = value(a, "library")
    named = ", ".join(library) if isinstance(library, list) else library
    need(
        not library,
        f"softmax calls PyTorch's own softmax ({named} in its autograd graph): the right values, but the "
        "exercise asks for the formula — torch.exp of the scores divided by their torch.sum over each row",
        LIBRARY_SOFTMAX,
    )
    return (
        "softmax: rows of probabilities that sum to 1, equal to torch.softmax, finite for large scores, and "
        "no call of PyTorch's softmax in its autograd graph"
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
)


# ------------------------------------------------------------------------------------------ Network
def _network_inputs(g: torch.Generator) -> Inputs:
    """Three architectures (two hidden layers, one, none) and the inputs to apply them to."""
    widths = torch.randint(8, 100, (3,), generator=g).tolist()
    return Inputs(
        {
            "sizes": [widths[:2], widths[2:], []],
            "x": torch.randn(64, 784, generator=g),
            "a": torch.randn(64, 784, generator=g),
            "b": torch.randn(64, 784, generator=g),
        }
    )


def _ask_network(namespace: dict, sent: dict) -> dict:
    """For each list of hidden sizes: the Linear layers the network registered (in order), whether it keeps
    modules in a plain list, its scores, and two probes of linearity."""
    from torch import nn

    network_class = lookup(namespace, "Network")
    if isinstance(network_class, Raised):
        return {"$problem": network_class}
    built, a, b = [], sent["a"], sent["b"]
    for sizes in sent["sizes"]:
        net = attempt(network_class, list(sizes))
        if isinstance(net, Raised):
            built.append({"$raised": Raised(f"Network({sizes}) raised {net.message}")})
            continue
        if not isinstance(net, nn.Module):
            built.append({"$raised": Raised(f"Network({sizes}) is not an nn.Module")})
            continue
        plain = any(  # modules kept where nn.Module does not look (its own registry is _modules)
            any(isinstance(m, nn.Module) for m in (v.values() if isinstance(v, dict) else v))
            for name, v in vars(net).items()
            if name != "_modules" and isinstance(v, list | tuple | dict)
        )
        linear = [m for m in net.modules() if isinstance(m, nn.Linear)]
        with torch.no_grad():
            built.append(
                {
                    "layers": [{"weight": cpu(m.weight), "bias": cpu(m.bias)} for m in linear],
                    "plain list": plain,
                    "out": cpu(attempt(net, sent["x"])),
                    "net(a) + net(b)": cpu(attempt(lambda net=net: net(a) + net(b))),
                    "net(a + b) + net(0)": cpu(
                        attempt(lambda net=net: net(a + b) + net(torch.zeros_like(a)))
                    ),
                }
            )
    return {"built": built}


def _arrows(shapes: list) -> str:
    return " → ".join(str(n) for n in [shapes[0][1], *(s[0] for s in shapes)]) if shapes else "no layers"


def _judge_network(i: dict, a: dict) -> str:
    built = value(a, "built")
    for sizes, net in zip(i["sizes"], built, strict=True):
        label = f"Network({sizes})"
        if isinstance(net.get("$raised"), Raised):
            fail(net["$raised"].message)
        layers = value(net, "layers", label)
        if not layers:
            need(
                not net["plain list"],
                f"{label} keeps its layers in a plain Python list: PyTorch does not see into it, so the "
                "network has no parameters (model.parameters() is empty, an optimizer would train nothing) — "
                "keep them in an nn.ModuleList or an nn.Sequential",
                PLAIN_LIST,
            )
            fail(f"{label} has no nn.Linear layers")
        shapes = [tuple(layer["weight"].shape) for layer in layers]
        want = [784, *sizes, 10]
        expected = [(n_out, n_in) for n_in, n_out in pairwise(want)]
        need(
            shapes == expected,
            f"{label} should be {' → '.join(map(str, want))}, got {_arrows(shapes)}"
            + " — an nn.Linear(n_in, n_out) for each pair of neighbouring sizes, built from hidden_sizes",
            FIXED_SIZES,
        )
        if any(not isinstance(layer["bias"], torch.Tensor) for layer in layers):
            fail("the layers should have biases: nn.Linear(in_features, out_features)")
        scores = tensor(net, "out", f"{label}(x)")
        expect_shape(scores, (64, 10), f"{label}(x)")
        if sizes:
            sums, linear = tensor(net, "net(a) + net(b)"), tensor(net, "net(a + b) + net(0)")
            need(
                not is_close(sums, linear, atol=1e-4, rtol=0),
                f"{label} is linear: apply ReLU after every layer except the last",
                NO_NONLINEARITY,
            )
        need(
            not is_close(scores.sum(dim=1), torch.ones(64), atol=1e-3, rtol=0),
            "forward returns probabilities: return the scores of the last layer, the softmax comes "
            "afterwards",
            SOFTMAX_IN_FORWARD,
        )
        x = i["x"]
        for k, layer in enumerate(layers):
            x = x @ layer["weight"].T + layer["bias"]
            if k < len(layers) - 1:
                x = torch.relu(x)
        hint = "a Linear layer for each pair of sizes, ReLU after each but the last, nothing after the last"
        like = [(torch.relu(x), RELU_ON_SCORES)]
        expect_close(scores, x, f"{label}(x)", atol=1e-4, hint=hint, like=like)
    shown = ", ".join(f"Network({sizes})" for sizes in i["sizes"])
    return f"{shown}: 784 → hidden sizes → 10, ReLU between the layers, scores out, every layer registered"


network_class = Check(
    "test_network_class",
    after="network_class",
    judge=_judge_network,
    ask=_ask_network,
    given=lambda ns: Inputs(
        {**_network_inputs(torch.Generator().manual_seed(0)).sent, "sizes": [[128, 64], [32], []]}
    ),
    hidden=_network_inputs,
)


# ------------------------------------------------------------------------------------------ Sequential
_KINDS = ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
_NAMES = ["fc1", "relu1", "fc2", "relu2", "output"]


def _describe(net: object, x: torch.Tensor) -> dict:
    if isinstance(net, Raised):
        return {"$raised": net}
    from torch import nn

    children = list(net.named_children()) if isinstance(net, nn.Module) else []
    with torch.no_grad():
        return {
            "is Sequential": isinstance(net, nn.Sequential),
            "type": type(net).__name__,
            "kinds": [type(layer).__name__ for _, layer in children],
            "names": [name for name, _ in children],
            "state": state_of(net),
            "out": cpu(attempt(net, x)),
        }


def _ask_sequential(namespace: dict, sent: dict) -> dict:
    return {label: _describe(lookup(namespace, label), sent["x"]) for label in ("seq_model", "named_model")}


def _judge_sequential(i: dict, a: dict) -> str:
    for label in ("seq_model", "named_model"):
        net = value(a, label)
        if isinstance(net.get("$raised"), Raised):
            fail(f"{label}: {net['$raised'].message}")
        need(net["is Sequential"], f"{label} should be an nn.Sequential, got {net['type']}")
        need(
            net["kinds"] == _KINDS,
            f"{label}: expected layers {', '.join(_KINDS)}, got {', '.join(net['kinds']) or 'none'}",
            SEQUENTIAL_WITHOUT_RELU if "ReLU" not in net["kinds"] else None,
        )
        out = value(net, "out", f"{label}(x)")
        expect_shape(out, (3, 10), f"{label}(x)")
        if label == "named_model":
            need(
                net["names"] == _NAMES,
                f"named_model's layers should be named {', '.join(_NAMES)}, got {net['names']}",
                UNNAMED_LAYERS if all(n.isdigit() for n in net["names"]) else None,
            )
        names = net["names"]
        weights = value(net, "state", label)
        x = i["x"]
        for index in (0, 2, 4):
            layer = names[index]
            x = x @ weights[f"{layer}.weight"].T + weights[f"{layer}.bias"]
            if index < 4:
                x = torch.relu(x)
        expect_close(out, x, f"{label}(x)", atol=1e-4)
    return (
        "seq_model and named_model: Linear, ReLU, Linear, ReLU, Linear, named fc1, relu1, fc2, relu2, output"
    )


sequential = Check(
    "test_sequential",
    after="sequential",
    judge=_judge_sequential,
    ask=_ask_sequential,
    given=lambda ns: Inputs({"x": torch.randn(3, 784, generator=torch.Generator().manual_seed(0))}),
    hidden=lambda g: Inputs({"x": torch.randn(3, 784, generator=g)}),
)

CHECKS = [raw_forward, softmax, network_class, sequential]
