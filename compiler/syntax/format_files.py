"""`dlc fmt`: format .dl files in place, or with `--check` list those that would change.

Files are written atomically and only when their text changes; a file that does not parse is
reported with its diagnostic and left alone.  `-` formats standard input to standard output.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from compiler.diagnostics import CompileError, Diagnostic, SourceCache, render, use_color
from compiler.syntax.formatter import DEFAULT_WIDTH, FormatterBug, format_source
from compiler.syntax.parser import read_source

EXIT_OK, EXIT_CHANGES, EXIT_INTERNAL = 0, 1, 3


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` in one step: a reader sees the old file or the new one.
    (The driver has the same for generated code; syntax comes before it and cannot import it.)"""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def spec_files(paths: list[Path]) -> list[Path]:
    """The .dl files named or found (recursively, sorted) under the folders named."""
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.rglob("*.dl")) if path.is_dir() else [path])
    return files


def _report(diagnostics: list[Diagnostic]) -> None:
    sources, color = SourceCache(), use_color(sys.stderr)
    for d in diagnostics:
        print(render(d, sources, color), file=sys.stderr)


def _format_stdin(width: int, check: bool) -> int:
    text = sys.stdin.read()
    try:
        result = format_source(text, "<stdin>", width)
    except CompileError as exc:
        _report(exc.diagnostics)
        return EXIT_CHANGES
    if check:
        return EXIT_CHANGES if result != text else EXIT_OK
    sys.stdout.write(result)
    return EXIT_OK


def format_paths(paths: list[Path], check: bool = False, width: int = DEFAULT_WIDTH) -> int:
    """Format every spec under `paths`; the exit status of `dlc fmt`."""
    if [str(p) for p in paths] == ["-"]:
        return _format_stdin(width, check)
    changed, failed, files = [], 0, spec_files(paths)
    for path in files:
        try:
            text = read_source(path, str(path))
            result = format_source(text, str(path), width)
        except CompileError as exc:
            _report(exc.diagnostics)
            failed += 1
            continue
        except FormatterBug as exc:
            print(f"dlc fmt: internal error: {exc}", file=sys.stderr)
            return EXIT_INTERNAL
        if result != text:
            changed.append(path)
            if not check:
                write_atomically(path, result)
    for path in changed:
        print(f"{'would reformat' if check else 'reformatted'} {path}", file=sys.stderr)
    verb = "would be reformatted" if check else "reformatted"
    print(f"{len(changed)} file(s) {verb}, {len(files) - len(changed) - failed} unchanged"
          + (f", {failed} not parsed" if failed else ""), file=sys.stderr)
    return EXIT_CHANGES if failed or (check and changed) else EXIT_OK
