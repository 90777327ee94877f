"""The data the checks measure models on: MNIST-like test images and cat/dog photos, as plain tensors.

Images travel to the kernel as raw pixels (uint8); the kernel turns them into the notebook's inputs the way
the course does (``ToTensor`` then ``Normalize((0.5,), (0.5,))``, or the backbone's normalisation), runs the
learner's model, and sends back only its scores. Labels never travel: the judge keeps them. At grading the
images come in a hidden order with a small hidden perturbation (±2 grey levels, a flip, a shift of a pixel or
two), so an answer that looks images up in the public test set instead of classifying them finds no exact
match."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import torch

BATCH = 500


def mnist(train: bool, fashion: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The pixels (N, 28, 28, uint8) and labels of MNIST or Fashion-MNIST."""
    import helper

    dataset = helper.get_mnist(train=train, fashion=fashion)
    return dataset.data.clone(), dataset.targets.clone()


def validation_indices() -> list[int]:
    """The validation images of Part 5: ``random_split`` of the 60,000 training images, 50,000/10,000, seed
    7."""
    from torch.utils.data import random_split

    return random_split(range(60_000), [50_000, 10_000], generator=torch.Generator().manual_seed(7))[
        1
    ].indices


def perturbed(
    pixels: torch.Tensor, labels: torch.Tensor, g: torch.Generator, noise: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """The images in a hidden order and, with ``noise``, each grey level moved by up to 2 (invisible, and no
    longer a byte-exact copy of the public file). Without noise for checks that compare the model's loss with
    the notebook's own figures."""
    order = torch.randperm(len(pixels), generator=g)
    pixels, labels = pixels[order], labels[order]
    if noise:
        pixels = (
            (pixels.long() + torch.randint(-2, 3, pixels.shape, generator=g)).clamp(0, 255).to(torch.uint8)
        )
    return pixels, labels


def fashion_images(
    which: str, g: torch.Generator | None, noise: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST's validation images of Parts 4 and 5 (which="valid") or its test images: in order in the
    notebook, in a hidden order (and perturbed, with ``noise``) at grading."""
    if which == "valid":
        pixels, labels = mnist(train=True, fashion=True)
        index = torch.tensor(validation_indices())
        pixels, labels = pixels[index], labels[index]
    else:
        pixels, labels = mnist(train=False, fashion=True)
    return perturbed(pixels, labels, g, noise) if g is not None else (pixels, labels)


def scores(model: object, pixels: torch.Tensor) -> object:
    """In the kernel: the model's outputs for MNIST-like pixels, normalised as the course's loaders do, in
    batches, in evaluation mode (the model's mode is restored); flattened for a network without nn.Flatten."""
    from checks.core import attempt, device_of
    from checks.wire import Raised

    if not callable(model):
        return Raised(f"the model is a {type(model).__name__}, not a network")
    device = device_of(model)
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    try:
        images = pixels.float().div(255).sub(0.5).div(0.5).unsqueeze(1)
        flat = takes_flat_input(model, images[:2].to(device))
        outputs = []
        with torch.no_grad():
            for start in range(0, len(images), BATCH):
                batch = images[start : start + BATCH].to(device)
                out = attempt(model, batch.flatten(1) if flat else batch)
                if not isinstance(out, torch.Tensor):
                    return (
                        out
                        if isinstance(out, Raised)
                        else Raised(f"the model returned a {type(out).__name__}")
                    )
                outputs.append(out.detach().float().cpu())
        return torch.cat(outputs)
    finally:
        if hasattr(model, "train"):
            model.train(was_training)


def takes_flat_input(model: object, images: torch.Tensor) -> bool:
    """Whether ``model`` needs ``images`` flattened to (batch, features): a network without ``nn.Flatten``, as
    in the original course (a missing nn.Flatten costs the check that asks for it, not every later one)."""
    try:
        with torch.no_grad():
            model(images)
    except Exception:
        return True
    return False


def accuracy(outputs: torch.Tensor, labels: torch.Tensor) -> float:
    return (outputs.argmax(dim=1) == labels).float().mean().item()


def cross_entropy(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """The mean cross-entropy of a model's scores: CrossEntropyLoss per example (the same for
    log-probabilities, whose log-softmax they already are)."""
    return torch.nn.functional.cross_entropy(scores.double(), labels).item()


# ------------------------------------------------------------------------------------------ cats and dogs
def catdog_files(split: str) -> tuple[list[Path], list[int]]:
    """The course set's photos of a split in ImageFolder's order, and their classes (0 cat, 1 dog)."""
    from torchvision import datasets

    import helper

    folder = datasets.ImageFolder(helper.cat_dog_dir() / split)
    return [Path(p) for p, _ in folder.samples], [t for _, t in folder.samples]


def photo(path: Path) -> torch.Tensor:
    """A photo as (H, W, 3) uint8."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as image:
        return torch.from_numpy(np.asarray(image.convert("RGB")).copy())


CACHE: Path | None = None  # where the grader keeps what it computed once (grader.verdicts sets it)
KERNEL_CUDA: bool | None = None  # whether the learner's kernel has a GPU (the grader sets it; None: ours)


def image_size() -> int:
    """Part 8's image size in the learner's kernel: 224 with a GPU, 128 on a CPU (the notebook's own rule).
    The grader's sandbox has no GPU."""
    cuda = torch.cuda.is_available() if KERNEL_CUDA is None else KERNEL_CUDA
    return 224 if cuda else 128


def catdog_inputs(paths: list[Path], image_size: int) -> torch.Tensor:
    """Photos as Part 8's test transform makes them (``transforms.v2``, as the notebook): resized
    (shorter side × 8/7), centre-cropped, normalised for the backbone."""
    from PIL import Image
    from torchvision.transforms import v2

    backbone = _backbone()
    transform = v2.Compose(
        [
            v2.Resize(image_size * 8 // 7),
            v2.CenterCrop(image_size),
            v2.ToImage(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(backbone.mean, backbone.std),
        ]
    )
    images = []
    for path in paths:
        with Image.open(path) as image:
            images.append(transform(image.convert("RGB")))
    return torch.stack(images)


@functools.cache
def _backbone():
    import helper

    return helper.pretrained_backbone()


def catdog_features(paths: list[Path], image_size: int) -> torch.Tensor:
    """The backbone's averaged features (N, 1280) of photos, computed on the grader's side, in evaluation
    mode. Kept on disk in :data:`CACHE` (the grader's own folder) under a key of the photos, the backbone and
    the size: every notebook a worker grades uses the same."""
    import hashlib

    from safetensors.torch import load_file, save_file

    backbone = _backbone()
    key = hashlib.sha256(
        repr([(p.name, p.stat().st_size) for p in paths]).encode()
        + f"{backbone.description}|{image_size}|{torch.__version__}|v2".encode()
    ).hexdigest()[:24]
    cached = CACHE / f"features-{key}.safetensors" if CACHE is not None else None
    if cached is not None and cached.exists():
        return load_file(cached)["features"]
    if key in _features:
        return _features[key]
    model = backbone.model.eval()
    batches = []
    with torch.no_grad():
        for start in range(0, len(paths), 32):
            images = catdog_inputs(paths[start : start + 32], image_size)
            batches.append(torch.flatten(model.avgpool(model.features(images)), 1))
    features = torch.cat(batches) if batches else torch.zeros(0, 1280)
    _features[key] = features
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.partial")
        save_file({"features": features.contiguous()}, partial)
        partial.replace(cached)
    return features


_features: dict[str, torch.Tensor] = {}
