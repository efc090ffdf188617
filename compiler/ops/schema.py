"""Op attribute schemas that cost nothing at import and need pydantic only to explain a mistake.

An op's attributes are declared as a class of annotated fields, exactly as a pydantic model
would be (`in_features: PositiveInt`, `p: confloat(ge=0.0, lt=1.0) = 0.5`, `field_validator`),
and pydantic stays the one judge of what a schema accepts: each class has a pydantic *mirror*
(`pydantic_model(cls)`: the same fields, `strict=True, extra="forbid", frozen=True`), whose
errors are the diagnostics' wording.  What this module adds is a fast path in front of it:

- Defining a schema class records its field names and defaults; no type is evaluated and
  pydantic is not imported (pydantic and its model classes were most of a cold `dlc check`).
- Building an instance first runs a checker derived from the field types, for the types specs
  use (exact int/bool/str, float or int for float, `Literal` strings, bounds, `| None`,
  `tuple[X, ...]`, `Any`, before-validators and field validators).  The checker is sound but not
  complete: it accepts only values that pydantic's strict mode accepts, and gives the value pydantic
  gives (the value itself, a tuple rebuilt equal, the float of an int).  Anything
  else, every rejection included, is handed to the mirror, which returns the validated values
  or raises pydantic's `ValidationError`.  So an accepted value is pydantic's answer, and a
  rejected one carries pydantic's own message (tests/test_op_schema.py checks both paths agree).
- Instances behave as the frozen pydantic models they replace where the compiler uses them:
  equality and hashing by type and values, `repr`, `model_dump`, `model_copy`, `model_fields`
  (the mirror's, for the docs) and `model_fields_set`.
"""
from __future__ import annotations

import functools
import operator
import types
import typing
from typing import Annotated, Any, Callable, Literal

_MISSING = object()


class _Reject(Exception):
    """The fast path cannot accept a value: pydantic decides instead."""


# ------------------------------------------------------------------ field types, pydantic's names
class Constraint:
    """Bounds on a number, in `Annotated` metadata; `pydantic_type` is the pydantic type it stands
    for in the mirror (so its errors read exactly as pydantic's `PositiveInt` or `confloat`)."""

    def __init__(self, pydantic_type: Callable[[Any], Any], gt=None, ge=None, lt=None, le=None):
        self.pydantic_type = pydantic_type
        self.gt, self.ge, self.lt, self.le = gt, ge, lt, le

    def holds(self, value: float) -> bool:
        return ((self.gt is None or value > self.gt) and (self.ge is None or value >= self.ge)
                and (self.lt is None or value < self.lt) and (self.le is None or value <= self.le))


PositiveInt = Annotated[int, Constraint(lambda pydantic: pydantic.PositiveInt, gt=0)]
PositiveFloat = Annotated[float, Constraint(lambda pydantic: pydantic.PositiveFloat, gt=0)]


def confloat(*, gt=None, ge=None, lt=None, le=None):
    """A float within bounds: pydantic's `confloat`."""
    return Annotated[float, Constraint(lambda pydantic: pydantic.confloat(gt=gt, ge=ge, lt=lt, le=le),
                                       gt=gt, ge=ge, lt=lt, le=le)]


class BeforeValidator:
    """pydantic's `BeforeValidator`: `func` turns the raw value into one the field type accepts
    (or raises ValueError)."""

    def __init__(self, func: Callable[[Any], Any]):
        self.func = func


class _FieldCheck:
    """A `field_validator`-decorated classmethod, collected by the schema class."""

    def __init__(self, fields: tuple[str, ...], mode: str, method: classmethod):
        self.fields, self.mode, self.method = fields, mode, method


def field_validator(*fields: str, mode: str = "after"):
    """pydantic's `field_validator` (modes "after" and "before"), on a classmethod."""
    def decorate(method: classmethod) -> _FieldCheck:
        return _FieldCheck(fields, mode, method)
    return decorate


# ------------------------------------------------------------------ the fast checkers
def _exact(kind: type) -> Callable[[Any], Any]:
    def check(value):
        if type(value) is not kind:
            raise _Reject
        return value
    return check


def _accept(value):
    return value


