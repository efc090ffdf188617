"""The surface syntax as small frozen dataclasses, each carrying its Span.

`str()` of an expression prints dlc source, so AST dumps read like the spec.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, replace

from compiler.diagnostics import Span
from compiler.diagnostics.records import record

# How tightly each expression form binds, loosest first (mirrors grammar.lark).
# `str()` puts parentheses around an operand that binds more loosely than its
# position allows, so printed expressions parse back to the same tree.
TERNARY, OR, AND, NOT, COMPARE, SUM, PRODUCT, NEGATION, POWER, REPEAT, POSTFIX, ATOM = range(12)
_BINOP_PRECEDENCE = {"+": SUM, "-": SUM, "*": PRODUCT, "/": PRODUCT, "//": PRODUCT, "%": PRODUCT,
                     "@": PRODUCT, "**": POWER}


@record
class Node:
    span: Span


# ----------------------------------------------------------------- expressions
@record
class Expr(Node):
    @property
    def precedence(self) -> int:
        return ATOM


def _wrap(e: Expr, at_least: int) -> str:
    """`e` as source, parenthesized when it binds more loosely than `at_least`."""
    return f"({e})" if e.precedence < at_least else str(e)


@record
class Int(Expr):
    value: int

    def __str__(self) -> str:
        return str(self.value)


@record
class Float(Expr):
    value: float

    def __str__(self) -> str:
        return repr(self.value)


@record
class Str(Expr):
    value: str

    def __str__(self) -> str:
        return f'"{self.value}"'


@record
class Bool(Expr):
    value: bool

    def __str__(self) -> str:
        return "true" if self.value else "false"


@record
class NoneLit(Expr):
    def __str__(self) -> str:
        return "none"


@record
class Name(Expr):
    id: str

    def __str__(self) -> str:
        return self.id


@record
class ListLit(Expr):
    items: tuple[Expr, ...]

    def __str__(self) -> str:
        return "[" + ", ".join(map(str, self.items)) + "]"


@record
class BinOp(Expr):
    op: str
    left: Expr
    right: Expr

    @property
    def precedence(self) -> int:
        return _BINOP_PRECEDENCE[self.op]

    def __str__(self) -> str:
        if self.op == "**":     # right-associative, and its left side is a postfix expression
            return f"{_wrap(self.left, POSTFIX)} ** {_wrap(self.right, NEGATION)}"
        return f"{_wrap(self.left, self.precedence)} {self.op} {_wrap(self.right, self.precedence + 1)}"


@record
class Compare(Expr):
    op: str
    left: Expr
    right: Expr

    @property
    def precedence(self) -> int:
        return COMPARE

    def __str__(self) -> str:
        return f"{_wrap(self.left, SUM)} {self.op} {_wrap(self.right, SUM)}"


@record
class BoolOp(Expr):
    op: str  # "and" | "or"
    left: Expr
    right: Expr

    @property
    def precedence(self) -> int:
        return OR if self.op == "or" else AND

    def __str__(self) -> str:
        return f"{_wrap(self.left, self.precedence)} {self.op} {_wrap(self.right, self.precedence + 1)}"


@record
class Not(Expr):
    operand: Expr

    @property
    def precedence(self) -> int:
        return NOT

    def __str__(self) -> str:
        return f"not {_wrap(self.operand, NOT)}"


@record
class Neg(Expr):
    operand: Expr

    @property
    def precedence(self) -> int:
        return NEGATION

    def __str__(self) -> str:
        return f"-{_wrap(self.operand, NEGATION)}"


@record
class Ternary(Expr):
    cond: Expr
    then: Expr
    orelse: Expr

    @property
    def precedence(self) -> int:
        return TERNARY

    def __str__(self) -> str:
        return f"if {_wrap(self.cond, OR)} then {_wrap(self.then, OR)} else {self.orelse}"


@record
class Arg(Node):
    name: str | None
    value: Expr

    def __str__(self) -> str:
        return f"{self.name}={self.value}" if self.name else str(self.value)


@record
class Call(Expr):
    func: Expr
    args: tuple[Arg, ...]

    @property
    def precedence(self) -> int:
        return POSTFIX

    def __str__(self) -> str:
        return f"{_wrap(self.func, POSTFIX)}(" + ", ".join(map(str, self.args)) + ")"


@record
class Index(Expr):
    target: Expr
    index: Expr

    @property
    def precedence(self) -> int:
        return POSTFIX

    def __str__(self) -> str:
        return f"{_wrap(self.target, POSTFIX)}[{self.index}]"


@record
class Repeat(Expr):
    count: Expr
    index_name: str | None
    body: Expr

    @property
    def precedence(self) -> int:
        return REPEAT       # its body runs to the end of a postfix expression

    def __str__(self) -> str:
        idx = f", {self.index_name}" if self.index_name else ""
        return f"repeat({self.count}{idx}) {_wrap(self.body, POSTFIX)}"


@record
class Scan(Expr):
    """`scan(axis=1) Step(config)(xs, h0, memory)`: the step block applied at each position of
    `xs` along `axis`; the step's outputs after its first are carried into its next inputs."""

    args: tuple["Arg", ...]
    body: Expr

    @property
    def precedence(self) -> int:
        return REPEAT       # its body runs to the end of a postfix expression

    def __str__(self) -> str:
        return f"scan({', '.join(map(str, self.args))}) {_wrap(self.body, POSTFIX)}"


