"""The op registry: one `OpDef` per primitive.

An entry holds everything the compiler knows about a primitive: its attribute
schema (compiler/ops/schema.py: pydantic's rules, pydantic's words, without importing it unless
a value is wrong; its field order is the positional argument order),
its input ports, its shape rule, its parameter shapes, its lowering to
PyTorch, its traits (elementwise, pure, commutative, in-place-able: what the
passes read instead of lists of op names), its FLOP formula and the sample
inputs its generic test runs.  Adding an op means writing one entry and
registering it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from compiler.diagnostics.records import record
from compiler.ir.dims import ONE, ZERO, prod_dims
from compiler.ir.types import Dim, TensorType, dim, dim_str, dims_equal, is_float, is_int, py_dim, shapes_equal
from compiler.diagnostics.codes import DTYPE_MISMATCH, SHAPE_MISMATCH, Code
from compiler.ops.schema import Attrs


class NoAttrs(Attrs):
    pass


class InplaceAttrs(Attrs):
    """For ops that can overwrite their first input; set by the `inplace` pass, never needed in specs."""

    inplace: bool = False


class ShapeError(Exception):
    """Raised by a shape rule.  `slot` names the offending input, if one does."""

    def __init__(self, message: str, slot: int | None = None, code: Code | str = SHAPE_MISMATCH, hint: str | None = None,
                 expected_dtype: str | None = None):
        super().__init__(message)
        self.message = message
        self.slot = slot
        self.code = str(code)        # the number, as diagnostics store it
        self.hint = hint
        # the dtype the input must be declared with, when that declaration is the line to edit
        self.expected_dtype = expected_dtype
        self.expected: Any = None     # a dimension rule's wanted and actual sizes (need_dim)
        self.actual: Any = None


@record
class Port:
    name: str
    optional: bool = False
    variadic: bool = False   # accepts one or more tensors (Concat)


@dataclass
class LowerContext:
    """What a lowering needs: argument expressions, output names, fresh temps."""

    args: list[str | None]
    outs: list[str]
    module: str | None
    in_types: list[TensorType | None]
    out_types: list[TensorType]
    dim_names: dict
    temp: Callable[[str], str]
    uses_dims: set = field(default_factory=set)
    # Per argument, its last dimension as the block's parameters compute it (a Residual printing as
    # `self.d_model`), where the layer producing it says; None where unknown.
    features: list = field(default_factory=list)
    # Incremental decoding (compiler/codegen/decoding.py): the name of the key/value cache argument
    # where the block takes one, and for a position op whose positions continue after the cached
    # ones, the expression of their number (the first new position).
    cache: str | None = None
    past: str | None = None
    # For such an op, `positions(x)`: the expression of the positions [T] or [N, T] of x's time
    # axis (after the cached ones, or each row's own in a left-padded batch: runtime/decoding.py).
    positions: Callable[[str], str] | None = None

    def feature(self, slot: int):
        return self.features[slot] if slot < len(self.features) else None

    def dim(self, d: Dim) -> str:
        self.uses_dims.update(getattr(d, "symbols", ()))
        return py_dim(d, self.dim_names)


InferFn = Callable[[Any, list[TensorType | None]], list[TensorType]]
LowerFn = Callable[[Any, LowerContext], list[str]]
# FLOPs of one call, from the attributes, input types and output types; symbolic in the dims.
# One multiply-add counts 2, as torch.utils.flop_counter counts matmuls and convolutions.
FlopFn = Callable[[Any, list[TensorType | None], list[TensorType]], Dim]
# A buffer: its shape, and whether it is saved in the state_dict
BufferSpec = tuple[tuple[int, ...], bool]


@record
class Sample:
    """One configuration the generic op test runs: attribute values (as a spec passes them)
    and input types with concrete sizes; None for an optional input left out."""

    attrs: dict[str, Any]
    inputs: tuple[TensorType | None, ...]


def sample(*inputs: TensorType | None, **attrs: Any) -> Sample:
    return Sample(attrs, inputs)


def tensor(*shape: int, dtype: str = "float") -> TensorType:
    """A concrete input type for a sample: `tensor(2, 5, 8)`, `tensor(2, 5, dtype="int64")`."""
    return TensorType(tuple(dim(d) for d in shape), dtype)


def numel(t: TensorType) -> Dim:
    return prod_dims(t.shape) if t.shape else ONE


def per_output_element(cost: int) -> FlopFn:
    """The FLOP formula of an element-wise op that spends `cost` FLOPs on each result element."""
    return lambda a, ins, outs: cost * sum((numel(t) for t in outs), ZERO)


def same_shape(a: Any, ins: list[TensorType | None], outs: list[TensorType]) -> bool:
    """An `identity` trait: the result has its input's shape (for ops that only regroup elements)."""
    return ins[0] is not None and shapes_equal(ins[0].shape, outs[0].shape)


