"""A learner on a cloud notebook (Colab, Kaggle): every notebook's first cell, on a host's own PyTorch.

The host is `make host-env`'s `.venv-host`: another torch and torchvision than the course's lock, as Colab
ships them, and not the course. `google.colab` is a stand-in module on the kernel's path (Colab's own is not
on PyPI). The repository is served over loopback the way GitHub serves a branch's archive
(`/archive/REF.tar.gz`), and the first cells are stamped with that address as `make links` stamps GitHub's:

- Parts 1 and 2, whole, on the host: the first cell installs the course (without touching the host's torch),
  says it found Colab, and every check passes;
- Part 7 on the host, from an empty data root with no mirror, its photos through the download path;
- the same first cell in the course's own environment: no request to the address, one line printed;
- helper.check_environment's stops: PyTorch too old, a torchvision not built for this PyTorch.
"""

from __future__ import annotations

import functools
import http.server
import importlib.metadata
import json
import re
import subprocess
import sys
import tarfile
import threading
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
import torch
from nbclient import NotebookClient

import course
import coursedata
import helper
from harness import checkout_files, graded_id, printed, problems

sys.path.insert(0, str(course.ROOT / "tools"))
import links

HOST = course.ROOT / ".venv-host"
HOST_KERNEL = "cloud-host"
REF = "test"
# What the host's Python prints of its PyTorch: torch's version and torchvision's, as installed
VERSIONS = (
    "import torch; from importlib.metadata import version; print(torch.__version__, version('torchvision'))"
)


