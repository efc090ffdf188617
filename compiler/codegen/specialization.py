"""One specialization's class body as guarded lines, in its definition's parameters.

Each line of `__init__` and `forward` carries the static `if` branches it was built
in (its guard), so the specializations of one definition can be merged into one
class whose Python `if`s choose between them (merge.py).  Layer arguments print as
the expressions the spec wrote; a value with no such expression prints as itself.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Callable


from compiler.ir.dims import Dim
from compiler.codegen.decoding import CACHE, KEEP, DecodingPlan, computed_once_call, computed_once_line
from compiler.codegen.expressions import Unprintable, is_literal, py_literal, same_value, to_python
from compiler.codegen.interface import OutputTuple, mask_conversions, output_tuple, return_statement, unpack_call
from compiler.codegen.lifetimes import carried_into_loops
from compiler.ir.residual import printed, residual
from compiler.codegen.init import init_rule_lines
from compiler.codegen.names import NameAllocator, layer_name_diagnostic
from compiler.codegen.scan import lower_scan
from compiler.codegen.scope import Scope
from compiler.codegen.shapes import dimension_names, shape_text
from compiler.diagnostics import CompileError, Span, error
from compiler.diagnostics.codes import BAD_REPEAT, UNBOUND_DIMENSION
from compiler.ir import Graph, Node
from compiler.ir.types import TensorType, has_star, is_star
from compiler.ir.values import CallExpr, Layer
from compiler.ops import REGISTRY, LowerContext
from compiler.syntax import ast

Guard = tuple[tuple[str, bool], ...]

# Layers whose output width is one of their attributes (per output, for those with several).
# Ops whose result has their first input's width (rotary positions turn features in place).
_SAME_WIDTH = {"Rotary"}
_WIDTHS = {"Linear": "out_features", "TransposedLinear": "out_features", "FusedLinear": "out_sizes", "Split": "sizes"}

# Columns a line of __init__ may take after its indentation (ruff's line-length is 120).
INIT_WIDTH = 104


@dataclass
class Line:
    guard: Guard
    text: str                 # may hold several physical lines
    comment: str = ""         # appended to its last physical line

    @property
    def key(self) -> tuple:
        return self.guard, self.text


@dataclass
class Rendered:
    """What one specialization contributes to its class."""

    graph: Graph
    init: list[Line]
    forward: list[Line]
    signature: list[str]
    outputs: int
    helpers: set[str] = field(default_factory=set)
    assumed: list["Use"] = field(default_factory=list)      # values the code depends on, unprinted
    # `B, S, _ = x.shape`: bindings of input dimensions, valid in any branch, so kept out of the merge
    dims: list[str] = field(default_factory=list)


class SpecializationRenderer:
    def __init__(self, graph: Graph, graphs: dict[str, Graph], scope: Scope, class_of: Callable[[str], str],
                 single_class: Callable[[str], bool], where: Callable[[Span], str]):
        self.graph = graph
        self.graphs = graphs
        self.fixed_params: Callable[[str], dict[str, Any]] = lambda cls: {}
        self.decoding = DecodingPlan()
        self.scope = scope
        self.class_of = class_of              # graph key -> final class name
        self.single_class = single_class      # whether a definition (block name) emits one class
        self.where = where
        self.helpers: set[str] = set()
        self.vars = NameAllocator()
        self.value_names: dict[tuple[str, int], str] = {}
        self.dim_names: dict[Dim, str] = {}
        self.uses_dims: set = set()
        self.uses: dict[tuple, Use] = {}
        self.dimension_names = dimension_names({**graph.lets, **graph.params})
        self.current_guard: Guard = ()
        # graph key -> the NamedTuple that configuration returns (interface.result_types)
        self.result_of: Callable[[str], OutputTuple | None] = lambda key: output_tuple(self.graphs[key].definition)
        # an aliased callee's class takes the input it was given one tensor for, optional: the slots to pass None in
        self.none_slots: Callable[[str], list[int]] = lambda key: []

    def render(self) -> Rendered:
        g = self.graph
        init = self._modules() + self._ties() + self._fused_key_hook() + init_rule_lines(self)
        signature = []
        inputs = [g.node(i) for i in g.inputs]
        takes_cache = g.key in self.decoding.takes_cache
        if takes_cache:
            self.vars.reserve(CACHE)
        keeps_logits = g.key in self.decoding.keeps_logits
        if keeps_logits:
            self.vars.reserve(KEEP)
        for node in inputs:
            name = self.vars.fresh(node.outputs[0])
            self.value_names[(node.id, 0)] = name
            signature.append(f"{name}: torch.Tensor | None = None" if node.attrs.optional else f"{name}: torch.Tensor")
        if takes_cache:         # the key/value cache of incremental decoding, updated in place
            signature.append(f'{CACHE}: "KVCache | None" = None')
            self.helpers.add("KVCache")
        if keeps_logits:        # HF's: the logits of the last N positions only (0: all of them)
            signature.append(f"{KEEP}: int = 0")
        self._dim_names()
        masks = [(self.value_names[(n.id, 0)], n.attrs.dtype, n.attrs.optional) for n in inputs
                 if not self._only_models_read(n)]
        body = [Line((), text) for text in mask_conversions(g.definition, masks)]      # the docstring says why
        body += [line for node in g.ordered() if node.kind != "input" for line in self._lower(node)]
        body = carried_into_loops(body, Line)
        outs = [self.value_names[(o.node, o.index)] for o in g.outputs]
        result = self.result_of(g.key)
        body.append(Line(g.output_guard, return_statement(result, [o.name for o in g.outputs], outs)))
        assumed = [u for u in self.uses.values() if not any(printed(v) for v in u.printed_as)]
        return Rendered(g, init, body, signature, len(outs), self.helpers, assumed, self._dim_prologue(inputs))

    # ------------------------------------------------------------------ __init__
    def _modules(self) -> list[Line]:
        lines, seen = [], set()
        for node in self.graph.ordered():
            if node.module is None or node.module in seen:
                continue
            invalid = layer_name_diagnostic(node, self.graph)
            if invalid:
                raise CompileError(invalid)
            seen.add(node.module)
            before = f"self.{node.module} = "
            lines.append(Line(node.guard, before + self._constructor(node, len(before)),
                              f"  # {self.where(node.span)}"))
        return lines

    def _constructor(self, node: Node, indent: int) -> str:
        self.current_guard = node.guard
        if node.kind == "op":
            op = REGISTRY[node.op]
            self.helpers.update(op.helpers)
            return op.init(self.init_attrs(node.call, node.attrs, node))
        if node.kind == "block":
            return self._block_constructor(node.op, node.call)
        return self._repeat_constructor(node, indent)

    def init_attrs(self, call: CallExpr | None, attrs: Any, node: Node | None = None) -> Any:
        if node is None or self.scope.bound:      # a repeat's layers: their values vary with the index
            return with_expressions(call, attrs, self.scope.init_name)
        return with_expressions(call, attrs, self.scope.init_name, self.uses, node.module or node.id, node.guard)

    def _block_constructor(self, key: str, call: CallExpr | None) -> str:
        cls = self.class_of(key)
        callee = self.graph_of(key)
        if call is None:
            return f"{cls}({', '.join(f'{k}={py_literal(v)}' for k, v in callee.params.items())})"
        head = cls
        if isinstance(call.callee, ast.Name) and call.callee.id in self.scope.locals and self.single_class(callee.block):
            head = self.scope.init_name(call.callee.id)      # a `let` that holds a block: the local that holds the class
        return f"{head}({', '.join(self._arguments(callee, call, self.fixed_params(cls)))})"

    def _arguments(self, callee: Graph, call: CallExpr, fixed: dict[str, Any]) -> list[str]:
        """A block's constructor arguments as written, less those its class fixes (a split class
        is one value of them); positional ones after a dropped one become keywords."""
        params = [p.name for p in callee.definition.params]
        out, by_keyword = [], False
        for i, arg in enumerate(call.args):
            param = arg.name or (params[i] if i < len(params) else None)
            if param in fixed:
                by_keyword = True
                if not is_literal(arg.expr) and not self.scope.bound:   # the caller insists on the value
                    self.uses.setdefault((id(call), param), Use(self.current_guard, arg.expr, arg.value))
                continue
            text = arg_text(arg, self.scope.init_name)
            out.append(f"{param}={text}" if by_keyword and not arg.name else text)
        return out

    def _only_models_read(self, node: Node) -> bool:
        """Whether an input goes only to models inside this one (GPT2LMHeadModel's mask, to
        GPT2Model): each converts its own masks on entry, so this one need not."""
        readers = [self.graph.node(target) for _, target in self.graph.g.out_edges(node.id)]
        return bool(readers) and all(r.kind == "block" and self.graphs[r.op].definition.is_model for r in readers)

    def graph_of(self, key: str) -> Graph:
        return self.graphs[key]

    def _layer_constructor(self, layer: Layer) -> str:
        if layer.kind == "block":
            return self._block_constructor(layer.target, layer.call)
        op = REGISTRY[layer.target]
        if op.init is None:
            raise error(BAD_REPEAT, f"repeat needs a layer with state; {layer.target} has none", layer.span)
        self.helpers.update(op.helpers)
        return op.init(self.init_attrs(layer.call, layer.attrs))

    def _repeat_constructor(self, node: Node, indent: int) -> str:
        layers: tuple[Layer, ...] = node.attrs
        call: CallExpr | None = node.call
        index = call.index if call else None
        classes = {self.class_of(l.target) if l.kind == "block" else l.target for l in layers}
        if call is not None and len(classes) == 1:
            var = self.scope.index_name(index) if index else "_"
            with self.scope.binding(index, var):
                try:
                    count = to_python(call.count, self.scope.init_name)
                except Unprintable:
                    count = str(len(layers))
                item = self._layer_constructor(layers[0])
            return f"nn.ModuleList([{item} for {var} in range({count})])"
        parts = []
        for i, layer in enumerate(layers):
            with self.scope.binding(index, str(i)):
                parts.append(self._layer_constructor(layer))
        return module_list(parts, INIT_WIDTH - indent)

    def _ties(self) -> list[Line]:
        return [Line(t.guard, f"{_path(t.target)} = {_path(t.source)}", f"  # tied, {self.where(t.span)}")
                for t in self.graph.ties]

    def _fused_key_hook(self) -> list[Line]:
        """Layers made by fusion still load checkpoints of the layers they replaced."""
        joins = {}
        for node in self.graph.ordered():
            op = REGISTRY.get(node.op) if node.kind == "op" else None
            if op is not None and op.joins is not None:
                # each separate layer's rows, so a checkpoint of the wrong sizes is refused as unfused
                rows = self.init_attrs(node.call, node.attrs, node).out_sizes
                joins[node.module] = (node.guard, tuple(zip(op.joins(node.attrs), rows)))
        lines = []
        for module, (guard, sources) in joins.items():
            self.helpers.add("join_fused_keys")
            pairs = [f"({_py_str(s)}, {n})" for s, n in sources]
            entry = f"{_py_str(module)}: ({', '.join(pairs)}{',' if len(pairs) == 1 else ''})"
            lines.append(Line(guard, f"self.register_load_state_dict_pre_hook(join_fused_keys({{{entry}}}))",
                              "  # checkpoints keep the separate layers"))
            lines.append(Line(guard, f"self.{module}.fused_from = ({', '.join(pairs)}{',' if len(pairs) == 1 else ''})",
                              "  # init_weights() initializes each part as its own layer"))
        return lines

    # ------------------------------------------------------------------ forward
    def _lower(self, node: Node) -> list[Line]:
        g = self.graph
        operands = g.operands(node.id)
        args = [self.value_names[operands[s]] if s in operands else None for s in range(max(operands, default=-1) + 1)]
        in_types = [g.output_type(*operands[s]) if s in operands else None for s in range(len(args))]
        outs = [self._result_name(node, i) for i in range(len(node.outputs))]
        for i, name in enumerate(outs):
            self.value_names[(node.id, i)] = name
        comment = "  # " + ", ".join(shape_text(t, self.dimension_names) for t in node.types) if node.types else ""
        if node.kind == "block" and node.scan is not None:
            texts = lower_scan(self, node, args, outs)
        elif node.kind == "block":
            callee = self.graph_of(node.op)
            texts = ["\n".join(unpack_call(self.result_of(node.op), [o.name for o in callee.outputs], outs,
                                           self._block_call(node, f"self.{node.module}", args, outs[0]),
                                           self.vars.fresh))]
        elif node.kind == "repeat":
            texts = self._lower_repeat(node, args, in_types, outs)
        else:
            # A layer applied twice is one submodule: its constructor printed the values for both uses.
            attrs = with_expressions(node.call, node.attrs, self.scope.forward_name, self.uses, node.module or node.id,
                                     node.guard)
            ctx = LowerContext(self.decoding.kept_logits(g, node, args), outs,
                               f"self.{node.module}" if node.module else None, in_types,
                               list(node.types or ()), self.dim_names, self.vars.fresh,
                               features=[self._width(operands[s]) if s in operands else None for s in range(len(args))],
                               cache=CACHE if g.key in self.decoding.takes_cache else None,
                               past=self.decoding.past_positions(g, node),
                               positions=self.decoding.decoded_positions(g, node))
            texts = self._computed_once_layer(node, REGISTRY[node.op].lower(attrs, ctx), outs)
            self.helpers.update(REGISTRY[node.op].helpers)
            self.uses_dims |= ctx.uses_dims
        lines = [Line(node.guard, text) for text in texts]
        lines[-1].comment = comment
        return lines

    def _width(self, value: tuple[str, int]) -> Any:
        """The last dimension of a value in the parameters' terms, when a linear layer or a split
        made it (the width the spec wrote for it); None otherwise."""
        producer, index = value
        node = self.graph.node(producer)
        if node.kind == "op" and node.op in _SAME_WIDTH:
            operand = self.graph.operands(producer).get(0)
            return self._width(operand) if operand else None
        if node.kind != "op" or node.op not in _WIDTHS:
            return None
        attrs = with_expressions(node.call, node.attrs, self.scope.forward_name)
        width = getattr(attrs, _WIDTHS[node.op])
        return width[index] if isinstance(width, tuple) else width

    def _result_name(self, node: Node, index: int) -> str:
        """A fresh variable for a node's result; `_` for an unused one among several."""
        g = self.graph
        used = any(data["index"] == index for _, _, data in g.g.out_edges(node.id, data=True)) or any(
            (o.node, o.index) == (node.id, index) for o in g.outputs)
        if len(node.outputs) > 1 and node.kind != "repeat" and node.scan is None and not used:
            return "_"
        return self.vars.fresh(node.outputs[index])

    def _lower_repeat(self, node: Node, args, in_types, outs) -> list[str]:
        layer = self.vars.fresh("layer")
        carried = outs[0]
        head = [] if args[0] == carried else [f"{carried} = {args[0]}"]
        first: Layer = node.attrs[0]
        if first.kind == "block":
            step = f"{', '.join(outs)} = {self._block_call(node, layer, [carried, *args[1:]], carried)}"
        else:
            attrs = with_expressions(first.call, first.attrs, self.scope.forward_name)
            ctx = LowerContext([carried, *args[1:]], outs, layer, in_types, list(node.types or ()),
                               self.dim_names, self.vars.fresh)
            step = "\n    ".join(REGISTRY[first.target].lower(attrs, ctx))
        return head + [f"for {layer} in self.{node.module}:\n    {step}"]

    def _block_call(self, node: Node, module: str, args: list[str | None], name: str) -> str:
        """`module(args)`; through the cache, once per generate(), where it computes a value of
        an encoder-decoder's source side (codegen/source_side.py)."""
        if self.decoding.computed_once(self.graph, node):
            self.helpers.add("computed_once")
            return computed_once_call(module, call_args(self._with_none_slots(node, args)), _py_str(name))
        return f"{module}({self.call_args(node, args)})"

    def _computed_once_layer(self, node: Node, texts: list[str], outs: list[str]) -> list[str]:
        """A layer's call, through the cache where its value is fixed while decoding (a
        cross-attention's key and value projections of the encoder output)."""
        line = computed_once_line(texts, outs, f"self.{node.module}", _py_str(outs[0])) \
            if node.module and self.decoding.computed_once(self.graph, node) else None
        self.helpers.update({"computed_once"} if line else ())
        return [line] if line else texts

    def _with_none_slots(self, node: Node, args: list[str | None]) -> list[str | None]:
        """The arguments with None for the inputs the callee's class takes optional because this
        call gives their tensor to an earlier input (merge.merged_over_aliases)."""
        callee = node.op if node.kind == "block" else node.attrs[0].target
        for slot in self.none_slots(callee):
            args = [*args[:slot], None, *args[slot:]]
        return args

    def call_args(self, node: Node, args: list[str | None]) -> str:
        """A block call's arguments, and the key/value cache where the callee decodes with one."""
        text = call_args(self._with_none_slots(node, args))
        callees = [node.op] if node.kind == "block" else [l.target for l in node.attrs if l.kind == "block"]
        if callees and all(self.decoding.passes_cache(self.graph, key) for key in callees):
            text += f", {CACHE}={CACHE}"
        return text

    def _dim_names(self) -> None:
        """Symbols get their spec names as Python variables where free."""
        for node_id in self.graph.inputs:
            for d in self.graph.node(node_id).attrs.shape:
                for sym in getattr(d, "symbols", ()):
                    if sym not in self.dim_names and not is_star(sym):   # `*` is no one Python value
                        self.dim_names[sym] = self.vars.fresh(str(sym))

    def _dim_prologue(self, inputs: list[Node]) -> list[str]:
        """Bind the symbolic dimensions the body uses: `B, S, _ = x.shape`."""
        needed = set(self.uses_dims)
        lines = []
        for node in inputs:
            t: TensorType = node.attrs
            if t.optional or not needed:
                continue
            if has_star(t.shape):     # rank-polymorphic: its trailing dimensions, counted from the end
                for i, d in enumerate(t.shape):
                    if d.is_symbol and d in needed and not is_star(d):
                        lines.append(f"{self.dim_names[d]} = {self.value_names[(node.id, 0)]}.shape[{i - t.rank}]")
                        needed.discard(d)
                continue
            names = []
            for d in t.shape:
                if d.is_symbol and d in needed:
                    names.append(self.dim_names[d])
                    needed.discard(d)
                else:
                    names.append("_")
            if any(n != "_" for n in names):
                lines.append(f"{', '.join(names)}{',' if len(names) == 1 else ''} = {self.value_names[(node.id, 0)]}.shape")
        if needed:
            raise error(UNBOUND_DIMENSION, f"dimension {', '.join(sorted(map(str, needed)))} is not given by any required input",
                        self.graph.span)
        return lines


