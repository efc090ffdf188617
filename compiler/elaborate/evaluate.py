"""Evaluation of expressions during resolution.

Compile-time arithmetic (parameters, dimensions) is computed here; tensor
arithmetic and layer applications become IR nodes through the block builder.
"""
from __future__ import annotations

import math
import operator
from typing import Any, Protocol

from compiler.diagnostics import error, suggest
from compiler.ir.dims import Dim, SymbolicComparison
from compiler.ir.values import ArgExpr, Callee, Layer, TensorRef, kind_of, show
from compiler.syntax import ast
from compiler.elaborate.loader import stdlib_module_defining
from compiler.diagnostics.codes import (
    BAD_REPEAT,
    BAD_SCAN,
    DIVISION_BY_ZERO,
    EXPECTED_TENSOR,
    INDEX_OUT_OF_RANGE,
    INVALID_DIMENSION,
    NOT_COMPILE_TIME,
    POSITIONAL_ONLY,
    RESOURCE_LIMIT,
    TYPE_ERROR,
    UNDEFINED_NAME,
    UNKNOWN_CALLEE,
)


class Builder(Protocol):
    """What evaluation asks of the block builder (block_builder.py): names in scope,
    and turning layer applications into IR nodes."""

    limits: Any
    budget: Any

    def lookup(self, name: str) -> Any: ...
    def visible_names(self) -> set[str]: ...
    def declare_symbol(self, name: str, span: Any) -> Dim: ...
    def scoped(self, extra: dict[str, Any]) -> Any: ...
    def configure(self, callee: Callee, args: list, call: ast.Call) -> Layer: ...
    def apply_op(self, op_name: str, attrs: dict, args: list[TensorRef], span: Any, targets: Any = (),
                 written: Any = None) -> TensorRef: ...
    def apply(self, layer: Layer, args: list, call: ast.Call | None, targets: Any) -> Any: ...
    def apply_repeat(self, layers: list[Layer], args: Any, e: ast.Repeat, targets: Any) -> Any: ...
    def apply_scan(self, layer: Layer, header: dict[str, Any], args: Any, e: ast.Scan, targets: Any) -> Any: ...

_ARITH = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
          "//": operator.floordiv, "%": operator.mod, "**": operator.pow}
_COMPARE = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
            ">": operator.gt, ">=": operator.ge}
_TENSOR_OPS = {"+": "Add", "-": "Sub", "*": "Mul", "/": "Div", "@": "MatMul", "//": "FloorDiv", "%": "Mod",
               "**": "Pow"}
MAX_RANGE = 1 << 16


def _range(*args: int) -> range:
    """`range(stop)`, `range(start, stop[, step])`; made a list once its length is checked."""
    return range(*args)


def _make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of `divisor`, never below it and never more than 10%
    down: the rounding of MobileNet's width multiplier (torchvision's and TF's _make_divisible)."""
    if isinstance(divisor, bool) or not isinstance(divisor, int) or divisor < 1:
        raise ValueError("the divisor must be a positive int")
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


BUILTINS = {"make_divisible": _make_divisible, "sqrt": math.sqrt, "min": min, "max": max, "len": len, "int": int, "float": float, "range": _range}


def checked_number(value: Any, limits: Any, span: Any, what: str = "the result") -> Any:
    """A compile-time number that generated code can hold: a finite float, an int within
    ±limits.max_int.  Anything else is a diagnostic here, never a `nan` in the output."""
    if isinstance(value, complex):
        raise error(TYPE_ERROR, f"{what} {value} is a complex number", span,
                    hint="a negative number to a fractional power has no real value")
    if isinstance(value, float) and not math.isfinite(value):
        raise error(TYPE_ERROR, f"{what} is not a finite number ({value})", span,
                    hint="compile-time floats must stay finite: inf and nan cannot size or configure a layer")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > limits.max_int:
        raise error(RESOURCE_LIMIT, f"{what} is too large an integer ({len(str(abs(value)))} digits)", span,
                    hint=f"integers are limited to ±{limits.max_int} (2**62)")
    return value


