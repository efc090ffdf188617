"""Finding and parsing spec files, and binding their imports.

`import attention` looks for `attention.dl` next to the importing file, then in
each directory of the search path (the bundled `stdlib/` last).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from compiler.diagnostics import CompileError, Diagnostic, Note, Severity, Span, error, suggest
from compiler.elaborate.search_path import STDLIB, import_folders
from compiler.ops import REGISTRY
from compiler.elaborate.limits import Limits
from compiler.syntax import ast
from compiler.syntax.parser import parse, parse_file
from compiler.diagnostics.codes import BLOCK_SHADOWS_OP, CYCLE, DUPLICATE_NAME, IMPORT_ERROR, RESOURCE_LIMIT




def in_stdlib(span: Span) -> bool:
    """Whether a span lies in dlc's standard library, which a user does not edit."""
    return _file_in_stdlib(span.file)


@lru_cache(maxsize=1024)
def _file_in_stdlib(file: str) -> bool:
    # cached: it is asked for every block instance, and resolving a path costs system calls
    try:
        Path(file).resolve().relative_to(STDLIB.resolve())
        return True
    except (ValueError, OSError):
        return False


def stdlib_module_defining(name: str) -> str | None:
    """The standard-library module that defines block `name`, for an "add `import ...`" hint."""
    pattern = re.compile(rf"^\s*block\s+{re.escape(name)}\s*\(", re.M)
    for path in sorted(STDLIB.glob("*.dl")):
        if pattern.search(path.read_text(encoding="utf-8", errors="replace")):
            return path.stem
    return None


@dataclass
class LoadedModule:
    path: Path
    display: str
    tree: ast.Module
    scope: dict[str, tuple[ast.BlockDef, "LoadedModule"]] = field(default_factory=dict)


def display_path(path: Path, resolved: Path | None = None) -> str:
    """Paths relative to the working directory when below it, for stable messages (`resolved`:
    `path.resolve()`, when the caller has it already)."""
    try:
        return (resolved or path.resolve()).relative_to(_resolved_folder(os.getcwd())).as_posix()
    except ValueError:
        return path.as_posix()


@lru_cache(maxsize=8)
def _resolved_folder(folder: str) -> Path:
    # the working directory, resolved once per process and directory, not once per module loaded
    return Path(folder).resolve()


class Loader:
    def __init__(self, limits: Limits | None = None, sources: dict[Path, str] | None = None) -> None:
        self.limits = limits or Limits()
        # resolved path -> text that replaces the file's (an editor's unsaved buffers)
        self.sources = sources or {}
        self.modules: dict[Path, LoadedModule] = {}
        self.loading: list[Path] = []
        self.diagnostics: list[Diagnostic] = []

    def load(self, path: Path, via: Span | None = None) -> LoadedModule:
        key = path.resolve()
        if key in self.modules:
            return self.modules[key]
        if key in self.loading:
            chain = " -> ".join(p.stem for p in self.loading[self.loading.index(key):]) + f" -> {key.stem}"
            raise error(CYCLE, f"import cycle: {chain}", via or Span(display_path(path), 1, 1, 1, 2),
                        hint="move the shared blocks into a module that both import")
        display = display_path(path, key)
        where = via or Span(display, 1, 1, 1, 2)
        # Modules still loading count too: in a chain none has finished when the limit is reached.
        if len(self.modules) + len(self.loading) >= self.limits.max_modules:
            raise error(RESOURCE_LIMIT, f"more than {self.limits.max_modules} modules imported", where)
        if len(self.loading) >= self.limits.max_import_depth:
            raise error(RESOURCE_LIMIT, f"imports chained deeper than {self.limits.max_import_depth} modules", where,
                        hint="import the modules a spec needs directly rather than through long chains")
        self.loading.append(key)
        try:
            tree = (parse(self.sources[key], display, self.limits.source) if key in self.sources
                    else parse_file(path, display, self.limits.source))
            module = LoadedModule(path, display, tree)
            self._bind_scope(module)
        finally:
            self.loading.pop()
        self.modules[key] = module
        return module

    def _find(self, name: str, importer: LoadedModule, span: Span) -> Path:
        candidates = import_folders(importer.path)
        for folder in candidates:
            path = folder / f"{name}.dl"
            if path.is_file():
                return path
        known = {p.stem for folder in candidates if folder.is_dir() for p in folder.glob("*.dl")}
        raise error(IMPORT_ERROR, f"cannot find module `{name}`", span,
                    hint=suggest(name, known) or f"looked in {', '.join(display_path(c) for c in candidates)}")

    def _bind_scope(self, module: LoadedModule) -> None:
        for block in module.tree.blocks:
            self._add(module, block.name, block, module, block.name_span)
            if block.name in REGISTRY:
                self.diagnostics.append(Diagnostic(
                    BLOCK_SHADOWS_OP, f"block `{block.name}` shadows the primitive op `{block.name}`", block.name_span,
                    Severity.WARNING, hint="where this block is in scope the name means the block; rename it to "
                    "keep the op reachable"))
        for imp in module.tree.imports:
            for name, span in imp.names:
                try:
                    imported = self.load(self._find(name, module, span), span)
                except CompileError as exc:
                    self.diagnostics.extend(exc.diagnostics)
                    continue
                for block in imported.tree.blocks:
                    self._add(module, block.name, block, imported, span)

    def _add(self, module: LoadedModule, name: str, block: ast.BlockDef, owner: LoadedModule, span: Span) -> None:
        existing = module.scope.get(name)
        if existing is None:
            module.scope[name] = (block, owner)
        elif existing[0] is not block:
            self.diagnostics.append(Diagnostic(
                DUPLICATE_NAME, f"block `{name}` is defined more than once", span,
                notes=(Note(existing[0].name_span, "first defined here"),)))
