"""Feedback that helps the student without showing hidden tests."""
from nbconvert.preprocessors import Preprocessor
from traitlets import Bool

HIDDEN_MARK = "BEGIN HIDDEN TESTS"


class HideHiddenTracebacks(Preprocessor):
    """Replace a hidden test's outputs by one line: passed, or the failure's own message.

    A traceback would quote the hidden lines; the assertion message is written to be shown.
    Runs before nbgrader's ClearHiddenTests, which needs the marker this looks for.
    """

    enabled = Bool(True)  # a Preprocessor that is not enabled is silently skipped

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and HIDDEN_MARK in cell.source:
            errors = [o for o in cell.outputs if o.get("output_type") == "error"]
            if errors:
                err = errors[0]
                text = f"Hidden test failed: {err.get('ename', 'Error')}: {err.get('evalue', '')}\n"
                cell.outputs = [{"output_type": "stream", "name": "stderr", "text": text}]
            else:
                cell.outputs = [{"output_type": "stream", "name": "stdout", "text": "Hidden tests passed.\n"}]
        return cell, resources


class TruncateOutputs(Preprocessor):
    """Cut each text output to `max_chars`: nbgrader's own limit counts lines, and a single
    printed line of megabytes would otherwise land whole in the feedback page."""

    enabled = Bool(True)
    max_chars = 10_000

    def preprocess_cell(self, cell, resources, index):
        for output in cell.get("outputs", []):
            text = output.get("text")
            if isinstance(text, list):
                text = "".join(text)
            if isinstance(text, str) and len(text) > self.max_chars:
                output["text"] = text[: self.max_chars] + f"\n... [{len(text) - self.max_chars} more characters cut]\n"
        return cell, resources
