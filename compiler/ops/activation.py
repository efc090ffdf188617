"""Activations: one op per function, and `Activation(kind)` chosen by a parameter."""
from __future__ import annotations

from typing import Literal

from compiler.ops.costs import per_output_element
from compiler.ops.registry import Attrs, InplaceAttrs, OpDef, Port, assign, need, need_float, register

# kind -> lowering of one tensor expression
_FUNCTIONS = {
    "relu": "F.relu({x})",
    "gelu": "F.gelu({x})",
    "gelu_tanh": "F.gelu({x}, approximate='tanh')",
    "silu": "F.silu({x})",
    "relu6": "F.relu6({x})",
    "tanh": "torch.tanh({x})",
    "sigmoid": "torch.sigmoid({x})",
    "identity": "{x}",
}

ActivationKind = Literal["relu", "gelu", "gelu_tanh", "silu", "relu6", "tanh", "sigmoid", "identity"]


def _infer_same(name: str):
    def infer(a, ins):
        x = need(ins[0], 0, f"{name} input")
        need_float(x, 0, f"{name} input")
        return [x]
    return infer


# Activations torch can apply in place (the `inplace` pass uses it where the input is dead after).
_INPLACE = {"relu", "relu6", "silu"}


def _lower_activation(kind: str, x: str, inplace: bool) -> str:
    expr = _FUNCTIONS[kind].format(x=x)
    return expr[:-1] + ", inplace=True)" if inplace and kind in _INPLACE else expr


def _simple(name: str, kind: str, doc: str) -> None:
    register(OpDef(name, InplaceAttrs, (Port("x"),), _infer_same(name),
                   lambda a, ctx, kind=kind: assign(ctx, _lower_activation(kind, ctx.args[0], a.inplace)),
                   doc=doc, flops=per_output_element(1)))


_simple("ReLU", "relu", "max(x, 0)")
_simple("SiLU", "silu", "x * sigmoid(x)")
_simple("ReLU6", "relu6", "min(max(x, 0), 6)")
_simple("Tanh", "tanh", "tanh(x)")
_simple("Sigmoid", "sigmoid", "1 / (1 + exp(-x))")


class GeluAttrs(Attrs):
    approximate: Literal["none", "tanh"] = "none"


register(OpDef(
    "GELU", GeluAttrs, (Port("x"),), _infer_same("GELU"),
    lambda a, ctx: assign(ctx, _FUNCTIONS["gelu" if a.approximate == "none" else "gelu_tanh"].format(x=ctx.args[0])),
    doc="Gaussian error linear unit; approximate='tanh' is the GPT-2 'gelu_new' form.",
    flops=per_output_element(1),
))


class LeakyAttrs(Attrs):
    negative_slope: float = 0.01


register(OpDef(
    "LeakyReLU", LeakyAttrs, (Port("x"),), _infer_same("LeakyReLU"),
    lambda a, ctx: assign(ctx, f"F.leaky_relu({ctx.args[0]}, {a.negative_slope!r})"),
    doc="x if x > 0 else negative_slope * x",
    flops=per_output_element(1),
))


class EluAttrs(Attrs):
    alpha: float = 1.0


register(OpDef(
    "ELU", EluAttrs, (Port("x"),), _infer_same("ELU"),
    lambda a, ctx: assign(ctx, f"F.elu({ctx.args[0]}, {a.alpha!r})"),
    doc="x if x > 0 else alpha * (exp(x) - 1)",
    flops=per_output_element(1),
))


class ActivationAttrs(Attrs):
    kind: ActivationKind
    inplace: bool = False


register(OpDef(
    "Activation", ActivationAttrs, (Port("x"),), _infer_same("Activation"),
    lambda a, ctx: assign(ctx, _lower_activation(a.kind, ctx.args[0], a.inplace)),
    doc="An activation chosen by name: " + ", ".join(_FUNCTIONS),
    flops=lambda a, ins, outs: 0 if a.kind == "identity" else per_output_element(1)(a, ins, outs),
))