def no_flops(a: Any, ins: list[TensorType | None], outs: list[TensorType]) -> Dim:
    """Data movement (views, copies, lookups): no arithmetic."""
    return ZERO


def _no_params(attrs: Any) -> dict[str, tuple[int, ...]]:
    return {}


def _no_buffers(attrs: Any) -> dict[str, BufferSpec]:
    return {}


def half(flops: FlopFn) -> FlopFn:
    """The MACs of an op whose FLOPs are all multiply-adds (2 FLOPs each)."""
    return lambda a, ins, outs: flops(a, ins, outs) / 2


def _one_output(attrs: Any) -> int:
    return 1


@record
class OpDef:
    name: str
    attrs: type[Attrs]
    inputs: tuple[Port, ...]
    infer: InferFn
    lower: LowerFn
    doc: str
    init: Callable[[Any], str] | None = None          # submodule constructor, if stateful
    params: Callable[[Any], dict[str, tuple[int, ...]]] = _no_params
    num_outputs: Callable[[Any], int] = _one_output
    helpers: tuple[str, ...] = ()                      # helper definitions the lowering uses
    # No randomness, no state: equal inputs give equal outputs (CSE may merge two such calls).
    # A callable decides per configuration (attention is pure without dropout).
    pure: bool | Callable[[Any], bool] = True
    # For layers made by fusion: the separate layers whose parameters this one
    # concatenates along dim 0, so their checkpoints still load (see codegen).
    joins: Callable[[Any], tuple[str, ...]] | None = None

    # Parameters that reference checkpoints store transposed (GPT-2's Conv1D keeps [in, out]): they
    # are transposed when such a checkpoint loads (load_reference_state_dict), so the layer is a plain one.
    reference_transposed: tuple[str, ...] = ()
    # The attributes whose value makes the op compute nothing (Dropout's p): when the block's
    # parameters compute one, the op is an identity for this configuration only, and stays.
    identity_attrs: tuple[str, ...] = ()

    # Its result is a fresh tensor that a later in-place op may overwrite without breaking
    # autograd: not a view, not the input itself, and not saved for this op's own backward.
    overwritable: bool = False
    # Its result is always a new tensor, in training and in eval: no view, never an input returned
    # unchanged, no parameter or buffer.  What the argument-donation analysis may hand a layer to
    # overwrite (passes/donation.py); `overwritable` ops are fresh too.
    fresh: bool = False

    # ---- traits the passes read (instead of lists of op names)
    # Each result element depends only on the input elements at the same (broadcast) position.
    elementwise: bool = False
    # Operands may be swapped (a + b == b + a): CSE merges `a + b` with `b + a`.
    commutative: bool = False
    # Torch can compute it into its first input (`inplace=True`, `a.add_(b)`); the attribute
    # schema then has an `inplace` field, which the `inplace` pass sets.  A callable decides
    # per configuration (`Activation(kind)` is in-place-able for some kinds only).
    inplace: bool | Callable[[Any], bool] = False
    # Whether a call computes nothing (returns its first input unchanged) for these attributes
    # and types: Dropout(0), a reshape to the same shape.  The remove-identities pass reads it.
    identity: Callable[[Any, list[TensorType | None], list[TensorType]], bool] | None = None
    # Float attributes that act only in training (Attention's and LSTM's `dropout`): an
    # inference build (the drop-dropout pass) sets them to 0.
    training_only: tuple[str, ...] = ()
    # FLOPs of one call (see FlopFn); None only while an op has not declared one.
    flops: FlopFn | None = None
    # Configurations for the generic op test (tests/test_op_samples.py): every op needs one.
    samples: tuple[Sample, ...] = ()

    # ---- what `dlc summary` reads besides `params` and `flops`
    # The multiply-accumulates of its matrix products and convolutions: the part of `flops`
    # torch.utils.flop_counter counts (at 2 FLOPs each).  None: none.
    macs: FlopFn | None = None
    # Elements of the float intermediates it makes besides its results (attention's scores and
    # weights), for the activation memory of a forward.
    workspace: FlopFn | None = None
    # State that is not a parameter (batch-norm statistics, fixed tables).
    buffers: Callable[[Any], dict[str, BufferSpec]] = _no_buffers
    # False when its result needs no memory of its own: a view of its input, or in eval mode the
    # input itself (dropout).
    allocates: bool = True

    def is_pure(self, attrs: Any) -> bool:
        return self.pure(attrs) if callable(self.pure) else self.pure

    def makes_new_tensor(self) -> bool:
        return self.fresh or self.overwritable

    def can_run_in_place(self, attrs: Any) -> bool:
        return self.inplace(attrs) if callable(self.inplace) else self.inplace

    def computes_nothing(self, attrs: Any, ins: list[TensorType | None], outs: list[TensorType]) -> bool:
        return self.identity is not None and self.identity(attrs, ins, outs)

    def has_parameters(self, attrs: Any) -> bool:
        """Whether a call holds trainable weights (derived from `params`, so the two never disagree)."""
        return bool(self.params(attrs))

    def count_flops(self, attrs: Any, ins: list[TensorType | None], outs: list[TensorType]) -> Dim | None:
        return None if self.flops is None else dim(self.flops(attrs, ins, outs))

    def cost(self, attrs: Any, ins: list[TensorType | None], outs: list[TensorType]) -> tuple[Dim, Dim]:
        """(MACs, FLOPs) of one call on tensors of these types."""
        macs = ZERO if self.macs is None else dim(self.macs(attrs, ins, outs))
        flops = self.count_flops(attrs, ins, outs)
        return macs, 2 * macs if flops is None else flops

    def workspace_elements(self, attrs: Any, ins: list[TensorType | None], outs: list[TensorType]) -> Dim:
        return ZERO if self.workspace is None else dim(self.workspace(attrs, ins, outs))


