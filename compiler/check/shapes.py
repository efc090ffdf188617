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

import sympy

from compiler.diagnostics import Diagnostic, Note, Severity, Span
from compiler.ir import Graph, Node, Program
from compiler.ir.types import TensorType, dim_str, dims_equal, is_float, is_int
from compiler.ops import REGISTRY, ShapeError


class _Failed(Exception):
    """A node could not be typed; dependants are skipped."""


def infer_program(program: Program) -> list[Diagnostic]:
    diagnostics: list[Diagnostic] = []
    instances = instance_paths(program)
    for graph in program.graphs.values():     # callees come before callers
        found = _GraphInference(graph, program).run()
        diagnostics.extend(_with_instance(d, instances.get(graph.key)) for d in found)
    return diagnostics


def instance_paths(program: Program) -> dict[str, tuple[str, Span, int]]:
    """For each graph, where the entry points first use it (`encoder.layers[3].attn` and the
    call site, in model order) and how many instances of it there are.  A block is checked
    once per specialization, so an error inside it is an error in every instance.  Each graph
    is walked once: blocks that use the next one twice have 2**depth instances, not 2**depth walks."""
    first: dict[str, tuple[str, Span]] = {}
    uses: dict[str, list[tuple[str, int]]] = {}      # graph -> (caller, how many times) in model order

    def visit(key: str, path: str) -> None:        # depth-first, in model order; each graph once
        for callee, sub, span in _block_uses(program.graphs[key], path):
            uses.setdefault(callee, []).append((key, 1))
            if callee not in first:
                first[callee] = (sub, span)
                visit(callee, sub)

    for public, key in program.models:
        visit(key, public)
    counts: dict[str, int] = {key: 1 for _, key in program.models}
    for key in reversed(list(program.graphs)):   # graphs list callees first: callers are counted first
        if key in uses:
            counts[key] = sum(counts.get(caller, 0) * n for caller, n in uses[key])
    return {key: (path, span, counts.get(key, 1)) for key, (path, span) in first.items()}


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


def _with_instance(d: Diagnostic, instance: tuple[str, Span, int] | None) -> Diagnostic:
    if instance is None or not d.is_error:
        return d
    path, span, count = instance
    more = f" (and {count - 1} other instance{'s' if count > 2 else ''})" if count > 1 else ""
    return replace(d, notes=d.notes + (Note(span, f"in instance `{path}`{more}"),))


