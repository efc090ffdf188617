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
from compiler.syntax.fast_expressions import ExpressionParser, GiveUp

_STATEMENT_KEYWORDS = frozenset("require in out let if tie rename for init decode".split())
# After a tensor type lark's lexer tries these before names, and matches a prefix of a word.
_DTYPE_PREFIX = re.compile(r"float32|float16|bfloat16|float64|int64|int32|bool")
_TYPE_SUFFIX = re.compile(r"float32|float16|bfloat16|float64|int64|int32|bool|optional")
_DTYPES = frozenset("float32 float16 bfloat16 float64 int64 int32 bool".split())


class _Parser(ExpressionParser):
    """Types, statements and the top level; expressions come from ExpressionParser."""

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
                raise GiveUp
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
                raise GiveUp

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
            raise GiveUp
        method = _STATEMENT_METHODS.get(self.values[i])
        if method is not None:
            self.i += 1
            return method(self, self.start_of(i))
        return self.assign_stmt(self.start_of(i))

    def assign_stmt(self, start):
        targets = [self.values[self.name()]]
        while self.kinds[self.i] == ",":
            self.i += 1
            targets.append(self.values[self.name()])
        if self.kinds[self.i] != "=":       # self.expect("="), inline: one call a statement
            raise GiveUp
        self.i += 1
        value, h, c = self.expr()
        span = Span(self.file, start[0], start[1], c[2], c[3])    # self.span(start, c[2:]), without the slice
        if h >= self.max_height:            # self.height(1 + h), inline
            raise GiveUp
        return ast.Assign(span, tuple(targets), value), 1 + h

    def let_stmt(self, start):
        name = self.values[self.name()]
        self.expect("=")
        value, h, c = self.expr()
        return ast.Let(Span(self.file, start[0], start[1], c[2], c[3]), name, value), self.height(1 + h)

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

    def init_stmt(self, start):
        target = self.path()
        self.expect("=")
        scheme, h, c = self.expr()
        return ast.Init(self.span(start, c[2:]), target, scheme), self.height(1 + h)

    def decode_stmt(self, start):
        logits = self.name()
        if not self.word("from"):
            raise GiveUp
        tokens = self.name()
        node = ast.Decode(self.span(start, self.end_of(tokens)), self.values[logits], self.values[tokens])
        return node, 2

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
            raise GiveUp
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
            raise GiveUp
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


# The method of each statement keyword (`let` -> let_stmt), looked up once, not per statement.
_STATEMENT_METHODS = {keyword: getattr(_Parser, f"{keyword}_stmt") for keyword in _STATEMENT_KEYWORDS}


def parse_fast(text: str, file: str, max_nesting: int, max_digits: int) -> ast.Module | None:
    """The module lark would build from `text`, or None when this parser is not sure (lark
    parses it then, and reports whatever is wrong)."""
    try:
        return _Parser(text, file, max_nesting, max_digits).module()
    except (GiveUp, IndexError, RecursionError):
        return None
