"""Evaluation of expressions during resolution.

Compile-time arithmetic (parameters, dimensions) is computed here; tensor
arithmetic and layer applications become IR nodes through the block builder.
"""
from __future__ import annotations

import math
import operator
from typing import Any, Protocol

import sympy

from compiler.diagnostics import error, suggest
from compiler.ir.values import ArgExpr, Callee, Layer, TensorRef, kind_of, show
from compiler.syntax import ast


class Builder(Protocol):
    """What evaluation asks of the block builder (block_builder.py): names in scope,
    and turning layer applications into IR nodes."""

    limits: Any

    def lookup(self, name: str) -> Any: ...
    def visible_names(self) -> set[str]: ...
    def declare_symbol(self, name: str, span: Any) -> sympy.Symbol: ...
    def scoped(self, extra: dict[str, Any]) -> Any: ...
    def configure(self, callee: Callee, args: list, call: ast.Call) -> Layer: ...
    def apply_op(self, op_name: str, attrs: dict, args: list[TensorRef], span: Any, targets: Any = (),
                 written: Any = None) -> TensorRef: ...
    def apply(self, layer: Layer, args: list, call: ast.Call | None, targets: Any) -> Any: ...
    def apply_repeat(self, layers: list[Layer], args: Any, e: ast.Repeat, targets: Any) -> Any: ...

MAX_INT = 2**62

_ARITH = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
          "//": operator.floordiv, "%": operator.mod, "**": operator.pow}
_COMPARE = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
            ">": operator.gt, ">=": operator.ge}
_TENSOR_OPS = {"+": "Add", "-": "Sub", "*": "Mul", "/": "Div", "@": "MatMul"}
MAX_RANGE = 1 << 16


def _range(*args: int) -> list[int]:
    """`range(stop)`, `range(start, stop[, step])` as a list, for `for` loops."""
    values = range(*args)
    if len(values) > MAX_RANGE:
        raise ValueError(f"{len(values)} values exceed the limit of {MAX_RANGE}")
    return list(values)


BUILTINS = {"sqrt": math.sqrt, "min": min, "max": max, "len": len, "int": int, "float": float, "range": _range}


