"""Shape rules, errors and lowerings of Parameter, Expand, Rotary, StochasticDepth, and
grouped-query and sliding-window Attention, executed against reference implementations:
HF transformers' apply_rotary_pos_emb and repeat_kv-based attention, GPT-J's rotation,
torchvision.ops.stochastic_depth."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from compiler.codegen.helpers import HELPERS
from compiler.ops import REGISTRY, LowerContext
from tests.test_ops_core import B, S, T, build, infer, shape_error, tt


def run(name: str, attrs: dict, inputs, in_types, module=None, training: bool = False):
    """Execute an op's lowering, its helper functions defined, and return its first output."""
    op = REGISTRY[name]
    a = op.attrs(**attrs)
    env = {"torch": torch, "F": F, "nn": nn, "math": math, "self": type("M", (), {"training": training})()}
    for helper in op.helpers:
        exec(HELPERS[helper], env)  # noqa: S102
    names = [f"arg{i}" if x is not None else None for i, x in enumerate(inputs)]
    ctx = LowerContext(names, ["out"], "layer" if module is not None else None, in_types,
                       op.infer(a, in_types), {}, lambda hint: f"_{hint}")
    env.update({n: x for n, x in zip(names, inputs) if n is not None}, layer=module)
    exec("\n".join(op.lower(a, ctx)), env)  # noqa: S102
    return env["out"]


# ---------------------------------------------------------------------- Parameter
@pytest.mark.parametrize("init, check", [
    ("zeros", lambda p: torch.equal(p, torch.zeros_like(p))), ("ones", lambda p: torch.equal(p, torch.ones_like(p))),
    ("constant", lambda p: torch.equal(p, torch.full_like(p, 1e-6))),
    ("normal", lambda p: 0.01 < p.std() < 0.03), ("trunc_normal", lambda p: 0.01 < p.std() < 0.03),    # cut at ±2 absolute, as timm uses it
    ("uniform", lambda p: p.abs().max() <= 1e-6),
])
def test_parameter(init, check):
    attrs = {"shape": (1, 50, 64), "init": init, "std": 0.02, "value": 1e-6}
    assert infer("Parameter", [], **attrs) == [tt(1, 50, 64)]
    parameter = build("Parameter", **attrs)
    assert isinstance(parameter, nn.Parameter) and parameter.shape == (1, 50, 64) and check(parameter.detach())
    assert REGISTRY["Parameter"].params(REGISTRY["Parameter"].attrs(**attrs)) == {"": (1, 50, 64)}
    assert run("Parameter", attrs, [], [], module=parameter) is parameter


def test_parameter_errors():
    for bad in ({"shape": ()}, {"shape": (0, 3)}, {"shape": (2,), "std": 0.0}, {"shape": (2,), "init": "xavier"}):
        with pytest.raises(ValueError):
            REGISTRY["Parameter"].attrs(**bad)


def test_parameter_in_a_spec(tmp_path):
    from tests.helpers import compile_to_module
    module = compile_to_module("model M(d: int = 4) {\n  in x: [B, T, d]\n"
                               "  gamma = Parameter([d], init=\"constant\", value=0.5)()\n"
                               "  cls = Parameter([1, 1, d])()\n"
                               "  out y = Concat(1)(Expand([B, -1, -1])(cls), x * gamma)\n}", tmp_path)
    model = module.M()
    assert sorted(model.state_dict()) == ["cls", "gamma"]
    x = torch.randn(2, 3, 4)
    y = model(x)
    assert y.shape == (2, 4, 4) and torch.equal(y[:, 0], torch.zeros(2, 4)) and torch.equal(y[:, 1:], x * 0.5)


# ---------------------------------------------------------------------- Expand
def test_expand():
    assert infer("Expand", [tt(1, 1, 8)], shape=(B, -1, -1)) == [tt(B, 1, 8)]
    assert infer("Expand", [tt(1, 8)], shape=(3, S, -1)) == [tt(3, S, 8)]
    assert "size 1" in shape_error("Expand", [tt(2, 8)], shape=(B, 4, 8)).message
    assert "fewer" in shape_error("Expand", [tt(1, 2, 8)], shape=(2, 8)).message
    assert "keep" in shape_error("Expand", [tt(1, 8)], shape=(-1, -1, 8)).message
    x = torch.randn(1, 1, 5)
    assert torch.equal(run("Expand", {"shape": (3, -1, -1)}, [x], [tt(1, 1, 5)]), x.expand(3, -1, -1))


# ---------------------------------------------------------------------- Rotary
def hf_rotary(x: torch.Tensor, heads: int, theta: float, positions: torch.Tensor) -> torch.Tensor:
    """HF Llama's rotary embedding on [B, T, heads * head_dim], through transformers' own code."""
    from transformers.models.llama import modeling_llama
    batch, length, features = x.shape
    config = modeling_llama.LlamaConfig(hidden_size=features, num_attention_heads=heads, rope_theta=theta)
    cos, sin = modeling_llama.LlamaRotaryEmbedding(config)(x, positions)
    heads_first = x.unflatten(-1, (heads, -1)).transpose(1, 2)
    rotated, _ = modeling_llama.apply_rotary_pos_emb(heads_first, heads_first, cos, sin)
    return rotated.transpose(1, 2).flatten(2)


