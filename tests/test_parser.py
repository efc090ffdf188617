"""The parser: every statement form, precedence, `str()` of expressions, spans,
syntax-error diagnostics, and property tests (printed ASTs parse back to the
same tree; arbitrary or mangled text never crashes the front end)."""
from __future__ import annotations

import dataclasses
import operator
import random
import re
import string
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.syntax import ast
from compiler.diagnostics import CompileError, Span
from compiler.driver import check
from compiler.syntax.parser import MAX_NESTING, parse
from tests.helpers import ROOT
from tests.fast_lane import examples


def parse_ok(text: str) -> ast.Module:
    return parse(text, "t.dl")


def syntax_error(text: str):
    with pytest.raises(CompileError) as info:
        parse(text, "t.dl")
    (diag,) = info.value.diagnostics
    return diag


def body(text: str) -> tuple[ast.Stmt, ...]:
    """The statements of a block whose body is `text`."""
    return parse_ok("block B() {\n" + text + "\n}").blocks[0].body


def expr(text: str) -> ast.Expr:
    return parse_ok(f"block B() {{ let v = {text} }}").blocks[0].body[0].value


def sexpr(e) -> str:
    """Structure as an s-expression, so precedence is visible without parentheses."""
    if isinstance(e, (ast.BinOp, ast.Compare, ast.BoolOp)):
        return f"({e.op} {sexpr(e.left)} {sexpr(e.right)})"
    if isinstance(e, ast.Not):
        return f"(not {sexpr(e.operand)})"
    if isinstance(e, ast.Neg):
        return f"(neg {sexpr(e.operand)})"
    if isinstance(e, ast.Ternary):
        return f"(if {sexpr(e.cond)} {sexpr(e.then)} {sexpr(e.orelse)})"
    if isinstance(e, ast.Call):
        return f"(call {sexpr(e.func)}" + "".join(f" {a.name + '=' if a.name else ''}{sexpr(a.value)}"
                                                  for a in e.args) + ")"
    if isinstance(e, ast.Index):
        return f"(index {sexpr(e.target)} {sexpr(e.index)})"
    if isinstance(e, ast.Repeat):
        return f"(repeat {sexpr(e.count)}{' ' + e.index_name if e.index_name else ''} {sexpr(e.body)})"
    if isinstance(e, ast.ListLit):
        return "[" + " ".join(sexpr(i) for i in e.items) + "]"
    return str(e)


def structure(node):
    """A node without its spans, for comparing trees parsed from different text."""
    if isinstance(node, Span):
        return None
    if dataclasses.is_dataclass(node):
        return (type(node).__name__,) + tuple(structure(getattr(node, f.name)) for f in dataclasses.fields(node)
                                              if f.name not in ("span", "name_span", "path"))
    if isinstance(node, (tuple, list)):
        return tuple(structure(n) for n in node)
    return node


# ---------------------------------------------------------------------- statement forms
def test_imports_and_their_name_spans():
    module = parse_ok("import attention, layers\nimport conv\n")
    assert [[n for n, _ in i.names] for i in module.imports] == [["attention", "layers"], ["conv"]]
    spans = [s for _, s in module.imports[0].names]
    assert [(s.line, s.col, s.end_col) for s in spans] == [(1, 8, 17), (1, 19, 25)]


def test_block_and_model_definitions_with_every_parameter_type():
    module = parse_ok('''
block Mix(a: int, b: float = 0.5, c: bool = true, d: str = "x", e: [int] = [1, 2],
          f: {"relu", "gelu",} = "gelu",) {
    in x: [B, a]
    out x
}
model M() { in y: [] int64
 out y }
''')
    mix, m = module.blocks
    assert (mix.name, mix.is_model, m.name, m.is_model) == ("Mix", False, "M", True)
    assert [p.name for p in mix.params] == list("abcdef")
    assert [str(p.type) for p in mix.params] == ["int", "float", "bool", "str", "[int]", '{"relu", "gelu"}']
    assert [str(p.default) if p.default else None for p in mix.params] == [None, "0.5", "true", '"x"', "[1, 2]", '"gelu"']
    assert mix.params[5].type.options == ("relu", "gelu")
    assert m.params == () and m.body[0].type.dims == () and m.body[0].type.dtype == "int64"
    assert (mix.name_span.line, mix.name_span.col) == (2, 7)


def test_model_alias():
    (alias,) = parse_ok("model Base = Transformer(layers=2, 512,)").aliases
    assert (alias.name, alias.target) == ("Base", "Transformer")
    assert [(a.name, str(a.value)) for a in alias.args] == [("layers", "2"), (None, "512")]
    assert parse_ok("model Empty = Transformer()").aliases[0].args == ()


