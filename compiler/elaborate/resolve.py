"""AST -> IR: bind parameters, evaluate compile-time expressions, take static
branches, expand `repeat`, and build one `Graph` per block specialization.

A block used with different parameter values yields different specializations
(monomorphisation); each becomes its own generated class.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from compiler.diagnostics import CompileError, Diagnostic, Note, Span, error, suggest
from compiler.elaborate.block_builder import BlockBuilder
from compiler.elaborate.evaluate import Evaluator, checked_number
from compiler.elaborate.limits import Budget, Limits
from compiler.elaborate.loader import LoadedModule, Loader, in_stdlib
from compiler.ir import Graph, Program
from compiler.ir.values import kind_of, show
from compiler.ops import NAMED_ENUMS
from compiler.syntax import ast
from compiler.diagnostics.codes import (
    ARGUMENT_TYPE,
    CYCLE,
    DUPLICATE_ARGUMENT,
    DUPLICATE_NAME,
    FAILED_REQUIREMENT,
    INVALID_CHOICE,
    MISSING_ARGUMENT,
    RESOURCE_LIMIT,
    TOO_MANY_ARGUMENTS,
    UNKNOWN_ARGUMENT,
    UNKNOWN_CALLEE,
    UNKNOWN_OVERRIDE,
    UNKNOWN_TYPE,
)

_PARAM_KINDS = {"int": int, "float": (int, float), "bool": bool, "str": str}


class Resolver:
    def __init__(self, loader: Loader, limits: Limits = Limits()):
        self.loader = loader
        self.limits = limits
        self.budget = Budget(limits)
        self.graphs: dict[str, Graph] = {}
        self.by_key: dict[tuple, str] = {}
        self._next_suffix: dict[str, int] = {}     # base class name -> where the search for a free one resumes
        self.stack: list[tuple] = []
        self.failed: set[tuple] = set()
        self.diagnostics: list[Diagnostic] = []
        self.model_spans: dict[str, Span] = {}
        self.node_count = 0
        self.attrs_cache: dict[tuple, Any] = {}       # see block_builder.Specializer
        self._bound: dict[tuple, tuple[dict, tuple, int]] = {}    # see _bound_params

    # ------------------------------------------------------------------ entry points
    def resolve_module(self, module: LoadedModule, overrides: dict[str, Any], all_blocks: bool = False) -> Program:
        """Specialize every model (and, with `all_blocks`, every block whose parameters all have defaults)."""
        models: list[tuple[str, str]] = []
        alias_args: dict[str, tuple] = {}
        self._check_overrides(module, overrides)
        if all_blocks:
            self._check_library_blocks(module)
        for block in module.tree.blocks:
            if block.is_model:
                args = [(k, v, block.name_span) for k, v in overrides.items() if k in {p.name for p in block.params}]
                self._entry(models, block.name, block, module, args, block.name_span)
        for alias in module.tree.aliases:
            found = module.scope.get(alias.target)
            if alias.name in module.scope or alias.name in self.model_spans:
                self.diagnostics.append(self._name_taken(alias, module))
                continue
            if found is None:
                self.diagnostics.append(Diagnostic(UNKNOWN_CALLEE, f"unknown block `{alias.target}`", alias.span,
                                                   hint=suggest(alias.target, module.scope)))
                continue
            builder = BlockBuilder(self, module, Graph("", "", {}, alias.span), {})
            try:
                args = [(a.name, Evaluator(builder).eval(a.value), a.span) for a in alias.args]
            except CompileError as exc:
                self.diagnostics.extend(exc.diagnostics)
                continue
            args += self._alias_overrides(found[0], args, overrides, alias.name_span)
            self._entry(models, alias.name, found[0], found[1], args, alias.name_span)
            alias_args[alias.name] = alias.args
        return Program(module.display, self.graphs, models, self.model_spans, alias_args=alias_args)

    def _name_taken(self, alias: ast.ModelAlias, module: LoadedModule) -> Diagnostic:
        """A variant named like a block or another model would shadow it in the generated module."""
        first = self.model_spans.get(alias.name) or module.scope[alias.name][0].name_span
        return Diagnostic(DUPLICATE_NAME, f"`{alias.name}` is already defined", alias.name_span,
                          notes=(Note(first, "first defined here"),), hint="give the variant a name of its own")

    def _check_library_blocks(self, module: LoadedModule) -> None:
        for block in module.tree.blocks:
            if not block.is_model and all(p.default is not None for p in block.params):
                try:
                    self.specialize(block, module, [], block.name_span)
                except CompileError as exc:
                    self.diagnostics.extend(exc.diagnostics)

    @staticmethod
    def _alias_overrides(block: ast.BlockDef, args, overrides: dict[str, Any], span: Span) -> list:
        """`-D` values for the parameters an alias leaves open; those it fixes define the variant."""
        fixed = {name for name, _, _ in args if name} | {p.name for p, a in zip(block.params, args) if a[0] is None}
        return [(p.name, overrides[p.name], span) for p in block.params if p.name in overrides and p.name not in fixed]

    def _check_overrides(self, module: LoadedModule, overrides: dict[str, Any]) -> None:
        names = {p.name for b in module.tree.blocks if b.is_model for p in b.params}
        names |= {p.name for a in module.tree.aliases if a.target in module.scope
                  for p in module.scope[a.target][0].params}
        for key in overrides:
            if key not in names:
                close = suggest(key, names)
                raise error(UNKNOWN_OVERRIDE, f"no model in this file has a parameter `{key}`",
                            self._parameter_span(module, close) or Span(module.display, 1, 1, 1, 2), hint=close)

    @staticmethod
    def _parameter_span(module: LoadedModule, suggestion: str | None) -> Span | None:
        """Where the parameter a misspelled `-D` most likely meant is declared, else the first model."""
        models = [b for b in module.tree.blocks if b.is_model]
        meant = suggestion.split("`")[1] if suggestion else None
        spans = [p.span for b in models for p in b.params if p.name == meant]
        return spans[0] if spans else (models[0].name_span if models else None)

    def _entry(self, models, public: str, block, owner, args, span) -> None:
        try:
            key = self.specialize(block, owner, args, span, preferred=public)
        except CompileError as exc:
            self.diagnostics.extend(exc.diagnostics)
            return
        self.graphs[key].is_model = True
        models.append((public, key))
        self.model_spans[public] = span

    # ------------------------------------------------------------------ specialization
    def specialize(self, block: ast.BlockDef, owner: LoadedModule, args: list[tuple[str | None, Any, Span]],
                   call_span: Span, preferred: str | None = None, aliases: dict[int, int] | None = None) -> str:
        """The graph key of `block` with these parameters; `aliases` maps an input slot to an
        earlier slot that receives the same tensor."""
        params, frozen = self._bound_params(block, owner, args, call_span)
        memo = (id(block), frozen, tuple(sorted((aliases or {}).items())))
        if memo in self.failed:
            raise CompileError([])  # reported at its first use
        if memo in self.by_key:
            return self.by_key[memo]
        if memo in self.stack:
            raise error(CYCLE, f"block `{block.name}` uses itself", call_span,
                        notes=(Note(block.name_span, f"`{block.name}` is defined here"),),
                        hint="a model is a finite graph; stack copies of a layer with `repeat(n)`")
        if len(self.stack) >= self.limits.max_depth:
            raise error(RESOURCE_LIMIT, f"blocks nested deeper than {self.limits.max_depth} levels", call_span)
        self.stack.append(memo)
        try:
            graph = Graph(self._class_name(preferred or block.name), block.name, params, block.span)
            graph.definition = block
            BlockBuilder(self, owner, graph, params, aliases).build(block)
        except CompileError as exc:
            self.failed.add(memo)
            raise CompileError([_within(d, block, params, call_span) for d in exc.diagnostics]) from None
        finally:
            self.stack.pop()
        self.by_key[memo] = graph.key
        self.graphs[graph.key] = graph
        return graph.key

    def _class_name(self, base: str) -> str:
        """`base`, else `base2`, `base3`, ...: the first not yet a graph's key.  Keys are only
        ever added, so the search for each base resumes where it last stopped (a model with
        thousands of configurations of one block would otherwise cost their square)."""
        if base not in self.graphs:
            return base
        n = self._next_suffix.get(base, 2)
        while f"{base}{n}" in self.graphs:
            n += 1
        self._next_suffix[base] = n
        return f"{base}{n}"

    def _bound_params(self, block: ast.BlockDef, owner: LoadedModule, args, call_span: Span) -> tuple[dict, tuple]:
        """bind_params, and its result frozen (the memo's key), answered again for arguments bound
        before: most specialize calls configure a block as an earlier one did (each layer of a
        `repeat`, every model that uses one configuration), and bind the same values.  Only
        successes are kept, each with the compile-time steps its defaults took, charged again
        here, so a budget runs out where it would have (past it, binding again reports it)."""
        try:
            given: tuple | None = (id(block), tuple([(name, _freeze(value)) for name, value, _ in args]))
            found = self._bound.get(given)
        except TypeError:        # an unhashable value: bound every time
            given = found = None
        if found is not None and self.budget.steps + found[2] <= self.limits.max_steps:
            self.budget.steps += found[2]
            return dict(found[0]), found[1]
        before = self.budget.steps
        params = self.bind_params(block, owner, args, call_span)
        frozen = _freeze(params)
        if given is not None:
            self._bound[given] = (dict(params), frozen, self.budget.steps - before)
        return params, frozen

    def bind_params(self, block: ast.BlockDef, owner: LoadedModule, args, call_span: Span) -> dict[str, Any]:
        declared = {p.name: p for p in block.params}
        given: dict[str, tuple[Any, Span]] = {}
        positional = [a for a in args if a[0] is None]
        if len(positional) > len(block.params):
            raise error(TOO_MANY_ARGUMENTS, f"`{block.name}` takes {len(block.params)} parameters, got {len(positional)}",
                        positional[len(block.params)][2], notes=(Note(block.name_span, "defined here"),))
        for param, (_, value, span) in zip(block.params, positional):
            given[param.name] = (value, span)
        for name, value, span in (a for a in args if a[0] is not None):
            if name not in declared:
                raise error(UNKNOWN_ARGUMENT, f"`{block.name}` has no parameter `{name}`", span,
                            hint=suggest(name, declared), notes=(Note(block.name_span, "defined here"),))
            if name in given:
                raise error(DUPLICATE_ARGUMENT, f"parameter `{name}` is given twice", span)
            given[name] = (value, span)
        params: dict[str, Any] = {}
        # made for the first default to evaluate (most calls give every value); it sees no
        # parameters, as when it was made before the loop
        builder = None
        for p in block.params:
            if p.name in given:
                value, span = given[p.name]
            elif p.default is not None:
                builder = builder or BlockBuilder(self, owner, Graph("", block.name, {}, block.span), {})
                value, span = Evaluator(builder).eval(p.default), p.default.span
            else:
                raise error(MISSING_ARGUMENT, f"`{block.name}` needs a value for parameter `{p.name}`", call_span,
                            notes=(Note(p.span, "declared here without a default"),),
                            hint=f"pass it: `{block.name}(..., {p.name}=...)`; the parameters are "
                                 f"({', '.join(q.name for q in block.params)})")
            params[p.name] = _check_param(p, value, span)
            for number in (value if isinstance(value, list) else [value]):
                checked_number(number, self.limits, span, f"parameter `{p.name}`")  # -D skips the evaluator
        return params


def _within(d: Diagnostic, block: ast.BlockDef, params: dict[str, Any], call_span: Span) -> Diagnostic:
    """Add the instantiation site to a diagnostic raised inside a block body.  A failed
    `require` moves to the call (a layer, a model variant `model R34 = ResNet(depth=34)`):
    the arguments given there are what to change, not the block's requirement."""
    if call_span == block.name_span or (d.span.file == call_span.file and d.span.line == call_span.line):
        return d          # an entry point, or an error already at the call
    args = ", ".join(f"{k}={show(v)}" for k, v in params.items())
    if d.code == FAILED_REQUIREMENT.code:
        required = Note(d.span, f"required by `{block.name}`, with {args}")
        return replace(d, span=call_span, notes=(required, *d.notes))
    if in_stdlib(d.span) and not in_stdlib(call_span):
        # the standard library is not the line to edit: the arguments given to it are
        inside = Note(d.span, f"inside `{block.name}`, with {args}")
        return replace(d, span=call_span, notes=(inside, *d.notes))
    note = Note(call_span, f"in `{block.name}({args})`, instantiated here")
    return replace(d, notes=d.notes + (note,))


def _check_param(p: ast.Param, value: Any, span: Span) -> Any:
    t = p.type
    options = _enum_options(t)
    if options is not None:
        if value not in options:
            raise error(INVALID_CHOICE, f"parameter `{p.name}` must be one of {', '.join(map(show, options))}, "
                        f"got {show(value)}", span, hint=suggest(str(value), options))
        return value
    if t.kind == "list":
        ok = isinstance(value, list) and all(_is_kind(v, t.element or "") for v in value)
    elif t.kind in _PARAM_KINDS:
        ok = _is_kind(value, t.kind)
    else:
        raise error(UNKNOWN_TYPE, f"unknown parameter type `{t}`", t.span,
                    hint="types are int, float, bool, str, [int], an enum like {\"relu\", \"gelu\"}, or "
                         + ", ".join(NAMED_ENUMS) + " (a built-in enum)")
    if not ok:
        raise error(ARGUMENT_TYPE, f"parameter `{p.name}` expects {t}, got {kind_of(value)} {show(value)}", span,
                    hint="use // for integer division" if t.kind == "int" and isinstance(value, float) else None)
    return float(value) if t.kind == "float" else value


def _enum_options(t: ast.ParamType) -> tuple[str, ...] | None:
    """The values an enum parameter accepts: spelled out (`{"relu", "gelu"}`), or those of a
    built-in enum type the op registry owns (`activation`: every activation kind)."""
    if t.kind == "enum":
        return t.options
    named = NAMED_ENUMS.get(t.kind)
    return tuple(named) if named is not None else None


def _is_kind(value: Any, kind: str) -> bool:
    expected = _PARAM_KINDS.get(kind)
    if expected is None or (isinstance(value, bool) and kind != "bool"):
        return False
    return isinstance(value, expected)


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple((k, _freeze(v)) for k, v in value.items())
    if isinstance(value, list):
        return ("list", tuple(_freeze(v) for v in value))
    return (type(value).__name__, value)


def resolve_file(path: Path, overrides: dict[str, Any] | None = None, limits: Limits = Limits(),
                 all_blocks: bool = False, sources: dict[Path, str] | None = None
                 ) -> tuple[Program | None, list[Diagnostic]]:
    """Load, parse and resolve one spec; returns the program and any diagnostics.  `sources`
    maps resolved paths to text read instead of those files (an editor's open buffers)."""
    loader = Loader(limits, sources)
    try:
        module = loader.load(path)
    except CompileError as exc:
        return None, loader.diagnostics + exc.diagnostics
    if any(d.is_error for d in loader.diagnostics):
        return None, loader.diagnostics
    resolver = Resolver(loader, limits)
    try:
        program = resolver.resolve_module(module, overrides or {}, all_blocks)
    except CompileError as exc:
        return None, loader.diagnostics + resolver.diagnostics + exc.diagnostics
    return program, loader.diagnostics + resolver.diagnostics
