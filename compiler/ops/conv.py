"""Convolutions and pooling over [B, C, *spatial] tensors.

Spatial sizes follow PyTorch's formula floor((L + 2p - d(k - 1) - 1) / s) + 1
as a `Dim` (ir/dims.py), so `[B, 3, H, W]` stays symbolic and concrete sizes
give concrete Integers.  Per-dimension attributes take an int or a list with
one entry per spatial dimension, as torch's constructors do.
"""
from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from compiler.ops.schema import BeforeValidator, PositiveInt

from compiler.diagnostics.codes import ARGUMENT_TYPE
from compiler.ir.dims import const, floor, minimum as dim_min, prod_dims
from compiler.ir.types import Dim, TensorType, dim, dims_equal
from compiler.ops.hints import choices, concrete, divisors_near, set_argument
from compiler.ir.residual import is_residual
from compiler.ops.registry import (
    Attrs,
    OpDef,
    Port,
    ShapeError,
    assign,
    need,
    need_dim,
    need_float,
    numel,
    register,
    sample,
    tensor,
    half,
)

SPATIAL_NAMES = {1: "L", 2: "H, W"}


def _int_or_list(minimum: int, allow: tuple[str, ...] = ()):
    """An int >= minimum, or a list/tuple of them (kept as a tuple so it prints like torch's)."""
    def check(value: Any) -> Any:
        if isinstance(value, str) and value in allow:
            return value
        items = value if isinstance(value, (list, tuple)) else [value]
        ints = [_as_int(v) for v in items]
        if not items or any(v is None or v < minimum for v in ints):
            extra = "".join(f" or {s!r}" for s in allow)
            raise ValueError(f"expected an integer >= {minimum}, a list of them{extra}; got {value!r}")
        return tuple(ints) if isinstance(value, (list, tuple)) else ints[0]
    return BeforeValidator(check)


def _as_int(v: Any) -> int | None:
    # bool is an int subclass but never a valid size; Dim integers come from block parameters.
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, Dim) and v.is_int:
        return int(v)
    return None


Size = Annotated[int | tuple[int, ...], _int_or_list(1)]
Pad = Annotated[int | tuple[int, ...], _int_or_list(0)]
ConvPad = Annotated[int | tuple[int, ...] | Literal["same", "valid"], _int_or_list(0, ("same", "valid"))]


def expand(value: int | tuple[int, ...], n: int, what: str) -> tuple[int, ...]:
    """Per-dimension values; raises when a list has the wrong length."""
    if isinstance(value, int):
        return (value,) * n
    if len(value) != n:
        raise ShapeError(f"{what} has {len(value)} entries {list(value)}, expected 1 integer or {n}", None)
    return tuple(value)


def out_size(size: Dim, k: int, s: int, p: int, d: int = 1, ceil_mode: bool = False) -> Dim:
    """Output length of one spatial dimension, exactly as torch computes it."""
    span = d * (k - 1) + 1
    if isinstance(size, int) or size.is_int:
        # a fixed size (224x224 images): integer arithmetic, as torch's
        return const(_fixed_out_size(int(size), k, s, p, span, ceil_mode))
    num = size + 2 * p - span + (s - 1 if ceil_mode else 0)
    out = floor(num / s) + 1
    # torch drops a last (ceil_mode) window that would start in the right padding;
    # that can only happen when p + s - 1 >= span, so Min appears only then.
    if ceil_mode and p + s - 1 >= span:
        out = dim_min(out, floor((size + p - 1) / s) + 1)
    return out


