"""Part 7 — Loading image data: the checks of ``07_loading_image_data.ipynb``.

The learner's transforms are applied to a photo the check sends (at grading: a photo the grader picks, the
pixels sent as data); the judge computes what the deterministic test transform must give itself. The datasets
and loaders are asked for their classes, sizes and batches, and for a photo the grader picks by index, whose
class the judge knows.
"""

from __future__ import annotations

import torch

from checks import data
from checks.core import (
    Check,
    Inputs,
    Raised,
    attempt,
    cpu,
    expect_close,
    expect_shape,
    fail,
    kind,
    lookup,
    need,
    pick,
    value,
)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _pil(pixels: torch.Tensor):
    from PIL import Image

    return Image.fromarray(pixels.numpy())


# ------------------------------------------------------------------------------------------ transforms
def _transform_inputs(g: torch.Generator | None, data_dir=None) -> Inputs:
    if g is None:
        photo = sorted((data_dir / "test" / "dog").glob("*.jpg"))[0]
    else:
        paths, _ = data.catdog_files("test")
        photo = paths[int(torch.randint(0, len(paths), (1,), generator=g))]
    return Inputs({"photo": data.photo(photo)})


def _ask_transforms(ns: dict, sent: dict) -> dict:
    train, test = lookup(ns, "train_transforms"), lookup(ns, "test_transforms")
    photo = _pil(sent["photo"])
    torch.manual_seed(0)  # inside the check's own random state: the notebook's is restored afterwards
    answers = {}
    for label, tf in (("train_transforms", train), ("test_transforms", test)):
        answers[label] = (
            [cpu(attempt(tf, photo)) for _ in range(2)]
            if callable(tf)
            else [
                tf if isinstance(tf, Raised) else Raised(f"{label} is a {type(tf).__name__}, not a transform")
            ]
            * 2
        )
    return answers


def _judge_transforms(i: dict, a: dict) -> str:
    from torchvision import transforms

    outputs = {}
    for label in ("train_transforms", "test_transforms"):
        first, second = value(a, label)
        for out in (first, second):
            if isinstance(out, Raised):
                fail(f"{label}(photo) raised {out.message}")
            hint = "crop to 224×224 and end with ToTensor/Normalize"
            expect_shape(out, (3, 224, 224), f"{label}(photo)", hint=hint)
        outputs[label] = first, second
    need(
        not torch.equal(*outputs["train_transforms"]),
        "train_transforms gives the same tensor twice: add the random augmentations",
    )
    need(
        torch.equal(*outputs["test_transforms"]),
        "test_transforms is random: test images must not be augmented (Resize, CenterCrop, ToTensor, "
        "Normalize)",
    )
    plain = transforms.Compose([transforms.Resize(255), transforms.CenterCrop(224), transforms.ToTensor()])(
        _pil(i["photo"])
    )
    expected = (plain - torch.tensor(IMAGENET_MEAN).view(3, 1, 1)) / torch.tensor(IMAGENET_STD).view(3, 1, 1)
    hint = "Resize(255), CenterCrop(224), ToTensor, then Normalize(helper.IMAGENET_MEAN, helper.IMAGENET_STD)"
    expect_close(outputs["test_transforms"][0], expected, "test_transforms(photo)", atol=1e-5, hint=hint)
    return "transforms: random 224×224 training views, the same normalised 224×224 view for testing"


transforms = Check(
    "test_transforms",
    after="transforms",
    judge=_judge_transforms,
    ask=_ask_transforms,
    given=lambda ns: _transform_inputs(None, pick(ns, "data_dir")["data_dir"]),
    hidden=_transform_inputs,
)


# ------------------------------------------------------------------------------------------ loaders
def _loader_inputs(g: torch.Generator | None, data_dir=None) -> Inputs:
    import helper

    if g is None:
        from torchvision import datasets

        folder = datasets.ImageFolder(data_dir / "test")
        counts = {split: len(datasets.ImageFolder(data_dir / split)) for split in ("train", "test")}
        index = len(folder) - 1
        label = folder.targets[index]
    else:
        counts = {split: len(data.catdog_files(split)[0]) for split in ("train", "test")}
        _, targets = data.catdog_files("test")
        index = int(torch.randint(0, len(targets), (1,), generator=g))
        label = targets[index]
    _ = helper
    return Inputs(
        {"index": index, "seed": 0 if g is None else int(torch.randint(0, 2**31, (1,), generator=g))},
        {"label": label, "counts": counts},
    )