def gptj_rotary(x: torch.Tensor, heads: int, theta: float) -> torch.Tensor:
    """GPT-J's rotation, written as its paper code: sin/cos duplicated pairwise, rotate_every_two."""
    batch, length, features = x.shape
    dim = features // heads
    inv_freq = 1.0 / (theta ** (torch.arange(0, dim, 2).float() / dim))
    sinusoid = torch.einsum("i,j->ij", torch.arange(length).float(), inv_freq)
    sin, cos = (t.repeat_interleave(2, dim=-1)[None, :, None] for t in (sinusoid.sin(), sinusoid.cos()))
    h = x.unflatten(-1, (heads, dim))
    every_two = torch.stack((-h[..., 1::2], h[..., ::2]), dim=-1).flatten(-2)
    return (h * cos + every_two * sin).flatten(2)


@pytest.mark.parametrize("theta", [10000.0, 500000.0])
def test_rotary_matches_hf_llama(theta):
    pytest.importorskip("transformers")
    x = torch.randn(2, 7, 4 * 16)
    positions = torch.arange(3, 10)[None].expand(2, -1)
    expected = hf_rotary(x, 4, theta, positions)
    actual = run("Rotary", {"heads": 4, "theta": theta}, [x, positions], [tt(2, 7, 64), tt(2, 7, dtype="int64")])
    torch.testing.assert_close(actual, expected, atol=1e-6, rtol=1e-5)
    default = run("Rotary", {"heads": 4, "theta": theta}, [x], [tt(2, 7, 64)])
    torch.testing.assert_close(default, hf_rotary(x, 4, theta, torch.arange(7)[None].expand(2, -1)))


def test_rotary_interleaved_matches_gptj():
    x = torch.randn(2, 5, 3 * 8)
    actual = run("Rotary", {"heads": 3, "interleaved": True}, [x], [tt(2, 5, 24)])
    torch.testing.assert_close(actual, gptj_rotary(x, 3, 10000.0), atol=1e-6, rtol=1e-5)


def test_rotary_scaling_and_partial_rotation():
    x = torch.randn(1, 6, 2 * 8)
    scaled = run("Rotary", {"heads": 2, "scaling": 4.0}, [x], [tt(1, 6, 16)])
    quarter_positions = run("Rotary", {"heads": 2}, [x, torch.arange(6)[None] * 0.25], [tt(1, 6, 16), None])
    torch.testing.assert_close(scaled, quarter_positions)
    partial = run("Rotary", {"heads": 2, "rotary_dim": 4}, [x], [tt(1, 6, 16)])
    heads_in, heads_out = x.unflatten(-1, (2, 8)), partial.unflatten(-1, (2, 8))
    assert torch.equal(heads_out[..., 4:], heads_in[..., 4:])         # the rest passes through
    rotated = run("Rotary", {"heads": 2}, [heads_in[..., :4].flatten(2)], [tt(1, 6, 8)])
    torch.testing.assert_close(heads_out[..., :4], rotated.unflatten(-1, (2, 4)))


def test_rotary_errors():
    assert "even" in shape_error("Rotary", [tt(B, T, 12)], heads=4).message            # head size 3
    assert "heads=4 times" in shape_error("Rotary", [tt(B, T, 10)], heads=4).message       # 10 is no multiple of 4
    assert "rotary_dim" in shape_error("Rotary", [tt(B, T, 16)], heads=2, rotary_dim=10).message
    assert "[B, T, heads" in shape_error("Rotary", [tt(B, 16)], heads=2).message
    e = shape_error("Rotary", [tt(B, T, 16), tt(B, T)], heads=2)
    assert (e.code, e.slot) == ("DLC008", 1)
    assert shape_error("Rotary", [tt(B, T, 16), tt(B, S, dtype="int64")], heads=2).slot == 1
    assert shape_error("Rotary", [tt(B, T, 16, dtype="int64")], heads=2).code == "DLC008"


# ---------------------------------------------------------------------- StochasticDepth
@pytest.mark.parametrize("mode", ["row", "batch"])
@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_stochastic_depth_matches_torchvision(mode, p):
    from torchvision.ops import stochastic_depth
    x = torch.randn(16, 3, 4, 4)
    assert infer("StochasticDepth", [tt(B, 3, 4, 4)], p=p, mode=mode) == [tt(B, 3, 4, 4)]
    torch.manual_seed(5)
    ours = run("StochasticDepth", {"p": p, "mode": mode}, [x], [tt(16, 3, 4, 4)], training=True)
    torch.manual_seed(5)
    torch.testing.assert_close(ours, stochastic_depth(x, p, mode, training=True), rtol=0, atol=0)
    assert run("StochasticDepth", {"p": p, "mode": mode}, [x], [tt(16, 3, 4, 4)], training=False) is x


