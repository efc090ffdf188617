"""Learned tensors of a declared shape: ViT's class token and position embedding, layer
scale's per-channel gammas.  `cls = Parameter([1, 1, d], init="zeros")()` is an
`nn.Parameter` attribute of the module, named like any layer (`self.cls`), so its
checkpoint key is the layer's name itself (`class_token`, `encoder.pos_embedding`).
"""
from __future__ import annotations

from typing import Literal

from compiler.ops.schema import PositiveInt, field_validator

from compiler.ir.types import TensorType, dim
from compiler.ops.registry import Attrs, OpDef, no_flops, register, sample


class ParameterAttrs(Attrs):
    shape: tuple[PositiveInt, ...]
    init: Literal["zeros", "ones", "normal", "trunc_normal", "uniform", "constant"] = "zeros"
    std: float = 0.02            # normal, trunc_normal
    value: float = 1.0           # constant (layer scale's initial gamma); uniform draws from [-value, value]

    @field_validator("shape")
    @classmethod
    def _not_empty(cls, value):
        if not value:
            raise ValueError("a Parameter needs at least one dimension, like [1, 1, d]")
        return value

    @field_validator("std")
    @classmethod
    def _positive_std(cls, value):
        if not value > 0:
            raise ValueError("std must be positive")
        return value


def _infer_parameter(a: ParameterAttrs, ins):
    return [TensorType(tuple(dim(d) for d in a.shape), "float")]


def _parameter_init(a: ParameterAttrs) -> str:
    """The constructor: a tensor of the shape, initialized as declared."""
    shape = ", ".join(map(str, a.shape))
    tensor = {
        "zeros": f"torch.zeros({shape})",
        "ones": f"torch.ones({shape})",
        "constant": f"torch.full(({shape}{',' if len(a.shape) == 1 else ''}), {a.value!r})",
        "normal": f"nn.init.normal_(torch.empty({shape}), std={a.std!r})",
        # torch's cut-off at ±2 (absolute), as timm and torchvision initialize their ViTs
        "trunc_normal": f"nn.init.trunc_normal_(torch.empty({shape}), std={a.std!r})",
        "uniform": f"nn.init.uniform_(torch.empty({shape}), -{a.value!r}, {a.value!r})",
    }[a.init]
    return f"nn.Parameter({tensor})"


register(OpDef(
    "Parameter", ParameterAttrs, (), _infer_parameter,
    lambda a, ctx: [f"{ctx.outs[0]} = {ctx.module}"],
    doc="A learned tensor of the given shape, applied to no inputs: `Parameter([1, 1, d], init=\"zeros\")()`. "
        "init is zeros, ones, constant (value), normal or trunc_normal (std), or uniform in [-value, value]; "
        "its checkpoint key is the layer's name.",
    init=_parameter_init,
    params=lambda a: {"": tuple(a.shape)},
    pure=False,         # two Parameter layers of one shape are two tensors, never one
    flops=no_flops,
    samples=(sample(shape=(1, 1, 8)), sample(shape=(1, 5, 8), init="normal", std=0.02),
             sample(shape=(8,), init="constant", value=1e-6), sample(shape=(2, 3), init="trunc_normal")),
))