def test_require_with_and_without_message():
    plain, with_message = body('require d % h == 0\nrequire d > 0, "d must be positive"')
    assert (str(plain.cond), plain.message) == ("d % h == 0", None)
    assert (str(with_message.cond), with_message.message) == ("d > 0", "d must be positive")


def test_inputs_with_dtypes_and_optional():
    a, b, c = body("in a: [B, S, d * 2]\nin b: [B, S] int64 optional\nin c: [B, 1, T, T] bool")
    assert (a.name, [str(d) for d in a.type.dims], a.type.dtype, a.optional) == ("a", ["B", "S", "d * 2"], None, False)
    assert (b.type.dtype, b.optional) == ("int64", True)
    assert (str(c.type), c.optional) == ("[B, 1, T, T] bool", False)


def test_output_forms():
    bare, typed, valued, both = body("out a\nout b: [B, d]\nout c = f(x)\nout e: [B] float16 = g(x)")
    assert (bare.name, bare.type, bare.value) == ("a", None, None)
    assert (str(typed.type), typed.value) == ("[B, d]", None)
    assert (valued.type, str(valued.value)) == (None, "f(x)")
    assert (str(both.type), str(both.value)) == ("[B] float16", "g(x)")


def test_assignments_lets_ties_and_renames():
    one, many, let, tie, rename = body(
        'y = Linear(4, 4)(x)\nq, k, v = Split([4, 4, 4])(x)\nlet n = 2 * d\n'
        'tie head.weight = blocks.0.embed.weight\nrename "encoder.layer.{i}." -> "layers.{i}."')
    assert (one.targets, str(one.value)) == (("y",), "Linear(4, 4)(x)")
    assert many.targets == ("q", "k", "v")
    assert (let.name, str(let.value)) == ("n", "2 * d")
    assert (tie.target.parts, tie.source.parts) == (("head", "weight"), ("blocks", "0", "embed", "weight"))
    assert (rename.source, rename.target) == ("encoder.layer.{i}.", "layers.{i}.")


def test_tie_path_with_consecutive_indices_is_not_a_float():
    (tie,) = body("tie a.0.1.w = b.w")
    assert tie.target.parts == ("a", "0", "1", "w")


def test_if_else_and_else_if():
    (plain,) = body("if a { x = 1 }")
    assert plain.orelse == ()
    (chain,) = body("if a { x = 1 } else if b { x = 2 } else { x = 3 }")
    (inner,) = chain.orelse
    assert isinstance(inner, ast.If) and str(inner.cond) == "b"
    assert [s.targets for s in inner.orelse] == [("x",)]
    (nested,) = body("if a { if b { } else { } }")
    assert isinstance(nested.then[0], ast.If)


def test_for_loops():
    (loop,) = body('for i in range(2, n) {\n  rename "h.{i}." -> "layers.{i}."\n  for j in [1, 2] { let k = i * j }\n}')
    assert (loop.var, str(loop.iterable)) == ("i", "range(2, n)")
    rename, inner = loop.body
    assert isinstance(rename, ast.Rename) and (inner.var, str(inner.iterable)) == ("j", "[1, 2]")
    assert (inner.span.line, inner.span.col) == (4, 3)


def test_empty_file_and_comment_only_file():
    for text in ("", "\n\n", "# nothing here\n   # at all"):
        module = parse_ok(text)
        assert (module.imports, module.blocks, module.aliases) == ((), (), ())


def test_comments_anywhere_and_hash_inside_strings():
    (block,) = parse_ok('''# leading
block B(a: int = 1,  # after a parameter
        b: str = "not # a comment") {  # after the brace
    # a whole line
    require a > 0, "#1 # 2"   # trailing
}  # after the block
''').blocks
    assert block.params[1].default.value == "not # a comment"
    assert block.body[0].message == "#1 # 2"


def test_trailing_commas():
    (block,) = parse_ok('block B(a: int, b: {"x", "y",},) { let l = [1, 2,]\n let c = f(1, k=2,) }').blocks
    assert len(block.params) == 2 and block.params[1].type.options == ("x", "y")
    assert str(block.body[0].value) == "[1, 2]"
    assert str(block.body[1].value) == "f(1, k=2)"


def test_newlines_are_not_significant():
    (block,) = parse_ok("block\nB\n(\na\n:\nint\n)\n{\nout\ny\n=\nf\n(\na\n)\n}").blocks
    assert str(block.body[0].value) == "f(a)"


