"""The learner at home: every download path, offline, over HTTP servers on 127.0.0.1 that these tests start.

- the original course's cat/dog archive (its layout and class balance, built here from the mirror's photos):
  Part 7 runs end to end, and Part 8 up to its data, from an empty data root with no mirror, and the data
  root then holds the course-sized set, the same photos as the mirror's (nbval runs all of Part 8 on them);
- a download cut short and a corrupt archive: one clear message, nothing half-made left behind, and a second
  run that starts clean;
- MNIST through torchvision's own download, from a copy of its mirror;
- torchvision's EfficientNet-B0 from the torch hub cache: no fallback, and Part 8 runs up to training with it.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import shutil
import threading
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
import torch
from nbclient import NotebookClient
from PIL import Image

import course
import coursedata
import helper
from harness import graded_id, problems

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


class Server(http.server.ThreadingHTTPServer):
    """Serves the files of `folder`; under /cut/, a file's true length, then half of it, then it hangs up."""

    def __init__(self, folder: Path):
        self.folder = folder

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(handler) -> None:
                cut = handler.path.startswith("/cut/")
                path = folder / handler.path.removeprefix("/cut/").lstrip("/")
                if not path.is_file():
                    handler.send_error(404)
                    return
                data = path.read_bytes()
                handler.send_response(200)
                handler.send_header("Content-Length", str(len(data)))
                handler.end_headers()
                handler.wfile.write(data[: len(data) // 2] if cut else data)
                handler.close_connection = True

            def log_message(handler, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{name}"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("served"))
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    yield running
    running.shutdown()
    shutil.rmtree(running.folder, ignore_errors=True)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A learner at home: an empty data root, no mirror, no proxy in the way of 127.0.0.1."""
    monkeypatch.setenv(helper.DATA_ENV, str(tmp_path / "data"))
    monkeypatch.delenv(helper.MIRROR_ENV, raising=False)
    monkeypatch.delenv(coursedata.CAT_DOG_FULL_ENV, raising=False)
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    return tmp_path / "data"


def _need_mirror(mirror: Path | None) -> Path:
    if mirror is None or not (mirror / "Cat_Dog_data").is_dir():
        pytest.skip("no offline mirror (PYTORCH_COURSE_MIRROR) on this machine")
    return mirror


def _photo(width: int, height: int, seed: int) -> bytes:
    generator = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (height, width, 3), generator=generator, dtype=torch.uint8).numpy()
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=80)
    return out.getvalue()


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zipped:
        for name, data in members.items():
            zipped.writestr(name, data)
    return path


def _small_archive(path: Path) -> Path:
    """Three photos per class and split, in the original's layout, one of them large, and macOS debris."""
    members = {}
    for split in ("train", "test"):
        for n, name in enumerate(("cat", "dog")):
            for number in (10, 2, 1):
                members[f"Cat_Dog_data/{split}/{name}/{name}.{number}.jpg"] = _photo(40, 30, number + n)
    members["Cat_Dog_data/train/cat/cat.1.jpg"] = _photo(600, 400, 99)  # shorter side 400 > 256
    members["__MACOSX/Cat_Dog_data/train/cat/._cat.1.jpg"] = b"resource fork"
    return _zip(path, members)


def _files(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# ------------------------------------------------------------------------------------ cat/dog archive
def test_the_course_sized_set_is_chosen_and_resized_the_same_way_everywhere(server, home, monkeypatch):
    _small_archive(server.folder / "small.zip")
    monkeypatch.setenv(coursedata.CAT_DOG_URL_ENV, server.url("small.zip"))
    monkeypatch.setattr(coursedata, "CAT_DOG_SPLITS", {"train": 2, "test": 1})  # the first 2 and 1 per class
    folder = helper.cat_dog_dir()
    assert folder == home / "Cat_Dog_data"
    assert sorted(p.name for p in (folder / "train" / "cat").iterdir()) == ["cat.1.jpg", "cat.2.jpg"]
    assert sorted(p.name for p in (folder / "test" / "dog").iterdir()) == ["dog.1.jpg"]
    with Image.open(folder / "train" / "cat" / "cat.1.jpg") as resized:
        assert resized.size == (384, 256), resized.size
    with zipfile.ZipFile(home / "Cat_Dog_data.zip") as zipped:  # small photos are kept byte for byte
        assert (folder / "train" / "dog" / "dog.2.jpg").read_bytes() == zipped.read(
            "Cat_Dog_data/train/dog/dog.2.jpg"
        )
    everything = helper.cat_dog_dir(full=True)  # from the archive already there: no second download
    assert everything == home / "Cat_Dog_data_full"
    assert len(list((everything / "train" / "cat").iterdir())) == 3
    assert sorted(p.name for p in home.iterdir()) == ["Cat_Dog_data", "Cat_Dog_data.zip", "Cat_Dog_data_full"]


@pytest.mark.parametrize(
    "served, message",
    [
        ("cut/small.zip", "the connection closed after"),
        ("corrupt.zip", "is corrupt in the archive"),
        ("page.html", "not a zip archive"),
        ("missing.zip", "HTTP Error 404"),
    ],
)
def test_a_failed_download_says_what_to_do_and_leaves_nothing(server, home, monkeypatch, served, message):
    archive = _small_archive(server.folder / "small.zip")
    data = bytearray(archive.read_bytes())
    middle = data.index(b"Cat_Dog_data/test/dog/dog.1.jpg") + 200  # inside a photo: its CRC no longer matches
    data[middle : middle + 50] = bytes(50)
    (server.folder / "corrupt.zip").write_bytes(bytes(data))
    (server.folder / "page.html").write_text("<html>Access denied</html>")
    monkeypatch.setenv(coursedata.CAT_DOG_URL_ENV, server.url(served))
    with pytest.raises(helper.DataNotFoundError) as error:
        helper.cat_dog_dir()
    assert message in str(error.value) and coursedata.CAT_DOG_URL_ENV in str(error.value), str(error.value)
    assert not home.exists() or not any(home.iterdir()), sorted(p.name for p in home.iterdir())
    monkeypatch.setenv(coursedata.CAT_DOG_URL_ENV, server.url("small.zip"))  # a second run starts clean
    assert coursedata._cat_dog_complete(helper.cat_dog_dir())


def _execute(nb: nbformat.NotebookNode, folder: Path) -> None:
    NotebookClient(
        nb,
        timeout=600,
        kernel_name=course.KERNEL,
        allow_errors=True,
        resources={"metadata": {"path": str(folder)}},
    ).execute()


def test_part_7_and_part_8s_data_from_an_empty_root_through_the_original_archive(
    server, home, mirror, monkeypatch, tmp_path
):
    """The original's layout and class balance: 1,250 photos per class and split (the mirror's photos, and
    copies of them under later numbers), so the course-sized set is the mirror's set."""
    source = _need_mirror(mirror) / "Cat_Dog_data"
    members = {}
    for split, later in (("train", 20000), ("test", 50000)):
        for name in ("cat", "dog"):
            photos = sorted((source / split / name).iterdir())
            for photo in photos:
                members[f"Cat_Dog_data/{split}/{name}/{photo.name}"] = photo.read_bytes()
            for n in range(1250 - len(photos)):
                copy = photos[n % len(photos)].read_bytes()
                members[f"Cat_Dog_data/{split}/{name}/{name}.{later + n}.jpg"] = copy
    members["__MACOSX/Cat_Dog_data/._train"] = b"resource fork"
    _zip(server.folder / "Cat_Dog_data.zip", members)
    monkeypatch.setenv(coursedata.CAT_DOG_URL_ENV, server.url("Cat_Dog_data.zip"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no weights: offline, Part 8 says so
    # Part 7 up to its last check, Part 8 up to its data: the same set as the mirror's (asserted below), on
    # which nbval runs both notebooks whole, their extras included
    part = course.part("07_loading_image_data")
    nb = nbformat.read(part.solution, as_version=4)
    nb.cells = nb.cells[: max(i for i, cell in enumerate(nb.cells) if graded_id(cell)) + 1]
    _execute(nb, part.solution.parent)
    assert not problems(nb), problems(nb)
    part = course.part("08_transfer_learning")
    nb = nbformat.read(part.solution, as_version=4)
    data = next(i for i, cell in enumerate(nb.cells) if "helper.cat_dog_dir()" in cell.source)
    nb.cells = nb.cells[: data + 1]
    _execute(nb, part.solution.parent)
    assert not problems(nb), problems(nb)
    printed = "".join(o.get("text", "") for o in nb.cells[data].outputs)
    assert "2000 training photos, 500 test photos" in printed, printed
    assert sorted(p.name for p in home.iterdir()) == ["Cat_Dog_data", "Cat_Dog_data.zip"]
    assert _files(home / "Cat_Dog_data") == _files(source), "the course-sized set is not the mirror's"


# ------------------------------------------------------------------------------------ MNIST, weights
def test_mnist_through_torchvisions_download_equals_the_mirror(server, home, mirror, monkeypatch, tmp_path):
    from torchvision import datasets

    raw = _need_mirror(mirror) / "MNIST" / "raw"
    (server.folder / "mnist").mkdir(exist_ok=True)
    resources = []
    for filename, _ in datasets.MNIST.resources:
        data = (raw / filename).read_bytes()
        (server.folder / "mnist" / filename).write_bytes(data)
        resources.append((filename, hashlib.md5(data).hexdigest()))  # the mirror's .gz are recompressed
    monkeypatch.setattr(datasets.MNIST, "mirrors", [server.url("mnist/")])
    monkeypatch.setattr(datasets.MNIST, "resources", resources)
    downloaded = helper.get_mnist(train=False)
    assert (home / "MNIST" / "raw" / "t10k-images-idx3-ubyte").exists()
    monkeypatch.setenv(helper.DATA_ENV, str(tmp_path / "from-mirror"))
    monkeypatch.setenv(helper.MIRROR_ENV, str(mirror))
    copied = helper.get_mnist(train=False)
    assert torch.equal(downloaded.data, copied.data) and torch.equal(downloaded.targets, copied.targets)


def test_torchvisions_efficientnet_b0_from_the_hub_cache_runs_part_8(mirror, home, monkeypatch, tmp_path):
    """A B0 state dict where torchvision caches its download (random weights: the real ones are online)."""
    from torchvision.models import EfficientNet_B0_Weights, efficientnet_b0

    weights = EfficientNet_B0_Weights.DEFAULT
    checkpoints = tmp_path / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(efficientnet_b0().state_dict(), checkpoints / Path(weights.url).name)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warning
        backbone = helper.pretrained_backbone()
    assert backbone.description.startswith("EfficientNet-B0"), backbone.description
    assert (backbone.mean, backbone.std) == (helper.IMAGENET_MEAN, helper.IMAGENET_STD)
    convolution = next(
        p for p in backbone.model.parameters() if p.dim() == 4
    )  # the first convolution's weights
    assert convolution.is_contiguous(memory_format=torch.channels_last), "B0's weights are not channels-last"
    # Part 8 up to training, on a small set of the mirror's photos (4 per class and split)
    source = _need_mirror(mirror) / "Cat_Dog_data"
    for split in ("train", "test"):
        for name in ("cat", "dog"):
            (home / "Cat_Dog_data" / split / name).mkdir(parents=True)
            for photo in sorted((source / split / name).iterdir())[:4]:
                shutil.copyfile(photo, home / "Cat_Dog_data" / split / name / photo.name)
    part = course.part("08_transfer_learning")
    nb = nbformat.read(part.solution, as_version=4)
    training = next(
        i
        for i, cell in enumerate(nb.cells)
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "train_head"
    )
    # the loop on photos runs; not its check, which wants a classifier that learned (random weights here)
    nb.cells = [c for c in nb.cells[:training] if graded_id(c) != "test_photo_loop"]
    _execute(nb, part.solution.parent)
    assert not problems(nb), problems(nb)
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "EfficientNet-B0 with torchvision's ImageNet weights" in printed
    assert "8 training photos, 8 test photos" in printed


def test_a_mirror_file_that_differs_from_its_sha256sums_is_refused_and_nothing_is_left(
    home, monkeypatch, tmp_path
):
    """A mirror with SHA256SUMS: every photo copied from it is checked first; one that differs (a damaged
    copy) stops the build with the file's name and the remedy, and no half-made set is left."""
    mirror = tmp_path / "mirror"
    sums = []
    for split in ("train", "test"):
        for n, name in enumerate(("cat", "dog")):
            folder = mirror / "Cat_Dog_data" / split / name
            folder.mkdir(parents=True)
            photo = folder / f"{name}.1.jpg"
            photo.write_bytes(_photo(40, 30, n))
            sums.append(f"{hashlib.sha256(photo.read_bytes()).hexdigest()}  ./{photo.relative_to(mirror)}")
    (mirror / "SHA256SUMS").write_text("\n".join(sums) + "\n")
    monkeypatch.setenv(helper.MIRROR_ENV, str(mirror))
    assert len(list((coursedata.cat_dog_dir() / "test" / "dog").iterdir())) == 1  # every hash matched
    shutil.rmtree(home / "Cat_Dog_data")
    damaged = mirror / "Cat_Dog_data" / "test" / "dog" / "dog.1.jpg"
    damaged.write_bytes(damaged.read_bytes()[:-10])
    with pytest.raises(helper.DataNotFoundError) as error:
        coursedata.cat_dog_dir()
    assert f"{damaged} differs from the SHA-256 in {mirror / 'SHA256SUMS'}" in str(error.value), str(
        error.value
    )
    assert helper.MIRROR_ENV in str(error.value)
    assert not any(home.iterdir()), sorted(p.name for p in home.iterdir())
