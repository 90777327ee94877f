"""Part 8 — Transfer learning: the checks of ``08_transfer_learning.ipynb``.

``extract_features`` runs on photos the check picks (at grading: picked by the grader), and the judge compares
its features with the backbone's own, computed on its side at grading. The trained classifier is measured on
every test photo's features: in the notebook on the test features the notebook computed, at grading on the
grader's own features of every test photo in a hidden order (the labels kept by the judge); and the whole
model on a few photos (32 in the notebook, 16 hidden ones at grading) must score them as the classifier does.
"""

from __future__ import annotations

from pathlib import Path

import torch

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
from checks.core import (
    hidden as at_grading,
)


# ------------------------------------------------------------------------------------------ freeze
def _freeze_inputs(g: torch.Generator | None) -> Inputs:
    if g is None:
        return Inputs({"photos": None})
    paths, _ = data.catdog_files("test")
    chosen = paths[int(torch.randint(0, len(paths), (1,), generator=g))]
    return Inputs({"photos": data.catdog_inputs([chosen], data.image_size())})


def _ask_freeze(ns: dict, sent: dict) -> dict:
    model = lookup(ns, "model")
    if isinstance(model, Raised):
        return {"$problem": model}
    features, classifier = getattr(model, "features", None), getattr(model, "classifier", None)
    if features is None or classifier is None:
        return {"$problem": Raised("model should keep the backbone's .features and a new .classifier")}
    size = ns.get("image_size", 224)
    photos = sent["photos"] if sent.get("photos") is not None else torch.zeros(1, 3, size, size)
    was_training = getattr(model, "training", False)
    with torch.no_grad():
        scores = attempt(lambda: model.eval()(photos.to(device_of(model))))
    attempt(model.train, was_training)
    return {
        "unfrozen": [name for name, p in features.named_parameters() if p.requires_grad],
        "head": [bool(p.requires_grad) for p in classifier.parameters()],
        "scores": cpu(scores),
    }


def _judge_freeze(i: dict, a: dict) -> str:
    unfrozen = value(a, "unfrozen")
    need(
        not unfrozen,
        f"{len(unfrozen)} feature parameters still train (e.g. {unfrozen[0] if unfrozen else ''}): set "
        "requires_grad = False",
    )
    head = value(a, "head")
    need(
        head and all(head),
        "the new classifier does not train: create it after freezing, so its parameters require gradients",
    )
    scores = a.get("scores", Raised("no answer"))
    if isinstance(scores, Raised):
        fail(f"model(image) raised {scores.message}")
    expect_shape(scores, (1, 2), "model(image)", hint="the new classifier must output 2 scores: cat and dog")
    return "frozen features (no gradients), a new 2-class classifier whose parameters require them"


freeze = Check(
    "test_freeze",
    after="freeze",
    judge=_judge_freeze,
    ask=_ask_freeze,
    given=lambda ns: _freeze_inputs(None),
    hidden=_freeze_inputs,
)


# ------------------------------------------------------------------------------------------ features
def _pick_photos(targets: list[int], g: torch.Generator | None) -> list[int]:
    """4 cats, then 4 dogs, wherever they are in the test set: the first ones, or (g) hidden ones."""
    chosen = []
    for label in (0, 1):
        where = [index for index, target in enumerate(targets) if target == label]
        if g is not None:
            where = [where[k] for k in torch.randperm(len(where), generator=g).tolist()]
        chosen += where[:4]
    return chosen


def _given_features(ns: dict) -> Inputs:
    found = pick(ns, "test_data", "model")
    test_data, model = found["test_data"], found["model"]
    chosen = _pick_photos(list(test_data.targets), None)
    images = torch.stack([test_data[k][0] for k in chosen]).to(device_of(model))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        expected = torch.flatten(model.avgpool(model.features(images)), 1).cpu()
    model.train(was_training)
    return Inputs({"indices": chosen}, {"expected": expected, "labels": [0] * 4 + [1] * 4})


def _hidden_features(g: torch.Generator) -> Inputs:
    paths, targets = data.catdog_files("test")
    chosen = _pick_photos(targets, g)
    return Inputs(
        {"indices": chosen}, {"paths": [str(paths[k]) for k in chosen], "labels": [0] * 4 + [1] * 4}
    )


def _ask_features(ns: dict, sent: dict) -> dict:
    extract, test_data = lookup(ns, "extract_features"), lookup(ns, "test_data")
    if isinstance(extract, Raised) or isinstance(test_data, Raised):
        return {"$problem": extract if isinstance(extract, Raised) else test_data}
    few = torch.utils.data.Subset(test_data, sent["indices"])
    extracted = attempt(extract, few)
    if isinstance(extracted, Raised):
        return {"$problem": Raised(f"extract_features raised {extracted.message}")}
    if not isinstance(extracted, torch.utils.data.TensorDataset):
        return {
            "$problem": Raised(
                f"extract_features should return a TensorDataset, got {type(extracted).__name__}"
            )
        }
    features, labels = extracted.tensors[:2]
    backbone = ns.get("backbone")
    return {
        "features": cpu(features),
        "labels": cpu(labels),
        "requires_grad": bool(features.requires_grad),
        "image_size": ns.get("image_size"),
        "backbone": getattr(backbone, "description", None),
    }


