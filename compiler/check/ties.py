"""Checking `tie a.weight = b.weight`: both paths must name parameters, and
their shapes must agree."""
from __future__ import annotations

from compiler.diagnostics import Diagnostic, suggest
from compiler.ir import Graph, Program
from compiler.ops import REGISTRY
from compiler.diagnostics.codes import TIE_SHAPE_MISMATCH, UNKNOWN_TIE_TARGET


class _BadPath(Exception):
    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


def _param_shape(graph: Graph, program: Program, parts: tuple[str, ...]) -> tuple[int, ...]:
    if not parts:
        raise _BadPath("the path stops at a layer; name one of its parameters, like `.weight`")
    nodes = [n for n in graph.ordered() if n.module == parts[0]]
    if not nodes:
        layers = sorted({n.module for n in graph.ordered() if n.module})
        raise _BadPath(f"`{graph.block}` has no layer `{parts[0]}` (layers: {', '.join(layers) or 'none'})",
                       suggest(parts[0], layers))
    node = nodes[0]
    if node.kind == "block":
        return _param_shape(program.graphs[node.op], program, parts[1:])
    if node.kind == "repeat":
        if len(parts) < 2 or not parts[1].isdigit() or int(parts[1]) >= len(node.attrs):
            raise _BadPath(f"`{parts[0]}` is a repeat of {len(node.attrs)}; index it like `{parts[0]}.0`")
        layer = node.attrs[int(parts[1])]
        if layer.kind == "block":
            return _param_shape(program.graphs[layer.target], program, parts[2:])
        return _op_param(layer.target, layer.attrs, parts[2:])
    return _op_param(node.op, node.attrs, parts[1:])


def _op_param(op_name: str, attrs, parts: tuple[str, ...]) -> tuple[int, ...]:
    params = REGISTRY[op_name].params(attrs)
    if len(parts) != 1 or parts[0] not in params:
        close = suggest(parts[0], params) if len(parts) == 1 else None
        raise _BadPath(f"{op_name} has parameters {', '.join(params) or 'none'}, not `{'.'.join(parts)}`",
                       close or (f"tie `.{next(iter(params))}`" if len(params) == 1 else None))
    return params[parts[0]]


def check_ties(program: Program) -> list[Diagnostic]:
    diagnostics = []
    for graph in program.graphs.values():
        for tie in graph.ties:
            try:
                target = _param_shape(graph, program, tie.target)
                source = _param_shape(graph, program, tie.source)
            except _BadPath as exc:
                diagnostics.append(Diagnostic(UNKNOWN_TIE_TARGET, f"cannot tie: {exc}", tie.span, hint=exc.hint))
                continue
            if tuple(target) != tuple(source):
                diagnostics.append(Diagnostic(
                    TIE_SHAPE_MISMATCH, f"cannot tie {'.'.join(tie.target)} {list(target)} to {'.'.join(tie.source)} "
                    f"{list(source)}: shapes differ", tie.span,
                    hint=_same_shape_hint(graph, tuple(target), (tie.source, tie.target))))
    return diagnostics




def _same_shape_hint(graph: Graph, shape: tuple[int, ...], named: tuple[tuple[str, ...], ...]) -> str:
    """The parameters of this block's own layers that do have the target's shape."""
    fitting = [f"{n.module}.{name}" for n in graph.ordered() if n.kind == "op" and n.module
               for name, s in REGISTRY[n.op].params(n.attrs).items() if tuple(s) == shape]
    fitting = [p for p in dict.fromkeys(fitting) if tuple(p.split(".")) not in named]
    if fitting:
        return f"parameters of shape {list(shape)}: {', '.join(fitting[:4])}"
    return "a Linear(d, vocab) weight is [vocab, d], the same as Embedding(vocab, d)"
