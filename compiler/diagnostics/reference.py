"""The diagnostics reference, `docs/diagnostics.md`: one section per registered code, with its
name, summary and the long explanation `dlc explain CODE` prints.  SARIF rules link each code
to its section (`helpUri`), so a code-scanning alert opens the same text; the document is
generated from the registry (`python scripts/diagnostics_reference.py`) and a test keeps it fresh.
"""
from __future__ import annotations

from compiler.diagnostics.codes import CODES

DOCUMENT = "docs/diagnostics.md"


def anchor(code: str) -> str:
    """The section's anchor as GitHub renders `## DLC007`: the heading in lower case."""
    return code.lower()


def reference_markdown() -> str:
    from compiler.diagnostics.explanations import EXPLANATIONS
    parts = ["# dlc diagnostics", "",
             "Every code dlc reports, as `dlc explain CODE` (or `dlc explain NAME`) explains it offline.",
             "Generated from `compiler/diagnostics/codes.py` and `explanations.py` by",
             "`python scripts/diagnostics_reference.py`; do not edit by hand.", ""]
    for code in CODES.values():
        parts += [f"## {code.code}", "", f"**{code.name}** ({code.severity.value}): {code.summary}", "",
                  "```", EXPLANATIONS.get(code.code, code.summary), "```", ""]
    return "\n".join(parts)
