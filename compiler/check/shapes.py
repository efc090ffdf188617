"""Shape and dtype inference over the IR.

Each block specialization is checked once, in terms of the symbols its inputs
declare (`[B, S, d_model]`).  A call site binds those symbols to the caller's
dimensions, checks the rest, and substitutes them into the callee's outputs.
Errors point at the spec line of the op that failed, with notes saying where
each offending input came from; a failed node's dependants are skipped
silently, so one mistake gives one diagnostic.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any


from compiler.ir.dims import Dim
from compiler.diagnostics import Diagnostic, Note, Severity, Span
from compiler.elaborate.loader import in_stdlib
from compiler.ir import Graph, Node, Program
from compiler.syntax.ast import Input, Name
from compiler.ir.graph import evolve
from compiler.ir.types import TensorType, dim_str, dims_equal, has_star, is_float, is_int, shapes_equal, substitute, symbol
from compiler.check.scan import ScanInference
from compiler.check.blame import (
    broadcast_culprit,
    consumer_culprit,
    declare_hint,
    declared_parameter,
    flatten_note,
    input_declaration,
    noop_transpose,
    propose_fix,
    repeat_hint,
    swapped_block_arguments,
)
from compiler.ops import REGISTRY, ShapeError
from compiler.diagnostics.codes import (
    DTYPE_MISMATCH,
    INTERNAL_ERROR,
    OPTIONAL_INPUT,
    SHAPE_MISMATCH,
    UNUSED_INPUT,
    UNUSED_RESULT,
)


# op name -> whether one of its input ports is variadic (the registry is fixed once built)
_VARIADIC: dict[str, bool] = {}


class _Failed(Exception):
    """A node could not be typed; dependants are skipped."""


def infer_program(program: Program) -> list[Diagnostic]:
    found = [(graph.key, _GraphInference(graph, program).run()) for graph in program.graphs.values()]  # callees first
    if not any(d.is_error for _, diagnostics in found for d in diagnostics):
        return [d for _, diagnostics in found for d in diagnostics]     # only errors name their instance
    instances = instance_paths(program)      # the graphs' structure, which typing leaves as it was
    return [_with_instance(d, instances.get(key)) for key, diagnostics in found for d in diagnostics]


def instance_paths(program: Program) -> dict[str, tuple[str, Span, Span | None, int]]:
    """For each graph, where the entry points first use it (`encoder.layers[3].attn`, the call
    site, and the innermost call outside the standard library: the line a user edits, in model
    order) and how many instances of it there are.  A block is checked once per
    specialization, so an error inside it is an error in every instance.  Each graph is walked
    once: blocks that use the next one twice have 2**depth instances, not 2**depth walks."""
    first: dict[str, tuple[str, Span, Span | None]] = {}
    uses: dict[str, list[tuple[str, int]]] = {}      # graph -> (caller, how many times) in model order

    def visit(key: str, path: str, user: Span | None) -> None:   # depth-first, in model order; each graph once
        for callee, sub, span in _block_uses(program.graphs[key], path):
            uses.setdefault(callee, []).append((key, 1))
            if callee not in first:
                here = user if in_stdlib(span) else span
                first[callee] = (sub, span, here)
                visit(callee, sub, here)

    for public, key in program.models:
        visit(key, public, None)
    counts: dict[str, int] = {key: 1 for _, key in program.models}
    for key in reversed(list(program.graphs)):   # graphs list callees first: callers are counted first
        if key in uses:
            counts[key] = sum(counts.get(caller, 0) * n for caller, n in uses[key])
    return {key: (path, span, user, counts.get(key, 1)) for key, (path, span, user) in first.items()}


def _block_uses(graph: Graph, path: str) -> list[tuple[str, str, Span]]:
    """(callee graph, instance path, call site) for each block instance directly in `graph`."""
    found = []
    for node in graph.ordered():
        if node.kind == "block":
            found.append((node.op, f"{path}.{node.module}", node.span))
        elif node.kind == "repeat":
            found += [(layer.target, f"{path}.{node.module}[{i}]", node.span)
                      for i, layer in enumerate(node.attrs) if layer.kind == "block"]
    return found


def _with_instance(d: Diagnostic, instance: tuple[str, Span, Span | None, int] | None) -> Diagnostic:
    if instance is None or not d.is_error:
        return d
    path, span, user, count = instance
    more = f" (and {count - 1} other instance{'s' if count > 2 else ''})" if count > 1 else ""
    note = Note(span, f"in instance `{path}`{more}")
    if in_stdlib(d.span) and user is not None:
        # the standard library is not the line to edit: the arguments the user gave it are
        return replace(d, span=user, notes=(Note(d.span, "inside the library block, here"), *d.notes, note))
    return replace(d, notes=d.notes + (note,))


class _GraphInference(ScanInference):
    def __init__(self, graph: Graph, program: Program):
        self.graph = graph
        self.program = program
        self.diags: list[Diagnostic] = []

    def run(self) -> list[Diagnostic]:
        for node in self.graph.ordered():
            ins = self._input_types(node)
            if ins is None:
                continue
            try:        # an op is typed without _infer's dispatch: most nodes are ops
                types = tuple(self._infer_op(node, node.op, node.attrs, ins) if node.kind == "op"
                              else self._infer(node, ins))
            except _Failed:
                continue
            self.graph.replace_node(evolve(node, types=types))
        self._check_outputs()
        if not any(d.is_error for d in self.diags):
            self._warn_unused()
        return self.diags

    def _input_types(self, node: Node) -> list[TensorType | None] | None:
        # what Graph.operands gives, read from the predecessor map without building its dict
        g = self.graph.g
        nodes = g.node_data
        ins: list[TensorType | None] = []
        for src, edges in g.pred[node.id].items():
            types = nodes[src]["node"].types
            if types is None:
                return None          # an upstream node failed; already reported
            for slot, data in edges.items():
                if slot == len(ins):             # the common case: slots in order
                    ins.append(types[data["index"]])
                    continue
                if slot > len(ins):
                    ins += [None] * (slot + 1 - len(ins))
                ins[slot] = types[data["index"]]
        return ins

    def _infer(self, node: Node, ins: list[TensorType | None]) -> list[TensorType]:
        if node.kind == "input":
            return [node.attrs]
        if node.kind == "op":
            return self._infer_op(node, node.op, node.attrs, ins)
        if node.kind == "block" and node.scan is not None:
            return self._infer_scan(node, ins)
        if node.kind == "block":
            return self._call_block(node, self.program.graphs[node.op], ins)
        return self._infer_repeat(node, ins)

    def _infer_op(self, node: Node, name: str, attrs: Any, ins, where: str = "") -> list[TensorType]:
        op = REGISTRY[name]
        variadic = _VARIADIC.get(name)
        if variadic is None:
            variadic = _VARIADIC[name] = any(port.variadic for port in op.inputs)
        if not variadic and len(ins) < len(op.inputs):     # a port left out reads as none, never past the end
            ins = [*ins, *[None] * (len(op.inputs) - len(ins))]
        for slot, t in enumerate(ins):
            if t is None or not t.optional:
                continue
            port = op.inputs[min(slot, len(op.inputs) - 1)]
            if not port.optional:
                self._fail(node, OPTIONAL_INPUT, f"{name} input `{port.name}` may be none (it comes from an optional input)",
                           slot, ins, hint="pass optional inputs only to ports that accept none")
        try:
            return op.infer(attrs, ins)
        except ShapeError as exc:
            if where not in ("", "[0]") and exc.code == SHAPE_MISMATCH:
                exc.hint = repeat_hint(name, attrs)
            self._shape_error(node, f"{name}{where}: {exc.message}", exc, ins)
        except Exception as exc:  # a shape rule crashed: report it as ours, never as a traceback
            self._fail(node, INTERNAL_ERROR, f"internal error in the shape rule of {name}: {exc!r}", None, ins,
                       hint="this is a bug in dlc; please report it with the spec")
        raise AssertionError("unreachable")

    def _infer_repeat(self, node: Node, ins) -> list[TensorType]:
        """Each iteration's first output is the next one's first input.  Iterations may
        change its shape (a ResNet stage's first block widens and downsamples), since each
        is checked against the input the next one declares."""
        outs: list[TensorType] = []
        last: tuple | None = None        # the previous iteration's layer and inputs
        for i, layer in enumerate(node.attrs):
            # The same layer on the same input types gives the same outputs (a call either fails,
            # and the loop stops, or has no effect but its result): a stack of identical layers
            # that keep their input's shape (a transformer's) is checked once, not n times.
            same = (last is not None and last[1] == ins and (last[0].kind, last[0].target) == (layer.kind, layer.target)
                    and (layer.kind == "block" or last[0].attrs == layer.attrs))
            if not same and layer.kind == "block":
                outs = self._call_block(node, self.program.graphs[layer.target], ins, f"[{i}]")
            elif not same:
                outs = self._infer_op(node, layer.target, layer.attrs, ins, f"[{i}]")
            last = (layer, ins)
            ins = [outs[0], *ins[1:]] if outs else ins
        return outs

    def _block_params(self) -> dict[str, dict[str, Any]]:
        return {key: g.params for key, g in self.program.graphs.items()}

    def _shape_error(self, node: Node, message: str, exc: ShapeError, ins) -> None:
        """Report at the line to edit: the layer that made a non-broadcasting operand, or the
        declaration of an input whose dtype is wrong; else at the op, with a Flatten explained."""
        culprit = broadcast_culprit(self.graph, node, ins) if exc.code == SHAPE_MISMATCH else None
        if culprit is not None:
            producer, fix, blamed_message = culprit
            here = Note(node.span, f"the shapes meet here, in {node.op}")
            self._fail(node, exc.code, blamed_message, None, ins, fix, extra=(here,), span=producer.span)
        own_swap = bool(exc.hint and "look swapped" in exc.hint)     # the op's own arguments are the mistake
        blamed = None if own_swap else consumer_culprit(self.graph, node, exc.slot, exc.expected, exc.actual,
                                                         self._block_params()) or noop_transpose(self.graph, node)
        if blamed is not None:
            producer, fix = blamed
            self._fail(node, exc.code, message, None, ins, fix, extra=(Note(node.span, "the size is checked here"),),
                       span=producer.span)
        source = input_declaration(self.graph, node, exc.slot) if exc.expected_dtype else None
        if source is not None:
            hint = declare_hint(source, source.attrs.shape_str(), exc.expected_dtype)
            used = Note(node.span, f"used here, by {node.op}")
            self._fail(node, exc.code, message, None, ins, hint, extra=(used,), span=source.span)
        hint = exc.hint + flatten_note(self.graph, node, exc.slot) if exc.hint else exc.hint
        self._fail(node, exc.code, message, exc.slot, ins, hint)

    # ------------------------------------------------------------------ block calls
    def _call_block(self, node: Node, callee: Graph, ins, where: str = "") -> list[TensorType]:
        if any(callee.node(i).types is None for i in callee.inputs) or any(
                callee.output_type(o.node, o.index) is None for o in callee.outputs):
            raise _Failed()          # the callee itself failed; already reported
        mapping: dict[Dim, Dim] = {}
        leading: dict[Dim, tuple] = {}      # `*` of a rank-polymorphic input -> the caller's dims
        pairs = []
        for slot, input_id in enumerate(callee.inputs):
            declared: TensorType = callee.node(input_id).attrs
            actual = ins[slot] if slot < len(ins) else None
            if actual is None:
                continue
            if has_star(declared.shape):
                declared, actual = self._split_leading(node, callee, slot, input_id, declared, actual, leading, ins,
                                                       where)
            pairs.append((slot, input_id, declared, actual))
            if declared.rank == actual.rank:
                for d, a in zip(declared.shape, actual.shape):
                    if d.is_symbol and d not in mapping:
                        mapping[d] = a
        for slot, input_id, declared, actual in pairs:
            self._check_binding(node, callee, slot, input_id, declared, actual, mapping, ins, where)
        if leading:
            return self._call_with_leading(node, callee, leading, mapping)
        outs = []
        for out in callee.outputs:
            t = callee.output_type(out.node, out.index)
            outs.append(TensorType(tuple(substitute(d, mapping) for d in t.shape), t.dtype, t.optional))
        return outs

    def _split_leading(self, node, callee, slot, input_id, declared, actual, leading, ins, where):
        """A rank-polymorphic input [*, d...] against its argument: the caller's leading dims (the
        same for every input that shares the `*`) and the declared and actual trailing parts."""
        placeholder, trailing = declared.shape[0], declared.rank - 1
        name = callee.node(input_id).outputs[0]
        label = f"`{callee.block}`{where} input `{name}`"
        if actual.rank < trailing:
            self._fail(node, SHAPE_MISMATCH, f"{label} expects {declared.shape_str()} (at least rank {trailing}), got "
                       f"{actual.shape_str()}", slot, ins)
        lead = actual.shape[:actual.rank - trailing]
        if placeholder in leading and not shapes_equal(leading[placeholder], lead):
            self._fail(node, SHAPE_MISMATCH, f"{label}: the leading dimensions `{placeholder}` are "
                       f"[{', '.join(map(dim_str, leading[placeholder]))}] in an earlier input but "
                       f"[{', '.join(map(dim_str, lead))}] here", slot, ins)
        leading[placeholder] = lead
        rest = TensorType(declared.shape[1:], declared.dtype, declared.optional)
        return rest, TensorType(actual.shape[actual.rank - trailing:], actual.dtype, actual.optional)

    def _call_with_leading(self, node, callee: Graph, leading: dict, mapping: dict) -> list[TensorType]:
        """Check the callee again with each `*` replaced by this call's leading dimensions (as
        fresh symbols, so the caller's names never meet the callee's), and return its outputs
        for this call: the generated code is one class for every rank, and this proves it
        computes a well-shaped result for the rank used here."""
        fresh = {p: tuple(symbol(f"_lead{i}_{p.name[1:]}") for i in range(len(dims))) for p, dims in leading.items()}
        back = {**mapping, **{f: d for p, dims in leading.items() for f, d in zip(fresh[p], dims)}}
        instance = callee.copy()
        for input_id in instance.inputs:
            n = instance.node(input_id)
            t: TensorType = n.attrs
            if has_star(t.shape):
                n = replace(n, attrs=TensorType(fresh[t.shape[0]] + t.shape[1:], t.dtype, t.optional))
                instance.replace_node(n)
        errors = [d for d in _GraphInference(instance, self.program).run() if d.is_error]
        if errors:
            shapes = ", ".join("[" + ", ".join(map(dim_str, dims)) + "]" for dims in leading.values())
            note = Note(node.span, f"with the leading dimensions {shapes} of this call")
            self.diags.extend(replace(d, notes=d.notes + (note,)) for d in errors)
            raise _Failed()
        outs = []
        for out in instance.outputs:
            t = instance.output_type(out.node, out.index)
            outs.append(TensorType(tuple(substitute(d, back) for d in t.shape), t.dtype, t.optional))
        return outs

    def _check_binding(self, node, callee, slot, input_id, declared, actual, mapping, ins, where) -> None:
        name = callee.node(input_id).outputs[0]
        decl_span = callee.node(input_id).span
        expected = declared.subs(mapping)
        label = f"`{callee.block}`{where} input `{name}`"

        def note() -> Note:  # only on failure: printing shapes is most of a passing check's cost
            return Note(decl_span, f"{label} is declared as {declared}" +
                        (f" with {_show_params(callee)}" if callee.params else ""))
        # An input passed straight through is fixed where it is declared, not where it is used.
        source = input_declaration(self.graph, node, slot)
        at = source.span if source is not None else None
        used = (Note(node.span, f"passed to `{callee.block}` here"),) if source is not None else ()
        if declared.rank != actual.rank:
            hint = declare_hint(source, expected.shape_str(), actual.dtype) if source is not None else None
            self._fail(node, SHAPE_MISMATCH, f"{label} expects rank {declared.rank} {expected.shape_str()}, "
                       f"got rank {actual.rank} {actual.shape_str()}", slot, ins, hint, (note(), *used), at)
        if not _dtype_fits(declared.dtype, actual.dtype):
            hint = declare_hint(source, actual.shape_str(), declared.dtype) if source is not None else None
            self._fail(node, DTYPE_MISMATCH, f"{label} expects {declared.dtype} elements, got {actual.dtype}",
                       slot, ins, hint, (note(), *used), at)
        for i, (e, a) in enumerate(zip(expected.shape, actual.shape)):
            blamed = consumer_culprit(self.graph, node, slot, e, a, self._block_params()) if not dims_equal(e, a) else None
            if blamed is not None:          # e.g. an Embedding with its sizes swapped made the input
                self._fail(node, SHAPE_MISMATCH, f"{label} expects {expected.shape_str()}, got {actual.shape_str()}",
                           slot, ins, blamed[1], (Note(node.span, f"passed to `{callee.block}` here"),), blamed[0].span)
            if not dims_equal(e, a):
                param = declared_parameter(decl_span, i, callee.params)
                hint = f"pass `{param}={dim_str(a)}` to `{callee.block}`" if param and a.is_int else None
                swapped = swapped_block_arguments(node, callee.params, a, e)
                if swapped is not None:
                    hint = swapped[1]
                self._fail(node, SHAPE_MISMATCH, f"{label} expects {expected.shape_str()}, got {actual.shape_str()} "
                           f"(dimension {i}: expected {dim_str(e)}, got {dim_str(a)})", slot, ins, hint, (note(),))

    # ------------------------------------------------------------------ outputs and lints
    def _check_outputs(self) -> None:
        for out in self.graph.outputs:
            actual = self.graph.output_type(out.node, out.index)
            if actual is None or out.declared is None:
                continue
            d = out.declared
            if d.rank != actual.rank or not all(dims_equal(x, y) for x, y in zip(d.shape, actual.shape)):
                fix = propose_fix(self.graph.node(out.node), actual, d)
                self.diags.append(Diagnostic(SHAPE_MISMATCH, f"output `{out.name}` is declared {d.shape_str()} but "
                                             f"is {actual.shape_str()}", out.span,
                                             notes=(self._origin(out.node, actual),), hint=fix))
            elif not _dtype_fits(d.dtype, actual.dtype):
                self.diags.append(Diagnostic(DTYPE_MISMATCH, f"output `{out.name}` is declared {d.dtype} but "
                                             f"holds {actual.dtype}", out.span))

    def _warn_unused(self) -> None:
        outputs = {o.node for o in self.graph.outputs}
        succ = self.graph.g.succ
        for node in self.graph.ordered():
            if node.id in outputs or succ[node.id]:      # read by some node
                continue
            if node.kind == "input" and node.outputs[0] in _names_read(self.graph.definition):
                continue    # read in a branch of a static `if` this configuration does not take
            if node.kind == "input":
                self.diags.append(Diagnostic(UNUSED_INPUT, f"input `{node.outputs[0]}` of `{self.graph.block}` is never used",
                                             node.span, Severity.WARNING, hint="remove it, or use it"))
            else:
                self.diags.append(Diagnostic(UNUSED_RESULT, f"`{', '.join(node.outputs)}` is computed but never reaches an output",
                                             node.span, Severity.WARNING,
                                             hint="dead code is removed from the generated model"))

    # ------------------------------------------------------------------ reporting
    def _origin(self, node_id: str, t: TensorType) -> Note:
        node = self.graph.node(node_id)
        what = f"input `{node.outputs[0]}`" if node.kind == "input" else f"`{', '.join(node.outputs)}`"
        return Note(node.span, f"{what} is {t}, from here")

    def _fail(self, node: Node, code: str, message: str, slot: int | None, ins, hint: str | None = None,
              extra: tuple[Note, ...] = (), span: Span | None = None) -> None:
        """Record an error at `span` (the node's own by default) and stop typing the node."""
        notes: list[Note] = []
        operands = self.graph.operands(node.id)
        slots = [slot] if slot is not None and slot in operands else sorted(operands)
        for s in slots:
            src, index = operands[s]
            produced = self.graph.output_type(src, index)     # in a repeat, `ins` holds the previous iteration's
            if produced is not None:
                notes.append(self._origin(src, produced))
        notes = [n for n in notes if n.span != span]     # the primary location already shows it
        self.diags.append(Diagnostic(code, message, span or node.span, Severity.ERROR, tuple(notes) + extra, hint))
        raise _Failed()


def _dtype_fits(declared: str, actual: str) -> bool:
    if declared == actual:
        return True
    if declared == "float" or actual == "float":
        return is_float(declared) and is_float(actual)
    return is_int(declared) and is_int(actual) and declared == actual


def _show_params(graph: Graph) -> str:
    from compiler.ir.values import show
    return ", ".join(f"{k}={show(v)}" for k, v in graph.params.items())


def _names_read(definition: Any) -> set[str]:
    """Every name an expression of a block's body reads (an input's declaration reads none)."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, Name):
            found.add(value.id)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)
        elif hasattr(value, "__dataclass_fields__") and not isinstance(value, Input):
            for name in value.__dataclass_fields__:
                walk(getattr(value, name))

    walk(getattr(definition, "body", ()))
    return found
