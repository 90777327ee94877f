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


# ------------------------------------------------------------------------------------------ Part 1
# Okabe–Ito colours (safe for colour-blind readers); each element also differs by shape and label.
_BLUE, _ORANGE, _GREEN, _GREY = "#0072B2", "#E69F00", "#009E73", "#555555"


def _node(ax, xy, text, colour, radius=0.28, size=13):
    from matplotlib.patches import Circle

    ax.add_patch(Circle(xy, radius, facecolor="white", edgecolor=colour, linewidth=2, zorder=3))
    ax.text(*xy, text, ha="center", va="center", fontsize=size, zorder=4)


def _arrow(ax, start, end, colour=_GREY, shrink=20):
    style = {"arrowstyle": "-|>", "color": colour, "lw": 1.4, "shrinkA": shrink, "shrinkB": shrink}
    ax.annotate("", end, start, arrowprops=style)


def _canvas(width, height):
    figure, ax = plt.subplots(figsize=(width, height))
    ax.set_aspect("equal")
    ax.axis("off")
    return figure, ax


@drawing("01_tensors", "neuron")
def neuron() -> plt.Figure:
    """A neuron: x1..x3 times w1..w3 into a sum with the bias b, then the activation f, then y."""
    figure, ax = _canvas(7.6, 3.7)
    inputs = [(0.5, 2.6), (0.5, 1.6), (0.5, 0.6)]
    total, activation, output = (3.2, 1.6), (4.8, 1.6), (6.3, 1.6)
    for k, xy in enumerate(inputs, 1):
        _node(ax, xy, f"$x_{k}$", _BLUE)
        _arrow(ax, xy, total)
        along = (xy[0] + 0.35 * (total[0] - xy[0]), xy[1] + 0.35 * (total[1] - xy[1]) + 0.08)
        ax.text(*along, f"$w_{k}$", ha="center", va="bottom", fontsize=13, color=_BLUE)
    _node(ax, total, r"$\Sigma$", _ORANGE, radius=0.36, size=16)
    ax.text(total[0], 0.45, "$b$", ha="center", va="center", fontsize=13, color=_ORANGE)
    _arrow(ax, (total[0], 0.45), total, _ORANGE, shrink=8)
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(
        FancyBboxPatch(
            (activation[0] - 0.32, activation[1] - 0.28), 0.64, 0.56, boxstyle="round,pad=0.02",
            facecolor="white", edgecolor=_GREEN, linewidth=2, zorder=3,
        )
    )  # fmt: skip
    ax.text(*activation, "$f$", ha="center", va="center", fontsize=14, zorder=4)
    _arrow(ax, total, activation)
    _arrow(ax, (activation[0] + 0.34, activation[1]), (output[0] - 0.05, output[1]), shrink=0)
    ax.text(output[0] + 0.05, output[1], "$y$", ha="left", va="center", fontsize=14)
    ax.text(total[0], 2.75, r"$\sum_i w_i x_i + b$", ha="center", fontsize=12)
    ax.text(activation[0], 2.75, "activation", ha="center", fontsize=11, color=_GREEN)
    ax.set_xlim(0, 6.8)
    ax.set_ylim(0.1, 3.1)
    return figure


@drawing("01_tensors", "network")
def network() -> plt.Figure:
    """The 3→2→1 network of "Stacking neurons into a network", with the shapes its code cell gives."""
    figure, ax = _canvas(7.4, 3.9)
    columns = {
        "features (1, 3)": (0.8, [2.6, 1.6, 0.6], _BLUE, "$x_{}$"),
        "h (1, 2)": (3.4, [2.1, 1.1], _ORANGE, "$h_{}$"),
        "output (1, 1)": (6.0, [1.6], _GREEN, "$y$"),
    }
    placed = {}
    for label, (x, ys, colour, name) in columns.items():
        placed[label] = [(x, y) for y in ys]
        for k, y in enumerate(ys, 1):
            _node(ax, (x, y), name.format(k), colour)
        ax.text(x, 3.15, label, ha="center", fontsize=11, color=colour, fontweight="bold")
    for first, second in (("features (1, 3)", "h (1, 2)"), ("h (1, 2)", "output (1, 1)")):
        for start in placed[first]:
            for end in placed[second]:
                _arrow(ax, start, end)
    ax.text(2.1, -0.05, "W1 (3, 2)\nB1 (1, 2)", ha="center", va="center", fontsize=11)
    ax.text(4.7, -0.05, "W2 (2, 1)\nB2 (1, 1)", ha="center", va="center", fontsize=11)
    ax.set_xlim(0.2, 6.6)
    ax.set_ylim(-0.5, 3.4)
    return figure


@drawing("08_transfer_learning", "transfer_cut")
def transfer_cut() -> plt.Figure:
    """Where Part 8 cuts the network: the backbone's layers (frozen) → 1280 features → nn.Linear(1280, 2)."""
    from matplotlib.patches import FancyBboxPatch

    figure, ax = _canvas(11.0, 3.6)

    def box(x, y, w, h, text, colour, size=11):
        ax.add_patch(
            FancyBboxPatch(
                (x, y), w, h, boxstyle="round,pad=0.04", linewidth=2, edgecolor=colour, facecolor="white",
                zorder=3,
            )
        )  # fmt: skip
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size, zorder=4)

    box(0.1, 1.1, 1.3, 1.0, "photo\n3×128×128", _GREY, size=10)
    for k in range(6):  # the backbone's blocks of layers
        box(1.75 + 0.62 * k, 0.75 + 0.08 * k, 0.44, 1.7 - 0.16 * k, "", _BLUE)
    ax.text(3.3, 2.75, "model.features: the backbone's layers", ha="center", fontsize=11, color=_BLUE)
    ax.text(3.3, 0.25, "frozen (ImageNet's weights)", ha="center", fontsize=11, color=_BLUE)
    box(5.6, 1.25, 0.9, 0.7, "avgpool", _BLUE, size=10)
    for k in range(7):  # the feature vector
        ax.add_patch(FancyBboxPatch((6.95, 0.7 + 0.27 * k), 0.22, 0.2, boxstyle="square,pad=0", color=_GREY))
    ax.text(6.9, 2.75, "1280 features", ha="center", fontsize=10)
    ax.plot([7.55, 7.55], [0.3, 3.0], linestyle="--", color="black", linewidth=1.5)
    ax.text(7.55, 0.05, "the cut", ha="center", fontsize=11)
    box(7.95, 1.1, 1.9, 1.0, "nn.Linear(1280, 2)", _ORANGE, size=10)
    ax.text(8.9, 2.75, "model.classifier: new", ha="center", fontsize=11, color=_ORANGE)
    ax.text(8.9, 0.25, "trained", ha="center", fontsize=11, color=_ORANGE)
    ax.text(10.5, 1.6, "cat\ndog", ha="center", va="center", fontsize=11)
    for start, end in (((1.45, 1.6), (1.7, 1.6)), ((5.25, 1.6), (5.55, 1.6)), ((6.55, 1.6), (6.9, 1.6)),
                       ((7.2, 1.6), (7.9, 1.6)), ((9.9, 1.6), (10.25, 1.6))):  # fmt: skip
        _arrow(ax, start, end, shrink=0)
    ax.set_xlim(0, 10.8)
    ax.set_ylim(0, 3.1)
    return figure


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