def _trusted_features(paths: list[str], image_size: int) -> torch.Tensor:
    """At grading: the backbone's features of the photos, computed by the judge with the notebook's
    transform."""
    return data.catdog_features([Path(p) for p in paths], image_size)


def _judge_features(i: dict, a: dict) -> str:
    features, labels = tensor(a, "features"), tensor(a, "labels")
    hint = "average each feature map with model.avgpool, then flatten to (batch, 1280)"
    expect_shape(features, (8, 1280), "the features of 8 images", hint=hint)
    need(labels.tolist() == i["labels"], f"the labels should be the images' classes, got {labels.tolist()}")
    need(
        not a.get("requires_grad"),
        "the features record gradients (autograd kept the backbone's graph): compute them under "
        "torch.inference_mode() or torch.no_grad()",
    )
    if at_grading():
        size = value(a, "image_size")
        need(size in (128, 224), f"image_size should be 128 or 224, it is {size!r}")
        expected = _trusted_features(i["paths"], size)
    else:
        expected = i["expected"]
    hint = "call model.eval() first: in training mode batch normalisation changes the features"
    expect_close(features, expected, "the features", atol=1e-3, hint=hint)
    return "extract_features: the backbone's averaged features and the labels, no gradients"


extract_features = Check(
    "test_extract_features",
    after="extract_features",
    judge=_judge_features,
    ask=_ask_features,
    given=_given_features,
    hidden=_hidden_features,
)


# ------------------------------------------------------------------------------------------ accuracy
def _given_accuracy(ns: dict) -> Inputs:
    test_data = pick(ns, "test_data")["test_data"]
    few = torch.randperm(len(test_data), generator=torch.Generator().manual_seed(0))[:32].tolist()
    return Inputs({"few": few}, {"labels": torch.tensor(test_data.targets)})


def _hidden_accuracy(g: torch.Generator) -> Inputs:
    """Every test photo's features, computed by the grader's own backbone, in a hidden order; 16 of the photos
    themselves, to check that ``model`` holds the classifier that scores them. The labels stay with the
    judge."""
    paths, targets = data.catdog_files("test")
    features = data.catdog_features(paths, data.image_size())
    order = torch.randperm(len(paths), generator=g)
    rows = torch.randperm(len(paths), generator=g)[:16]
    photos = data.catdog_inputs([paths[k] for k in order[rows].tolist()], data.image_size())
    return Inputs(
        {"features": features[order], "photos": photos, "rows": rows},
        {"labels": torch.tensor(targets)[order]},
    )


def _ask_accuracy(ns: dict, sent: dict) -> dict:
    model = lookup(ns, "model")
    if isinstance(model, Raised) or not callable(model) or not hasattr(model, "classifier"):
        return {
            "$problem": model
            if isinstance(model, Raised)
            else Raised("model should be the backbone with your classifier")
        }
    on, was_training = device_of(model), model.training
    model.eval()
    try:
        if "features" in sent:  # at grading: the grader's features of every test photo, and 16 photos
            features, images = sent["features"], sent["photos"]
            answers = {"rows": sent["rows"]}
        else:
            test_features, test_data = lookup(ns, "test_features"), lookup(ns, "test_data")
            features = test_features.tensors[0]
            images = torch.stack([test_data[k][0] for k in sent["few"]])
            answers = {
                "rows": torch.tensor(sent["few"]),
                "features": len(features),
                "test photos": len(test_data),
            }
        with torch.no_grad():
            answers["whole"] = cpu(attempt(model, images.to(on)))
            answers["scores"] = cpu(attempt(model.classifier, features.to(on)))
        return answers
    finally:
        model.train(was_training)


def _judge_accuracy(i: dict, a: dict) -> str:
    labels = i["labels"]
    if not at_grading():
        n = value(a, "features", "test_features")
        need(
            n == len(labels),
            f"test_features holds {n} photos, test_data {len(labels)}: run the feature extraction cell again",
        )
    scores = tensor(a, "scores", "model.classifier(features)")
    expect_shape(scores, (len(labels), 2), "model.classifier(features of every test photo)")
    hint = "they should equal model.classifier(features) of the same photos: " + (
        "train model.classifier itself, not a copy of it"
        if at_grading()
        else "test_features must hold the backbone's features of test_data, in its order (run the feature "
        "extraction cell again)"
    )
    rows = tensor(a, "rows")
    expect_close(
        tensor(a, "whole", "model(photos)"),
        scores[rows],
        f"model(photos) for {len(rows)} test photos",
        atol=1e-2,
        rtol=1e-2,
        hint=hint,
    )
    accuracy = (scores.argmax(dim=1) == labels).float().mean().item()
    need(
        accuracy >= 0.95,
        f"test accuracy {accuracy:.1%} on the {len(labels)} test photos, expected at least 95% — "
        "train model.classifier (not a copy of it) on the features for more epochs",
    )
    return (
        f"cat/dog test accuracy {accuracy:.1%} on the {len(labels)} test photos (the whole model gives the "
        "same "
        f"scores on {len(rows)} of them)"
    )


accuracy = Check(
    "test_accuracy",
    after="train_head",
    judge=_judge_accuracy,
    ask=_ask_accuracy,
    given=_given_accuracy,
    hidden=_hidden_accuracy,
)

CHECKS = [freeze, extract_features, accuracy]