def test_keywords_are_whole_words():
    stmts = body("in input: [B]\nnotable = iffy(orange, android, inner)\nlet outer = repeated + true_")
    assert stmts[0].name == "input"
    assert str(stmts[1].value) == "iffy(orange, android, inner)"
    assert str(stmts[2].value) == "repeated + true_"


# ---------------------------------------------------------------------- expressions
@pytest.mark.parametrize("text, tree", [
    ("1 + 2 * 3", "(+ 1 (* 2 3))"),
    ("1 * 2 + 3", "(+ (* 1 2) 3)"),
    ("a - b - c", "(- (- a b) c)"),
    ("a / b // c % d @ e", "(@ (% (// (/ a b) c) d) e)"),
    ("2 ** 3 ** 2", "(** 2 (** 3 2))"),
    ("-a ** 2", "(neg (** a 2))"),
    ("a ** -b", "(** a (neg b))"),
    ("- - a", "(neg (neg a))"),
    ("a + b == c * d", "(== (+ a b) (* c d))"),
    ("not a == b", "(not (== a b))"),
    ("a or b and not c", "(or a (and b (not c)))"),
    ("a and b or c and d", "(or (and a b) (and c d))"),
    ("a or b or c", "(or (or a b) c)"),
    ("if a then b else c + 1", "(if a b (+ c 1))"),
    ("if a then b else if c then d else e", "(if a b (if c d e))"),
    ("if a or b then 1 else 2", "(if (or a b) 1 2)"),
    ("(if a then b else c) + 1", "(+ (if a b c) 1)"),
    ("f(x)(y)[0]", "(index (call (call f x) y) 0)"),
    ("-f(x)[1]", "(neg (index (call f x) 1))"),
    ("Linear(d, k=2 * d)(x)", "(call (call Linear d k=(* 2 d)) x)"),
    ("repeat(n) L(d)(x)", "(repeat n (call (call L d) x))"),
    ("repeat(n, i) L(i)(x) + y", "(+ (repeat n i (call (call L i) x)) y)"),
    ("(1 + 2) * 3", "(* (+ 1 2) 3)"),
    ("[1, a + b, [c]]", "[1 (+ a b) [c]]"),
    ("x @ y", "(@ x y)"),
    ("a <= b", "(<= a b)"),
    ("a != b", "(!= a b)"),
])
def test_precedence(text, tree):
    assert sexpr(expr(text)) == tree


@pytest.mark.parametrize("text", [
    "1 + 2 * 3", "(1 + 2) * 3", "a - (b - c)", "a - b - c", "2 ** 3 ** 2", "(2 ** 3) ** 2", "(-a) ** 2",
    "-a ** 2", "(not a) == b", "not a == b", "(a == b) == c", "(a or b) and c", "not (a and b)",
    "(if a then b else c) + 1", "if (if a then b else c) then d else e", "(repeat(2) L()(x))(y)",
    "repeat(2, i) L(i)(x)", "f(k=1 + 2, v)", '["s", 1.5, none, true, false, []]', "x[0][1]", "-(-a)",
    "Linear(d, d)(x) * 2.0", "a // b % c",
])
def test_str_prints_minimal_parenthesised_source(text):
    """`str()` of an expression is dlc source with only the parentheses it needs."""
    e = expr(text)
    assert str(e) == text.replace("-(-a)", "--a")
    assert structure(expr(str(e))) == structure(e)


def test_literals():
    assert [type(expr(t)).__name__ for t in ("1", "1.5", "2e3", "1.5e-3", '"s"', "true", "false", "none", "n")] == \
        ["Int", "Float", "Float", "Float", "Str", "Bool", "Bool", "NoneLit", "Name"]
    assert expr("007").value == 7 and expr("2e3").value == 2000.0 and expr("1.").value == 1.0
    assert expr('""').value == ""


# ---------------------------------------------------------------------- spans
def test_statement_and_expression_spans():
    text = ("block B(d: int) {\n"
            "    in x: [B, d]\n"
            "    y = Linear(d, d)(x)\n"
            "    out z = y +\n"
            "        y\n"
            "}\n")
    block = parse_ok(text).blocks[0]
    inp, assign, out = block.body
    assert (block.span.line, block.span.col, block.span.end_line, block.span.end_col) == (1, 1, 6, 2)
    assert (inp.span.line, inp.span.col, inp.span.end_col) == (2, 5, 17)
    assert (inp.type.span.line, inp.type.span.col, inp.type.span.end_col) == (2, 11, 17)
    assert (assign.span.line, assign.span.col, assign.span.end_col) == (3, 5, 24)
    call = assign.value
    assert (call.span.col, call.span.end_col) == (9, 24)
    assert (call.func.span.col, call.func.span.end_col) == (9, 21)          # Linear(d, d)
    assert (call.func.func.span.col, call.func.func.span.end_col) == (9, 15)  # Linear
    assert (call.args[0].span.col, call.args[0].span.end_col) == (22, 23)   # x
    assert (out.span.line, out.span.end_line, out.span.end_col) == (4, 5, 10)
    assert (out.value.left.span.line, out.value.right.span.line, out.value.right.span.col) == (4, 5, 9)
    assert all(s.file == "t.dl" for s in (block.span, inp.span, call.span))


