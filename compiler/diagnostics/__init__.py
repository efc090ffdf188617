"""Diagnostics as data: codes, spans, notes and hints (`core`), their rendering for
terminals (`core.render`) and for CI (`report`: json, github, sarif), and the long
explanations behind `dlc explain` (`explanations`)."""
from compiler.diagnostics.core import (
                                       CODES,
                                       UNKNOWN_SPAN,
                                       CompileError,
                                       Diagnostic,
                                       Note,
                                       Severity,
                                       SourceCache,
                                       Span,
                                       error,
                                       render,
                                       suggest,
                                       use_color,
)

__all__ = ["CODES", "UNKNOWN_SPAN", "CompileError", "Diagnostic", "Note", "Severity", "SourceCache", "Span",
           "error", "render", "suggest", "use_color"]
