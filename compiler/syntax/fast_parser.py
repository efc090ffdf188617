"""A hand-written recursive-descent parser for grammar.lark, tried before lark.

Why: lark's LALR parser builds a tree through about 30 reductions per line of a typical spec
(one per precedence level) and then transforms it, so a 20,000-line spec took ~7 s to parse;
this parser takes a fraction of that.  It is an accelerator, not a second definition of the
language: it accepts a subset of what lark accepts and builds the very same AST (spans
included, following lark's `propagate_positions` rules).  Whenever it is unsure it gives up
(`None`), and the caller parses with lark, which then also produces every syntax diagnostic.
`tests/test_fast_parser.py` compares the two on every spec, every diagnostic case and
thousands of mutants.

It gives up on: any syntax error; a keyword used where lark's contextual lexer could read it
either as a name or as a keyword; text after a tensor type that lark's lexer would split
(`bool_mask` right after `[B]` reads as `bool` + `_mask`); a number in a `tie` path; an
integer literal over the digit limit; a parse tree nested close to the nesting limit.
"""
from __future__ import annotations

import re

from compiler.diagnostics import Span
from compiler.syntax import ast

# One token per match, after the blanks before it (a line at a time: no token spans lines).
_TOKEN = re.compile(r"""[ \t\f\r]*(?:
    (\#.*) | ([0-9]+\.[0-9]*(?:[eE][-+]?[0-9]+)?|[0-9]+[eE][-+]?[0-9]+) | ([0-9]+)
  | ([A-Za-z_][A-Za-z0-9_]*) | ("[^"\\\n]*") | (\*\*|//|==|!=|<=|>=|->|[-+*/%@<>=(){}\[\],:.]) | ([^ \t\f\r]))""", re.VERBOSE)
_COMMENT, _OPERATOR, _ERROR = 1, 6, 7
_KIND_OF_GROUP = (None, "COMMENT", "FLOAT", "INT", "NAME", "STRING", "OP", "ERROR")

# Every keyword of grammar.lark: as a name, each one is ambiguous somewhere (lark's contextual
# lexer reads it as a keyword where the parser state accepts one), so a name spelled like a
# keyword sends the input to lark.
_KEYWORDS = frozenset("import block model require in out let if else tie rename as for then or and not "
                      "true false none repeat".split())
_STATEMENT_KEYWORDS = frozenset("require in out let if tie rename for".split())
# After a tensor type lark's lexer tries these before names, and matches a prefix of a word.
_DTYPE_PREFIX = re.compile(r"float32|float16|bfloat16|float64|int64|int32|bool")
_TYPE_SUFFIX = re.compile(r"float32|float16|bfloat16|float64|int64|int32|bool|optional")
_DTYPES = frozenset("float32 float16 bfloat16 float64 int64 int32 bool".split())
_COMPARISONS = frozenset(("==", "!=", "<=", ">=", "<", ">"))
_PRODUCTS = frozenset(("*", "//", "/", "%", "@"))
_BINARY = _COMPARISONS | _PRODUCTS | {"+", "-", "**"}
_LITERALS = {"true": (ast.Bool, True), "false": (ast.Bool, False)}
_NESTING_MARGIN = 4     # give up this far below the limit: lark's own check decides near it


class _GiveUp(Exception):
    """The input is not certainly in the subset this parser handles: lark decides."""


def _tokens(text: str) -> tuple[list[str], list[str], list[int], list[int]]:
    """Kinds (NAME, INT, FLOAT, STRING, or the operator itself), texts, lines and columns,
    ending with `$END`.  Whitespace is lark's `common.WS`; any other character gives up."""
    kinds: list[str] = []
    values: list[str] = []
    lines: list[int] = []
    cols: list[int] = []
    number = 0
    line = ""
    for number, line in enumerate(text.split("\n"), 1):
        for match in _TOKEN.finditer(line):
            group = match.lastindex
            if group == _COMMENT:
                continue
            if group == _ERROR:
                raise _GiveUp
            value = match.group(group)
            kinds.append(value if group == _OPERATOR else _KIND_OF_GROUP[group])
            values.append(value)
            lines.append(number)
            cols.append(match.start(group) + 1)
    kinds.append("$END")
    values.append("")
    lines.append(number)
    cols.append(len(line) + 1)
    return kinds, values, lines, cols


