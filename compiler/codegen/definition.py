"""One block definition -> its class (or, where the passes made different code, its
classes): the constructor takes the block's parameters, checks its `require`s,
computes its `let`s, and builds the layers every specialization the spec uses
needs, under Python `if`s where the specializations differ."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from compiler.codegen.decoding import DecodingPlan, plan_decoding
from compiler.codegen.expressions import Unprintable, names_in, py_literal, to_python
from compiler.codegen.epilogues import donation_lines, epilogue_lines
from compiler.codegen.merge import (ALIASED, Variant, aliased_slots, hoist_equal_branches, partition, render, simplify,
                                    used_conditions, variant_names)
from compiler.codegen.init import layer_ops_lines, tie_weights_method, tied_weights_lines
from compiler.codegen.interface import OutputTuple, result_types
from compiler.codegen.lifetimes import with_releases
from compiler.codegen.prologue import negation, prologue, static_renames
from compiler.codegen.scope import Scope
from compiler.codegen.specialization import Line, Rendered, SpecializationRenderer, Use
from compiler.diagnostics import Span
from compiler.ir import Graph, Program
from compiler.ir.values import show
from compiler.syntax import ast

_TYPES = {"int": "int", "float": "float", "bool": "bool", "str": "str", "enum": "str", "activation": "str"}


@dataclass
class ClassModel:
    name: str
    bases: str
    doc: list[str]
    init_def: list[str]
    init_lines: list[str]
    signature: str = ""
    returns: str = ""
    forward_lines: list[str] = field(default_factory=list)
    class_lines: list[str] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)


@dataclass
class Context:
    """What every definition of one file shares."""

    program: Program
    where: Callable[[Span], str]
    class_of: dict[str, str] = field(default_factory=dict)          # graph key -> class name
    block_classes: dict[str, str] = field(default_factory=dict)     # block name -> its one class
    helpers: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)                  # for --explain
    fixed: dict[str, dict[str, Any]] = field(default_factory=dict)  # split class -> the values it is for
    decoding: DecodingPlan = field(default_factory=DecodingPlan)     # which classes take a KV cache
    results: dict[str, OutputTuple] = field(default_factory=dict)   # graph key -> its named result
    none_slots: dict[str, list[int]] = field(default_factory=dict)  # aliased graph -> inputs its callers leave None

    def __post_init__(self) -> None:
        self.decoding = plan_decoding(self.program, _definition_key)
        self.results = result_types(self.program)


class DefinitionBuilder:
    def __init__(self, ctx: Context, keys: list[str]):
        self.ctx = ctx
        self.keys = keys
        self.graphs = [ctx.program.graphs[k] for k in keys]
        self.block: ast.BlockDef = self.graphs[0].definition
        modules = {n.module for g in self.graphs for n in g.ordered() if n.module}
        self.scope = Scope(self.block, ctx.block_classes, modules)

    def build(self) -> list[tuple[ClassModel, Variant]]:
        rendered = [self._render(g) for g in self.graphs]
        variants, chosen = partition(rendered)
        names = variant_names(self.block.name, variants, chosen)
        differs = ", ".join(p if p in self.graphs[0].params else "inputs given one tensor" for p in chosen)
        chosen = [p for p in chosen if p in self.graphs[0].params]
        for name, variant in zip(names, variants):
            for member in variant.members:
                self.ctx.class_of[member.graph.key] = name
                if variant.aliased and member.graph.aliases:
                    self.ctx.none_slots[member.graph.key] = aliased_slots(variant.members[0].graph, variant.aliased)
            self.ctx.fixed[name] = {p: variant.members[0].graph.params[p] for p in chosen}
        if len(variants) == 1:
            self.ctx.block_classes[self.block.name] = names[0]
        else:
            self.ctx.notes.append(f"{self.block.name} ({self.ctx.where(self.block.span)}) is {len(variants)} classes, "
                                  f"{', '.join(names)}: the passes made different code for different "
                                  f"{differs or 'parameters'}")
        return [(self._class(name, variant, chosen), variant) for name, variant in zip(names, variants)]

    def _render(self, graph: Graph) -> Rendered:
        renderer = SpecializationRenderer(graph, self.ctx.program.graphs, self.scope, self.ctx.class_of.__getitem__,
                                          lambda block: block in self.ctx.block_classes, self.ctx.where)
        renderer.fixed_params = lambda cls: self.ctx.fixed.get(cls, {})
        renderer.decoding = self.ctx.decoding
        renderer.result_of = self.ctx.results.get
        renderer.none_slots = lambda key: self.ctx.none_slots.get(key, [])
        rendered = renderer.render()
        self.ctx.helpers |= rendered.helpers
        return rendered

    # ------------------------------------------------------------------ the class
    def _class(self, name: str, variant: Variant, chosen: list[str]) -> ClassModel:
        constant = variant.constant_branches()
        dims = list(dict.fromkeys(line for m in variant.members for line in m.dims))
        inputs = {entry.split(":")[0] for entry in variant.signature}
        merged = with_releases(hoist_equal_branches(simplify(variant.forward, constant)), Line, inputs)
        forward = dims + render(merged, self._condition(self.scope.forward_name, variant.aliased))
        ties = self._tie_lines(variant, constant)      # before the attributes: its conditions may read some
        renames = static_renames(self.block, self.scope)
        fixed = self.ctx.fixed.get(name, {})
        lines = prologue(self.block, self.scope, self.ctx.where, computed_renames=renames is None
                          and _has_renames(self.block))
        lines += self._branch_checks(name, variant, constant) + self._value_checks(name, variant, constant, fixed)
        lines += [f"self.{attr} = {self.scope.locals[n]}" for n, attr in self.scope.attributes.items()]
        # the `tie`s are tie_weights()'s, which init_weights() calls: __init__ does not repeat them
        built = [line for line in variant.init if not _is_tie(line)]
        lines += render(hoist_equal_branches(simplify(built, constant)), self._condition(self.scope.init_name))
        lines = self._fixed_locals(name, fixed, lines) + _without_unused_lets(lines, set(self.scope.locals.values()))
        outputs = {m.outputs for m in variant.members}
        model = ClassModel(name, "nn.Module", self._doc(variant), self._init_def(fixed),
                           ["super().__init__()", *lines, *self._init_call(variant, ties)],
                           ", ".join(["self", *variant.signature]), _returns(outputs, self._results(variant)), forward)
        model.class_lines += layer_ops_lines([m.graph for m in variant.members], lines)
        if ties:
            tied = tied_weights_lines(ties)
            model.class_lines += tied
            model.methods += [] if tied else [tie_weights_method(ties)]
        if renames:
            where = self.ctx.where(self.block.span)
            shapes = {(r.source, r.target): r.shape for m in variant.members for r in m.graph.renames}
            entries = [f'("{s}", "{t}"{_shape_entry(shapes.get((s, t)))})' for s, t in renames]
            one = f"REFERENCE_RENAMES = ({', '.join(entries)},)"       # on one line where it fits, as LAYER_OPS
            model.class_lines += [f"# Reference checkpoint key prefixes -> this module's names ({where}).",
                                  *([one] if len(one) <= 112 else
                                    ["REFERENCE_RENAMES = (", *(f"    {e}," for e in entries), ")"])]
        folds = list(dict.fromkeys(pair for m in variant.members for pair in m.graph.conv_bn_folds))
        if folds:
            model.class_lines += ["# Batch norms that optimize_for_inference() folds into the convolution before them.",
                                  "CONV_BN_FOLDS = (", *(f'    ("{c}", "{n}"),' for c, n in folds), ")"]
        model.class_lines += epilogue_lines([m.graph for m in variant.members])
        model.class_lines += donation_lines([m.graph for m in variant.members])
        return model

    def _results(self, variant: Variant) -> list[OutputTuple]:
        found = [self.ctx.results.get(m.graph.key) for m in variant.members]
        return list({r.name: r for r in found if r is not None}.values())

    def _init_call(self, variant: Variant, ties: list[str]) -> list[str]:
        """`self.init_weights()` where it does more than the layers' constructors did: in a model (a
        block inside one is initialized by the model's call), and in a block with its own `init`
        rules or `tie`s, so that one built on its own is initialized as the spec says."""
        own_rules = any(line.text.startswith("self.init_rules") for line in variant.init)
        return ["self.init_weights()"] if self.block.is_model or own_rules or ties else []

    def _tie_lines(self, variant: Variant, constant: dict[str, bool]) -> list[str]:
        """The `tie`s, for tie_weights(): conditions read the parameters kept as attributes."""
        ties = [line for line in variant.init if _is_tie(line)]
        return render(hoist_equal_branches(simplify(ties, constant)), self._condition(self.scope.forward_name))

    def _fixed_locals(self, name: str, fixed: dict[str, Any], lines: list[str]) -> list[str]:
        """The values a split class is for, as the locals the rest of __init__ reads (if it does)."""
        found = []
        for p, v in fixed.items():
            local = self.scope.locals[p]
            if any(re.search(rf"\b{local}\b", line) for line in lines):
                found.append(f"{local} = {py_literal(v)}  # {name} is {self.block.name} for this value")
        return found

    def _condition(self, name: Callable[[str], str], aliased: list[str] = ()) -> Callable[[str, bool], str]:
        def condition(key: str, value: bool) -> str:
            if key == ALIASED:      # the caller passed one tensor for both inputs (merge.merged_over_aliases)
                return " and ".join(f"{n} is None" for n in aliased) if value else \
                    " or ".join(f"{n} is not None" for n in aliased)
            cond = self._if(key).cond
            return to_python(cond if value else negation(cond), name)
        return condition

    def _if(self, key: str) -> ast.If:
        return next(g.conditions[key] for g in self.graphs if key in g.conditions)

    def _branch_checks(self, name: str, variant: Variant, constant: dict[str, bool]) -> list[str]:
        """A static `if` whose other branch no compiled configuration takes: its layers were never
        built or checked, so the constructor refuses the parameters that would take it."""
        checks: list[Line] = []
        for key in used_conditions(variant.init + variant.forward):
            if key not in constant or not (names_in(self._if(key).cond) & set(self.scope.locals)):
                continue
            cond = self._if(key).cond
            outer = next(line.guard[:line.guard.index((key, constant[key]))]
                         for line in variant.init + variant.forward if (key, constant[key]) in line.guard)
            outer = tuple(g for g in outer if g[0] not in constant)
            message = (f"`{cond}` is {show(constant[key])} in every configuration of {name} compiled "
                       f"({self.ctx.where(cond.span)}); compile one where it is not, to build this one")
            test = to_python(negation(cond) if constant[key] else cond, self.scope.init_name)
            checks.append(Line(outer, f"if {test}:\n    raise ValueError({message!r})"))
        return render(checks, self._condition(self.scope.init_name))

    def _value_checks(self, name: str, variant: Variant, constant: dict[str, bool], fixed: dict[str, Any]) -> list[str]:
        """Layer arguments computed from the parameters that shaped the code without being printed
        (an activation's name, a causal flag): the class was built for that value only."""
        found: dict[tuple, list[Use]] = {}
        for member in variant.members:
            for use in member.assumed:      # the same value in the same branch: one line of code
                found.setdefault((str(use.expr), use.guard), []).append(use)
        checks = []
        for (text, _), uses in found.items():
            if text in fixed or len({_hashable(u.value) for u in uses}) != 1:
                continue        # the code is the same for each of its values: it does not depend on them
            use = uses[0]
            try:
                span = use.expr.span
                wrong = (ast.Not(span, use.expr) if use.value else use.expr) if isinstance(use.value, bool) \
                    else ast.Compare(span, "!=", use.expr, _literal_expr(span, use.value))
                test = to_python(wrong, self.scope.init_name)
            except (Unprintable, TypeError):
                continue
            message = (f"{name} was compiled for {text} = {show(use.value)} only ({self.ctx.where(use.expr.span)}); "
                       "compile a configuration with another value to build it")
            guard = tuple(g for g in use.guard if g[0] not in constant)
            checks.append(Line(guard, f"if {test}:\n    raise ValueError({message!r})"))
        return render(checks, self._condition(self.scope.init_name))

    def _init_def(self, fixed: dict[str, Any]) -> list[str]:
        params = ["self"] + [self._param(p) for p in self.block.params if p.name not in fixed]
        return wrap_def("def __init__(", params, ") -> None:")

    def _param(self, p: ast.Param) -> str:
        annotation = f"list[{_TYPES.get(p.type.element or '', 'int')}]" if p.type.kind == "list" else _TYPES.get(p.type.kind, "int")
        default = self._default(p)
        return f"{self.scope.params[p.name]}: {annotation}" + (f" = {default}" if default is not None else "")

    def _default(self, p: ast.Param) -> str | None:
        """A model's defaults are the configuration compiled (the spec's, or its -D overrides)."""
        entry = self._entry_graph()
        if entry is not None and p.name in entry.params:
            return py_literal(entry.params[p.name])
        if p.default is None:
            return None
        try:
            return to_python(p.default, _no_names)
        except Unprintable:
            return None

    def _entry_graph(self) -> Graph | None:
        if not self.block.is_model:
            return None
        for public, key in self.ctx.program.models:
            if public == self.block.name:
                return self.ctx.program.graphs[key]
        return None

    def _doc(self, variant: Variant) -> list[str]:
        b = self.block
        lines = [f"{b.name}, from {self.ctx.where(b.span)}.", ""]
        aliased = {name: source for name, source in variant.members[0].graph.aliases}
        given_one = {name: source for m in variant.members for name, source in m.graph.aliases} \
            if variant.aliased else {}
        for s in b.body:
            if isinstance(s, ast.Input) and s.name in given_one:
                lines.append(f"{s.name}: {s.type} optional (None: the same tensor as {given_one[s.name]})")
            elif isinstance(s, ast.Input) and s.name in aliased:
                lines.append(f"({s.name} is the same tensor as {aliased[s.name]}: this class takes {aliased[s.name]} only)")
            elif isinstance(s, ast.Input):
                takes = " (or int or float 0/1, as HF's masks)" if b.is_model and s.type.dtype == "bool" else ""
                lines.append(f"{s.name}: {s.type}" + (" optional" if s.optional else "") + takes)
        outs = list(dict.fromkeys(o.name for m in variant.members for o in m.graph.outputs))
        declared = {s.name: s.type for s in _outputs(b.body) if s.type is not None}
        optional = {o.name for m in variant.members for o in m.graph.outputs
                    if getattr(m.graph.output_type(o.node, o.index), "optional", False)}
        lines += [(f"-> {o}: {declared[o]}" if o in declared else f"-> {o}") + (" optional" if o in optional else "")
                  for o in outs]
        return lines


def _is_tie(line: Line) -> bool:
    return line.comment.startswith("  # tied,")


def _shape_entry(shape: tuple[int, ...] | None) -> str:
    """The third entry of a REFERENCE_RENAMES rule that reshapes on load: `, (1, 1, 768)`."""
    return "" if shape is None else ", (" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _without_unused_lets(lines: list[str], locals_: set[str]) -> list[str]:
    """Drop a top-level `let` nothing else reads (one only the shape declarations used)."""
    kept = list(lines)
    for line in lines:
        match = re.match(r"(\w+) = ", line)
        if match and match.group(1) in locals_:
            pattern = re.compile(rf"\b{match.group(1)}\b")
            if not any(pattern.search(other) for other in kept if other is not line):
                kept.remove(line)
    return kept


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _literal_expr(span: Span, value: Any) -> ast.Expr:
    """A compile-time value as a spec literal."""
    if isinstance(value, bool):
        return ast.Bool(span, value)
    if isinstance(value, int):
        return ast.Int(span, value)
    if isinstance(value, float):
        return ast.Float(span, value)
    if isinstance(value, str):
        return ast.Str(span, value)
    if value is None:
        return ast.NoneLit(span)
    if isinstance(value, (list, tuple)):
        return ast.ListLit(span, tuple(_literal_expr(span, v) for v in value))
    raise TypeError(type(value).__name__)


def wrap_def(head: str, params: list[str], tail: str, width: int = 116) -> list[str]:
    """A def line, its parameters wrapped under the opening parenthesis when it is too long."""
    one = head + ", ".join(params) + tail
    if len(one) <= width:
        return [one]
    items = [p + "," for p in params[:-1]] + [params[-1] + tail]
    lines, current = [], head
    for item in items:
        if current.strip() and len(current) + 1 + len(item) > width and current != head:
            lines.append(current)
            current = " " * len(head) + item
        else:
            current += ("" if current == head else " ") + item
    return lines + [current]


def _no_names(name: str) -> str:
    raise Unprintable(name)


def _returns(outputs: set[int], results: list[OutputTuple]) -> str:
    if results:
        return " | ".join(r.name for r in results)
    kinds = ["torch.Tensor" if n == 1 else f"tuple[{', '.join(['torch.Tensor'] * n)}]" for n in sorted(outputs)]
    return " | ".join(kinds)


def _has_renames(block: ast.BlockDef) -> bool:
    def walk(stmts) -> bool:
        return any(isinstance(s, ast.Rename) or (isinstance(s, ast.If) and (walk(s.then) or walk(s.orelse)))
                   or (isinstance(s, ast.For) and walk(s.body)) for s in stmts)
    return walk(block.body)


def _outputs(stmts) -> list[ast.Output]:
    found = []
    for s in stmts:
        if isinstance(s, ast.Output):
            found.append(s)
        elif isinstance(s, ast.If):
            found += _outputs(s.then) + _outputs(s.orelse)
    return found


def alias_class(public: str, base: str, block: ast.BlockDef, args: tuple, graph: Graph,
                where: str, scope_params: dict[str, str], base_fixes: dict[str, Any]) -> ClassModel:
    """`model ResNet18 = ResNet(depth=18)`: a subclass that fixes those parameters (less those
    its base class, a split, fixes itself)."""
    fixed: dict[str, str] = {}
    for param, arg in zip(block.params, [a for a in args if a.name is None]):
        fixed[param.name] = to_python(arg.value, _no_names)
    fixed.update({a.name: to_python(a.value, _no_names) for a in args if a.name is not None})
    open_params = [p for p in block.params if p.name not in fixed and p.name not in base_fixes]
    fixed = {p: v for p, v in fixed.items() if p not in base_fixes}
    params = ["self"] + [f"{scope_params[p.name]}: {_annotation(p)} = {py_literal(graph.params[p.name])}"
                         for p in open_params]
    passed = [f"{p}={v}" for p, v in fixed.items()] + [f"{scope_params[p.name]}={scope_params[p.name]}"
                                                       for p in open_params]
    written = ", ".join(str(a) for a in args)
    doc = [f"{block.name}({written}), from {where}."]
    return ClassModel(public, base, doc, wrap_def("def __init__(", params, ") -> None:"),
                      wrap_def("super().__init__(", passed, ")"))


def _annotation(p: ast.Param) -> str:
    if p.type.kind == "list":
        return f"list[{_TYPES.get(p.type.element or '', 'int')}]"
    return _TYPES.get(p.type.kind, "int")


def definition_order(program: Program) -> list[list[str]]:
    """Graph keys grouped by block definition, callees' definitions first."""
    groups: dict[Any, list[str]] = {}
    for key, graph in program.graphs.items():
        groups.setdefault(_definition_key(graph), []).append(key)
    depends: dict[Any, set] = {d: set() for d in groups}
    for d, keys in groups.items():
        for key in keys:
            for node in program.graphs[key].ordered():
                for callee in _callee_keys(node):
                    depends[d].add(_definition_key(program.graphs[callee]))
    order: list[Any] = []

    def visit(d: Any) -> None:
        if d in order:
            return
        for dep in sorted(depends[d] - {d}, key=list(groups).index):
            visit(dep)
        order.append(d)

    for d in groups:
        visit(d)
    return [groups[d] for d in order]


def _definition_key(graph: Graph) -> tuple:
    """A block definition, the same in every parse of its file."""
    return graph.block, graph.span.file, graph.span.line, graph.span.col


def _callee_keys(node) -> list[str]:
    if node.kind == "block":
        return [node.op]
    if node.kind == "repeat":
        return [layer.target for layer in node.attrs if layer.kind == "block"]
    return []