class Evaluator:
    def __init__(self, builder: Builder, new_symbols: bool = False):
        self.b = builder
        self.new_symbols = new_symbols   # shape declarations may introduce symbols

    def eval(self, e: ast.Expr, targets: tuple[str, ...] = ()) -> Any:
        method = getattr(self, "_" + type(e).__name__.lower())
        return method(e, targets) if isinstance(e, (ast.Call, ast.Repeat, ast.BinOp)) else method(e)

    # ---------------------------------------------------------- atoms
    def _int(self, e: ast.Int) -> int:
        if e.value > MAX_INT:
            raise error("DLC013", f"integer {e.value} is too large", e.span, hint=f"the limit is {MAX_INT}")
        return e.value

    def _float(self, e: ast.Float) -> float:
        if not math.isfinite(e.value):
            raise error("DLC011", "number is not finite", e.span)
        return e.value

    def _str(self, e: ast.Str) -> str:
        return e.value

    def _bool(self, e: ast.Bool) -> bool:
        return e.value

    def _nonelit(self, e: ast.NoneLit) -> None:
        return None

    def _name(self, e: ast.Name) -> Any:
        found = self.b.lookup(e.id)
        if found is not None:
            return found
        if self.new_symbols:
            return self.b.declare_symbol(e.id, e.span)
        if e.id in BUILTINS:
            return Callee("builtin", e.id)
        hint = suggest(e.id, self.b.visible_names())
        raise error("DLC002", f"`{e.id}` is not defined", e.span, hint=hint)

    def _listlit(self, e: ast.ListLit) -> list:
        return [self.eval(i) for i in e.items]

    # ---------------------------------------------------------- operators
    def _binop(self, e: ast.BinOp, targets: tuple[str, ...] = ()) -> Any:
        left, right = self.eval(e.left), self.eval(e.right)
        if isinstance(left, TensorRef) or isinstance(right, TensorRef):
            return self._tensor_binop(e, left, right, targets)
        if e.op == "@":
            raise error("DLC011", "`@` multiplies tensors, not numbers", e.span)
        return self._number_binop(e, left, right)

    def _number_binop(self, e: ast.BinOp, left: Any, right: Any) -> Any:
        for v, side in ((left, e.left), (right, e.right)):
            if not _is_number(v) and not (e.op == "+" and isinstance(v, (str, list))):
                raise error("DLC011", f"cannot apply `{e.op}` to a {kind_of(v)} ({show(v)})", side.span)
        if isinstance(left, (str, list)) or isinstance(right, (str, list)):
            if type(left) is not type(right):
                raise error("DLC011", f"cannot add a {kind_of(left)} and a {kind_of(right)}", e.span)
            return left + right
        if e.op in ("/", "//", "%") and right == 0:
            raise error("DLC011", "division by zero", e.right.span)
        if e.op == "**" and _is_number(right) and not isinstance(right, sympy.Basic) and abs(right) > 64:
            raise error("DLC013", f"exponent {right} is too large", e.right.span)
        if isinstance(left, sympy.Basic) or isinstance(right, sympy.Basic):
            return _sym_arith(e.op, sympy.sympify(left), sympy.sympify(right))
        result = _ARITH[e.op](left, right)
        if isinstance(result, int) and abs(result) > MAX_INT:
            raise error("DLC013", "integer result is too large", e.span)
        return result

    def _tensor_binop(self, e: ast.BinOp, left: Any, right: Any, targets: tuple[str, ...] = ()) -> TensorRef:
        if isinstance(left, TensorRef) and isinstance(right, TensorRef):
            return self.b.apply_op(_TENSOR_OPS[e.op], {}, [left, right], e.span, targets)
        tensor, number = (left, right) if isinstance(left, TensorRef) else (right, left)
        number_expr = e.right if tensor is left else e.left
        if not _is_number(number) or isinstance(number, sympy.Basic):
            raise error("DLC011", f"cannot apply `{e.op}` to a tensor and a {kind_of(number)}", e.span)
        if e.op == "*":
            factor = float(number)
            written = {"factor": ArgExpr("factor", number_expr, factor)}
            return self.b.apply_op("Scale", {"factor": factor}, [tensor], e.span, targets, written)
        if e.op == "/" and tensor is left:
            if number == 0:
                raise error("DLC011", "division by zero", e.right.span)
            factor = 1.0 / float(number)
            inverse = ast.BinOp(e.span, "/", ast.Float(e.span, 1.0), number_expr)
            written = {"factor": ArgExpr("factor", inverse, factor)}
            return self.b.apply_op("Scale", {"factor": factor}, [tensor], e.span, targets, written)
        raise error("DLC011", f"`{e.op}` between a tensor and a number is not supported", e.span,
                    hint="tensors can be multiplied or divided by numbers")

    def _compare(self, e: ast.Compare) -> bool:
        left, right = self.eval(e.left), self.eval(e.right)
        ordered = e.op not in ("==", "!=")
        for v, side in ((left, e.left), (right, e.right)):
            if isinstance(v, (TensorRef, Layer)) or (ordered and not _is_number(v)):
                raise error("DLC011", f"cannot compare a {kind_of(v)} with `{e.op}`", side.span)
        result = _COMPARE[e.op](left, right)
        if isinstance(result, sympy.Basic):
            raise error("DLC011", f"`{e}` depends on symbolic dimensions and cannot be decided at compile time",
                        e.span)
        return bool(result)

    def _boolop(self, e: ast.BoolOp) -> bool:
        left = self._need_bool(e.left)
        if e.op == "and":
            return left and self._need_bool(e.right)
        return left or self._need_bool(e.right)

    def _not(self, e: ast.Not) -> bool:
        return not self._need_bool(e.operand)

    def _neg(self, e: ast.Neg) -> Any:
        v = self.eval(e.operand)
        if not _is_number(v):
            raise error("DLC011", f"cannot negate a {kind_of(v)}", e.span)
        return -v

    def _ternary(self, e: ast.Ternary) -> Any:
        return self.eval(e.then) if self._need_bool(e.cond) else self.eval(e.orelse)

    def _index(self, e: ast.Index) -> Any:
        target, idx = self.eval(e.target), self.eval(e.index)
        if not isinstance(target, list):
            raise error("DLC011", f"only lists can be indexed, not a {kind_of(target)}", e.target.span)
        if isinstance(idx, bool) or not isinstance(idx, int):
            raise error("DLC011", f"list index must be an int, got {kind_of(idx)}", e.index.span)
        if not -len(target) <= idx < len(target):
            raise error("DLC011", f"index {idx} is out of range for a list of {len(target)}", e.index.span)
        return target[idx]

    def need_bool(self, e: ast.Expr) -> bool:
        return self._need_bool(e)

    def _need_bool(self, e: ast.Expr) -> bool:
        v = self.eval(e)
        if not isinstance(v, bool):
            raise error("DLC011", f"expected a condition (true/false), got a {kind_of(v)} ({show(v)})", e.span)
        return v

    # ---------------------------------------------------------- calls
    def _call(self, e: ast.Call, targets: tuple[str, ...] = ()) -> Any:
        func = self._callee(e.func)
        if isinstance(func, Callee):
            if func.kind == "builtin":
                return self._builtin(func.name, e)
            return self.b.configure(func, [(a.name, self.eval(a.value), a.span) for a in e.args], e)
        if isinstance(func, Layer):
            args = [self._tensor_arg(a) for a in e.args]
            return self.b.apply(func, args, e, targets)
        raise error("DLC011", f"a {kind_of(func)} cannot be called", e.func.span,
                    hint="layers are configured and then applied: `Linear(512, 512)(x)`")

    def _callee(self, f: ast.Expr) -> Any:
        """What a call calls; a name nothing defines there is an unknown block or op."""
        if isinstance(f, ast.Name) and f.id not in BUILTINS and self.b.lookup(f.id) is None:
            hint = suggest(f.id, self.b.visible_names() | set(BUILTINS))
            raise error("DLC004", f"unknown block or op `{f.id}`", f.span,
                        hint=hint or "define it with `block`, or import the module that does")
        return self.eval(f)

    def _tensor_arg(self, a: ast.Arg) -> TensorRef | None:
        if a.name is not None:
            raise error("DLC005", "tensor arguments are positional", a.span)
        v = self.eval(a.value)
        if v is not None and not isinstance(v, TensorRef):
            raise error("DLC005", f"expected a tensor, got a {kind_of(v)} ({show(v)})", a.span,
                        hint="configure layers in the first parentheses, pass tensors in the second")
        return v

    def _builtin(self, name: str, e: ast.Call) -> Any:
        if any(a.name for a in e.args):
            raise error("DLC005", f"`{name}` takes positional arguments only", e.span)
        args = [self.eval(a.value) for a in e.args]
        try:
            if name == "len" and not (len(args) == 1 and isinstance(args[0], list)):
                raise TypeError("len takes one list")
            if name != "len" and not all(_is_number(a) and not isinstance(a, sympy.Basic) for a in args):
                raise TypeError(f"{name} takes numbers")
            return BUILTINS[name](*args)
        except (TypeError, ValueError) as exc:
            raise error("DLC011", f"bad arguments to `{name}`: {exc}", e.span) from None

    def _repeat(self, e: ast.Repeat, targets: tuple[str, ...] = ()) -> Any:
        count = self.eval(e.count)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise error("DLC005", f"repeat count must be a positive int, got {show(count)}", e.count.span)
        if count > self.b.limits.max_repeat:
            raise error("DLC013", f"repeat({count}) exceeds the limit of {self.b.limits.max_repeat}",
                        e.count.span)
        if not (isinstance(e.body, ast.Call) and isinstance(e.body.func, ast.Call)):
            raise error("DLC005", "repeat needs a layer applied to inputs, like `repeat(6) Layer(...)(x)`", e.body.span)
        layers = []
        for i in range(count):
            with self.b.scoped({e.index_name: i} if e.index_name else {}):
                layer = self.eval(e.body.func)
            if not isinstance(layer, Layer):
                raise error("DLC005", f"repeat needs a layer, got a {kind_of(layer)}", e.body.func.span)
            layers.append(layer)
        args = [self._tensor_arg(a) for a in e.body.args]
        return self.b.apply_repeat(layers, args, e, targets)


def _is_number(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) or isinstance(v, sympy.Expr)


def _sym_arith(op: str, a: sympy.Expr, b: sympy.Expr) -> sympy.Expr:
    if op == "//":
        return sympy.floor(a / b)
    if op == "%":
        return sympy.Mod(a, b)
    return _ARITH[op](a, b)