def _ask_loaders(ns: dict, sent: dict) -> dict:
    found = {name: lookup(ns, name) for name in ("train_data", "test_data", "trainloader", "testloader")}
    for name, x in found.items():
        if isinstance(x, Raised):
            return {"$problem": Raised(f"{name}: {x.message}")}
    train_data, test_data = found["train_data"], found["test_data"]
    train_tf, test_tf = ns.get("train_transforms"), ns.get("test_transforms")
    torch.manual_seed(sent["seed"])
    batch = attempt(lambda: next(iter(found["trainloader"])))
    test_batch = attempt(lambda: next(iter(found["testloader"])))
    item = attempt(lambda: test_data[sent["index"]])
    return {
        "classes": [getattr(train_data, "classes", None), getattr(test_data, "classes", None)],
        "sizes": [attempt(len, train_data), attempt(len, test_data)],
        "transforms": [
            getattr(train_data, "transform", None) is train_tf,
            getattr(test_data, "transform", None) is test_tf,
        ],
        "batch": [cpu(batch[0]).shape, cpu(batch[1])] if isinstance(batch, list | tuple) else batch,
        "test batch": list(test_batch[0].shape) if isinstance(test_batch, list | tuple) else test_batch,
        "test sampler": type(getattr(found["testloader"], "sampler", None)).__name__,
        "item": [item[1], cpu(item[0]), cpu(attempt(test_tf, _open(test_data, sent["index"])))]
        if isinstance(item, tuple)
        else item,
    }


def _open(dataset, index):
    from PIL import Image

    with Image.open(dataset.samples[index][0]) as image:
        return image.convert("RGB")


def _judge_loaders(i: dict, a: dict) -> str:
    train_classes, test_classes = value(a, "classes")
    need(
        train_classes == ["cat", "dog"] and test_classes == ["cat", "dog"],
        f"expected the classes ['cat', 'dog'], got {train_classes} and {test_classes} — use data_dir / "
        "'train' and "
        "data_dir / 'test'",
    )
    train_size, test_size = value(a, "sizes")
    need(
        (train_size, test_size) == (i["counts"]["train"], i["counts"]["test"]),
        f"train_data holds {train_size} photos and test_data {test_size}: are the folders swapped?"
        if train_size == i["counts"]["test"]
        else f"train_data holds {train_size} photos and test_data {test_size}, the folders "
        f"{i['counts']['train']} and "
        f"{i['counts']['test']}",
    )
    need(all(value(a, "transforms")), "train_data should use train_transforms, and test_data test_transforms")
    batch = a.get("batch", Raised("no answer"))
    if isinstance(batch, Raised):
        fail(f"next(iter(trainloader)) raised {batch.message}")
    shape, labels = batch
    if len(shape) != 4 or tuple(shape[1:]) != (3, 224, 224):
        fail(f"a batch of trainloader: expected shape (batch, 3, 224, 224), got {tuple(shape)}")
    need(
        16 <= shape[0] <= 256,
        f"trainloader's batches hold {shape[0]} photos: choose a batch size between 16 and 256 (with fewer, "
        "each step's gradient is too noisy; with more, few steps per epoch and much memory)",
    )
    need(
        set(labels.tolist()) == {0, 1},
        f"a training batch holds only the classes {set(labels.tolist())}: shuffle the training loader",
    )
    test_batch = value(a, "test batch", "a batch of testloader")
    need(
        isinstance(test_batch, list) and len(test_batch) == 4 and test_batch[1:] == [3, 224, 224],
        f"a batch of testloader: expected shape (batch, 3, 224, 224), got {test_batch}",
    )
    need(value(a, "test sampler") == "SequentialSampler", "the test loader need not shuffle")
    item = value(a, "item", f"test_data[{i['index']}]")
    need(
        isinstance(item, list), f"test_data[{i['index']}] should be an (image, label) pair, got {kind(item)}"
    )
    label, image, expected = item
    need(label == i["label"], f"test_data[{i['index']}] has the label {label}, its folder says {i['label']}")
    expect_close(
        image,
        expected,
        f"test_data[{i['index']}]",
        hint="test_data should apply test_transforms to the photo",
    )
    return (
        f"datasets and loaders: cats and dogs, training batches of {shape[0]}, training shuffled, testing "
        "in order"
    )


loaders = Check(
    "test_loaders",
    after="loaders",
    judge=_judge_loaders,
    ask=_ask_loaders,
    given=lambda ns: _loader_inputs(None, pick(ns, "data_dir")["data_dir"]),
    hidden=_loader_inputs,
)

CHECKS = [transforms, loaders]
