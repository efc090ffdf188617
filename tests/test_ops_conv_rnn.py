"""Shape rules, parameters, constructors and lowerings of the conv/pool and
recurrent ops, checked against real torch modules and functions."""
from __future__ import annotations

import itertools

import pydantic
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from compiler.ir.dims import dim, floor
from compiler.ops import REGISTRY, LowerContext, ShapeError
from compiler.ir.types import TensorType, py_dim, symbol

B, H, W, T = (symbol(n) for n in "BHWT")


def run_infer(name: str, shape, dtype: str = "float", **attrs):
    op = REGISTRY[name]
    a = op.attrs(**attrs)
    return op, a, op.infer(a, [TensorType(tuple(dim(d) for d in shape), dtype)])


def concrete(types) -> list[tuple[int, ...]]:
    return [tuple(int(d) for d in t.shape) for t in types]


def lower(op, a, module: str | None = None, outs: int = 1) -> list[str]:
    ctx = LowerContext(["x"], [f"y{i}" for i in range(outs)], module, [], [], {}, lambda s: s)
    return op.lower(a, ctx)


def state_shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


# ------------------------------------------------------------------ convolutions
CONV2D = [
    {"in_channels": 3, "out_channels": 8, "kernel_size": 7, "stride": 2, "padding": 3, "bias": False},
    {"in_channels": 4, "out_channels": 6, "kernel_size": [3, 5], "stride": [1, 2], "padding": [1, 0], "dilation": [2, 1]},
    {"in_channels": 4, "out_channels": 8, "kernel_size": 3, "groups": 2, "padding": 1},
    {"in_channels": 4, "out_channels": 4, "kernel_size": 3, "groups": 4},
    {"in_channels": 2, "out_channels": 3, "kernel_size": [2, 3], "padding": "same", "dilation": 2},
    {"in_channels": 2, "out_channels": 3, "kernel_size": 3, "padding": "valid"},
]


@pytest.mark.parametrize("attrs", CONV2D)
@pytest.mark.parametrize("hw", [(17, 12), (9, 9)])
def test_conv2d_matches_torch(attrs, hw):
    op, a, (out,) = run_infer("Conv2d", (2, attrs["in_channels"], *hw), **attrs)
    module = eval(op.init(a), {"nn": nn})
    assert state_shapes(module) == op.params(a)
    y = module(torch.randn(2, attrs["in_channels"], *hw))
    assert concrete([out]) == [tuple(y.shape)]
    assert all(d.is_int for d in out.shape)
    # The symbolic rule agrees with the concrete one, and renders to Python that does too.
    _, _, (sym,) = run_infer("Conv2d", (B, attrs["in_channels"], H, W), **attrs)
    assert sym.shape[0] == B and int(sym.shape[1]) == attrs["out_channels"]
    env = {H: hw[0], W: hw[1]}
    for d, size in zip(sym.shape[2:], y.shape[2:]):
        assert d.subs(env) == size
        assert eval(py_dim(d, {H: "h", W: "w"}), {"h": hw[0], "w": hw[1]}) == size
    ns = {"conv": module, "x": torch.randn(2, attrs["in_channels"], *hw)}
    (line,) = lower(op, a, module="conv")
    exec(line, ns)  # noqa: S102 - runs the generated line
    assert ns["y0"].shape == y.shape


def test_conv2d_symbolic_and_init_strings():
    op, a, (out,) = run_infer("Conv2d", (B, 3, H, W), in_channels=3, out_channels=64, kernel_size=7,
                              stride=2, padding=3, bias=False)
    assert op.init(a) == "nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)"
    assert out.shape[:2] == (B, 64)
    assert out.shape[2] == floor((H - 1) / 2) + 1
    op, a, (out,) = run_infer("Conv2d", (B, 3, H, W), in_channels=3, out_channels=4, kernel_size=[3, 3], padding=1)
    assert op.init(a) == "nn.Conv2d(3, 4, kernel_size=(3, 3), padding=1)"
    assert out.shape == (B, 4, H, W)            # a 3x3, pad-1 conv keeps the size exactly
    assert lower(op, a, module="self.conv") == ["y0 = self.conv(x)"]
    op, a, (out,) = run_infer("Conv2d", (B, 3, H, W), in_channels=3, out_channels=4, kernel_size=4, padding="same")
    assert op.init(a) == "nn.Conv2d(3, 4, kernel_size=4, padding='same')"
    assert out.shape == (B, 4, H, W)


