"""Compile-time arguments: an op's attributes validated against its schema, with hints
that say what to write instead (`true` without quotes, `p=0.1`, the closest enum value),
and the fix for a failed divisibility `require`."""
from __future__ import annotations

from typing import Any

from compiler.ir.dims import Dim
from compiler.diagnostics import Span, error, suggest
from compiler.diagnostics.codes import ARGUMENT_TYPE, DUPLICATE_ARGUMENT, TOO_MANY_ARGUMENTS, UNKNOWN_ARGUMENT
from compiler.ir.values import TensorRef, show
from compiler.ops.hints import choices, divisors_near
from compiler.ops.schema import validation_error
from compiler.syntax import ast


def divisibility_fix(cond: ast.Expr, env: dict[str, Any]) -> str | None:
    """For a failed `require a % b == 0`: the values of `b` near the given one that divide `a`,
    or the two swapped when that is what happened (`MultiHeadAttention(8, 512)`)."""
    if not (isinstance(cond, ast.Compare) and cond.op == "==" and isinstance(cond.right, ast.Int)
            and cond.right.value == 0 and isinstance(cond.left, ast.BinOp) and cond.left.op == "%"):
        return None
    left, right = cond.left.left, cond.left.right
    if not (isinstance(left, ast.Name) and isinstance(right, ast.Name)):
        return None
    a, b = env.get(left.id), env.get(right.id)
    if not (isinstance(a, int) and isinstance(b, int) and a > 0 and b > 0):
        return None
    if b > a and b % a == 0:
        return f"`{left.id}` and `{right.id}` look swapped: `{left.id}={b}, {right.id}={a}`"
    near = divisors_near(a, b)
    return f"{choices(right.id, near)} divide{'s' if len(near) == 1 else ''} `{left.id}={a}`"


# Argument values whose (type, value) pair identifies them exactly: floats by repr, so -0.0 and
# 0.0 (equal, with one hash) stay apart.
_PLAIN_VALUES = (int, str, bool, type(None))


def attrs_key(op, args: list[tuple[str | None, Any, Span]]) -> tuple | None:
    """What decides `validate_attrs(op, args)`'s result, for a cache of it; None when some value
    is not a plain number, string or bool (lists, dimensions, tensors: validated every time)."""
    key: list = [op.name]
    for name, value, _ in args:
        kind = type(value)
        if kind is float:
            key.append((name, kind, repr(value)))
        elif kind in _PLAIN_VALUES:
            key.append((name, kind, value))
        else:
            return None
    return tuple(key)


def validate_attrs(op, args: list[tuple[str | None, Any, Span]], span: Span):
    fields = list(op.attrs.field_names)
    values: dict[str, Any] = {}
    where: dict[str, Span] = {}
    positional = [a for a in args if a[0] is None]
    if len(positional) > len(fields):
        raise error(TOO_MANY_ARGUMENTS, f"{op.name} takes at most {len(fields)} arguments ({', '.join(fields)}), "
                    f"got {len(positional)}", positional[len(fields)][2])
    for name, (_, value, s) in zip(fields, positional):
        values[name], where[name] = value, s
    for name, value, s in (a for a in args if a[0] is not None):
        if name not in fields:
            raise error(UNKNOWN_ARGUMENT, f"{op.name} has no argument `{name}`", s,
                        hint=suggest(name, fields) or f"its arguments are {', '.join(fields) or 'none'}")
        if name in values:
            raise error(DUPLICATE_ARGUMENT, f"argument `{name}` of {op.name} is given twice", s)
        values[name], where[name] = value, s
    try:
        # DSL lists are Python lists; attribute schemas hold immutable tuples.
        return op.attrs(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
    except validation_error() as exc:     # evaluated only when something was raised: pydantic loads then
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        value = values.get(field)
        got = show(value) if field in values else "nothing"
        if isinstance(value, TensorRef):
            message = f"{op.name} argument `{field}` must be a compile-time value, got a tensor"
        else:
            message = f"{op.name} argument `{field}`: {_wording(first['msg'])}, got {got}"
        raise error(ARGUMENT_TYPE, message, where.get(field, span), hint=_argument_hint(op, field, value, first)) from None


def _wording(pydantic_message: str) -> str:
    """pydantic's `Input should be ...` as dlc says it: `should be ...`."""
    text = pydantic_message[0].lower() + pydantic_message[1:]
    return text.replace("input should be", "should be", 1)


def _argument_hint(op, field: str, value: Any, problem: dict) -> str | None:
    """What to write instead of a rejected attribute value."""
    if isinstance(value, TensorRef):
        return (f"tensors go in the second parentheses, `{op.name}(...)(x)`; `{field}` is fixed when the "
                f"model is built, so give it a number or a block parameter")
    if isinstance(value, Dim):
        return "symbolic dimensions cannot size parameters; pass a block parameter instead"
    if isinstance(value, float) and "integer" in problem["msg"]:
        return "use // for integer division"
    if isinstance(value, str):
        if value in ("true", "false") and "bool" in problem["msg"]:
            return f"write `{value}` without quotes"
        try:
            float(value)
            return f"write `{value}` without quotes"
        except ValueError:
            pass
        options = problem.get("ctx", {}).get("expected", "")
        close = suggest(value, [o.strip(" '") for o in options.replace(" or ", ", ").split(",")]) if options else None
        if close:
            return close
    if isinstance(value, (int, float)) and field in ("p", "dropout") and 1 <= value <= 100:
        return f"`{field}` is a probability: `{field}={value / 100:g}` drops {value:g}%"
    return None

