"""Part 7 — Loading image data: the checks of ``07_loading_image_data.ipynb``.

The learner's transforms are applied to a photo the check sends (at grading: a photo the grader picks, the
pixels sent as data); the judge computes what the deterministic test transform must give itself. The datasets
and loaders are asked for their classes, sizes and batches, and for a photo the grader picks by index, whose
class the judge knows. The learner's own ``Dataset`` is made on small photos and a CSV file the check writes
(at grading from pixels, labels and an order the grader draws) and read back, before and after a photo
changes.
"""

from __future__ import annotations

import torch

from checks import data
from checks.core import (
    Check,
    Inputs,
    Misconception,
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
    value,
)
from checks.kernel import hint as hint  # check.hint(): the next hint after a failed check
from checks.wire import Raised

# ------------------------------------------------------------------------------------------ misconceptions
_AUGMENT = "Augmentation"
_TRANSFORMS_SKELETON = (
    "train_transforms = v2.Compose([v2.RandomResizedCrop(224), v2.RandomHorizontalFlip(), ...])\n"
    "test_transforms = v2.Compose([v2.Resize(255), v2.CenterCrop(224), ...])"
)
NO_AUGMENTATION = Misconception(
    "training-without-augmentation",
    "training transforms without random augmentation",
    7,
    _AUGMENT,
    "Augmentation shows the network a new random view of each photo every epoch (crops, flips, colours), so "
    "it cannot learn the photos by heart: the training transforms must be random.",
    _TRANSFORMS_SKELETON,
    "augmentation",
)
TEST_AUGMENTED = Misconception(
    "test-images-augmented",
    "random augmentation applied to the test photos too",
    7,
    _AUGMENT,
    "A test must measure the same thing every time: the test photos get one fixed view (resize, centre "
    "crop), never a random one.",
    _TRANSFORMS_SKELETON,
    "augmentation",
)
NOT_NORMALISED = Misconception(
    "not-normalised",
    "images left unnormalised, in [0, 1], where the network expects ImageNet's statistics",
    7,
    "`ImageFolder`",
    "Normalize(mean, std) subtracts each channel's mean and divides by its standard deviation: the "
    "pretrained "
    "networks of Part 8 were trained on images normalised with ImageNet's, helper.IMAGENET_MEAN and _STD.",
    "v2.Compose([..., v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(...)])",
    "normalisation",
)
NO_CROP = Misconception(
    "no-crop",
    "photos of many sizes taken to batch as they are",
    7,
    "`ImageFolder`",
    "A batch is one tensor, so every image must have the same size: resize, then crop to 224 × 224.",
    _TRANSFORMS_SKELETON,
    "transform",
)
FOLDERS_SWAPPED = Misconception(
    "train-and-test-folders-swapped",
    "the test folder taken for the training folder",
    7,
    "Exercise 2 — datasets and loaders",
    "train_data reads data_dir / 'train' (with train_transforms), test_data reads data_dir / 'test'.",
    "train_data = datasets.ImageFolder(data_dir / ..., transform=train_transforms)",
    "training-set",
)
NOT_SHUFFLED = Misconception(
    "training-not-shuffled",
    "a training loader taken to need no shuffling",
    7,
    "Exercise 2 — datasets and loaders",
    "ImageFolder lists the photos class by class: unshuffled, whole batches hold one class, and each step "
    "pulls the network towards it. shuffle=True mixes them anew every epoch.",
    "trainloader = DataLoader(train_data, batch_size=..., shuffle=...)",
    "batch",
)
BATCH_TOO_SMALL = Misconception(
    "batch-size-too-small",
    "a batch size taken not to matter",
    7,
    "Exercise 2 — datasets and loaders",
    "Each step's gradient is an average over its batch: a batch of a few photos gives a noisy direction, and "
    "many more steps per epoch. Batches of 16 to 256 are the usual range.",
    "trainloader = DataLoader(train_data, batch_size=..., shuffle=True)",
    "batch-size",
)
TEST_SHUFFLED = Misconception(
    "test-loader-shuffled",
    "shuffling taken to help testing",
    7,
    "Exercise 2 — datasets and loaders",
    "Shuffling only matters for training; a test pass in a fixed order gives results you can match with the "
    "photos, run after run.",
    "testloader = DataLoader(test_data, batch_size=...)",
    "batch",
)
_CSV = "A `Dataset` of your own"
_CSV_SKELETON = (
    "def __getitem__(self, index):\n    name, label = self.rows[index]\n"
    "    photo = Image.open(self.image_dir / name).convert('RGB')\n    return self.transform(photo), ..."
)
READ_IN_INIT = Misconception(
    "photos-read-in-init",
    "every photo read once, when the dataset is made",
    7,
    _CSV,
    "A Dataset reads an item when it is asked for it, in __getitem__: a real data set does not fit in "
    "memory, and a random augmentation applied once would be the same at every epoch.",
    _CSV_SKELETON,
    "dataset",
)
HEADER_COUNTED = Misconception(
    "csv-header-counted",
    "the CSV's header line taken for a photo",
    7,
    _CSV,
    "The first line, filename,label, names the columns: csv.DictReader (or skipping it) leaves only the "
    "photos.",
    "rows = list(csv.DictReader(open(csv_file)))",
    "dataset",
)
GREY_NOT_RGB = Misconception(
    "greyscale-not-converted",
    "every photo taken to have three colour channels",
    7,
    _CSV,
    "Some photos are greyscale (one channel): Image.open(path).convert('RGB') gives every photo three, as "
    "ImageFolder does.",
    _CSV_SKELETON,
    "tensor",
)
LABELS_AS_STRINGS = Misconception(
    "labels-as-strings",
    "the CSV's label strings taken for class numbers",
    7,
    _CSV,
    "A loss needs class numbers: number the classes in alphabetical order (self.classes) and return "
    "self.classes.index(label).",
    "self.classes = sorted({label for _, label in rows})\n...\nreturn image, self.classes.index(...)",
    "dataset",
)
TRANSFORM_IGNORED = Misconception(
    "transform-ignored",
    "the dataset's own conversion taken for the transform it was given",
    7,
    _CSV,
    "Whoever makes the dataset chooses the transform (augmentation for training, none for testing): "
    "__getitem__ applies self.transform, whatever it is.",
    _CSV_SKELETON,
    "transform",
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
    grey = photo.convert("L").convert("RGB")  # its three channels equal: normalised back, they stay equal
    answers["train_transforms(grey photo)"] = cpu(attempt(train, grey)) if callable(train) else train
    return answers


def _two(a: dict, name: str, label: str) -> list:
    """The answer ``name``: a list of two things (one per dataset, loader or run)."""
    got = value(a, name, label)
    need(isinstance(got, list) and len(got) == 2, f"{label}: expected two values, got {kind(got)}")
    return got


def _judge_transforms(i: dict, a: dict) -> str:
    from torchvision.transforms import v2

    outputs = {}
    for label in ("train_transforms", "test_transforms"):
        first, second = _two(a, label, f"{label}(photo), twice")
        for out in (first, second):
            if isinstance(out, Raised):
                fail(f"{label}(photo) raised {out.message}")
            hint = "crop to 224×224 and end with ToImage, ToDtype and Normalize"
            uncropped = NO_CROP if isinstance(out, torch.Tensor) and out.dim() == 3 else None
            expect_shape(out, (3, 224, 224), f"{label}(photo)", hint=hint, misconception=uncropped)
        outputs[label] = first, second
    need(
        not torch.equal(*outputs["train_transforms"]),
        "train_transforms gives the same tensor twice: add the random augmentations",
        NO_AUGMENTATION,
    )
    need(
        torch.equal(*outputs["test_transforms"]),
        "test_transforms is random: test images must not be augmented (Resize, CenterCrop, ToImage, "
        "ToDtype, Normalize)",
        TEST_AUGMENTED,
    )
    to_float = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True)]
    plain = v2.Compose([v2.Resize(255), v2.CenterCrop(224), *to_float])(_pil(i["photo"])).as_subclass(
        torch.Tensor
    )
    expected = (plain - torch.tensor(IMAGENET_MEAN).view(3, 1, 1)) / torch.tensor(IMAGENET_STD).view(3, 1, 1)
    hint = (
        "Resize(255), CenterCrop(224), ToImage, ToDtype, then Normalize(helper.IMAGENET_MEAN, "
        "helper.IMAGENET_STD)"
    )
    like = [(plain, NOT_NORMALISED)]
    label = "test_transforms(photo)"
    expect_close(outputs["test_transforms"][0], expected, label, atol=1e-5, hint=hint, like=like)
    # The training views, normalised too: of a grey photo (R = G = B), every crop, flip, rotation, blur and
    # change of brightness, contrast, saturation or hue is grey, so Normalize(IMAGENET_MEAN, IMAGENET_STD)
    # undone gives equal channels again; without it (or with other statistics) they differ by 0.02 or more.
    grey = value(a, "train_transforms(grey photo)", "train_transforms(a grey photo)")
    expect_shape(grey, (3, 224, 224), "train_transforms(a grey photo)")
    undone = grey * torch.tensor(IMAGENET_STD).view(3, 1, 1) + torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    equal = ((undone.amax(dim=0) - undone.amin(dim=0)) <= 1e-3).float().mean().item()
    need(
        equal >= 0.5,  # most of it: an erased patch or a rotation's corners, filled after Normalize, are not
        "train_transforms(photo) is not normalised with helper.IMAGENET_MEAN and helper.IMAGENET_STD (a grey "
        "photo's channels, normalised back, differ) — end train_transforms with ToImage, ToDtype and "
        "Normalize(helper.IMAGENET_MEAN, helper.IMAGENET_STD), as test_transforms",
        NOT_NORMALISED,
    )
    return (
        "transforms: random 224×224 training views, the same normalised 224×224 view for testing, both "
        "normalised with ImageNet's statistics"
    )


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
    train_classes, test_classes = _two(a, "classes", "the classes of train_data and test_data")
    need(
        train_classes == ["cat", "dog"] and test_classes == ["cat", "dog"],
        f"expected the classes ['cat', 'dog'], got {train_classes} and {test_classes} — use data_dir / "
        "'train' and data_dir / 'test'",
    )
    train_size, test_size = _two(a, "sizes", "the sizes of train_data and test_data")
    for name, size in (("train_data", train_size), ("test_data", test_size)):
        if isinstance(size, Raised):
            fail(f"len({name}) raised {size.message}")
        need(isinstance(size, int), f"len({name}) should be a number, got {kind(size)}")
    need(
        (train_size, test_size) == (i["counts"]["train"], i["counts"]["test"]),
        f"train_data holds {train_size} photos and test_data {test_size}: are the folders swapped?"
        if train_size == i["counts"]["test"]
        else f"train_data holds {train_size} photos and test_data {test_size}, the folders "
        f"{i['counts']['train']} and {i['counts']['test']}",
        FOLDERS_SWAPPED if train_size == i["counts"]["test"] else None,
    )
    need(
        all(x is True for x in _two(a, "transforms", "the datasets' transforms")),
        "train_data should use train_transforms, and test_data test_transforms",
    )
    batch = a.get("batch", Raised("no answer"))
    if isinstance(batch, Raised):
        fail(f"next(iter(trainloader)) raised {batch.message}")
    need(
        isinstance(batch, list) and len(batch) == 2,
        f"a batch of trainloader should be (images, labels), got {kind(batch)}",
    )
    shape, labels = batch
    need(
        isinstance(shape, list) and all(isinstance(n, int) and not isinstance(n, bool) for n in shape),
        f"a batch of trainloader: its images should be a tensor, got {kind(shape)}",
    )
    if len(shape) != 4 or tuple(shape[1:]) != (3, 224, 224):
        fail(f"a batch of trainloader: expected shape (batch, 3, 224, 224), got {tuple(shape[:8])}")
    need(
        16 <= shape[0] <= 256,
        f"trainloader's batches hold {shape[0]} photos: choose a batch size between 16 and 256 (with fewer, "
        "each step's gradient is too noisy; with more, few steps per epoch and much memory)",
        BATCH_TOO_SMALL if shape[0] < 16 else None,
    )
    expect_shape(labels, (shape[0],), "a batch of trainloader's labels")
    need(
        not labels.is_floating_point() and not labels.is_complex(),
        f"a batch of trainloader's labels should be class numbers, got {labels.dtype}",
    )
    need(
        set(labels.tolist()) == {0, 1},
        f"a training batch holds only the classes {set(labels.tolist())}: shuffle the training loader",
        NOT_SHUFFLED,
    )
    test_batch = value(a, "test batch", "a batch of testloader")
    need(
        isinstance(test_batch, list) and len(test_batch) == 4 and test_batch[1:] == [3, 224, 224],
        f"a batch of testloader: expected shape (batch, 3, 224, 224), got {test_batch}",
    )
    need(value(a, "test sampler") == "SequentialSampler", "the test loader need not shuffle", TEST_SHUFFLED)
    item = value(a, "item", f"test_data[{i['index']}]")
    need(
        isinstance(item, list), f"test_data[{i['index']}] should be an (image, label) pair, got {kind(item)}"
    )
    need(len(item) == 3, f"test_data[{i['index']}] should be an (image, label) pair")
    label, image, expected = item
    need(
        isinstance(label, int) and label == i["label"],
        f"test_data[{i['index']}] has the label {label if isinstance(label, int) else kind(label)}, its "
        f"folder says {i['label']}",
    )
    expect_shape(image, (3, 224, 224), f"test_data[{i['index']}]")
    expect_shape(expected, (3, 224, 224), f"test_transforms(photo {i['index']} of test_data)")
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


