"""Similarity of answers, locally: leads for the instructor to read, never a penalty (in summary.txt).

Two signals, computed on the instructor's machine from what is already there (nothing is uploaded anywhere):

- **Shared code.** Each learner's own code is the answer regions of the part's answer cells (the lines of
  the learner's cell that are not the exercise's scaffold), tokenized by Python's own tokenizer with the
  names the learner chose, numbers and strings replaced by placeholders (a renamed copy is still a copy).
  Runs of :data:`K` tokens ("shingles") are compared, as MOSS does: a shingle that also occurs in the
  course's own code (every code cell of the course's notebooks and ``helper.py``) or in the answers of many
  learners says nothing about copying and is ignored. A pair of learners is listed when they share at least
  :data:`MIN_SHARED` of the remaining shingles, and these make at least :data:`MIN_FRACTION` of the rarer
  code of either.
- **Shared rare mistakes.** The same misconception of the same check (recognised by its judge) shown by two
  or three learners only, in a class where most did not make it: independent learners rarely make the same
  rare mistake.
"""

from __future__ import annotations

import builtins
import hashlib
import io
import json
import keyword
import tokenize
from collections import Counter, defaultdict
from collections.abc import Iterable
from itertools import combinations

import course

K = 12  # tokens per shingle
MIN_SHARED = 12  # shared rare shingles a listed pair has at least
MIN_FRACTION = 0.5  # of the rarer code of either learner
RARE_MISTAKE = 3  # a misconception shown by at most this many learners (and at most a fifth of the class)
BUILTINS = frozenset(dir(builtins))
MAX_CODE = 100_000  # characters of a learner's own code per part that are compared (a flood is not an answer)


def _tokens(code: str) -> list[str]:
    """The code's tokens, the learner's own names, numbers and strings replaced by placeholders: keywords,
    builtins, operators and attribute names (what the libraries call things) kept."""
    out: list[str] = []
    previous = ""
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type in (
                tokenize.COMMENT,
                tokenize.NL,
                tokenize.NEWLINE,
                tokenize.INDENT,
                tokenize.DEDENT,
            ):
                continue
            if tok.type == tokenize.NAME:
                text = tok.string
                kept = keyword.iskeyword(text) or text in BUILTINS or previous == "."
                out.append(text if kept else "NAME")
            elif tok.type == tokenize.NUMBER:
                out.append("NUMBER")
            elif tok.type == tokenize.STRING:
                out.append("STRING")
            elif tok.string:
                out.append(tok.string)
            previous = tok.string
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass  # a learner's unfinished code: the tokens up to where it broke
    return out


def shingles(code: str) -> set[str]:
    """The hashed runs of K tokens of some code."""
    tokens = _tokens(code)
    return {
        hashlib.sha1(" ".join(tokens[i : i + K]).encode()).hexdigest()[:16]
        for i in range(max(0, len(tokens) - K + 1))
    }


def _cells(nb: dict) -> list[dict]:
    cells = nb.get("cells", []) if isinstance(nb, dict) else []
    return [c for c in cells if isinstance(c, dict)]


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _grade_id(cell: dict) -> str | None:
    meta = cell.get("metadata", {})
    meta = meta.get("nbgrader", {}) if isinstance(meta, dict) else {}
    return meta.get("grade_id") if isinstance(meta, dict) and meta.get("solution") else None


def answer_code(nb: dict, exercise: dict) -> str:
    """A learner's own code in a part: in each of the exercise's answer cells, the learner's lines that are
    not the scaffold's (the exercise cell's own lines), at most :data:`MAX_CODE` characters."""
    scaffolds = {
        _grade_id(c): {line.strip() for line in _source(c).splitlines()}
        for c in _cells(exercise)
        if _grade_id(c) and c.get("cell_type") == "code"
    }
    own = []
    for cell in _cells(nb):
        grade_id = _grade_id(cell)
        if grade_id in scaffolds and cell.get("cell_type") == "code":
            own += [line for line in _source(cell).splitlines() if line.strip() not in scaffolds[grade_id]]
    return "\n".join(own)[:MAX_CODE]


def course_shingles() -> set[str]:
    """Every shingle of the course's own code: the code cells of every part's exercise notebook (not the
    solutions, which learners never see) and helper.py."""
    found = shingles((course.ROOT / "helper.py").read_text())
    for part in course.PARTS:
        nb = json.loads(part.exercise.read_text())
        for cell in _cells(nb):
            if cell.get("cell_type") == "code":
                found |= shingles(_source(cell))
    return found


def similar_pairs(
    code: dict[str, dict[str, str]], ignored: set[str]
) -> list[tuple[str, str, float, int, list[str]]]:
    """Pairs of learners whose answers share rare code: ``code`` is learner → part → their answer code;
    returns (learner, learner, fraction, shared shingles, parts), the most similar first."""
    held: dict[str, dict[tuple[str, str], None]] = {}
    for learner, parts in code.items():
        held[learner] = {(part, s): None for part, text in parts.items() for s in shingles(text) - ignored}
    spread = Counter(key for keys in held.values() for key in keys)
    common = max(2, len(held) // 5)  # held by more learners than this: idiom of the class, not a copy
    rare = {learner: {k for k in keys if spread[k] <= common} for learner, keys in held.items()}
    pairs = []
    for a, b in combinations(sorted(rare), 2):
        shared = rare[a] & rare[b]
        smaller = min(len(rare[a]), len(rare[b]))
        if len(shared) >= MIN_SHARED and smaller and len(shared) / smaller >= MIN_FRACTION:
            parts = sorted({part for part, _ in shared})
            pairs.append((a, b, len(shared) / smaller, len(shared), parts))
    return sorted(pairs, key=lambda p: (-p[2], -p[3], p[0], p[1]))


def rare_mistakes(
    shown: Iterable[tuple[str, str, str, dict]], learners: int
) -> list[tuple[str, str, dict, list]]:
    """The misconceptions that only a few learners showed on a check: ``shown`` is (learner, part, grade_id,
    misconception) for every failed verdict that named one; returns (part, grade_id, misconception, learners)
    for those shown by 2 to :data:`RARE_MISTAKE` learners, and at most a fifth of the class."""
    who: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    named: dict[str, dict] = {}
    for learner, part, grade_id, misconception in shown:
        who[(part, grade_id, misconception["id"])].append(learner)
        named[misconception["id"]] = misconception
    limit = min(RARE_MISTAKE, learners // 5)
    return [
        (part, grade_id, named[m], sorted(set(names)))
        for (part, grade_id, m), names in sorted(who.items())
        if 2 <= len(set(names)) <= limit
    ]


def report_lines(
    pairs: list[tuple[str, str, float, int, list[str]]], mistakes: list[tuple[str, str, dict, list]]
) -> list[str]:
    lines = [
        "Similar answers (leads to read, never a verdict: code two learners share that the course and the "
        f"rest of the class do not write; {len(pairs)} pair(s)):"
    ]
    for a, b, fraction, shared, parts in pairs:
        where = ", ".join(f"P{course.part(p).number}" for p in parts)
        lines.append(f"  {a} ~ {b}: {fraction:.0%} of the rarer code of either, {shared} passages ({where})")
    lines.append(f"Rare mistakes shared (a misconception only these learners showed; {len(mistakes)}):")
    for part, grade_id, misconception, names in mistakes:
        lines.append(
            f"  P{course.part(part).number} {grade_id} · {misconception['name']}: {', '.join(names)}"
        )
    return lines
