"""The course's checks: one judge per graded check, in trusted code.

``checks.part1`` … ``checks.part8`` hold the checks of each part (``from checks import part1 as check`` in a
notebook, then ``check.neuron_sum()``); :mod:`checks.core` what a check is made of, :mod:`checks.wire` how
answers travel as data, :mod:`checks.kernel` what runs in the learner's kernel. They import one way only:
``wire`` (the data that crosses: ``Raised``, ``Opaque``) ← ``core`` ← ``kernel`` ← the parts.
"""

from __future__ import annotations

import importlib

MIME = "application/vnd.intro-pytorch.answers+json"  # the display output a request's answers travel in
HINT_METADATA = "intro-pytorch-hint"  # the key, in a hint output's metadata, of what hint it was


def of_part(part: str) -> list:
    """The checks of the part called ``part`` ("01_tensors" …), in the notebook's order."""
    return list(importlib.import_module(f"checks.part{int(part[:2])}").CHECKS)
