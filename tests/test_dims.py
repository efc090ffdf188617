"""The dimension algebra (compiler/ir/dims.py) against numbers and against sympy.

Random expressions are built three ways at once: as a Dim, as a Python function of the symbols'
values (exact, in Fractions), and as a sympy expression (sympy is installed with torch; the
compiler itself no longer imports it). Canonical-form equality must agree with evaluation, the
printed forms must evaluate back to the same numbers, and polynomial equality must agree with
sympy's.
"""
from __future__ import annotations

import copy
import math
import pickle
import random
import re
from fractions import Fraction

import pytest

from compiler.ir.dims import Dim, SymbolicComparison, ceil, const, dim, maximum, minimum, symbol
from compiler.ir.types import dims_equal, py_dim
from tests.lazy_import import lazy_import

sympy = lazy_import("sympy")

NAMES = ("B", "S", "H", "W")
SYMBOLS = {n: symbol(n) for n in NAMES}


def to_sympy(d: Dim) -> sympy.Expr:
    """The same expression in sympy (tests only)."""
    total = sympy.Integer(0)
    for m, c in d.terms:
        term = sympy.Rational(c)
        for a, e in m:
            term *= _atom_to_sympy(a) ** e
        total += term
    return total


def _atom_to_sympy(a) -> sympy.Expr:
    if a.kind == "sym":
        return sympy.Symbol(a.name, integer=True, positive=True)
    args = [to_sympy(x) for x in a.args]
    return {"floor": lambda: sympy.floor(args[0]), "min": lambda: sympy.Min(*args),
            "max": lambda: sympy.Max(*args), "recip": lambda: 1 / args[0]}[a.kind]()


def value_at(d: Dim, point: dict[str, int]) -> Fraction:
    got = d.subs({SYMBOLS[k]: v for k, v in point.items()})
    assert got.is_number, (d, got)
    return Fraction(got.value)


class Expr:
    """A random expression: its Dim, its exact evaluator, and whether it is integer-valued."""

    def __init__(self, d: Dim, f, integer: bool) -> None:
        self.d, self.f, self.integer = d, f, integer


