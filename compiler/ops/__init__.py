"""Primitive ops.  Importing this package registers every op family."""
from compiler.ops import activation, attention, conv, elementwise, language, linear, norm, rnn, t5, tensor  # noqa: F401
from compiler.ops.registry import NAMED_ENUMS, REGISTRY, Attrs, LowerContext, OpDef, Port, ShapeError

__all__ = ["NAMED_ENUMS", "REGISTRY", "Attrs", "LowerContext", "OpDef", "Port", "ShapeError"]
