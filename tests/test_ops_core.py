"""Shape rules, parameter shapes and lowerings of the core ops (linear, norm,
activation, elementwise, tensor, attention), checked against real torch modules
and functions: the lowered lines are executed and compared with hand-written
references."""
from __future__ import annotations

import math
import re
from types import SimpleNamespace

import pydantic
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from compiler.ir.dims import const, dim
from compiler.codegen.helpers import HELPERS, helper_names
from compiler.ops import REGISTRY, LowerContext, ShapeError
from compiler.ir.types import TensorType, symbol

B, S, T, D = (symbol(n) for n in ("B", "S", "T", "D"))
torch.manual_seed(0)


def tt(*shape, dtype: str = "float", optional: bool = False) -> TensorType:
    return TensorType(tuple(dim(d) for d in shape), dtype, optional)


def infer(name: str, ins: list[TensorType | None], **attrs) -> list[TensorType]:
    op = REGISTRY[name]
    return op.infer(op.attrs(**attrs), ins)


def shape_error(name: str, ins, **attrs) -> ShapeError:
    with pytest.raises(ShapeError) as info:
        infer(name, ins, **attrs)
    return info.value


def build(name: str, **attrs) -> nn.Module:
    """The op's submodule, from its generated constructor."""
    op = REGISTRY[name]
    helpers = {}
    for helper in op.helpers:
        exec(HELPERS[helper], {"torch": torch, "nn": nn, "F": F, "math": math}, helpers)  # noqa: S102
    return eval(op.init(op.attrs(**attrs)), {"nn": nn, "torch": torch, **helpers})


def state_shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def run_lowered(name: str, attrs: dict, inputs: list[torch.Tensor | None], in_types: list[TensorType | None],
                module: nn.Module | None = None, outs: int = 1, training: bool = False):
    """Execute the op's lowering on real tensors; returns its outputs."""
    op = REGISTRY[name]
    a = op.attrs(**attrs)
    arg_names = [f"arg{i}" if t is not None or x is not None else None for i, (x, t) in enumerate(zip(inputs, in_types))]
    out_types = op.infer(a, in_types) if all(t is not None for t in in_types[:1]) else []
    ctx = LowerContext(arg_names, [f"out{i}" for i in range(outs)], "layer" if module is not None else None,
                       in_types, out_types, {}, lambda hint: f"_{hint}")
    lines = op.lower(a, ctx)
    env = {"torch": torch, "F": F, "nn": nn, "math": math, "layer": module, "self": SimpleNamespace(training=training)}
    env.update({n: x for n, x in zip(arg_names, inputs) if n is not None})
    code = "\n".join(lines)
    for helper in helper_names() & set(re.findall(r"(\w+)\(", code)):   # runtime helpers the lines call
        exec(HELPERS[helper], env)  # noqa: S102
    exec(code, env)  # noqa: S102 - runs the generated lines
    return [env[f"out{i}"] for i in range(outs)]


# ---------------------------------------------------------------------- Linear, Embedding, positions
@pytest.mark.parametrize("bias", [True, False])
def test_linear(bias):
    (out,) = infer("Linear", [tt(B, S, 8)], in_features=8, out_features=3, bias=bias)
    assert out == tt(B, S, 3)
    assert infer("Linear", [tt(8)], in_features=8, out_features=2)[0] == tt(2)
    module = build("Linear", in_features=8, out_features=3, bias=bias)
    assert state_shapes(module) == REGISTRY["Linear"].params(REGISTRY["Linear"].attrs(in_features=8, out_features=3,
                                                                                       bias=bias))
    x = torch.randn(2, 5, 8)
    (y,) = run_lowered("Linear", {"in_features": 8, "out_features": 3, "bias": bias}, [x], [tt(2, 5, 8)], module)
    assert torch.equal(y, module(x))


