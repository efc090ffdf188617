"""Initialization schemes an `init` statement may name: torch.nn.init's, with their
argument names and defaults, so a spec reads like the reference's `_init_weights`.

`init Linear.weight = normal(std=0.02)`: the scheme is a name (`zeros`) or a call with
positional or keyword arguments in the order below.  Each scheme says which arguments it
takes, checks their values, and whether it needs a matrix (the fan-based schemes compute
fan-in and fan-out from two dimensions, so a bias cannot take them).  The generated code
calls `nn.init.<name>_` with these keyword arguments (runtime/helpers.py, init_parameters).
"""
from __future__ import annotations

from typing import Any, Callable

from compiler.diagnostics.records import record

# torch.nn.init.calculate_gain's nonlinearities (kaiming's `nonlinearity`)
NONLINEARITIES = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                  "conv_transpose3d", "sigmoid", "tanh", "relu", "leaky_relu", "selu")


@record
class InitArg:
    name: str
    kind: type                 # float or str
    default: Any
    check: Callable[[Any], str | None] = lambda value: None    # a complaint, or None


@record
class InitScheme:
    name: str
    args: tuple[InitArg, ...] = ()
    needs_matrix: bool = False
    # arguments checked together (uniform's a < b): a complaint, or None
    check: Callable[[dict[str, Any]], str | None] = lambda values: None
    doc: str = ""


def _non_negative(value: float) -> str | None:
    return None if value >= 0 else f"must be at least 0, got {value}"


def _positive(value: float) -> str | None:
    return None if value > 0 else f"must be positive, got {value}"


def _one_of(options: tuple[str, ...]) -> Callable[[str], str | None]:
    return lambda value: None if value in options else f"must be one of {', '.join(options)}, got \"{value}\""


def _ordered(values: dict[str, Any]) -> str | None:
    return None if values["a"] < values["b"] else f"needs a < b, got a={values['a']}, b={values['b']}"


_GAIN = InitArg("gain", float, 1.0, _positive)
_KAIMING = (InitArg("a", float, 0.0, _non_negative), InitArg("mode", str, "fan_in", _one_of(("fan_in", "fan_out"))),
            InitArg("nonlinearity", str, "leaky_relu", _one_of(NONLINEARITIES)))

SCHEMES: dict[str, InitScheme] = {s.name: s for s in (
    InitScheme("normal", (InitArg("mean", float, 0.0), InitArg("std", float, 1.0, _non_negative)),
               doc="N(mean, std²)"),
    InitScheme("uniform", (InitArg("a", float, 0.0), InitArg("b", float, 1.0)), check=_ordered, doc="U(a, b)"),
    InitScheme("trunc_normal", (InitArg("mean", float, 0.0), InitArg("std", float, 1.0, _non_negative),
                                InitArg("a", float, -2.0), InitArg("b", float, 2.0)), check=_ordered,
               doc="N(mean, std²) redrawn outside [a, b] (absolute bounds, as torch's)"),
    InitScheme("xavier_uniform", (_GAIN,), needs_matrix=True, doc="Glorot & Bengio (2010), uniform"),
    InitScheme("xavier_normal", (_GAIN,), needs_matrix=True, doc="Glorot & Bengio (2010), normal"),
    InitScheme("kaiming_uniform", _KAIMING, needs_matrix=True, doc="He et al. (2015), uniform"),
    InitScheme("kaiming_normal", _KAIMING, needs_matrix=True, doc="He et al. (2015), normal"),
    InitScheme("orthogonal", (_GAIN,), needs_matrix=True, doc="Saxe et al. (2013), for recurrent weights"),
    InitScheme("zeros", doc="0"),
    InitScheme("ones", doc="1"),
    InitScheme("constant", (InitArg("val", float, None),), doc="val"),
)}


def scheme_complaint(scheme: InitScheme, values: dict[str, Any]) -> tuple[str, str] | None:
    """(argument, complaint) for the first value the scheme refuses, or None; `values` holds
    every argument (defaults filled in)."""
    for arg in scheme.args:
        complaint = arg.check(values[arg.name])
        if complaint:
            return arg.name, complaint
    complaint = scheme.check(values) if scheme.args else None
    return ("", complaint) if complaint else None
