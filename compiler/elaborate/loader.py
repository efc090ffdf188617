"""Finding and parsing spec files, and binding their imports.

`import attention` looks for `attention.dl` next to the importing file, then in
each directory of the search path (the bundled `stdlib/` last).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from compiler.diagnostics import CompileError, Diagnostic, Note, Span, error, suggest
from compiler.elaborate.limits import Limits
from compiler.syntax import ast
from compiler.syntax.parser import parse_file


def _bundled_stdlib() -> Path:
    """The standard library: package data of an installed dlc, else the checkout's top-level folder."""
    installed = Path(str(resources.files("compiler") / "stdlib"))
    return installed if installed.is_dir() else Path(__file__).resolve().parents[2] / "stdlib"


STDLIB = _bundled_stdlib()


@dataclass
class LoadedModule:
    path: Path
    display: str
    tree: ast.Module
    scope: dict[str, tuple[ast.BlockDef, "LoadedModule"]] = field(default_factory=dict)


def display_path(path: Path) -> str:
    """Paths relative to the working directory when below it, for stable messages."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def search_path() -> list[Path]:
    extra = [Path(p) for p in os.environ.get("DLC_PATH", "").split(os.pathsep) if p]
    return [*extra, STDLIB]


class Loader:
    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self.modules: dict[Path, LoadedModule] = {}
        self.loading: list[Path] = []
        self.diagnostics: list[Diagnostic] = []

    def load(self, path: Path, via: Span | None = None) -> LoadedModule:
        key = path.resolve()
        if key in self.modules:
            return self.modules[key]
        if key in self.loading:
            chain = " -> ".join(p.stem for p in self.loading[self.loading.index(key):]) + f" -> {key.stem}"
            raise error("DLC009", f"import cycle: {chain}", via or Span(display_path(path), 1, 1, 1, 2),
                        hint="move the shared blocks into a module that both import")
        where = via or Span(display_path(path), 1, 1, 1, 2)
        # Modules still loading count too: in a chain none has finished when the limit is reached.
        if len(self.modules) + len(self.loading) >= self.limits.max_modules:
            raise error("DLC013", f"more than {self.limits.max_modules} modules imported", where)
        if len(self.loading) >= self.limits.max_import_depth:
            raise error("DLC013", f"imports chained deeper than {self.limits.max_import_depth} modules", where,
                        hint="import the modules a spec needs directly rather than through long chains")
        self.loading.append(key)
        try:
            module = LoadedModule(path, display_path(path),
                                  parse_file(path, display_path(path), self.limits.source))
            self._bind_scope(module)
        finally:
            self.loading.pop()
        self.modules[key] = module
        return module

    def _find(self, name: str, importer: LoadedModule, span: Span) -> Path:
        candidates = [importer.path.parent, *search_path()]
        for folder in candidates:
            path = folder / f"{name}.dl"
            if path.is_file():
                return path
        known = {p.stem for folder in candidates if folder.is_dir() for p in folder.glob("*.dl")}
        raise error("DLC010", f"cannot find module `{name}`", span,
                    hint=suggest(name, known) or f"looked in {', '.join(display_path(c) for c in candidates)}")

    def _bind_scope(self, module: LoadedModule) -> None:
        for block in module.tree.blocks:
            self._add(module, block.name, block, module, block.name_span)
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
                "DLC003", f"block `{name}` is defined more than once", span,
                notes=(Note(existing[0].name_span, "first defined here"),)))
