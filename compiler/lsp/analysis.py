"""The language server's answers, without any protocol: what `dlc check` says about a document,
and hover text, definitions and completions at a position.  `server` turns these into LSP."""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path

from compiler.diagnostics import CompileError, Diagnostic, Span
from compiler.driver import check
from compiler.elaborate.loader import LoadedModule, Loader
from compiler.ir import Program
from compiler.ops import REGISTRY
from compiler.ops.registry import OpDef
from compiler.syntax import ast
from compiler.lsp import describe
from compiler.lsp.symbols import Local, Word, call_context, enclosing_block, import_at, locals_of, word_at

KEYWORDS = ("import", "block", "model", "require", "in", "out", "let", "if", "then", "else", "for", "tie",
            "rename", "repeat", "scan", "optional", "and", "or", "not", "true", "false", "none")


@dataclass
class Analysis:
    """One document, checked: its AST and scope (when it parses), program and diagnostics."""

    path: Path
    text: str
    sources: dict[Path, str]
    diagnostics: list[Diagnostic] = field(default_factory=list)
    loaded: LoadedModule | None = None
    loader: Loader | None = None
    program: Program | None = None

    @property
    def module(self) -> ast.Module | None:
        return self.loaded.tree if self.loaded else None


def analyze(path: Path, text: str, sources: dict[Path, str] | None = None) -> Analysis:
    """Check `text` as the file `path` (other open documents in `sources` replace their files)."""
    path = path.resolve()
    sources = {**(sources or {}), path: text}
    result = check(path, all_blocks=True, sources=sources)      # the same checks as `dlc check`
    analysis = Analysis(path, text, sources, result.diagnostics, program=result.program)
    analysis.loader = Loader(sources=sources)
    try:
        analysis.loaded = analysis.loader.load(path)
    except CompileError:
        analysis.loaded = None
    return analysis


def source_of(analysis: Analysis, path: Path) -> str:
    key = path.resolve()
    return analysis.sources[key] if key in analysis.sources else key.read_text(encoding="utf-8")


# ---------------------------------------------------------------------- definitions
@dataclass(frozen=True)
class Target:
    """Where a name is defined: a file and a 1-based span in it."""

    path: Path
    span: Span


def _local(analysis: Analysis, word: Word) -> Local | None:
    block = enclosing_block(analysis.module, word.span.line, word.span.col)
    if block is None:
        return None
    found = [loc for loc in locals_of(block) if loc.name == word.text]
    return found[0] if found else None


def _block(analysis: Analysis, name: str) -> tuple[ast.BlockDef, LoadedModule] | None:
    return analysis.loaded.scope.get(name) if analysis.loaded else None


def _imported_path(analysis: Analysis, word: Word) -> Path | None:
    imp = import_at(analysis.module, word)
    if imp is None or analysis.loader is None or analysis.loaded is None:
        return None
    try:
        return analysis.loader._find(word.text, analysis.loaded, word.span)
    except CompileError:
        return None


def _op_source(op: OpDef) -> Target | None:
    """The registry entry's shape rule: the Python that defines the op."""
    try:
        lines, first = inspect.getsourcelines(op.infer)
        file = inspect.getsourcefile(op.infer)
    except (OSError, TypeError):
        return None
    return Target(Path(file), Span(file, first, 1, first, len(lines[0]))) if file else None


def definition(analysis: Analysis, line: int, col: int) -> Target | None:
    """Where the name at (line, col) is defined: in this block, another module, the stdlib, or
    (for a primitive op) the registry entry."""
    word = word_at(analysis.text, line, col, str(analysis.path))
    if word is None:
        return None
    imported = _imported_path(analysis, word)
    if imported is not None:
        return Target(imported.resolve(), Span(str(imported), 1, 1, 1, 1))
    local = _local(analysis, word)
    if local is not None:
        return Target(analysis.path, local.node.span)
    block = _block(analysis, word.text)
    if block is not None:
        return Target(block[1].path.resolve(), block[0].name_span)
    return _op_source(REGISTRY[word.text]) if word.text in REGISTRY else None


# ---------------------------------------------------------------------- hover
def hover(analysis: Analysis, line: int, col: int, others: tuple[Program, ...] = ()) -> str | None:
    """Markdown for the name at (line, col): a tensor's shape and dtype (as declared and in each
    configuration checked here or in the `others`' programs: a library block's shapes show once
    a model that uses it is open), a parameter, a block's or op's signature and documentation."""
    word = word_at(analysis.text, line, col, str(analysis.path))
    if word is None:
        return None
    imported = _imported_path(analysis, word)
    if imported is not None:
        return f"module `{word.text}`: `{imported}`"
    local = _local(analysis, word)
    if local is not None:
        block = enclosing_block(analysis.module, word.span.line, word.span.col)
        programs = [p for p in (analysis.program, *others) if p is not None]
        return describe.local(local, block, programs)
    block = _block(analysis, word.text)
    if block is not None:
        definition_, owner = block
        return describe.block(definition_, source_of(analysis, owner.path), owner.display)
    if word.text in REGISTRY:
        return describe.op(REGISTRY[word.text])
    return None


# ---------------------------------------------------------------------- completion
@dataclass(frozen=True)
class Completion:
    label: str
    kind: str              # "parameter" | "block" | "op" | "local" | "keyword"
    detail: str = ""
    insert: str | None = None


def _parameters(analysis: Analysis, callee: str, used: tuple[str, ...]) -> list[Completion]:
    block = _block(analysis, callee)
    if block is not None:
        text = source_of(analysis, block[1].path)
        return [Completion(f"{p.name}=", "parameter", describe.param(p, text), f"{p.name}=")
                for p in block[0].params if p.name not in used]
    if callee in REGISTRY:
        return [Completion(f"{name}=", "parameter", detail, f"{name}=")
                for name, detail in describe.op_attributes(REGISTRY[callee]) if name not in used]
    return []


def completions(analysis: Analysis, line: int, col: int) -> list[Completion]:
    """Parameters of the call being written first, then names in scope, blocks, ops, keywords."""
    items: list[Completion] = []
    context = call_context(analysis.text, line, col)
    if context is not None and context.callee and not context.applies:
        items += _parameters(analysis, context.callee, context.keywords_used)
    block = enclosing_block(analysis.module, line, col)
    seen: set[str] = set()
    for local in locals_of(block) if block else []:
        if local.name not in seen:
            seen.add(local.name)
            items.append(Completion(local.name, "local", local.kind))
    if analysis.loaded is not None:
        items += [Completion(name, "block", describe.block_signature(b, source_of(analysis, owner.path)))
                  for name, (b, owner) in sorted(analysis.loaded.scope.items())]
    items += [Completion(name, "op", describe.op_signature(op)) for name, op in sorted(REGISTRY.items())]
    items += [Completion(k, "keyword") for k in KEYWORDS]
    return items