def test_param_and_kwarg_spans():
    block = parse_ok("model M(vocab: int = 10,\n        d: int) {}").blocks[0]
    vocab, d = block.params
    assert (vocab.span.line, vocab.span.col, vocab.span.end_col) == (1, 9, 24)
    assert (vocab.default.span.col, d.span.line, d.span.col) == (22, 2, 9)
    call = expr("f(1, key=2)")
    assert (call.args[1].span.col, call.args[1].span.end_col) == (26, 31)     # key=2


def test_spans_count_columns_in_characters_not_bytes():
    (stmt,) = parse_ok('block B() { let s = "héllo wörld" let t = 1 }').blocks[0].body[1:]
    assert stmt.span.col == 35


# ---------------------------------------------------------------------- syntax errors
def test_syntax_error_points_at_the_unexpected_token():
    d = syntax_error("block B(d: int) {\n    in x: [B, d]\n    y = Linear(d d)(x)\n}")
    assert d.code == "DLC001"
    assert (d.span.file, d.span.line, d.span.col, d.span.end_col) == ("t.dl", 3, 18, 19)
    assert "unexpected 'd'" in d.message and "expected" in d.message and "')'" in d.message
    assert d.hint == "separate arguments with ','"


def test_equals_where_a_comparison_belongs():
    d = syntax_error("block B(d: int) {\n  require d = 8\n}")
    assert (d.span.line, d.span.col) == (2, 13)
    assert "unexpected '='" in d.message and d.hint == "use `==` to compare values"


def test_python_style_conditional_expression():
    d = syntax_error("block B(d: int) {\n  let k = 3 if d > 2 else 4\n}")
    assert (d.span.line, d.span.col) == (2, 22)
    assert "if COND then A else B" in d.hint


def test_single_quoted_string():
    d = syntax_error("model M(act: str = 'relu') {}")
    assert (d.span.line, d.span.col) == (1, 20)
    assert d.message == "unexpected character \"'\"" and d.hint == "strings use double quotes"


def test_backslash_or_line_break_in_a_string():
    for text in ('model M(s: str = "a\\b") {}', 'model M(s: str = "ab\n") {}'):
        d = syntax_error(text)
        assert (d.span.line, d.span.col, d.message) == (1, 18, "unexpected character '\"'")
        assert "backslashes" in d.hint


@pytest.mark.parametrize("name", ["bool", "int64", "optional"])
def test_dtype_word_after_a_tensor_type(name):
    """Newlines do not end statements, so a value named like a dtype cannot follow an input."""
    d = syntax_error(f"model M() {{\n  in x: [B, 4]\n  {name} = Linear(4, 4)(x)\n  out y = x\n}}")
    assert (d.span.line, d.span.col) == (3, len(name) + 4)
    assert d.hint == f"`{name}` right after a tensor type is read as part of that type; give the value another name"
    (block,) = parse_ok(f"model M() {{\n  let k = 1\n  {name} = f(k)\n}}").blocks      # elsewhere it is a name
    assert block.body[1].targets == (name,)


def test_missing_closing_brace_points_after_the_last_token():
    d = syntax_error("model M() {\n  in x: [B]\n  out x\n\n\n")
    assert d.message.startswith("unexpected end of file; expected")
    assert (d.span.line, d.span.col) == (3, 8)
    assert d.hint == "check that every '{' has a matching '}'"


def test_unclosed_parenthesis():
    d = syntax_error("model M() {\n  a = f(x\n  out y = a\n}")
    assert (d.span.line, d.span.col) == (3, 3) and "unexpected 'out'" in d.message
    assert d.hint == "check that every '(' has a matching ')'"


def test_stray_closing_brace():
    d = syntax_error("model M() {\n  in x: [B]\n  out x\n}\n}")
    assert (d.span.line, d.span.col) == (5, 1)
    assert d.hint == "check that every '{' has a matching '}'"


