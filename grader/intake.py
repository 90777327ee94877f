"""The intake: every byte a learner hands in enters the grader here, once, treated like an archive from a
stranger (Python's ``tarfile`` data filter is the model).

:func:`take_in` finds the learners (one folder each) and reads each one's notebooks, once: regular files
only, opened without following links (``O_NOFOLLOW``, relative to the folder's own descriptor, so nothing
outside the learner's folder is ever read), at most :data:`MAX_NOTEBOOK_BYTES` each; the rest of a folder is
looked through for notebooks named like no part, at most :data:`MAX_DEPTH` folders deep and
:data:`MAX_ENTRIES` entries. Names
are bytes, as the file system gives them; a person sees them escaped (:func:`grader.escape.printable`). Each
learner's student id holds the whole SHA-256 of their folder's name, so no two folders share one; two folders
whose names look alike (the same letters in another Unicode form) and a reserved name are refused, with the
reason. nbgrader's own layout (``submitted/<learner>/<part>/<part>.ipynb``) is used when asked for
(``--layout nbgrader``) or when SUBMISSIONS is plainly an nbgrader course folder; the summary says which.

:func:`admit` then turns a notebook's bytes into the notebook nbgrader grades, or a reason not to grade it
(a reason never quotes the file): JSON, a notebook nbformat validates, of this part; the nbgrader metadata of
every cell the part's source tracks is reset from the source (flags, points, ids, the cell's type), and any
other cell's is removed (pasted from another notebook, or forged).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import os
import re
import stat
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

import course
from grader import sources
from grader.escape import printable

MAX_NOTEBOOK_BYTES = 64 * 2**20  # a notebook handed in (with outputs); the grader clears the outputs anyway
MAX_DEPTH = 8  # folders below a learner's folder searched for notebooks named like no part
MAX_ENTRIES = 10_000  # entries of a learner's folder looked at, in all
MAX_CELLS = 3_000  # cells of a notebook (a part has about a hundred): more costs the intake seconds each
MAX_OUTPUTS = 20_000  # outputs of a notebook, in all
RESERVED = {"points possible"}  # a learner folder named so would forge a row of an LMS file (Canvas's)
OUR_IDS = re.compile(r"-[0-9a-f]{64}$")  # a student id's end: a folder so named could share another's outputs
LAYOUTS = ("auto", "flat", "nbgrader")
_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)  # a FIFO never blocks


@dataclass
class Submission:
    """A learner's notebook of a part, as handed in: its bytes, read once, or why it could not be taken in."""

    learner: str  # the learner's folder name, escaped: what a person reads
    student_id: str
    part: str
    data: bytes = field(default=b"", repr=False)
    refused: str = ""  # why it is not graded (a link, not a regular file, too large): a 0 with this reason
    digest: str = ""  # the record's cache key (grader.versions.cache_key)
    modified: float = 0.0  # when the file was last changed (seconds since the epoch): the submission's time

    @property
    def key(self) -> str:
        return f"{self.student_id}/{self.part}"


@dataclass
class Learner:
    folder: bytes  # the folder's name, as the file system gives it
    name: str  # escaped, for people (grader.escape.printable)
    student_id: str
    refused: str = ""  # why none of this folder is graded
    ignored: list[str] = field(default_factory=list)  # what in the folder was left out, for the summary


@dataclass
class Intake:
    layout: str  # flat | nbgrader
    learners: list[Learner]  # every folder found, the refused ones too
    submissions: list[Submission]  # the notebooks of the learners who are graded
    notes: list[str] = field(default_factory=list)  # what a person should know about this intake

    @property
    def graded(self) -> list[Learner]:
        return [learner for learner in self.learners if not learner.refused]


def student_id(folder: bytes | str) -> str:
    """An nbgrader-safe id for a learner's folder name, which no other name shares: a readable slug and the
    whole SHA-256 of the name's bytes. "Zoë Ångström" → "zoe-angstrom-" and 64 hex digits."""
    raw = os.fsencode(folder)
    ascii_name = unicodedata.normalize("NFKD", os.fsdecode(raw)).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9]+", "-", ascii_name).strip("-").lower()[:40] or "learner"
    return f"{slug}-{hashlib.sha256(raw).hexdigest()}"


def output_folder(learner: str, student_id: str) -> str:
    """The folder of a learner's files in OUT (feedback/, logs/): their escaped name, or their id when the
    name is too long for a file name."""
    return learner if len(os.fsencode(learner)) <= 200 and learner not in (".", "..") else student_id