# ------------------------------------------------------------------------------------- a Dataset of one's own
_CLASS_NAMES = ("ant", "bee", "cat", "dog", "eel", "fox")


def _csv_inputs(g: torch.Generator) -> Inputs:
    """Six small photos (one greyscale, two in a sub-folder), labelled in a CSV whose order is not the files'
    order, and a replacement for one of them (written after the dataset is made)."""
    n, size = 6, (12, 16)
    names = [_CLASS_NAMES[k] for k in torch.randperm(len(_CLASS_NAMES), generator=g)[:3].tolist()]
    labels = [names[k] for k in torch.randint(0, 3, (n,), generator=g).tolist()]
    labels[:3] = names  # every class appears
    order = torch.randperm(n, generator=g).tolist()
    return Inputs(
        {
            "pixels": torch.randint(0, 256, (n, *size, 3), generator=g, dtype=torch.uint8),
            "replacement": torch.randint(0, 256, (*size, 3), generator=g, dtype=torch.uint8),
            "labels": [labels[k] for k in order],
            "files": [(f"sub/photo{k}.png" if k % 3 == 2 else f"photo{k}.png") for k in order],
            "grey": int(torch.randint(0, n, (1,), generator=g)),
            "changed": int(torch.randint(0, n, (1,), generator=g)),
        }
    )


