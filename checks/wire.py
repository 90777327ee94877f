"""Answers and inputs as data: JSON for the structure, safetensors for the tensors, nothing executable.

What the learner's kernel sends back is decoded here, on the grader's side, by code that only reads: JSON
(``json.loads``) and safetensors (a header and raw bytes, no pickle). A value that is not data (a function, a
module, a tensor subclass's behaviour) arrives as what it was called (:class:`Opaque`), an exception as its
message (:class:`Raised`). Sizes are capped before anything is decoded: the bytes, the structure, and (read
from the safetensors header before any tensor is made) the tensors' dimensions and elements.

This module defines the data that crosses and imports nothing of the checks but the package itself: the
judges (:mod:`checks.core`) and the kernel's side (:mod:`checks.kernel`) build on it.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from checks import MIME

__all__ = [
    "MIME",
    "Opaque",
    "Raised",
    "WireError",
    "decode",
    "encode",
    "from_parts",
    "read_request",
    "request_parts",
    "to_parts",
]

MAX_BYTES = 64 * 2**20  # one answer, encoded (the largest, Part 6's model, is a few MB)
MAX_JSON = 4 * 2**20  # its structure (everything but the tensors' bytes)
MAX_DEPTH = 12
MAX_ITEMS = 200_000
# The tensors of one answer, all together: the most the solutions send is under a million elements (Part 6's
# three copies of its model and the restored model's scores, Part 7's five 3 × 224 × 224 views); 16 Mi is a
# float32 answer at MAX_BYTES, and keeps a bool or uint8 answer from growing 4 to 8 times when a judge makes
# floats of it.
MAX_ELEMENTS = 16 * 2**20
MAX_DIMS = 8  # dimensions of one tensor (the answers have at most 4)
MAX_INT = 2**63  # a Python int beyond ±this is no count, size or label of the course


@dataclass(frozen=True)
class Raised:
    """What the kernel raised while an answer was collected (a missing name, an error in the learner's
    code)."""

    message: str


@dataclass(frozen=True)
class Opaque:
    """A value that is not data (a function, a module, a NumPy array, …): its kind, as the judge sees it."""

    kind: str
    shape: tuple[int, ...] | None = None


class WireError(ValueError):
    """What came back is not an answer the grader can read."""


def encode(value: object) -> dict:
    """``value`` as ``{"json": str, "tensors": base64}``: plain tensors (CPU, contiguous), numbers, strings,
    lists and dicts; anything else as its kind."""
    structure, tensors = to_parts(value)
    blob = save_tensors(tensors) if tensors else b""
    return {"json": json.dumps(structure, allow_nan=False), "tensors": base64.b64encode(blob).decode()}


def to_parts(value: object) -> tuple[object, dict[str, torch.Tensor]]:
    """``value`` as a JSON structure whose tensors are references into the returned dict of tensors."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(x: object, depth: int) -> object:
        if depth > MAX_DEPTH:
            return {"$object": "nested too deep"}
        if isinstance(x, torch.Tensor):
            plain = x.detach()
            if type(plain) is not torch.Tensor:  # a subclass or a Parameter: its data, as a plain tensor
                plain = plain.as_subclass(torch.Tensor)
            name = str(len(tensors))
            tensors[name] = plain.cpu().contiguous().clone()
            return {"$tensor": name}
        if x is None or isinstance(x, bool | str):
            return x
        if isinstance(x, int) and type(x) in (int,):
            return x
        if isinstance(x, float):  # float and its subclasses (NumPy's float64): the number
            return {"$float": repr(float(x))} if not math.isfinite(x) else float(x)
        if isinstance(x, int):
            return int(x)
        if isinstance(x, Raised):
            return {"$raised": x.message}
        if isinstance(x, Opaque):
            return {"$object": x.kind, "shape": list(x.shape) if x.shape is not None else None}
        if isinstance(x, list | tuple):
            return [walk(v, depth + 1) for v in x]
        if isinstance(x, dict):
            return {"$dict": [[str(k), walk(v, depth + 1)] for k, v in x.items()]}
        shape = getattr(x, "shape", None)
        try:
            shape = list(shape) if shape is not None else None
        except TypeError:
            shape = None
        return {"$object": type(x).__name__, "shape": shape}

    return walk(value, 0), tensors


