"""Primitive ops.  Importing this package registers every op family."""
from compiler.ops import (  # noqa: F401  (importing a family registers its ops)
    activation, attention, cells, conv, elementwise, epilogue, indexing, language, linear, loss, math, norm, parameter,
    regularization, rnn, rotary, t5, tensor)
from compiler.ops.registry import NAMED_ENUMS, REGISTRY, Attrs, LowerContext, OpDef, Port, ShapeError

__all__ = ["NAMED_ENUMS", "REGISTRY", "Attrs", "LowerContext", "OpDef", "Port", "ShapeError"]