@dataclass
class Use:
    """A layer attribute computed from the parameters: printed as its expression somewhere, or
    else its value shaped the code, and the constructor must insist on it."""

    guard: Guard
    expr: ast.Expr
    value: Any
    printed_as: list = field(default_factory=list)


def with_expressions(call: CallExpr | None, attrs: Any, name: Callable[..., str],
                     uses: dict[tuple, Use] | None = None, node_key: Any = None, guard: Guard = ()) -> Any:
    """`attrs` whose numbers and flags print as the expressions the spec computed them by.  An
    attribute a pass has changed since (its value differs from the recorded one) prints as its value.
    `uses` collects, per (node_key, field), the values and what printed them."""
    if call is None or not call.fields or attrs is None:
        return attrs
    update = {}
    for field_name, arg in call.fields:
        current = getattr(attrs, field_name, None)
        if is_literal(arg.expr) or not same_value(current, arg.value):
            continue
        if isinstance(current, tuple) and isinstance(arg.expr, ast.ListLit) and len(arg.expr.items) == len(current):
            items = [(f"{field_name}[{i}]", v, e) for i, (v, e) in enumerate(zip(current, arg.expr.items))]
        else:
            items = [(field_name, current, arg.expr)]
        made = []
        for key, value, expr in items:
            if is_literal(expr):
                made.append(value)
                continue
            use = uses.setdefault((node_key, key), Use(guard, expr, value)) if uses is not None else None
            try:
                made.append(_printed(value, expr, name))
            except Unprintable:          # a dimension of the inputs, or a loop variable: stays a value
                made.append(value)
                continue
            if use is not None:
                use.printed_as.append(made[-1])
        update[field_name] = tuple(made) if len(items) > 1 or isinstance(current, tuple) else made[0]
    return attrs.model_copy(update=update) if update else attrs


