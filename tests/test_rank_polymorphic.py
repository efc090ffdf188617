"""Rank-polymorphic block inputs: `in x: [*, d]` accepts any number of leading dimensions.
One generated class serves every rank; each call site is checked with its own leading
dimensions, so an op inside that needs a fixed rank is reported where the block is used."""
from __future__ import annotations

import torch

from compiler.driver import check
from tests.helpers import compile_to_module

PROJ = "block Proj(d: int, e: int) {\n  in x: [*, d]\n  h = Linear(d, e)(x)\n  out y = LayerNorm(e)(h) * 2\n}\n"


def errors(tmp_path, source: str):
    path = tmp_path / "spec.dl"
    path.write_text(source)
    return [d for d in check(path).diagnostics if d.is_error]


def test_one_block_for_every_rank(tmp_path):
    module = compile_to_module(PROJ + "model M(d: int = 4) {\n  in a: [B, d]\n  in b: [B, S, d]\n  in c: [d]\n"
                               "  p = Proj(d, 8)\n  out ya: [B, 8] = p(a)\n  out yb: [B, S, 8] = p(b)\n"
                               "  out yc: [8] = p(c)\n}", tmp_path)
    model = module.M()
    a, b, c = torch.randn(2, 4), torch.randn(2, 3, 4), torch.randn(4)
    ya, yb, yc = model(a, b, c)
    assert (ya.shape, yb.shape, yc.shape) == ((2, 8), (2, 3, 8), (8,))
    torch.testing.assert_close(yb, model.p.layernorm(model.p.h(b)) * 2)
    assert sum(1 for line in module.__loader__.get_source(module.__name__).splitlines()
               if line.startswith("class Proj")) == 1


def test_named_leading_dimensions_must_agree(tmp_path):
    source = ("block Mix(d: int) {\n  in x: [*lead, d]\n  in y: [*lead, d]\n  out z = x + y\n}\n"
              "model M() {\n  in a: [B, S, 4]\n  in b: [B, T, 4]\n  out z = Mix(4)(a, b)\n}")
    (d,) = errors(tmp_path, source)
    assert d.code == "DLC007" and "leading dimensions" in d.message and d.span.line == 9


def test_trailing_dimensions_are_checked(tmp_path):
    (d,) = errors(tmp_path, PROJ + "model M() {\n  in a: [B, S, 5]\n  out y = Proj(4, 8)(a)\n}")
    assert d.code == "DLC007" and d.span.line == 8
    (d,) = errors(tmp_path, "block P(d: int) {\n  in x: [*, T, d]\n  out y = x\n}\n"
                            "model M() {\n  in a: [4]\n  out y = P(4)(a)\n}")
    assert d.code == "DLC007" and "at least rank 2" in d.message


def test_an_op_that_needs_a_rank_is_checked_per_call(tmp_path):
    source = ("block Heads(d: int) {\n  in x: [*, T, d]\n  out y = Attention(2)(x, x, x)\n}\n"
              "model M() {\n  in ok: [B, S, 4]\n  in bad: [S, 4]\n  out a = Heads(4)(ok)\n  out b = Heads(4)(bad)\n}")
    (d,) = errors(tmp_path, source)
    assert d.code == "DLC007" and d.span.line == 3 and "Attention" in d.message
    assert any(n.span.line == 9 and "leading dimensions []" in n.message for n in d.notes)


def test_trailing_symbols_are_read_from_the_end(tmp_path):
    module = compile_to_module("block Fold(d: int) {\n  in x: [*, T, d]\n  out y = Reshape([-1, T * d])(x)\n}\n"
                               "model M() {\n  in a: [B, H, S, 4]\n  out y = Fold(4)(a)\n}", tmp_path)
    assert module.M()(torch.randn(2, 3, 5, 4)).shape == (6, 20)


def test_star_misuse(tmp_path):
    (d,) = errors(tmp_path, "model M() {\n  in x: [B, *, 4]\n  out y = x\n}")
    assert d.code == "DLC044" and "comes first" in d.message
    (d,) = errors(tmp_path, "model M() {\n  in x: [B, 4]\n  out y: [*, 4] = x\n}")
    assert d.code == "DLC044" and "begin a block input" in d.message
    (d,) = errors(tmp_path, "block P() {\n  in x: [*lead, 4]\n  out y = Reshape([lead, 4])(x)\n}\n"
                            "model M() {\n  in a: [B, 4]\n  out y = P()(a)\n}")
    assert d.code == "DLC007" and "leading dimensions" in d.message
