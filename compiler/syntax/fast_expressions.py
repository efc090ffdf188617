"""Tokens and expressions of the hand-written parser (compiler/syntax/fast_parser.py says why
it exists and when it gives up).  Expression methods return (node, height, container):
`height` is the node's height in lark's parse tree, which lark's nesting check counts, and
`container` the (line, col, end_line, end_col) lark's `propagate_positions` gives the node as
the child of a rule: its own span, widened to the outermost parentheses around it.
"""
from __future__ import annotations

import re

from compiler.diagnostics import Span
from compiler.syntax import ast

# One token per match, after the blanks before it, over the whole text (a newline is a match of
# its own, so lines are counted as the matches go by).  The alternatives are tried in order, so
# the commonest tokens (names, then operators) come first; each alternative is told apart by
# its first character but for FLOAT before INT (an INT is a FLOAT's prefix) and ERROR, last.
_TOKEN = re.compile(r"""[ \t\f\r]*(?:
    ([A-Za-z_][A-Za-z0-9_]*) | ([(){}\[\],:.+%@]|->?|==?|<=?|>=?|!=|\*\*?|//?) | (\n)
  | ([0-9]+\.[0-9]*(?:[eE][-+]?[0-9]+)?|[0-9]+[eE][-+]?[0-9]+) | ([0-9]+) | (\#[^\n]*) | ("[^"\\\n]*")
  | ([^ \t\f\r\n]))""", re.VERBOSE)
_OPERATOR, _NEWLINE, _COMMENT, _ERROR = 2, 3, 6, 8
_KIND_OF_GROUP = (None, "NAME", None, None, "FLOAT", "INT", None, "STRING", None)

# Every keyword of grammar.lark: as a name, each one is ambiguous somewhere (lark's contextual
# lexer reads it as a keyword where the parser state accepts one), so a name spelled like a
# keyword sends the input to lark.
_KEYWORDS = frozenset("import block model require in out let if else tie rename as for then or and not "
                      "true false none repeat scan".split())
_COMPARISONS = frozenset(("==", "!=", "<=", ">=", "<", ">"))
_PRODUCTS = frozenset(("*", "//", "/", "%", "@"))
_BINARY = _COMPARISONS | _PRODUCTS | {"+", "-", "**"}
_LITERALS = {"true": (ast.Bool, True), "false": (ast.Bool, False)}
_LEAVES = frozenset(("NAME", "INT", "FLOAT", "STRING"))    # the kinds of the one-token atoms
# Precedence levels, loosest first: or 0, and 1, not 2, comparisons 3 (non-associative), sums 4,
# products 5, unary minus 6, ** 7 (right-associative, its right operand a factor); the node class
# each binary level builds, and the highest level that may follow a node made at each level.
_NOT, _COMPARISON, _POWER = 2, 3, 7
_LEVEL_OF = {**dict.fromkeys(_COMPARISONS, 3), "+": 4, "-": 4, **dict.fromkeys(_PRODUCTS, 5), "**": 7}
_CLASS_OF_LEVEL = (ast.BoolOp, ast.BoolOp, None, ast.Compare, ast.BinOp, ast.BinOp, None, ast.BinOp)
_FOLLOWS = (0, 1, 2, 2, 4, 5, 6, 6)
_NESTING_MARGIN = 4     # give up this far below the limit: lark's own check decides near it


class GiveUp(Exception):
    """The input is not certainly in the subset this parser handles: lark decides."""


def tokens(text: str) -> tuple[list[str], list[str], list[int], list[int]]:
    """Kinds (NAME, INT, FLOAT, STRING, or the operator itself), texts, lines and columns,
    ending with `$END`.  Whitespace is lark's `common.WS`; any other character gives up."""
    kinds: list[str] = []
    values: list[str] = []
    lines: list[int] = []
    cols: list[int] = []
    number, line_start = 1, 0
    # the bound methods, looked up once: this loop runs once per token of the file
    add_kind, add_value, add_line, add_col = kinds.append, values.append, lines.append, cols.append
    kind_of_group = _KIND_OF_GROUP
    for match in _TOKEN.finditer(text):
        group = match.lastindex
        if group == _NEWLINE:
            number += 1
            line_start = match.end()
            continue
        if group >= _COMMENT:
            if group == _COMMENT:
                continue
            if group == _ERROR:
                raise GiveUp
        value = match[group]
        add_kind(kind_of_group[group] or value)      # an operator's kind is itself
        add_value(value)
        add_line(number)
        add_col(match.start(group) - line_start + 1)
    kinds.append("$END")
    values.append("")
    lines.append(number)
    cols.append(len(text) - line_start + 1)
    return kinds, values, lines, cols


