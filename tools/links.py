"""Stamp the course's public address into its notebooks: the cloud badges and the first cell's COURSE_URL.

The address is one fact the publisher sets, in pyproject.toml's ``[project.urls] Repository``; a fork that has
not set its own takes its ``git remote get-url origin`` when that is on GitHub. With no address there are no
badges and COURSE_URL is None: everything else works as before. With one, each notebook's first markdown cell
gets badges that open *that part's exercise* (notebooks/NN/NN.ipynb) at REF in Colab, Kaggle and Binder, the
README's table of parts gets the same, and each first code cell gets the address of the course's modules at
REF (``{address}/archive/{ref}.tar.gz``, GitHub's archive of that branch or tag), which it installs on a cloud
notebook. ``make exercises`` copies both into notebooks/.

Usage: python tools/links.py [--address URL] [--ref REF] [--check]   (``make links [ADDRESS=…] [REF=…]``)
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tomllib
from urllib.parse import quote

import nbformat

import course

# Every notebook's first code cell: silent in the course's own environment (helper is installed there); on a
# cloud notebook it first installs the course's modules at this notebook's version, never touching the host's
# PyTorch (--no-deps). helper.check_environment() then says which host it found and checks the versions.
SETUP = """\
import importlib.util
import subprocess
import sys

# On Colab or Kaggle this cell installs the course's modules first; in the course's own set-up it only checks.
COURSE_URL = {url}  # this notebook's version of the course (`make links`)
if getattr(importlib.util.find_spec("checks"), "origin", None) is None:  # a cloud notebook: no course
    if COURSE_URL is None:
        raise RuntimeError("the course is not installed here: open this notebook from its folder (make lab)")
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", COURSE_URL]
    done = subprocess.run(pip, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"could not install {{COURSE_URL}} (on Kaggle: Internet on?)\\n{{done.stderr}}")
    importlib.invalidate_caches()

import helper

if not hasattr(helper, "check_environment"):  # another helper.py, in this notebook's folder
    raise RuntimeError(f"{{helper.__file__}} is not the course's helper.py: rename it and restart the kernel")
helper.check_environment()  # the versions, the device; on a cloud notebook, the host
from checks import part{number} as check  # this notebook's checks: checks/part{number}.py"""
URL = re.compile(r'^COURSE_URL = (None|"[^"\n]*")', re.M)  # the address in a first cell
BADGES = re.compile(r"^\[!\[Open in Colab\].*\n\n", re.M)
README_BADGES = re.compile(r" \[!\[Open in Colab\].*?(?= \|)")
GITHUB = re.compile(r"^(?:https://github\.com/|git@github\.com:)([\w.-]+)/([\w.-]+?)(?:\.git)?/?$")


def origin() -> str | None:
    """This clone's GitHub origin, as https://github.com/OWNER/NAME; None when it is not on GitHub."""
    remote = subprocess.run(
        ["git", "-C", str(course.ROOT), "remote", "get-url", "origin"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return f"https://github.com/{github(remote)}" if GITHUB.match(remote) else None


def address() -> str | None:
    """The course's public address: pyproject.toml's [project.urls] Repository, else a GitHub origin."""
    urls = tomllib.loads((course.ROOT / "pyproject.toml").read_text())["project"].get("urls", {})
    return urls.get("Repository") or origin()


def github(url: str) -> str:
    """``owner/name`` of a GitHub address; anything else is refused (the badges are GitHub's)."""
    match = GITHUB.match(url)
    if not match:
        raise SystemExit(f"{url} is not a GitHub repository's address (https://github.com/OWNER/NAME)")
    return f"{match[1]}/{match[2]}"


def course_url(url: str, ref: str) -> str:
    """Where pip gets the course's modules at ``ref``: GitHub's archive of that branch or tag."""
    return f"https://github.com/{github(url)}/archive/{quote(ref)}.tar.gz"


def badges(repo: str, ref: str, notebook: str) -> str:
    """Markdown badges that open ``notebook`` (a path in the repository) at ``ref``."""
    blob = f"github/{repo}/blob/{quote(ref)}/{notebook}"
    colab = f"https://colab.research.google.com/{blob}"
    kaggle = f"https://kaggle.com/kernels/welcome?src=https://github.com/{repo}/blob/{quote(ref)}/{notebook}"
    binder = f"https://mybinder.org/v2/gh/{repo}/{quote(ref, safe='')}?urlpath=lab/tree/{notebook}"
    return (
        f"[![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab}) "
        f"[![Open in Kaggle](https://kaggle.com/static/images/open-in-kaggle.svg)]({kaggle}) "
        f"[![Open in Binder](https://mybinder.org/badge_logo.svg)]({binder})"
    )


def stamp_notebook(nb: nbformat.NotebookNode, part: course.Part, url: str | None, ref: str) -> bool:
    """Badges under the title of the first cell; the first code cell with COURSE_URL; True when changed."""
    title, setup = nb.cells[0], next(c for c in nb.cells if c.cell_type == "code")
    before = (title.source, setup.source)
    notebook = part.exercise.relative_to(course.ROOT).as_posix()
    title.source = BADGES.sub("", title.source)
    if url:
        head, _, rest = title.source.partition("\n\n")
        title.source = f"{head}\n\n{badges(github(url), ref, notebook)}\n\n{rest}"
    setup.source = first_cell(part, course_url(url, ref) if url else None)
    return (title.source, setup.source) != before


def first_cell(part: course.Part, url: str | None) -> str:
    """The first code cell of ``part``'s notebook, installing the course from ``url`` on a cloud notebook."""
    return SETUP.format(url=json.dumps(url) if url else "None", number=part.number)


def stamp_readme(text: str, url: str | None, ref: str) -> str:
    """The README's table of parts: each part's row with its badges after the notebook's link."""
    text = README_BADGES.sub("", text)
    if not url:
        return text
    for part in course.PARTS:
        notebook = part.exercise.relative_to(course.ROOT).as_posix()
        link = f"]({notebook})"
        text = text.replace(link, f"{link} {badges(github(url), ref, notebook)}", 1)
    return text


def stamp(url: str | None, ref: str, check: bool = False) -> list[str]:
    """Stamp every solution notebook and the README; return what changed (with check: what would)."""
    changed = []
    for part in course.PARTS:
        nb = nbformat.read(part.solution, as_version=4)
        if stamp_notebook(nb, part, url, ref):
            changed.append(part.solution.relative_to(course.ROOT).as_posix())
            if not check:
                nbformat.write(nb, part.solution)
    readme = course.ROOT / "README.md"
    text = readme.read_text()
    stamped = stamp_readme(text, url, ref)
    if stamped != text:
        changed.append("README.md")
        if not check:
            readme.write_text(stamped)
    return changed


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", help="the repository's address (default: pyproject.toml, else origin)")
    parser.add_argument("--ref", default="main", help="the branch or tag the links open (default: main)")
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if anything would change"
    )
    args = parser.parse_args(argv)
    url = args.address or address()
    if not re.fullmatch(r"[\w./-]+", args.ref) or ".." in args.ref:
        raise SystemExit(f"{args.ref!r} is not a branch or tag name")
    if url and origin() and github(url) != github(origin()):
        print(
            f"note: this clone's origin is {origin()}; the links name {url} (a fork sets its own: ADDRESS=)"
        )
    changed = stamp(url, args.ref, check=args.check)
    print(f"address: {url or 'none (no badges; COURSE_URL = None)'}; ref: {args.ref}")
    for path in changed:
        print(("out of date: " if args.check else "stamped ") + path)
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
