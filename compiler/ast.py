"""The surface syntax as small frozen dataclasses, each carrying its Span.

`str()` of an expression prints dlc source, so AST dumps read like the spec.
"""
from __future__ import annotations

from dataclasses import dataclass

from .diagnostics import Span


@dataclass(frozen=True)
class Node:
    span: Span


# ----------------------------------------------------------------- expressions
@dataclass(frozen=True)
class Expr(Node):
    pass


@dataclass(frozen=True)
class Int(Expr):
    value: int

    def __str__(self) -> str:
        return str(self.value)


@dataclass(frozen=True)
class Float(Expr):
    value: float

    def __str__(self) -> str:
        return repr(self.value)


@dataclass(frozen=True)
class Str(Expr):
    value: str

    def __str__(self) -> str:
        return f'"{self.value}"'


@dataclass(frozen=True)
class Bool(Expr):
    value: bool

    def __str__(self) -> str:
        return "true" if self.value else "false"


@dataclass(frozen=True)
class NoneLit(Expr):
    def __str__(self) -> str:
        return "none"


@dataclass(frozen=True)
class Name(Expr):
    id: str

    def __str__(self) -> str:
        return self.id


@dataclass(frozen=True)
class ListLit(Expr):
    items: tuple[Expr, ...]

    def __str__(self) -> str:
        return "[" + ", ".join(map(str, self.items)) + "]"


@dataclass(frozen=True)
class BinOp(Expr):
    op: str
    left: Expr
    right: Expr

    def __str__(self) -> str:
        return f"({self.left} {self.op} {self.right})"


@dataclass(frozen=True)
class Compare(Expr):
    op: str
    left: Expr
    right: Expr

    def __str__(self) -> str:
        return f"{self.left} {self.op} {self.right}"


@dataclass(frozen=True)
class BoolOp(Expr):
    op: str  # "and" | "or"
    left: Expr
    right: Expr

    def __str__(self) -> str:
        return f"({self.left} {self.op} {self.right})"


@dataclass(frozen=True)
class Not(Expr):
    operand: Expr

    def __str__(self) -> str:
        return f"not {self.operand}"


@dataclass(frozen=True)
class Neg(Expr):
    operand: Expr

    def __str__(self) -> str:
        return f"-{self.operand}"


@dataclass(frozen=True)
class Ternary(Expr):
    cond: Expr
    then: Expr
    orelse: Expr

    def __str__(self) -> str:
        return f"if {self.cond} then {self.then} else {self.orelse}"


@dataclass(frozen=True)
class Arg(Node):
    name: str | None
    value: Expr

    def __str__(self) -> str:
        return f"{self.name}={self.value}" if self.name else str(self.value)


@dataclass(frozen=True)
class Call(Expr):
    func: Expr
    args: tuple[Arg, ...]

    def __str__(self) -> str:
        return f"{self.func}(" + ", ".join(map(str, self.args)) + ")"


@dataclass(frozen=True)
class Index(Expr):
    target: Expr
    index: Expr

    def __str__(self) -> str:
        return f"{self.target}[{self.index}]"


@dataclass(frozen=True)
class Repeat(Expr):
    count: Expr
    index_name: str | None
    body: Expr

    def __str__(self) -> str:
        idx = f", {self.index_name}" if self.index_name else ""
        return f"repeat({self.count}{idx}) {self.body}"


# ----------------------------------------------------------------- types
@dataclass(frozen=True)
class TensorTypeExpr(Node):
    dims: tuple[Expr, ...]
    dtype: str | None

    def __str__(self) -> str:
        dims = "[" + ", ".join(map(str, self.dims)) + "]"
        return f"{dims} {self.dtype}" if self.dtype else dims


@dataclass(frozen=True)
class ParamType(Node):
    kind: str                       # "int" | "float" | "bool" | "str" | "list" | "enum"
    element: str | None = None      # list element type
    options: tuple[str, ...] = ()   # enum options

    def __str__(self) -> str:
        if self.kind == "list":
            return f"[{self.element}]"
        if self.kind == "enum":
            return "{" + ", ".join(f'"{o}"' for o in self.options) + "}"
        return self.kind


# ----------------------------------------------------------------- statements
@dataclass(frozen=True)
class Stmt(Node):
    pass


@dataclass(frozen=True)
class Require(Stmt):
    cond: Expr
    message: str | None


@dataclass(frozen=True)
class Input(Stmt):
    name: str
    type: TensorTypeExpr
    optional: bool


@dataclass(frozen=True)
class Output(Stmt):
    name: str
    type: TensorTypeExpr | None
    value: Expr | None


@dataclass(frozen=True)
class Assign(Stmt):
    targets: tuple[str, ...]
    value: Expr


@dataclass(frozen=True)
class Let(Stmt):
    name: str
    value: Expr


@dataclass(frozen=True)
class If(Stmt):
    cond: Expr
    then: tuple[Stmt, ...]
    orelse: tuple[Stmt, ...]


@dataclass(frozen=True)
class Path(Node):
    parts: tuple[str, ...]

    def __str__(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True)
class Tie(Stmt):
    target: Path
    source: Path


@dataclass(frozen=True)
class Rename(Stmt):
    """`rename "reference.prefix.{i}." -> "our.prefix.{i}."`: checkpoint key mapping."""

    source: str
    target: str


# ----------------------------------------------------------------- top level
@dataclass(frozen=True)
class Param(Node):
    name: str
    type: ParamType
    default: Expr | None


@dataclass(frozen=True)
class Import(Node):
    names: tuple[tuple[str, Span], ...]


@dataclass(frozen=True)
class BlockDef(Node):
    is_model: bool
    name: str
    params: tuple[Param, ...]
    body: tuple[Stmt, ...]
    name_span: Span


@dataclass(frozen=True)
class ModelAlias(Node):
    name: str
    target: str
    args: tuple[Arg, ...]
    name_span: Span


@dataclass(frozen=True)
class Module(Node):
    """One parsed .dl file."""

    path: str
    imports: tuple[Import, ...]
    blocks: tuple[BlockDef, ...]
    aliases: tuple[ModelAlias, ...]
