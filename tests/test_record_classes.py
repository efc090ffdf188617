"""compiler/diagnostics/records.py's `record` makes the class `fast_init(dataclass(frozen=True))`
makes: the same fields, constructor signature, docstring, repr, equality, hash, immutability,
`replace` and pickling, for classes of every shape the compiler declares, and for each record
class the compiler defines."""
from __future__ import annotations

import copy
import dataclasses
import importlib
import inspect
import pickle
import pkgutil
from dataclasses import field

import pytest

import compiler
from compiler.diagnostics.records import fast_init, record


def _reference(cls):
    return fast_init(dataclasses.dataclass(frozen=True)(cls))


def _shapes(decorate):
    """Class shapes the compiler uses, each decorated by `decorate`, in one namespace."""
    @decorate
    class Base:
        span: int

    @decorate
    class Empty(Base):
        pass

    @decorate
    class Plain(Base):
        """A documented record."""
        name: str
        size: int = 3
        items: tuple = ()

    @decorate
    class Undocumented(Base):
        value: object
        extra: tuple = field(default_factory=tuple)
        hidden: int = field(default=0, repr=False, compare=False)
        late: int = field(default=7, init=False)

    @decorate
    class OwnMethods(Base):
        text: str

        def __str__(self) -> str:
            return self.text

        def __repr__(self) -> str:
            return f"<{self.text}>"

    @decorate
    class OwnEq(Base):
        key: int

        def __eq__(self, other):
            return isinstance(other, OwnEq) and other.key == self.key

    @decorate
    class OwnHash(Base):
        key: int

        def __hash__(self) -> int:
            return 12345

    return [Base, Empty, Plain, Undocumented, OwnMethods, OwnEq, OwnHash]


def _args(cls) -> list:
    return [f"v{i}" for i, p in enumerate(list(inspect.signature(cls).parameters.values()))
            if p.default is inspect.Parameter.empty]


def _behaviour(cls) -> dict:
    a, b = cls(*_args(cls)), cls(*_args(cls))
    described = {
        "name": cls.__name__, "doc": cls.__doc__, "signature": str(inspect.signature(cls)),
        "fields": [(f.name, f.type, f.default, f.init, f.repr, f.compare) for f in dataclasses.fields(cls)],
        "match_args": cls.__match_args__, "repr": repr(a), "str": str(a), "eq": a == b, "ne": a != b,
        "hash": hash(a) == hash(b), "dict": dict(a.__dict__), "params": repr(cls.__dataclass_params__),
        "unhashable": cls.__hash__ is None, "init_doc": cls.__init__.__doc__,
        "init_annotations": cls.__init__.__annotations__, "copied": copy.deepcopy(a) == a,
    }
    for action in (lambda: setattr(a, "span", 1), lambda: delattr(a, "span"), lambda: setattr(a, "new", 1)):
        with pytest.raises(dataclasses.FrozenInstanceError) as caught:
            action()
        described.setdefault("frozen", []).append(str(caught.value))
    if dataclasses.fields(cls):
        first = dataclasses.fields(cls)[0].name
        described["replaced"] = repr(dataclasses.replace(a, **{first: "other"}))
    return described


def test_record_makes_what_the_two_decorators_make():
    for made, expected in zip(_shapes(record), _shapes(_reference)):
        assert _behaviour(made) == _behaviour(expected), made.__name__


def test_a_frozen_record_cannot_have_a_mutable_subclass():
    base = _shapes(record)[0]
    with pytest.raises(TypeError, match="non-frozen"):
        dataclasses.dataclass(type("Child", (base,), {"__annotations__": {"x": "int"}}))


def _record_classes() -> list[type]:
    found = []
    for info in pkgutil.walk_packages(compiler.__path__, "compiler."):
        if info.name.startswith(("compiler.lsp", "compiler.pytest_plugin")):
            continue            # the language server needs its optional extra
        module = importlib.import_module(info.name)
        found += [c for c in vars(module).values() if isinstance(c, type) and c.__module__ == info.name
                  and getattr(c.__dict__.get("__init__"), "_fast_init", False)]
    return found


def test_every_record_class_behaves_as_a_frozen_dataclass():
    classes = _record_classes()
    assert len(classes) > 50           # the AST's, the IR's and the diagnostics' records
    for cls in classes:
        names = [p for p in inspect.signature(cls).parameters]
        values = [f"v{i}" for i in range(len(names))]       # every argument given: all picklable
        a = cls(*values)
        assert [f.name for f in dataclasses.fields(cls) if f.init] == names, cls
        assert cls.__dataclass_params__.frozen and cls.__dataclass_params__.eq, cls
        assert a == cls(*values) and hash(a) == hash(cls(*values)), cls
        if "__repr__" not in cls.__dict__:
            shown = ", ".join(f"{f.name}={getattr(a, f.name)!r}" for f in dataclasses.fields(cls) if f.repr)
            assert repr(a) == f"{cls.__qualname__}({shown})", cls
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(a, names[0] if names else "x", None)
        assert pickle.loads(pickle.dumps(a)) == a, cls
