"""Text -> AST.  The hand-written parser of `fast_parser` builds the AST of most specs;
what it leaves (errors above all) goes to lark (`lark_parser`, imported only then), which
builds the same typed AST nodes and turns its exceptions into DLC001 diagnostics."""
from __future__ import annotations

import gc
import re
from itertools import accumulate
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from compiler import disk_cache
from compiler.diagnostics import Span, error
from compiler.diagnostics.codes import IMPORT_ERROR, RESOURCE_LIMIT, SYNTAX_ERROR
from compiler.syntax import ast
from compiler.syntax.fast_parser import parse_fast


@dataclass(frozen=True)
class SourceLimits:
    """What the parser accepts (compiler/elaborate/limits.py gathers every limit, these included)."""

    max_source_bytes: int = 2_000_000     # of UTF-8, not characters
    max_nesting: int = 200                # brackets, and the parse tree of any expression
    max_literal_digits: int = 100         # far beyond any size; keeps int() away from Python's 4300 digits


DEFAULT_LIMITS = SourceLimits()
MAX_SOURCE_BYTES = DEFAULT_LIMITS.max_source_bytes
MAX_NESTING = DEFAULT_LIMITS.max_nesting
MAX_LITERAL_DIGITS = DEFAULT_LIMITS.max_literal_digits


# Brackets, with the strings and comments that may hold brackets of their own.
# Strings and comments, whose brackets do not count, and brackets: the walk below matches both in
# one pass; the fast sum removes the first and counts the second.
_STRINGS_AND_COMMENTS = re.compile(r'"[^"\n]*"?|#[^\n]*')
_BRACKET = re.compile(r"[(\[{]|[)\]}]")
_BRACKETS = re.compile(f"{_STRINGS_AND_COMMENTS.pattern}|{_BRACKET.pattern}")
_DEPTH_CHANGE = {"(": 1, "[": 1, "{": 1, ")": -1, "]": -1, "}": -1}


def _check_brackets(text: str, file: str, limit: int) -> None:
    """Parentheses leave no node in the tree, so `((((x))))` is bounded on the text itself."""
    # The running depth, summed in C: when it never goes below zero (no unmatched closing bracket,
    # which the loop below clamps) and stays within the limit, the loop would find nothing.
    depths = list(accumulate(map(_DEPTH_CHANGE.__getitem__, _BRACKET.findall(_STRINGS_AND_COMMENTS.sub("", text)))))
    if not depths or (min(depths) >= 0 and max(depths) <= limit):
        return
    depth = 0
    for match in _BRACKETS.finditer(text):
        char = match.group()
        if char in "([{":
            depth += 1
            if depth > limit:
                line = text.count("\n", 0, match.start()) + 1
                col = match.start() - text.rfind("\n", 0, match.start())
                raise error(RESOURCE_LIMIT, f"brackets nest deeper than {limit} levels", Span(file, line, col, line, col + 1),
                            hint="split the expression with `let` bindings")
        elif char in ")]}":
            depth = max(0, depth - 1)


def parse(text: str, file: str = "<string>", limits: SourceLimits = DEFAULT_LIMITS) -> ast.Module:
    """Parse dlc source text; raises CompileError with a DLC001 (or DLC013) diagnostic.

    ASTs are frozen, so a module parsed once is shared: within a process (a `dlc check` of
    many specs parses each stdlib module once) and, for the modules the hand-written parser
    leaves to lark, across processes through the disk cache, keyed by the file name (spans
    carry it) and text.  Only successful parses under the default limits are cached."""
    if limits != DEFAULT_LIMITS:
        return _parse_text(text, file, limits)
    return _parse_cached(text, file)


@lru_cache(maxsize=512)
def _parse_cached(text: str, file: str) -> ast.Module:
    # The hand-written parser is faster than reading the disk cache; only what it leaves to
    # lark (errors, rare forms) is worth caching on disk.
    module = _parse_fast(text, file, DEFAULT_LIMITS)
    if module is not None:
        return module
    import pickle       # only for the disk cache of what lark parses
    key = disk_cache.key_of("ast", file, text)
    payload = disk_cache.load("ast", key)
    if payload is not None:
        try:
            module = pickle.loads(payload)
            if isinstance(module, ast.Module):
                return module
        except Exception:  # an entry from an incompatible build: parse again and overwrite it
            pass
    module = _parse_with_lark(text, file, DEFAULT_LIMITS)
    try:
        disk_cache.store("ast", key, pickle.dumps(module, protocol=pickle.HIGHEST_PROTOCOL))
    except (pickle.PicklingError, TypeError, AttributeError, RecursionError):
        pass  # an AST that does not pickle is just not cached
    return module


def _check_size(text: str, file: str, limits: SourceLimits) -> None:
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > limits.max_source_bytes:
        raise error(RESOURCE_LIMIT, f"file is larger than {limits.max_source_bytes:,} bytes ({size:,})",
                    Span(file, 1, 1, 1, 2))


def _parse_fast(text: str, file: str, limits: SourceLimits) -> ast.Module | None:
    """The hand-written parser's module (compiler/syntax/fast_parser.py), or None: lark decides."""
    _check_size(text, file, limits)
    _check_brackets(text, file, limits.max_nesting)
    # An AST holds no reference cycles, so the cyclic collector has nothing to find in it, yet
    # it would scan the growing tree again and again (a third of the time of a large spec).
    paused = gc.isenabled()
    gc.disable()
    try:
        return parse_fast(text, file, limits.max_nesting, limits.max_literal_digits)
    finally:
        if paused:
            gc.enable()


def _parse_with_lark(text: str, file: str, limits: SourceLimits) -> ast.Module:
    from compiler.syntax.lark_parser import parse_with_lark
    return parse_with_lark(text, file, limits)


def _parse_text(text: str, file: str, limits: SourceLimits) -> ast.Module:
    module = _parse_fast(text, file, limits)
    return module if module is not None else _parse_with_lark(text, file, limits)


def read_source(path: Path, display: str, limits: SourceLimits = DEFAULT_LIMITS) -> str:
    try:
        size = path.stat().st_size
        if size > limits.max_source_bytes:     # not read at all: a huge file must not cost its size in memory
            raise error(RESOURCE_LIMIT, f"file is larger than {limits.max_source_bytes:,} bytes ({size:,})",
                        Span(display, 1, 1, 1, 2))
        data = path.read_bytes()
    except OSError as exc:
        raise error(IMPORT_ERROR, f"cannot read {display}: {exc.strerror}", Span(display, 1, 1, 1, 2)) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise error(SYNTAX_ERROR, "file is not UTF-8 text", Span(display, line, 1, line, 2),
                    hint="dlc specs are UTF-8 text files") from None


def parse_file(path: Path, display: str | None = None, limits: SourceLimits = DEFAULT_LIMITS) -> ast.Module:
    display = display or str(path)
    return parse(read_source(path, display, limits), display, limits)
