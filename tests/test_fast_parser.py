"""The hand-written parser (compiler/syntax/fast_parser.py) is an accelerator for lark: on
every input it either gives up or builds exactly lark's AST, spans included.  Compared here
on every .dl file of the repository, on inputs written against lark's corners (contextual
keywords, lexer splits after tensor types, parentheses in spans, nesting near the limit) and
on grammar-aware mutants of the specs."""
from __future__ import annotations

import os
import random
from pathlib import Path

import lark
import pytest

from compiler.diagnostics import CompileError
from compiler.syntax import lark_parser, parser
from compiler.syntax.fast_parser import parse_fast
from tests.fuzzing import mutate_tokens, random_valid_spec
from tests.helpers import ROOT

LIMITS = parser.DEFAULT_LIMITS
_NOT_SEARCHED = {".venv", ".git", "fuzz-findings"}


def _repository_dl_files(root: Path) -> list[Path]:
    """Every .dl file of the repository, the virtualenv and fuzz findings aside: a walk that does not
    descend into them (rglob went through .venv's thousands of folders, 0.6 s per test process)."""
    found = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [name for name in subfolders if name not in _NOT_SEARCHED]
        found += [Path(folder, name) for name in files if name.endswith(".dl")]
    return sorted(found)


DL_FILES = _repository_dl_files(ROOT)


def with_lark(text: str, file: str = "t.dl"):
    """lark's AST, or the diagnostic it gives (what `parse` reported before the fast parser)."""
    try:
        tree = lark_parser._lark().parse(text)
        lark_parser._check_depth(tree, file, LIMITS.max_nesting)
        return lark_parser._ToAst(file, LIMITS).transform(tree)
    except CompileError as exc:
        return exc.diagnostics
    except lark.exceptions.VisitError as exc:
        return exc.orig_exc.diagnostics if isinstance(exc.orig_exc, CompileError) else exc
    except lark.exceptions.LarkError as exc:
        return type(exc).__name__
    except RecursionError:
        return "RecursionError"


def fast(text: str, file: str = "t.dl"):
    return parse_fast(text, file, LIMITS.max_nesting, LIMITS.max_literal_digits)


def assert_agrees(text: str, file: str = "t.dl") -> bool:
    """The fast parser gave up or built lark's module; True when it built one."""
    module = fast(text, file)
    if module is not None:
        assert module == with_lark(text, file), text
    return module is not None


