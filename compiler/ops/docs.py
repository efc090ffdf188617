"""Reference text for the primitive ops, generated from their registry entries: what
`dlc explain OP` and `dlc ops` print.  Nothing here is written by hand per op, so the
reference never drifts from the schema the compiler enforces."""
from __future__ import annotations

import typing

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from compiler.ops.registry import REGISTRY, OpDef


def _type_name(annotation) -> str:
    """`int`, `float | None`, `"row" | "batch"`, `tuple[int, ...]` as a user reads them."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " | ".join(f'"{v}"' if isinstance(v, str) else str(v) for v in typing.get_args(annotation))
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " | ".join(_type_name(a) for a in typing.get_args(annotation))
    if origin is tuple:
        return "list"
    if origin is typing.Annotated:
        return _type_name(typing.get_args(annotation)[0])
    if annotation is type(None):
        return "none"
    if annotation is typing.Any:
        return "any"
    name = getattr(annotation, "__name__", str(annotation))
    return {"NoneType": "none"}.get(name, name)


def _default(info: FieldInfo) -> str | None:
    if info.default is PydanticUndefined:
        return None
    value = info.default
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def _attributes(op: OpDef) -> list[tuple[str, str, str | None]]:
    """(name, type, default) of each attribute the spec may set; fields the passes set are left out."""
    internal = {"inplace", "fused", "sources"}
    return [(name, _type_name(info.annotation) + _bounds(info), _default(info))
            for name, info in op.attrs.model_fields.items() if name not in internal]


def _bounds(info: FieldInfo) -> str:
    """` > 0`, ` in [0, 1)` from the field's constraints (PositiveInt, confloat)."""
    found = {kind: getattr(m, kind) for m in info.metadata for kind in ("gt", "ge", "lt", "le")
             if getattr(m, kind, None) is not None}
    if not found:
        return ""
    low = f"[{found['ge']}" if "ge" in found else f"({found['gt']}" if "gt" in found else None
    high = f"{found['le']}]" if "le" in found else f"{found['lt']})" if "lt" in found else None
    if low and high:
        return f" in {low}, {high}"
    return f" > {found['gt']}" if "gt" in found else f" >= {found['ge']}" if "ge" in found else \
        f" < {found['lt']}" if "lt" in found else f" <= {found['le']}"


def signature(op: OpDef) -> str:
    """`Linear(in_features: int > 0, out_features: int > 0, bias: bool = true)(x)`."""
    attrs = ", ".join(f"{n}: {t}" + (f" = {d}" if d is not None else "") for n, t, d in _attributes(op))
    ports = ", ".join(p.name + ("?" if p.optional else "") + ("..." if p.variadic else "") for p in op.inputs)
    return f"{op.name}({attrs})({ports})"


def describe(op: OpDef) -> str:
    """The full entry: signature, attributes, inputs, outputs, state and documentation."""
    lines = [signature(op), "", op.doc, ""]
    attrs = _attributes(op)
    lines.append("attributes:" if attrs else "attributes: none")
    lines += [f"  {n}: {t}" + (f" = {d}" if d is not None else " (required)") for n, t, d in attrs]
    lines.append("inputs:" if op.inputs else "inputs: none (applied as `Op(...)()`)")
    lines += [f"  {p.name}" + (" (optional: may be none)" if p.optional else "") +
              (" (one or more tensors)" if p.variadic else "") for p in op.inputs]
    lines.append("state: a submodule with parameters" if op.init else "state: none (a function of its inputs)")
    if not (op.pure if isinstance(op.pure, bool) else True):
        lines.append("random or stateful: never merged or removed as a duplicate")
    return "\n".join(lines)


def find(name: str) -> OpDef | None:
    """The op of that name, case-insensitively (`dlc explain conv2d`)."""
    if name in REGISTRY:
        return REGISTRY[name]
    matches = [op for key, op in REGISTRY.items() if key.lower() == name.lower()]
    return matches[0] if len(matches) == 1 else None


def table() -> str:
    """One line per op: its signature and the first sentence of its documentation."""
    rows = []
    for name in sorted(REGISTRY, key=str.lower):
        op = REGISTRY[name]
        first = op.doc.split(". ")[0].rstrip(".")
        rows.append(f"{signature(op)}\n    {first}.")
    return "\n".join(rows)
