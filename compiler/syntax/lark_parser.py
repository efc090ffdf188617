"""The reference parser: lark (LALR, positions on) builds the tree, `_ToAst` turns each rule
into the typed AST nodes, and lark's exceptions become DLC001 diagnostics.  compiler/syntax/
parser.py tries the hand-written parser first and comes here for whatever it leaves (every
syntax error among them), so `dlc check` of valid specs never imports lark."""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import lark
from lark import Token, Transformer, v_args

from compiler import disk_cache
from compiler.diagnostics import CompileError, Diagnostic, Span, error
from compiler.diagnostics.codes import RESOURCE_LIMIT, SYNTAX_ERROR
from compiler.syntax import ast
from compiler.syntax.parser import DEFAULT_LIMITS, SourceLimits


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
    # lark's own cache of its LALR tables (a file named by grammar and lark version) makes building
    # the parser several times cheaper; lark ignores a cache file it cannot read.
    folder = disk_cache.namespace("lark")
    cache: str | bool = False
    if folder is not None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            cache = str(folder / disk_cache.key_of(grammar, lark.__version__))
        except OSError:
            pass
    return lark.Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=True, cache=cache)


def _span(file: str, meta_or_tok) -> Span:
    m = meta_or_tok
    if getattr(m, "empty", False) or getattr(m, "line", None) is None:
        return Span(file, 1, 1, 1, 2)
    return Span(file, m.line, m.column, m.end_line, m.end_column)


@v_args(meta=True, inline=True)
class _ToAst(Transformer):
    def __init__(self, file: str, limits: SourceLimits = DEFAULT_LIMITS):
        super().__init__()
        self.file = file
        self.limits = limits

    def s(self, meta) -> Span:
        return _span(self.file, meta)

    # ------------------------------------------------------------- literals
    def int_lit(self, meta, tok):
        if len(tok) > self.limits.max_literal_digits:
            raise error(RESOURCE_LIMIT, f"an integer of {len(tok)} digits is too large", self.s(meta),
                        hint=f"literals have at most {self.limits.max_literal_digits} digits")
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

    def power(self, meta, left, op, right):
        return ast.BinOp(self.s(meta), str(op), left, right)

    def ternary(self, meta, cond, then, orelse):
        return ast.Ternary(self.s(meta), cond, then, orelse)

    def call(self, meta, func, args):
        return ast.Call(self.s(meta), func, tuple(args or ()))

    def index(self, meta, target, idx):
        return ast.Index(self.s(meta), target, idx)

    def repeat(self, meta, count, index_name, body):
        return ast.Repeat(self.s(meta), count, str(index_name) if index_name else None, body)

    def scan(self, meta, args, body):
        return ast.Scan(self.s(meta), tuple(args or ()), body)

    def args(self, meta, *items):
        return [i if isinstance(i, ast.Arg) else ast.Arg(i.span, None, i) for i in items if i is not None]

    def kwarg(self, meta, name, value):
        return ast.Arg(self.s(meta), str(name), value)

    # ------------------------------------------------------------- types
    def tensor_type(self, meta, *items):
        *dims, dtype = items
        return ast.TensorTypeExpr(self.s(meta), tuple(d for d in dims if d is not None),
                                  str(dtype) if dtype else None)

    def star_dim(self, meta, name=None):
        return ast.StarDim(self.s(meta), str(name) if name else None)

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

    def rename_stmt(self, meta, source, target, shape=None):
        return ast.Rename(self.s(meta), str(source)[1:-1], str(target)[1:-1], shape)

    def decode_stmt(self, meta, logits, tokens):
        return ast.Decode(self.s(meta), str(logits), str(tokens))

    def tie_stmt(self, meta, target, source):
        return ast.Tie(self.s(meta), target, source)

    def init_stmt(self, meta, target, scheme):
        return ast.Init(self.s(meta), target, scheme)

    def for_stmt(self, meta, var, iterable, *body):
        return ast.For(self.s(meta), str(var), iterable, tuple(body))

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


def _describe(terminal: str) -> str:
    """How a message names a terminal: keywords and punctuation as written."""
    if terminal in _TOKEN_NAMES:
        return _TOKEN_NAMES[terminal]
    pattern = _lark().get_terminal(terminal).pattern
    return f"'{pattern.value}'" if isinstance(pattern, lark.lexer.PatternStr) else terminal.lower()


