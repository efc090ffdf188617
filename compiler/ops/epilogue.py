"""Epilogues: the activation (and residual sum) after a convolution or linear layer, as a layer.

The fuse-epilogues pass turns the last op of a chain such as `relu(bn(conv(x)) + shortcut)` into
an `Epilogue` node.  Its lowering is a submodule call (`y = self.conv3_residual(bn3, downsample)`),
so that `optimize_for_inference()` can swap it for one oneDNN kernel computing the whole chain
(the convolution and batch norm before it become identities); until then the layer computes just
what the ops it replaced did.  Activations alone print as torch's own layers (`nn.ReLU`), a sum
with an activation as the runtime helper `ResidualActivation`.
"""
from __future__ import annotations

from compiler.ops.activation import ACTIVATIONS
from compiler.ops.registry import (
    Attrs,
    OpDef,
    Port,
    ShapeError,
    assign,
    need,
    need_float,
    per_output_element,
    register,
    sample,
    tensor,
)

# The op that names an activation -> its kind (Activation(kind) names it in its attributes).
_ACTIVATION_OPS = {"ReLU": "relu", "ReLU6": "relu6", "SiLU": "silu", "Tanh": "tanh", "Sigmoid": "sigmoid",
                   "Hardswish": "hardswish"}
EPILOGUE = "Epilogue"       # the op's name, for the pass that makes it

# Activation kind -> (torch layer, whether it takes inplace=); "none" is a sum alone.
LAYERS = {"relu": ("nn.ReLU", True), "relu6": ("nn.ReLU6", True), "silu": ("nn.SiLU", True),
          "gelu": ("nn.GELU", False), "gelu_tanh": ("nn.GELU", False), "tanh": ("nn.Tanh", False),
          "sigmoid": ("nn.Sigmoid", False), "hardswish": ("nn.Hardswish", True)}


class EpilogueAttrs(Attrs):
    activation: str = "none"
    residual: bool = False          # a second input is added before the activation
    conv_operand: int = 0           # which input is the convolution's (or linear layer's) path
    inplace: bool = False           # the sum overwrites its first input / the activation its input


def activation_kind(op: str, attrs) -> str | None:
    """The activation an op applies, if it is one an Epilogue layer can be ("identity" for
    Activation("identity"), which its parameter left in)."""
    if op == "Activation":
        kind = attrs.kind
        return kind if kind in LAYERS or kind == "identity" else None
    if op == "GELU":
        return "gelu" if attrs.approximate == "none" else "gelu_tanh"
    return _ACTIVATION_OPS.get(op)


def is_residual_sum(op: str) -> bool:
    """Whether the op is the sum a fused convolution can add (its `other` input)."""
    return op == "Add"


def _layer(a: EpilogueAttrs) -> str:
    """The layer's constructor: torch's activation layer, or ResidualActivation for a sum."""
    if a.residual:
        return f'ResidualActivation("{a.activation}", conv_operand={a.conv_operand}, inplace={a.inplace})'
    name, takes_inplace = LAYERS[a.activation]
    if a.activation == "gelu_tanh":
        return 'nn.GELU(approximate="tanh")'
    return f"{name}(inplace=True)" if takes_inplace and a.inplace else f"{name}()"


def _infer(a: EpilogueAttrs, ins):
    x = need(ins[0], 0, "Epilogue input")
    need_float(x, 0, "Epilogue input")
    if a.activation not in LAYERS and a.activation != "none":
        raise ShapeError(f"Epilogue: no layer for activation {a.activation!r}", None)
    if a.residual:
        y = need(ins[1], 1, "Epilogue residual")
        if y.shape != x.shape:
            raise ShapeError(f"Epilogue: residual {y.shape_str()} differs from {x.shape_str()}", None)
    return [x]


def _lower(a: EpilogueAttrs, ctx) -> list[str]:
    args = ", ".join(arg for arg in ctx.args if arg is not None)
    return assign(ctx, f"{ctx.module}({args})")


register(OpDef(
    EPILOGUE, EpilogueAttrs, (Port("x"), Port("residual", optional=True)), _infer, _lower,
    doc="The activation, and residual sum, after a convolution or linear layer, as a layer that "
        "optimize_for_inference() may compute in that layer's kernel.  Made by the fuse-epilogues pass.",
    init=_layer,
    helpers=("ResidualActivation",),
    # No `inplace` trait: the pass that makes an Epilogue (after the inplace pass) keeps the in-place
    # decisions of the ops it replaces, and the layer's constructor, not forward's code, applies them.
    elementwise=True,
    flops=lambda a, ins, outs: per_output_element(
        ACTIVATIONS[a.activation].flops + a.residual if a.activation != "none" else 1)(a, ins, outs),
    samples=(sample(tensor(2, 3, 8), activation="relu"),
             sample(tensor(2, 3, 8), tensor(2, 3, 8), activation="relu", residual=True),
             sample(tensor(2, 3, 8), tensor(2, 3, 8), activation="none", residual=True, conv_operand=1)),
))