def test_linear_errors():
    e = shape_error("Linear", [tt(B, S, 7)], in_features=8, out_features=3)
    assert (e.code, e.slot) == ("DLC007", 0) and "must be 8, got 7" in e.message and "[B, S, 7]" in e.message
    assert shape_error("Linear", [tt(B, 8, dtype="int64")], in_features=8, out_features=3).code == "DLC008"
    assert "at least one dimension" in shape_error("Linear", [tt()], in_features=8, out_features=3).message
    assert shape_error("Linear", [None], in_features=8, out_features=3).message == "Linear input is required"
    for bad in ({"in_features": 0, "out_features": 3}, {"in_features": 8.0, "out_features": 3},
                {"in_features": True, "out_features": 3}, {"in_features": 8, "out_features": 3, "bias": 1},
                {"in_features": 8, "out_features": 3, "extra": 1}, {"in_features": D, "out_features": 3}):
        with pytest.raises(pydantic.ValidationError):
            REGISTRY["Linear"].attrs(**bad)


def test_linear_with_symbolic_dims():
    (out,) = infer("Linear", [tt(B, S * 2, 8)], in_features=8, out_features=4)
    assert out.shape == (B, 2 * S, const(4))
    # The last dimension must be known to equal in_features; a free symbol is not.
    assert shape_error("Linear", [tt(B, S, D)], in_features=8, out_features=4).code == "DLC007"


def test_embedding():
    (out,) = infer("Embedding", [tt(B, S, dtype="int64")], num_embeddings=100, embedding_dim=16)
    assert out == tt(B, S, 16)
    assert infer("Embedding", [tt(B, dtype="int32")], num_embeddings=5, embedding_dim=2)[0] == tt(B, 2)
    e = shape_error("Embedding", [tt(B, S)], num_embeddings=100, embedding_dim=16)
    assert e.code == "DLC008" and "int64" in e.hint
    assert shape_error("Embedding", [tt(B, S, dtype="bool")], num_embeddings=100, embedding_dim=16).code == "DLC008"
    module = build("Embedding", num_embeddings=10, embedding_dim=4, padding_idx=0)
    assert module.padding_idx == 0
    assert state_shapes(module) == REGISTRY["Embedding"].params(REGISTRY["Embedding"].attrs(num_embeddings=10, embedding_dim=4))
    ids = torch.randint(0, 10, (3, 7))
    (y,) = run_lowered("Embedding", {"num_embeddings": 10, "embedding_dim": 4}, [ids], [tt(3, 7, dtype="int64")],
                       module)
    assert torch.equal(y, module.weight[ids])


def test_position_embedding():
    (out,) = infer("PositionEmbedding", [tt(B, S, dtype="int64")], max_len=64, dim=8)
    assert out == tt(S, 8)
    assert infer("PositionEmbedding", [tt(B, S, 5)], max_len=64, dim=8)[0] == tt(S, 8)
    assert "[B, S, ...]" in shape_error("PositionEmbedding", [tt(S)], max_len=64, dim=8).message
    module = build("PositionEmbedding", max_len=64, dim=8)
    assert state_shapes(module) == {"weight": (64, 8)}
    ids = torch.randint(0, 10, (2, 5))
    (y,) = run_lowered("PositionEmbedding", {"max_len": 64, "dim": 8}, [ids], [tt(2, 5, dtype="int64")], module)
    assert torch.equal(y, module.weight[:5])


def test_sinusoidal_positions():
    assert infer("SinusoidalPositions", [tt(B, S, 8)], max_len=50, dim=8)[0] == tt(B, S, 8)
    assert shape_error("SinusoidalPositions", [tt(B, S, 6)], max_len=50, dim=8).code == "DLC007"
    assert shape_error("SinusoidalPositions", [tt(B, 8)], max_len=50, dim=8).code == "DLC007"
    module = build("SinusoidalPositions", max_len=50, dim=8)
    assert module.state_dict() == {}                      # a buffer, not a weight
    x = torch.randn(2, 6, 8)
    (y,) = run_lowered("SinusoidalPositions", {"max_len": 50, "dim": 8}, [x], [tt(2, 6, 8)], module)
    pos, i = torch.arange(6.0)[:, None], torch.arange(0, 8, 2.0)
    angle = pos / 10000 ** (i / 8)
    table = torch.stack([angle.sin(), angle.cos()], dim=-1).flatten(1)
    torch.testing.assert_close(y, x + table)


