"""What a record depends on, as hashes: the course version a worker must share with the instructor, the
version of the code that grades (part of each record's cache key), and the cache key itself."""

from __future__ import annotations

import functools
import hashlib
import json
import platform
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

import course
from grader import sandbox

GRADER = Path(__file__).resolve().parent
# The grader's modules whose code decides a record: the intake, the grading of one notebook on a worker (its
# execution, judges' verdicts, scores, feedback), and the record itself. Not the client, the merge or the
# reports: a change to them regrades nothing.
RECORD_MODULES = (
    "cells.py",
    "escape.py",
    "execution.py",
    "feedback.py",
    "grading.py",
    "intake.py",
    "records.py",
    "sandbox.py",
    "scoring.py",
    "sources.py",
    "verdicts.py",
)
PACKAGES = (
    "torch",
    "torchvision",
    "numpy",
    "safetensors",
    "matplotlib",
    "nbgrader",
    "nbclient",
    "nbconvert",
    "nbformat",
    "ipykernel",
    "ipython",
    "jupyter_client",
    "pyzmq",
    "traitlets",
    "bleach",
)


@functools.cache
def course_version() -> str:
    """What a worker must share with the instructor's client: all of the grader's code, the course's modules,
    Python and the packages (a worker that differs in any of them is refused)."""
    digest = hashlib.sha256(grading_version().encode())
    for path in sorted(GRADER.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@functools.cache
def grading_version() -> str:
    """What a record depends on besides the submission, the part's source, the limits and the secret (the
    cache key, :func:`cache_key`): the modules that take in, execute, judge and score a notebook
    (:data:`RECORD_MODULES`), the course's own modules, the lock of every package, and the versions of Python
    and of the packages that run a kernel, talk to it and score it."""
    digest = hashlib.sha256()
    files = [GRADER / name for name in RECORD_MODULES] + sorted((course.ROOT / "checks").glob("*.py"))
    files += [course.ROOT / name for name in (*course.MODULES, "requirements/course.lock")]
    for path in files:
        digest.update(path.name.encode() + b"\0" + (path.read_bytes() if path.exists() else b"(missing)"))
    for name in PACKAGES:
        digest.update(f"{name}=={metadata.version(name)}".encode())
    digest.update(platform.python_version().encode())
    return digest.hexdigest()


def cache_key(
    data: bytes,
    part_source: Path,
    limits: sandbox.Limits,
    secret: str = "",
    sandboxed: bool = True,
    hint_cost: float = 0.0,
    variants: bool = False,
) -> str:
    """What a record depends on: the submission's bytes, the part's source, the grading version, the limits,
    whether it ran in the sandbox, the secret the hidden inputs are drawn from (and whether they are the
    learner's own), and what a hint costs. A re-run grades a notebook again when any of them changed."""
    digest = hashlib.sha256()
    for piece in (
        data,
        part_source.read_bytes(),
        grading_version().encode(),
        json.dumps(asdict(limits), sort_keys=True).encode(),
        b"sandboxed" if sandboxed else b"NOT sandboxed (--no-sandbox)",
        secret.encode(),
        f"a hint costs {hint_cost!r} points".encode(),
        b"per-learner variants" if variants else b"one set of hidden inputs for the class",
    ):
        digest.update(hashlib.sha256(piece).digest())
    return digest.hexdigest()
