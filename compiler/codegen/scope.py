"""The Python names of one block definition's compile-time names.

Parameters become constructor arguments, `let`s and `for` variables locals of
`__init__`; a name that `forward` reads (a head count, a dropout rate, the
condition of a static `if`) is also kept as an attribute, `self.heads`.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from compiler.codegen.expressions import Unprintable, to_python
from compiler.codegen.names import NameAllocator, reserved_attribute_names
from compiler.syntax import ast

# Names the generated __init__ itself uses, besides the module-level ones names.RESERVED holds.
_INIT_NAMES = {"super", "range", "len", "min", "max", "int", "float", "tuple", "list", "ValueError"}


def compile_time_names(stmts) -> list[str]:
    """The `let` and `for` names of a statement list, in source order, branches and bodies included."""
    found: list[str] = []
    for stmt in stmts:
        if isinstance(stmt, ast.Let):
            found.append(stmt.name)
        elif isinstance(stmt, ast.For):
            found += [stmt.var, *compile_time_names(stmt.body)]
        elif isinstance(stmt, ast.If):
            found += compile_time_names(stmt.then) + compile_time_names(stmt.orelse)
    return list(dict.fromkeys(found))


class Scope:
    """Python spellings of a definition's names, in `__init__` (locals) and `forward` (attributes)."""

    def __init__(self, block: ast.BlockDef, classes: dict[str, str], module_names: set[str]):
        self.block = block
        self.classes = classes                 # block name -> the class that `Name(...)` builds
        allocator = NameAllocator(_INIT_NAMES)
        self.params = {p.name: allocator.fresh(p.name) for p in block.params}
        self.locals = dict(self.params)
        for name in compile_time_names(block.body):
            self.locals.setdefault(name, allocator.fresh(name))
        self.local_names = allocator
        self.bound: dict[str, str] = {}        # repeat index variables while their comprehension prints
        self.index_names: dict[str, str] = {}
        self.unprintable = _unprintable_lets(block.body, self)
        attributes = NameAllocator(set(module_names) | reserved_attribute_names())
        self._attributes = attributes
        self.attributes: dict[str, str] = {}   # spec name -> attribute, for those forward reads

    def init_name(self, name: str, use: bool = True) -> str:
        if name in self.bound:
            return self.bound[name]
        if name in self.unprintable:
            raise Unprintable(name)
        if name in self.locals:
            return self.locals[name]
        if name in self.classes:
            return self.classes[name]
        raise Unprintable(name)

    def forward_name(self, name: str, use: bool = True) -> str:
        """`self.<attribute>` for a parameter or `let`; `forward` reads nothing else at compile time.
        `use=False` only asks whether it can: no attribute is made."""
        if name not in self.locals or name in self.unprintable or name in compile_time_loop_vars(self.block.body):
            raise Unprintable(name)
        if not use:
            return name
        if name not in self.attributes:
            self.attributes[name] = self._attributes.fresh(name)
        return f"self.{self.attributes[name]}"

    def local(self, name: str) -> str:
        """A local of the generated __init__ that no spec name takes; one per definition."""
        return self.index_name(name)

    def index_name(self, name: str) -> str:
        """The comprehension variable of a `repeat(n, name)`: one per definition, so every
        specialization prints the same line."""
        if name not in self.index_names:
            self.index_names[name] = self.local_names.fresh(name)
        return self.index_names[name]

    @contextmanager
    def binding(self, name: str | None, text: str) -> Iterator[None]:
        if name is None:
            yield
            return
        saved = dict(self.bound)
        self.bound[name] = text
        try:
            yield
        finally:
            self.bound = saved


def compile_time_loop_vars(stmts) -> set[str]:
    found: set[str] = set()
    for stmt in stmts:
        if isinstance(stmt, ast.For):
            found |= {stmt.var} | compile_time_loop_vars(stmt.body)
        elif isinstance(stmt, ast.If):
            found |= compile_time_loop_vars(stmt.then) | compile_time_loop_vars(stmt.orelse)
    return found


def _unprintable_lets(stmts, scope: Scope, found: set[str] | None = None) -> set[str]:
    """The `let`s with no Python form (a function the generated code lacks, a value of the input
    shapes), and those computed from them: the class cannot compute them, so the layer arguments
    that read them print as the values they had."""
    found = set() if found is None else found
    for stmt in stmts:
        if isinstance(stmt, ast.Let):
            try:
                to_python(stmt.value, lambda n: _probe(n, scope, found))
            except Unprintable:
                found.add(stmt.name)
        elif isinstance(stmt, ast.For):
            _unprintable_lets(stmt.body, scope, found)
        elif isinstance(stmt, ast.If):
            _unprintable_lets(stmt.then, scope, found)
            _unprintable_lets(stmt.orelse, scope, found)
    return found


def _probe(name: str, scope: Scope, unprintable: set[str]) -> str:
    if name in unprintable or (name not in scope.locals and name not in scope.classes):
        raise Unprintable(name)
    return name