class ExpressionParser:
    """The token cursor and one method per expression rule of grammar.lark."""

    def __init__(self, text: str, file: str, max_nesting: int, max_digits: int):
        self.kinds, self.values, self.lines, self.cols = tokens(text)
        self.i = 0
        self.file = file
        self.max_height = max_nesting - _NESTING_MARGIN
        self.max_digits = max_digits

    # ------------------------------------------------------------------ tokens
    def expect(self, kind: str) -> int:
        i = self.i
        if self.kinds[i] != kind:
            raise GiveUp
        self.i = i + 1
        return i

    def name(self) -> int:
        """A NAME token that is not spelled like a keyword; its index."""
        i = self.i
        if self.kinds[i] != "NAME" or self.values[i] in _KEYWORDS:
            raise GiveUp
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
            raise GiveUp
        return h

    # ------------------------------------------------------------------ expressions
    def expr(self):
        kind = self.kinds[self.i]
        if kind == "NAME":
            value = self.values[self.i]
            if value == "if":
                return self.ternary()
            if value == "not":
                return self.climb(0, self.negation(), _NOT)
        elif kind == "-":
            return self.climb(0, self.factor(), _POWER)
        # Most expressions are one operand (a name, a number, a call): parse it first, and climb
        # the operators only when one follows.
        operand = self.postfix()
        kind = self.kinds[self.i]
        if kind in _BINARY or (kind == "NAME" and self.values[self.i] in ("or", "and")):
            return self.climb(0, operand, _POWER)
        return operand

    def ternary(self):
        first = self.i
        self.i += 1
        cond, hc, _ = self.expr()
        if not self.word("then"):
            raise GiveUp
        then, ht, _ = self.expr()
        if not self.word("else"):
            raise GiveUp
        orelse, he, c = self.expr()      # `ternary` on the right: an `if` again or an or_expr
        node = ast.Ternary(self.span(self.start_of(first), c[2:]), cond, then, orelse)
        return node, self.height(1 + max(hc, ht, he)), (*self.start_of(first), *c[2:])

    # Binary operators by precedence climbing: one loop per operand instead of a call per
    # precedence level (or, and, not, comparison, sum, product, factor), building what those
    # rules build.  climb() extends `left` with the operators of levels min_level..max_level.
    def climb(self, min_level: int, left, max_level: int):
        kinds, values = self.kinds, self.values
        while True:
            op = kinds[self.i]
            if op == "NAME":
                op = values[self.i]
                level = 0 if op == "or" else 1 if op == "and" else -1
            else:
                level = _LEVEL_OF.get(op, -1)
            if level < min_level or level > max_level:
                return left
            self.i += 1
            right = self.factor() if level == _POWER else self.operand(level + 1)
            left = self.binary(_CLASS_OF_LEVEL[level], op, left, right)
            # the right operand took every operator above this level; a comparison takes no other
            max_level = _FOLLOWS[level]

    def operand(self, min_level: int):
        """The right operand of an operator of level min_level - 1: its own operators of levels
        min_level and above included; a `not` only where and_expr/or_expr expect one."""
        kind = self.kinds[self.i]
        if kind == "NAME" and self.values[self.i] == "not":
            if min_level > _NOT:
                raise GiveUp                  # `a + not b`: lark's error
            return self.climb(min_level, self.negation(), _NOT)
        return self.climb(min_level, self.factor() if kind == "-" else self.postfix(), _POWER)

    def negation(self):
        """`not` not_expr, at a `not`: its operand is a comparison (or another `not`)."""
        start = self.i
        self.i += 1
        kind = self.kinds[self.i]
        if kind == "NAME" and self.values[self.i] == "not":
            operand, h, c = self.negation()
        else:
            operand, h, c = self.climb(_COMPARISON, self.factor() if kind == "-" else self.postfix(), _POWER)
        return self.prefixed(ast.Not, start, operand, h, c)

    def binary(self, cls, op: str, left, right):
        (line, col, _, _), (_, _, end_line, end_col) = left[2], right[2]
        node = cls(Span(self.file, line, col, end_line, end_col), op, left[0], right[0])
        hl, hr = left[1], right[1]
        h = 1 + (hl if hl > hr else hr)
        if h > self.max_height:             # self.height(h), inline
            raise GiveUp
        return node, h, (line, col, end_line, end_col)

    def prefixed(self, cls, first: int, operand, h: int, c):
        start = self.start_of(first)
        return cls(self.span(start, c[2:]), operand), self.height(1 + h), (*start, *c[2:])

    def factor(self):
        """`-` factor | postfix (`**` factor)?"""
        if self.kinds[self.i] == "-":
            start = self.i
            self.i += 1
            operand, h, c = self.factor()
            return self.prefixed(ast.Neg, start, operand, h, c)
        left = self.postfix()
        if self.kinds[self.i] == "**":                 # right-associative, `-` allowed on the right
            self.i += 1
            left = self.binary(ast.BinOp, "**", left, self.factor())
        return left

    def postfix(self):
        i = self.i
        kind = self.kinds[i]
        if kind == "NAME" and self.values[i] in ("repeat", "scan"):
            return self.repeat() if self.values[i] == "repeat" else self.scan()
        if kind == "NAME" and self.values[i] not in _KEYWORDS:     # leaf(i) of a name, inline: the commonest atom
            self.i = i + 1
            value = self.values[i]
            line, col = self.lines[i], self.cols[i]
            c = (line, col, line, col + len(value))
            node, h = ast.Name(Span(self.file, *c), value), 1
        elif kind in _LEAVES:           # the common case, without atom()'s dispatch
            self.i = i + 1
            node, h, c = self.leaf(i)
        else:
            node, h, c = self.atom()
        kinds = self.kinds
        line, col = c[0], c[1]          # where every postfix node of this chain starts
        while True:
            kind = kinds[self.i]
            if kind == "(":
                self.i += 1
                args, ha = self.args(")")
                close = self.i                      # self.expect(")"), inline: two calls a layer
                if kinds[close] != ")":
                    raise GiveUp
                self.i = close + 1
                end_line, end_col = self.lines[close], self.cols[close] + len(self.values[close])
                node = ast.Call(Span(self.file, line, col, end_line, end_col), node, args)
                h = 1 + (h if h > ha else ha)
                if h > self.max_height:             # self.height(h), inline
                    raise GiveUp
                c = (line, col, end_line, end_col)
            elif kind == "[":
                self.i += 1
                index, hi, _ = self.expr()
                close = self.expect("]")
                end_line, end_col = self.lines[close], self.cols[close] + len(self.values[close])
                node = ast.Index(Span(self.file, line, col, end_line, end_col), node, index)
                h, c = self.height(1 + (h if h > hi else hi)), (line, col, end_line, end_col)
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

    def scan(self):
        first = self.i
        self.i += 1
        self.expect("(")
        args, ha = self.args(")")
        self.expect(")")
        body, hb, c = self.postfix()
        start = self.start_of(first)
        node = ast.Scan(self.span(start, c[2:]), args, body)
        return node, self.height(1 + max(ha, hb)), (*start, *c[2:])

    def args(self, close: str) -> tuple[tuple[ast.Arg, ...], int]:
        """`args` up to (not including) `close`; its height in lark's tree (0: no `args` node)."""
        items: list[ast.Arg] = []
        height = 0
        kinds = self.kinds
        while kinds[self.i] != close:
            i = self.i
            if kinds[i] == "NAME" and kinds[i + 1] == "=":
                first = self.name()
                self.i += 1
                value, h, c = self.expr()
                items.append(ast.Arg(self.span(self.start_of(first), c[2:]), self.values[first], value))
                h += 1
            elif kinds[i] in _LEAVES and (kinds[i + 1] == "," or kinds[i + 1] == close):
                # one token, the commonest argument: what expr() would build, without its descent
                self.i = i + 1
                text = self.values[i]
                if kinds[i] == "NAME" and text not in _KEYWORDS:      # leaf(i) of a name, inline
                    line, col = self.lines[i], self.cols[i]
                    value, h = ast.Name(Span(self.file, line, col, line, col + len(text)), text), 1
                else:
                    value, h, _ = self.leaf(i)
                items.append(ast.Arg(value.span, None, value))
            else:
                value, h, _ = self.expr()
                items.append(ast.Arg(value.span, None, value))
            height = max(height, h)
            if self.kinds[self.i] != ",":
                break
            self.i += 1
        if not items:
            return (), 0
        if height >= self.max_height:       # self.height(1 + height), inline
            raise GiveUp
        return tuple(items), 1 + height

    def atom(self):
        i = self.i
        kind = self.kinds[i]
        self.i = i + 1
        if kind == "(":
            node, h, _ = self.expr()
            close = self.expect(")")
            return node, h, (*self.start_of(i), *self.end_of(close))
        if kind == "[":
            return self.list_literal(i)
        return self.leaf(i)

    def leaf(self, i: int):
        """The atom of token `i` alone: a name or a literal (the caller moves past it)."""
        kind, value = self.kinds[i], self.values[i]
        line, col = self.lines[i], self.cols[i]
        end = col + len(value)
        span = Span(self.file, line, col, line, end)
        if kind == "NAME":
            if value not in _KEYWORDS:
                node = ast.Name(span, value)
            elif value in _LITERALS:
                cls, literal = _LITERALS[value]
                node = cls(span, literal)
            elif value == "none":
                node = ast.NoneLit(span)
            else:
                raise GiveUp
        elif kind == "INT":
            if len(value) > self.max_digits:
                raise GiveUp
            node = ast.Int(span, int(value))
        elif kind == "FLOAT":
            node = ast.Float(span, float(value))
        elif kind == "STRING":
            node = ast.Str(span, value[1:-1])
        else:
            raise GiveUp
        return node, 1, (line, col, line, end)

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
