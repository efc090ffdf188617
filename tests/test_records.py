"""compiler/diagnostics/records.py: the faster constructor of frozen dataclasses behaves as the one
dataclasses generates (same signature, defaults, factories, equality, hash, frozenness, pickling),
checked against a twin class that keeps dataclasses' own."""
from __future__ import annotations

import dataclasses
import inspect
import pickle
from dataclasses import dataclass, field

import pytest

from compiler.diagnostics import Span
from compiler.diagnostics.records import fast_init
from compiler.ir.graph import Node
from compiler.syntax import ast


def _twins():
    @dataclass(frozen=True)
    class Base:
        span: str

    @dataclass(frozen=True)
    class Record(Base):
        a: int
        b: tuple = ()
        c: list = field(default_factory=list, hash=False)
        d: int = field(default=7, init=False)
        e: dict = field(default_factory=dict, init=False, hash=False)
        f: int = field(default=0, compare=False)

    fast = fast_init(dataclass(frozen=True)(type("Record", (Record,), {"__annotations__": {}})))
    plain = dataclass(frozen=True)(type("Record", (Record,), {"__annotations__": {}}))
    return fast, plain


CALLS = [(("s", 1), {}), (("s", 1, (2,)), {}), (("s",), {"a": 3, "c": [1], "f": 9}), ((), {"span": "t", "a": 0})]


@pytest.mark.parametrize("args, kwargs", CALLS)
def test_the_fast_constructor_builds_what_dataclasses_builds(args, kwargs):
    fast, plain = _twins()
    assert fast.__init__ is not plain.__init__
    assert str(inspect.signature(fast)) == str(inspect.signature(plain))
    made, reference = fast(*args, **kwargs), plain(*args, **kwargs)
    assert vars(made) == vars(reference)
    assert repr(made).split("(", 1)[1] == repr(reference).split("(", 1)[1]
    assert hash(made) == hash(fast(*args, **kwargs)) and made == fast(*args, **kwargs)
    assert pickle.loads(pickle.dumps(Span("f", 1, 2, 3, 4))) == Span("f", 1, 2, 3, 4)


def test_defaults_made_by_a_factory_are_fresh_per_instance():
    fast, _ = _twins()
    first, second = fast("s", 1), fast("s", 1)
    assert first.c == [] and first.c is not second.c and first.e is not second.e


def test_wrong_calls_fail_as_before():
    fast, plain = _twins()
    for cls in (fast, plain):
        with pytest.raises(TypeError):
            cls("s")                      # `a` is required
        with pytest.raises(TypeError):
            cls("s", 1, d=3)              # `d` is not an argument
        with pytest.raises(dataclasses.FrozenInstanceError):
            cls("s", 1).a = 2


def test_unsupported_classes_keep_their_constructor():
    @dataclass(frozen=True)
    class Checked:
        a: int

        def __post_init__(self) -> None:
            assert self.a > 0

    @dataclass
    class Mutable:
        a: int

    for cls in (Checked, Mutable):
        before = cls.__init__
        assert fast_init(cls).__init__ is before


def test_the_compilers_records_use_it_with_their_declared_fields():
    for cls in (Span, Node, ast.Name, ast.Call, ast.Assign, ast.Module):
        assert cls.__init__.__code__.co_filename == "<string>" and "__dict__" in cls.__init__.__code__.co_names
        names = [p for p in inspect.signature(cls).parameters]
        assert names == [f.name for f in dataclasses.fields(cls) if f.init]
    node = Node("n1", "op", "Linear", None, Span("f", 1, 1, 1, 2), ("x",))
    assert (node.module, node.order, node.guard, node.scan) == (None, 0, (), None)
