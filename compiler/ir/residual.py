"""Compile-time values that print as the expression that computed them.

Codegen emits one class per block definition, in its parameters' terms.  It hands
an op's lowering attributes whose numbers are `Residual`s: they compare and compute
as the concrete value the specialization was checked with, and print as the
parameter expression (`stride`, `4 * channels`), so lowerings need no second code
path.  A lowering that leaves out an argument at its default value prints it anyway
when it is a Residual (`is_residual`): another configuration may not have that value.
"""
from __future__ import annotations

from typing import Any, Callable


def is_residual(value: Any) -> bool:
    """Whether a value stands for a parameter expression (so it must be printed, whatever it is)."""
    return isinstance(value, Residual) or (isinstance(value, tuple) and any(isinstance(v, Residual) for v in value))


class Residual:
    """Marker base: a value that prints as the Python expression it was computed by.  The text
    is made when first printed, so only expressions that reach the code count as used."""

    _make_text: Callable[[], str]
    _text: str | None = None
    source: str = ""            # the spec expression, to tell whether two values are always equal
    _relied_on: bool = False    # a lowering used it in a way right for every configuration

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = self._make_text()
        return self._text


def _needs_parens(text: str) -> bool:
    """Whether `text` needs parentheses as an operand (it has an operator outside brackets)."""
    depth = 0
    for c in text:
        depth += c in "([{"
        depth -= c in ")]}"
        if depth == 0 and c in " ":
            return True
    return False


def _operand(value: Any) -> str:
    text = value.text if isinstance(value, Residual) else repr(value)
    return f"({text})" if _needs_parens(text) else text


def _multiple(one: "ResidualInt", value: int, count: int) -> "ResidualInt":
    made = ResidualInt(value, lambda: f"{count} * {_operand(one._unit)}")
    made.source, made._count, made._unit = one.source, count, one._unit
    return made


class ResidualInt(Residual, int):
    _count = 1                 # this value is _count times _unit (a sum of equal expressions)

    @property
    def _unit(self) -> "ResidualInt":
        return self.__dict__.get("_unit_value", self)

    @_unit.setter
    def _unit(self, value: "ResidualInt") -> None:
        self.__dict__["_unit_value"] = value

    def __new__(cls, value: int, text: str | Callable[[], str]) -> "ResidualInt":
        obj = int.__new__(cls, value)
        obj._make_text = text if callable(text) else (lambda: text)
        return obj

    def __repr__(self) -> str:
        return self.text

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return self.text if not spec else format(int(self), spec)

    def _combine(self, op: str, other: Any, value: int, reflected: bool = False) -> Any:
        if not isinstance(value, int):
            return value
        left, right = ((lambda: _operand(other)), (lambda: _operand(self)))
        if not reflected:
            left, right = right, left
        return ResidualInt(value, lambda: f"{left()} {op} {right()}")

    def __add__(self, other: Any) -> Any:
        if isinstance(other, ResidualInt) and other.source == self.source and self.source:
            return _multiple(self, int(self) + int(other), self._count + other._count)   # d_model + d_model = 2 * d_model
        return self._combine("+", other, int(self) + other)

    def __radd__(self, other: Any) -> Any:
        if isinstance(other, int) and not isinstance(other, Residual) and other == 0:
            return self         # sum() starts from 0
        return self._combine("+", other, other + int(self), reflected=True)

    def __sub__(self, other: Any) -> Any:
        return self._combine("-", other, int(self) - other)

    def __mul__(self, other: Any) -> Any:
        return self._combine("*", other, int(self) * other)

    def __rmul__(self, other: Any) -> Any:
        return self._combine("*", other, other * int(self), reflected=True)

    def __floordiv__(self, other: Any) -> Any:
        return self._combine("//", other, int(self) // other)

    def __hash__(self) -> int:
        return int.__hash__(self)


class ResidualFloat(Residual, float):
    def __new__(cls, value: float, text: str | Callable[[], str]) -> "ResidualFloat":
        obj = float.__new__(cls, value)
        obj._make_text = text if callable(text) else (lambda: text)
        return obj

    def __repr__(self) -> str:
        return self.text

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return self.text if not spec else format(float(self), spec)

    def __hash__(self) -> int:
        return float.__hash__(self)


def residual(value: Any, text: str | Callable[[], str], source: str = "") -> Any:
    """`value`, printing as `text`: numbers and flags.  Strings stay as they are: lowerings look
    them up (an activation's name), and a value used without being printed is checked by the
    generated constructor instead."""
    if isinstance(value, bool):
        made: Any = ResidualBool(value, text)
    elif isinstance(value, int):
        made = ResidualInt(value, text)
    elif isinstance(value, float):
        made = ResidualFloat(value, text)
    else:
        return value
    made.source = source
    return made


def equal_in_every_configuration(values: tuple) -> bool:
    """Whether values that are equal here are equal for any parameters: the same spec expression
    (or the same constant) each.  A lowering that relies on it (chunk for equal split sizes) marks
    them used, so no constructor check insists on this configuration's numbers."""
    if len({int(v) for v in values}) != 1:
        return False
    sources = {v.source if isinstance(v, Residual) else repr(int(v)) for v in values}
    if len(sources) != 1:
        return False
    for v in values:
        if isinstance(v, Residual):
            v._relied_on = True
    return True


class ResidualBool(Residual):
    """A flag that prints as its expression.  Not a bool (bool cannot be subclassed): it tests,
    compares and hashes as its value."""

    def __init__(self, value: bool, text: str | Callable[[], str]):
        self.value = value
        self._make_text = text if callable(text) else (lambda: text)

    def __bool__(self) -> bool:
        return self.value

    def __eq__(self, other: Any) -> bool:
        return self.value == other

    def __hash__(self) -> int:
        return hash(self.value)

    def __repr__(self) -> str:
        return self.text

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return self.text


def printed(value: Any) -> bool:
    """Whether a Residual (or any in a tuple) was printed as its expression."""
    if isinstance(value, tuple):
        return any(printed(v) for v in value)
    return isinstance(value, Residual) and (value._text is not None or value._relied_on)
