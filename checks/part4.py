"""Part 4 — Fashion-MNIST: the checks of ``04_fashion_mnist.ipynb``.

The network and its training are the learner's design, so the judge tests what they do: log-probabilities
for a batch of images, the same for an image whichever batch it comes in, and at least 87% of the 10,000
validation images of the notebook's split right (at grading in a hidden order, slightly perturbed, the
labels kept by the judge). The test set plays no part in the verdict.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, TensorDataset

from checks import data
from checks.core import (
    Check,
    Inputs,
    Misconception,
    attempt,
    cpu,
    device_of,
    expect_close,
    expect_shape,
    fail,
    is_close,
    lookup,
    need,
    pick,
    tensor,
    value,
)
from checks.kernel import hint as hint  # check.hint(): the next hint after a failed check
from checks.part3 import LOSSES_NOT_RECORDED
from checks.wire import Raised

GOAL = 0.87  # the validation accuracy Exercise 2 asks for

# ------------------------------------------------------------------------------------------ misconceptions
_NETWORK = "Exercise 1 — your network"
NO_LOG_SOFTMAX = Misconception(
    "scores-for-log-probabilities",
    "a network that ends in scores where NLLLoss needs log-probabilities",
    4,
    _NETWORK,
    "This part trains with nn.NLLLoss, which takes log-probabilities: the network ends with "
    "nn.LogSoftmax(dim=1), which turns the last layer's scores into them (all ≤ 0).",
    "model = nn.Sequential(nn.Flatten(), ..., nn.Linear(..., 10), nn.LogSoftmax(dim=...))",
    "softmax",
)
NO_FLATTEN = Misconception(
    "network-without-flatten",
    "a network of Linear layers fed image batches it does not flatten",
    4,
    _NETWORK,
    "nn.Linear(784, …) takes rows of 784 numbers; the loader gives (batch, 1, 28, 28). nn.Flatten() as the "
    "first layer makes each image a row.",
    "model = nn.Sequential(nn.Flatten(), nn.Linear(784, ...), ...)",
    "shape",
)
LOG_SOFTMAX_ACROSS_BATCH = Misconception(
    "network-log-softmax-over-batch",
    "the network's log-softmax taken over the batch instead of each image's classes",
    4,
    _NETWORK,
    "The output is (batch, 10): the 10 classes are dim=1. LogSoftmax(dim=0) would make one image's "
    "probabilities depend on the others in its batch.",
    "model = nn.Sequential(nn.Flatten(), ..., nn.LogSoftmax(dim=...))",
    "softmax",
)
UNDER_GOAL = Misconception(
    "under-the-goal",
    "a network trained too little (or not at all) to reach the goal",
    4,
    "Exercise 2 — train it to 87% on the validation set",
    "Accuracy grows with the epochs until the network has learned what it can: train for more epochs, or "
    "widen the network, or change the learning rate — the validation accuracy printed after training says "
    "which helps.",
    "optimizer = optim.Adam(model.parameters(), lr=...)\nfor epoch in range(...):\n    ...",
    "epoch",
)
LOG_PROBABILITIES_FOR_PROBABILITIES = Misconception(
    "log-probabilities-for-probabilities",
    "the model's log-probabilities taken for probabilities",
    4,
    "Exercise 3 — predictions",
    "The network ends with LogSoftmax: its outputs are log-probabilities (≤ 0). torch.exp turns them into "
    "probabilities, each row summing to 1.",
    "with torch.inference_mode():\n    ps = torch.exp(...)",
    "softmax",
)
RECORDING_WHILE_PREDICTING = Misconception(
    "autograd-while-predicting",
    "autograd left recording while only predicting",
    4,
    "Exercise 3 — predictions",
    "Outside training nothing is differentiated: under torch.inference_mode() (or torch.no_grad()) autograd "
    "records no graph, which saves memory and time.",
    "with torch.inference_mode():\n    ps = torch.exp(model(images))",
    "inference",
)
OTHER_IMAGES_PREDICTED = Misconception(
    "probabilities-of-other-images",
    "probabilities computed for other images than the batch in images",
    4,
    "Exercise 3 — predictions",
    "ps must be the model's probabilities for this batch: model(images), in its order.",
    "with torch.inference_mode():\n    ps = torch.exp(model(images...))",
    "inference",
)


def _images(g: torch.Generator) -> Inputs:
    pixels, _ = data.mnist(train=False, fashion=True)
    chosen = torch.randperm(len(pixels), generator=g)[:128]
    images = pixels[chosen].float().div(255).sub(0.5).div(0.5).unsqueeze(1)
    return Inputs({"images": images, "order": torch.randperm(128, generator=g)})


# ------------------------------------------------------------------------------------------ network
def _ask_network(ns: dict, sent: dict) -> dict:
    model = lookup(ns, "model")
    if isinstance(model, Raised):
        return {"log_ps": model}
    images = sent["images"].to(device_of(model))
    with torch.no_grad():
        return {
            "log_ps": cpu(attempt(model, images)),
            "log_ps of the reordered batch": cpu(attempt(model, images[sent["order"]])),
        }


def _judge_network(i: dict, a: dict) -> str:
    log_ps = a.get("log_ps", Raised("no answer"))
    if isinstance(log_ps, Raised):
        shapes = "RuntimeError" in log_ps.message and "shape" in log_ps.message
        fail(
            f"model(images) failed on a batch of shape (128, 1, 28, 28): {log_ps.message}"
            + (
                " — start the network with nn.Flatten() so it takes (batch, 1, 28, 28) images"
                if shapes
                else ""
            ),
            NO_FLATTEN if shapes else None,
        )
    hint = "the network must flatten (128, 1, 28, 28) images itself and end with 10 outputs"
    expect_shape(log_ps, (128, 10), "model(images)", hint=hint)
    need(
        bool((log_ps <= 1e-6).all()),
        "model outputs positive values: end it with nn.LogSoftmax(dim=1)",
        NO_LOG_SOFTMAX,
    )
    hint = "end the network with nn.LogSoftmax(dim=1), over the classes"
    expect_close(
        torch.exp(log_ps).sum(dim=1),
        torch.ones(128),
        "the row sums of torch.exp(model(images))",
        atol=1e-4,
        hint=hint,
        misconception=LOG_SOFTMAX_ACROSS_BATCH,
    )
    reordered = tensor(
        a, "log_ps of the reordered batch", "model(images) for the same images in another order"
    )
    hint = (
        "an image's log-probabilities must not depend on the other images of its batch "
        "(model.eval(), and no operation across the batch)"
    )
    expect_close(
        reordered,
        log_ps[i["order"]],
        "model(images) for the same images in another order",
        atol=1e-4,
        hint=hint,
    )
    return "the network takes (batch, 1, 28, 28) images and outputs log-probabilities, one row per image"


network = Check(
    "test_network",
    after="network",
    judge=_judge_network,
    ask=_ask_network,
    given=lambda ns: Inputs(
        {"images": pick(ns, "images")["images"][:128], "order": torch.arange(127, -1, -1)}
    ),
    hidden=_images,
)


# ------------------------------------------------------------------------------------------ training
def _ask_train(ns: dict, sent: dict) -> dict:
    model = lookup(ns, "model")
    losses = lookup(ns, "train_losses")
    return {
        "train_losses": [float(x) for x in losses] if isinstance(losses, list | tuple) else losses,
        "scores": model if isinstance(model, Raised) else data.scores(model, sent["pixels"]),
    }


def _judge_train(i: dict, a: dict) -> str:
    losses = value(a, "train_losses")
    need(
        isinstance(losses, list) and len(losses) >= 1,
        "train_losses is empty: append each epoch's average loss",
        LOSSES_NOT_RECORDED,
    )
    scores = tensor(a, "scores", "model(images)")
    n = len(i["labels"])
    expect_shape(scores, (n, 10), "model's scores for the validation images")
    valid_accuracy = data.accuracy(scores, i["labels"])
    need(
        valid_accuracy >= GOAL,
        f"validation accuracy {valid_accuracy:.1%}, expected at least {GOAL:.0%} — the decisions are yours: "
        "more epochs, a wider or deeper network, another learning rate (and optimizer.zero_grad() before "
        "every backward())",
        UNDER_GOAL,
    )
    return (
        f"Fashion-MNIST validation accuracy {valid_accuracy:.1%} (at least {GOAL:.0%}) on the {n:,} "
        "validation images"
    )


def _valid_inputs(g: torch.Generator | None) -> Inputs:
    """The validation images of the notebook's split (pixels sent, labels kept): in order in the notebook,
    in a hidden order and perturbed at grading."""
    pixels, labels = data.fashion_images("valid", g)
    return Inputs({"pixels": pixels}, {"labels": labels})


train = Check(
    "test_train",
    after="train",
    judge=_judge_train,
    ask=_ask_train,
    given=lambda ns: _valid_inputs(None),
    hidden=_valid_inputs,
)


# ------------------------------------------------------------------------------------------ predictions
def _bind_predict(ns: dict, sent: dict) -> dict:
    labels = torch.zeros(len(sent["images"]), dtype=torch.long)  # the labels stay with the judge
    return {"testloader": DataLoader(TensorDataset(sent["images"], labels), batch_size=128)}


def _ask_predict(ns: dict, sent: dict) -> dict:
    ps, model, images = lookup(ns, "ps"), lookup(ns, "model"), lookup(ns, "images")
    if isinstance(model, Raised) or isinstance(images, Raised):
        return {"ps": ps, "log_ps": model if isinstance(model, Raised) else images}
    flat = data.takes_flat_input(model, images[:2].to(device_of(model)))
    inputs = images.flatten(1) if flat else images
    with torch.no_grad():
        log_ps = attempt(model, inputs.to(device_of(model)))
    return {
        "ps": cpu(ps),
        "requires_grad": bool(getattr(ps, "requires_grad", False)),
        "log_ps": cpu(log_ps),
        "images": cpu(images),
    }


def _judge_predict(i: dict, a: dict) -> str:
    ps = tensor(a, "ps")
    expect_shape(ps, (128, 10), "ps")
    need(
        a.get("requires_grad", False) is False,
        "ps records gradients: compute it inside `with torch.inference_mode():` (or no_grad)",
        RECORDING_WHILE_PREDICTING,
    )
    hint = "the model gives log-probabilities: torch.exp turns them into probabilities"
    label = "the row sums of ps"
    held_log_probabilities = is_close(torch.exp(ps).sum(dim=1), torch.ones(128), atol=1e-4)
    shown = LOG_PROBABILITIES_FOR_PROBABILITIES if held_log_probabilities else None
    expect_close(ps.sum(dim=1), torch.ones(128), label, atol=1e-4, hint=hint, misconception=shown)
    expect_close(tensor(a, "images"), i["images"], "images", hint="ps is for the first batch of testloader")
    log_ps = tensor(a, "log_ps", "model(images)")
    expect_shape(log_ps, (128, 10), "model(images)")
    # ps are probabilities, images the right batch: ps that differ are of other images
    hint = "ps = torch.exp(model(images)) for the batch of images"
    expect_close(ps, torch.exp(log_ps), "ps", atol=1e-5, hint=hint, misconception=OTHER_IMAGES_PREDICTED)
    return "ps: shape (128, 10), rows sum to 1, no gradients, the model's probabilities for the batch"


predict = Check(
    "test_predict",
    after="predict",
    judge=_judge_predict,
    ask=_ask_predict,
    given=lambda ns: Inputs({"images": pick(ns, "images")["images"]}),
    hidden=lambda g: Inputs({"images": _images(g).sent["images"]}),
    rerun=True,
    bind=_bind_predict,
)

CHECKS = [network, train, predict]