@pytest.mark.parametrize("attrs", [
    {"in_channels": 3, "out_channels": 5, "kernel_size": 3},
    {"in_channels": 4, "out_channels": 8, "kernel_size": 5, "stride": 2, "padding": 2, "dilation": 1, "groups": 4, "bias": False},
    {"in_channels": 2, "out_channels": 2, "kernel_size": [3], "dilation": [3], "padding": "same"},
])
def test_conv1d_matches_torch(attrs):
    op, a, (out,) = run_infer("Conv1d", (3, attrs["in_channels"], 20), **attrs)
    module = eval(op.init(a), {"nn": nn})
    assert state_shapes(module) == op.params(a)
    assert concrete([out]) == [tuple(module(torch.randn(3, attrs["in_channels"], 20)).shape)]
    _, _, (sym,) = run_infer("Conv1d", (B, attrs["in_channels"], T), **attrs)
    assert sym.shape[2].subs({T: 20}) == out.shape[2]


@pytest.mark.parametrize("name, shape, attrs, match", [
    ("Conv2d", (B, 4, H, W), {"in_channels": 3, "out_channels": 8, "kernel_size": 3}, "channel dimension"),
    ("Conv2d", (B, 3, H), {"in_channels": 3, "out_channels": 8, "kernel_size": 3}, "rank 4"),
    ("Conv1d", (B, 3, H, W), {"in_channels": 3, "out_channels": 8, "kernel_size": 3}, "rank 3"),
    ("Conv2d", (2, 3, 4, 16), {"in_channels": 3, "out_channels": 8, "kernel_size": 5}, "too small"),
    ("Conv2d", (2, 3, 8, 8), {"in_channels": 3, "out_channels": 8, "kernel_size": 3, "dilation": 4}, "too small"),
    ("Conv2d", (B, 6, H, W), {"in_channels": 6, "out_channels": 8, "kernel_size": 3, "groups": 4}, "in_channels=6"),
    ("Conv2d", (B, 4, H, W), {"in_channels": 4, "out_channels": 6, "kernel_size": 3, "groups": 4}, "out_channels=6"),
    ("Conv2d", (B, 3, H, W), {"in_channels": 3, "out_channels": 8, "kernel_size": [3, 3, 3]}, "3 entries"),
    ("Conv2d", (B, 3, H, W), {"in_channels": 3, "out_channels": 8, "kernel_size": 3, "stride": 2, "padding": "same"},
     "stride 1"),
    ("Conv1d", (B, 3, T), {"in_channels": 3, "out_channels": 8, "kernel_size": 3}, None),
])
def test_conv_errors(name, shape, attrs, match):
    if match is None:   # the control case: same attributes, no error
        run_infer(name, shape, **attrs)
        return
    with pytest.raises(ShapeError, match=match):
        run_infer(name, shape, **attrs)


def test_conv_rejects_non_float_and_bad_attrs():
    with pytest.raises(ShapeError) as err:
        run_infer("Conv2d", (B, 3, H, W), "int64", in_channels=3, out_channels=8, kernel_size=3)
    assert err.value.code == "DLC008"
    conv = REGISTRY["Conv2d"].attrs
    for bad in ({"kernel_size": 0}, {"kernel_size": True}, {"kernel_size": 3, "stride": [1, 0]},
                {"kernel_size": 3, "padding": -1}, {"kernel_size": 3, "padding": "full"}, {"kernel_size": 3.0}):
        with pytest.raises(pydantic.ValidationError):
            conv(in_channels=3, out_channels=8, **bad)


