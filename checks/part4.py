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
    Raised,
    attempt,
    cpu,
    device_of,
    expect_close,
    expect_shape,
    fail,
    lookup,
    need,
    pick,
    tensor,
    value,
)

GOAL = 0.87  # the validation accuracy Exercise 2 asks for


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
            )
        )
    hint = "the network must flatten (128, 1, 28, 28) images itself and end with 10 outputs"
    expect_shape(log_ps, (128, 10), "model(images)", hint=hint)
    need(bool((log_ps <= 1e-6).all()), "model outputs positive values: end it with nn.LogSoftmax(dim=1)")
    hint = "end the network with nn.LogSoftmax(dim=1), over the classes"
    expect_close(
        torch.exp(log_ps).sum(dim=1),
        torch.ones(128),
        "the row sums of torch.exp(model(images))",
        atol=1e-4,
        hint=hint,
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
        not a.get("requires_grad"),
        "ps records gradients: compute it inside `with torch.inference_mode():` (or no_grad)",
    )
    hint = "the model gives log-probabilities: torch.exp turns them into probabilities"
    expect_close(ps.sum(dim=1), torch.ones(128), "the row sums of ps", atol=1e-4, hint=hint)
    expect_close(tensor(a, "images"), i["images"], "images", hint="ps is for the first batch of testloader")
    log_ps = tensor(a, "log_ps", "model(images)")
    expect_close(
        ps, torch.exp(log_ps), "ps", atol=1e-5, hint="ps = torch.exp(model(images)) for the batch of images"
    )
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
