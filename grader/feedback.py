"""Feedback pages: what a learner sees of their graded notebook, safe to open in the instructor's browser."""

from __future__ import annotations

import base64
import html
import itertools
import re
from pathlib import Path

import bleach
import nbformat
import tinycss2
from bleach import html5lib_shim
from bleach.css_sanitizer import CSSSanitizer
from bleach.sanitizer import BleachSanitizerFilter
from nbconvert.exporters import HTMLExporter
from nbconvert.preprocessors import Preprocessor
from traitlets import Bool

from grader import records
from grader.cells import is_check

MARKERS = ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "BEGIN SOLUTION", "END SOLUTION")


class EscapeMarkers(Preprocessor):
    """nbgrader's marker words written in a learner's own cell (a comment, a string) are shown with a
    middle dot ("BEGIN HIDDEN·TESTS"), so that ClearHiddenTests, which reads every cell, neither fails nor
    cuts the learner's code."""

    enabled = Bool(True).tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        if not is_check(cell):
            for marker in MARKERS:
                head, _, tail = marker.rpartition(" ")
                cell.source = cell.source.replace(marker, f"{head}·{tail}")
        return cell, resources


class HideTestDetails(Preprocessor):
    """An error in a check shows only its last line ("AssertionError: expected …"): nbgrader's
    ClearHiddenTests removes hidden tests from the source, but a failing hidden test's traceback would
    still quote its code; the message, which says what was expected, is what a learner needs."""

    enabled = Bool(True).tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        if is_check(cell):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    output["traceback"] = [f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"]
        return cell, resources


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# What a learner's markup may keep, on a feedback page and in the graded notebook formgrader shows:
# nbconvert's page structure (its divs, headings, tables, code) and plain formatting; no script, no form, no
# frame, no embedded document, no remote resource.
TAGS = _words(
    "a abbr acronym article b bdi blockquote br caption cite code col colgroup dd del details dfn div dl "
    "dt em figcaption figure footer h1 h2 h3 h4 h5 h6 header hr i img ins kbd li main mark ol p pre q rp "
    "rt ruby s samp section small span strike strong sub summary sup table tbody td tfoot th thead time "
    "tr tt u ul var wbr"
)
# Removed with everything inside them (the rest of what is not allowed loses its tags and keeps its text).
DROPPED = _words(
    "script style template noscript iframe frame frameset object embed applet title textarea select "
    "option xmp noembed noframes plaintext svg math head meta link base audio video source track canvas"
)
GLOBAL_ATTRIBUTES = frozenset({"class", "id", "title", "style"})
ATTRIBUTES = {
    "a": {"href", "name"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan", "align", "valign"},
    "th": {"colspan", "rowspan", "align", "valign", "scope"},
    "col": {"span", "width"},
    "colgroup": {"span", "width"},
    "ol": {"start", "type", "reversed"},
    "li": {"value"},
    "details": {"open"},
    "time": {"datetime"},
}
# Inline styles: layout and colour, nothing that fetches (no url(), image-set(), …; no cursor) or overlays.
CSS_PROPERTIES = _words(
    "background-color border border-bottom border-collapse border-color border-left border-radius "
    "border-right border-spacing border-style border-top border-width clear color display float font "
    "font-family font-size font-style font-variant font-weight height letter-spacing line-height margin "
    "margin-bottom margin-left margin-right margin-top max-height max-width min-height min-width overflow "
    "overflow-wrap padding padding-bottom padding-left padding-right padding-top table-layout text-align "
    "text-decoration text-indent text-transform vertical-align white-space width word-break word-wrap"
)
FETCHING = frozenset(
    {"url", "image", "image-set", "-webkit-image-set", "cross-fade", "element", "src", "expression"}
)
# The page's own policy: nothing loads or runs, whatever got through; its inline styles and data: images only.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
# Output types a graded notebook keeps as they are (the templates escape them, or they are data).
KEPT_OUTPUTS = frozenset(
    {"text/plain", "text/latex", "image/png", "image/jpeg", "image/gif", "application/json"}
)
IMAGES = ("image/png", "image/jpeg", "image/gif")


def _normalised(url: str) -> str:
    """A URL as a browser reads its scheme: entities decoded, blanks and control characters gone, lower
    case."""
    url = html.unescape(url)
    url = re.sub(r"[`\x00-\x20\x7f-\xa0\s]+", "", url)
    return re.sub(r"[^\x00-\x7f]", "", url).lower()


def _link(url: str, relative: bool) -> bool:
    """A link to keep: http, https, mailto or an anchor of the page; with ``relative``, also a path without a
    scheme (the course's links to its glossary, in the graded notebook)."""
    plain = _normalised(url)
    if plain.startswith(("http://", "https://", "mailto:", "#")):
        return True
    return (
        relative and not plain.startswith(("/", "\\")) and ":" not in re.split(r"[/?#]", plain, maxsplit=1)[0]
    )


def _attributes(relative: bool):
    def allowed(tag: str, name: str, value: str) -> bool:
        if name in GLOBAL_ATTRIBUTES:
            return True
        if name not in ATTRIBUTES.get(tag, ()):
            return False
        if name == "href":
            return _link(value, relative)
        if name == "src":  # an image in the page itself, never one fetched
            return _normalised(value).startswith("data:image/")
        return True

    return allowed


def _fetches(tokens) -> bool:
    for token in tokens:
        kind = getattr(token, "type", "")
        if kind == "url" or (kind == "function" and token.lower_name in FETCHING):
            return True
        if kind == "function" and _fetches(token.arguments):
            return True
        if kind.endswith("block") and _fetches(token.content):
            return True
    return False


class Styles(CSSSanitizer):
    """An inline style's declarations of :data:`CSS_PROPERTIES` that fetch nothing; a style that is all of
    them stays as it was written.

    The attribute's value comes with its character references undecoded (bleach keeps them), and the browser
    decodes them before it reads the CSS (``'&#39;; background-image: url(…)'`` leaves a string): the CSS is
    read decoded, and a style whose decoded CSS still holds an ``&`` (which bleach's serializer would keep
    as a reference, for the browser to decode once more) is left out whole; so what the browser reads is
    what was checked.

    >>> Styles().sanitize_css("color: '&#39;; background-image: url(http://x/t.png); x: &#39;'")
    'color: ""'
    >>> Styles().sanitize_css("color: '&amp;#39;; background-image: url(http://x/t.png); x: &amp;#39;'")
    ''
    >>> Styles().sanitize_css("text-align:center")
    'text-align:center'
    """

    def sanitize_css(self, style: str) -> str:
        decoded = html.unescape(style)
        found = tinycss2.parse_declaration_list(decoded, skip_comments=True, skip_whitespace=True)
        kept = [
            d
            for d in found
            if d.type == "declaration" and d.lower_name in CSS_PROPERTIES and not _fetches(d.value)
        ]
        checked = decoded if len(kept) == len(found) else "; ".join(d.serialize() for d in kept)
        return "" if "&" in checked else checked


def _prune(root) -> None:
    """Elements of :data:`DROPPED` (and any in the SVG or MathML namespace) out of a parsed fragment, with
    everything inside them; the text that follows each stays."""
    stack = [root]
    while stack:
        element = stack.pop()
        for index, child in reversed(list(enumerate(element))):
            tag = child.tag if isinstance(child.tag, str) else None
            if tag is None:  # a comment: the sanitizer drops it
                continue
            if "}" in tag or tag.lower() in DROPPED:
                if child.tail:
                    if index:
                        element[index - 1].tail = (element[index - 1].tail or "") + child.tail
                    else:
                        element.text = (element.text or "") + child.tail
                element.remove(child)
            else:
                stack.append(child)


class _NothingLeft(html5lib_shim.Filter):
    """An image whose source was taken out (remote, or none) is left out too, and a link that lost its target
    and has no name keeps only its text."""

    def __iter__(self):
        unlinked = []  # for each open link: whether its tags are left out (links do not nest once parsed)
        for token in super().__iter__():
            name, data = token.get("name"), token.get("data") or {}
            if name == "img" and (None, "src") not in data:
                continue
            if name == "a" and token["type"] == "StartTag":
                unlinked.append(not data)
                if not data:
                    continue
            if name == "a" and token["type"] == "EndTag" and unlinked and unlinked.pop():
                continue
            yield token


def clean(fragment: str, relative: bool = False) -> str:
    """An HTML fragment with only what :data:`TAGS`, :data:`ATTRIBUTES` and :class:`Styles` allow (bleach,
    which parses as a browser does): no script, event handler, frame, form, embedded object or remote
    resource; links to http, https, mailto and the page's anchors (and, with ``relative``, relative paths);
    images only inline (data:image/…). Elements of :data:`DROPPED` go with their content.

    >>> clean('<b onclick="x()">bold</b><script>alert(1)</script><a href="javascript:alert(1)">x</a>')
    '<b>bold</b>x'
    >>> clean('<img src="http://remote/t.png"><p style="color: red; background: url(http://x/t.png)">p</p>')
    '<p style="color: red">p</p>'
    """
    cleaner = bleach.Cleaner(
        tags=TAGS | DROPPED,  # parsed as elements, so that _prune finds them
        attributes=_attributes(relative),
        protocols={"http", "https", "mailto", "data"},
        strip=True,
        strip_comments=True,
        css_sanitizer=Styles(),
    )
    dom = cleaner.parser.parseFragment(fragment)
    _prune(dom)
    filtered = BleachSanitizerFilter(
        source=cleaner.walker(dom),
        allowed_tags=TAGS,
        attributes=cleaner.attributes,
        strip_disallowed_tags=True,
        strip_html_comments=True,
        css_sanitizer=cleaner.css_sanitizer,
        allowed_protocols=cleaner.protocols,
    )
    return cleaner.serializer.render(_NothingLeft(filtered))


class _Everything(frozenset):
    def __contains__(self, item) -> bool:
        return True


class _AsWritten(CSSSanitizer):
    def sanitize_css(self, style: str) -> str:
        return style


def _as_written(fragment: str) -> str:
    """The fragment through the same parser and serializer as :func:`clean`, nothing removed."""
    parser = html5lib_shim.BleachHTMLParser(
        tags=None, strip=False, consume_entities=False, namespaceHTMLElements=False
    )
    cleaner = bleach.Cleaner()
    filtered = BleachSanitizerFilter(
        source=cleaner.walker(parser.parseFragment(fragment)),
        attributes=lambda tag, name, value: True,
        strip_html_comments=False,
        css_sanitizer=_AsWritten(),
    )
    filtered.allowed_tags = filtered.allowed_protocols = _Everything()
    return cleaner.serializer.render(filtered)


def cleaned(fragment: str, relative: bool = False) -> tuple[str, bool]:
    """:func:`clean`'s fragment, and whether it took anything out (the fragment had something harmful)."""
    safe = clean(fragment, relative)
    return safe, safe != _as_written(fragment)


def rendered_safely(markdown_source: str, rendered: str, relative: bool = False) -> tuple[str, bool]:
    """A markdown text's clean rendering, and whether the text must be replaced by it. Markdown with no ``<``
    renders to well-formed HTML (its text escaped): only its links and images can be harmful, which
    :func:`cleaned` finds. Markdown with a ``<`` may hold raw HTML that is harmful only in the page around it
    (a tag left open at its end runs into the template's next ``>``; a stray end tag closes the template's
    elements), which no parse of the fragment alone shows: it keeps its own text only where that is
    exactly its clean rendering."""
    if "<" not in markdown_source:
        return cleaned(rendered, relative)
    safe = clean(rendered, relative)
    return safe, safe != rendered


def _one_line(fragment: str) -> str:
    """Clean HTML as a markdown cell's source that renders to exactly it: one HTML block (a div on one line),
    which markdown passes through as it is; a line break is a space, but in preformatted text a character
    reference.

    >>> _one_line("<p>a\\nb</p>\\n<pre>x\\ny</pre>")
    '<div class="grader-sanitised"><p>a b</p> <pre>x&#10;y</pre></div>'
    """
    parts = re.split(r"(<pre[\s>].*?</pre>)", fragment, flags=re.IGNORECASE | re.DOTALL)
    line = "".join(
        re.sub(r"\r\n?|\n", "&#10;", part) if odd else re.sub(r"[\r\n]", " ", part)
        for odd, part in zip(itertools.cycle((False, True)), parts)
    )
    return f'<div class="grader-sanitised">{line}</div>'


def _quiet_css(css: str) -> str:
    """The page's own stylesheet (nbconvert's, nbgrader's, Bootstrap's) fetching nothing: no @import, no
    url() but data:, and no way out of its style element."""
    css = re.sub(r"@import[^;]*;?", "", css, flags=re.IGNORECASE)
    css = re.sub(r"url\(\s*(?!['\"]?data:)[^)]*\)", "none", css, flags=re.IGNORECASE)
    return css.replace("</", "<\\/")


# What the page adds to its own styles: a verdict's message wraps instead of scrolling sideways (two thirds of
# a typical message — the misconception and where to read again — were off-screen in a one-line box).
READABLE = (
    "div.output_area pre, div.output_subarea pre, div.output pre "
    "{ white-space: pre-wrap; overflow-wrap: anywhere; }"
)


def _named_checks(body: str) -> str:
    """The page's table of contents names each check ("test_neuron_sum") where nbgrader's template writes
    "Test cell" for every one."""
    return re.sub(r'(<a href="#([A-Za-z0-9_-]+)">)Test cell(</a>)', r"\1Check \2\3", body)


def safe_page(page: str) -> str:
    """A rendered feedback page rebuilt safe to open from a file: its head made anew (the charset, the
    :data:`CSP`, no referrer, its title, its own stylesheets fetching nothing; no script, so no MathJax: math
    shows as its LaTeX source), its body through :func:`clean` (what was rendered from the learner's cells
    and outputs included, whatever the markdown or the template let through)."""
    head, found, body = page.partition("</head>")
    if not found:
        head, body = "", page
    title = re.search(r"<title[^>]*>(.*?)</title>", head, re.IGNORECASE | re.DOTALL)
    name = html.escape(html.unescape(title.group(1)).strip()) if title else "Feedback"
    styles = re.findall(r"<style[^>]*>(.*?)</style>", head, re.IGNORECASE | re.DOTALL)
    return "\n".join(
        [
            "<!DOCTYPE html>",
            "<html>",
            "<head>",
            '<meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
            '<meta name="referrer" content="no-referrer">',
            f"<title>{name}</title>",
            *(f'<style type="text/css">{_quiet_css(css)}</style>' for css in styles),
            f'<style type="text/css">{READABLE}</style>',
            "</head>",
            "<body>",
            clean(_named_checks(body)),
            "</body>",
            "</html>",
            "",
        ]
    )


def _markdown(source: str, cell, exporter) -> str:
    """A markdown text as nbconvert's HTML exporters render it (formgrader's and the feedback page's)."""
    return exporter.markdown2html({"cell": cell}, source)


def _image_metadata(metadata) -> dict:
    """What the HTML templates read of an image output's metadata, checked: a width and a height (integers:
    the templates write them unquoted), an alt text; never a file name to load it from."""
    kept = {}
    for mime in IMAGES:
        given = metadata.get(mime) if isinstance(metadata, dict) else None
        if not isinstance(given, dict):
            continue
        mine = {k: given[k] for k in ("width", "height") if type(given.get(k)) is int}
        if isinstance(given.get("alt"), str):
            mine["alt"] = given["alt"]
        if given.get("unconfined") is True:
            mine["unconfined"] = True
        if mine:
            kept[mime] = mine
    return kept


def _safe_output(output, cell, exporter):
    """A code cell's output that renders to nothing active, or None to drop it. Streams and errors are text
    (the templates escape them) and stay as they are: the check cells' verdicts are such outputs."""
    kind = output.get("output_type") if isinstance(output, dict) else None
    if kind in ("stream", "error"):
        return output
    if kind not in ("display_data", "execute_result"):
        return None
    data = output.get("data") if isinstance(output.get("data"), dict) else {}
    kept, removed = {}, []
    html_given = data.get("text/html")
    if isinstance(
        html_given, str
    ):  # always its clean serialization: a tag left open would run into the page's
        kept["text/html"] = clean(html_given, relative=True)
    for mime, value in data.items():
        if mime in KEPT_OUTPUTS and (isinstance(value, str) or mime == "application/json"):
            kept[mime] = value
        elif mime == "text/markdown" and isinstance(value, str):
            safe, changed = rendered_safely(value, _markdown(value, cell, exporter), relative=True)
            if changed:
                kept.setdefault("text/html", safe)
            else:
                kept[mime] = value
        elif mime == "image/svg+xml" and isinstance(value, str):
            # as an image: an SVG shown by <img> runs no script and loads nothing
            encoded = base64.b64encode(value.encode()).decode()
            kept.setdefault("text/html", f'<img src="data:image/svg+xml;base64,{encoded}">')
        elif mime != "text/html":
            removed.append(mime)
    if not kept:
        kept["text/plain"] = f"[output removed by the grader: {', '.join(removed) or 'nothing to show'}]"
    safe = nbformat.NotebookNode(
        output_type=kind, data=kept, metadata=_image_metadata(output.get("metadata"))
    )
    if kind == "execute_result":
        count = output.get("execution_count")
        safe["execution_count"] = count if type(count) is int else None
    return safe if safe != output else output


def safe_notebook(nb) -> bool:
    """The notebook (in place) made safe for formgrader, which renders it with a plain HTML exporter and no
    sanitizer in the instructor's Jupyter origin: no JavaScript or widget output, HTML and markdown outputs
    and raw cells through :func:`clean`, a markdown cell that would render to anything :func:`clean` removes
    replaced by its clean rendering (as one HTML block), no output metadata a template would trust (file
    names, unquoted sizes), no widget state, counts that are numbers. Check cells' verdicts (streams and
    errors) and nbgrader's metadata are kept as they are. Returns whether anything changed."""
    from nbconvert.exporters import HTMLExporter

    exporter = HTMLExporter()
    before = nbformat.writes(nb)
    metadata = nb.get("metadata", {})
    if isinstance(metadata, dict):
        metadata.pop("widgets", None)
    nb.cells = [
        c for c in nb.cells if isinstance(c, dict) and c.get("cell_type") in ("code", "markdown", "raw")
    ]
    for cell in nb.cells:
        source = cell.get("source", "")
        if not isinstance(source, str):
            source = cell["source"] = "".join(map(str, source)) if isinstance(source, list) else str(source)
        if cell.cell_type == "markdown":
            safe, changed = rendered_safely(source, _markdown(source, cell, exporter), relative=True)
            if changed:
                cell.source = _one_line(safe)
                cell.pop("attachments", None)  # inline in the clean rendering, where they were images
        elif cell.cell_type == "raw":  # always its clean serialization, as an HTML output
            cell.source = clean(source, relative=True)
        else:
            if type(cell.get("execution_count")) is not int:
                cell["execution_count"] = None
            given = cell.get("outputs")
            outputs = [_safe_output(o, cell, exporter) for o in (given if isinstance(given, list) else [])]
            cell["outputs"] = [o for o in outputs if o is not None]
    return nbformat.writes(nb) != before


def make_notebook_safe(path: Path) -> None:
    """The graded notebook at ``path`` (nbgrader's autograded copy, which formgrader shows) made safe in
    place: :func:`safe_notebook`."""
    nb = nbformat.read(path, as_version=4)
    if safe_notebook(nb):  # a lone surrogate (an undecodable byte a learner printed) as JSON escapes it
        records.replace_file(path, nbformat.writes(nb).encode("utf-8", errors="backslashreplace"))


class SafeFeedbackExporter(HTMLExporter):
    """nbconvert's HTML exporter whose every page comes out through :func:`safe_page`: the feedback pages
    that nbgrader's generate_feedback writes (the grader's, and formgrader's *Generate Feedback* button,
    through the course's configuration of OUT/course) are safe to open as they are written."""

    def from_notebook_node(self, nb, resources=None, **kw):
        output, resources = super().from_notebook_node(nb, resources, **kw)
        return safe_page(output), resources