@pytest.mark.parametrize("bias", [True, False])
def test_transposed_linear(bias):
    attrs = {"in_features": 6, "out_features": 4, "bias": bias}
    assert infer("TransposedLinear", [tt(B, S, 6)], **attrs)[0] == tt(B, S, 4)
    module = build("TransposedLinear", **attrs)
    assert state_shapes(module) == REGISTRY["TransposedLinear"].params(REGISTRY["TransposedLinear"].attrs(**attrs))
    assert isinstance(module, nn.Linear)                     # GPT-2's Conv1D layout is undone at load time
    assert REGISTRY["TransposedLinear"].reference_transposed == ("weight",)
    if bias:
        nn.init.normal_(module.bias)
    x = torch.randn(2, 3, 6)
    (y,) = run_lowered("TransposedLinear", attrs, [x], [tt(2, 3, 6)], module)
    torch.testing.assert_close(y, x @ module.weight.t() + (module.bias if bias else 0))


def test_fused_linear():
    attrs = {"in_features": 8, "out_sizes": (8, 4, 4)}
    outs = infer("FusedLinear", [tt(B, S, 8)], **attrs)
    assert outs == [tt(B, S, 8), tt(B, S, 4), tt(B, S, 4)]
    module = build("FusedLinear", **attrs)
    assert state_shapes(module) == REGISTRY["FusedLinear"].params(REGISTRY["FusedLinear"].attrs(**attrs))
    x = torch.randn(2, 3, 8)
    ys = run_lowered("FusedLinear", attrs, [x], [tt(2, 3, 8)], module, outs=3)
    torch.testing.assert_close(torch.cat(ys, dim=-1), module(x))


# ---------------------------------------------------------------------- norms and dropout
@pytest.mark.parametrize("name, attrs, torch_module", [
    ("LayerNorm", {"dim": 8}, lambda: nn.LayerNorm(8)),
    ("LayerNorm", {"dim": 8, "eps": 1e-12, "bias": False}, lambda: nn.LayerNorm(8, eps=1e-12, bias=False)),
    ("RMSNorm", {"dim": 8, "eps": 1e-6}, lambda: nn.RMSNorm(8, eps=1e-6)),
])
def test_last_dim_norms(name, attrs, torch_module):
    assert infer(name, [tt(B, S, 8)], **attrs)[0] == tt(B, S, 8)
    assert infer(name, [tt(8, dtype="float16")], **attrs)[0] == tt(8, dtype="float16")
    e = shape_error(name, [tt(B, S, 4)], **attrs)
    assert e.code == "DLC007" and "must be 8, got 4" in e.message
    assert shape_error(name, [tt(B, 8, dtype="int64")], **attrs).code == "DLC008"
    module, reference = build(name, **attrs), torch_module()
    assert state_shapes(module) == state_shapes(reference) == REGISTRY[name].params(REGISTRY[name].attrs(**attrs))
    for p in module.parameters():
        nn.init.normal_(p)
    reference.load_state_dict(module.state_dict())
    x = torch.randn(2, 3, 8)
    (y,) = run_lowered(name, attrs, [x], [tt(2, 3, 8)], module)
    torch.testing.assert_close(y, reference(x))


def test_rms_norm_matches_its_definition():
    module = build("RMSNorm", dim=8, eps=1e-6)
    nn.init.normal_(module.weight)
    x = torch.randn(4, 8)
    expected = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * module.weight
    torch.testing.assert_close(module(x), expected)


@pytest.mark.parametrize("name, shapes, bad", [
    ("BatchNorm1d", [(B, 6), (B, 6, T)], [(B, 4, T), (B, 6, T, T), (6,)]),
    ("BatchNorm2d", [(B, 6, S, T)], [(B, 6, S), (B, 4, S, T)]),
])
def test_batch_norms(name, shapes, bad):
    for shape in shapes:
        assert infer(name, [tt(*shape)], num_features=6)[0] == tt(*shape)
    for shape in bad:
        assert shape_error(name, [tt(*shape)], num_features=6).code == "DLC007"
    module = build(name, num_features=6, eps=1e-3, momentum=0.2)
    assert (module.eps, module.momentum) == (1e-3, 0.2)
    params = REGISTRY[name].params(REGISTRY[name].attrs(num_features=6))
    assert {k: v for k, v in state_shapes(module).items() if k in params} == params
    assert set(state_shapes(module)) - set(params) == {"running_mean", "running_var", "num_batches_tracked"}
    assert not REGISTRY[name].pure