@pytest.mark.parametrize("path", DL_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_repository_file_parses_to_lark_s_ast(path):
    text = path.read_text(encoding="utf-8", errors="replace")
    built = assert_agrees(text, str(path))
    if path.parent.name in ("specs", "stdlib"):
        assert built, "the models and the standard library take the fast path"


AGREE_AND_FAST = [
    "model M(d: int = 4) {\n  in x: [B, d]\n  out y = ReLU()(x)\n}\n",
    "model M() {\n  in x: [B, 4] bool optional\n  in m: [B] optional\n  out y: [B, 4] bool = x\n}\n",
    "model M() {\n  in x: [*, 4]\n  in z: [*lead, T, 4] float16\n  out y = x\n}\n",
    "model M(a: int = 2) {\n  let k = (a + 1) * (a - 1)\n  let j = -(a) ** -2 + -a ** 2\n  let t = if a > 1 then (a) else a // 2 % 3\n}\n",
    "model M(a: bool = true) {\n  let k = not a == false and a or not not a\n  let l = [1, 2.5, \"s\", none, [], [a,],]\n}\n",
    "model M() {\n  in x: [B, 8]\n  h = repeat(3, i) Layer(8, i * 2)(x)[0]\n  g = repeat(2) repeat(2) Layer(8)(x)\n}\n",
    "model M() {\n  in x: [B, 8]\n  a, b = Split([4, 4], dim=-1)(x)\n  out y = Concat(-1)(b, a,)\n}\n",
    "model M() {\n  ys, h = scan(axis=1) Step(8)(xs, h0, m)\n  a = scan() s(x)[0] + scan(0, reverse=true,) S()(x)\n"
    "  b = scan(1) repeat(2) L()(x)\n  c = -scan(a=1)(S)(x)\n}\n",
    "model M() {\n  tie a.b.weight = c.weight\n  tie h.0 = g.1\n  rename \"x.{i}.\" -> \"y.{i}.\" as [1, 1, 4]\n  rename \"\" -> \"z\"\n}\n",
    "model M(n: int = 3) {\n  for i in range(n) {\n    let q = i\n  }\n  if n > 2 { let a = 1 } else if n > 1 { let b = 2 } else { let c = 3 }\n}\n",
    "import attention, layers\nblock B(x: {\"a\", \"b\",}, y: [int] = [1], z: float = 1e-5) {\n  require x == \"a\", \"msg\"\n  require (y)\n}\n"
    "model A = B(x=\"a\", y=[2])\nmodel C = B()\n",
    "",
    "# only a comment\n\n",
    "model M() {\r\n\tin x: [B,4]\f\r\n  out y = x # trailing\r\n}",
]


@pytest.mark.parametrize("text", AGREE_AND_FAST)
def test_common_forms_take_the_fast_path_and_agree(text):
    assert assert_agrees(text)


AGREE_OR_GIVE_UP = [
    "model M() {\n  in x: [B, S]\n  bool_mask = ReLU()(x)\n}\n",          # lark reads `bool` + `_mask`
    "model M() {\n  in x: [B, S]\n  optional_x = ReLU()(x)\n}\n",
    "model M() {\n  in x: [B] bool\n  bool = ReLU()(x)\n}\n",
    "model M() {\n  out y: [B] optional\n}\n",
    "model M() {\n  in x: [B]\n  model = ReLU()(x)\n  then = model\n}\n",   # keywords as names
    "model M() {\n  let then = 1\n  let x = true\n  let y = none\n}\n",
    "model M() {\n  tie a.0.w = b.0.w\n  tie a.0 = b.1.c\n}\n",               # `0.` lexes as a number
    "model M() {\n  let k = a < b < c\n}\n",
    "model M() {\n  let k = 1 + not a\n  let j = a == not b\n}\n",
    "model M() {\n  let k = a->b\n  let j = a**-1\n  let i = a=-1\n}\n",
    "model M() {\n  let k = f(a = 1, b == 2, true = 3)\n}\n",
    "model M() {\n  let s = 'single'\n}\n",
    "model M() {\n  in x: [B,]\n}\n",
    "block B() { }\nblock C() { } x",
    "model M() {\n  let k = 1" + "9" * 101 + "\n}\n",                       # over the digit limit
    "model M() {\n  let k = 1.5e\n  let j = 1.e5 + 1e5 + 2.\n}\n",
    "model M() {\n  h = repeat 3 X()(x)\n}\n",
    "model M() {\n  h = scan X()(x)\n  scan = 1\n}\n",
    "model M() {\n  let scan = 1\n  h = scan(axis=1\n}\n",
    "model M() {\n  let x = [1 2]\n}\n",
    "model M( {\n}\n",
    "model M() {\n  x = Linear(4, 4)(x\n}\n",
    "\ufeffmodel M() {}\n",
    "model M() {\n\v}\n",
]


@pytest.mark.parametrize("text", AGREE_OR_GIVE_UP)
def test_corner_cases_agree_with_lark_or_go_to_lark(text):
    assert_agrees(text)


@pytest.mark.parametrize("count", [150, 190, 196, 197, 198, 199, 200, 201, 250])
def test_nesting_near_the_limit_is_left_to_lark(count):
    """lark's tree check decides near the limit: the fast parser never accepts what it refuses."""
    for expr in (" + ".join(["1"] * count), "-" * count + "1", "not " * count + "true",
                 "f(" * (count // 3) + "x" + ")" * (count // 3), "[" * (count // 2) + "]" * (count // 2)):
        assert_agrees(f"model M() {{\n  let k = {expr}\n}}\n")


def test_parse_reports_what_lark_reports():
    """Through `parse`, an input the fast parser gives up on gets lark's diagnostic."""
    text = "model M() {\n  x = Linear(4, 4)(x\n}\n"
    with pytest.raises(CompileError) as raised:
        parser.parse(text, "t.dl")
    (diagnostic,) = raised.value.diagnostics
    assert diagnostic.code == "DLC001" and (diagnostic.span.line, diagnostic.span.col) == (3, 1)


@pytest.mark.parametrize("count", [pytest.param(25, id="25"), pytest.param(3000, id="3000", marks=pytest.mark.slow)])
def test_mutants_agree_with_lark(count):
    rng = random.Random(2026 + count)
    specs = [p.read_text() for p in sorted((ROOT / "specs").glob("*.dl")) + sorted((ROOT / "stdlib").glob("*.dl"))]
    built = 0
    for _ in range(count):
        text = random_valid_spec(rng) if rng.random() < 0.3 else rng.choice(specs)
        for _ in range(rng.randint(1, 3)):
            text = mutate_tokens(text, rng)
        try:
            parser._check_brackets(text, "t.dl", LIMITS.max_nesting)
        except CompileError:
            continue
        built += assert_agrees(text)
    assert built > count // 5, "many token mutants still parse, and take the fast path"
