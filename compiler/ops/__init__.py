"""Primitive ops.  Importing this package registers every op family."""
from . import activation, attention, conv, elementwise, language, linear, norm, rnn, t5, tensor  # noqa: F401
from .registry import REGISTRY, Attrs, LowerContext, OpDef, Port, ShapeError

__all__ = ["REGISTRY", "Attrs", "LowerContext", "OpDef", "Port", "ShapeError"]
