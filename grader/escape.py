"""Text that came from learners, made safe where a person reads it: a terminal, a text file, a spreadsheet.

A learner's folder name, a message their kernel raised, a file name in their folder: any of these can hold
control characters (which set a terminal's title, erase its lines, or forge a line of the summary), bytes that
are not UTF-8 (a zip made on Windows), or a spreadsheet formula. :func:`printable` shows them escaped, as
Python's ``repr`` would; :func:`csv_cell` neutralises a formula (OWASP, "CSV injection").
"""

from __future__ import annotations

import os
import unicodedata

# Unicode's control, format (bidirectional overrides, zero-width characters), separator-line/paragraph,
# surrogate (an undecodable byte, kept by os.fsdecode) and unassigned categories: shown escaped.
_HIDDEN = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}
# Blanks that look like a space or nothing (no-break and other spaces, Hangul fillers, a braille blank).
_BLANKS = {c for c in map(chr, range(0x80, 0x3200)) if unicodedata.category(c) == "Zs"} | {
    "\u115f",
    "\u1160",
    "\u3164",
    "\uffa0",
    "\u2800",
}
# What a spreadsheet reads as the start of a formula (OWASP): such a cell gets a leading apostrophe.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def printable(text: str | bytes) -> str:
    """``text`` with every character a person cannot see (or that a terminal obeys) escaped, the rest as it
    is. Escaping twice changes nothing (a backslash is kept as it is), so any step may escape again.

    >>> printable("Zoë Ångström")
    'Zoë Ångström'
    >>> printable("evil\\x1b]0;pwned\\x07\\nGraded 0 learner(s)")
    'evil\\\\x1b]0;pwned\\\\x07\\\\nGraded 0 learner(s)'
    >>> printable(b"caf\\xe9")
    'caf\\\\xe9'
    """
    if isinstance(text, bytes):
        text = os.fsdecode(text)  # undecodable bytes become lone surrogates, escaped below
    shown = []
    for char in text:
        if unicodedata.category(char) in _HIDDEN or char in _BLANKS:
            code = ord(char)
            if 0xDC80 <= code <= 0xDCFF:  # a byte os.fsdecode could not decode
                shown.append(f"\\x{code - 0xDC00:02x}")
            else:
                shown.append(repr(char)[1:-1] if code < 0x10000 else f"\\U{code:08x}")
        else:
            shown.append(char)
    return "".join(shown)


def csv_cell(value: object) -> str:
    """A CSV cell that no spreadsheet runs: printable, and a leading apostrophe before a formula's first
    character.

    >>> csv_cell("=HYPERLINK(\\"http://x\\")")
    '\\'=HYPERLINK("http://x")'
    >>> csv_cell("-3"), csv_cell(-3.5), csv_cell("alice")
    ("'-3", '-3.5', 'alice')
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:g}"
    text = printable(str(value))
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text