def random_expr(rng: random.Random, depth: int, polynomial: bool = False) -> Expr:
    if depth == 0 or rng.random() < 0.25:
        if rng.random() < 0.6:
            name = rng.choice(NAMES)
            return Expr(SYMBOLS[name], lambda p, name=name: Fraction(p[name]), True)
        n = rng.randint(-3, 7)
        return Expr(const(n), lambda p, n=n: Fraction(n), True)
    a, b = random_expr(rng, depth - 1, polynomial), random_expr(rng, depth - 1, polynomial)
    ops = ["+", "-", "*", "/n"] + ([] if polynomial else ["//n", "%n", "min", "max", "ceil/n", "/sym"])
    op = rng.choice(ops)
    n = rng.randint(1, 5)
    name = rng.choice(NAMES)
    if op == "+":
        return Expr(a.d + b.d, lambda p: a.f(p) + b.f(p), a.integer and b.integer)
    if op == "-":
        return Expr(a.d - b.d, lambda p: a.f(p) - b.f(p), a.integer and b.integer)
    if op == "*":
        return Expr(a.d * b.d, lambda p: a.f(p) * b.f(p), a.integer and b.integer)
    if op == "/n":
        return Expr(a.d / n, lambda p: a.f(p) / n, a.integer and n == 1)
    if op == "/sym":
        return Expr(a.d / SYMBOLS[name], lambda p: a.f(p) / p[name], False)
    if op == "//n":
        return Expr(a.d // n, lambda p: Fraction(math.floor(a.f(p) / n)), True)
    if op == "ceil/n":
        return Expr(ceil(a.d / n), lambda p: Fraction(math.ceil(a.f(p) / n)), True)
    if op == "%n":
        return Expr(a.d % n, lambda p: a.f(p) - n * math.floor(a.f(p) / n), a.integer)
    pick = min if op == "min" else max
    return Expr((minimum if op == "min" else maximum)(a.d, b.d), lambda p: pick(a.f(p), b.f(p)),
                a.integer and b.integer)


def random_points(rng: random.Random, count: int = 12) -> list[dict[str, int]]:
    return [{n: rng.randint(1, 40) for n in NAMES} for _ in range(count)]


@pytest.mark.parametrize("seed", range(2))
def test_canonical_forms_evaluate_like_the_expressions_they_came_from(seed):
    rng = random.Random(seed)
    for _ in range(150):
        e = random_expr(rng, 4)
        for point in random_points(rng, 6):
            assert value_at(e.d, point) == e.f(point), (e.d, point)


@pytest.mark.parametrize("seed", range(2))
def test_equal_forms_are_equal_numbers_and_differing_forms_differ_somewhere(seed):
    rng = random.Random(100 + seed)
    exprs = [random_expr(rng, 3) for _ in range(60)]
    points = random_points(rng, 25)
    for a in exprs:
        for b in exprs:
            same = all(a.f(p) == b.f(p) for p in points)
            if dims_equal(a.d, b.d):
                assert same, (a.d, b.d)
            elif not a.d.symbols and not b.d.symbols:
                assert not same
            if same and not dims_equal(a.d, b.d):
                # agreement at 25 random points but different forms: only floors may hide an identity
                # the canonical form does not know; polynomials never (their difference would vanish)
                assert any(x.kind != "sym" for m, _ in (a.d - b.d).terms for x, _ in m), (a.d, b.d)


IDENTITIES = [
    (lambda B, S, H, W: B * S, lambda B, S, H, W: S * B),
    (lambda B, S, H, W: B * S / S, lambda B, S, H, W: B),
    (lambda B, S, H, W: (H - 1) // 2 + 1, lambda B, S, H, W: (H + 1) // 2),
    (lambda B, S, H, W: (H + 2 * 1 - 3) // 2 + 1, lambda B, S, H, W: (H - 1) // 2 + 1),
    (lambda B, S, H, W: ((H - 7) // 4 + 1 - 3) // 2 + 1, lambda B, S, H, W: (H - 7) // 8),
    (lambda B, S, H, W: H % 4, lambda B, S, H, W: H - 4 * (H // 4)),
    (lambda B, S, H, W: ceil(H / 3), lambda B, S, H, W: (H + 2) // 3),
    (lambda B, S, H, W: (B + 1) * (B - 1), lambda B, S, H, W: B * B - 1),
    (lambda B, S, H, W: (B * B - 1) / (B + 1), lambda B, S, H, W: B - 1),
    (lambda B, S, H, W: (B * S + B) / (S + 1), lambda B, S, H, W: B),
    (lambda B, S, H, W: minimum(H, H + 1), lambda B, S, H, W: H),
    (lambda B, S, H, W: maximum(minimum(B, S), minimum(S, B)), lambda B, S, H, W: minimum(B, S)),
    (lambda B, S, H, W: (B * S) // (2 * S), lambda B, S, H, W: B // 2),
    (lambda B, S, H, W: (B + S) ** 2 - 2 * B * S, lambda B, S, H, W: B ** 2 + S ** 2),
    (lambda B, S, H, W: 12 * H // 12, lambda B, S, H, W: H),
]


@pytest.mark.parametrize("left, right", IDENTITIES)
def test_identities_hold_as_equal_canonical_forms(left, right):
    a, b = left(*SYMBOLS.values()), right(*SYMBOLS.values())
    assert a == b and hash(a) == hash(b) and dims_equal(a, b), (str(a), str(b))


def test_constants_behave_like_the_python_numbers_they_hold():
    three = dim(3)
    assert three == 3 and hash(three) == hash(3) and {3: "x"}[three] == "x" and three is const(3)
    assert int(three) == 3 and [0, 1, 2, 3][three] == 3 and three.is_int and not three.symbols
    assert dim(7) // 2 == 3 and dim(7) % 3 == 1 and dim(7) / 2 == Fraction(7, 2) and not (dim(7) / 2).is_int
    assert dim(2) ** 10 == 1024 and -dim(4) == -4 and dim(0) == 0 and not dim(0)


def test_dims_pickle_and_copy_to_the_same_canonical_objects():
    B, H = SYMBOLS["B"], SYMBOLS["H"]
    for d in (B, const(3), (H - 1) // 2 + 1, minimum(B, H) * B / 3):
        again = pickle.loads(pickle.dumps(d))
        assert again == d and hash(again) == hash(d) and copy.deepcopy(d) == d
    assert pickle.loads(pickle.dumps(B)) is B


def test_symbols_are_positive_integers_and_orders_are_decided_only_when_they_hold_everywhere():
    B, S = SYMBOLS["B"], SYMBOLS["S"]
    assert B > 0 and B + 1 > 1 and B * S >= 1 and not (B < 1) and B is symbol("B")
    assert B.is_symbol and B.name == "B" and (B * S).symbols == {B, S} and not (B * S).is_symbol
    with pytest.raises(SymbolicComparison):
        _ = B < S
    with pytest.raises(TypeError):
        _ = B ** Fraction(1, 2)


@pytest.mark.parametrize("seed", range(2))
def test_printed_forms_evaluate_back_to_the_same_numbers(seed):
    rng = random.Random(200 + seed)
    names = {SYMBOLS[n]: f"v_{n}" for n in NAMES}
    rendered = 0
    for _ in range(200):
        e = random_expr(rng, 4)
        for point in random_points(rng, 3):
            want = e.f(point)
            exact = re.sub(r"(\d+)", r"F(\1)", str(e.d))        # evaluate 7/5 as a Fraction, not a float
            diagnostic = eval(exact, {"floor": math.floor, "F": Fraction}, {n: Fraction(v) for n, v in point.items()})
            assert diagnostic == want, (str(e.d), point)
            try:
                code = py_dim(e.d, names)
            except ValueError:        # only dimensions with a fraction somewhere, which no generated line holds
                assert not _integer_throughout(e.d), str(e.d)
                continue
            rendered += 1
            assert eval(code, {}, {f"v_{n}": v for n, v in point.items()}) == want, (code, point)
            assert "/" not in code.replace("//", "")
    assert rendered > 100


def _integer_throughout(d: Dim) -> bool:
    """Integer coefficients and atoms all the way down, floors' arguments over an integer denominator."""
    def atom_ok(a) -> bool:
        if a.kind == "floor":
            x = a.args[0]
            scale = math.lcm(*(Fraction(c).denominator for _, c in x.terms))
            return all(e > 0 for m, _ in x.terms for _, e in m) and _integer_throughout(x * scale)
        return a.kind == "sym" or (a.kind in ("min", "max") and all(_integer_throughout(y) for y in a.args))
    return all(type(c) is int and all(e > 0 and atom_ok(a) for a, e in m) for m, c in d.terms)


def test_printing_is_readable():
    B, S, H = SYMBOLS["B"], SYMBOLS["S"], SYMBOLS["H"]
    assert [str(x) for x in ((H - 1) // 2 + 1, B * S, 3 * B ** 2 - B + 1, -(H // 2), minimum(H, 2 * S))] == \
        ["(H + 1)//2", "B*S", "3*B**2 - B + 1", "-(H//2)", "min(H, 2*S)"]
    assert py_dim(2 * ((H + 1) // 4) - B, {B: "b", H: "h"}) == "2 * ((h + 1) // 4) - b"


@pytest.mark.parametrize("seed", range(2))
def test_polynomial_forms_agree_with_sympy(seed):
    rng = random.Random(300 + seed)
    exprs = [random_expr(rng, 3, polynomial=True) for _ in range(25)]
    for e in exprs:
        point = random_points(rng, 1)[0]
        assert to_sympy(e.d).subs({sympy.Symbol(k, integer=True, positive=True): v for k, v in point.items()}) \
            == e.f(point)
    for a in exprs[:12]:
        for b in exprs[:12]:
            assert dims_equal(a.d, b.d) == (sympy.expand(to_sympy(a.d) - to_sympy(b.d)) == 0), (a.d, b.d)


def test_floor_forms_that_sympy_proves_equal_are_equal():
    rng = random.Random(7)
    for _ in range(20):
        e = random_expr(rng, 2)
        rewritten = e.d + (SYMBOLS["H"] - 1) // 2 - (SYMBOLS["H"] + 1) // 2 + 1
        assert sympy.simplify(to_sympy(rewritten) - to_sympy(e.d)) == 0
        assert rewritten == e.d, (rewritten, e.d)
