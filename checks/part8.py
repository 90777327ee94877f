"""Part 8 — Transfer learning: the checks of ``08_transfer_learning.ipynb``.

The standard loop on photos is judged by what it left: the backbone's features of a few test photos compared
with the pristine backbone's (computed on the check's side), the optimizer's parameters, the size of the
classifier's gradients against a fresh batch's, and the classifier's accuracy on test photos' features.
``extract_features`` runs on photos the check picks (at grading: picked by the grader), and the judge compares
its features with the backbone's own, computed on its side at grading. The trained classifier is measured on
every test photo's features: in the notebook on the test features the notebook computed, at grading on the
grader's own features of every test photo in a hidden order (the labels kept by the judge); and the whole
model on a few photos (32 in the notebook, 16 hidden ones at grading) must score them as the classifier does.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

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
    fail_if_stopped,
    lookup,
    need,
    number,
    pick,
    stopped_with,
    tensor,
    value,
)
from checks.core import (
    hidden as at_grading,
)
from checks.kernel import hint as hint  # check.hint(): the next hint after a failed check
from checks.part3 import GRADIENTS_ACCUMULATE
from checks.wire import Raised

# ------------------------------------------------------------------------------------------ misconceptions
_FREEZE = "Exercise 1 — freeze the features, design the classifier"
_FREEZE_SKELETON = (
    "for parameter in model.parameters():\n    parameter.requires_grad = False\n"
    "model.classifier = nn.Linear(..., 2)  # created after freezing: it trains\nmodel = model.to(device)"
)
FEATURES_NOT_FROZEN = Misconception(
    "features-not-frozen",
    "a pretrained feature extractor left trainable",
    8,
    _FREEZE,
    "Freezing means requires_grad = False on every pretrained parameter: then no gradient reaches them and "
    "the optimizer cannot change what ImageNet taught them.",
    _FREEZE_SKELETON,
    "freeze",
)
CLASSIFIER_FROZEN = Misconception(
    "classifier-frozen-too",
    "the new classifier frozen with the rest",
    8,
    _FREEZE,
    "Only the new classifier should train: freeze first, then create the classifier (a new layer's "
    "parameters require gradients).",
    _FREEZE_SKELETON,
    "freeze",
)
IMAGENET_CLASSES_KEPT = Misconception(
    "imagenet-classifier-kept",
    "ImageNet's 1000-class classifier kept for a 2-class task",
    8,
    _FREEZE,
    "The pretrained classifier scores ImageNet's 1000 classes; this task has 2, so the classifier is "
    "replaced by one with 2 outputs.",
    _FREEZE_SKELETON,
    "transfer-learning",
)
DENSENET_WIDTH = Misconception(
    "densenet-width",
    "DenseNet-121's 1024 features (the original course's network) taken for this backbone's 1280",
    8,
    _FREEZE,
    "A new classifier takes what the backbone gives: EfficientNet's 1280 averaged features, not the 1024 of "
    "DenseNet-121. The printout of the ImageNet classifier above shows how many its Linear layer takes "
    "(in_features).",
    "model.classifier = nn.Linear(..., 2)  # as many inputs as the printed classifier's Linear takes",
    "features",
)
_CLASSIFIER = "Exercise 4 — train the classifier"
_FEATURES = "Exercise 3 — `extract_features`"
_FEATURES_SKELETON = (
    "model.eval()\nwith torch.no_grad():\n    for images, labels in tqdm(DataLoader(dataset, "
    "batch_size=32)):\n        maps = model.features(images.to(device))\n        "
    "features.append(torch.flatten(model....(maps), 1))"
)
MAPS_NOT_POOLED = Misconception(
    "feature-maps-not-averaged",
    "the feature maps taken for the features the classifier receives",
    8,
    _FEATURES,
    "model.features gives 1280 maps of a few pixels each; model.avgpool averages each map to one number, and "
    "flattening gives the 1280 features the classifier takes.",
    _FEATURES_SKELETON,
    "features",
)
SHUFFLED_EXTRACTION = Misconception(
    "features-shuffled",
    "a shuffled loader taken to keep the dataset's order",
    8,
    _FEATURES,
    "The features must line up with the dataset, photo by photo: go through it in order (no shuffle); "
    "shuffle later, in the loader that trains the classifier.",
    _FEATURES_SKELETON,
    "features",
)
SCORES_FOR_FEATURES = Misconception(
    "scores-for-features",
    "the classifier's scores taken for the features",
    8,
    _FEATURES,
    "model(x) runs the classifier too; the features are what goes into it: "
    "torch.flatten(model.avgpool(model.features(x)), 1).",
    _FEATURES_SKELETON,
    "features",
)
FEATURES_IN_TRAINING_MODE = Misconception(
    "features-in-training-mode",
    "the backbone run in training mode, batch normalisation using each batch's own statistics",
    8,
    _FEATURES,
    "In training mode batch normalisation normalises with the statistics of the current batch, so a photo's "
    "features depend on the other photos of its batch; model.eval() makes it use those learned on ImageNet.",
    _FEATURES_SKELETON,
    "batch-normalisation",
)
WHOLE_MODEL_ON_FEATURES = Misconception(
    "whole-model-on-features",
    "the whole model run on features the backbone already computed",
    8,
    _CLASSIFIER,
    "model(x) runs the backbone first, and the backbone takes photos, (batch, 3, height, width). The "
    "features are what it gave, (batch, 1280): what model.classifier takes.",
    "loss = criterion(model....(features), labels)",
    "features",
)
HEAD_UNDERTRAINED = Misconception(
    "classifier-undertrained",
    "a classifier trained too little (or a copy of it trained instead)",
    8,
    _CLASSIFIER,
    "The check measures model.classifier itself: train that module (an optimizer over its parameters) for "
    "enough epochs that the validation accuracy stops rising.",
    "optimizer = optim.Adam(model.classifier.parameters(), lr=...)\nfor epoch in range(...):\n    ...",
    "transfer-learning",
)
FEATURES_OUT_OF_ORDER = Misconception(
    "test-features-out-of-order",
    "test_features taken to be of the test photos in another order than test_data's",
    8,
    "Compute the features once",
    "test_features must be test_data's photos, in its order: extract_features(test_data), run again after "
    "changing the model or the data.",
    "test_features = extract_features(test_data)",
    "features",
)
TRAINING_FEATURES_TESTED = Misconception(
    "training-features-for-test-features",
    "the training photos' features taken for the test photos'",
    8,
    "Compute the features once",
    "The accuracy that counts is on photos the classifier never trained on: test_features are "
    "extract_features(test_data).",
    "test_features = extract_features(test_data)",
    "training-set",
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
    layers = classifier.modules() if isinstance(classifier, nn.Module) else []
    first = next((m for m in layers if isinstance(m, nn.Linear)), None)
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
        "in_features": getattr(first, "in_features", None),  # the classifier's first Linear layer's
    }


def _judge_freeze(i: dict, a: dict) -> str:
    unfrozen, head = value(a, "unfrozen"), value(a, "head")
    need(
        isinstance(unfrozen, list) and isinstance(head, list),
        "the check could not list the model's parameters",
    )
    need(
        not unfrozen,
        f"{len(unfrozen)} feature parameters still train (e.g. {unfrozen[0] if unfrozen else ''}): set "
        "requires_grad = False",
        FEATURES_NOT_FROZEN,
    )
    need(
        head and all(x is True for x in head),
        "the new classifier does not train: create it after freezing, so its parameters require gradients",
        CLASSIFIER_FROZEN,
    )
    scores = a.get("scores", Raised("no answer"))
    if isinstance(scores, Raised):
        width = a.get("in_features")
        wrong = isinstance(width, int) and not isinstance(width, bool) and width != 1280
        fail(
            f"model(image) raised {scores.message}"
            + (f": the classifier takes {width} inputs, the backbone gives 1280 features" if wrong else ""),
            DENSENET_WIDTH if width == 1024 and wrong else None,
        )
    hint = "the new classifier must output 2 scores: cat and dog"
    expect_shape(scores, (1, 2), "model(image)", hint=hint, like=[((1, 1000), IMAGENET_CLASSES_KEPT)])
    return "frozen features (no gradients), a new 2-class classifier whose parameters require them"


freeze = Check(
    "test_freeze",
    after="freeze",
    judge=_judge_freeze,
    ask=_ask_freeze,
    given=lambda ns: _freeze_inputs(None),
    hidden=_freeze_inputs,
)


# ------------------------------------------------------------------------------------------ the standard loop
_LOOP = "Exercise 2 — the standard loop, on photos"
BATCH_NORM_UPDATED = Misconception(
    "batch-norm-statistics-updated",
    "frozen parameters taken to keep batch normalisation's statistics fixed",
    8,
    _LOOP,
    "requires_grad = False stops the optimizer, not batch normalisation: in training mode it updates its "
    "running averages with every batch, so the frozen backbone changes. After model.train(), put the "
    "backbone in evaluation mode.",
    "model.train()\nmodel.features....()  # the backbone's batch normalisation keeps ImageNet's statistics",
    "batch-normalisation",
)
OPTIMIZER_OVER_MODEL = Misconception(
    "optimizer-over-whole-model",
    "an optimizer over the whole model taken for one over the new classifier",
    8,
    _LOOP,
    "An optimizer changes every parameter it is given: give it only what should learn, "
    "model.classifier.parameters(), not the backbone's millions of pretrained ones.",
    "optimizer = optim.Adam(model.....parameters(), lr=0.001)",
    "optimizer",
)
OPTIMIZER_OF_OLD_CLASSIFIER = Misconception(
    "optimizer-of-a-replaced-classifier",
    "an optimizer made before the classifier was replaced, taken to update the new one",
    8,
    _LOOP,
    "An optimizer holds the very parameter tensors it was given. A classifier (or model) made after it has "
    "new tensors, which that optimizer never changes: create the optimizer after the module it trains.",
    "model.classifier = ...\noptimizer = optim.Adam(model.classifier.parameters(), lr=0.001)",
    "optimizer",
)
LOOP_PHOTOS, LOOP_TESTED = 8, 64  # test photos whose backbone features are compared; scored by the classifier
ACCUMULATED = 3.0  # gradients this many times a fresh batch's (and above ACCUMULATED_NORM): not cleared
ACCUMULATED_NORM = 8.0


def _loop_inputs(size: int, g: torch.Generator | None) -> Inputs:
    """Test photos: 8 of them as photos (their features kept: the pristine backbone's), 64 as features (their
    labels kept), and 32 training photos' features with their labels (for a fresh batch's gradient)."""
    paths, targets = data.catdog_files("test")
    train_paths, train_targets = data.catdog_files("train")
    generator = g if g is not None else torch.Generator().manual_seed(0)
    tested = torch.randperm(len(paths), generator=generator)[:LOOP_TESTED].tolist()
    batch = torch.randperm(len(train_paths), generator=generator)[:32].tolist()
    if g is None:  # in the notebook: only these photos' features, computed here
        features = data.catdog_features([paths[k] for k in tested], size)
    else:  # at grading: the grader's features of every test photo, computed once
        features = data.catdog_features(paths, size)[tested]
    shown = tested[:LOOP_PHOTOS]
    return Inputs(
        {
            "photos": data.catdog_inputs([paths[k] for k in shown], size),
            "features": features,
            "batch": data.catdog_features([train_paths[k] for k in batch], size),
            "batch labels": torch.tensor([train_targets[k] for k in batch]),
        },
        {"expected": features[:LOOP_PHOTOS], "labels": torch.tensor([targets[k] for k in tested])},
    )


def _given_loop(ns: dict) -> Inputs:
    size = ns.get("image_size")
    return _loop_inputs(size if size in (128, 224) else data.image_size(), None)


def _norm(tensors: list) -> float | None:
    grads = [t.detach().flatten().float() for t in tensors if isinstance(t, torch.Tensor)]
    return float(torch.cat(grads).norm()) if grads else None


def _ask_loop(ns: dict, sent: dict) -> dict:
    model = lookup(ns, "model")
    # the classifier's training on features (given feature_trainloader) makes an optimizer too: not this one
    stopped = stopped_with(ns, "optimizer", model, unless=("feature_trainloader",))
    if stopped is not None:  # what it left is half-made: nothing else to judge
        return {"stopped": stopped}
    if isinstance(model, Raised):
        return {"$problem": model}
    backbone, head = getattr(model, "features", None), getattr(model, "classifier", None)
    if not isinstance(backbone, nn.Module) or not isinstance(head, nn.Module):
        return {"$problem": Raised("model should keep the backbone's .features and your .classifier")}
    optimizer = ns.get("optimizer")
    held = None
    if isinstance(optimizer, torch.optim.Optimizer):
        given = {id(p) for group in optimizer.param_groups for p in group.get("params", [])}
        mine = {id(p) for p in head.parameters()}
        held = {
            "classifier": len(given & mine),
            "others": len(given - mine),
            "of the classifier": len(mine),
            "not in model": len(given - {id(p) for p in model.parameters()}),
        }
    on = device_of(model)
    modes = [(m, m.training) for m in model.modules()]  # each layer's own mode, restored after
    answers = {
        "unfrozen": [name for name, p in backbone.named_parameters() if p.requires_grad],
        "optimizer": held,
        "gradient": _norm([p.grad for p in head.parameters()]),
    }
    try:
        model.eval()
        with torch.no_grad():
            answers["features"] = cpu(
                attempt(lambda: torch.flatten(model.avgpool(backbone(sent["photos"].to(on))), 1))
            )
            answers["scores"] = cpu(attempt(head, sent["features"].to(on)))
        # a fresh batch's gradient, on a copy of the classifier (the learner's gradients stay as they are)
        copied = attempt(copy.deepcopy, head)
        if isinstance(copied, nn.Module):
            copied.zero_grad()
            loss = attempt(
                lambda: nn.functional.cross_entropy(
                    copied(sent["batch"].to(on)), sent["batch labels"].to(on)
                ).backward()
            )
            fresh = _norm([p.grad for p in copied.parameters()])
            answers["fresh gradient"] = loss if isinstance(loss, Raised) else fresh
    finally:
        for module, training in modes:
            module.training = training
    return answers


def _judge_loop(i: dict, a: dict) -> str:
    fail_if_stopped(a)
    unfrozen = value(a, "unfrozen")
    need(isinstance(unfrozen, list), "the check could not list the backbone's parameters")
    need(
        not unfrozen,
        f"{len(unfrozen)} of the backbone's parameters require gradients (e.g. "
        f"{unfrozen[0] if unfrozen else ''}): the backbone is not frozen — run the cells from the one that "
        "loads the backbone again, Exercise 1's included, then this one",
        FEATURES_NOT_FROZEN,
    )
    held = value(a, "optimizer")
    need(
        isinstance(held, dict),
        "no optimizer: the exercise asks for `optimizer`, over model.classifier's parameters",
    )
    counts = [held.get(k) for k in ("classifier", "others", "of the classifier")]
    need(
        all(isinstance(n, int) and not isinstance(n, bool) for n in counts),
        "the check could not count the optimizer's parameters",
    )
    mine, others, wanted = counts
    strangers = held.get("not in model", 0)
    need(isinstance(strangers, int) and not isinstance(strangers, bool), "the check could not count them")
    need(
        strangers == 0,
        f"optimizer holds {strangers} parameter tensors that are not in model at all: it was made for an "
        "earlier classifier or model, replaced since (the check reads the optimizer named `optimizer`) — "
        "create optimizer over model.classifier.parameters() after the classifier, in this cell",
        OPTIMIZER_OF_OLD_CLASSIFIER,
    )
    need(
        others == 0,
        f"optimizer holds {others} parameter tensors that are not model.classifier's (the backbone's): give "
        "it model.classifier.parameters() only",
        OPTIMIZER_OVER_MODEL,
    )
    need(
        mine == wanted and wanted > 0,
        f"optimizer holds {mine} of model.classifier's {wanted} parameter tensors: create it over "
        "model.classifier.parameters(), after the classifier (a classifier replaced later is not the one it "
        "updates)",
    )
    features = tensor(a, "features", "the backbone's features (model.avgpool(model.features(photos)))")
    expect_close(
        features,
        i["expected"],
        f"the backbone's features of {len(i['expected'])} test photos",
        atol=1e-3,
        hint="the frozen backbone changed: in training mode its batch normalisation updates its running "
        "averages with each batch. Put model.features in evaluation mode during the loop, then run the cells "
        "from the one that loads the backbone again",
        misconception=BATCH_NORM_UPDATED,
    )
    gradient, fresh = a.get("gradient"), a.get("fresh gradient")
    if gradient is not None:  # None: the gradients were cleared after the last step
        gradient = number(a, "gradient", "the size of model.classifier's gradients")
        fresh = number(a, "fresh gradient", "the size of a fresh batch's gradients")
        need(
            not (gradient > ACCUMULATED * fresh and gradient > ACCUMULATED_NORM),
            f"model.classifier's gradients are {gradient / max(fresh, 1e-12):.0f} times the size of a fresh "
            "batch's: they look added up over many steps. backward() adds to the gradients already there: "
            "call optimizer.zero_grad() in every step, then run this cell again",
            GRADIENTS_ACCUMULATE,
        )
    labels = i["labels"]
    scores = tensor(a, "scores", "model.classifier(features)")
    expect_shape(scores, (len(labels), 2), f"model.classifier(features of {len(labels)} test photos)")
    right = (scores.argmax(dim=1) == labels).float().mean().item()
    need(
        right >= 0.75,
        f"model.classifier is right on {right:.0%} of {len(labels)} test photos after the loop, expected at "
        "least 75%: did each step call optimizer.step(), for 2 epochs over photo_loader?",
    )
    return (
        f"the backbone unchanged (its features of {len(i['expected'])} test photos as before), an optimizer "
        "over model.classifier's parameters only, gradients no larger than one batch's, and the classifier "
        f"right on {right:.0%} of {len(labels)} test photos"
    )


photo_loop = Check(
    "test_photo_loop",
    after="photo_loop",
    judge=_judge_loop,
    ask=_ask_loop,
    given=_given_loop,
    hidden=lambda g: _loop_inputs(data.image_size(), g),
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
    like = [((8, 2), SCORES_FOR_FEATURES), ((8, 1000), SCORES_FOR_FEATURES)]
    shown = MAPS_NOT_POOLED if features.dim() == 2 and features.shape[1] % 1280 == 0 else None
    expect_shape(features, (8, 1280), "the features of 8 images", hint=hint, misconception=shown, like=like)
    expect_shape(labels, (len(i["labels"]),), "the labels of 8 images", hint="one class number per image")
    need(
        labels.tolist() == i["labels"],
        f"the labels should be the images' classes, got {labels.tolist()}",
        SHUFFLED_EXTRACTION if sorted(labels.tolist()) == sorted(i["labels"]) else None,
    )
    need(
        a.get("requires_grad") is False,
        "the features record gradients (autograd kept the backbone's graph): compute them under "
        "torch.no_grad()",
    )
    if at_grading():
        size = value(a, "image_size")
        need(size in (128, 224), f"image_size should be 128 or 224, it is {size!r}")
        expected = _trusted_features(i["paths"], size)
    else:
        expected = i["expected"]
    # the shape and the labels are right: features that differ are those of a backbone in training mode
    hint = "call model.eval() first: in training mode batch normalisation changes the features"
    shown = FEATURES_IN_TRAINING_MODE
    expect_close(features, expected, "the features", atol=1e-3, hint=hint, misconception=shown)
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
    train_data = ns.get("train_data")  # to tell the training photos' features from others
    training_photos = len(train_data) if hasattr(train_data, "__len__") else None
    return Inputs(
        {"few": few}, {"labels": torch.tensor(test_data.targets), "training photos": training_photos}
    )


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
    stopped = stopped_with(ns, "history", model)
    if stopped is not None:  # what it left is half-made: nothing else to judge
        return {"stopped": stopped}
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
    fail_if_stopped(a, [(r"input to conv2d", WHOLE_MODEL_ON_FEATURES)])
    labels = i["labels"]
    if not at_grading():
        n = value(a, "features", "test_features")
        need(
            n == len(labels),
            f"test_features holds {n} photos, test_data {len(labels)}: run the feature extraction cell again",
            TRAINING_FEATURES_TESTED if n == i.get("training photos") else None,
        )
    scores = tensor(a, "scores", "model.classifier(features)")
    expect_shape(scores, (len(labels), 2), "model.classifier(features of every test photo)")
    hint = "they should equal model.classifier(features) of the same photos: " + (
        "train model.classifier itself, not a copy of it"
        if at_grading()
        else "test_features must hold the backbone's features of test_data, in its order (run the feature "
        "extraction cell again)"
    )
    rows = i["rows"] if "rows" in i else torch.tensor(i["few"])  # the check's own: never the answer's
    expect_close(
        tensor(a, "whole", "model(photos)"),
        scores[rows],
        f"model(photos) for {len(rows)} test photos",
        atol=1e-2,
        rtol=1e-2,
        hint=hint,
        misconception=None if at_grading() else FEATURES_OUT_OF_ORDER,
    )
    accuracy = (scores.argmax(dim=1) == labels).float().mean().item()
    need(
        accuracy >= 0.95,
        f"test accuracy {accuracy:.1%} on the {len(labels)} test photos, expected at least 95% — "
        "train model.classifier (not a copy of it) on the features for more epochs",
        HEAD_UNDERTRAINED,
    )
    return (
        f"cat/dog test accuracy {accuracy:.1%} on the {len(labels)} test photos (the whole model gives the "
        f"same scores on {len(rows)} of them)"
    )


accuracy = Check(
    "test_accuracy",
    after="train_head",
    judge=_judge_accuracy,
    ask=_ask_accuracy,
    given=_given_accuracy,
    hidden=_hidden_accuracy,
)

CHECKS = [freeze, photo_loop, extract_features, accuracy]
