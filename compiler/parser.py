"""Text -> AST.  Lark (LALR, positions on) builds the tree; `_ToAst` turns each
rule into a typed AST node; lark's exceptions become DLC001 diagnostics."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import lark
from lark import Token, Transformer, v_args

from . import ast
from .diagnostics import CompileError, Diagnostic, Span, error

MAX_SOURCE_BYTES = 2_000_000
MAX_NESTING = 200

_TOKEN_NAMES = {
    "NAME": "a name", "INT": "an integer", "FLOAT": "a number", "STRING": "a string",
    "LPAR": "'('", "RPAR": "')'", "LSQB": "'['", "RSQB": "']'", "LBRACE": "'{'",
    "RBRACE": "'}'", "COMMA": "','", "COLON": "':'", "EQUAL": "'='", "DOT": "'.'",
    "DTYPE": "a dtype (float32, int64, bool, ...)", "OPTIONAL": "'optional'",
    "COMP_OP": "a comparison", "ADD_OP": "'+' or '-'", "MUL_OP": "'*', '/', '//', '%' or '@'",
"$END": "end of file",
}


@lru_cache(maxsize=1)
def _lark() -> lark.Lark:
    grammar = (Path(__file__).parent / "grammar.lark").read_text()
    return lark.Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=True)


def _span(file: str, meta_or_tok) -> Span:
    m = meta_or_tok
    if getattr(m, "empty", False) or getattr(m, "line", None) is None:
        return Span(file, 1, 1, 1, 2)
    return Span(file, m.line, m.column, m.end_line, m.end_column)


@v_args(meta=True, inline=True)
class _ToAst(Transformer):
    def __init__(self, file: str):
        super().__init__()
        self.file = file

    def s(self, meta) -> Span:
        return _span(self.file, meta)

    # ------------------------------------------------------------- literals
    def int_lit(self, meta, tok):
        return ast.Int(self.s(meta), int(tok))

    def float_lit(self, meta, tok):
        return ast.Float(self.s(meta), float(tok))

    def string_lit(self, meta, tok):
        return ast.Str(self.s(meta), str(tok)[1:-1])

    def true_lit(self, meta):
        return ast.Bool(self.s(meta), True)

    def false_lit(self, meta):
        return ast.Bool(self.s(meta), False)

    def none_lit(self, meta):
        return ast.NoneLit(self.s(meta))

    def name(self, meta, tok):
        return ast.Name(self.s(meta), str(tok))

    def list_lit(self, meta, *items):
        return ast.ListLit(self.s(meta), tuple(i for i in items if i is not None))

    # ------------------------------------------------------------- operators
    def binop(self, meta, left, op, right):
        return ast.BinOp(self.s(meta), str(op), left, right)

    def compare(self, meta, left, op, right):
        return ast.Compare(self.s(meta), str(op), left, right)

    def or_op(self, meta, left, right):
        return ast.BoolOp(self.s(meta), "or", left, right)

    def and_op(self, meta, left, right):
        return ast.BoolOp(self.s(meta), "and", left, right)

    def not_op(self, meta, operand):
        return ast.Not(self.s(meta), operand)

    def neg(self, meta, operand):
        return ast.Neg(self.s(meta), operand)

    def power(self, meta, left, right):
        return ast.BinOp(self.s(meta), "**", left, right)

    def ternary(self, meta, cond, then, orelse):
        return ast.Ternary(self.s(meta), cond, then, orelse)

    def call(self, meta, func, args):
        return ast.Call(self.s(meta), func, tuple(args or ()))

    def index(self, meta, target, idx):
        return ast.Index(self.s(meta), target, idx)

    def repeat(self, meta, count, index_name, body):
        return ast.Repeat(self.s(meta), count, str(index_name) if index_name else None, body)

    def args(self, meta, *items):
        return [i if isinstance(i, ast.Arg) else ast.Arg(i.span, None, i) for i in items if i is not None]

    def kwarg(self, meta, name, value):
        return ast.Arg(self.s(meta), str(name), value)

    # ------------------------------------------------------------- types
    def tensor_type(self, meta, *items):
        *dims, dtype = items
        return ast.TensorTypeExpr(self.s(meta), tuple(d for d in dims if d is not None),
                                  str(dtype) if dtype else None)

    def scalar_type(self, meta, tok):
        return ast.ParamType(self.s(meta), str(tok))

    def list_type(self, meta, tok):
        return ast.ParamType(self.s(meta), "list", element=str(tok))

    def enum_type(self, meta, *options):
        return ast.ParamType(self.s(meta), "enum", options=tuple(str(o)[1:-1] for o in options if o))

    # ------------------------------------------------------------- statements
    def require_stmt(self, meta, cond, message):
        return ast.Require(self.s(meta), cond, str(message)[1:-1] if message else None)

    def input_stmt(self, meta, name, ttype, optional):
        return ast.Input(self.s(meta), str(name), ttype, optional is not None)

    def output_stmt(self, meta, name, ttype, value):
        return ast.Output(self.s(meta), str(name), ttype, value)

    def assign_stmt(self, meta, *items):
        *targets, value = items
        return ast.Assign(self.s(meta), tuple(str(t) for t in targets), value)

    def let_stmt(self, meta, name, value):
        return ast.Let(self.s(meta), str(name), value)

    def if_stmt(self, meta, cond, *rest):
        *then, orelse = rest
        return ast.If(self.s(meta), cond, tuple(then), tuple(orelse or ()))

    def else_block(self, meta, *stmts):
        return list(stmts)

    def else_if(self, meta, if_stmt):
        return [if_stmt]

    def path(self, meta, *parts):
        return ast.Path(self.s(meta), tuple(str(p) for p in parts))

    def rename_stmt(self, meta, source, target):
        return ast.Rename(self.s(meta), str(source)[1:-1], str(target)[1:-1])

    def tie_stmt(self, meta, target, source):
        return ast.Tie(self.s(meta), target, source)

    # ------------------------------------------------------------- top level
    def import_stmt(self, meta, *names):
        return ast.Import(self.s(meta), tuple((str(n), _span(self.file, n)) for n in names))

    def param(self, meta, name, ptype, default):
        return ast.Param(self.s(meta), str(name), ptype, default)

    def block_def(self, meta, name, *rest):
        return self._block(meta, False, name, rest)

    def model_def(self, meta, name, *rest):
        return self._block(meta, True, name, rest)

    def _block(self, meta, is_model: bool, name, rest):
        params = tuple(p for p in rest if isinstance(p, ast.Param))
        body = tuple(s for s in rest if isinstance(s, ast.Stmt))
        return ast.BlockDef(self.s(meta), is_model, str(name), params, body, _span(self.file, name))

    def model_alias(self, meta, name, target, args):
        return ast.ModelAlias(self.s(meta), str(name), str(target), tuple(args or ()),
                              _span(self.file, name))

    def start(self, meta, *items):
        imports = tuple(i for i in items if isinstance(i, ast.Import))
        blocks = tuple(i for i in items if isinstance(i, ast.BlockDef))
        aliases = tuple(i for i in items if isinstance(i, ast.ModelAlias))
        return ast.Module(self.s(meta), self.file, imports, blocks, aliases)


def _expected(names) -> str:
    shown = sorted({_TOKEN_NAMES.get(n, f"'{n.lower()}'") for n in names
                    if not n.startswith("__") and n != "COMMENT"})
    return ", ".join(shown[:8]) + (", ..." if len(shown) > 8 else "")


def _syntax_hint(tok: Token | None, expected: set[str]) -> str | None:
    value = str(tok) if tok is not None else ""
    if value == "if" or (value == "else" and "ELSE" not in expected):
        return "conditional expressions are written `if COND then A else B`"
    if value == "=" and "COMP_OP" in expected:
        return "use `==` to compare values"
    if tok is not None and tok.type == "NAME" and "RPAR" in expected and "COMMA" in expected:
        return "separate arguments with ','"
    if value in ("{", "}") and "RBRACE" not in expected:
        return "check that every '{' has a matching '}'"
    return None


def _syntax_error(exc: lark.exceptions.LarkError, file: str, text: str) -> Diagnostic:
    if isinstance(exc, lark.UnexpectedToken):
        tok = exc.token
        if tok.type == "$END":
            line = text.count("\n") + 1
            col = len(text.rsplit("\n", 1)[-1]) + 1
            span = Span(file, line, col, line, col + 1)
            what = "unexpected end of file"
        else:
            span = Span(file, tok.line, tok.column, tok.end_line or tok.line,
                        tok.end_column or tok.column + len(str(tok)))
            what = f"unexpected {str(tok)!r}"
        return Diagnostic("DLC001", f"{what}; expected {_expected(exc.expected)}", span,
                          hint=_syntax_hint(tok, set(exc.expected)))
    if isinstance(exc, lark.UnexpectedCharacters):
        span = Span(file, exc.line, exc.column, exc.line, exc.column + 1)
        char = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else "?"
        hint = "strings use double quotes" if char == "'" else None
        return Diagnostic("DLC001", f"unexpected character {char!r}", span, hint=hint)
    if isinstance(exc, lark.UnexpectedEOF):
        return Diagnostic("DLC001", "unexpected end of file", Span(file, 1, 1, 1, 2))
    return Diagnostic("DLC001", f"cannot parse: {exc}", Span(file, 1, 1, 1, 2))


def _check_nesting(text: str, file: str) -> None:
    """LALR itself copes with deep nesting, but our tree transform recurses."""
    depth, line, col = 0, 1, 0
    for ch in text:
        col += 1
        if ch == "\n":
            line, col = line + 1, 0
        elif ch in "([{":
            depth += 1
            if depth > MAX_NESTING:
                raise error("DLC013", f"brackets nested deeper than {MAX_NESTING} levels",
                            Span(file, line, col, line, col + 1))
        elif ch in ")]}":
            depth -= 1


def parse(text: str, file: str = "<string>") -> ast.Module:
    """Parse dlc source text; raises CompileError with a DLC001 diagnostic."""
    if len(text) > MAX_SOURCE_BYTES:
        raise error("DLC013", f"file is larger than {MAX_SOURCE_BYTES} bytes", Span(file, 1, 1, 1, 2))
    _check_nesting(text, file)
    try:
        tree = _lark().parse(text)
    except lark.exceptions.LarkError as exc:
        raise CompileError(_syntax_error(exc, file, text)) from None
    return _ToAst(file).transform(tree)


def read_source(path: Path, display: str) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise error("DLC010", f"cannot read {display}: {exc.strerror}", Span(display, 1, 1, 1, 2)) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise error("DLC001", "file is not UTF-8 text", Span(display, line, 1, line, 2),
                    hint="dlc specs are UTF-8 text files") from None


def parse_file(path: Path, display: str | None = None) -> ast.Module:
    display = display or str(path)
    return parse(read_source(path, display), display)