def test_expected_tokens_are_named_as_written():
    d = syntax_error("import")
    assert d.message == "unexpected end of file; expected a name"
    d = syntax_error("block B(d int) {}")
    assert d.message == "unexpected 'int'; expected ':'"
    d = syntax_error('block B() { rename "a" "b" }')
    assert d.message == "unexpected '\"b\"'; expected '->'"
    d = syntax_error("block B() { let x = 1 + }")
    assert "'-'" in d.message and "'minus'" not in d.message


def test_unknown_character_and_statement_keyword_misuse():
    d = syntax_error("model M() {\n  let x = 3 $ 4\n}")
    assert (d.code, d.span.line, d.span.col, d.message) == ("DLC001", 2, 13, "unexpected character '$'")
    d = syntax_error("model M() {\n  x + 1\n}")
    assert (d.span.line, d.span.col) == (2, 5)


def test_unicode_identifier_is_a_syntax_error():
    d = syntax_error("model M() { let café = 1 }")
    assert (d.span.col, d.message) == (20, "unexpected character 'é'")


def test_huge_integer_literal_is_a_diagnostic_not_a_crash():
    with pytest.raises(CompileError) as info:
        parse("model M(d: int = " + "9" * 5000 + ") {}", "t.dl")
    (d,) = info.value.diagnostics
    assert (d.code, d.span.col) == ("DLC013", 18) and "5000 digits" in d.message


_DEEP = {
    "lists": lambda n: "[" * n + "1" + "]" * n,
    "negations": lambda n: "-" * n + "1",
    "nots": lambda n: "not " * n + "true",
    "sums": lambda n: " + ".join(["1"] * n),
    "powers": lambda n: " ** ".join(["1"] * n),
    "calls": lambda n: "f" + "(x)" * n,
}


@pytest.mark.parametrize("form", _DEEP)
def test_deep_nesting_is_a_resource_limit(form):
    with pytest.raises(CompileError) as info:
        parse(f"model M() {{\n  let x = {_DEEP[form](3 * MAX_NESTING)}\n}}", "t.dl")
    (d,) = info.value.diagnostics
    assert (d.code, d.span.line) == ("DLC013", 2) and f"deeper than {MAX_NESTING}" in d.message


@pytest.mark.parametrize("form", _DEEP)
def test_nesting_just_under_the_limit_is_processed_without_recursion_errors(form, tmp_path):
    spec = tmp_path / "deep.dl"
    spec.write_text(f"model M() {{\n  let x = {_DEEP[form](MAX_NESTING - 10)}\n  in y: [B]\n  out y\n}}")
    result = check(spec)
    assert all(d.code in ("DLC002", "DLC004", "DLC011", "DLC013") for d in result.diagnostics), result.diagnostics


def test_redundant_parentheses_are_dropped_below_the_nesting_limit():
    nested = "(" * (MAX_NESTING - 20) + "1" + ")" * (MAX_NESTING - 20)
    assert str(expr(nested)) == "1"


@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 100_000])
def test_bracket_nesting_beyond_the_limit_is_dlc013(depth):
    """The README documents 200 levels of bracket nesting; parentheses leave no tree node, so
    the limit is counted on the text (issue 14: 100,000-deep parentheses passed)."""
    text = "model M() {\n  let x = " + "(" * depth + "1" + ")" * depth + "\n}\n"
    with pytest.raises(CompileError) as info:
        parse(text, "t.dl")
    d = info.value.diagnostics[0]
    assert (d.code, d.span.line, d.span.col) == ("DLC013", 2, 10 + MAX_NESTING)   # the block's `{` counts too


def test_brackets_inside_strings_and_comments_do_not_count():
    text = "# " + "(" * 1000 + "\nmodel M() {\n  require true, \"" + "[" * 1000 + "\"\n}\n"
    assert parse(text, "t.dl").blocks[0].name == "M"


# ---------------------------------------------------------------------- round-trip property
_KEYWORDS = {"import", "block", "model", "require", "in", "out", "let", "if", "else", "then", "tie", "rename", "for",
             "repeat", "and", "or", "not", "true", "false", "none", "optional", "float32", "float16", "bfloat16",
             "float64", "int64", "int32", "bool"}
_SPAN = Span("t.dl", 1, 1, 1, 1)

# [A-Za-z_][A-Za-z0-9_]{0,5}, drawn as a first character and a short tail: the same strings as
# st.from_regex draws, at a fraction of its cost (from_regex was ~40% of the formatter's property tests)
_NAME_START = string.ascii_letters + "_"
names = st.builds(operator.add, st.sampled_from(_NAME_START), st.text(_NAME_START + string.digits, max_size=5)) \
    .filter(lambda n: n not in _KEYWORDS)