def _as_tensor(image) -> torch.Tensor:
    """The transform the check gives the learner's dataset: the photo as floats in [0, 1], flipped left to
    right (so that a dataset that ignores its transform shows)."""
    from torchvision.transforms import v2

    return v2.functional.to_dtype(v2.functional.to_image(image), torch.float32, scale=True).flip(-1)


def _ask_csv(ns: dict, sent: dict) -> dict:
    import tempfile
    from pathlib import Path

    from PIL import Image
    from torch.utils.data import DataLoader

    dataset_class = lookup(ns, "CsvPhotos")
    if isinstance(dataset_class, Raised):
        return {"$problem": dataset_class}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "sub").mkdir()
        for k, (name, pixels) in enumerate(zip(sent["files"], sent["pixels"], strict=True)):
            image = Image.fromarray(pixels.numpy())
            (image.convert("L") if k == sent["grey"] else image).save(root / name)
        table = root / "labels.csv"
        rows = [
            "filename,label",
            *(f"{f},{label}" for f, label in zip(sent["files"], sent["labels"], strict=True)),
        ]
        table.write_text("\n".join(rows) + "\n")
        dataset = attempt(dataset_class, table, root, _as_tensor)
        if isinstance(dataset, Raised):
            return {"$problem": Raised(f"CsvPhotos(csv_file, image_dir, transform) raised {dataset.message}")}
        items = [attempt(lambda k=k: dataset[k]) for k in range(len(sent["files"]))]
        changed = sent["changed"]
        Image.fromarray(sent["replacement"].numpy()).save(root / sent["files"][changed])
        again = attempt(lambda: dataset[changed])
        batch = attempt(lambda: next(iter(DataLoader(dataset, batch_size=len(sent["files"])))))
    return {
        "len": attempt(len, dataset),
        "classes": getattr(dataset, "classes", Raised("no attribute classes")),
        "items": [_pair(item) for item in items],
        "again": _pair(again),
        "batch": [list(batch[0].shape), cpu(batch[1])] if isinstance(batch, list | tuple) else batch,
    }