# ------------------------------------------------------------------------------------------- the folders
def layout_of(submissions: Path, layout: str = "auto") -> tuple[str, str]:
    """The layout to read (flat or nbgrader) and, for a person, why."""
    submitted = submissions / "submitted"
    is_folder = submitted.is_dir() and not submitted.is_symlink()
    if layout == "nbgrader":
        if not is_folder:
            raise SystemExit(f"error: --layout nbgrader, but {printable(str(submitted))} is not a folder")
        return "nbgrader", "Layout: nbgrader's (submitted/<learner>/<part>/), as asked (--layout nbgrader)."
    if layout == "flat":
        return "flat", "Layout: a folder per learner, as asked (--layout flat)."
    marks = [
        name for name in ("nbgrader_config.py", "gradebook.db", "source") if (submissions / name).exists()
    ]
    others = [p for p in submissions.iterdir() if not p.name.startswith(".") and p.name != "submitted"]
    if is_folder and (marks or not others):
        why = f"it holds {marks[0]}" if marks else "submitted/ is all it holds"
        return "nbgrader", f"Layout: nbgrader's (submitted/<learner>/<part>/): {why}."
    note = "Layout: a folder per learner."
    if is_folder:
        note += (
            " A learner's folder is named 'submitted' and is graded as a learner's; if SUBMISSIONS is an "
            "nbgrader course folder, grade it again with --layout nbgrader."
        )
    return "flat", note


def take_in(submissions: Path, layout: str = "auto") -> Intake:
    """Every learner folder of SUBMISSIONS (in ``layout``) and their notebooks, read once."""
    chosen, note = layout_of(submissions, layout)
    root = submissions / "submitted" if chosen == "nbgrader" else submissions
    intake = Intake(chosen, [], [], [note])
    top = os.open(root, _DIRECTORY)
    try:
        names = sorted(os.listdir(top))
        for raw in names:
            name = os.fsencode(raw)
            if name.startswith(b"."):
                continue
            learner = Learner(name, printable(name), student_id(name))
            try:
                info = os.stat(name, dir_fd=top, follow_symlinks=False)
                if stat.S_ISLNK(info.st_mode):
                    learner.refused = "a symbolic link, not a folder: hand in the folder itself"
                elif not stat.S_ISDIR(info.st_mode):
                    continue  # a stray file beside the folders: not a learner
                elif _alike_key(os.fsdecode(name)) in RESERVED:
                    learner.refused = (
                        f"{learner.name!r} is a name the LMS files keep for themselves: rename it"
                    )
                elif OUR_IDS.search(learner.name):
                    learner.refused = f"{learner.name!r} ends like the grader's own ids: rename it"
                else:
                    _read_folder(top, learner, intake.submissions)
            except Exception as error:  # one folder's trouble is that learner's, never the class's
                learner.refused = f"the folder could not be read ({type(error).__name__})"
                intake.submissions[:] = [s for s in intake.submissions if s.student_id != learner.student_id]
            intake.learners.append(learner)
    finally:
        os.close(top)
    _tell_alike_apart(intake)
    return intake


def _alike_key(name: str) -> str:
    """What a person (or an LMS) may take for the same name: compatibility forms, case, blanks."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def _tell_alike_apart(intake: Intake) -> None:
    """Folders whose names a person could take for one (the same letters composed differently, another case,
    other blanks, full-width forms) are all graded, each shown by its bytes (every letter outside ASCII
    escaped), and named in the summary: nobody loses a grade to a classmate's choice of name."""
    alike = defaultdict(list)
    for learner in intake.learners:
        alike[_alike_key(os.fsdecode(learner.folder))].append(learner)
    for group in alike.values():
        if len(group) > 1:
            for learner in group:
                learner.name = ascii(os.fsdecode(learner.folder))[1:-1]
            intake.notes.append(
                "Folders whose names look alike, graded, each shown by its bytes (check who is who): "
                + ", ".join(learner.name for learner in group)
            )
    # Escaping keeps a backslash as it is: a folder literally named "Jos\xe9" shows as one whose name holds
    # the byte 0xE9. Shown names are one to one all the same: a name two folders would show gets their ids.
    taken = Counter(learner.name for learner in intake.learners)
    for learner in intake.learners:
        if taken[learner.name] > 1:
            learner.name = f"{learner.name} ({learner.student_id.rsplit('-', 1)[1][:12]})"
    shown = {learner.student_id: learner.name for learner in intake.learners}
    for submission in intake.submissions:
        submission.learner = shown[submission.student_id]


