"""The runtime helpers (dlc/runtime/helpers.py, and the fused kernels of fusion.py) as
source text, one entry per top-level definition.

Generated code never imports dlc, so anything a lowering relies on beyond torch is
copied into the generated file from that module, with the helpers it uses in turn.
It imports torch, so it is read as text (`_runtime_text`), never imported.
"""
from __future__ import annotations

import ast
import re
from functools import lru_cache
import importlib.util
import os


RUNTIME_FILES = ("helpers.py", "fusion.py", "whole_model.py", "init.py", "generation.py", "decoding.py",
                 "attention.py")


def _runtime_text(file: str) -> str:
    """The text of one runtime file, read from the `dlc.runtime` package's folder, as
    importlib.resources reads a package on disk; only a package elsewhere (a zip) goes through
    importlib.resources, which brings zipfile, tempfile and shutil along (`dlc check` reads these
    files for the names they reserve: those imports were a twentieth of its start-up)."""
    spec = importlib.util.find_spec("dlc.runtime")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    path = os.path.join(folders[0], file) if folders else None
    if path is not None and os.path.isfile(path):
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    from importlib import resources
    return (resources.files("dlc.runtime") / file).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _definitions() -> dict[str, tuple[str, set[str]]]:
    """name -> (source, names of the other helpers it reads), in file order."""
    found: dict[str, tuple[str, set[str]]] = {}
    for file in RUNTIME_FILES:
        text = _runtime_text(file)
        _read_definitions(text, found)
    return {name: (source, reads & set(found) - {name}) for name, (source, reads) in found.items()}


def _read_definitions(text: str, found: dict[str, tuple[str, set[str]]]) -> None:
    """Add each top-level function, class and constant of one runtime file to `found`."""
    tree = ast.parse(text)
    lines = text.splitlines()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])   # with its decorators
            source = "\n".join(lines[first - 1:node.end_lineno])
            reads = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            found[node.name] = (source, reads)
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            start = node.lineno - 1           # a constant, with the comment lines right above it
            while start > 0 and lines[start - 1].startswith("#"):
                start -= 1
            source = "\n".join(lines[start:node.end_lineno])
            reads = {n.id for n in ast.walk(node.value) if isinstance(n, ast.Name)}
            found[node.targets[0].id] = (source, reads)


# A top-level definition or constant of a runtime file: what `_read_definitions` collects.
_TOP_LEVEL_NAME = re.compile(r"^(?:def|class)\s+(\w+)|^([A-Za-z_]\w*)\s*(?::[^=]*)?=(?!=)", re.MULTILINE)


@lru_cache(maxsize=1)
def helper_names() -> set[str]:
    """Every name the helpers define: reserved in generated code.  Read by a line scan, not by
    parsing the files: `dlc check` reserves these names, and must not pay for an ast.parse."""
    names = set()
    for file in RUNTIME_FILES:
        text = _runtime_text(file)
        names.update(a or b for a, b in _TOP_LEVEL_NAME.findall(text))
    return names


def helper_closure(wanted: set[str]) -> set[str]:
    """The wanted helpers and those they use, directly or through others."""
    definitions = _definitions()
    needed, pending = set(), list(wanted)
    while pending:
        name = pending.pop()
        if name not in needed:
            needed.add(name)
            pending.extend(definitions[name][1])
    return needed


def helper_sources(wanted: set[str]) -> list[str]:
    """The sources of the wanted helpers and of those they use, in the module's order."""
    needed = helper_closure(wanted)
    return [source for name, (source, _) in _definitions().items() if name in needed]


class _Helpers:
    """`HELPERS[name]`: one helper's source with those it uses before it (for tests that exec it)."""

    def __getitem__(self, name: str) -> str:
        return "\n\n\n".join(helper_sources({name}))


HELPERS = _Helpers()
