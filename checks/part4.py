"""Part 4 — Fashion-MNIST: the checks of ``04_fashion_mnist.ipynb``.

The network and its training are the learner's design, so the judge tests what they do: 10 scores (not
probabilities: nn.CrossEntropyLoss applies softmax itself) for each image of a batch, the same for an image
whichever batch it comes in, and at least 87% of the 10,000 validation images of the notebook's split right
(at grading in a hidden order, slightly perturbed, the labels kept by the judge). The test set plays no part
in the verdict; the predictions are the softmax of the model's scores.
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
from checks.part2 import RELU_ON_SCORES
from checks.part3 import LOSSES_NOT_RECORDED
from checks.wire import Raised

GOAL = 0.87  # the validation accuracy Exercise 2 asks for

# ------------------------------------------------------------------------------------------ misconceptions
_NETWORK = "Exercise 1 — your network"
_PREDICTIONS = "Exercise 3 — predictions"
SOFTMAX_LAYER = Misconception(
    "softmax-layer-before-cross-entropy",
    "a softmax left at the end of a network trained with CrossEntropyLoss",
    4,
    _NETWORK,
    "nn.CrossEntropyLoss takes scores and applies softmax itself. A softmax layer at the end applies it "
    "twice: the scores are squeezed into [0, 1], and training slows down. End the network with its last "
    "nn.Linear.",
    "model = nn.Sequential(nn.Flatten(), ..., nn.Linear(..., 10))",
    "cross-entropy",
)
LOG_SOFTMAX_LAYER = Misconception(
    "log-softmax-layer-before-cross-entropy",
    "the original course's LogSoftmax end (its pair with NLLLoss) kept with CrossEntropyLoss",
    4,
    _NETWORK,
    "nn.LogSoftmax at the end belongs with nn.NLLLoss (Part 3 shows the pair once). This course uses one "
    "convention: the network gives scores, nn.CrossEntropyLoss applies log-softmax itself.",
    "model = nn.Sequential(nn.Flatten(), ..., nn.Linear(..., 10))",
    "cross-entropy",
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
LOSS_TENSORS_KEPT = Misconception(
    "loss-tensors-kept",
    "loss tensors added up instead of their numbers, keeping every batch's graph",
    4,
    "Exercise 2 — train it to 87% on the validation set",
    "A loss tensor remembers the graph that made it, so that backward() can run. A sum of such tensors keeps "
    "every batch's graph in memory. loss.item() is the plain number to add up and record.",
    "running_loss += loss.item() * labels.shape[0]",
    "computational-graph",
)
SCORES_FOR_PROBABILITIES = Misconception(
    "scores-for-probabilities",
    "the model's scores taken for probabilities",
    4,
    _PREDICTIONS,
    "The network ends with nn.Linear: its outputs are scores, any real numbers. torch.softmax(scores, dim=1) "
    "turns each row into probabilities: positive, summing to 1.",
    "with torch.no_grad():\n    ps = torch.softmax(..., dim=...)",
    "softmax",
)
EXP_OF_SCORES = Misconception(
    "exp-of-scores-for-probabilities",
    "torch.exp of the scores taken for probabilities",
    4,
    _PREDICTIONS,
    "torch.exp turns log-probabilities into probabilities, not scores. Softmax also divides each row by its "
    "sum: torch.softmax(scores, dim=1).",
    "with torch.no_grad():\n    ps = torch.softmax(..., dim=...)",
    "softmax",
)
SOFTMAX_OVER_BATCH = Misconception(
    "softmax-over-the-batch",
    "softmax taken over the batch instead of each image's classes",
    4,
    _PREDICTIONS,
    "The scores are (batch, 10): the 10 classes are dim=1. Softmax over dim=0 makes each class sum to 1 "
    "across the images, and one image's probabilities depend on the others.",
    "with torch.no_grad():\n    ps = torch.softmax(model(...), dim=...)",
    "softmax",
)
RECORDING_WHILE_PREDICTING = Misconception(
    "autograd-while-predicting",
    "autograd left recording while only predicting",
    4,
    _PREDICTIONS,
    "Outside training nothing is differentiated: under torch.no_grad() autograd records no graph, which "
    "saves memory and time.",
    "with torch.no_grad():\n    ps = torch.softmax(model(images), dim=...)",
    "inference",
)
OTHER_IMAGES_PREDICTED = Misconception(
    "probabilities-of-other-images",
    "probabilities computed for other images than the batch in images",
    4,
    _PREDICTIONS,
    "ps must be the model's probabilities for this batch: model(images), in its order.",
    "with torch.no_grad():\n    ps = torch.softmax(model(images...), dim=1)",
    "inference",
)


def _probabilities(x: torch.Tensor, dim: int = 1) -> bool:
    """Whether ``x`` holds probabilities along ``dim``: none negative, each summing to 1 (a softmax)."""
    ones = torch.ones(x.shape[1 - dim])
    return bool((x >= -1e-6).all()) and is_close(x.sum(dim=dim), ones, atol=1e-4)


def _images(g: torch.Generator) -> Inputs:
    pixels, _ = data.mnist(train=False, fashion=True)
    chosen = torch.randperm(len(pixels), generator=g)[:128]
    images = pixels[chosen].float().div(255).sub(0.5).div(0.5).unsqueeze(1)
    return Inputs({"images": images, "order": torch.randperm(128, generator=g)})


# ------------------------------------------------------------------------------------------ network
def _ask_network(ns: dict, sent: dict) -> dict:
    model = lookup(ns, "model")
    if isinstance(model, Raised):
        return {"scores": model}
    images = sent["images"].to(device_of(model))
    with torch.no_grad():
        return {
            "scores": cpu(attempt(model, images)),
            "scores of the reordered batch": cpu(attempt(model, images[sent["order"]])),
        }


def _judge_network(i: dict, a: dict) -> str:
    scores = a.get("scores", Raised("no answer"))
    if isinstance(scores, Raised):
        shapes = "RuntimeError" in scores.message and "shape" in scores.message
        fail(
            f"model(images) failed on a batch of shape (128, 1, 28, 28): {scores.message}"
            + (
                " — start the network with nn.Flatten() so it takes (batch, 1, 28, 28) images"
                if shapes
                else ""
            ),
            NO_FLATTEN if shapes else None,
        )
    hint = "the network must flatten (128, 1, 28, 28) images itself and end with 10 outputs"
    expect_shape(scores, (128, 10), "model(images)", hint=hint)
    need(
        not (_probabilities(scores, dim=1) or _probabilities(scores, dim=0)),
        "model(images) gives probabilities (none negative, each summing to 1): the network ends with a "
        "softmax, and nn.CrossEntropyLoss applies softmax itself — end the network with its last nn.Linear",
        SOFTMAX_LAYER,
    )
    need(
        not _probabilities(scores.exp(), dim=1),
        "model(images) gives log-probabilities (the exp of each row sums to 1): the network ends with "
        "nn.LogSoftmax, the original course's pair with nn.NLLLoss — here nn.CrossEntropyLoss takes scores: "
        "end the network with its last nn.Linear",
        LOG_SOFTMAX_LAYER,
    )
    zeros = int((scores == 0).sum())
    need(
        bool((scores < 0).any()),
        f"model(images) gives no negative score among {scores.numel():,}"
        + (f" ({zeros:,} of them exactly 0)" if zeros else "")
        + ": an activation follows the last nn.Linear — end the network with its last nn.Linear, whose "
        "scores may be negative",
        RELU_ON_SCORES if zeros else None,
    )
    reordered = tensor(
        a, "scores of the reordered batch", "model(images) for the same images in another order"
    )
    hint = (
        "an image's scores must not depend on the other images of its batch "
        "(model.eval(), and no operation across the batch, such as a softmax over dim=0)"
    )
    expect_close(
        reordered,
        scores[i["order"]],
        "model(images) for the same images in another order",
        atol=1e-4,
        hint=hint,
    )
    return "the network takes (batch, 1, 28, 28) images and gives 10 scores per image, whatever its batch"


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
    listed = isinstance(losses, list | tuple)
    return {
        "train_losses": [float(x.detach()) if isinstance(x, torch.Tensor) else float(x) for x in losses]
        if listed
        else losses,
        "losses record gradients": listed
        and any(isinstance(x, torch.Tensor) and x.requires_grad for x in losses),
        "scores": model if isinstance(model, Raised) else data.scores(model, sent["pixels"]),
    }


def _judge_train(i: dict, a: dict) -> str:
    losses = value(a, "train_losses")
    need(
        isinstance(losses, list) and len(losses) >= 1,
        "train_losses is empty: append each epoch's average loss",
        LOSSES_NOT_RECORDED,
    )
    need(
        a.get("losses record gradients") is False,
        "train_losses holds tensors that record gradients (a sum of loss tensors, not of loss.item()): each "
        "keeps its epoch's graph in memory, and the plot cannot draw it — add up loss.item(), a Python float",
        LOSS_TENSORS_KEPT,
    )
    scores = tensor(a, "scores", "model(images)")
    n = len(i["labels"])
    expect_shape(scores, (n, 10), "model's scores for the validation images")
    valid_accuracy = data.accuracy(scores, i["labels"])
    need(
        valid_accuracy >= GOAL or not _probabilities(scores),
        f"validation accuracy {valid_accuracy:.1%}, expected at least {GOAL:.0%}, and the model gives "
        "probabilities: a softmax at the end of the network slows training with nn.CrossEntropyLoss, which "
        "applies softmax itself — end the network with its last nn.Linear, and train it again",
        SOFTMAX_LAYER,
    )
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
        return {"ps": ps, "scores": model if isinstance(model, Raised) else images}
    flat = data.takes_flat_input(model, images[:2].to(device_of(model)))
    inputs = images.flatten(1) if flat else images
    with torch.no_grad():
        scores = attempt(model, inputs.to(device_of(model)))
    return {
        "ps": cpu(ps),
        "requires_grad": bool(getattr(ps, "requires_grad", False)),
        "scores": cpu(scores),
        "images": cpu(images),
    }


def _judge_predict(i: dict, a: dict) -> str:
    ps = tensor(a, "ps")
    expect_shape(ps, (128, 10), "ps")
    need(
        a.get("requires_grad", False) is False,
        "ps records gradients: compute it inside `with torch.no_grad():`",
        RECORDING_WHILE_PREDICTING,
    )
    scores = tensor(a, "scores", "model(images)")
    expect_shape(scores, (128, 10), "model(images)")
    typical = [
        (torch.exp(scores), EXP_OF_SCORES, "torch.exp of scores is no probability: use torch.softmax"),
        (scores, SCORES_FOR_PROBABILITIES, "the model gives scores: torch.softmax(scores, dim=1) turns them "
         "into probabilities"),
        (torch.log_softmax(scores, dim=1), SCORES_FOR_PROBABILITIES, "those are log-probabilities: "
         "torch.softmax(scores, dim=1) gives probabilities"),
        (torch.softmax(scores, dim=0), SOFTMAX_OVER_BATCH, "softmax over dim=1, each image's 10 classes, not "
         "dim=0, the batch"),
    ]  # fmt: skip
    shown, hint = next(
        ((m, h) for wrong, m, h in typical if is_close(ps, wrong, atol=1e-5)),
        (None, "ps = torch.softmax(model(images), dim=1): positive, each row summing to 1"),
    )
    expect_close(
        ps.sum(dim=1), torch.ones(128), "the row sums of ps", atol=1e-4, hint=hint, misconception=shown
    )
    expect_close(tensor(a, "images"), i["images"], "images", hint="ps is for the first batch of testloader")
    # ps are probabilities, images the right batch: ps that differ are of other images
    hint = "ps = torch.softmax(model(images), dim=1) for the batch of images"
    expected = torch.softmax(scores, dim=1)
    expect_close(ps, expected, "ps", atol=1e-5, hint=hint, misconception=OTHER_IMAGES_PREDICTED)
    return "ps: shape (128, 10), rows sum to 1, no gradients, softmax of the model's scores for the batch"


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
