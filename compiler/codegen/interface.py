"""A model's HuggingFace-style interface in generated code.

- Inputs: a model's `bool` inputs (attention masks) also take the int64 0/1 masks tokenizers
  return and float 0/1 masks, as HF models do.  The model's forward converts each once, on
  entry (`.bool()` returns a bool tensor itself, so a bool mask costs nothing); the blocks
  inside, and the checker, see bool only.
- Outputs: a model with several outputs returns a NamedTuple named after it
  (`BertModelOutput(last_hidden_state=..., pooler_output=...)`), its fields the outputs the
  spec declares, in order, over every branch of its static `if`s; one a configuration does not
  produce (or an optional one, a loss without labels) is None, as HF's `pooler_output` is
  without a pooler.  Indexing and unpacking work as on the tuple it replaces, and torch.export
  flattens it like one.  A model with one output returns that tensor, as torchvision's do and
  as every block does; blocks keep plain tuples (they are internal: their callers unpack them
  on the next line, and a tuple type per block would only lengthen the file).
"""
from __future__ import annotations

import keyword
from dataclasses import dataclass

from compiler.diagnostics import CompileError, Diagnostic
from compiler.diagnostics.codes import INVALID_IDENTIFIER
from compiler.ir import Graph
from compiler.syntax import ast


@dataclass(frozen=True)
class OutputTuple:
    """The NamedTuple a model definition returns."""

    name: str
    fields: tuple[str, ...]
    maybe_none: frozenset[str]      # fields some configuration leaves None (absent or optional)


def output_tuple(block: ast.BlockDef | None, graphs: list[Graph] | None = None) -> OutputTuple | None:
    """The named result of a model definition with two or more outputs; None for a block, or for a
    model with one output.  `graphs` (its specializations) tell which fields may be None."""
    if block is None or not block.is_model:
        return None
    declared = _declared_outputs(block.body)
    fields = tuple(dict.fromkeys(s.name for s in declared))
    if len(fields) < 2:
        return None
    for s in declared:
        if s.name.startswith("_") or keyword.iskeyword(s.name):
            raise CompileError([Diagnostic(
                INVALID_IDENTIFIER, f"`{s.name}` cannot name a field of {block.name}'s output tuple", s.span,
                hint="a model's outputs are the fields of a NamedTuple: no leading underscore, no keyword")])
    unconditional = {s.name for s in block.body if isinstance(s, ast.Output)}
    maybe_none = set(fields) - unconditional
    for graph in graphs or ():
        for out in graph.outputs:
            producer = graph.output_type(out.node, out.index)
            if producer is not None and producer.optional:
                maybe_none.add(out.name)
    return OutputTuple(f"{block.name}Output", fields, frozenset(maybe_none))


def _declared_outputs(stmts) -> list[ast.Output]:
    found = []
    for s in stmts:
        if isinstance(s, ast.Output):
            found.append(s)
        elif isinstance(s, ast.If):
            found += _declared_outputs(s.then) + _declared_outputs(s.orelse)
    return found


def return_statement(result: OutputTuple | None, names: list[str], values: list[str]) -> str:
    """`return a, b`, or with a named result every field by keyword (None where not produced)."""
    if result is None:
        return f"return {', '.join(values)}"
    given = dict(zip(names, values))
    fields = ", ".join(f"{f}={given.get(f, 'None')}" for f in result.fields)
    return f"return {result.name}({fields})"


def unpack_call(result: OutputTuple | None, names: list[str], targets: list[str], call: str,
                fresh) -> list[str]:
    """Lines binding `targets` to the outputs `names` of a call to a model: plain unpacking when
    they are its whole result, the fields by name otherwise."""
    if result is None or tuple(names) == result.fields:
        return [f"{', '.join(targets)} = {call}"]
    if len(names) == 1:
        return [f"{targets[0]} = {call}.{names[0]}"]
    whole = fresh("outputs")
    return [f"{whole} = {call}", f"{', '.join(targets)} = {', '.join(f'{whole}.{n}' for n in names)}"]


def tuple_source(result: OutputTuple, doc: str) -> str:
    """The NamedTuple's definition."""
    lines = [f"class {result.name}(NamedTuple):", f'    """{doc}"""', ""]
    for f in result.fields:
        lines.append(f"    {f}: torch.Tensor | None" if f in result.maybe_none else f"    {f}: torch.Tensor")
    return "\n".join(lines)


def mask_conversions(block: ast.BlockDef | None, inputs: list[tuple[str, str, bool]]) -> list[str]:
    """Lines that make a model's bool inputs bool: (name, dtype, optional) for each input."""
    if block is None or not block.is_model:
        return []
    lines = []
    for name, dtype, optional in inputs:
        if dtype != "bool":
            continue
        # one line for an optional mask too: the conditional expression reads as the `if` would
        lines.append(f"{name} = {name}.bool() if {name} is not None else None" if optional
                     else f"{name} = {name}.bool()")
    return lines