class _GraphInference:
    def __init__(self, graph: Graph, program: Program):
        self.graph = graph
        self.program = program
        self.diags: list[Diagnostic] = []

    def run(self) -> list[Diagnostic]:
        for node in self.graph.ordered():
            ins = self._input_types(node)
            if ins is None:
                continue
            try:
                types = tuple(self._infer(node, ins))
            except _Failed:
                continue
            self.graph.replace_node(replace(node, types=types))
        self._check_outputs()
        if not any(d.is_error for d in self.diags):
            self._warn_unused()
        return self.diags

    def _input_types(self, node: Node) -> list[TensorType | None] | None:
        operands = self.graph.operands(node.id)
        ins: list[TensorType | None] = [None] * (max(operands, default=-1) + 1)
        for slot, (src, index) in operands.items():
            types = self.graph.node(src).types
            if types is None:
                return None          # an upstream node failed; already reported
            ins[slot] = types[index]
        return ins

    def _infer(self, node: Node, ins: list[TensorType | None]) -> list[TensorType]:
        if node.kind == "input":
            return [node.attrs]
        if node.kind == "op":
            return self._infer_op(node, node.op, node.attrs, ins)
        if node.kind == "block":
            return self._call_block(node, self.program.graphs[node.op], ins)
        return self._infer_repeat(node, ins)

    def _infer_op(self, node: Node, name: str, attrs: Any, ins, where: str = "") -> list[TensorType]:
        op = REGISTRY[name]
        for slot, t in enumerate(ins):
            port = op.inputs[min(slot, len(op.inputs) - 1)]
            if t is not None and t.optional and not port.optional:
                self._fail(node, "DLC007", f"{name} input `{port.name}` may be none (it comes from an optional input)",
                           slot, ins, hint="pass optional inputs only to ports that accept none")
        try:
            return op.infer(attrs, ins)
        except ShapeError as exc:
            self._fail(node, exc.code, f"{name}{where}: {exc.message}", exc.slot, ins, exc.hint)
        except Exception as exc:  # a shape rule crashed: report it as ours, never as a traceback
            self._fail(node, "DLC000", f"internal error in the shape rule of {name}: {exc!r}", None, ins,
                       hint="this is a bug in dlc; please report it with the spec")
        raise AssertionError("unreachable")

    def _infer_repeat(self, node: Node, ins) -> list[TensorType]:
        """Each iteration's first output is the next one's first input.  Iterations may
        change its shape (a ResNet stage's first block widens and downsamples), since each
        is checked against the input the next one declares."""
        outs: list[TensorType] = []
        for i, layer in enumerate(node.attrs):
            if layer.kind == "block":
                outs = self._call_block(node, self.program.graphs[layer.target], ins, f"[{i}]")
            else:
                outs = self._infer_op(node, layer.target, layer.attrs, ins, f"[{i}]")
            ins = [outs[0], *ins[1:]] if outs else ins
        return outs

    # ------------------------------------------------------------------ block calls
    def _call_block(self, node: Node, callee: Graph, ins, where: str = "") -> list[TensorType]:
        if any(callee.node(i).types is None for i in callee.inputs) or any(
                callee.output_type(o.node, o.index) is None for o in callee.outputs):
            raise _Failed()          # the callee itself failed; already reported
        mapping: dict[sympy.Symbol, sympy.Expr] = {}
        pairs = []
        for slot, input_id in enumerate(callee.inputs):
            declared: TensorType = callee.node(input_id).attrs
            actual = ins[slot] if slot < len(ins) else None
            if actual is None:
                continue
            pairs.append((slot, input_id, declared, actual))
            if declared.rank == actual.rank:
                for d, a in zip(declared.shape, actual.shape):
                    if d.is_Symbol and d not in mapping:
                        mapping[d] = a
        for slot, input_id, declared, actual in pairs:
            self._check_binding(node, callee, slot, input_id, declared, actual, mapping, ins, where)
        outs = []
        for out in callee.outputs:
            t = callee.output_type(out.node, out.index)
            outs.append(TensorType(tuple(sympy.sympify(d).xreplace(mapping) for d in t.shape), t.dtype, t.optional))
        return outs

    def _check_binding(self, node, callee, slot, input_id, declared, actual, mapping, ins, where) -> None:
        name = callee.node(input_id).outputs[0]
        decl_span = callee.node(input_id).span
        expected = declared.subs(mapping)
        label = f"`{callee.block}`{where} input `{name}`"
        note = Note(decl_span, f"{label} is declared as {declared}" +
                    (f" with {_show_params(callee)}" if callee.params else ""))
        if declared.rank != actual.rank:
            self._fail(node, "DLC007", f"{label} expects rank {declared.rank} {expected.shape_str()}, "
                       f"got rank {actual.rank} {actual.shape_str()}", slot, ins, extra=(note,))
        if not _dtype_fits(declared.dtype, actual.dtype):
            self._fail(node, "DLC008", f"{label} expects {declared.dtype} elements, got {actual.dtype}",
                       slot, ins, extra=(note,))
        for i, (e, a) in enumerate(zip(expected.shape, actual.shape)):
            if not dims_equal(e, a):
                self._fail(node, "DLC007", f"{label} expects {expected.shape_str()}, got {actual.shape_str()} "
                           f"(dimension {i}: expected {dim_str(e)}, got {dim_str(a)})", slot, ins, extra=(note,))

    # ------------------------------------------------------------------ outputs and lints
    def _check_outputs(self) -> None:
        for out in self.graph.outputs:
            actual = self.graph.output_type(out.node, out.index)
            if actual is None or out.declared is None:
                continue
            d = out.declared
            if d.rank != actual.rank or not all(dims_equal(x, y) for x, y in zip(d.shape, actual.shape)):
                self.diags.append(Diagnostic("DLC007", f"output `{out.name}` is declared {d.shape_str()} but "
                                             f"is {actual.shape_str()}", out.span,
                                             notes=(self._origin(out.node, actual),)))
            elif not _dtype_fits(d.dtype, actual.dtype):
                self.diags.append(Diagnostic("DLC008", f"output `{out.name}` is declared {d.dtype} but "
                                             f"holds {actual.dtype}", out.span))

    def _warn_unused(self) -> None:
        outputs = {o.node for o in self.graph.outputs}
        for node in self.graph.ordered():
            if node.id in outputs or self.graph.g.out_degree(node.id):
                continue
            if node.kind == "input":
                self.diags.append(Diagnostic("DLC020", f"input `{node.outputs[0]}` of `{self.graph.block}` is never used",
                                             node.span, Severity.WARNING, hint="remove it, or use it"))
            else:
                self.diags.append(Diagnostic("DLC021", f"`{', '.join(node.outputs)}` is computed but never reaches an output",
                                             node.span, Severity.WARNING,
                                             hint="dead code is removed from the generated model"))

    # ------------------------------------------------------------------ reporting
    def _origin(self, node_id: str, t: TensorType) -> Note:
        node = self.graph.node(node_id)
        what = f"input `{node.outputs[0]}`" if node.kind == "input" else f"`{', '.join(node.outputs)}`"
        return Note(node.span, f"{what} is {t}, from here")

    def _fail(self, node: Node, code: str, message: str, slot: int | None, ins, hint: str | None = None,
              extra: tuple[Note, ...] = ()) -> None:
        notes: list[Note] = []
        operands = self.graph.operands(node.id)
        slots = [slot] if slot is not None and slot in operands else sorted(operands)
        for s in slots:
            src, index = operands[s]
            produced = self.graph.output_type(src, index)     # in a repeat, `ins` holds the previous iteration's
            if produced is not None:
                notes.append(self._origin(src, produced))
        self.diags.append(Diagnostic(code, message, node.span, Severity.ERROR, tuple(notes) + extra, hint))
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