def test_dropout():
    assert infer("Dropout", [tt(B, S)], p=0.5)[0] == tt(B, S)
    assert shape_error("Dropout", [tt(B, dtype="int64")], p=0.5).code == "DLC008"
    for bad in (1.0, -0.1, "0.5"):
        with pytest.raises(pydantic.ValidationError):
            REGISTRY["Dropout"].attrs(p=bad)
    module = build("Dropout", p=0.5).eval()
    x = torch.randn(4, 4)
    assert torch.equal(run_lowered("Dropout", {"p": 0.5}, [x], [tt(4, 4)], module)[0], x)
    module.train()
    zeros = (run_lowered("Dropout", {"p": 0.5}, [torch.ones(1000)], [tt(1000)], module)[0] == 0).float().mean()
    assert 0.35 < zeros < 0.65 and not REGISTRY["Dropout"].pure


# ---------------------------------------------------------------------- activations
_ACTIVATIONS = [
    ("ReLU", {}, F.relu), ("SiLU", {}, F.silu), ("ReLU6", {}, F.relu6), ("Tanh", {}, torch.tanh),
    ("Sigmoid", {}, torch.sigmoid), ("GELU", {}, F.gelu),
    ("GELU", {"approximate": "tanh"}, lambda x: 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))),
    ("LeakyReLU", {"negative_slope": 0.2}, lambda x: torch.where(x > 0, x, 0.2 * x)),
    ("ELU", {"alpha": 0.5}, lambda x: torch.where(x > 0, x, 0.5 * (x.exp() - 1))),
    ("Activation", {"kind": "relu"}, F.relu), ("Activation", {"kind": "gelu"}, F.gelu),
    ("Activation", {"kind": "gelu_tanh"}, lambda x: F.gelu(x, approximate="tanh")),
    ("Activation", {"kind": "silu"}, lambda x: x * torch.sigmoid(x)), ("Activation", {"kind": "relu6"}, F.relu6),
    ("Activation", {"kind": "tanh"}, torch.tanh), ("Activation", {"kind": "sigmoid"}, torch.sigmoid),
    ("Activation", {"kind": "identity"}, lambda x: x),
]


@pytest.mark.parametrize("name, attrs, reference", _ACTIVATIONS)
def test_activations(name, attrs, reference):
    assert infer(name, [tt(B, S, D)], **attrs)[0] == tt(B, S, D)
    assert shape_error(name, [tt(B, dtype="int64")], **attrs).code == "DLC008"
    assert REGISTRY[name].init is None and REGISTRY[name].params(REGISTRY[name].attrs(**attrs)) == {}
    x = torch.linspace(-8, 8, 101)
    (y,) = run_lowered(name, attrs, [x], [tt(101)])
    torch.testing.assert_close(y, reference(x), atol=1e-6, rtol=1e-5)


def test_activation_kind_is_validated():
    with pytest.raises(pydantic.ValidationError):
        REGISTRY["Activation"].attrs(kind="swish")
    with pytest.raises(pydantic.ValidationError):
        REGISTRY["GELU"].attrs(approximate="erf")


# ---------------------------------------------------------------------- elementwise
@pytest.mark.parametrize("a, b, out", [
    ((B, S, 8), (B, S, 8), (B, S, 8)),
    ((B, S, 8), (8,), (B, S, 8)),
    ((S, 8), (B, S, 8), (B, S, 8)),
    ((B, 1, 8), (1, S, 1), (B, S, 8)),
    ((B, 2 * D), (B, D + D), (B, 2 * D)),
    ((), (B, S), (B, S)),
])
@pytest.mark.parametrize("name", ["Add", "Sub", "Mul", "Div"])
def test_binary_broadcasting(name, a, b, out):
    assert infer(name, [tt(*a), tt(*b)])[0] == tt(*out)


def test_binary_errors_name_both_operands():
    e = shape_error("Add", [tt(B, S, 8), tt(B, S, 16)])
    assert (e.code, e.slot) == ("DLC007", None) and "[B, S, 8] and [B, S, 16]" in e.message and e.hint
    assert shape_error("Mul", [tt(B, S), tt(B, T)]).code == "DLC007"        # S and T are not known equal
    e = shape_error("Add", [tt(B, dtype="bool"), tt(B)])         # int and float promote (tests/test_ops_math.py)
    assert (e.code, e.slot) == ("DLC008", None)
    assert infer("Add", [tt(B, dtype="float16"), tt(B)])[0].dtype == "float16"
    assert infer("Add", [tt(B, dtype="int64"), tt(B, dtype="int64")])[0].dtype == "int64"