def test_stochastic_depth_errors():
    assert shape_error("StochasticDepth", [tt(B, dtype="int64")], p=0.1).code == "DLC008"
    with pytest.raises(ValueError):
        REGISTRY["StochasticDepth"].attrs(p=1.5)
    with pytest.raises(ValueError):
        REGISTRY["StochasticDepth"].attrs(p=0.1, mode="layer")
    assert not REGISTRY["StochasticDepth"].is_pure(REGISTRY["StochasticDepth"].attrs(p=0.1))


# ---------------------------------------------------------------------- grouped-query and windowed attention
def reference_attention(q, k, v, heads, kv_heads, causal=False, window=None, mask=None):
    """HF's eager attention: repeat_kv, scaled scores, additive masks, softmax."""
    from transformers.models.llama.modeling_llama import repeat_kv
    split = lambda t, n: t.unflatten(-1, (n, -1)).transpose(1, 2)     # noqa: E731
    qh, kh, vh = split(q, heads), repeat_kv(split(k, kv_heads), heads // kv_heads), repeat_kv(split(v, kv_heads), heads // kv_heads)
    scores = qh @ kh.transpose(-2, -1) / math.sqrt(qh.shape[-1])
    i, j = torch.arange(q.shape[1])[:, None], torch.arange(k.shape[1])[None]
    keep = torch.ones(q.shape[1], k.shape[1], dtype=torch.bool)
    if causal:
        keep &= j <= i
    if window is not None:
        keep &= (i - j < window) if causal else ((i - j).abs() < window)
    if mask is not None:
        keep = keep & mask[:, None, None, :]
    scores = scores + torch.where(keep, 0.0, torch.finfo(scores.dtype).min)
    return (F.softmax(scores, dim=-1) @ vh).transpose(1, 2).flatten(2)


@pytest.mark.parametrize("kv_heads", [1, 2, 4])
@pytest.mark.parametrize("fused", [False, True])
def test_grouped_query_attention(kv_heads, fused):
    pytest.importorskip("transformers")
    q, k, v = torch.randn(2, 5, 32), torch.randn(2, 5, kv_heads * 8), torch.randn(2, 5, kv_heads * 8)
    mask = torch.ones(2, 5, dtype=torch.bool)
    mask[1, 3:] = False
    types = [tt(2, 5, 32), tt(2, 5, kv_heads * 8), tt(2, 5, kv_heads * 8), tt(2, 5, dtype="bool")]
    attrs = {"heads": 4, "kv_heads": kv_heads, "causal": True, "fused": fused}
    assert infer("Attention", types, **attrs) == [tt(2, 5, 32)]
    actual = run("Attention", attrs, [q, k, v, mask], types)
    torch.testing.assert_close(actual, reference_attention(q, k, v, 4, kv_heads, causal=True, mask=mask))


@pytest.mark.parametrize("causal", [True, False])
def test_sliding_window_attention(causal):
    pytest.importorskip("transformers")
    q, k, v = torch.randn(2, 9, 16), torch.randn(2, 9, 16), torch.randn(2, 9, 16)
    types = [tt(2, 9, 16)] * 3
    actual = run("Attention", {"heads": 2, "causal": causal, "window": 3}, [q, k, v], types)
    torch.testing.assert_close(actual, reference_attention(q, k, v, 2, 2, causal=causal, window=3))


def test_attention_gqa_errors():
    e = shape_error("Attention", [tt(B, S, 64), tt(B, S, 16), tt(B, S, 16)], heads=8)
    assert "differ" in e.message and "kv_heads=2" in e.hint
    assert "multiple" in shape_error("Attention", [tt(B, S, 64)] * 3, heads=8, kv_heads=3).message
    assert "head sizes" in shape_error("Attention", [tt(B, S, 64), tt(B, S, 32), tt(B, S, 32)],
                                       heads=8, kv_heads=2).message
    e = shape_error("Attention", [tt(B, S, 64), tt(B, S, 20), tt(B, S, 20)], heads=8, kv_heads=8)
    assert "kv_heads=8" in e.message
    with pytest.raises(ValueError):
        REGISTRY["Attention"].attrs(heads=4, window=0)


def test_sdpa_pass_keeps_windowed_attention_explicit():
    from compiler.ir import Graph, Node, Program
    from compiler.passes.attention import lower_attention_to_sdpa
    from compiler.diagnostics import Span
    span = Span("x.dl", 1, 1, 1, 2)
    graph = Graph("G", "G", {}, span)
    a = REGISTRY["Attention"].attrs(heads=2, window=4)
    graph.add(Node("n1", "op", "Attention", a, span, ("y",), None))
    assert not lower_attention_to_sdpa(graph, Program("x.dl", {"G": graph}, [], {}))
