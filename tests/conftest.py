"""Fixtures shared by the tests. The course's facts (parts, paths, kernel) come from `course.py`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def mirror() -> Path | None:
    """The offline data mirror (`make test MIRROR=…`), or None where there is none."""
    value = os.environ.get("PYTORCH_COURSE_MIRROR")
    return Path(value) if value else None
