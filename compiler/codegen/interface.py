"""A model's HuggingFace-style interface in generated code.

- Inputs: a model's `bool` inputs (attention masks) also take the int64 0/1 masks tokenizers
  return and float 0/1 masks, as HF models do.  The model's forward converts each once, on
  entry (`.bool()` returns a bool tensor itself, so a bool mask costs nothing); the blocks
  inside, and the checker, see bool only.  A mask that goes only to a model inside (a head's
  to its base model) is that model's to convert.
- Outputs: a model with several outputs returns a NamedTuple named after it
  (`BertModelOutput(last_hidden_state=..., pooler_output=...)`), its fields the outputs the
  spec declares, in order; one a configuration does not produce (or an optional one, a loss
  without labels) is None, as HF's `pooler_output` is without a pooler.  Where a static `if`
  makes configurations produce different outputs altogether (T5Model's decoder states, or
  with its LM head a loss and logits), each kind gets a type of its own holding only what it
  produces (`T5ModelOutput`, `T5ForConditionalGenerationOutput`): no field is always None.  Indexing and unpacking work as on the tuple it replaces, and torch.export
  flattens it like one.  A model with one output returns that tensor, as torchvision's do and
  as every block does; blocks keep plain tuples (they are internal: their callers unpack them
  on the next line, and a tuple type per block would only lengthen the file).
"""
from __future__ import annotations

import keyword
from dataclasses import dataclass

from compiler.diagnostics import CompileError, Diagnostic
from compiler.diagnostics.codes import INVALID_IDENTIFIER
from compiler.ir import Graph, Program
from compiler.syntax import ast


@dataclass(frozen=True)
class OutputTuple:
    """The NamedTuple a model definition returns."""

    name: str
    fields: tuple[str, ...]
    maybe_none: frozenset[str]      # fields some configuration leaves None (absent or optional)


def output_tuple(block: ast.BlockDef | None, graphs: list[Graph] | None = None) -> OutputTuple | None:
    """The named result of a model definition with two or more outputs, over all its outputs; None
    for a block, or for a model with one output.  `graphs` (its specializations) tell which
    fields may be None."""
    fields = declared_fields(block)
    if fields is None:
        return None
    unconditional = {s.name for s in block.body if isinstance(s, ast.Output)}
    return OutputTuple(f"{block.name}Output", fields, _maybe_none(fields, unconditional, graphs or []))


def declared_fields(block: ast.BlockDef | None) -> tuple[str, ...] | None:
    """A model's outputs in declaration order, over every branch: None for a block, or for a model
    with one output (it returns that tensor); checked as a NamedTuple's field names."""
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
    return fields


def _maybe_none(fields: tuple[str, ...], always: set[str], graphs: list[Graph]) -> frozenset[str]:
    maybe_none = set(fields) - always
    for graph in graphs:
        for out in graph.outputs:
            producer = graph.output_type(out.node, out.index)
            if producer is not None and producer.optional:
                maybe_none.add(out.name)
    return frozenset(maybe_none)


def result_types(program: Program) -> dict[str, OutputTuple]:
    """graph key -> the NamedTuple its configuration returns, for every model configuration with
    a named result.  A definition's configurations that produce different outputs (T5Model's
    decoder states without a head, a loss and logits with one) get a type each, holding only
    what they produce: configurations whose outputs one holds all of (BertModel without its
    pooler) share it, the missing ones None, as HF's pooler_output is without a pooler.  A type
    is named after an entry point that returns it: the definition's own (`T5ModelOutput`), else
    a `model X = ...` variant's (`T5ForConditionalGenerationOutput`)."""
    entries: dict[str, list[str]] = {}
    for public, key in program.models:
        entries.setdefault(key, []).append(public)
    by_block: dict[int, list[Graph]] = {}
    for graph in program.graphs.values():
        if declared_fields(graph.definition) is not None:
            by_block.setdefault(id(graph.definition), []).append(graph)
    found: dict[str, OutputTuple] = {}
    for graphs in by_block.values():
        groups = _output_groups(graphs)
        for group in groups:
            result = _group_type(group, graphs[0].definition, entries, alone=len(groups) == 1)
            found.update({g.key: result for g in group})
    return found


def _output_groups(graphs: list[Graph]) -> list[list[Graph]]:
    """Configurations grouped so that each group's outputs are one of theirs, a superset of the rest."""
    groups: list[tuple[set[str], list[Graph]]] = []
    for graph in graphs:
        names = {o.name for o in graph.outputs}
        for i, (held, members) in enumerate(groups):
            if names <= held or held <= names:
                groups[i] = (held | names, [*members, graph])
                break
        else:
            groups.append((names, [graph]))
    return [members for _, members in groups]


def _group_type(group: list[Graph], block: ast.BlockDef, entries: dict[str, list[str]], alone: bool) -> OutputTuple:
    produced = {o.name for g in group for o in g.outputs}
    fields = tuple(f for f in declared_fields(block) or () if f in produced)
    always = set.intersection(*({o.name for o in g.outputs} for g in group))
    publics = [public for g in group for public in entries.get(g.key, ())]
    if alone or block.name in publics:
        name = block.name
    elif publics:
        name = publics[0]
    else:
        name = block.name + "".join(f[:1].upper() + f[1:] for f in fields)
    return OutputTuple(f"{name}Output", fields, _maybe_none(fields, always, group))


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
    lines = [f"class {result.name}(typing.NamedTuple):", f'    """{doc}"""', ""]      # `import typing` serves all
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