class _Parser:
    """One method per grammar rule.  Expression methods return (node, height, container):
    `height` is the node's height in lark's parse tree (its nesting check counts it), and
    `container` the (line, col, end_line, end_col) lark gives the node as a child: its own
    span, widened to the outermost parentheses around it."""

    def __init__(self, text: str, file: str, max_nesting: int, max_digits: int):
        self.kinds, self.values, self.lines, self.cols = _tokens(text)
        self.i = 0
        self.file = file
        self.max_height = max_nesting - _NESTING_MARGIN
        self.max_digits = max_digits

    # ------------------------------------------------------------------ tokens
    def expect(self, kind: str) -> int:
        i = self.i
        if self.kinds[i] != kind:
            raise _GiveUp
        self.i = i + 1
        return i

    def name(self) -> int:
        """A NAME token that is not spelled like a keyword; its index."""
        i = self.i
        if self.kinds[i] != "NAME" or self.values[i] in _KEYWORDS:
            raise _GiveUp
        self.i = i + 1
        return i

    def word(self, value: str) -> bool:
        if self.kinds[self.i] == "NAME" and self.values[self.i] == value:
            self.i += 1
            return True
        return False

    def start_of(self, i: int) -> tuple[int, int]:
        return self.lines[i], self.cols[i]

    def end_of(self, i: int) -> tuple[int, int]:
        return self.lines[i], self.cols[i] + len(self.values[i])

    def span(self, start: tuple[int, int], end: tuple[int, int]) -> Span:
        return Span(self.file, start[0], start[1], end[0], end[1])

    def token_span(self, i: int) -> Span:
        line, col = self.lines[i], self.cols[i]
        return Span(self.file, line, col, line, col + len(self.values[i]))

    def height(self, h: int) -> int:
        if h > self.max_height:
            raise _GiveUp
        return h

    # ------------------------------------------------------------------ expressions
    def expr(self):
        kind = self.kinds[self.i]
        if kind == "NAME" and self.values[self.i] in ("if", "not"):
            return self.ternary() if self.values[self.i] == "if" else self.boolean(0)
        if kind == "-":
            return self.boolean(0)
        # Most expressions are one operand (a name, a number, a call): parse it first, and go
        # down the precedence levels only when an operator follows (with it as their first operand).
        operand = self.postfix()
        kind = self.kinds[self.i]
        if kind in _BINARY or (kind == "NAME" and self.values[self.i] in ("or", "and")):
            return self.boolean(0, operand)
        return operand

    def ternary(self):
        first = self.i
        self.i += 1
        cond, hc, _ = self.expr()
        if not self.word("then"):
            raise _GiveUp
        then, ht, _ = self.expr()
        if not self.word("else"):
            raise _GiveUp
        orelse, he, c = self.expr()      # `ternary` on the right: an `if` again or an or_expr
        node = ast.Ternary(self.span(self.start_of(first), c[2:]), cond, then, orelse)
        return node, self.height(1 + max(hc, ht, he)), (*self.start_of(first), *c[2:])

    # Each level below takes the expression's first operand when `expr` parsed it already.
    def boolean(self, level: int, first=None):
        """or_expr (level 0) and and_expr (level 1): left-associative chains."""
        keyword = ("or", "and")[level]
        left = self.boolean(1, first) if level == 0 else self.negation(first)
        while self.kinds[self.i] == "NAME" and self.values[self.i] == keyword:
            self.i += 1
            right = self.boolean(1) if level == 0 else self.negation()
            left = self.binary(ast.BoolOp, keyword, left, right)
        return left

    def binary(self, cls, op: str, left, right):
        node = cls(Span(self.file, left[2][0], left[2][1], right[2][2], right[2][3]), op, left[0], right[0])
        return node, self.height(1 + max(left[1], right[1])), (*left[2][:2], *right[2][2:])

    def negation(self, first=None):
        if first is None and self.kinds[self.i] == "NAME" and self.values[self.i] == "not":
            start = self.i
            self.i += 1
            operand, h, c = self.negation()
            return self.prefixed(ast.Not, start, operand, h, c)
        left = self.arith(first)
        if self.kinds[self.i] in _COMPARISONS:        # non-associative: `a < b < c` is lark's error
            op = self.values[self.i]
            self.i += 1
            left = self.binary(ast.Compare, op, left, self.arith())
        return left

    def prefixed(self, cls, first: int, operand, h: int, c):
        start = self.start_of(first)
        return cls(self.span(start, c[2:]), operand), self.height(1 + h), (*start, *c[2:])

    def arith(self, first=None):
        left = self.term(first)
        while self.kinds[self.i] in ("+", "-"):
            op = self.values[self.i]
            self.i += 1
            left = self.binary(ast.BinOp, op, left, self.term())
        return left

    def term(self, first=None):
        left = self.factor(first)
        while self.kinds[self.i] in _PRODUCTS:
            op = self.values[self.i]
            self.i += 1
            left = self.binary(ast.BinOp, op, left, self.factor())
        return left

    def factor(self, first=None):
        if first is None and self.kinds[self.i] == "-":
            start = self.i
            self.i += 1
            operand, h, c = self.factor()
            return self.prefixed(ast.Neg, start, operand, h, c)
        left = first if first is not None else self.postfix()
        if self.kinds[self.i] == "**":                 # right-associative, `-` allowed on the right
            self.i += 1
            left = self.binary(ast.BinOp, "**", left, self.factor())
        return left

    def postfix(self):
        if self.kinds[self.i] == "NAME" and self.values[self.i] == "repeat":
            return self.repeat()
        node, h, c = self.atom()
        while True:
            kind = self.kinds[self.i]
            if kind == "(":
                self.i += 1
                args, ha = self.args(")")
                close = self.expect(")")
                end = self.end_of(close)
                node = ast.Call(self.span(c[:2], end), node, args)
                h, c = self.height(1 + max(h, ha)), (*c[:2], *end)
            elif kind == "[":
                self.i += 1
                index, hi, _ = self.expr()
                end = self.end_of(self.expect("]"))
                node = ast.Index(self.span(c[:2], end), node, index)
                h, c = self.height(1 + max(h, hi)), (*c[:2], *end)
            else:
                return node, h, c

    def repeat(self):
        first = self.i
        self.i += 1
        self.expect("(")
        count, hc, _ = self.expr()
        index_name = None
        if self.kinds[self.i] == ",":
            self.i += 1
            index_name = self.values[self.name()]
        self.expect(")")
        body, hb, c = self.postfix()
        start = self.start_of(first)
        node = ast.Repeat(self.span(start, c[2:]), count, index_name, body)
        return node, self.height(1 + max(hc, hb)), (*start, *c[2:])

    def args(self, close: str) -> tuple[tuple[ast.Arg, ...], int]:
        """`args` up to (not including) `close`; its height in lark's tree (0: no `args` node)."""
        items: list[ast.Arg] = []
        height = 0
        while self.kinds[self.i] != close:
            if self.kinds[self.i] == "NAME" and self.kinds[self.i + 1] == "=":
                first = self.name()
                self.i += 1
                value, h, c = self.expr()
                items.append(ast.Arg(self.span(self.start_of(first), c[2:]), self.values[first], value))
                h += 1
            else:
                value, h, _ = self.expr()
                items.append(ast.Arg(value.span, None, value))
            height = max(height, h)
            if self.kinds[self.i] != ",":
                break
            self.i += 1
        return tuple(items), (self.height(1 + height) if items else 0)

    def atom(self):
        i = self.i
        kind, value = self.kinds[i], self.values[i]
        self.i = i + 1
        if kind == "NAME":
            if value in _LITERALS:
                cls, literal = _LITERALS[value]
                node = cls(self.token_span(i), literal)
            elif value == "none":
                node = ast.NoneLit(self.token_span(i))
            elif value in _KEYWORDS:
                raise _GiveUp
            else:
                node = ast.Name(self.token_span(i), value)
        elif kind == "INT":
            if len(value) > self.max_digits:
                raise _GiveUp
            node = ast.Int(self.token_span(i), int(value))
        elif kind == "FLOAT":
            node = ast.Float(self.token_span(i), float(value))
        elif kind == "STRING":
            node = ast.Str(self.token_span(i), value[1:-1])
        elif kind == "(":
            node, h, _ = self.expr()
            close = self.expect(")")
            return node, h, (*self.start_of(i), *self.end_of(close))
        elif kind == "[":
            return self.list_literal(i)
        else:
            raise _GiveUp
        line, col = self.lines[i], self.cols[i]
        return node, 1, (line, col, line, col + len(value))

    def list_literal(self, first: int):
        items, height = [], 0
        while self.kinds[self.i] != "]":
            item, h, _ = self.expr()
            items.append(item)
            height = max(height, h)
            if self.kinds[self.i] != ",":
                break
            self.i += 1
        end = self.end_of(self.expect("]"))
        start = self.start_of(first)
        return ast.ListLit(self.span(start, end), tuple(items)), self.height(1 + height), (*start, *end)

    # ------------------------------------------------------------------ types
    def tensor_type(self, in_input: bool):
        """`[dims] DTYPE`; returns (node, height, end)."""
        first = self.expect("[")
        dims, height = [], 0
        if self.kinds[self.i] != "]":
            while True:
                if self.kinds[self.i] == "*":
                    star = self.i
                    self.i += 1
                    name = self.values[self.name()] if self.kinds[self.i] == "NAME" else None
                    dims.append(ast.StarDim(self.span(self.start_of(star), self.end_of(self.i - 1)), name))
                    h = 1
                else:
                    dim, h, _ = self.expr()
                    dims.append(dim)
                height = max(height, h)
                if self.kinds[self.i] != ",":
                    break
                self.i += 1
        last = self.expect("]")
        dtype = None
        if self.kinds[self.i] == "NAME" and _DTYPE_PREFIX.match(self.values[self.i]):
            if self.values[self.i] not in _DTYPES:
                raise _GiveUp
            last = self.i
            dtype = self.values[last]
            self.i += 1
        self.after_type(in_input)
        end = self.end_of(last)
        node = ast.TensorTypeExpr(self.span(self.start_of(first), end), tuple(dims), dtype)
        return node, self.height(1 + height), end

    def after_type(self, in_input: bool) -> None:
        """What follows a tensor type is read by lark's lexer with `optional` and the dtypes
        first: anything spelled like them, but for an input's `optional`, goes to lark."""
        i = self.i
        if self.kinds[i] == "NAME" and _TYPE_SUFFIX.match(self.values[i]):
            if not (in_input and self.values[i] == "optional"):
                raise _GiveUp

    def param_type(self):
        i = self.i
        if self.kinds[i] == "NAME":
            self.name()
            return ast.ParamType(self.token_span(i), self.values[i])
        if self.kinds[i] == "[":
            self.i += 1
            element = self.values[self.name()]
            end = self.end_of(self.expect("]"))
            return ast.ParamType(self.span(self.start_of(i), end), "list", element=element)
        self.expect("{")
        options = [self.values[self.expect("STRING")][1:-1]]
        while self.kinds[self.i] == ",":
            self.i += 1
            if self.kinds[self.i] == "}":
                break
            options.append(self.values[self.expect("STRING")][1:-1])
        end = self.end_of(self.expect("}"))
        return ast.ParamType(self.span(self.start_of(i), end), "enum", options=tuple(options))

    # ------------------------------------------------------------------ statements
    def body(self) -> tuple[list[ast.Stmt], int, tuple[int, int]]:
        """`{ stmt* }`: the statements, their greatest height, the end of `}`."""
        self.expect("{")
        stmts, height = [], 0
        while self.kinds[self.i] != "}":
            stmt, h = self.statement()
            stmts.append(stmt)
            height = max(height, h)
        return stmts, height, self.end_of(self.expect("}"))

    def statement(self) -> tuple[ast.Stmt, int]:
        i = self.i
        if self.kinds[i] != "NAME":
            raise _GiveUp
        keyword = self.values[i]
        if keyword in _STATEMENT_KEYWORDS:
            self.i += 1
            return getattr(self, f"{keyword}_stmt")(self.start_of(i))
        return self.assign_stmt(self.start_of(i))

    def assign_stmt(self, start):
        targets = [self.values[self.name()]]
        while self.kinds[self.i] == ",":
            self.i += 1
            targets.append(self.values[self.name()])
        self.expect("=")
        value, h, c = self.expr()
        return ast.Assign(self.span(start, c[2:]), tuple(targets), value), self.height(1 + h)

    def let_stmt(self, start):
        name = self.values[self.name()]
        self.expect("=")
        value, h, c = self.expr()
        return ast.Let(self.span(start, c[2:]), name, value), self.height(1 + h)

    def require_stmt(self, start):
        cond, h, c = self.expr()
        end, message = c[2:], None
        if self.kinds[self.i] == ",":
            self.i += 1
            string = self.expect("STRING")
            end, message = self.end_of(string), self.values[string][1:-1]
        return ast.Require(self.span(start, end), cond, message), self.height(1 + h)

    def in_stmt(self, start):
        name = self.values[self.name()]
        self.expect(":")
        ttype, h, end = self.tensor_type(in_input=True)
        optional = self.word("optional")
        if optional:
            end = self.end_of(self.i - 1)
        return ast.Input(self.span(start, end), name, ttype, optional), self.height(1 + h)

    def out_stmt(self, start):
        name_index = self.name()
        end, ttype, value, height = self.end_of(name_index), None, None, 0
        if self.kinds[self.i] == ":":
            self.i += 1
            ttype, height, end = self.tensor_type(in_input=False)
        if self.kinds[self.i] == "=":
            self.i += 1
            value, h, c = self.expr()
            end, height = c[2:], max(height, h)
        node = ast.Output(self.span(start, end), self.values[name_index], ttype, value)
        return node, self.height(1 + height)

    def if_stmt(self, start):
        cond, hc, _ = self.expr()
        then, ht, end = self.body()
        orelse, he = [], 0
        if self.word("else"):
            if self.kinds[self.i] == "NAME" and self.values[self.i] == "if":
                nested_start = self.start_of(self.i)
                self.i += 1
                nested, he = self.if_stmt(nested_start)
                orelse, end, he = [nested], (nested.span.end_line, nested.span.end_col), he + 1
            else:
                orelse, he, end = self.body()
                he += 1                     # the else_block node
        node = ast.If(self.span(start, end), cond, tuple(then), tuple(orelse))
        return node, self.height(1 + max(hc, ht, he))

    def path(self) -> ast.Path:
        first = self.name()
        parts = [self.values[first]]
        while self.kinds[self.i] == ".":
            self.i += 1
            part = self.i if self.kinds[self.i] == "INT" else self.name()
            self.i = part + 1
            parts.append(self.values[part])
        return ast.Path(self.span(self.start_of(first), self.end_of(self.i - 1)), tuple(parts))

    def tie_stmt(self, start):
        target = self.path()
        self.expect("=")
        source = self.path()
        end = (source.span.end_line, source.span.end_col)
        return ast.Tie(self.span(start, end), target, source), 2

    def rename_stmt(self, start):
        source = self.expect("STRING")
        self.expect("->")
        target = self.expect("STRING")
        end, shape, h = self.end_of(target), None, 0
        if self.word("as"):
            shape, h, c = self.expr()
            end = c[2:]
        node = ast.Rename(self.span(start, end), self.values[source][1:-1], self.values[target][1:-1], shape)
        return node, self.height(1 + h)

    def for_stmt(self, start):
        var = self.values[self.name()]
        if not self.word("in"):
            raise _GiveUp
        iterable, hi, _ = self.expr()
        stmts, hb, end = self.body()
        return ast.For(self.span(start, end), var, iterable, tuple(stmts)), self.height(1 + max(hi, hb))

    # ------------------------------------------------------------------ top level
    def module(self) -> ast.Module:
        imports, blocks, aliases = [], [], []
        first = last = None
        height = 0
        while self.kinds[self.i] != "$END":
            item, h = self.item()
            height = max(height, h)
            first = first or item.span
            last = item.span
            (imports if isinstance(item, ast.Import) else blocks if isinstance(item, ast.BlockDef)
             else aliases).append(item)
        self.height(1 + height)
        span = (Span(self.file, first.line, first.col, last.end_line, last.end_col) if first
                else Span(self.file, 1, 1, 1, 2))
        return ast.Module(span, self.file, tuple(imports), tuple(blocks), tuple(aliases))

    def item(self):
        i = self.i
        if self.word("import"):
            names = [self.name()]
            while self.kinds[self.i] == ",":
                self.i += 1
                names.append(self.name())
            span = self.span(self.start_of(i), self.end_of(names[-1]))
            return ast.Import(span, tuple((self.values[n], self.token_span(n)) for n in names)), 1
        if self.word("block"):
            return self.block(i, is_model=False)
        if not self.word("model"):
            raise _GiveUp
        if self.kinds[self.i + 1] == "=":
            return self.alias(i)
        return self.block(i, is_model=True)

    def block(self, first: int, is_model: bool):
        name = self.name()
        self.expect("(")
        params, height = [], 0
        while self.kinds[self.i] != ")":
            param, h = self.param()
            params.append(param)
            height = max(height, h)
            if self.kinds[self.i] != ",":
                break
            self.i += 1
        self.expect(")")
        stmts, hs, end = self.body()
        node = ast.BlockDef(self.span(self.start_of(first), end), is_model, self.values[name], tuple(params),
                            tuple(stmts), self.token_span(name))
        return node, self.height(1 + max(height, hs))

    def param(self) -> tuple[ast.Param, int]:
        name = self.name()
        self.expect(":")
        ptype = self.param_type()
        end, default, height = (ptype.span.end_line, ptype.span.end_col), None, 1
        if self.kinds[self.i] == "=":
            self.i += 1
            default, h, c = self.expr()
            end, height = c[2:], max(height, h)
        return ast.Param(self.span(self.start_of(name), end), self.values[name], ptype, default), 1 + height

    def alias(self, first: int):
        name = self.name()
        self.expect("=")
        target = self.name()
        self.expect("(")
        args, height = self.args(")")
        end = self.end_of(self.expect(")"))
        node = ast.ModelAlias(self.span(self.start_of(first), end), self.values[name], self.values[target], args,
                              self.token_span(name))
        return node, self.height(1 + height)


def parse_fast(text: str, file: str, max_nesting: int, max_digits: int) -> ast.Module | None:
    """The module lark would build from `text`, or None when this parser is not sure (lark
    parses it then, and reports whatever is wrong)."""
    try:
        return _Parser(text, file, max_nesting, max_digits).module()
    except (_GiveUp, IndexError, RecursionError):
        return None