_leaves = st.one_of(
    st.integers(0, 10**30).map(lambda v: ast.Int(_SPAN, v)),
    st.floats(0, 1e300, allow_nan=False, allow_infinity=False).map(lambda v: ast.Float(_SPAN, v)),
    st.text(st.characters(blacklist_characters='"\\\n\r', blacklist_categories=("Cs", "Cc")), max_size=6)
    .map(lambda v: ast.Str(_SPAN, v)),
    st.booleans().map(lambda v: ast.Bool(_SPAN, v)),
    st.just(ast.NoneLit(_SPAN)),
    names.map(lambda n: ast.Name(_SPAN, n)),
)


def _compound(children):
    arg = st.builds(lambda n, v: ast.Arg(_SPAN, n, v), st.none() | names, children)
    return st.one_of(
        st.builds(lambda op, a, b: ast.BinOp(_SPAN, op, a, b),
                  st.sampled_from(["+", "-", "*", "/", "//", "%", "@", "**"]), children, children),
        st.builds(lambda op, a, b: ast.Compare(_SPAN, op, a, b),
                  st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), children, children),
        st.builds(lambda op, a, b: ast.BoolOp(_SPAN, op, a, b), st.sampled_from(["and", "or"]), children, children),
        st.builds(lambda a: ast.Not(_SPAN, a), children),
        st.builds(lambda a: ast.Neg(_SPAN, a), children),
        st.builds(lambda a, b, c: ast.Ternary(_SPAN, a, b, c), children, children, children),
        st.builds(lambda f, args: ast.Call(_SPAN, f, tuple(args)), children, st.lists(arg, max_size=3)),
        st.builds(lambda t, i: ast.Index(_SPAN, t, i), children, children),
        st.builds(lambda items: ast.ListLit(_SPAN, tuple(items)), st.lists(children, max_size=3)),
        st.builds(lambda c, i, b: ast.Repeat(_SPAN, c, i, b), children, st.none() | names, children),
    )


expressions = st.recursive(_leaves, _compound, max_leaves=12)
small_expressions = st.recursive(_leaves, _compound, max_leaves=3)     # inside generated statements


def print_stmt(s: ast.Stmt, indent: str = "    ") -> str:
    """Source for a statement (the AST prints expressions; statements are printed here)."""
    if isinstance(s, ast.Require):
        return f"{indent}require {s.cond}" + (f', "{s.message}"' if s.message is not None else "")
    if isinstance(s, ast.Input):
        return f"{indent}in {s.name}: {s.type}" + (" optional" if s.optional else "")
    if isinstance(s, ast.Output):
        return (f"{indent}out {s.name}" + (f": {s.type}" if s.type else "")
                + (f" = {s.value}" if s.value is not None else ""))
    if isinstance(s, ast.Assign):
        return f"{indent}{', '.join(s.targets)} = {s.value}"
    if isinstance(s, ast.Let):
        return f"{indent}let {s.name} = {s.value}"
    if isinstance(s, ast.Tie):
        return f"{indent}tie {s.target} = {s.source}"
    if isinstance(s, ast.Rename):
        return f'{indent}rename "{s.source}" -> "{s.target}"'
    if isinstance(s, ast.For):
        inner = "\n".join(print_stmt(t, indent + "    ") for t in s.body)
        return f"{indent}for {s.var} in {s.iterable} {{\n{inner}\n{indent}}}"
    assert isinstance(s, ast.If)
    inner = "\n".join(print_stmt(t, indent + "    ") for t in s.then)
    text = f"{indent}if {s.cond} {{\n{inner}\n{indent}}}"
    if s.orelse:
        text += " else {\n" + "\n".join(print_stmt(t, indent + "    ") for t in s.orelse) + f"\n{indent}}}"
    return text


def print_module(m: ast.Module) -> str:
    lines = [f"import {', '.join(n for n, _ in i.names)}" for i in m.imports]
    for b in m.blocks:
        params = ", ".join(f"{p.name}: {p.type}" + (f" = {p.default}" if p.default else "") for p in b.params)
        lines.append(f"{'model' if b.is_model else 'block'} {b.name}({params}) {{")
        lines += [print_stmt(s) for s in b.body]
        lines.append("}")
    lines += [f"model {a.name} = {a.target}({', '.join(map(str, a.args))})" for a in m.aliases]
    return "\n".join(lines) + "\n"