def _pair(item: object) -> object:
    if isinstance(item, tuple | list) and len(item) == 2:
        image, label = item
        label = label.item() if isinstance(label, torch.Tensor) and label.numel() == 1 else label
        return [cpu(image), label]
    return (
        item if isinstance(item, Raised) else Raised(f"an item is {kind(item)}, not an (image, label) pair")
    )


def _judge_csv(i: dict, a: dict) -> str:
    n = len(i["files"])
    size = a.get("len")
    if isinstance(size, Raised):
        fail(f"len(dataset) raised {size.message}")
    need(isinstance(size, int), f"len(dataset) should be a number, got {kind(size)}")
    need(
        size == n,
        f"len(dataset) is {size}, the CSV lists {n} photos"
        + (" — the header line filename,label is not a photo" if size == n + 1 else ""),
        HEADER_COUNTED if size == n + 1 else None,
    )
    classes = value(a, "classes", "dataset.classes")
    expected_classes = sorted(set(i["labels"]))
    need(
        classes == expected_classes,
        f"dataset.classes should be the CSV's labels in alphabetical order, {expected_classes}, got "
        f"{classes}",
    )
    expected = [_as_tensor(_pil(pixels)) for pixels in i["pixels"]]
    grey = _pil(i["pixels"][i["grey"]]).convert("L").convert("RGB")
    expected[i["grey"]] = _as_tensor(grey)
    items = value(a, "items")
    need(isinstance(items, list) and len(items) == n, f"the dataset's items: got {kind(items)}")
    for k, (item, want, label) in enumerate(zip(items, expected, i["labels"], strict=True)):
        if isinstance(item, Raised):
            fail(f"dataset[{k}] raised {item.message}")
        need(isinstance(item, list) and len(item) == 2, f"dataset[{k}] should be an (image, label) pair")
        image, got = item
        need(
            got == classes.index(label) and type(got) is int,
            f"dataset[{k}]'s label should be {classes.index(label)} (its CSV line says {label!r}, and the "
            f"classes are numbered in alphabetical order), got {got!r}",
            LABELS_AS_STRINGS if isinstance(got, str) else None,
        )
        need(
            isinstance(image, torch.Tensor),
            f"dataset[{k}]'s image should be transform(photo), got {kind(image)}",
        )
        if image.dim() == 3 and image.shape[0] == 1:
            fail(
                f"dataset[{k}] has 1 channel: that photo is greyscale — open every photo with "
                "Image.open(path).convert('RGB'), as ImageFolder does",
                GREY_NOT_RGB,
            )
        if image.shape == want.shape and is_close(image, want.flip(-1)):
            fail(
                f"dataset[{k}] is the photo without the transform it was given: return transform(photo)",
                TRANSFORM_IGNORED,
            )
        hint = "the photo of the CSV's line, opened as RGB, through transform"
        expect_close(image, want, f"dataset[{k}]", atol=1e-6, hint=hint)
    again = value(a, "again")
    if isinstance(again, Raised):
        fail(f"reading dataset[{i['changed']}] a second time raised {again.message}")
    need(
        isinstance(again, list) and len(again) == 2,
        f"dataset[{i['changed']}] should be an (image, label) pair",
    )
    new = _as_tensor(_pil(i["replacement"]))
    need(
        isinstance(again[0], torch.Tensor) and is_close(again[0], new),
        f"dataset[{i['changed']}] still gives the photo as it was when the dataset was made: the dataset "
        "read the photos in __init__ — open each in __getitem__ (all of them in memory would not fit a real "
        "data set, and an augmentation applied once is the same at every epoch)",
        READ_IN_INIT,
    )
    batch = value(a, "batch")
    if isinstance(batch, Raised):
        fail(f"a DataLoader over the dataset raised {batch.message}")
    need(isinstance(batch, list) and len(batch) == 2, f"a DataLoader batch of the dataset: got {kind(batch)}")
    shape, labels = batch
    need(
        shape == [n, *expected[0].shape] and isinstance(labels, torch.Tensor),
        f"a DataLoader batch of the dataset: expected images of shape {(n, *expected[0].shape)} and a "
        f"tensor of labels, got {tuple(shape[:8]) if isinstance(shape, list) else kind(shape)} and "
        f"{kind(labels)}",
    )
    return (
        "CsvPhotos: one (transform(photo), label) per CSV line, photos opened as RGB in __getitem__, classes "
        "numbered alphabetically, batched by a DataLoader"
    )


csv_dataset = Check(
    "test_csv_dataset",
    after="csv_dataset",
    judge=_judge_csv,
    ask=_ask_csv,
    given=lambda ns: _csv_inputs(torch.Generator().manual_seed(7)),
    hidden=_csv_inputs,
)

CHECKS = [transforms, loaders, csv_dataset]