@pytest.mark.parametrize("name, fn", [("Add", torch.add), ("Sub", torch.sub), ("Mul", torch.mul), ("Div", torch.div)])
def test_binary_lowering(name, fn):
    x, y = torch.randn(2, 1, 4), torch.randn(3, 4) + 3
    (z,) = run_lowered(name, {}, [x, y], [tt(2, 1, 4), tt(3, 4)])
    assert torch.equal(z, fn(x, y))


def test_scale():
    assert infer("Scale", [tt(B, S)], factor=0.5)[0] == tt(B, S)
    assert shape_error("Scale", [tt(B, dtype="bool")], factor=0.5).code == "DLC008"
    x = torch.randn(3, 3)
    assert torch.equal(run_lowered("Scale", {"factor": 0.125}, [x], [tt(3, 3)])[0], x * 0.125)


def test_matmul():
    assert infer("MatMul", [tt(B, S, 8), tt(8, T)])[0] == tt(B, S, T)
    assert infer("MatMul", [tt(B, 1, S, D), tt(4, D, T)])[0] == tt(B, 4, S, T)
    e = shape_error("MatMul", [tt(B, S, 8), tt(B, 4, T)])
    assert e.code == "DLC007" and "8 vs 4" in e.message
    assert "rank >= 2" in shape_error("MatMul", [tt(8), tt(8, 2)]).message
    assert "do not broadcast" in shape_error("MatMul", [tt(2, S, 8), tt(3, 8, T)]).message
    x, y = torch.randn(2, 3, 4), torch.randn(4, 5)
    assert torch.equal(run_lowered("MatMul", {}, [x, y], [tt(2, 3, 4), tt(4, 5)])[0], x @ y)


def test_softmax():
    assert infer("Softmax", [tt(B, S, T)], dim=1)[0] == tt(B, S, T)
    assert "out of range" in shape_error("Softmax", [tt(B, S)], dim=2).message
    assert "out of range" in shape_error("Softmax", [tt(B, S)], dim=-3).message
    x = torch.randn(2, 3, 4)
    torch.testing.assert_close(run_lowered("Softmax", {"dim": 1}, [x], [tt(2, 3, 4)])[0], x.softmax(1))


# ---------------------------------------------------------------------- tensor ops
def test_reshape():
    assert infer("Reshape", [tt(B, S, 8)], shape=[B, S, 2, 4])[0] == tt(B, S, 2, 4)
    assert infer("Reshape", [tt(B, S, 8)], shape=[B, -1])[0] == tt(B, 8 * S)
    assert infer("Reshape", [tt(B, S, 2, 4)], shape=[B, S, 8])[0] == tt(B, S, 8)
    assert infer("Reshape", [tt(6, 4)], shape=[-1, 8])[0] == tt(3, 8)
    assert "elements" in shape_error("Reshape", [tt(B, S, 8)], shape=[B, S, 3]).message
    assert "not a multiple" in shape_error("Reshape", [tt(B, 6)], shape=[B, -1, 4]).message
    for bad in ([], [0], [-2], [-1, -1], [1.5], [True], "B"):
        with pytest.raises(pydantic.ValidationError):
            REGISTRY["Reshape"].attrs(shape=bad)
    x = torch.randn(2, 3, 8)
    op = REGISTRY["Reshape"]
    a = op.attrs(shape=[B, S, 2, -1])
    ctx = LowerContext(["x"], ["y"], None, [tt(B, S, 8)], op.infer(a, [tt(B, S, 8)]), {B: "batch", S: "seq"},
                       lambda h: h)
    (line,) = op.lower(a, ctx)
    assert line == "y = x.reshape(batch, seq, 2, -1)" and ctx.uses_dims == {B, S}
    env = {"x": x, "batch": 2, "seq": 3}
    exec(line, env)  # noqa: S102
    assert torch.equal(env["y"], x.reshape(2, 3, 2, 4))


