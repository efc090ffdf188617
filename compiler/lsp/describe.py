"""Hover and completion text: signatures and documentation of blocks and ops, and what the
checker inferred for a name in each configuration of its block."""
from __future__ import annotations

from typing import Any

from compiler.ir import Graph, Program
from compiler.ir.values import show
from compiler.ops.registry import OpDef
from compiler.syntax import ast
from compiler.syntax.layout import flat
from compiler.syntax.printing import Printer
from compiler.lsp.symbols import Local

MAX_CONFIGURATIONS = 4      # a block checked in more configurations lists the first few
_HIDDEN_ATTRIBUTES = {"inplace"}     # set by passes, never written in a spec


def _printer(text: str) -> Printer:
    lines = text.split("\n")

    def source(span) -> str:
        if span.line != span.end_line:
            return str(span)
        return lines[span.line - 1][span.col - 1: span.end_col - 1]
    return Printer(source)


def param(p: ast.Param, text: str) -> str:
    return flat(_printer(text).param(p))


def block_signature(b: ast.BlockDef, text: str) -> str:
    return flat(_printer(text).block_header(b)).removesuffix(" {")


def _doc_comment(b: ast.BlockDef, text: str) -> str:
    """The comment lines right above the definition, without their `#`."""
    lines = text.split("\n")[: b.span.line - 1]
    doc: list[str] = []
    while lines and lines[-1].lstrip().startswith("#"):
        doc.insert(0, lines.pop().lstrip()[1:].strip())
    return " ".join(line for line in doc if line) if doc else ""


def block(b: ast.BlockDef, text: str, display: str) -> str:
    ports = [f"`in {s.name}: {s.type}{' optional' if s.optional else ''}`" for s in b.body if isinstance(s, ast.Input)]
    parts = [f"```dl\n{block_signature(b, text)}\n```", _doc_comment(b, text),
             ("inputs: " + ", ".join(ports)) if ports else "", f"defined at `{display}:{b.name_span.line}`"]
    return "\n\n".join(p for p in parts if p)


def _python_default(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    return f'"{value}"' if isinstance(value, str) else repr(value)


def op_attributes(op: OpDef) -> list[tuple[str, str]]:
    """(name, "type = default") of each attribute an op takes, in positional order."""
    found = []
    for name, info in op.attrs.model_fields.items():
        if name in _HIDDEN_ATTRIBUTES:
            continue
        kind = getattr(info.annotation, "__name__", str(info.annotation).replace("typing.", ""))
        found.append((name, kind if info.is_required() else f"{kind} = {_python_default(info.default)}"))
    return found


def op_signature(op: OpDef) -> str:
    attributes = ", ".join(f"{name}: {detail}" for name, detail in op_attributes(op))
    ports = ", ".join(p.name + ("?" if p.optional else "") + ("..." if p.variadic else "") for p in op.inputs)
    return f"{op.name}({attributes})({ports})"


def op(o: OpDef) -> str:
    return f"```dl\n{op_signature(o)}\n```\n\nprimitive op: {o.doc}"


# ---------------------------------------------------------------------- names inside a block
def _configurations(programs: list[Program], b: ast.BlockDef) -> list[Graph]:
    found: dict[str, Graph] = {}
    for program in programs:
        for g in program.graphs.values():
            if g.block == b.name and (g.span.file, g.span.line) == (b.span.file, b.span.line):
                found.setdefault(_label(g), g)      # two models may check the same configuration
    return list(found.values())


def _label(g: Graph) -> str:
    return f"{g.block}(" + ", ".join(f"{k}={show(v)}" for k, v in g.params.items()) + ")"


def _type_in(g: Graph, name: str) -> str | None:
    for decl in g.outputs:
        if decl.name == name:
            t = g.output_type(decl.node, decl.index)
            return str(t) if t is not None else None
    for node in g.ordered():
        if name in node.outputs and node.types:
            return str(node.types[node.outputs.index(name)])
    return None


def _declared(local: Local) -> str:
    node = local.node
    if isinstance(node, ast.Param):
        default = f" = {node.default}" if node.default is not None else ""
        return f"parameter `{node.name}: {node.type}{default}`"
    if isinstance(node, ast.Input):
        return f"input `{node.name}: {node.type}{' optional' if node.optional else ''}`"
    if isinstance(node, ast.Output) and node.type is not None:
        return f"output `{node.name}: {node.type}`"
    if isinstance(node, ast.Let):
        return f"`let {node.name} = {node.value}`"
    if isinstance(node, ast.For):
        return f"loop variable `{node.var}` over `{node.iterable}`"
    return f"{local.kind} `{local.name}`"


def local(loc: Local, b: ast.BlockDef, programs: list[Program]) -> str:
    """What a name is, and its shape (or value) in each configuration the checker saw (in this
    document's program and in `programs`, those of the other open documents)."""
    lines = [f"**{loc.name}**: {_declared(loc)} in `{b.name}`"]
    configurations = _configurations(programs, b)
    for g in configurations[:MAX_CONFIGURATIONS]:
        value = show(g.params[loc.name]) if loc.kind == "parameter" and loc.name in g.params else _type_in(g, loc.name)
        if value is not None:
            lines.append(f"- `{value}` in `{_label(g)}`")
    if len(configurations) > MAX_CONFIGURATIONS:
        lines.append(f"- and {len(configurations) - MAX_CONFIGURATIONS} more configuration(s)")
    if len(lines) == 1 and loc.kind in ("input", "result", "output"):
        lines.append("- no configuration checked yet: its shape is known where the block is used")
    return "\n".join(lines)