# Where an expression could go on, listing every operator buries the useful alternatives.
_OPERATORS = {"COMP_OP", "ADD_OP", "MUL_OP", "POW_OP", "AND", "OR"}


def _expected(names) -> str:
    shown = sorted({"an operator" if n in _OPERATORS else _describe(n) for n in names if n != "COMMENT"})
    return ", ".join(shown[:8]) + (", ..." if len(shown) > 8 else "")


def _end_of_text(text: str, file: str) -> Span:
    """Just after the last non-blank character, so the caret lands on a real line."""
    body = text.rstrip()
    line = body.count("\n") + 1
    col = len(body.rsplit("\n", 1)[-1]) + 1
    return Span(file, line, col, line, col + 1)


_STATEMENT_KEYWORDS = ("REQUIRE", "IN", "OUT", "LET", "TIE", "RENAME", "FOR", "BLOCK", "MODEL", "IMPORT")


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
    for close, name in (("RPAR", "("), ("RSQB", "["), ("RBRACE", "{")):
        if close in expected and (tok is None or tok.type in ("$END", *_STATEMENT_KEYWORDS)):
            return f"check that every '{name}' has a matching '{_lark().get_terminal(close).pattern.value}'"
    return None


_TYPE_SUFFIX = re.compile(r"\]\s*(?:(float32|float16|bfloat16|float64|int64|int32|bool)\s*)?(optional)?\s*$")


def _taken_by_tensor_type(tok: Token, text: str) -> str | None:
    """`in x: [B, S]` then `bool = ...` on the next line: newlines do not end statements,
    so the name was read as the input's dtype (or `optional`)."""
    if tok.type != "EQUAL" or tok.start_pos is None:
        return None
    match = _TYPE_SUFFIX.search(text[: tok.start_pos])
    word = match and (match.group(2) or match.group(1))
    if not word:
        return None
    return f"`{word}` right after a tensor type is read as part of that type; give the value another name"


def _syntax_error(exc: lark.exceptions.LarkError, file: str, text: str) -> Diagnostic:
    if isinstance(exc, lark.UnexpectedToken):
        tok = exc.token
        if tok.type == "$END":
            span = _end_of_text(text, file)
            what = "unexpected end of file"
        else:
            span = Span(file, tok.line, tok.column, tok.end_line or tok.line,
                        tok.end_column or tok.column + len(str(tok)))
            what = f"unexpected {str(tok)!r}"
        # `accepts` replays the parser, so it drops the spurious look-aheads LALR merges into `expected`
        expected = set(exc.accepts or exc.expected)
        return Diagnostic(SYNTAX_ERROR, f"{what}; expected {_expected(expected)}", span,
                          hint=_syntax_hint(tok, expected) or _taken_by_tensor_type(tok, text))
    if isinstance(exc, lark.UnexpectedCharacters):
        span = Span(file, exc.line, exc.column, exc.line, exc.column + 1)
        char = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else "?"
        hint = {"'": "strings use double quotes",
                '"': "a string ends on its own line and holds no backslashes or double quotes"}.get(char)
        return Diagnostic(SYNTAX_ERROR, f"unexpected character {char!r}", span, hint=hint)
    if isinstance(exc, lark.UnexpectedEOF):
        return Diagnostic(SYNTAX_ERROR, "unexpected end of file", _end_of_text(text, file))
    return Diagnostic(SYNTAX_ERROR, f"cannot parse: {exc}", Span(file, 1, 1, 1, 2))


def _check_depth(tree: lark.Tree, file: str, limit: int) -> None:
    """The tree transform and the evaluator recurse, so bound how deeply the tree nests
    (chains like `1 + 1 + ...`, runs of `-` or `not`).  Iterative on purpose."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            raise error(RESOURCE_LIMIT, f"the expression nests deeper than {limit} levels", _span(file, node.meta),
                        hint="split it with `let` bindings")
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, lark.Tree))


def parse_with_lark(text: str, file: str, limits: SourceLimits) -> ast.Module:
    """The reference parser: every syntax diagnostic comes from here."""
    try:
        tree = _lark().parse(text)
    except lark.exceptions.LarkError as exc:
        raise CompileError(_syntax_error(exc, file, text)) from None
    _check_depth(tree, file, limits.max_nesting)
    try:
        return _ToAst(file, limits).transform(tree)
    except lark.exceptions.VisitError as exc:     # a rule refused its input with a diagnostic
        if isinstance(exc.orig_exc, CompileError):
            raise exc.orig_exc from None
        raise
