"""Diagnostics as data: codes as named constants (`codes`), spans, notes and hints
(`core`), their rendering for terminals (`core.render`) and for CI (`report`: json,
github, sarif), and the long explanations behind `dlc explain` (`explanations`)."""
from compiler.diagnostics.codes import CODES, Code, Severity, lookup
from compiler.diagnostics.core import (
                                       UNKNOWN_SPAN,
                                       CompileError,
                                       Diagnostic,
                                       Note,
                                       SourceCache,
                                       Span,
                                       error,
                                       render,
                                       suggest,
                                       use_color,
)

__all__ = ["CODES", "UNKNOWN_SPAN", "Code", "CompileError", "Diagnostic", "Note", "Severity", "SourceCache", "Span",
           "error", "lookup", "render", "suggest", "use_color"]