def _float(value):
    # strict pydantic takes an int for a float field, as the float of it (exact below 2**53)
    if type(value) is float:
        return value
    if type(value) is int and -2**53 <= value <= 2**53:
        return float(value)
    raise _Reject


def _checker(hint) -> Callable[[Any], Any] | None:
    """A function that returns the value pydantic (strict) would give for `hint`, or raises
    _Reject; None where this module does not know the type (the class then always asks pydantic)."""
    if hint is Any:
        return _accept
    if hint is float:
        return _float
    if hint in (int, bool, str, type(None)):
        return _exact(hint)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return _literal(args)
    if origin in (typing.Union, types.UnionType):
        return _union([_checker(a) for a in args])
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return _tuple_of(_checker(args[0]))
    if origin is Annotated:
        return _annotated(hint.__origin__, hint.__metadata__)
    return None


def _literal(options: tuple) -> Callable[[Any], Any] | None:
    if not all(type(o) is str for o in options):
        return None
    allowed = frozenset(options)

    def check(value):
        if type(value) is not str or value not in allowed:
            raise _Reject
        return value
    return check


def _union(members: list) -> Callable[[Any], Any] | None:
    if any(m is None for m in members):
        return None
    members = sorted(members, key=lambda member: member is _float)

    def check(value):
        # Members accept exact types (a float member also an int), and pydantic's smart union
        # prefers the member the value's type matches exactly: so float members are tried last.
        for member in members:
            try:
                return member(value)
            except _Reject:
                continue
        raise _Reject
    return check


def _tuple_of(item) -> Callable[[Any], Any] | None:
    if item is None:
        return None

    def check(value):
        if type(value) is not tuple:
            raise _Reject
        return tuple(item(v) for v in value)
    return check


def _annotated(base, metadata: tuple) -> Callable[[Any], Any] | None:
    inner = _checker(base)
    if inner is None or len(metadata) != 1:
        return None
    meta = metadata[0]
    if isinstance(meta, Constraint):
        def bounded(value):
            value = inner(value)
            if not meta.holds(value):
                raise _Reject
            return value
        return bounded
    if isinstance(meta, BeforeValidator):
        def converted(value):
            try:
                value = meta.func(value)
            except Exception:
                raise _Reject from None
            return inner(value)
        return converted
    return None


# ------------------------------------------------------------------ the pydantic mirror
def _pydantic_hint(hint, pydantic):
    """`hint` with this module's markers replaced by the pydantic types they stand for."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        base, meta = hint.__origin__, hint.__metadata__
        if len(meta) == 1 and isinstance(meta[0], Constraint):
            return meta[0].pydantic_type(pydantic)
        converted = tuple(pydantic.BeforeValidator(m.func) if isinstance(m, BeforeValidator) else m for m in meta)
        return Annotated[(_pydantic_hint(base, pydantic), *converted)]
    if origin in (typing.Union, types.UnionType):
        # `|` again, as the source wrote it: the annotation the docs print stays the same
        return functools.reduce(operator.or_, [_pydantic_hint(a, pydantic) for a in args])
    if origin is tuple:
        return tuple[tuple(_pydantic_hint(a, pydantic) if a is not Ellipsis else a for a in args)]
    return hint


@functools.lru_cache(maxsize=None)
def pydantic_model(cls: type) -> type:
    """The pydantic model with `cls`'s fields, defaults, validators and config."""
    import pydantic
    schema = _schema(cls)
    fields = {name: (_pydantic_hint(schema.hints[name], pydantic), ... if default is _MISSING else default)
              for name, default in schema.defaults.items()}
    validators = {f"_check_{i}": pydantic.field_validator(*c.fields, mode=c.mode)(c.method)
                  for i, c in enumerate(schema.validators)}
    config = pydantic.ConfigDict(strict=True, extra="forbid", frozen=True, arbitrary_types_allowed=True)
    return pydantic.create_model(cls.__name__, __config__=config, __validators__=validators,
                                 __module__=cls.__module__, **fields)


