"""Build the student notebooks from `solutions/` and grade submissions with nbgrader."""

import sys

# jsonschema (through nbformat) imports rfc3987_syntax, when installed, only to check the "iri"
# string formats, which neither nbformat nor nbgrader uses; building its grammar costs over a
# second in every grader process. Without it, jsonschema simply skips those formats.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]  # None: "cannot be imported"
