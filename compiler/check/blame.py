"""Which line a shape or dtype error should point at, and the fix to propose there.

The op that notices a mismatch is not always the line to edit: a residual `x + h`
fails because the convolution that made `h` forgot its padding; an Embedding fails
because its ids were declared float.  These rules move the primary location to the
producing layer or the input declaration when that is where the fix goes, and compute
the value to write (`padding=1`, `stride=2`, `out_features=256`, `int64`)."""
from __future__ import annotations

import re
from typing import Any


from compiler.diagnostics import SourceCache, Span
from compiler.ir import Graph, Node
from compiler.ir.types import TensorType, dim_str, dims_equal
from compiler.ops.hints import concrete

BROADCASTING = {"Add", "Sub", "Mul", "Div"}
_SOURCES = SourceCache()


def _size(t: Any) -> int | None:
    return concrete(t)


def _conv_fix(attrs: Any, produced: TensorType, wanted: TensorType) -> str | None:
    """out_channels, padding or stride that make a convolution's output `wanted`."""
    if produced.rank != wanted.rank:
        return None
    if not dims_equal(produced.shape[1], wanted.shape[1]) and _size(wanted.shape[1]):
        return f"set `out_channels={_size(wanted.shape[1])}`"
    for got, want in zip(produced.shape[2:], wanted.shape[2:]):
        if dims_equal(got, want):
            continue
        gap = want - got
        stride = attrs.stride if isinstance(attrs.stride, int) else None
        padding = attrs.padding if isinstance(attrs.padding, int) else None
        if stride == 1 and padding is not None and gap.is_int and int(gap) > 0 and int(gap) % 2 == 0:
            return f"set `padding={padding + int(gap) // 2}` so the output keeps the input's size"
        ratio = got / want if want != 0 else None
        if ratio is not None and ratio.is_int and int(ratio) > 1 and stride == 1:
            return f"set `stride={int(ratio)}` to downsample like the other branch"
    return None


def propose_fix(producer: Node, produced: TensorType, wanted: TensorType) -> str | None:
    """The argument of the producing layer that would make it produce `wanted`."""
    if producer.kind != "op" or not produced.rank or not wanted.rank:
        return None
    last = _size(wanted.shape[-1])
    if producer.op.startswith("Conv"):
        return _conv_fix(producer.attrs, produced, wanted) if produced.rank == wanted.rank else None
    argument = {"Linear": "out_features", "TransposedLinear": "out_features", "Embedding": "embedding_dim",
                "PositionEmbedding": "dim", "SinusoidalPositions": "dim"}.get(producer.op)
    if argument and last is not None and not dims_equal(produced.shape[-1], wanted.shape[-1]):
        return f"set `{argument}={last}`"
    return None


def broadcast_culprit(graph: Graph, node: Node, ins: list[TensorType | None]) -> tuple[Node, str, str] | None:
    """For `a + b` whose shapes do not broadcast: the later-made operand's producer and its fix.
    The other operand is the reference (a residual's input, the main path)."""
    operands = graph.operands(node.id)
    if node.op not in BROADCASTING or len(operands) != 2 or any(t is None for t in ins[:2]):
        return None
    candidates = []
    for slot, (src, index) in operands.items():
        producer = graph.node(src)
        fix = propose_fix(producer, ins[slot], ins[1 - slot])
        if fix is not None:
            other = graph.node(operands[1 - slot][0]).outputs[operands[1 - slot][1]]
            message = (f"`{producer.outputs[index]}` is {ins[slot].shape_str()}, but {node.op} combines it with "
                       f"`{other}` {ins[1 - slot].shape_str()} (line {node.span.line}): the shapes do not broadcast")
            candidates.append((producer.order, producer, fix, message))
    if not candidates:
        return None
    _, producer, fix, message = max(candidates, key=lambda c: c[0])
    return producer, fix, message


def input_declaration(graph: Graph, node: Node, slot: int | None) -> Node | None:
    """The input node feeding `slot` directly, when the fix is to declare it differently."""
    operands = graph.operands(node.id)
    if slot is None or slot not in operands:
        return None
    source = graph.node(operands[slot][0])
    return source if source.kind == "input" else None


def declare_hint(source: Node, shape: str, dtype: str) -> str:
    suffix = " optional" if source.attrs.optional else ""
    hint = f"declare it `in {source.outputs[0]}: {shape} {dtype}{suffix}`".replace(" float`", "`").replace(
        " float optional`", " optional`")
    # A mask declared int64 because tokenizers return int64: the bool declaration takes those too.
    return hint + (" (a model's bool inputs take HF's int and float 0/1 masks too)" if dtype == "bool" else "")


