"""Feedback pages: what a learner sees of their graded notebook, safe to open in the instructor's browser."""

from __future__ import annotations

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool

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
