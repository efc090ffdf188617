"""Checking `init` targets: an `Op.parameter` rule names a stateful op and one of its
parameters; a path names a layer of the block (through blocks and repeats) and one of its
parameters; a fan-based scheme (xavier, kaiming, orthogonal) gets a matrix."""
from __future__ import annotations

from functools import lru_cache

from compiler.diagnostics import Diagnostic, suggest
from compiler.diagnostics.codes import BAD_INIT_ARGUMENT, UNKNOWN_INIT_TARGET
from compiler.ir import Graph, InitRule, Program
from compiler.ops import REGISTRY
from compiler.ops.init_schemes import SCHEMES
from compiler.syntax import ast


class _BadTarget(Exception):
    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


@lru_cache(maxsize=None)
def op_parameters(op_name: str) -> dict[str, int]:
    """Every parameter a stateful op may hold, with its number of dimensions (from its samples)."""
    op = REGISTRY[op_name]
    found: dict[str, int] = {}
    for s in op.samples:
        try:
            found.update({name: len(shape) for name, shape in op.params(op.attrs(**s.attrs)).items()})
        except (TypeError, ValueError):
            continue
    return found


def stateful_ops() -> list[str]:
    return sorted(name for name, op in REGISTRY.items() if op.init is not None and op_parameters(name))


def check_init_rules(program: Program) -> list[Diagnostic]:
    diagnostics: list[Diagnostic] = []
    seen: set[tuple] = set()
    for graph in program.graphs.values():
        for rule in graph.init_rules:
            if (rule.span, rule.target) in seen:
                continue            # one report per statement, not per specialization
            try:
                dims = _op_rule_dims(rule) if rule.by_op else _path_dims(graph, program, rule.target)
            except _BadTarget as exc:
                seen.add((rule.span, rule.target))
                diagnostics.append(Diagnostic(UNKNOWN_INIT_TARGET, f"cannot initialize `{'.'.join(rule.target)}`: "
                                              f"{exc}", rule.span, hint=exc.hint))
                continue
            if dims is not None and dims < 2 and SCHEMES[rule.scheme].needs_matrix:
                seen.add((rule.span, rule.target))
                diagnostics.append(Diagnostic(
                    BAD_INIT_ARGUMENT, f"{rule.scheme} computes fans from two dimensions; `{'.'.join(rule.target)}` "
                    f"has {dims}", rule.span, hint="use normal, uniform, zeros or constant for a bias or a norm"))
    return diagnostics


def _op_rule_dims(rule: InitRule) -> int | None:
    op_name, param = rule.target
    params = op_parameters(op_name)
    if not params:
        raise _BadTarget(f"{op_name} holds no parameters", suggest(op_name, stateful_ops()))
    if param not in params:
        raise _BadTarget(f"{op_name} has parameters {', '.join(params)}, not `{param}`", suggest(param, params))
    return params[param]


def _path_dims(graph: Graph, program: Program, parts: tuple[str, ...]) -> int | None:
    """The dimensions of the parameter a path names; None where the layer is in a branch this
    specialization did not build."""
    nodes = [n for n in graph.ordered() if n.module == parts[0]]
    if not nodes:
        if graph.definition is not None and parts[0] in _layer_names(graph.definition.body):
            return None
        layers = sorted({n.module for n in graph.ordered() if n.module})
        if parts[0] in REGISTRY:
            return _op_hint(parts)
        raise _BadTarget(f"`{graph.block}` has no layer `{parts[0]}` (layers: {', '.join(layers) or 'none'})",
                         suggest(parts[0], layers))
    node, rest = nodes[0], parts[1:]
    if node.kind == "block":
        return _path_dims(program.graphs[node.op], program, rest) if rest else _stops_at_block(parts[0])
    if node.kind == "repeat":
        if rest and rest[0].isdigit():
            if int(rest[0]) >= len(node.attrs):
                raise _BadTarget(f"`{parts[0]}` is a repeat of {len(node.attrs)}")
            layer, rest = node.attrs[int(rest[0])], rest[1:]
        else:
            layer = node.attrs[0]      # a repeat's name stands for each of its layers
        if layer.kind == "block":
            return _path_dims(program.graphs[layer.target], program, rest) if rest else _stops_at_block(parts[0])
        return _param_dims(layer.target, layer.attrs, rest)
    return _param_dims(node.op, node.attrs, rest)


def _param_dims(op_name: str, attrs, rest: tuple[str, ...]) -> int:
    params = REGISTRY[op_name].params(attrs)
    if op_name == "Parameter" and not rest:
        return len(params[""])
    if len(rest) != 1 or rest[0] not in params:
        names = ", ".join(params) or "none"
        close = suggest(rest[0], params) if len(rest) == 1 else None
        raise _BadTarget(f"the {op_name} has parameters {names}, not `{'.'.join(rest)}`" if rest else
                         f"the path stops at a {op_name}; name one of its parameters ({names})", close)
    return len(params[rest[0]])


def _op_hint(parts: tuple[str, ...]) -> int:
    raise _BadTarget(f"an op rule names the op and one parameter, like `{parts[0]}.weight`")


def _stops_at_block(name: str) -> int:
    raise _BadTarget(f"`{name}` is a block; name a parameter inside it, or an op: `Linear.weight`")


def _layer_names(stmts) -> set[str]:
    names: set[str] = set()
    for stmt in stmts:
        if isinstance(stmt, ast.Assign):
            names.update(stmt.targets)
        for body in (getattr(stmt, "then", ()), getattr(stmt, "orelse", ()), getattr(stmt, "body", ())):
            names |= _layer_names(body)
    return names