REGISTRY: dict[str, OpDef] = {}

# Built-in enum parameter types of the DSL, named sets of values the registry owns:
# `activation` is every activation kind (ops/activation.py).  A parameter declared
# `act: activation` accepts exactly those names.
NAMED_ENUMS: dict[str, dict[str, Any]] = {}


def register(op: OpDef) -> OpDef:
    assert op.name not in REGISTRY, f"op {op.name} registered twice"
    REGISTRY[op.name] = op
    return op


# ------------------------------------------------------------------ helpers for shape rules
def need(t: TensorType | None, slot: int, what: str) -> TensorType:
    if t is None:
        raise ShapeError(f"{what} is required", slot)
    return t


def need_float(t: TensorType, slot: int, what: str) -> None:
    if not is_float(t.dtype):
        hint = "token ids become vectors through an `Embedding` first" if is_int(t.dtype) else None
        raise ShapeError(f"{what} must be a floating-point tensor, got {t.dtype}", slot, code=DTYPE_MISMATCH, hint=hint)


def need_int(t: TensorType, slot: int, what: str) -> None:
    if not is_int(t.dtype):
        raise ShapeError(f"{what} must hold integer ids (int64/int32), got {t.dtype}", slot, code=DTYPE_MISMATCH,
                         hint="token ids are declared like `in ids: [B, S] int64`", expected_dtype="int64")


def need_dim(actual: Dim, expected: Dim, slot: int, what: str, t: TensorType, argument: str | None = None,
             hint: str | Callable[[], str | None] | None = None) -> None:
    """`argument` names the attribute that fixes the mismatch; the hint then proposes its value.
    A callable `hint` is called only on a mismatch: working a hint out costs more than the check."""
    if not dims_equal(actual, expected):
        if callable(hint):
            hint = hint()
        if hint is None and argument is not None:
            from compiler.ops.hints import set_argument
            hint = set_argument(argument, actual)
        exc = ShapeError(f"{what} must be {dim_str(expected)}, got {dim_str(actual)} (input shape {t.shape_str()})",
                         slot, hint=hint)
        exc.expected, exc.actual = expected, actual      # so the checker can blame the producer
        raise exc


def same_as(t: TensorType, shape=None, dtype: str | None = None) -> TensorType:
    return TensorType(tuple(shape) if shape is not None else t.shape, dtype or t.dtype)


def assign(ctx: LowerContext, expr: str) -> list[str]:
    return [f"{ctx.outs[0]} = {expr}"]
