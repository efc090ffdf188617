"""Units of emission per definition: spec expressions as Python, values that print as their
expressions, and merging guarded lines into Python ifs."""
from __future__ import annotations

import pytest

from compiler.codegen.expressions import Unprintable, py_literal, to_python
from compiler.codegen.merge import merge, render, reproduces
from compiler.codegen.specialization import Line
from compiler.ir.residual import equal_in_every_configuration, is_residual, printed, residual
from compiler.syntax.parser import parse


def expr(text: str):
    """A spec expression, parsed as a `let` in a one-statement block."""
    module = parse(f"block B() {{\n    let v = {text}\n}}\n", "e.dl")
    return module.blocks[0].body[0].value


def names(name: str) -> str:
    if name in {"a", "b", "c", "xs"}:
        return name
    raise Unprintable(name)


@pytest.mark.parametrize("dsl, python", [
    ("if a == 0 then b else c", "b if a == 0 else c"),
    ("(if a then 1 else 2) + 3", "(1 if a else 2) + 3"),
    ("a - (b - c)", "a - (b - c)"),
    ("-a ** 2", "-a ** 2"),
    ("(a + b) * c // 2", "(a + b) * c // 2"),
    ("not (a and b) or c", "not (a and b) or c"),
    ("xs[a - 1]", "xs[a - 1]"),
    ("sqrt(a) + len(xs)", "math.sqrt(a) + len(xs)"),
    ('"relu"', '"relu"'),
    ("true", "True"),
])
def test_spec_expressions_print_as_python(dsl, python):
    assert to_python(expr(dsl), names) == python
    assert eval(python, {"math": __import__("math"), "a": 3, "b": 4, "c": 5, "xs": [1, 2, 3]}) is not None


def test_a_name_out_of_scope_is_unprintable():
    with pytest.raises(Unprintable):
        to_python(expr("a + S"), names)


def test_strings_print_as_safe_literals():
    assert py_literal("a\x00b\u2028\"") == '"a\\u0000b\\u2028\\""'
    assert eval(py_literal("a\x00b\u2028\"")) == "a\x00b\u2028\""


def test_residuals_compute_as_values_and_print_as_expressions():
    d = residual(768, "d_model", "d_model")
    assert d == 768 and d + 1 == 769 and f"{d}" == "d_model" and is_residual(d)
    assert str(sum((d, d, d))) == "3 * d_model" and int(sum((d, d, d))) == 2304
    assert str(4 * residual(64, "channels", "channels")) == "4 * channels"
    flag = residual(True, "causal", "causal")
    assert flag and f"{flag}" == "causal"


def test_only_printed_residuals_count_as_printed():
    d = residual(8, "d", "d")
    assert not printed(d)
    _ = f"{d}"
    assert printed(d)


def test_equal_sizes_are_relative_only_when_the_same_expression():
    same = tuple(residual(8, "d", "d") for _ in range(3))
    assert equal_in_every_configuration(same) and all(printed(v) for v in same)
    assert not equal_in_every_configuration((residual(8, "d", "d"), residual(8, "kv", "kv")))


def test_branches_merge_into_if_else_and_reproduce_each_configuration():
    taken = [Line((), "a = f(x)"), Line((("k", True),), "b = g(a)"), Line((("k", True),), "return b")]
    other = [Line((), "a = f(x)"), Line((("k", False),), "return a")]
    merged = merge([taken, other])
    assert reproduces(merged, taken, {("k", True)}) and reproduces(merged, other, {("k", False)})
    assert render(merged, lambda key, value: "self.k" if value else "not self.k") == [
        "a = f(x)", "if self.k:", "    b = g(a)", "    return b", "else:", "    return a"]


def test_different_code_in_the_same_branch_does_not_reproduce():
    one, two = [Line((), "y = F.relu(x)")], [Line((), "y = F.relu6(x)")]
    merged = merge([one, two])
    assert not reproduces(merged, one, set())
