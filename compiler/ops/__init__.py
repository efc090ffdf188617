"""Primitive ops.  Importing this package registers every op family."""
from . import activation, attention, conv, elementwise, linear, norm, rnn, tensor  # noqa: F401
from .registry import REGISTRY, Attrs, LowerContext, OpDef, Port, ShapeError

__all__ = ["REGISTRY", "Attrs", "LowerContext", "OpDef", "Port", "ShapeError"]
