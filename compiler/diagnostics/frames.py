"""Where a diagnostic is shown: on the user's own line, not inside a library.

An error raised inside a stdlib block (a `require` of MultiHeadAttention) is found at the
library's line, but CI annotations only land on files of the user's repository.  So the primary
location moves to the frame where the user's code calls into the library, and the library's
line becomes a note (SARIF: a related location).  Frames are the diagnostic's own span and the
"instantiated here" / "in instance" notes that resolution and checking add, innermost first.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable

from compiler.diagnostics.core import Diagnostic, Note

FRAME_MARKERS = ("instantiated here", "in instance `")


def is_frame(note: Note) -> bool:
    return any(marker in note.message for marker in FRAME_MARKERS)


def in_user_code(d: Diagnostic, is_library: Callable[[str], bool]) -> Diagnostic:
    """`d` with its primary span in the user's files when it was raised in a library file."""
    if not is_library(d.span.file):
        return d
    for note in d.notes:
        if is_frame(note) and not is_library(note.span.file):
            others = tuple(n for n in d.notes if n is not note)
            context = note.message.removesuffix(", instantiated here")
            library = Note(d.span, f"raised here in the library, {context}")
            return replace(d, span=note.span, notes=(library, *others))
    return d


def library_files(folders: list[Path]) -> Callable[[str], bool]:
    """A predicate: whether a diagnostic's file lies in one of the library `folders`."""
    roots = [f.resolve() for f in folders if f.is_dir()]

    def is_library(file: str) -> bool:
        if file.startswith("<"):
            return False
        path = Path(file).resolve()
        return any(path == root or root in path.parents for root in roots)

    return is_library


def relocate_all(diagnostics: list[Diagnostic], folders: list[Path]) -> list[Diagnostic]:
    is_library = library_files(folders)
    return [in_user_code(d, is_library) for d in diagnostics]
