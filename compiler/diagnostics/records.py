"""A faster constructor for frozen dataclasses, the records every stage builds by the hundred
thousand (spans, AST nodes, IR nodes, tensor types).

A frozen dataclass's generated `__init__` stores each field through `object.__setattr__`, a
global lookup and a call per field, which makes it about twice as slow as the store into the
instance's `__dict__` done here; on a 20,000-node check that difference was a tenth of a second.
The class stays exactly what `@dataclass(frozen=True)` made it (fields, defaults, equality, hash,
repr, pickling and the FrozenInstanceError on assignment): only `__init__` is replaced.
"""
from __future__ import annotations

import dataclasses
from typing import TypeVar

T = TypeVar("T")
_MISSING = dataclasses.MISSING


class _FactoryDefault:
    """The default of an argument whose field has a default_factory (shown as dataclasses shows it)."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _FactoryDefault()


def fast_init(cls: type[T]) -> type[T]:
    """Replace a frozen dataclass's `__init__` by one with the same signature and effect that
    writes the instance dict directly.  Classes using what it does not reproduce (`__post_init__`,
    `InitVar`, keyword-only fields, slots) keep their own."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or hasattr(cls, "__post_init__") or "__slots__" in cls.__dict__:
        return cls
    fields = dataclasses.fields(cls)
    if any(f.kw_only for f in fields) or len(fields) != len(getattr(cls, "__dataclass_fields__", {})):
        return cls      # InitVar and ClassVar pseudo-fields are in __dataclass_fields__ only
    cls.__init__ = _make_init(cls, fields)
    return cls


def _make_init(cls: type, fields: tuple[dataclasses.Field, ...]):
    namespace: dict[str, object] = {"_FACTORY": _FACTORY}
    source = _init_source(fields, namespace)
    exec(source, namespace)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    init.__annotations__ = dict(cls.__init__.__annotations__)     # so inspect.signature reads the same
    return init


def _field_value(f: dataclasses.Field, namespace: dict[str, object]) -> str:
    """The expression that gives field `f` its value inside the generated __init__."""
    if f.default is not _MISSING:
        namespace[f"_default_{f.name}"] = f.default
    if f.default_factory is not _MISSING:
        namespace[f"_factory_{f.name}"] = f.default_factory
        return (f"_factory_{f.name}() if {f.name} is _FACTORY else {f.name}" if f.init
                else f"_factory_{f.name}()")
    return f.name


def record(cls: type[T]) -> type[T]:
    """`fast_init(dataclass(frozen=True)(cls))`, made with three `exec`s instead of seven.

    A frozen dataclass costs about 1.4 ms to create: dataclasses compiles each method it adds
    (`__init__`, `__repr__`, `__eq__`, `__hash__`, `__setattr__`, `__delattr__`, and fast_init's
    `__init__` again) with an `exec` of its own, and a `dlc check` creates some seventy of these
    classes before it reads a line.  Here dataclasses collects the fields and adds only what
    freezing needs (its checks against the bases, `__setattr__`, `__delattr__`), and the other
    methods, with dataclasses' bodies, are compiled from one source.  The class is what the two
    decorators made: fields, `__dataclass_params__`, `__match_args__`, the generated docstring,
    equality, hash, repr (tests/test_record_classes.py compares the two).  What it does not reproduce
    (`__post_init__`, InitVar, keyword-only fields, slots) takes the two decorators."""
    if "__slots__" in cls.__dict__ or hasattr(cls, "__post_init__"):
        return fast_init(dataclasses.dataclass(frozen=True)(cls))
    doc = cls.__dict__.get("__doc__")
    cls.__doc__ = doc or "(set below)"        # spares dataclasses an inspect.signature of the bare class
    dataclasses.dataclass(init=False, repr=False, eq=False, frozen=True)(cls)
    params = cls.__dataclass_params__
    params.init = params.repr = params.eq = True
    fields = dataclasses.fields(cls)
    if any(f.kw_only for f in fields) or len(fields) != len(cls.__dataclass_fields__):
        raise TypeError(f"{cls.__name__}: keyword-only and pseudo-fields need @dataclass")
    namespace: dict[str, object] = {"_FACTORY": _FACTORY}
    exec("\n".join([_init_source(fields, namespace), *_method_sources(cls, fields)]), namespace)
    _install(cls, namespace, fields)
    if not doc:
        import inspect      # as dataclasses words a missing docstring: `Name(a: 'int', b: 'str' = 1)`
        cls.__doc__ = cls.__name__ + str(inspect.signature(cls)).replace(" -> None", "")
    return cls


def _init_source(fields: tuple[dataclasses.Field, ...], namespace: dict[str, object]) -> str:
    """The source of fast_init's `__init__`: each field stored straight into the instance's
    `__dict__` (a frozen dataclass's own `__init__` goes through `object.__setattr__` per field);
    defaults and factories are put in `namespace`, which the source is executed in."""
    params, stores = ["self"], []
    for f in fields:
        if not f.init and f.default_factory is _MISSING:
            continue        # dataclasses leaves it to the class attribute (its default), if any
        value = _field_value(f, namespace)
        if f.init:
            if f.default is not _MISSING:
                params.append(f"{f.name}=_default_{f.name}")
            elif f.default_factory is not _MISSING:
                params.append(f"{f.name}=_FACTORY")
            else:
                params.append(f.name)
        stores.append(f"    d[{f.name!r}] = {value}")
    return f"def __init__({', '.join(params)}):\n    d = self.__dict__\n" + "\n".join(stores or ["    pass"])


def _tuple(name: str, fields) -> str:
    return f"({''.join(f'{name}.{f.name},' for f in fields)})" if fields else "()"


def _method_sources(cls: type, fields: tuple[dataclasses.Field, ...]) -> list[str]:
    """dataclasses' own bodies of `__repr__`, `__eq__` and `__hash__`, where the class has none."""
    own = cls.__dict__
    found = []
    if "__repr__" not in own:
        shown = ", ".join(f"{f.name}={{self.{f.name}!r}}" for f in fields if f.repr)
        found.append(f"def __repr__(self):\n    return self.__class__.__qualname__ + f\"({shown})\"")
    compared = [f for f in fields if f.compare]
    if "__eq__" not in own:
        found.append(f"def __eq__(self, other):\n    if other.__class__ is self.__class__:\n"
                     f"        return {_tuple('self', compared)}=={_tuple('other', compared)}\n"
                     f"    return NotImplemented")
    explicit_hash = own.get("__hash__", _MISSING)
    if explicit_hash is _MISSING or (explicit_hash is None and "__eq__" in own):
        hashed = [f for f in fields if (f.compare if f.hash is None else f.hash)]
        found.append(f"def __hash__(self):\n    return hash({_tuple('self', hashed)})")
    return found


def _install(cls: type, namespace: dict[str, object], fields) -> None:
    import reprlib
    for name in ("__init__", "__repr__", "__eq__", "__hash__"):
        method = namespace.get(name)
        if method is None:
            continue
        method.__qualname__ = f"{cls.__qualname__}.{name}"
        if name == "__init__":
            method.__annotations__ = {**{f.name: f.type for f in fields if f.init}, "return": None}
            method._fast_init = True
        if name == "__repr__":
            method = reprlib.recursive_repr()(method)       # dataclasses' guard: a cycle prints `...`
        setattr(cls, name, method)