def decode(payload: object) -> object:
    """An encoded answer back as values. Raises :class:`WireError` for anything that is not one."""
    if not isinstance(payload, dict) or not isinstance(payload.get("json"), str):
        raise WireError("the answer is not in the course's format")
    if len(payload["json"]) > MAX_JSON:
        raise WireError(f"the answer's structure is over {MAX_JSON:,} bytes")
    encoded = payload.get("tensors", "")
    if not isinstance(encoded, str) or len(encoded) > MAX_BYTES * 4 // 3 + 4:
        raise WireError(f"the answer's tensors are over {MAX_BYTES:,} bytes")
    try:
        structure = json.loads(payload["json"])
        blob = base64.b64decode(encoded, validate=True)
    except Exception as error:
        raise WireError(f"the answer could not be read: {type(error).__name__}: {str(error)[:200]}") from None
    _check_sizes(blob)
    try:
        tensors = load_tensors(blob) if blob else {}
    except Exception as error:
        raise WireError(f"the answer could not be read: {type(error).__name__}: {str(error)[:200]}") from None
    return from_parts(structure, tensors)


def _check_sizes(blob: bytes) -> None:
    """Refuse tensors of too many dimensions or elements, from the safetensors header alone (its 8-byte
    length, then JSON): nothing is allocated for an answer that is refused."""
    if not blob:
        return
    try:
        length = int.from_bytes(blob[:8], "little")
        if len(blob) < 8 or length > len(blob) - 8 or length > MAX_JSON:
            raise ValueError("a malformed header")
        header = json.loads(blob[8 : 8 + length])
        shapes = [v["shape"] for k, v in header.items() if k != "__metadata__"]
        if not all(isinstance(s, list) and all(type(n) is int and n >= 0 for n in s) for s in shapes):
            raise ValueError("a malformed shape")
    except Exception as error:
        raise WireError(f"the answer's tensors could not be read: {str(error)[:200]}") from None
    total = 0
    for shape in shapes:
        if len(shape) > MAX_DIMS or any(n > MAX_ELEMENTS for n in shape):
            raise WireError(f"the answer holds a tensor of shape {tuple(shape)[: MAX_DIMS + 1]}: too large")
        total += math.prod(shape)
        if total > MAX_ELEMENTS:
            raise WireError(f"the answer's tensors hold over {MAX_ELEMENTS:,} numbers")


def from_parts(structure: object, tensors: dict[str, torch.Tensor]) -> object:
    """The inverse of :func:`to_parts`, checking every node: no value of an unknown kind gets through."""
    count = 0

    def walk(x: object, depth: int) -> object:
        nonlocal count
        count += 1
        if depth > MAX_DEPTH + 1 or count > MAX_ITEMS:
            raise WireError("the answer is nested too deep or holds too many values")
        if isinstance(x, int) and not isinstance(x, bool) and abs(x) > MAX_INT:
            raise WireError("the answer holds an integer too large to be a count, a size or a label")
        if x is None or isinstance(x, bool | int | float | str):
            return x
        if isinstance(x, list):
            return [walk(v, depth + 1) for v in x]
        if isinstance(x, dict) and len(x) in (1, 2):
            if "$tensor" in x and x["$tensor"] in tensors:
                return tensors[x["$tensor"]]
            if isinstance(x.get("$float"), str) and x["$float"] in ("nan", "inf", "-inf"):
                return float(x["$float"])
            if isinstance(x.get("$raised"), str):
                return Raised(x["$raised"][:2000])
            if isinstance(x.get("$object"), str):
                shape = x.get("shape")
                ok = isinstance(shape, list) and all(isinstance(n, int) for n in shape)
                return Opaque(x["$object"][:100], tuple(shape) if ok else None)
            if isinstance(x.get("$dict"), list):
                pairs = x["$dict"]
                if not all(isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) for p in pairs):
                    raise WireError("the answer holds a malformed dict")
                return {k: walk(v, depth + 1) for k, v in pairs}
        raise WireError("the answer holds a value of no known kind")

    return walk(structure, 0)


def roundtrip(value: object) -> object:
    """``value`` as the judge sees it at grading: encoded and decoded (the notebook's self-checks do this too,
    so that a check judges the same kind of data in both places)."""
    return decode(encode(value))


# ------------------------------------------------------------------------------------------- requests
def request_parts(sent: dict) -> tuple[object, bytes]:
    """A request's inputs as the grader prepares them once per part: the structure (JSON) and the tensors
    (safetensors bytes), copied into each request's files (``NAME.json`` and ``NAME.safetensors``)."""
    structure, tensors = to_parts(sent)
    return structure, save_tensors(tensors)


def read_request(path: str | Path) -> tuple[dict, dict]:
    """In the kernel: a request's description (``path``.json) and its inputs (with ``path``.safetensors)."""
    from safetensors import safe_open

    path = Path(path)
    meta = json.loads(path.with_suffix(".json").read_text())
    with safe_open(str(path.with_suffix(".safetensors")), framework="pt") as handle:
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 (not a dict)
    return meta, from_parts(meta.pop("sent"), tensors)
