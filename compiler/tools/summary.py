"""`dlc summary`: parameters, buffers, MACs/FLOPs and activation memory of an entry point,
per layer and in total, computed from the typed IR without torch.

Counts follow the generated model: a layer applied twice (`tgt_embed = src_embed`) holds its
parameters once, a tied parameter (`tie generator.weight = src_embed.weight`) is counted once,
at its source, as `sum(p.numel() for p in model.parameters())` counts it.  Work is per forward
call in eval mode, as symbolic formulas in the entry point's free dimensions (B, S, ...), and
as numbers once those are given.  The formulas are the op entries' `macs` and `flops`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import math
from math import prod

from compiler.check.parallel import derive_plan
from compiler.diagnostics import Span
from compiler.ir import Program, entry_program
from compiler.ir.dims import ZERO, Dim, dim
from compiler.ir.types import TensorType, symbol
from compiler.ir.values import show
from compiler.ops import REGISTRY
from compiler.ops.registry import numel
from compiler.tools.instances import Instance, model_instance

DTYPE_BYTES = {"float": 4, "float32": 4, "float16": 2, "bfloat16": 2, "float64": 8,
               "int64": 8, "int32": 4, "bool": 1}
FLOAT_DTYPES = ("float32", "float16", "bfloat16", "float64")


@dataclass(frozen=True)
class TiedParameter:
    parameter: str        # the tied name: `generator.weight`
    source: str           # the tensor it shares: `src_embed.weight`
    numel: int
    span: Span


@dataclass
class Row:
    """One layer and everything below it."""

    path: str
    name: str
    type_name: str
    depth: int
    span: Span
    outputs: tuple[TensorType, ...]
    params: int = 0
    buffers: int = 0
    macs: Dim = ZERO
    flops: Dim = ZERO
    activation_bytes: Dim = ZERO
    notes: list[str] = field(default_factory=list)
    children: list["Row"] = field(default_factory=list)
    kind: str = "op"            # as Instance.kind; "group" for iterations shown as one row

    def rows(self, max_depth: int):
        """Descendants down to `max_depth`, parents first (not this row)."""
        for child in self.children:
            if child.depth <= max_depth:
                yield child
                yield from child.rows(max_depth)


@dataclass
class ModelSummary:
    name: str
    block: str
    params_text: str            # `d_model=512, heads=8, ...`
    span: Span
    inputs: list[tuple[str, TensorType]]
    root: Row
    tied: list[TiedParameter]
    dtype: str
    tp_plan: dict[str, str] = field(default_factory=dict)     # module path -> tensor-parallel style
    fsdp_units: list[str] = field(default_factory=list)       # the elements of each repeat stack

    @property
    def free_dims(self) -> list[str]:
        found = {s for _, t in self.inputs for d in t.shape for s in d.symbols}
        for expr in (self.root.macs, self.root.flops, self.root.activation_bytes):
            found |= expr.symbols
        return sorted(str(s) for s in found)


def summarize(program: Program, public: str, dtype: str = "float32") -> ModelSummary:
    """The summary of entry point `public` of an entry program (see `entry_program`)."""
    key = dict(program.models)[public]
    root = model_instance(program, public, key)
    ties = _ties(root)
    tied: list[TiedParameter] = []
    graph = program.graphs[key]
    params_text = ", ".join(f"{k}={show(v)}" for k, v in graph.params.items())
    inputs = [(graph.node(i).outputs[0], graph.node(i).attrs) for i in graph.inputs]
    plan = derive_plan(program, key)
    return ModelSummary(public, graph.block, params_text, root.span, inputs, _row(root, 0, ties, tied, dtype), tied,
                        dtype, plan.as_mapping(), plan.wrap_units)


def summarize_program(program: Program, opt_level: int = 1, dtype: str = "float32") -> list[ModelSummary]:
    """Every entry point of a checked program (`compiler.driver.check`), as `dlc compile
    -O{opt_level}` builds it: the same passes run first, so dead heads do not count."""
    from compiler.passes import optimize, select_passes
    built, _ = optimize(entry_program(program), select_passes(opt_level))
    return [summarize(built, public, dtype) for public, _ in built.models]


def _ties(root: Instance) -> dict[str, tuple[str, Span]]:
    """Full parameter path -> (the path it is tied to, the tie's span), for every tie in the model."""
    found: dict[str, tuple[str, Span]] = {}
    for inst in root.walk():
        if inst.graph is None or inst.shared:
            continue
        for tie in inst.graph.ties:
            prefix = f"{inst.path}." if inst.path else ""
            found[prefix + ".".join(tie.target)] = (prefix + ".".join(tie.source), tie.span)
    return found


def _row(inst: Instance, depth: int, ties: dict, tied: list[TiedParameter], dtype: str,
         parent_shared: bool = False) -> Row:
    row = Row(inst.path, inst.name, inst.type_name, depth, inst.span, inst.outputs, kind=inst.kind)
    if inst.op is not None:
        _own(inst, row, ties, tied, dtype)
    for child in inst.children:
        sub = _row(child, depth + 1, ties, tied, dtype, inst.shared)
        row.children.append(sub)
        row.params += sub.params
        row.buffers += sub.buffers
        row.macs += sub.macs
        row.flops += sub.flops
        row.activation_bytes += sub.activation_bytes
    if inst.steps != 1:       # a scan: its step's work and the step outputs it keeps, at every position
        row.macs, row.flops, row.activation_bytes = (x * inst.steps for x in (row.macs, row.flops,
                                                                               row.activation_bytes))
    if inst.shared and not parent_shared and (inst.op is None or _has_state(inst)):
        row.notes.append("shared: parameters counted at its first use")
    return row


def _own(inst: Instance, row: Row, ties: dict, tied: list[TiedParameter], dtype: str) -> None:
    """An op's own parameters, buffers, work and output memory."""
    op = REGISTRY[inst.op]
    row.macs, row.flops = op.cost(inst.attrs, inst.inputs, list(inst.outputs))
    if op.allocates:
        row.activation_bytes = sum((numel(t) * _bytes(t.dtype, dtype) for t in inst.outputs), ZERO)
    row.activation_bytes += op.workspace_elements(inst.attrs, inst.inputs, list(inst.outputs)) * _bytes("float", dtype)
    if inst.shared or not inst.stateful:
        return
    for name, shape in op.params(inst.attrs).items():
        full = f"{inst.path}.{name}"
        if full in ties:
            source, span = ties[full]
            tied.append(TiedParameter(full, source, prod(shape), span))
            row.notes.append(f"{name} tied to {source}")
        else:
            row.params += prod(shape)
    row.buffers = sum(prod(shape) for shape, _ in op.buffers(inst.attrs).values())


def _has_state(inst: Instance) -> bool:
    op = REGISTRY[inst.op]
    return bool(op.params(inst.attrs) or op.buffers(inst.attrs))


def _bytes(tensor_dtype: str, float_dtype: str) -> int:
    """Bytes per element: float tensors take the dtype the model runs in."""
    if tensor_dtype in ("float", "float32"):
        return DTYPE_BYTES[float_dtype]
    return DTYPE_BYTES.get(tensor_dtype, 4)


# ---------------------------------------------------------------------- evaluating formulas
def at_dims(expr: Dim, dims: dict[str, int]) -> Dim:
    """`expr` with the given dimension sizes substituted."""
    return dim(expr).subs({symbol(k): v for k, v in dims.items()})


def as_number(expr: Dim) -> int | None:
    """The integer value of a formula with no free dimensions left, else None."""
    expr = dim(expr)
    return None if expr.value is None else math.floor(expr.value)