class Served(http.server.ThreadingHTTPServer):
    """Serves the files of ``folder`` on loopback and keeps the paths it was asked for."""

    def __init__(self, folder: Path):
        self.asked: list[str] = []
        self.folder = folder
        asked = self.asked

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(handler) -> None:
                asked.append(handler.path)
                super().do_GET()

            def log_message(handler, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{path}"


def _archive(path: Path) -> None:
    """The working tree as GitHub's archive of a branch: every file git tracks or would track, under one
    folder."""
    with tarfile.open(path, "w:gz") as archive:
        for name in checkout_files():
            archive.add(course.ROOT / name, arcname=f"course-{REF}/{name}")


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("github")
    (folder / "archive").mkdir()
    _archive(folder / "archive" / f"{REF}.tar.gz")
    server = Served(folder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def _host_python(*args: str) -> str:
    """What the host's Python prints, isolated (-I: nothing from this folder or PYTHONPATH)."""
    done = subprocess.run(
        [str(HOST / "bin" / "python"), "-I", *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.fixture(scope="module")
def host(tmp_path_factory) -> Iterator[Path]:
    """The host's kernel (registered in a folder of its own), a stand-in google.colab, and no course."""
    subprocess.run(["make", "-s", "host-env"], cwd=course.ROOT, check=True)
    uninstall = ["-m", "pip", "uninstall", "--quiet", "--yes", "intro-pytorch-course"]
    subprocess.run([str(HOST / "bin" / "python"), *uninstall], capture_output=True, check=False)
    root = tmp_path_factory.mktemp("host")
    colab = root / "standin" / "google" / "colab"
    colab.mkdir(parents=True)
    (colab / "__init__.py").write_text('"""A stand-in for Colab\'s own module, which is not on PyPI."""\n')
    _host_python("-m", "ipykernel", "install", "--prefix", str(root / "jupyter"), "--name", HOST_KERNEL)
    yield root
    subprocess.run([str(HOST / "bin" / "python"), *uninstall], capture_output=True, check=False)


def _stamped(part: course.Part, url: str) -> nbformat.NotebookNode:
    nb = nbformat.read(part.solution, as_version=4)
    links.stamp_notebook(nb, part, f"https://github.com/course-owner/course-{REF}", REF)
    setup = next(c for c in nb.cells if c.cell_type == "code")
    setup.source = links.first_cell(part, url)  # the loopback stand-in for GitHub's archive
    return nb


def _run(nb: nbformat.NotebookNode, kernel: str, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    NotebookClient(
        nb, timeout=600, kernel_name=kernel, allow_errors=True, resources={"metadata": {"path": str(folder)}}
    ).execute()


@pytest.fixture
def on_host(host, monkeypatch, tmp_path) -> Path:
    """The environment a host's kernel starts with: its kernel found, google.colab importable, an empty data
    root, no proxy in the way of loopback."""
    monkeypatch.setenv("JUPYTER_PATH", str(host / "jupyter" / "share" / "jupyter"))
    monkeypatch.setenv("PYTHONPATH", str(host / "standin"))
    monkeypatch.setenv(helper.DATA_ENV, str(tmp_path / "data"))
    monkeypatch.delenv(helper.MIRROR_ENV, raising=False)
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    return tmp_path


def test_parts_1_and_2_on_colab_install_the_course_and_leave_the_hosts_torch(served, on_host, mirror):
    host_torch = _host_python(
        "-c",
        VERSIONS,
    )
    locked = tomllib.loads((course.ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    host_release = host_torch.split()[0].split("+")[0]
    assert not any(line.replace(" ", "").startswith(f"torch==={host_release}") for line in locked), (
        "the host stand-in has the lock's torch: it proves nothing about another version"
    )
    assert _host_python("-c", "import importlib.util; print(importlib.util.find_spec('helper'))") == "None"
    url = served.url(f"archive/{REF}.tar.gz")
    for name in ("01_tensors", "02_neural_networks"):
        part = course.part(name)
        # MNIST from the mirror here; Part 7 below downloads its photos
        on_host_env = {helper.MIRROR_ENV: str(mirror)} if part.data and mirror is not None else {}
        nb = _stamped(part, url)
        with pytest.MonkeyPatch.context() as patch:
            for key, value in on_host_env.items():
                patch.setenv(key, value)
            _run(nb, HOST_KERNEL, on_host / name)
        assert not problems(nb), problems(nb)
        first = printed(next(c for c in nb.cells if c.cell_type == "code"))
        assert f"PyTorch {host_torch.split()[0]}, torchvision {host_torch.split()[1]}" in first, first
        assert "Found Colab" in first and str(on_host / "data") in first, first
    assert served.asked.count(f"/archive/{REF}.tar.gz") == 1, served.asked  # installed once, then found
    after = _host_python(
        "-c",
        VERSIONS,
    )
    assert after == host_torch, f"the host's PyTorch changed: {host_torch} → {after}"


def test_part_7_on_colab_downloads_its_photos(served, on_host, mirror, monkeypatch):
    if mirror is None or not (mirror / "Cat_Dog_data").is_dir():
        pytest.skip("no offline mirror (PYTORCH_COURSE_MIRROR) to serve the photos from")
    source = mirror / "Cat_Dog_data"
    with zipfile.ZipFile(served.folder / "Cat_Dog_data.zip", "w") as z:
        for photo in sorted(source.rglob("*.jpg")):
            z.write(photo, f"Cat_Dog_data/{photo.relative_to(source).as_posix()}")
    monkeypatch.setenv(coursedata.CAT_DOG_URL_ENV, served.url("Cat_Dog_data.zip"))
    part = course.part("07_loading_image_data")
    nb = _stamped(part, served.url(f"archive/{REF}.tar.gz"))
    nb.cells = nb.cells[: max(i for i, cell in enumerate(nb.cells) if graded_id(cell)) + 1]
    _run(nb, HOST_KERNEL, on_host / part.name)
    assert not problems(nb), problems(nb)
    assert "/Cat_Dog_data.zip" in served.asked
    assert sorted(p.name for p in (on_host / "data").iterdir()) == ["Cat_Dog_data", "Cat_Dog_data.zip"]


def test_the_first_cell_in_the_courses_own_environment_installs_nothing(served, tmp_path):
    part = course.part("01_tensors")
    nb = _stamped(part, served.url("archive/never.tar.gz"))
    nb.cells = nb.cells[:2]
    _run(nb, course.KERNEL, tmp_path)
    assert not problems(nb), problems(nb)
    said = printed(nb.cells[1])
    assert said.count("\n") == 1 and said.startswith(f"PyTorch {torch.__version__}"), said
    assert "never" not in "".join(served.asked), served.asked


@pytest.mark.parametrize(
    "torch_version, vision, message",
    [
        ("2.12.1", "0.27.1", "This course needs PyTorch 2.13 or newer"),
        ("2.14.1", "0.28.0", "torchvision 0.28.0 is not built for PyTorch 2.14.1"),
    ],
)
def test_a_host_with_the_wrong_pytorch_is_told_what_to_do(
    monkeypatch, tmp_path, torch_version, vision, message
):
    colab = tmp_path / "google" / "colab"
    colab.mkdir(parents=True)
    (colab / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("google.colab", "google"):  # imported from tmp_path by helper.host(): forgotten after
        monkeypatch.setitem(sys.modules, name, sys.modules.get(name))
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(torch, "__version__", torch_version)
    monkeypatch.setattr(importlib.metadata, "version", lambda name: vision)
    with pytest.raises(RuntimeError) as stopped:
        helper.check_environment()
    assert message in str(stopped.value) and "%pip install" in str(stopped.value), str(stopped.value)
    assert "Runtime > Restart session" in str(stopped.value)


def test_a_helper_py_of_someone_elses_in_the_folder_is_named(served, on_host):
    """The original course's helper.py, downloaded beside the notebook (Colab's /content), is named."""
    folder = on_host / "content"
    folder.mkdir()
    (folder / "helper.py").write_text("def view_classify(img, ps):\n    pass\n")
    nb = _stamped(course.part("01_tensors"), served.url(f"archive/{REF}.tar.gz"))
    nb.cells = nb.cells[:2]
    _run(nb, HOST_KERNEL, folder)
    stopped = problems(nb)
    said = f"{folder / 'helper.py'} is not the course's helper.py: rename it"
    assert len(stopped) == 1 and said in stopped[0], stopped


def test_a_newer_pytorch_is_warned_about_and_a_missing_package_named(monkeypatch, capsys):
    monkeypatch.setattr(torch, "__version__", "2.99.0")
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "0.114.0")
    with pytest.warns(UserWarning, match="newer than the newest the course is tested with"):
        helper.check_environment()
    assert "PyTorch 2.99.0, torchvision 0.114.0" in capsys.readouterr().out
    monkeypatch.setitem(sys.modules, "safetensors", None)  # what Python says of a module it cannot import
    with pytest.raises(RuntimeError, match="The course needs safetensors, which this kernel lacks"):
        helper.check_environment()


def test_kaggle_is_found_and_said(monkeypatch, capsys):
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")  # what Kaggle's kernels have
    monkeypatch.setenv(helper.DATA_ENV, "/kaggle/working/data")
    helper.check_environment()
    said = capsys.readouterr().out
    assert "Found Kaggle" in said and "/kaggle/working/data" in said, said


def test_a_stamped_link_opens_the_notebooks_own_exercise():
    url = "https://github.com/course-owner/intro-pytorch"
    for part in course.PARTS:
        nb = nbformat.read(part.solution, as_version=4)
        links.stamp_notebook(nb, part, url, "v1.0")
        title = nb.cells[0].source
        own = part.exercise.relative_to(course.ROOT).as_posix()
        targets = [t for t in re.findall(r"\]\((https://[^)\s]+)\)", title) if not t.endswith(".svg")]
        assert len(targets) == 3 and all(t.endswith(own) for t in targets), targets
        assert all("course-owner/intro-pytorch" in t and "v1.0" in t for t in targets), targets
        assert links.course_url(url, "v1.0") in nb.cells[1].source
        links.stamp_notebook(nb, part, None, "v1.0")  # no address: no badges, COURSE_URL None
        unstamped = nbformat.read(part.solution, as_version=4)
        assert (nb.cells[0].source, nb.cells[1].source) == (
            unstamped.cells[0].source,
            unstamped.cells[1].source,
        )
    readme = (course.ROOT / "README.md").read_text()
    stamped = links.stamp_readme(readme, url, "v1.0")
    for part in course.PARTS:
        own = part.exercise.relative_to(course.ROOT).as_posix()
        assert (
            f"https://colab.research.google.com/github/course-owner/intro-pytorch/blob/v1.0/{own}" in stamped
        )
    assert links.stamp_readme(stamped, None, "v1.0") == readme


def test_the_notebooks_first_cells_are_the_stamped_ones():
    """Every notebook's first code cell is tools/links.py's, for the address stamped in it (none here)."""
    for part in course.PARTS:
        for path in (part.solution, part.exercise):
            setup = next(c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
            url = links.URL.search(setup.source)
            assert url, f"{path.name}: its first code cell is not tools/links.py's"
            expected = links.first_cell(part, None if url[1] == "None" else json.loads(url[1]))
            assert setup.source == expected, f"{path.name}: run `make links`"