def is_literal(e: object) -> bool:
    """A constant as written (`3`, `-0.5`, `"relu"`, `[1, 2]`): no parameter can change it."""
    if isinstance(e, (Int, Float, Str, Bool, NoneLit)):
        return True
    if isinstance(e, Neg):
        return is_literal(e.operand)
    if isinstance(e, ListLit):
        return all(is_literal(i) for i in e.items)
    return False


def replace_names(e: Expr, text: Callable[[str], str]) -> Expr:
    """A copy of `e` whose names read `text(name)`: messages show values in place of names."""
    if isinstance(e, Name):
        return Name(e.span, text(e.id))
    changes = {}
    for f in fields(e):
        value = getattr(e, f.name)
        if isinstance(value, Expr):
            changes[f.name] = replace_names(value, text)
        elif isinstance(value, tuple) and value and isinstance(value[0], (Expr, Arg)):
            changes[f.name] = tuple(replace_names(v, text) if isinstance(v, Expr)
                                    else replace(v, value=replace_names(v.value, text)) for v in value)
    return replace(e, **changes) if changes else e


# ----------------------------------------------------------------- types
@record
class StarDim(Expr):
    """`*` or `*lead` first in an input's shape: any number of leading dimensions."""

    name: str | None = None

    def __str__(self) -> str:
        return "*" + (self.name or "")


@record
class TensorTypeExpr(Node):
    dims: tuple[Expr, ...]
    dtype: str | None

    def __str__(self) -> str:
        dims = "[" + ", ".join(map(str, self.dims)) + "]"
        return f"{dims} {self.dtype}" if self.dtype else dims


@record
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
@record
class Stmt(Node):
    pass


@record
class Require(Stmt):
    cond: Expr
    message: str | None


@record
class Input(Stmt):
    name: str
    type: TensorTypeExpr
    optional: bool


@record
class Output(Stmt):
    name: str
    type: TensorTypeExpr | None
    value: Expr | None


@record
class Assign(Stmt):
    targets: tuple[str, ...]
    value: Expr


@record
class Let(Stmt):
    name: str
    value: Expr


@record
class If(Stmt):
    cond: Expr
    then: tuple[Stmt, ...]
    orelse: tuple[Stmt, ...]


@record
class Path(Node):
    parts: tuple[str, ...]

    def __str__(self) -> str:
        return ".".join(self.parts)


@record
class Tie(Stmt):
    target: Path
    source: Path


@record
class Rename(Stmt):
    """`rename "reference.prefix.{i}." -> "our.prefix.{i}."`: checkpoint key mapping; with
    `as [1, 1, d]` the tensors under it are reshaped on load."""

    source: str
    target: str
    shape: "Expr | None" = None


@record
class Init(Stmt):
    """`init Linear.weight = normal(std=0.02)`, `init attention.output.weight = zeros`: how the
    parameters an op kind (or one named layer) holds are initialized, in this block and in every
    block inside it.  `scheme` is a name or a call of one of compiler.ops.init's schemes."""

    target: Path
    scheme: Expr


@record
class Decode(Stmt):
    """`decode logits from input_ids`: the model decodes autoregressively (it gets `generate()`),
    each step feeding the new ids to the input `tokens` and reading the next one's scores from the
    output `logits`; an encoder-decoder's other id input is the source."""

    logits: str
    tokens: str


@record
class For(Stmt):
    """`for i in range(n) { ... }`: unrolled at compile time, one pass over the body per value."""

    var: str
    iterable: Expr
    body: tuple[Stmt, ...]


# ----------------------------------------------------------------- top level
@record
class Param(Node):
    name: str
    type: ParamType
    default: Expr | None


@record
class Import(Node):
    names: tuple[tuple[str, Span], ...]


@record
class BlockDef(Node):
    is_model: bool
    name: str
    params: tuple[Param, ...]
    body: tuple[Stmt, ...]
    name_span: Span


@record
class ModelAlias(Node):
    name: str
    target: str
    args: tuple[Arg, ...]
    name_span: Span


@record
class Module(Node):
    """One parsed .dl file."""

    path: str
    imports: tuple[Import, ...]
    blocks: tuple[BlockDef, ...]
    aliases: tuple[ModelAlias, ...]