def flatten_note(graph: Graph, node: Node, slot: int | None) -> str:
    """` (Flatten(1) of [B, 3, 7, 7] gives 3 * 7 * 7 = 147)` when a Flatten made the input."""
    operands = graph.operands(node.id)
    if slot not in operands:
        return ""
    producer = graph.node(operands[slot][0])
    if producer.kind != "op" or producer.op != "Flatten":
        return ""
    source_ops = graph.operands(producer.id)
    if 0 not in source_ops:
        return ""
    before = graph.output_type(*source_ops[0])
    if before is None:
        return ""
    start, end = producer.attrs.start, producer.attrs.end % before.rank
    merged = before.shape[start:end + 1]
    if not all(_size(d) for d in merged):
        return ""
    total = 1
    for d in merged:
        total *= _size(d)
    return f" (Flatten of {before.shape_str()} gives {' * '.join(dim_str(d) for d in merged)} = {total})"


def declared_parameter(decl_span: Span, index: int, params: dict[str, Any]) -> str | None:
    """The block parameter written as dimension `index` of an input declaration (`in x: [B, S, d_model]`)."""
    line = _SOURCES.line(decl_span.file, decl_span.line)
    match = re.search(r"\[([^\]]*)\]", line or "")
    if not match:
        return None
    items = [item.strip() for item in match.group(1).split(",")]
    if index < len(items) and items[index] in params:
        return items[index]
    return None


def consumer_culprit(graph: Graph, node: Node, slot: int | None, expected: Any, actual: Any,
                     block_params: dict[str, dict[str, Any]] | None = None) -> tuple[Node, str] | None:
    """A size rule failed at `node`, but the layer that made its input is the mistake:
    `Flatten(0)` merged the batch in, or an Embedding's two sizes were swapped."""
    operands = graph.operands(node.id)
    if slot is None or slot not in operands or expected is None:
        return None
    producer = _through_unary(graph, graph.node(operands[slot][0]))
    if producer.kind not in ("op", "block"):
        return None
    a = producer.attrs
    if producer.op == "Flatten" and a.start == 0:
        return producer, "`Flatten(1)` keeps the batch dimension; `Flatten(0)` merges it into the features"
    if producer.kind == "block":
        params = block_params or {}
        if node.kind == "block" and swapped_block_arguments(node, params.get(node.op, {}), actual, expected):
            return None          # the consumer's own parameters look swapped: it is the one to fix
        return swapped_block_arguments(producer, params.get(producer.op, {}), expected, actual)
    if producer.op == "Embedding" and (_size(expected), _size(actual)) == (a.num_embeddings, a.embedding_dim):
        return producer, (f"the arguments look swapped: `Embedding({a.embedding_dim}, {a.num_embeddings})` "
                          f"(num_embeddings first, then embedding_dim)")
    return None


def swapped_block_arguments(producer: Node, params: dict[str, Any], expected: Any,
                             actual: Any) -> tuple[Node, str] | None:
    """A block made a tensor of the wrong size, and two of its parameters hold exactly the
    wanted and the got value: they were most likely passed in each other's place."""
    want, got = _size(expected), _size(actual)
    holding = {v: [k for k, value in params.items() if value == v and not isinstance(value, bool)] for v in (want, got)}
    if want is None or got is None or len(holding[want]) != 1 or len(holding[got]) != 1:
        return None
    p_got, p_want = holding[got][0], holding[want][0]
    return producer, (f"`{p_want}` and `{p_got}` look swapped: `{producer.op}` was given {p_want}={want} and "
                      f"{p_got}={got}; pass {p_got}={want}, {p_want}={got}")


SHAPE_KEEPING = {"Dropout", "ReLU", "GELU", "SiLU", "Tanh", "Sigmoid", "Activation", "ReLU6", "LeakyReLU", "ELU",
                 "Scale"}


def _through_unary(graph: Graph, node: Node) -> Node:
    """The layer behind a chain of shape-keeping ops (`Dropout(p)(Embedding(...)(ids))`)."""
    for _ in range(8):
        operands = graph.operands(node.id)
        if node.kind != "op" or node.op not in SHAPE_KEEPING or 0 not in operands:
            return node
        node = graph.node(operands[0][0])
    return node


def noop_transpose(graph: Graph, node: Node) -> tuple[Node, str] | None:
    """A MatMul whose right operand went through `Transpose(i, i)`: a typo for a real swap."""
    operands = graph.operands(node.id)
    if node.op != "MatMul" or 1 not in operands:
        return None
    producer = graph.node(operands[1][0])
    if producer.kind != "op" or producer.op != "Transpose":
        return None
    source = graph.operands(producer.id).get(0)
    before = graph.output_type(*source) if source else None
    if before is None:
        return None
    i, j = producer.attrs.dim0 % before.rank, producer.attrs.dim1 % before.rank
    if i != j:
        return None
    pair = (before.rank - 2, before.rank - 1)
    return producer, (f"`Transpose({producer.attrs.dim0}, {producer.attrs.dim1})` swaps a dimension with itself; "
                      f"for a matrix product transpose the last two: `Transpose{pair}`")


def repeat_hint(op: str, attrs: Any) -> str:
    """Each copy of a repeated layer reads the previous copy's output."""
    keep = f": `Linear({attrs.in_features}, {attrs.in_features})` keeps the width" if op == "Linear" else ""
    return f"repeat feeds each copy's output to the next copy, so the layer must give the shape it takes{keep}"