# The function that evaluates each kind of expression (`Evaluator._binop` for ast.BinOp), looked up
# once per kind: eval() runs for every node of every expression.
_METHODS: dict[type, Any] = {}
_NOT_LOOKED_UP = object()
_INT_CLOSED = frozenset(("+", "-", "*", "//", "%"))     # int op int is an int (never raises but for / 0)
_TAKE_TARGETS = (ast.Call, ast.Repeat, ast.Scan, ast.BinOp)


class Evaluator:
    def __init__(self, builder: Builder, new_symbols: bool = False):
        self.b = builder
        self.new_symbols = new_symbols   # shape declarations may introduce symbols

    def eval(self, e: ast.Expr, targets: tuple[str, ...] = ()) -> Any:
        budget = self.b.budget      # Budget.step, inline: eval is the hottest call of elaboration
        budget.steps += 1
        if budget.steps > budget.limits.max_steps:
            budget.out_of_steps(e.span)
        kind = type(e)
        if kind is ast.Name:        # the commonest expression: _name's lookup, without its call
            found = self.b.lookup(e.id)
            return found if found is not None else self._name(e)
        method = _METHODS.get(kind)
        if method is None:
            method = _METHODS[kind] = getattr(Evaluator, "_" + kind.__name__.lower())
        if kind in _TAKE_TARGETS:
            return method(self, e, targets)
        return method(self, e)

    def _step(self, e: ast.Expr) -> None:
        """The step eval() counts for `e`, for the paths that evaluate it without eval()."""
        budget = self.b.budget
        budget.steps += 1
        if budget.steps > budget.limits.max_steps:
            budget.out_of_steps(e.span)

    # ---------------------------------------------------------- atoms
    def _int(self, e: ast.Int) -> int:
        if e.value > self.b.limits.max_int:
            raise error(RESOURCE_LIMIT, f"integer {e.value} is too large", e.span, hint=f"the limit is {self.b.limits.max_int}")
        return e.value

    def _float(self, e: ast.Float) -> float:
        if not math.isfinite(e.value):
            raise error(TYPE_ERROR, "number is not finite", e.span)
        return e.value

    def _str(self, e: ast.Str) -> str:
        self.b.budget.sequence(len(e.value), e.span)
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
        raise error(UNDEFINED_NAME, f"`{e.id}` is not defined", e.span, hint=hint)

    def _stardim(self, e: ast.StarDim) -> Any:
        raise error(INVALID_DIMENSION, f"`{e}` (any leading dimensions) may only begin a block input's shape", e.span,
                    hint="write it like `in x: [*, d]`; an output's shape follows from the ops")

    def _listlit(self, e: ast.ListLit) -> list:
        self.b.budget.sequence(len(e.items), e.span)
        return [self.eval(i) for i in e.items]

    # ---------------------------------------------------------- operators
    def _binop(self, e: ast.BinOp, targets: tuple[str, ...] = ()) -> Any:
        left, right = self.eval(e.left), self.eval(e.right)
        if isinstance(left, TensorRef) or isinstance(right, TensorRef):
            return self._tensor_binop(e, left, right, targets)
        if e.op == "@":
            raise error(TYPE_ERROR, "`@` multiplies tensors, not numbers", e.span)
        return self._number_binop(e, left, right)

    def _number_binop(self, e: ast.BinOp, left: Any, right: Any) -> Any:
        if type(left) is int and type(right) is int and e.op in _INT_CLOSED:
            # the commonest case (`d * 4 // 2`): what the checks below decide for two ints, without them
            if right == 0 and e.op != "+" and e.op != "-" and e.op != "*":
                raise error(DIVISION_BY_ZERO, "division by zero", e.right.span)
            return checked_number(_ARITH[e.op](left, right), self.b.limits, e.span)
        for v, side in ((left, e.left), (right, e.right)):
            if not _is_number(v) and not (e.op == "+" and isinstance(v, (str, list))):
                raise error(TYPE_ERROR, f"cannot apply `{e.op}` to a {kind_of(v)} ({show(v)})", side.span)
        if isinstance(left, (str, list)) or isinstance(right, (str, list)):
            if type(left) is not type(right):
                raise error(TYPE_ERROR, f"cannot add a {kind_of(left)} and a {kind_of(right)}", e.span)
            self.b.budget.sequence(len(left) + len(right), e.span)
            return left + right
        if e.op in ("/", "//", "%") and right == 0:
            raise error(DIVISION_BY_ZERO, "division by zero", e.right.span)
        if e.op == "**" and _is_number(right) and not isinstance(right, Dim) and abs(right) > 64:
            raise error(RESOURCE_LIMIT, f"exponent {right} is too large", e.right.span)
        if isinstance(left, Dim) or isinstance(right, Dim):
            try:
                return _ARITH[e.op](left, right)
            except TypeError as problem:       # a fractional or symbolic power
                raise error(TYPE_ERROR, f"`{e}`: {problem}", e.span) from None
        try:
            result = _ARITH[e.op](left, right)
        except OverflowError:
            raise error(TYPE_ERROR, f"`{e}` overflows: the result is too large for a float", e.span) from None
        except ZeroDivisionError:
            raise error(DIVISION_BY_ZERO, f"`{e}` divides by zero", e.span,
                        hint="zero to a negative power is 1 / 0") from None
        return checked_number(result, self.b.limits, e.span)

    def _tensor_binop(self, e: ast.BinOp, left: Any, right: Any, targets: tuple[str, ...] = ()) -> TensorRef:
        if isinstance(left, TensorRef) and isinstance(right, TensorRef):
            if e.op not in _TENSOR_OPS:
                raise error(TYPE_ERROR, f"`{e.op}` between two tensors is not supported", e.span,
                            hint="tensors combine with +, -, *, / and @")
            return self.b.apply_op(_TENSOR_OPS[e.op], {}, [left, right], e.span, targets)
        tensor, number = (left, right) if isinstance(left, TensorRef) else (right, left)
        number_expr = e.right if tensor is left else e.left
        if not _is_number(number) or isinstance(number, Dim):
            hint = "a dimension is not a number at compile time" if isinstance(number, Dim) else None
            raise error(TYPE_ERROR, f"cannot apply `{e.op}` to a tensor and a {kind_of(number)}", e.span, hint=hint)
        if e.op == "@":
            raise error(TYPE_ERROR, "`@` multiplies two tensors, not a tensor and a number", e.span)
        reverse = tensor is right
        if e.op in ("/", "//", "%") and not reverse and number == 0:
            raise error(DIVISION_BY_ZERO, "division by zero", e.right.span)
        if e.op == "*":
            factor = float(number)
            written = {"factor": ArgExpr("factor", number_expr, factor)}
            return self.b.apply_op("Scale", {"factor": factor}, [tensor], e.span, targets, written)
        if e.op == "/" and not reverse:
            factor = checked_number(1.0 / float(number), self.b.limits, e.right.span)
            inverse = ast.BinOp(e.span, "/", ast.Float(e.span, 1.0), number_expr)
            written = {"factor": ArgExpr("factor", inverse, factor)}
            return self.b.apply_op("Scale", {"factor": factor}, [tensor], e.span, targets, written)
        return self.b.apply_op("ScalarArith", {"op": e.op, "value": number, "reverse": reverse}, [tensor], e.span,
                               targets)

    def _compare(self, e: ast.Compare) -> bool:
        left, right = self.eval(e.left), self.eval(e.right)
        ordered = e.op not in ("==", "!=")
        for v, side in ((left, e.left), (right, e.right)):
            if isinstance(v, (TensorRef, Layer)) or (ordered and not _is_number(v)):
                raise error(TYPE_ERROR, f"cannot compare a {kind_of(v)} with `{e.op}`", side.span)
        try:
            return bool(_COMPARE[e.op](left, right))
        except SymbolicComparison:
            raise error(NOT_COMPILE_TIME, f"`{e}` depends on symbolic dimensions and cannot be decided at compile time",
                        e.span) from None

    def _boolop(self, e: ast.BoolOp) -> bool:
        left = self._need_bool(e.left)
        if e.op == "and":
            return left and self._need_bool(e.right)
        return left or self._need_bool(e.right)

    def _not(self, e: ast.Not) -> bool:
        return not self._need_bool(e.operand)

    def _neg(self, e: ast.Neg) -> Any:
        v = self.eval(e.operand)
        if isinstance(v, TensorRef):
            return self.b.apply_op("Neg", {}, [v], e.span)
        if not _is_number(v):
            raise error(TYPE_ERROR, f"cannot negate a {kind_of(v)}", e.span)
        return checked_number(-v, self.b.limits, e.span)

    def _ternary(self, e: ast.Ternary) -> Any:
        return self.eval(e.then) if self._need_bool(e.cond) else self.eval(e.orelse)

    def _index(self, e: ast.Index) -> Any:
        target, idx = self.eval(e.target), self.eval(e.index)
        if not isinstance(target, list):
            raise error(TYPE_ERROR, f"only lists can be indexed, not a {kind_of(target)}", e.target.span)
        if isinstance(idx, bool) or not isinstance(idx, int):
            raise error(TYPE_ERROR, f"list index must be an int, got {kind_of(idx)}", e.index.span)
        if not -len(target) <= idx < len(target):
            raise error(INDEX_OUT_OF_RANGE, f"index {idx} is out of range for a list of {len(target)}", e.index.span)
        return target[idx]

    def need_bool(self, e: ast.Expr) -> bool:
        return self._need_bool(e)

    def _need_bool(self, e: ast.Expr) -> bool:
        v = self.eval(e)
        if not isinstance(v, bool):
            raise error(TYPE_ERROR, f"expected a condition (true/false), got a {kind_of(v)} ({show(v)})", e.span)
        return v

    # ---------------------------------------------------------- calls
    def _call(self, e: ast.Call, targets: tuple[str, ...] = ()) -> Any:
        f = e.func
        if type(f) is ast.Call:     # `Linear(d, d)(x)`: what eval(f) does (a step, the call), without its dispatch
            self._step(f)
            func = self._call(f)
        else:
            func = self._callee(f)
        if isinstance(func, Callee):
            if func.kind == "builtin":
                return self._builtin(func.name, e)
            return self.b.configure(func, [(a.name, self.eval(a.value), a.span) for a in e.args], e)
        if isinstance(func, Layer):
            args = [self._tensor_arg(a) for a in e.args]
            return self.b.apply(func, args, e, targets)
        raise error(TYPE_ERROR, f"a {kind_of(func)} cannot be called", e.func.span,
                    hint="layers are configured and then applied: `Linear(512, 512)(x)`")

    def _callee(self, f: ast.Expr) -> Any:
        """What a call calls; a name nothing defines there is an unknown block or op."""
        found = self.b.lookup(f.id) if isinstance(f, ast.Name) and f.id not in BUILTINS else _NOT_LOOKED_UP
        if found is None:
            library = stdlib_module_defining(f.id)
            hint = (f"`{f.id}` is defined in the standard library: add `import {library}`" if library
                    else suggest(f.id, self.b.visible_names() | set(BUILTINS)))
            raise error(UNKNOWN_CALLEE, f"unknown block or op `{f.id}`", f.span,
                        hint=hint or "define it with `block`, or import the module that does")
        if found is not _NOT_LOOKED_UP:     # what eval(f) gives (a step, the lookup), without a second lookup
            self.b.budget.step(f.span)
            return found
        return self.eval(f)

    def _tensor_arg(self, a: ast.Arg) -> TensorRef | None:
        if a.name is not None:
            raise error(POSITIONAL_ONLY, "tensor arguments are positional", a.span)
        value = a.value
        if type(value) is ast.Name:     # the commonest argument: eval's step and lookup, without its dispatch
            self._step(value)
            v = self.b.lookup(value.id)
            if v is None:
                v = self._name(value)
        else:
            v = self.eval(value)
        if v is not None and not isinstance(v, TensorRef):
            raise error(EXPECTED_TENSOR, f"expected a tensor, got a {kind_of(v)} ({show(v)})", a.span,
                        hint="configure layers in the first parentheses, pass tensors in the second")
        return v

    def _builtin(self, name: str, e: ast.Call) -> Any:
        if any(a.name for a in e.args):
            raise error(POSITIONAL_ONLY, f"`{name}` takes positional arguments only", e.span)
        args = [self.eval(a.value) for a in e.args]
        try:
            if name == "len" and not (len(args) == 1 and isinstance(args[0], list)):
                raise TypeError("len takes one list")
            if name != "len" and not all(_is_number(a) and not isinstance(a, Dim) for a in args):
                raise TypeError(f"{name} takes numbers")
            result = BUILTINS[name](*args)
        except (TypeError, ValueError, OverflowError) as exc:
            raise error(TYPE_ERROR, f"bad arguments to `{name}`: {exc}", e.span) from None
        if isinstance(result, range):
            length = _range_length(result)
            if length > self.b.limits.max_range:
                raise error(RESOURCE_LIMIT, f"range of {length:,} values exceeds the limit of "
                            f"{self.b.limits.max_range:,}", e.span)
            return list(result)
        return checked_number(result, self.b.limits, e.span)

    def _repeat(self, e: ast.Repeat, targets: tuple[str, ...] = ()) -> Any:
        count = self.eval(e.count)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise error(BAD_REPEAT, f"repeat count must be a positive int, got {show(count)}", e.count.span,
                        hint="use // for integer division" if isinstance(count, float) else None)
        if count > self.b.limits.max_repeat:
            raise error(RESOURCE_LIMIT, f"repeat({count}) exceeds the limit of {self.b.limits.max_repeat}",
                        e.count.span)
        if not (isinstance(e.body, ast.Call) and isinstance(e.body.func, ast.Call)):
            raise error(BAD_REPEAT, "repeat needs a layer applied to inputs, like `repeat(6) Layer(...)(x)`", e.body.span)
        layers = []
        for i in range(count):
            self.b.budget.step(e.span)
            with self.b.scoped({e.index_name: i} if e.index_name else {}):
                layer = self.eval(e.body.func)
            if not isinstance(layer, Layer):
                raise error(BAD_REPEAT, f"repeat needs a layer, got a {kind_of(layer)}", e.body.func.span)
            layers.append(layer)
        args = [self._tensor_arg(a) for a in e.body.args]
        return self.b.apply_repeat(layers, args, e, targets)

    def _scan(self, e: ast.Scan, targets: tuple[str, ...] = ()) -> Any:
        header = self._scan_header(e)
        if not isinstance(e.body, ast.Call):
            raise error(BAD_SCAN, "scan needs a step block applied to inputs, like `scan(axis=1) Step(...)(xs, h0)`",
                        e.body.span)
        layer = self.eval(e.body.func)
        if isinstance(layer, Callee):
            raise error(BAD_SCAN, f"scan steps a configured block applied to its inputs, got the {layer.kind} "
                        f"`{layer.name}` alone", e.body.span, hint=f"like `scan(axis=1) {layer.name}(...)(xs, h0)`")
        if not (isinstance(layer, Layer) and layer.kind == "block"):
            what = f"the op {layer.target}" if isinstance(layer, Layer) else f"{kind_of(layer)} {show(layer)}"
            raise error(BAD_SCAN, f"scan steps a block, got {what}", e.body.func.span,
                        hint="put the op in a small step block: its outputs after the first are the carried state")
        args = [self._tensor_arg(a) for a in e.body.args]
        return self.b.apply_scan(layer, header, args, e, targets)

    def _scan_header(self, e: ast.Scan) -> dict[str, Any]:
        """`scan(axis=1, reverse=false)`: compile-time values; `axis` may be given positionally."""
        header: dict[str, Any] = {"axis": 1, "reverse": False}
        given: set[str] = set()
        for i, a in enumerate(e.args):
            name = a.name or ("axis" if i == 0 else None)
            if name not in header or name in given:
                got = f"`{name}` twice" if name in given else a.name or "a second positional value"
                raise error(BAD_SCAN, f"scan takes `axis` and `reverse`, got {got}", a.span,
                            hint="like `scan(axis=1, reverse=true)`")
            given.add(name)
            value = self.eval(a.value)
            want = bool if name == "reverse" else int
            if not isinstance(value, want) or (want is int and (isinstance(value, bool) or value < 0)):
                raise error(BAD_SCAN, f"scan's `{name}` must be a {'bool' if want is bool else 'non-negative int'}, "
                            f"got {show(value)}", a.value.span)
            header[name] = value
        return header


def _range_length(values: range) -> int:
    """len() of a range, which raises beyond sys.maxsize."""
    return max(0, -((values.start - values.stop) // values.step))


def _is_number(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) or isinstance(v, Dim)