def _fixed_out_size(size: int, k: int, s: int, p: int, span: int, ceil_mode: bool) -> int:
    """out_size() of a known size, in Python integers."""
    out = (size + 2 * p - span + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and p + s - 1 >= span:
        out = min(out, (size + p - 1) // s + 1)
    return out


def _spatial_out(x: TensorType, n: int, name: str, k, s, p, d, ceil_mode: bool = False) -> list[Dim]:
    sizes = []
    for i in range(n):
        size = x.shape[2 + i]
        out = out_size(size, k[i], s[i], p[i], d[i], ceil_mode)
        if out.is_int and out <= 0:
            raise ShapeError(f"{name} input {x.shape_str()} is too small: spatial dim {2 + i} of size {size} "
                             f"gives output size {out} with kernel {k[i]}, stride {s[i]}, padding {p[i]}, "
                             f"dilation {d[i]}", 0, hint=f"`padding={d[i] * (k[i] - 1) // 2}` keeps the size at stride 1; "
                                                       "or use a larger input or a smaller kernel")
        sizes.append(out)
    return sizes


def _need_spatial(x: TensorType, n: int, name: str) -> None:
    need_float(x, 0, f"{name} input")
    if x.rank != n + 2:
        fits = name.rstrip("123d") + f"{x.rank - 2}d" if 3 <= x.rank <= 5 else None
        raise ShapeError(f"{name} input must be [B, C, {SPATIAL_NAMES[n]}] (rank {n + 2}), got {x.shape_str()}", 0,
                         hint=f"a rank-{x.rank} input takes {fits}" if fits else None)


def _channel_hint(a: ConvAttrs, x: TensorType, name: str) -> str:
    """Channels-last input, swapped channel arguments, or the in_channels to set."""
    actual = concrete(x.shape[1])
    if actual == a.out_channels and a.in_channels != a.out_channels:
        return (f"the arguments look swapped: `{name}({a.out_channels}, {a.in_channels}, ...)` "
                f"(in_channels first, then out_channels)")
    # [B, H, W, C]: the last dimension holds the channels and the two before it look alike
    if x.rank == 4 and concrete(x.shape[-1]) == a.in_channels and dims_equal(x.shape[1], x.shape[2]):
        return "the input looks channels-last [B, H, W, C]: `Permute([0, 3, 1, 2])` it to [B, C, H, W] first"
    return set_argument("in_channels", x.shape[1])


def _fmt(value: Any) -> str:
    return repr(value)   # ints print as 3, tuples as (3, 3), strings as 'same'


# ------------------------------------------------------------------ convolutions
class ConvAttrs(Attrs):
    in_channels: PositiveInt
    out_channels: PositiveInt
    kernel_size: Size
    stride: Size = 1
    padding: ConvPad = 0
    dilation: Size = 1
    groups: PositiveInt = 1
    bias: bool = True


def _conv_padding(a: ConvAttrs, n: int, name: str) -> tuple[int, ...] | None:
    """Explicit padding per dim, or None for 'same' (output keeps the input size)."""
    if a.padding == "valid":
        return (0,) * n
    if a.padding == "same":
        if any(s != 1 for s in expand(a.stride, n, f"{name} stride")):
            raise ShapeError(f"{name} padding='same' needs stride 1, got stride={a.stride!r}", None,
                             hint="use an explicit padding with strided convolutions")
        return None
    return expand(a.padding, n, f"{name} padding")


def _infer_conv(n: int, name: str):
    def infer(a: ConvAttrs, ins):
        x = need(ins[0], 0, f"{name} input")
        _need_spatial(x, n, name)
        for what, channels in (("in_channels", a.in_channels), ("out_channels", a.out_channels)):
            if channels % a.groups:
                both = math.gcd(a.in_channels, a.out_channels)
                raise ShapeError(f"{name} {what}={channels} is not divisible by groups={a.groups}", None,
                                 code=ARGUMENT_TYPE, hint=f"{choices('groups', divisors_near(both, a.groups))} "
                                                         f"divide{'s' if both == 1 else ''} both channel counts")
        need_dim(x.shape[1], dim(a.in_channels), 0, f"the channel dimension (1) of {name}'s input", x,
                 hint=lambda: _channel_hint(a, x, name))
        k, d = expand(a.kernel_size, n, f"{name} kernel_size"), expand(a.dilation, n, f"{name} dilation")
        p = _conv_padding(a, n, name)
        s = expand(a.stride, n, f"{name} stride")
        sizes = list(x.shape[2:]) if p is None else _spatial_out(x, n, name, k, s, p, d)
        return [x.with_shape((x.shape[0], a.out_channels, *sizes))]
    return infer


def _conv_params(n: int):
    def params(a: ConvAttrs) -> dict[str, tuple[int, ...]]:
        k = expand(a.kernel_size, n, "kernel_size")
        shapes = {"weight": (a.out_channels, a.in_channels // a.groups, *k)}
        if a.bias:
            shapes["bias"] = (a.out_channels,)
        return shapes
    return params


def _conv_init(n: int):
    def init(a: ConvAttrs) -> str:
        args = [str(a.in_channels), str(a.out_channels), f"kernel_size={_fmt(a.kernel_size)}"]
        # A value that is a parameter expression is printed even at its default: other configurations differ.
        if is_residual(a.stride) or set(expand(a.stride, n, "stride")) != {1}:
            args.append(f"stride={_fmt(a.stride)}")
        if is_residual(a.padding) or isinstance(a.padding, str) or set(expand(a.padding, n, "padding")) != {0}:
            args.append(f"padding={_fmt(a.padding)}")
        if is_residual(a.dilation) or set(expand(a.dilation, n, "dilation")) != {1}:
            args.append(f"dilation={_fmt(a.dilation)}")
        if is_residual(a.groups) or a.groups != 1:
            args.append(f"groups={a.groups}")
        if is_residual(a.bias) or not a.bias:
            args.append(f"bias={a.bias}")
        return f"nn.Conv{n}d({', '.join(args)})"
    return init


def _conv_flops(n: int):
    def flops(a: ConvAttrs, ins, outs):
        # Each result element sums in_channels / groups * kernel volume products, as torch's flop
        # counter counts a convolution (the bias add not included).
        window = prod_dims(expand(a.kernel_size, n, "kernel_size")) * (a.in_channels // a.groups)
        return 2 * numel(outs[0]) * window
    return flops


_CONV_SAMPLES = {
    1: (sample(tensor(2, 4, 10), in_channels=4, out_channels=6, kernel_size=3),
        sample(tensor(2, 4, 10), in_channels=4, out_channels=8, kernel_size=5, padding="same", groups=2, bias=False),
        sample(tensor(2, 4, 11), in_channels=4, out_channels=4, kernel_size=3, stride=2, dilation=2, padding=1)),
    2: (sample(tensor(2, 4, 9, 9), in_channels=4, out_channels=8, kernel_size=3, stride=2, padding=1),
        sample(tensor(2, 4, 7, 6), in_channels=4, out_channels=4, kernel_size=(3, 1), padding="same", groups=4),
        sample(tensor(1, 3, 10, 12), in_channels=3, out_channels=2, kernel_size=(3, 5), stride=(2, 1),
               padding=(0, 2), dilation=(1, 2), bias=False)),
}


for _n in (1, 2):
    register(OpDef(
        f"Conv{_n}d", ConvAttrs, (Port("x"),), _infer_conv(_n, f"Conv{_n}d"),
        lambda a, ctx: assign(ctx, f"{ctx.module}({ctx.args[0]})"),
        doc=f"{_n}-d convolution of x [B, in_channels, {SPATIAL_NAMES[_n]}]; kernel_size, stride, padding and "
            f"dilation take an int or one entry per spatial dim; padding may be 'same' (stride 1) or 'valid'.",
        init=_conv_init(_n),
        params=_conv_params(_n),
        overwritable=True,
        flops=_conv_flops(_n),
        macs=half(_conv_flops(_n)),
        samples=_CONV_SAMPLES[_n],
    ))


# ------------------------------------------------------------------ pooling
class MaxPoolAttrs(Attrs):
    kernel_size: Size
    stride: Size | None = None
    padding: Pad = 0
    dilation: Size = 1
    ceil_mode: bool = False


class AvgPoolAttrs(Attrs):
    kernel_size: Size
    stride: Size | None = None
    padding: Pad = 0
    ceil_mode: bool = False
    count_include_pad: bool = True


def _infer_pool(name: str):
    def infer(a, ins):
        x = need(ins[0], 0, f"{name} input")
        _need_spatial(x, 2, name)
        k = expand(a.kernel_size, 2, f"{name} kernel_size")
        s = expand(a.stride, 2, f"{name} stride") if a.stride is not None else k
        p = expand(a.padding, 2, f"{name} padding")
        d = expand(getattr(a, "dilation", 1), 2, f"{name} dilation")
        # torch rejects padding wider than half the kernel (a window of pure padding).
        if any(pi > ki // 2 for pi, ki in zip(p, k)):
            raise ShapeError(f"{name} padding {a.padding!r} must be at most half of kernel_size {a.kernel_size!r}",
                             None)
        sizes = _spatial_out(x, 2, name, k, s, p, d, a.ceil_mode)
        return [x.with_shape((*x.shape[:2], *sizes))]
    return infer


def _lower_pool(fn: str, defaults: dict[str, Any]):
    def lower(a, ctx) -> list[str]:
        args = [ctx.args[0], _fmt(a.kernel_size)]
        for key, default in defaults.items():
            value = getattr(a, key)
            if value != default and not (isinstance(value, tuple) and set(value) == {default}):
                args.append(f"{key}={_fmt(value)}")
        return assign(ctx, f"F.{fn}({', '.join(args)})")
    return lower


def _pool_flops(a, ins, outs):
    # one comparison or add per window element of each result
    return numel(outs[0]) * prod_dims(expand(a.kernel_size, 2, "kernel_size"))


register(OpDef(
    "MaxPool2d", MaxPoolAttrs, (Port("x"),), _infer_pool("MaxPool2d"),
    _lower_pool("max_pool2d", {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False}),
    doc="Max over kernel_size windows of x [B, C, H, W]; stride defaults to kernel_size.",
    flops=_pool_flops,
    fresh=True,
    samples=(sample(tensor(2, 3, 9, 9), kernel_size=3, stride=2, padding=1),
             sample(tensor(2, 3, 8, 7), kernel_size=2, ceil_mode=True),
             sample(tensor(1, 2, 10, 10), kernel_size=(3, 2), stride=(2, 1), dilation=2)),
))
register(OpDef(
    "AvgPool2d", AvgPoolAttrs, (Port("x"),), _infer_pool("AvgPool2d"),
    _lower_pool("avg_pool2d", {"stride": None, "padding": 0, "ceil_mode": False, "count_include_pad": True}),
    doc="Mean over kernel_size windows of x [B, C, H, W]; stride defaults to kernel_size.",
    flops=_pool_flops,
    fresh=True,
    samples=(sample(tensor(2, 3, 8, 8), kernel_size=2),
             sample(tensor(2, 3, 9, 8), kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)),
))


class AdaptivePoolAttrs(Attrs):
    output_size: Size


def _infer_adaptive(a: AdaptivePoolAttrs, ins):
    x = need(ins[0], 0, "AdaptiveAvgPool2d input")
    _need_spatial(x, 2, "AdaptiveAvgPool2d")
    oh, ow = expand(a.output_size, 2, "AdaptiveAvgPool2d output_size")
    return [x.with_shape((*x.shape[:2], oh, ow))]


register(OpDef(
    "AdaptiveAvgPool2d", AdaptivePoolAttrs, (Port("x"),), _infer_adaptive,
    lambda a, ctx: assign(ctx, f"F.adaptive_avg_pool2d({ctx.args[0]}, {_fmt(a.output_size)})"),
    doc="Average x [B, C, H, W] into a fixed output_size grid (an int for square, or [oh, ow]).",
    flops=lambda a, ins, outs: numel(ins[0]),      # every input element is added once
    fresh=True,
    samples=(sample(tensor(2, 3, 7, 7), output_size=1), sample(tensor(2, 3, 9, 8), output_size=(2, 3))),
))