def _printed(value: Any, expr: ast.Expr, name: Callable[..., str]) -> Any:
    """`value` printing as `expr`; the names are looked up (an attribute allocated) only when it is
    printed, but whether they can be is checked now."""
    to_python(expr, lambda n: name(n, False))
    return residual(value, lambda: to_python(expr, name), str(expr))


def arg_text(arg, name: Callable[[str], str]) -> str:
    """One argument of a block constructor call: as the spec wrote it, else its value."""
    try:
        text = to_python(arg.expr, name)
    except Unprintable:
        text = py_literal(arg.value)
    return f"{arg.name}={text}" if arg.name else text


def module_list(parts: list[str], width: int) -> str:
    """`nn.ModuleList` of the layers' constructors.  A run of three or more equal ones is a
    comprehension; the items go one per line when one line would be wider than `width`."""
    runs = [(part, len(list(group))) for part, group in itertools.groupby(parts)]
    if len(runs) == 1:
        return f"nn.ModuleList([{parts[0]} for _ in range({len(parts)})])"
    items: list[str] = []
    for part, count in runs:
        items += [f"*[{part} for _ in range({count})]"] if count > 2 else [part] * count
    one_line = f"nn.ModuleList([{', '.join(items)}])"
    if len(one_line) <= width:
        return one_line
    return "nn.ModuleList([\n" + "".join(f"    {item},\n" for item in items) + "])"


def _py_str(text: str) -> str:
    """A Python string literal for text the resolver has already restricted to [\\w.{}]."""
    assert all(c.isalnum() or c in "_.{}" for c in text), text
    return '"' + text + '"'


def _path(parts: tuple[str, ...]) -> str:
    text = "self"
    for p in parts:
        text += f"[{p}]" if p.isdigit() else f".{p}"
    return text


def call_args(args: list[str | None]) -> str:
    while args and args[-1] is None:
        args = args[:-1]
    return ", ".join(a if a is not None else "None" for a in args)
