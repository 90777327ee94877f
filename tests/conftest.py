"""Shared fixtures: the repository, the real data (offline mirror or data root), notebook execution."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SOLUTIONS = REPO / "solutions"
EXERCISES = REPO / "notebooks"
PARTS = sorted(p.name for p in SOLUTIONS.iterdir() if p.is_dir() and p.name[:2].isdigit())
KERNEL = "intro-pytorch"


def notebook_path(folder: Path, part: str) -> Path:
    return folder / part / f"{part}.ipynb"


def read_notebook(path: Path) -> dict:
    return json.loads(path.read_text())


def graded_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("grade")]


@pytest.fixture(scope="session")
def mirror() -> Path | None:
    value = os.environ.get("PYTORCH_COURSE_MIRROR")
    return Path(value) if value else None