# ------------------------------------------------------------------ pooling
def _pool_cases():
    for size, k, s, ceil in itertools.product(range(1, 9), (1, 2, 3), (None, 1, 2, 3), (False, True)):
        for p in range(k // 2 + 1):
            yield "MaxPool2d", size, {"kernel_size": k, "stride": s, "padding": p, "ceil_mode": ceil, "dilation": 1 + (size % 2)}
            yield "AvgPool2d", size, {"kernel_size": k, "stride": s, "padding": p, "ceil_mode": ceil,
                                          "count_include_pad": bool(size % 2)}


def test_pool_formula_matches_torch_exhaustively():
    fns = {"MaxPool2d": F.max_pool2d, "AvgPool2d": F.avg_pool2d}
    checked = 0
    for name, size, attrs in _pool_cases():
        x = torch.randn(1, 2, size, size + 1)
        try:
            want = tuple(fns[name](x, **attrs).shape)
        except RuntimeError:   # torch says the input is too small
            with pytest.raises(ShapeError, match="too small"):
                run_infer(name, x.shape, **attrs)
            continue
        _, _, types = run_infer(name, x.shape, **attrs)
        assert concrete(types) == [want], (name, size, attrs)
        _, _, (sym,) = run_infer(name, (1, 2, H, W), **attrs)
        assert tuple(int(d.subs({H: size, W: size + 1})) for d in sym.shape[2:]) == want[2:], (name, size, attrs)
        checked += 1
    assert checked > 500


@pytest.mark.parametrize("name, attrs, expected", [
    ("MaxPool2d", {"kernel_size": 3, "stride": 2, "padding": 1}, "F.max_pool2d(x, 3, stride=2, padding=1)"),
    ("MaxPool2d", {"kernel_size": [2, 2]}, "F.max_pool2d(x, (2, 2))"),
    ("MaxPool2d", {"kernel_size": 3, "dilation": 2, "ceil_mode": True}, "F.max_pool2d(x, 3, dilation=2, ceil_mode=True)"),
    ("AvgPool2d", {"kernel_size": 2, "padding": [0, 1], "count_include_pad": False},
     "F.avg_pool2d(x, 2, padding=(0, 1), count_include_pad=False)"),
    ("AdaptiveAvgPool2d", {"output_size": 1}, "F.adaptive_avg_pool2d(x, 1)"),
    ("AdaptiveAvgPool2d", {"output_size": [3, 2]}, "F.adaptive_avg_pool2d(x, (3, 2))"),
])
def test_pool_lowering_runs(name, attrs, expected):
    op, a, (out,) = run_infer(name, (2, 3, 11, 10), **attrs)
    (line,) = lower(op, a)
    assert line == f"y0 = {expected}"
    assert op.init is None and op.params(a) == {}
    ns = {"F": F, "x": torch.randn(2, 3, 11, 10)}
    exec(line, ns)  # noqa: S102 - runs the generated line
    assert concrete([out]) == [tuple(ns["y0"].shape)]


def test_pool_symbolic():
    _, _, (out,) = run_infer("MaxPool2d", (B, 64, H, W), kernel_size=3, stride=2, padding=1)
    assert out.shape[:2] == (B, 64) and out.shape[2] == floor((H - 1) / 2) + 1
    _, _, (out,) = run_infer("AvgPool2d", (B, 8, H, W), kernel_size=2)
    assert out.shape[2] == floor(H / 2)
    assert py_dim(out.shape[3], {W: "w"}) == "w // 2"
    _, _, (out,) = run_infer("AdaptiveAvgPool2d", (B, 8, H, W), output_size=[1, 4])
    assert out.shape == (B, 8, 1, 4)


@pytest.mark.parametrize("name, shape, attrs, match", [
    ("MaxPool2d", (B, 3, H), {"kernel_size": 2}, "rank 4"),
    ("AvgPool2d", (2, 3, 1, 8), {"kernel_size": 2}, "too small"),
    ("MaxPool2d", (B, 3, H, W), {"kernel_size": 3, "padding": 2}, "half of kernel_size"),
    ("AvgPool2d", (B, 3, H, W), {"kernel_size": [2, 2, 2]}, "3 entries"),
    ("AdaptiveAvgPool2d", (B, 3, H), {"output_size": 2}, "rank 4"),
])
def test_pool_errors(name, shape, attrs, match):
    with pytest.raises(ShapeError, match=match):
        run_infer(name, shape, **attrs)


# ------------------------------------------------------------------ recurrent
RNN_CASES = [
    {"input_size": 5, "hidden_size": 7},
    {"input_size": 5, "hidden_size": 7, "num_layers": 3, "bidirectional": True, "dropout": 0.1},
    {"input_size": 5, "hidden_size": 4, "num_layers": 2, "bias": False, "batch_first": False},
    {"input_size": 5, "hidden_size": 6, "bidirectional": True, "batch_first": False},
]


@pytest.mark.parametrize("name", ["LSTM", "GRU"])
@pytest.mark.parametrize("attrs", RNN_CASES)
def test_rnn_matches_torch(name, attrs):
    batch, steps = 3, 6
    shape = (batch, steps, 5) if attrs.get("batch_first", True) else (steps, batch, 5)
    op, a, types = run_infer(name, shape, **attrs)
    assert op.num_outputs(a) == len(types) == (3 if name == "LSTM" else 2)
    assert not op.pure
    module = eval(op.init(a), {"nn": nn}).eval()
    assert state_shapes(module) == op.params(a)
    assert list(module.state_dict()) == list(op.params(a))     # same order, too
    ns = {"rnn": module, "x": torch.randn(*shape)}
    (line,) = lower(op, a, module="rnn", outs=len(types))
    exec(line, ns)  # noqa: S102 - runs the generated line
    assert concrete(types) == [tuple(ns[f"y{i}"].shape) for i in range(len(types))]


def test_rnn_symbolic_and_strings():
    op, a, (out, h, c) = run_infer("LSTM", (B, T, 32), input_size=32, hidden_size=64, num_layers=2,
                                   bidirectional=True)
    assert op.init(a) == "nn.LSTM(32, 64, num_layers=2, batch_first=True, bidirectional=True)"
    assert out.shape == (B, T, 128) and h.shape == (4, B, 64) and c.shape == h.shape
    assert lower(op, a, module="self.lstm", outs=3) == ["y0, (y1, y2) = self.lstm(x)"]
    op, a, (out, h) = run_infer("GRU", (T, B, 8), input_size=8, hidden_size=16, batch_first=False, bias=False)
    assert op.init(a) == "nn.GRU(8, 16, bias=False, batch_first=False)"
    assert out.shape == (T, B, 16) and h.shape == (1, B, 16)
    assert lower(op, a, module="self.gru", outs=2) == ["y0, y1 = self.gru(x)"]


@pytest.mark.parametrize("name", ["LSTM", "GRU"])
def test_rnn_errors(name):
    with pytest.raises(ShapeError, match="feature dimension"):
        run_infer(name, (B, T, 16), input_size=8, hidden_size=4)
    with pytest.raises(ShapeError, match=r"\[B, T, input_size\]"):
        run_infer(name, (B, 8), input_size=8, hidden_size=4)
    with pytest.raises(ShapeError, match=r"\[T, B, input_size\]"):
        run_infer(name, (B, T, 2, 8), input_size=8, hidden_size=4, batch_first=False)
    with pytest.raises(ShapeError):
        run_infer(name, (B, T, 8), "int64", input_size=8, hidden_size=4)
    with pytest.raises(pydantic.ValidationError):
        REGISTRY[name].attrs(input_size=8, hidden_size=0)