_dtypes = st.none() | st.sampled_from(["float32", "float16", "bfloat16", "float64", "int64", "int32", "bool"])
_tensor_types = st.builds(lambda dims, dt: ast.TensorTypeExpr(_SPAN, tuple(dims), dt),
                          st.lists(small_expressions, max_size=3), _dtypes)
_key_text = st.from_regex(r"[a-z{}.0-9]{0,8}", fullmatch=True)
_paths = st.builds(lambda first, rest: ast.Path(_SPAN, (first, *rest)), names,
                   st.lists(names | st.integers(0, 99).map(str), max_size=3))
_simple_statements = st.one_of(
    st.builds(lambda c, m: ast.Require(_SPAN, c, m), small_expressions, st.none() | _key_text),
    st.builds(lambda n, t, o: ast.Input(_SPAN, n, t, o), names, _tensor_types, st.booleans()),
    st.builds(lambda n, t, v: ast.Output(_SPAN, n, t, v), names, st.none() | _tensor_types, st.none() | small_expressions),
    st.builds(lambda ts, v: ast.Assign(_SPAN, tuple(ts), v), st.lists(names, min_size=1, max_size=3), small_expressions),
    st.builds(lambda n, v: ast.Let(_SPAN, n, v), names, small_expressions),
    st.builds(lambda a, b: ast.Tie(_SPAN, a, b), _paths, _paths),
    st.builds(lambda a, b: ast.Rename(_SPAN, a, b), _key_text, _key_text),
)
statements = st.recursive(_simple_statements, lambda inner: st.one_of(
    st.builds(lambda c, t, e: ast.If(_SPAN, c, tuple(t), tuple(e)), small_expressions,
              st.lists(inner, max_size=3), st.lists(inner, max_size=2)),
    st.builds(lambda v, it, b: ast.For(_SPAN, v, it, tuple(b)), names, small_expressions,
              st.lists(inner, max_size=3))), max_leaves=6)
_param_types = st.one_of(
    st.sampled_from(["int", "float", "bool", "str"]).map(lambda k: ast.ParamType(_SPAN, k)),
    names.map(lambda e: ast.ParamType(_SPAN, "list", element=e)),
    st.lists(_key_text, min_size=1, max_size=3).map(lambda o: ast.ParamType(_SPAN, "enum", options=tuple(o))),
)
_params = st.builds(lambda n, t, d: ast.Param(_SPAN, n, t, d), names, _param_types, st.none() | small_expressions)
_blocks = st.builds(lambda m, n, ps, b: ast.BlockDef(_SPAN, m, n, tuple(ps), tuple(b), _SPAN),
                    st.booleans(), names, st.lists(_params, max_size=3), st.lists(statements, max_size=5))
_aliases = st.builds(lambda n, t, a: ast.ModelAlias(_SPAN, n, t, tuple(a), _SPAN), names, names,
                     st.lists(st.builds(lambda n, v: ast.Arg(_SPAN, n, v), st.none() | names, small_expressions),
                              max_size=3))
modules = st.builds(
    lambda imps, blocks, aliases: ast.Module(_SPAN, "t.dl", tuple(ast.Import(_SPAN, tuple((n, _SPAN) for n in i))
                                                                 for i in imps), tuple(blocks), tuple(aliases)),
    st.lists(st.lists(names, min_size=1, max_size=3), max_size=2), st.lists(_blocks, max_size=2),
    st.lists(_aliases, max_size=2))

_FAST = settings(max_examples=examples(150), deadline=2000, suppress_health_check=[HealthCheck.too_slow])


@_FAST
@given(expressions)
def test_printed_expressions_parse_back_to_the_same_tree(e):
    assert structure(expr(str(e))) == structure(e)


@settings(max_examples=100, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(modules)
def test_printed_modules_parse_back_to_the_same_tree(m):
    text = print_module(m)
    assert structure(parse(text, "t.dl")) == structure(m), text


# ---------------------------------------------------------------------- robustness property
_SEEDS = [(ROOT / p).read_text() for p in ("specs/transformer.dl", "stdlib/attention.dl", "stdlib/layers.dl",
                                           "stdlib/transformer_layers.dl", "tests/golden/tiny.dl")]
_TOKEN = re.compile(r"\w+|\s+|.", re.DOTALL)
_INSERTS = ["(", ")", "{", "}", "[", "]", ",", "=", "==", "none", "true", "0", "-1", "1.5", "1e999", '"s"',
            "9" * 40, "9" * 200, "x", "B", "d_model", "heads", "int64", "bool", "optional", "repeat(3)",
            "if", "else", "then", "out", "in", "\n", "é", "\x00", "[" * 300, "Linear(4, 4)", "-", "**", "@"]


def _mutate(rng: random.Random, text: str) -> bytes:
    kind = rng.randrange(6)
    data = bytearray(text.encode())
    if kind == 0:                                   # byte flips
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    if kind == 1:                                   # truncation
        return bytes(data[: rng.randrange(len(data))])
    tokens = _TOKEN.findall(text)
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(tokens))
        if kind == 2:                               # token deletion
            del tokens[i]
        elif kind == 3:                             # token duplication
            tokens.insert(i, tokens[rng.randrange(len(tokens))])
        elif kind == 4:                             # token replacement
            tokens[i] = rng.choice(_INSERTS)
        else:                                       # swap two tokens
            j = rng.randrange(len(tokens))
            tokens[i], tokens[j] = tokens[j], tokens[i]
    return "".join(tokens).encode("utf-8", "surrogatepass")