def test_transpose_permute_flatten():
    assert infer("Transpose", [tt(B, S, D)], dim0=1, dim1=-1)[0] == tt(B, D, S)
    assert "out of range" in shape_error("Transpose", [tt(B, S)], dim0=0, dim1=2).message
    assert infer("Permute", [tt(B, S, D)], dims=(2, 0, 1))[0] == tt(D, B, S)
    assert infer("Permute", [tt(B, S, D)], dims=(-1, 0, 1))[0] == tt(D, B, S)
    assert "not a permutation" in shape_error("Permute", [tt(B, S, D)], dims=(0, 0, 1)).message
    assert "not a permutation" in shape_error("Permute", [tt(B, S, D)], dims=(0, 1)).message
    assert infer("Flatten", [tt(B, 4, S, T)])[0] == tt(B, 4 * S * T)
    assert infer("Flatten", [tt(B, 4, S, T)], start=1, end=2)[0] == tt(B, 4 * S, T)
    assert "comes after" in shape_error("Flatten", [tt(B, 4, S)], start=2, end=1).message
    x = torch.randn(2, 3, 4, 5)
    assert torch.equal(run_lowered("Transpose", {"dim0": 1, "dim1": -1}, [x], [tt(2, 3, 4, 5)])[0], x.transpose(1, -1))
    assert torch.equal(run_lowered("Permute", {"dims": (3, 1, 0, 2)}, [x], [tt(2, 3, 4, 5)])[0], x.permute(3, 1, 0, 2))
    assert torch.equal(run_lowered("Flatten", {"start": 1, "end": 2}, [x], [tt(2, 3, 4, 5)])[0], x.flatten(1, 2))


def test_concat_and_split():
    assert infer("Concat", [tt(B, S, 4), tt(B, S, D), tt(B, S, 2)])[0] == tt(B, S, 6 + D)
    assert infer("Concat", [tt(B, S, 4), tt(B, T, 4)], dim=1)[0] == tt(B, S + T, 4)
    e = shape_error("Concat", [tt(B, S, 4), tt(B, T, 4)])
    assert (e.code, e.slot) == ("DLC007", 1) and "outside dim -1" in e.message
    assert shape_error("Concat", [tt(B, 4), tt(B, 4, dtype="int64")]).code == "DLC008"
    assert shape_error("Concat", [tt(B, 4), tt(B, 4, 1)]).code == "DLC007"
    outs = infer("Split", [tt(B, S, 12)], sizes=(4, 8))
    assert outs == [tt(B, S, 4), tt(B, S, 8)]
    assert "add up to 10" in shape_error("Split", [tt(B, 12)], sizes=(4, 6)).message
    assert shape_error("Split", [tt(B, D)], sizes=(4, 6)).code == "DLC007"   # D is not known to be 10
    assert REGISTRY["Split"].num_outputs(REGISTRY["Split"].attrs(sizes=(1, 2, 3))) == 3
    xs = [torch.randn(2, 3), torch.randn(2, 5)]
    (joined,) = run_lowered("Concat", {"dim": -1}, xs, [tt(2, 3), tt(2, 5)])
    assert torch.equal(joined, torch.cat(xs, -1))
    parts = run_lowered("Split", {"sizes": (3, 5)}, [joined], [tt(2, 8)], outs=2)
    assert all(torch.equal(p, x) for p, x in zip(parts, xs))


def test_reductions_and_select():
    assert infer("Mean", [tt(B, S, D)], dim=1)[0] == tt(B, D)
    assert infer("Max", [tt(B, S, D)], dim=-1, keepdim=True)[0] == tt(B, S, 1)
    assert "out of range" in shape_error("Mean", [tt(B, S)], dim=5).message
    assert infer("Select", [tt(B, S, D)], dim=1, index=0)[0] == tt(B, D)
    assert infer("Select", [tt(B, 4, D)], dim=1, index=-4)[0] == tt(B, D)
    assert "out of range" in shape_error("Select", [tt(B, 4, D)], dim=1, index=4).message
    x = torch.randn(2, 3, 4)
    assert torch.equal(run_lowered("Mean", {"dim": 1}, [x], [tt(2, 3, 4)])[0], x.mean(1))
    assert torch.equal(run_lowered("Max", {"dim": -1, "keepdim": True}, [x], [tt(2, 3, 4)])[0], x.amax(-1, keepdim=True))
    assert torch.equal(run_lowered("Select", {"dim": 1, "index": 2}, [x], [tt(2, 3, 4)])[0], x[:, 2])