def _read_folder(top: int, learner: Learner, found: list[Submission]) -> None:
    folder = os.open(learner.folder, _DIRECTORY, dir_fd=top)
    try:
        taken: set[tuple[bytes, ...]] = set()
        for part in course.PART_NAMES:
            file = f"{part}.ipynb".encode()
            for where in ((file,), (part.encode(), file)):
                submission = _read_notebook(folder, where, learner, part)
                if submission is not None:
                    found.append(submission)
                    taken.add(where)
                    break
        _look_through(folder, learner, taken)
    finally:
        os.close(folder)


def _read_notebook(folder: int, where: tuple[bytes, ...], learner: Learner, part: str) -> Submission | None:
    """The notebook at ``where`` (names below the learner's folder), or None when there is none; a link, a
    file that is not regular or one over the size limit is a submission refused, with the reason."""
    shown = "/".join(printable(name) for name in where)
    fd = folder
    try:
        for name in where[:-1]:
            try:
                info = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                return None
            if not stat.S_ISDIR(info.st_mode):
                return None
            opened = os.open(name, _DIRECTORY, dir_fd=fd)
            if fd != folder:
                os.close(fd)
            fd = opened
        try:
            info = os.stat(where[-1], dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        submission = Submission(learner.name, learner.student_id, part)
        if stat.S_ISLNK(info.st_mode):
            submission.refused = f"{shown} is a symbolic link: hand in the notebook itself"
            return submission
        if not stat.S_ISREG(info.st_mode):
            submission.refused = f"{shown} is not a regular file"
            return submission
        handle = os.open(where[-1], _FILE, dir_fd=fd)
        try:
            info = os.fstat(handle)  # what was opened, not what the name meant a moment before
            submission.modified = info.st_mtime
            if not stat.S_ISREG(info.st_mode):
                submission.refused = f"{shown} is not a regular file"
            elif info.st_nlink > 1:  # the same file under another name, which may lie outside the folder
                submission.refused = (
                    f"{shown} is a hard link to a file elsewhere: hand in the notebook itself (copy "
                    "submissions with cp -r, not cp -l)"
                )
            elif info.st_size > MAX_NOTEBOOK_BYTES:
                submission.refused = _too_large(shown)
            else:
                data = b""
                while chunk := os.read(handle, 2**20):
                    data += chunk
                    if len(data) > MAX_NOTEBOOK_BYTES:
                        submission.refused = _too_large(shown)
                        break
                else:
                    submission.data = data
        finally:
            os.close(handle)
        return submission
    finally:
        if fd != folder:
            os.close(fd)


def _too_large(shown: str) -> str:
    return (
        f"{shown} is over {MAX_NOTEBOOK_BYTES // 2**20} MiB: clear its outputs (Edit → Clear Outputs of "
        "All Cells), save it and hand it in again"
    )


def _look_through(folder: int, learner: Learner, taken: set[tuple[bytes, ...]]) -> None:
    """Notebooks named like no part, links and what was too deep or too many, for the summary (none read)."""
    seen = 0
    todo: list[tuple[tuple[bytes, ...], int]] = [((), os.dup(folder))]
    try:
        while todo:
            where, fd = todo.pop()
            try:
                with os.scandir(fd) as listing:  # entry by entry: a folder of millions is not read whole
                    entries = [os.fsencode(e.name) for e in itertools.islice(listing, MAX_ENTRIES - seen + 1)]
                for entry in sorted(entries):
                    seen += 1
                    if seen > MAX_ENTRIES:
                        learner.ignored.append(f"more than {MAX_ENTRIES:,} files: the rest was not looked at")
                        return
                    path = (*where, entry)
                    shown = "/".join(printable(name) for name in path)
                    info = os.stat(entry, dir_fd=fd, follow_symlinks=False)
                    if stat.S_ISLNK(info.st_mode):
                        if path not in taken:
                            learner.ignored.append(f"{shown}: a symbolic link, not followed")
                    elif stat.S_ISDIR(info.st_mode):
                        if entry == b".ipynb_checkpoints":
                            continue
                        if len(path) > MAX_DEPTH:
                            learner.ignored.append(f"{shown}: deeper than {MAX_DEPTH} folders, not looked at")
                            continue
                        todo.append((path, os.open(entry, _DIRECTORY, dir_fd=fd)))
                    elif entry.endswith(b".ipynb") and path not in taken:
                        learner.ignored.append(f"{shown}: a notebook named like no part, not graded")
            finally:
                os.close(fd)
    finally:
        for _, fd in todo:
            os.close(fd)


# ------------------------------------------------------------------------------------------- one notebook
def admit(submission: Submission, part_sources: Path = course.SOLUTIONS) -> tuple[bytes, str]:
    """The notebook as nbgrader should grade it (bytes), or ``(b"", reason)`` not to grade it."""
    if submission.refused:
        return b"", submission.refused
    try:
        text = submission.data.decode("utf-8")
    except UnicodeDecodeError:
        return b"", "not a notebook: not UTF-8 text"
    if not text.strip():
        return b"", "not a notebook: the file is empty"
    try:  # JSON first (fast), to refuse a notebook too large to validate before nbformat reads it
        cells = json.loads(text).get("cells", [])
        outputs = (
            sum(len(c.get("outputs", [])) for c in cells if isinstance(c, dict))
            if isinstance(cells, list)
            else 0
        )
    except Exception:  # JSON that is not, nested too deep: said, not quoted
        return b"", "not a notebook: not JSON that nbformat can read (save it again from Jupyter)"
    if isinstance(cells, list) and (len(cells) > MAX_CELLS or outputs > MAX_OUTPUTS):
        return b"", (
            f"not graded: over {MAX_CELLS:,} cells or {MAX_OUTPUTS:,} outputs (clear the outputs, remove the "
            "extra cells and hand it in again)"
        )
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception:  # a format nbformat cannot read: said, not quoted
        return b"", "not a notebook: not JSON that nbformat can read (save it again from Jupyter)"
    try:
        nbformat.validate(nb)
    except Exception:
        return (
            b"",
            "not a valid notebook: it breaks the notebook format's schema (save it again from Jupyter)",
        )
    reason = _match_part(nb, submission.part, part_sources)
    if reason:
        return b"", reason
    try:
        return nbformat.writes(nb).encode("utf-8"), ""
    except (UnicodeEncodeError, ValueError):
        return b"", "not a notebook: it holds text that is not valid Unicode (save it again from Jupyter)"


def _match_part(nb: nbformat.NotebookNode, part: str, part_sources: Path) -> str:
    """Why the notebook is not this part's ('' when it is); its nbgrader metadata reset from the source.

    A notebook whose nbgrader cells all belong to another part is that part handed in under the wrong name.
    Otherwise every cell the part's source tracks gets the source's own metadata and type (the first cell of
    each id; a learner cannot change a check's flags, points or id), and every other cell's nbgrader
    metadata is removed (a pasted or forged one becomes the learner's own cell: nbgrader would refuse the
    whole notebook for it)."""
    tracked = sources.tracked_cells(part, part_sources)
    ids = {_claimed_id(c) for c in nb.cells} - {None}
    if ids and not ids & set(tracked):
        other = max(course.PART_NAMES, key=lambda name: len(ids & sources.nbgrader_ids(name, part_sources)))
        if ids & sources.nbgrader_ids(other, part_sources):
            return (
                f"this is Part {course.part(other).number} ({other}), expected Part "
                f"{course.part(part).number} ({part}.ipynb)"
            )
    placed: set[str] = set()
    for cell in nb.cells:
        claimed = _claimed_id(cell)
        cell.metadata.pop("nbgrader", None)
        if claimed not in tracked or claimed in placed:
            continue
        placed.add(claimed)
        original = tracked[claimed]
        cell.metadata["nbgrader"] = copy.deepcopy(original.metadata["nbgrader"])
        if cell.cell_type != original.cell_type:
            cell.cell_type = original.cell_type
            for key in ("outputs", "execution_count", "attachments"):
                cell.pop(key, None)
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
    return ""


def _claimed_id(cell: nbformat.NotebookNode) -> str | None:
    """The grade id a cell's nbgrader metadata claims, when it is well-formed (a dict with a string id)."""
    meta = cell.get("metadata", {}).get("nbgrader")
    grade_id = meta.get("grade_id") if isinstance(meta, dict) else None
    return grade_id if isinstance(grade_id, str) else None
