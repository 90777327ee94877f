"""The course's drawings: each a matplotlib function, put into its solution notebook as a PNG attachment.

A markdown cell shows a drawing with ``![what it shows](attachment:NAME.png)``; the PNG travels inside the
notebook (JupyterLab, Colab, Kaggle and GitHub all show attachments), and ``nbgrader generate_assignment``
copies it into the exercise. ``make drawings`` draws every drawing registered here and stamps it into the cell
that names it; ``tests/test_project.py`` checks that every attachment a cell names is there and is what this
file draws.

Usage: python tools/drawings.py [--check]
"""

from __future__ import annotations

import base64
import io
import sys
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import nbformat

import course

# name -> (part folder, the function that draws it and returns its figure)
DRAWINGS: dict[str, tuple[str, Callable[[], plt.Figure]]] = {}


def drawing(part: str, name: str) -> Callable:
    """Register a drawing of ``part`` (a folder of solutions/), shown as attachment:NAME.png."""

    def register(draw: Callable[[], plt.Figure]) -> Callable[[], plt.Figure]:
        DRAWINGS[name] = (part, draw)
        return draw

    return register


def png(draw: Callable[[], plt.Figure]) -> bytes:
    """The drawing as PNG bytes: the same bytes on every run (no date or software in the file)."""
    figure = draw()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None}, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def notebook_path(part: str) -> Path:
    return course.ROOT / "solutions" / part / f"{part}.ipynb"


def stamp(check: bool = False) -> list[str]:
    """Put every drawing into the markdown cell that names it; return what was (or, with check, would be)
    changed. A drawing that no cell names, or a cell that names an unknown drawing, is an error."""
    changed, missing = [], []
    for part in sorted({part for part, _ in DRAWINGS.values()}):
        path = notebook_path(part)
        nb = nbformat.read(path, as_version=4)
        edited = False
        for name, (owner, draw) in DRAWINGS.items():
            if owner != part:
                continue
            filename = f"{name}.png"
            shown = f"attachment:{filename}"
            cells = [c for c in nb.cells if c.cell_type == "markdown" and shown in c.source]
            if len(cells) != 1:
                missing.append(f"{part}: {len(cells)} markdown cells show attachment:{filename} (one should)")
                continue
            data = base64.b64encode(png(draw)).decode("ascii")
            attachments = cells[0].setdefault("attachments", {})
            if attachments.get(filename, {}).get("image/png") != data:
                attachments[filename] = {"image/png": data}
                edited = True
                changed.append(f"{part}: {filename}")
        if edited and not check:
            nbformat.write(nb, path)
    if missing:
        raise SystemExit("\n".join(missing))
    return changed


if __name__ == "__main__":
    check = "--check" in sys.argv[1:]
    changed = stamp(check=check)
    for line in changed:
        print(("out of date: " if check else "drew ") + line)
    sys.exit(1 if check and changed else 0)