# ---------------------------------------------------------------------- attention
def test_attention_shapes():
    (out,) = infer("Attention", [tt(B, S, 64), tt(B, T, 64), tt(B, T, 32)], heads=4)
    assert out == tt(B, S, 32)
    masks = [tt(B, T, dtype="bool"), tt(B, S, T, dtype="bool"), tt(B, 1, S, T, dtype="bool"),
             tt(B, 4, S, T, dtype="bool"), tt(1, 1, 1, T, dtype="bool")]
    for mask in masks:
        assert infer("Attention", [tt(B, S, 64), tt(B, T, 64), tt(B, T, 64), mask], heads=4)[0] == tt(B, S, 64)
    bias = tt(1, 4, S, T)
    assert infer("Attention", [tt(B, S, 64), tt(B, T, 64), tt(B, T, 64), None, bias], heads=4)[0] == tt(B, S, 64)


@pytest.mark.parametrize("ins, match, code", [
    ([tt(B, S, 60), tt(B, S, 60), tt(B, S, 60)], "not divisible by heads=8", "DLC007"),
    ([tt(B, S, 64), tt(B, S, 32), tt(B, S, 64)], "query and key features differ", "DLC007"),
    ([tt(B, S, 64), tt(B, T, 64), tt(B, S, 64)], "key and value lengths differ", "DLC007"),
    ([tt(B, 64), tt(B, S, 64), tt(B, S, 64)], r"must be \[B, T, features\]", "DLC007"),
    ([tt(B, S, 64, dtype="int64"), tt(B, S, 64), tt(B, S, 64)], "floating-point", "DLC008"),
    ([tt(B, S, 64), tt(B, T, 64), tt(B, T, 64), tt(B, T)], "must be bool", "DLC008"),
    ([tt(B, S, 64), tt(B, T, 64), tt(B, T, 64), tt(B, S, dtype="bool")], "does not fit the scores", "DLC007"),
    ([tt(B, S, 64), tt(B, T, 64), tt(B, T, 64), tt(T, dtype="bool")], "must be", "DLC007"),
    ([tt(B, S, 64), tt(B, T, 64), tt(B, T, 64), None, tt(1, 3, S, T)], "does not broadcast", "DLC007"),
    ([tt(B, S, 64), tt(B, T, 64), tt(B, T, 64), None, tt(S, T)], "does not broadcast", "DLC007"),
])
def test_attention_errors(ins, match, code):
    with pytest.raises(ShapeError, match=match) as info:
        infer("Attention", ins, heads=8)
    assert info.value.code == code


def reference_attention(q, k, v, heads, mask=None, bias=None, causal=False, scale=None):
    """softmax(q k^T / sqrt(d) + bias, masked) v, written out by hand."""
    b, tq, _features = q.shape
    tk = k.shape[1]
    split = lambda t: t.reshape(t.shape[0], t.shape[1], heads, -1).permute(0, 2, 1, 3)
    qh, kh, vh = split(q), split(k), split(v)
    scores = torch.einsum("bhqd,bhkd->bhqk", qh, kh) * (scale if scale is not None else qh.shape[-1] ** -0.5)
    if bias is not None:
        scores = scores + bias
    keep = torch.ones(b, 1, tq, tk, dtype=torch.bool)
    if mask is not None:
        keep = keep & {2: lambda m: m[:, None, None, :], 3: lambda m: m[:, None], 4: lambda m: m}[mask.dim()](mask)
    if causal:
        keep = keep & torch.ones(tq, tk, dtype=torch.bool).tril()
    weights = scores.masked_fill(~keep, float("-inf")).softmax(-1)
    return torch.einsum("bhqk,bhkd->bhqd", weights, vh).permute(0, 2, 1, 3).reshape(b, tq, -1)


def _random_mask(*shape) -> torch.Tensor:
    mask = torch.rand(*shape) > 0.4
    mask[..., 0] = True          # every query may attend somewhere (a fully masked row is undefined)
    return mask


