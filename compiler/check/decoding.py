"""`decode logits from tokens`: a model that decodes autoregressively must have a decoder step
(a causal attention, whose keys and values the cache keeps), an output of next-token scores
and an input of token ids along the same time axis.  The entry found here is what the
generated `generate()` feeds (compiler/codegen/decoding.py, dlc/runtime/decoding.py)."""
from __future__ import annotations

from dataclasses import dataclass

from compiler.diagnostics import CompileError, Diagnostic, error, suggest
from compiler.diagnostics.codes import BAD_DECODE, MISPLACED_STATEMENT, NO_DECODER_STEP
from compiler.ir import Graph, Node, Program


@dataclass(frozen=True)
class DecodingEntry:
    tokens: str              # the input that takes the decoded ids
    source: str | None       # an encoder-decoder's other id input
    logits: int              # the index of the logits among the model's outputs
    mask: str | None = None  # the optional bool [B, L] mask of generate()'s input_ids (HF's attention_mask)


def causal_attention(node: Node) -> bool:
    return node.kind == "op" and node.op == "Attention" and bool(node.attrs.causal)


def callee_keys(node: Node) -> list[str]:
    if node.kind == "block":
        return [node.op]
    if node.kind == "repeat":
        return [layer.target for layer in node.attrs if layer.kind == "block"]
    return []


def stepped_scans(graph: Graph) -> list[Node]:
    """In a model that decodes, the `scan`s along its decoded ids' time axis: a recurrent decoder
    step, whose carried state the cache keeps between calls as it keeps attention's keys."""
    if graph.decode is None or not graph.is_model:
        return []
    tokens = next((graph.node(i).attrs for i in graph.inputs if graph.node(i).outputs[0] == graph.decode.tokens), None)
    if tokens is None or tokens.rank != 2:
        return []
    found = []
    for node in graph.ordered():
        sequence = graph.output_type(*graph.operands(node.id)[0]) if node.scan is not None else None
        if sequence is not None and node.scan.axis < sequence.rank and sequence.shape[node.scan.axis] == tokens.shape[1]:
            found.append(node)
    return found


def decoder_graphs(program: Program) -> set[str]:
    """The graphs with a causal attention anywhere inside them (this instance's), and the
    decoding models with a recurrent decoder step (a `scan` along the decoded ids)."""
    found = {key for key, g in program.graphs.items()
             if any(causal_attention(n) for n in g.ordered()) or stepped_scans(g)}
    while True:
        more = {key for key, g in program.graphs.items()
                if key not in found and any(c in found for n in g.ordered() for c in callee_keys(n))}
        if not more:
            return found
        found |= more


def check_decoding(program: Program) -> list[Diagnostic]:
    """Every `decode` statement's diagnostics."""
    if all(graph.decode is None for graph in program.graphs.values()):
        return []           # most models do not decode: no need to walk every graph for decoder steps
    decoders = decoder_graphs(program)
    found: list[Diagnostic] = []
    for graph in program.graphs.values():
        if graph.decode is not None:
            try:
                decoding_entry(graph, decoders)
            except CompileError as exc:
                found += [d for d in exc.diagnostics if d not in found]
    return found


def decoding_entry(graph: Graph, decoders: set[str]) -> DecodingEntry:
    """What `generate()` feeds the model; a diagnostic where its `decode` cannot work."""
    decl = graph.decode
    assert decl is not None
    if not graph.is_model:
        raise error(MISPLACED_STATEMENT, f"`decode` belongs in a model; {graph.block} is a block", decl.span,
                    hint="write it in the model that applies this block")
    outputs = [o.name for o in graph.outputs]
    if decl.logits not in outputs:
        raise error(BAD_DECODE, f"`decode` reads the next token's scores from `{decl.logits}`, which is no output "
                    f"of {graph.block}", decl.span,
                    hint=suggest(decl.logits, outputs) or f"its outputs: {', '.join(outputs)}")
    out = graph.outputs[outputs.index(decl.logits)]
    logits = graph.node(out.node).types[out.index]
    inputs = {graph.node(i).outputs[0]: graph.node(i).attrs for i in graph.inputs}
    tokens = inputs.get(decl.tokens)
    if tokens is None:
        raise error(BAD_DECODE, f"`decode` feeds the new ids to `{decl.tokens}`, which is no input of {graph.block}",
                    decl.span, hint=suggest(decl.tokens, inputs) or f"its inputs: {', '.join(inputs)}")
    if tokens.dtype != "int64" or tokens.rank != 2 or tokens.optional:
        raise error(BAD_DECODE, f"`decode` feeds ids to `{decl.tokens}`, which must be a required [B, T] int64 "
                    f"input, got {tokens.shape_str()} {tokens.dtype}{' optional' if tokens.optional else ''}",
                    decl.span)
    if logits.rank != 3 or logits.shape[1] != tokens.shape[1]:
        raise error(BAD_DECODE, f"`{decl.logits}` {logits.shape_str()} is not one score vector per position of "
                    f"`{decl.tokens}` {tokens.shape_str()}", decl.span,
                    hint="decoding reads [B, T, vocab] scores at the last of the T positions of the ids")
    if graph.key not in decoders:
        raise error(NO_DECODER_STEP, f"{graph.block} has no decoder step to decode with: no causal attention "
                    f"in it or in any block it applies, and no `scan` along `{decl.tokens}`", decl.span,
                    hint="decoding runs one causal self-attention step a token, with the earlier keys and values "
                         "cached, or one `scan` step of a recurrent decoder along the ids, with its state kept; "
                         "give the decoder's self-attention causal=true, or drop `decode`")
    sources = [name for name, t in inputs.items() if name != decl.tokens and t.dtype == "int64" and not t.optional]
    if len(sources) > 1:
        raise error(BAD_DECODE, f"{graph.block} takes ids in {', '.join(sources)} besides `{decl.tokens}`: "
                    "`generate()` can feed one source sequence", decl.span)
    return DecodingEntry(decl.tokens, sources[0] if sources else None, outputs.index(decl.logits),
                         _mask_of(inputs, inputs[sources[0]] if sources else tokens))


def _mask_of(inputs: dict, ids) -> str | None:
    """The input that masks generate()'s input_ids: an optional bool input of their shape
    (`attention_mask` where several are)."""
    masks = [name for name, t in inputs.items()
             if t.optional and t.dtype == "bool" and tuple(t.shape) == tuple(ids.shape)]
    return "attention_mask" if "attention_mask" in masks else (masks[0] if masks else None)
