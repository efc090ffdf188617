"""AST nodes as layout documents (`compiler.syntax.layout`): the canonical spelling of each
construct, with the parentheses `ast`'s `str()` would print (none that are redundant) and
number literals spelled as the author wrote them (`1e-6` stays `1e-6`, not `1e-06`)."""
from __future__ import annotations

from collections.abc import Callable

from compiler.diagnostics import Span
from compiler.syntax import ast
from compiler.syntax.ast import NEGATION, NOT, OR, POSTFIX, SUM
from compiler.syntax.layout import Bracket, Doc, Text, seq

SourceText = Callable[[Span], str]      # the text a span covers


class Printer:
    """Builds the document of an expression or statement; `source` spells literals."""

    def __init__(self, source: SourceText):
        self.source = source

    # ------------------------------------------------------------- expressions
    def expr(self, e: ast.Expr) -> Doc:
        method = getattr(self, "_" + type(e).__name__.lower(), None)
        return method(e) if method else Text(str(e))

    def _wrap(self, e: ast.Expr, at_least: int) -> Doc:
        return seq("(", self.expr(e), ")") if e.precedence < at_least else self.expr(e)

    def _int(self, e: ast.Int) -> Doc:
        return Text(self.source(e.span))

    def _float(self, e: ast.Float) -> Doc:
        return Text(self.source(e.span))

    def _listlit(self, e: ast.ListLit) -> Doc:
        return Bracket("[", tuple(self.expr(i) for i in e.items), "]")

    def _binop(self, e: ast.BinOp) -> Doc:
        if e.op == "**":            # right-associative; its left side is a postfix expression
            return seq(self._wrap(e.left, POSTFIX), " ** ", self._wrap(e.right, NEGATION))
        return seq(self._wrap(e.left, e.precedence), f" {e.op} ", self._wrap(e.right, e.precedence + 1))

    def _compare(self, e: ast.Compare) -> Doc:
        return seq(self._wrap(e.left, SUM), f" {e.op} ", self._wrap(e.right, SUM))

    def _boolop(self, e: ast.BoolOp) -> Doc:
        return seq(self._wrap(e.left, e.precedence), f" {e.op} ", self._wrap(e.right, e.precedence + 1))

    def _not(self, e: ast.Not) -> Doc:
        return seq("not ", self._wrap(e.operand, NOT))

    def _neg(self, e: ast.Neg) -> Doc:
        return seq("-", self._wrap(e.operand, NEGATION))

    def _ternary(self, e: ast.Ternary) -> Doc:
        """`if a then b else if c then d else e` as one list that may break before each `else`."""
        items: list[Doc] = []
        keyword = "if "
        while isinstance(e, ast.Ternary):
            items.append(seq(keyword, self._wrap(e.cond, OR), " then ", self._wrap(e.then, OR)))
            e, keyword = e.orelse, "else if "
        items.append(seq("else ", self.expr(e)))
        return Bracket("", tuple(items), "", sep="")

    def arg(self, a: ast.Arg) -> Doc:
        return seq(f"{a.name}=", self.expr(a.value)) if a.name else self.expr(a.value)

    def _call(self, e: ast.Call) -> Doc:
        # `Block(config)(inputs)` and `repeat(n) Block(config)(inputs)`: the inputs may hang
        applies_layer = isinstance(e.func, (ast.Call, ast.Repeat, ast.Scan))
        return seq(self._wrap(e.func, POSTFIX), Bracket("(", tuple(map(self.arg, e.args)), ")", applies_layer))

    def _index(self, e: ast.Index) -> Doc:
        return seq(self._wrap(e.target, POSTFIX), "[", self.expr(e.index), "]")

    def _repeat(self, e: ast.Repeat) -> Doc:
        head: tuple[Doc, ...] = (self.expr(e.count),) + ((Text(e.index_name),) if e.index_name else ())
        return seq("repeat", Bracket("(", head, ")"), " ", self._wrap(e.body, POSTFIX))

    def _scan(self, e: ast.Scan) -> Doc:
        return seq("scan", Bracket("(", tuple(map(self.arg, e.args)), ")"), " ", self._wrap(e.body, POSTFIX))

    def tensor_type(self, t: ast.TensorTypeExpr) -> Doc:
        dims = Bracket("[", tuple(self.expr(d) for d in t.dims), "]")
        return seq(dims, f" {t.dtype}") if t.dtype else dims

    # ------------------------------------------------------------- statements
    def statement(self, s: ast.Stmt) -> Doc:
        """A simple statement (not `if` or `for`, whose bodies the formatter lays out)."""
        return getattr(self, "_stmt_" + type(s).__name__.lower())(s)

    def _stmt_require(self, s: ast.Require) -> Doc:
        message = (Text(f'"{s.message}"'),) if s.message is not None else ()
        return Bracket("require ", (self.expr(s.cond), *message), "")     # the message may go under the condition

    def _stmt_input(self, s: ast.Input) -> Doc:
        return seq(f"in {s.name}: ", self.tensor_type(s.type), " optional" if s.optional else "")

    def _stmt_output(self, s: ast.Output) -> Doc:
        parts: list[Doc | str] = [f"out {s.name}"]
        if s.type is not None:
            parts += [": ", self.tensor_type(s.type)]
        if s.value is not None:
            parts += [" = ", self.expr(s.value)]
        return seq(*parts)

    def _stmt_assign(self, s: ast.Assign) -> Doc:
        return seq(", ".join(s.targets) + " = ", self.expr(s.value))

    def _stmt_let(self, s: ast.Let) -> Doc:
        return seq(f"let {s.name} = ", self.expr(s.value))

    def _stmt_tie(self, s: ast.Tie) -> Doc:
        return Text(f"tie {s.target} = {s.source}")

    def _stmt_init(self, s: ast.Init) -> Doc:
        return seq(f"init {s.target} = ", self.expr(s.scheme))

    def _stmt_rename(self, s: ast.Rename) -> Doc:
        return Text(f'rename "{s.source}" -> "{s.target}"')

    def _stmt_decode(self, s: ast.Decode) -> Doc:
        return Text(f"decode {s.logits} from {s.tokens}")

    def if_header(self, s: ast.If, prefix: str = "") -> Doc:
        return seq(prefix + "if ", self.expr(s.cond), " {")

    def for_header(self, s: ast.For) -> Doc:
        return seq(f"for {s.var} in ", self.expr(s.iterable), " {")

    # ------------------------------------------------------------- top level
    def param(self, p: ast.Param) -> Doc:
        head = f"{p.name}: {p.type}"
        return seq(head + " = ", self.expr(p.default)) if p.default is not None else Text(head)

    def block_header(self, b: ast.BlockDef) -> Doc:
        keyword = "model" if b.is_model else "block"
        return seq(f"{keyword} {b.name}", Bracket("(", tuple(map(self.param, b.params)), ")"), " {")

    def alias(self, a: ast.ModelAlias) -> Doc:
        return seq(f"model {a.name} = {a.target}", Bracket("(", tuple(map(self.arg, a.args)), ")"))

    def import_(self, i: ast.Import) -> Doc:
        return Text("import " + ", ".join(name for name, _ in i.names))