_ATTENTION_CASES = {
    "plain": {"tq": 5, "tk": 5},
    "cross": {"tq": 3, "tk": 6},
    "padding mask": {"tq": 4, "tk": 6, "mask": (2, 6)},
    "3d mask": {"tq": 4, "tk": 6, "mask": (2, 4, 6)},
    "4d mask": {"tq": 4, "tk": 6, "mask": (2, 1, 4, 6)},
    "per-head mask": {"tq": 4, "tk": 6, "mask": (2, 4, 4, 6)},
    "causal": {"tq": 5, "tk": 5, "causal": True},
    "causal with padding": {"tq": 5, "tk": 5, "mask": (2, 5), "causal": True},
    "bias": {"tq": 4, "tk": 6, "bias": (1, 4, 4, 6)},
    "bias and mask": {"tq": 4, "tk": 6, "mask": (2, 6), "bias": (2, 4, 4, 6)},
    "bias, mask, causal": {"tq": 5, "tk": 5, "mask": (2, 5), "bias": (1, 4, 5, 5), "causal": True},
    "explicit scale": {"tq": 3, "tk": 3, "scale": 1.0},
    "optional mask given": {"tq": 4, "tk": 6, "mask": (2, 6), "optional": True},
    "optional mask absent": {"tq": 4, "tk": 6, "mask": (2, 6), "optional": True, "absent": True},
    "optional bias given": {"tq": 4, "tk": 6, "bias": (1, 4, 4, 6), "optional": True},
    "optional bias absent, causal": {"tq": 5, "tk": 5, "bias": (1, 4, 5, 5), "optional": True, "absent": True, "causal": True},
}


@pytest.mark.parametrize("fused", [False, True], ids=["explicit", "sdpa"])
@pytest.mark.parametrize("case", _ATTENTION_CASES)
def test_attention_lowering_matches_the_reference(case, fused):
    c = _ATTENTION_CASES[case]
    heads, features, tq, tk = 4, 32, c["tq"], c["tk"]
    q, k, v = torch.randn(2, tq, features), torch.randn(2, tk, features), torch.randn(2, tk, features)
    mask = _random_mask(*c["mask"]) if "mask" in c else None
    bias = torch.randn(*c["bias"]) if "bias" in c else None
    optional = c.get("optional", False)
    in_types = [tt(2, tq, features), tt(2, tk, features), tt(2, tk, features),
                tt(*c["mask"], dtype="bool", optional=optional) if mask is not None else None,
                tt(*c["bias"], optional=optional) if bias is not None else None]
    if c.get("absent"):              # declared optional, passed None at run time
        mask = bias = None
    attrs = {"heads": heads, "causal": c.get("causal", False), "scale": c.get("scale"), "fused": fused}
    inputs = [q, k, v, mask, bias]
    (out,) = run_lowered("Attention", attrs, inputs, in_types)
    expected = reference_attention(q, k, v, heads, mask, bias, attrs["causal"], c.get("scale"))
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-4)


def test_attention_with_symbolic_features_scales_at_run_time():
    q = torch.randn(2, 3, 24)
    op = REGISTRY["Attention"]
    for fused in (False, True):
        a = op.attrs(heads=3, fused=fused)
        ctx = LowerContext(["q", "q", "q"], ["out"], None, [tt(B, S, D)] * 3, [tt(B, S, D)], {}, lambda h: f"_{h}")
        env = {"torch": torch, "F": F, "q": q, "self": SimpleNamespace(training=False)}
        exec("\n".join(op.lower(a, ctx)), env)  # noqa: S102
        torch.testing.assert_close(env["out"], reference_attention(q, q, q, 3))


def test_attention_dropout_is_off_in_eval_and_on_in_training():
    q = torch.randn(2, 4, 16)
    types = [tt(2, 4, 16)] * 3
    for fused in (False, True):
        attrs = {"heads": 2, "dropout": 0.5, "fused": fused}
        (eval_out,) = run_lowered("Attention", attrs, [q, q, q], types)
        torch.testing.assert_close(eval_out, reference_attention(q, q, q, 2))
        (train_out,) = run_lowered("Attention", attrs, [q, q, q], types, training=True)
        assert not torch.allclose(train_out, eval_out)
    attention = REGISTRY["Attention"]
    assert not attention.is_pure(attention.attrs(heads=2, dropout=0.5)) and attention.init is None
    assert attention.is_pure(attention.attrs(heads=2))         # without dropout, CSE may merge two calls
