"""nbgrader preprocessors of the course's grading (grader/grade.py wires them into nbgrader's config)."""

from __future__ import annotations

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool


class HideTestDetails(Preprocessor):
    """For feedback: an error in a graded test cell shows only its last line ("AssertionError: expected …").

    nbgrader's ClearHiddenTests removes hidden tests from the cell's source, but the traceback of a failing
    hidden test still quotes its code; the message, which says what was expected, is what a learner needs.
    """

    enabled = Bool(True).tag(config=True)  # nbconvert's preprocessors are off unless enabled

    def preprocess_cell(self, cell, resources, index):
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade") and cell.cell_type == "code":
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    output["traceback"] = [f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"]
        return cell, resources