# ------------------------------------------------------------------ a class's schema
class _Schema:
    """What validating `cls` needs: field types, defaults, checkers, validators."""

    def __init__(self, cls: type):
        self.hints = typing.get_type_hints(cls, include_extras=True)
        self.defaults = cls._defaults
        self.validators = cls._validators
        checkers = {name: _checker(self.hints[name]) for name in self.defaults}
        self.fast = None if any(c is None for c in checkers.values()) else checkers
        self.before = {f: c.method.__func__ for c in self.validators if c.mode == "before" for f in c.fields}
        self.after = {f: c.method.__func__ for c in self.validators if c.mode == "after" for f in c.fields}

    def quick(self, cls: type, given: dict[str, Any]) -> dict[str, Any] | None:
        """The validated values, or None where pydantic must decide."""
        if self.fast is None or not given.keys() <= self.defaults.keys():
            return None
        values = {}
        try:
            for name, default in self.defaults.items():
                if name not in given:
                    if default is _MISSING:
                        return None
                    values[name] = default
                    continue
                value = given[name]
                if name in self.before:
                    value = self.before[name](cls, value)
                value = self.fast[name](value)
                if name in self.after:
                    value = self.after[name](cls, value)
                values[name] = value
        except Exception:       # _Reject, or a validator's complaint: pydantic words it
            return None
        return values


def _schema(cls: type) -> _Schema:
    schema = cls.__dict__.get("_built")
    if schema is None:
        schema = _Schema(cls)
        cls._built = schema
    return schema


class _MirrorFields:
    """`Attrs.model_fields`: the mirror's pydantic FieldInfos (imports pydantic; docs and editors)."""

    def __get__(self, instance, owner):
        return pydantic_model(owner).model_fields


def _rebuild(cls: type, values: dict[str, Any], given: frozenset) -> Attrs:
    made = object.__new__(cls)
    object.__setattr__(made, "__dict__", dict(values))
    object.__setattr__(made, "_given", given)
    return made


class Attrs:
    """Base of every op's attribute schema: strict, closed, immutable (see the module docstring)."""

    __slots__ = ("__dict__", "_given")
    _defaults: dict[str, Any] = {}
    _validators: tuple[_FieldCheck, ...] = ()
    field_names: tuple[str, ...] = ()
    model_fields = _MirrorFields()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        defaults = dict(cls._defaults)
        for name in cls.__dict__.get("__annotations__", {}):
            if not name.startswith("_"):
                value = cls.__dict__.get(name, defaults.get(name, _MISSING))
                defaults[name] = value
                if name in cls.__dict__:
                    delattr(cls, name)      # instances hold the values; the class keeps no shadow
        checks = {name: c for base in reversed(cls.__mro__) for name, c in vars(base).items()
                  if isinstance(c, _FieldCheck)}        # a subclass's validator replaces one of that name
        cls._defaults, cls._validators = defaults, tuple(checks.values())
        cls.field_names = tuple(defaults)

    def __init__(self, **given: Any):
        cls = type(self)
        values = _schema(cls).quick(cls, given)
        if values is None:
            checked = pydantic_model(cls)(**given)       # raises pydantic.ValidationError
            values = {name: getattr(checked, name) for name in cls.field_names}
        object.__setattr__(self, "__dict__", values)
        object.__setattr__(self, "_given", frozenset(given))

    @property
    def model_fields_set(self) -> set[str]:
        return set(self._given)

    def model_dump(self, exclude_unset: bool = False, exclude_defaults: bool = False) -> dict[str, Any]:
        defaults = type(self)._defaults
        return {name: value for name, value in self.__dict__.items()
                if not (exclude_unset and name not in self._given)
                and not (exclude_defaults and defaults[name] is not _MISSING and defaults[name] == value)}

    def model_copy(self, update: dict[str, Any] | None = None) -> Attrs:
        """A copy with `update` applied, unvalidated (as pydantic's model_copy)."""
        update = update or {}
        return _rebuild(type(self), {**self.__dict__, **update}, self._given | frozenset(update))

    def __reduce__(self):
        return _rebuild, (type(self), self.__dict__, self._given)

    def __setattr__(self, name: str, value: Any) -> None:
        raise TypeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise TypeError(f"{type(self).__name__} is immutable")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Attrs):
            return NotImplemented
        return type(self) is type(other) and self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash((type(self), tuple(self.__dict__.values())))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.__dict__.items())})"


def validation_error() -> type[Exception]:
    """pydantic's ValidationError, imported on demand: for an `except` clause, whose expression
    Python evaluates only once an exception is on its way."""
    from pydantic import ValidationError
    return ValidationError