def _front_end_survives(data: bytes) -> None:
    """The whole front end returns diagnostics, never raises, and never reports an internal error."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.dl"
        path.write_bytes(data)
        start = time.perf_counter()
        result = check(path, all_blocks=True)
        assert time.perf_counter() - start < 5
    for d in result.diagnostics:
        assert re.fullmatch(r"DLC0[0-9][0-9]", d.code) and d.code != "DLC000", d
        assert d.span.line >= 1 and d.span.col >= 1 and d.message


@_FAST
@given(st.integers(0, 2**32), st.sampled_from(range(len(_SEEDS))))
def test_mutated_specs_only_ever_produce_diagnostics(seed, which):
    _front_end_survives(_mutate(random.Random(seed), _SEEDS[which]))


@settings(max_examples=examples(100), deadline=2000)
@given(st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300),
    st.text(alphabet=st.sampled_from(list("()[]{},=:+-*/%@<>!#\"' \n\tabxyzBSd0123456789._")), max_size=300),
    st.lists(st.sampled_from(_INSERTS + ["block", "model", "import", "let", "require", "tie", "rename", "->"]),
             max_size=60).map(" ".join),
).map(lambda v: v if isinstance(v, bytes) else v.encode("utf-8", "surrogatepass")))
def test_arbitrary_text_only_ever_produces_diagnostics(data):
    _front_end_survives(data)


@pytest.mark.parametrize("data", [
    b"", b"\n" * 1000, b"\xff\xfe\x00binary", b"model M() {" + b"x" * 200_000 + b"}",
    ("model M() { let x = " + "(" * 5000 + "1" + ")" * 5000 + " }").encode(),
    ("model M() { let x = " + "-" * 3000 + "1 }").encode(),
    ("model M() { let x = " + " + ".join(["1"] * 3000) + " }").encode(),
    ("model M() { let x = " + "not " * 3000 + "true }").encode(),
    (b"model M() { let x = 2 ** 2 ** 2 ** 2 ** 2 ** 2 }"),
    ("model M() { let x = " + "9" * 4000 + " }").encode(),
    ("model M() {\n" + "  let x = 1\n" * 2000 + "}").encode(),
    "model Ünïcödé() { let 名前 = \"値\" }".encode(),
    (b"block A() { in x: [B]\n out y = A()(x) }\nmodel M() { in x: [B]\n out y = A()(x) }"),
])
def test_pathological_inputs(data):
    _front_end_survives(data)


@pytest.mark.parametrize("text, deepest", [
    (")" * 3 + "(" * 201, 201),              # unmatched closers do not lend depth: the limit still trips
    ("(" * 150 + ")" * 300 + "(" * 201, 201),
    ('"' + "(" * 300 + '"\n' + "(" * 10, 10),   # brackets in strings and comments are not counted
    ("# " + "[" * 300 + "\n" + "{" * 5, 5),
    ('"' + "(" * 300 + "\n" + "(" * 200, 200),  # an unterminated string ends at its line
])
def test_bracket_depth_is_counted_on_code_only(text, deepest):
    """parser._check_brackets sums the depth in C and only walks the brackets when the sum may
    exceed the limit: both ways must agree, on closers without an opener too."""
    from compiler.syntax.parser import _check_brackets
    if deepest <= MAX_NESTING:
        _check_brackets(text, "t.dl", MAX_NESTING)
        return
    with pytest.raises(CompileError) as info:
        _check_brackets(text, "t.dl", MAX_NESTING)
    (d,) = info.value.diagnostics
    line = text.count("\n") + 1
    assert (d.code, d.span.line, d.span.col) == ("DLC013", line, len(text.split("\n")[-1]) - (deepest - MAX_NESTING) + 1)
