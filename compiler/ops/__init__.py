"""Primitive ops.  Importing this package registers every op family."""
from compiler.ops import (  # noqa: F401  (importing a family registers its ops)
    activation, attention, cells, conv, elementwise, indexing, language, linear, loss, norm, rnn, t5, tensor)
from compiler.ops.registry import NAMED_ENUMS, REGISTRY, Attrs, LowerContext, OpDef, Port, ShapeError

__all__ = ["NAMED_ENUMS", "REGISTRY", "Attrs", "LowerContext", "OpDef", "Port", "ShapeError"]
