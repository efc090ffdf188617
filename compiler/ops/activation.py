"""Activations: one op per function, and `Activation(kind)` chosen by a parameter.

Each activation is ONE `activation(...)` entry below.  It registers the op
(`ReLU()`), the kind that `Activation("relu")` accepts, and the value of the
DSL's built-in `activation` parameter type (stdlib blocks declare
`activation: activation = "relu"`), with its lowering, whether torch can apply
it in place (the `inplace` pass reads that), its FLOPs per element and its test
sample.  Nothing else lists activations.
"""
from __future__ import annotations

from typing import Literal

from compiler.diagnostics.records import record
from compiler.ops.schema import field_validator

from compiler.ops.registry import (
    NAMED_ENUMS,
    Attrs,
    InplaceAttrs,
    OpDef,
    Port,
    assign,
    need,
    need_float,
    per_output_element,
    register,
    sample,
    tensor,
)


@record
class ActivationFunction:
    """One activation function: what `Activation(kind)` and an `activation` parameter name."""

    kind: str
    expression: str          # the lowering of one tensor `{x}`, e.g. "F.relu({x})"
    inplace: bool = False    # torch has an `inplace=True` form (its last argument)
    flops: int = 1           # per result element

    def lower(self, x: str, inplace: bool = False) -> str:
        expr = self.expression.format(x=x)
        return expr[:-1] + ", inplace=True)" if inplace and self.inplace else expr


# kind -> function, in registration order (the order diagnostics list them in)
ACTIVATIONS: dict[str, ActivationFunction] = {}
NAMED_ENUMS["activation"] = ACTIVATIONS     # the DSL parameter type `activation`


def _infer_same(name: str):
    def infer(a, ins):
        x = need(ins[0], 0, f"{name} input")
        need_float(x, 0, f"{name} input")
        return [x]
    return infer


_SAMPLE = (sample(tensor(2, 3, 8)),)


def activation(op: str | None, kind: str, expression: str, doc: str, inplace: bool = False, flops: int = 1) -> None:
    """Register an activation: the kind, and unless `op` is None, the op of that name."""
    assert kind not in ACTIVATIONS, f"activation {kind} registered twice"
    function = ACTIVATIONS[kind] = ActivationFunction(kind, expression, inplace, flops)
    if op is None:
        return
    register(OpDef(op, InplaceAttrs, (Port("x"),), _infer_same(op),
                   lambda a, ctx: assign(ctx, function.lower(ctx.args[0], a.inplace)),
                   doc=doc, elementwise=True, inplace=inplace, flops=per_output_element(flops), samples=_SAMPLE))


activation("ReLU", "relu", "F.relu({x})", "max(x, 0)", inplace=True)
activation(None, "gelu", "F.gelu({x})", "Gaussian error linear unit (erf form)", flops=8)
activation(None, "gelu_tanh", "F.gelu({x}, approximate='tanh')", "GELU, tanh approximation", flops=8)
activation("SiLU", "silu", "F.silu({x})", "x * sigmoid(x)", inplace=True, flops=4)
activation("ReLU6", "relu6", "F.relu6({x})", "min(max(x, 0), 6)", inplace=True, flops=2)
activation("Tanh", "tanh", "torch.tanh({x})", "tanh(x)", flops=4)
activation("Sigmoid", "sigmoid", "torch.sigmoid({x})", "1 / (1 + exp(-x))", flops=4)
activation("Hardswish", "hardswish", "F.hardswish({x})", "x * relu6(x + 3) / 6 (MobileNetV3)", inplace=True, flops=4)
activation("Hardsigmoid", "hardsigmoid", "F.hardsigmoid({x})", "relu6(x + 3) / 6 (MobileNetV3's gates)",
           inplace=True, flops=3)
activation(None, "identity", "{x}", "x", flops=0)


class GeluAttrs(Attrs):
    approximate: Literal["none", "tanh"] = "none"


register(OpDef(
    "GELU", GeluAttrs, (Port("x"),), _infer_same("GELU"),
    lambda a, ctx: assign(ctx, ACTIVATIONS["gelu" if a.approximate == "none" else "gelu_tanh"].lower(ctx.args[0])),
    doc="Gaussian error linear unit; approximate='tanh' is the GPT-2 'gelu_new' form.",
    elementwise=True, flops=per_output_element(8),
    samples=(sample(tensor(2, 3, 8)), sample(tensor(2, 3, 8), approximate="tanh")),
))


class LeakyAttrs(Attrs):
    negative_slope: float = 0.01


register(OpDef(
    "LeakyReLU", LeakyAttrs, (Port("x"),), _infer_same("LeakyReLU"),
    lambda a, ctx: assign(ctx, f"F.leaky_relu({ctx.args[0]}, {a.negative_slope!r})"),
    doc="x if x > 0 else negative_slope * x",
    elementwise=True, flops=per_output_element(2),
    samples=(sample(tensor(2, 3, 8), negative_slope=0.2),),
))


class EluAttrs(Attrs):
    alpha: float = 1.0


register(OpDef(
    "ELU", EluAttrs, (Port("x"),), _infer_same("ELU"),
    lambda a, ctx: assign(ctx, f"F.elu({ctx.args[0]}, {a.alpha!r})"),
    doc="x if x > 0 else alpha * (exp(x) - 1)",
    elementwise=True, flops=per_output_element(4),
    samples=(sample(tensor(2, 3, 8)),),
))


class ActivationAttrs(Attrs):
    kind: str
    inplace: bool = False

    @field_validator("kind")
    @classmethod
    def _known(cls, kind: str) -> str:
        # Checked against the table at validation time, so an activation registered in any
        # module (after this class was made) is accepted too.
        if kind not in ACTIVATIONS:
            from pydantic_core import PydanticCustomError    # only to word the error
            expected = ", ".join(f'"{k}"' for k in ACTIVATIONS)    # as the DSL writes strings
            raise PydanticCustomError("activation_kind", "Input should be one of {expected}", {"expected": expected})
        return kind


register(OpDef(
    "Activation", ActivationAttrs, (Port("x"),), _infer_same("Activation"),
    lambda a, ctx: assign(ctx, ACTIVATIONS[a.kind].lower(ctx.args[0], a.inplace)),
    doc="An activation chosen by name (see the `activation` parameter type for the names).",
    elementwise=True, inplace=lambda a: ACTIVATIONS[a.kind].inplace,
    identity=lambda a, ins, outs: a.kind == "identity",
    flops=lambda a, ins, outs: per_output_element(ACTIVATIONS[a.kind].flops)(a, ins, outs),
    samples=tuple(sample(tensor(2, 3, 8), kind=kind) for kind in ACTIVATIONS),
    identity_attrs=("kind",),
))
