"""An `init` statement -> its rule: the target as written, the scheme and every argument's
value (defaults filled in), checked here; whether the target exists is checked with the
graphs of the blocks inside (check/init.py)."""
from __future__ import annotations

from typing import Any, Callable

from compiler.diagnostics import error, suggest
from compiler.diagnostics.codes import BAD_INIT_ARGUMENT, UNKNOWN_INIT_SCHEME
from compiler.ir import InitRule
from compiler.ir.values import kind_of, show
from compiler.ops import REGISTRY
from compiler.ops.init_schemes import SCHEMES, InitScheme, scheme_complaint
from compiler.syntax import ast


def init_rule(s: ast.Init, evaluate: Callable[[ast.Expr], Any]) -> InitRule:
    """The rule of `init TARGET = SCHEME(ARGS)`, its arguments evaluated by `evaluate`."""
    name, written = _scheme_call(s.scheme)
    scheme = SCHEMES.get(name)
    if scheme is None:
        raise error(UNKNOWN_INIT_SCHEME, f"unknown initialization scheme `{name}`", s.scheme.span,
                    hint=suggest(name, SCHEMES) or f"schemes: {', '.join(SCHEMES)}")
    values = _bind(scheme, written, evaluate, s.scheme.span)
    complaint = scheme_complaint(scheme, {n: v for n, (v, _) in values.items()})
    if complaint:
        arg, why = complaint
        where = values[arg][1].span if arg and values[arg][1] is not None else s.scheme.span
        raise error(BAD_INIT_ARGUMENT, f"{name}: {arg + ' ' if arg else ''}{why}", where,
                    hint=f"{name}({', '.join(a.name for a in scheme.args)})")
    by_op = s.target.parts[0] in REGISTRY and len(s.target.parts) == 2
    args = tuple((a.name, *values[a.name]) for a in scheme.args)
    return InitRule(s.target.parts, name, args, s.span, by_op)


def _scheme_call(e: ast.Expr) -> tuple[str, tuple[ast.Arg, ...]]:
    if isinstance(e, ast.Name):
        return e.id, ()
    if isinstance(e, ast.Call) and isinstance(e.func, ast.Name):
        return e.func.id, e.args
    raise error(UNKNOWN_INIT_SCHEME, f"`{e}` is not an initialization scheme", e.span,
                hint="write a scheme and its arguments, like `normal(std=0.02)` or `zeros`")


def _bind(scheme: InitScheme, written: tuple[ast.Arg, ...], evaluate, span) -> dict[str, tuple[Any, ast.Expr | None]]:
    """Every argument's (value, expression), positional ones in the scheme's order."""
    names = [a.name for a in scheme.args]
    usage = f"{scheme.name}({', '.join(names)})" if names else f"{scheme.name} takes no arguments"
    bound: dict[str, tuple[Any, ast.Expr | None]] = {}
    for i, arg in enumerate(written):
        name = arg.name or (names[i] if i < len(names) else None)
        if name is None or name not in names:
            raise error(BAD_INIT_ARGUMENT, f"{scheme.name} takes {', '.join(names) or 'no arguments'}, not "
                        f"{'`' + arg.name + '`' if arg.name else 'this many'}", arg.span,
                        hint=suggest(arg.name, names) if arg.name else usage)
        if name in bound:
            raise error(BAD_INIT_ARGUMENT, f"{scheme.name}: `{name}` is given twice", arg.span, hint=usage)
        bound[name] = (evaluate(arg.value), arg.value)
    for a in scheme.args:
        if a.name not in bound:
            if a.default is None:
                raise error(BAD_INIT_ARGUMENT, f"{scheme.name} needs `{a.name}`", span, hint=usage)
            bound[a.name] = (a.default, None)
        value, expr = bound[a.name]
        bound[a.name] = (_typed(scheme, a.name, a.kind, value, expr or span), expr)
    return {a.name: bound[a.name] for a in scheme.args}


def _typed(scheme: InitScheme, name: str, kind: type, value: Any, where) -> Any:
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind is str and isinstance(value, str):
        return value
    span = where.span if hasattr(where, "span") else where
    raise error(BAD_INIT_ARGUMENT, f"{scheme.name}: `{name}` must be a {'number' if kind is float else 'string'}, "
                f"got {kind_of(value)} {show(value)}", span)
