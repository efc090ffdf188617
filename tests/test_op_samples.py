"""One generic test for every registered op, driven by the samples on its registry entry.

For each sample: the attributes validate, the shape rule infers the output types,
the lowering is compiled and run with torch on random inputs (the submodule built
from the op's own constructor string, the helpers it names defined), and every
result has the inferred shape and dtype.  In-place-able ops must give the same
values in place; FLOP formulas must agree with torch's own flop counter wherever
torch counts the op.  An op registered without samples fails here.
"""
from __future__ import annotations

import math
import re

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from compiler.ir.dims import Dim, const
from compiler.codegen.helpers import HELPERS
from compiler.ir.types import TensorType
from compiler.ops import REGISTRY, LowerContext
from compiler.ops.registry import OpDef, Sample, numel

_DTYPES = {"float": torch.float32, "float32": torch.float32, "float64": torch.float64,
           "int64": torch.int64, "int32": torch.int32, "bool": torch.bool}

# Ops whose work is all matmul or convolution: torch's flop counter must count them, and its
# count must equal the formula, less what `_flops_beyond_matmuls` says torch leaves out.
# (torch counts no FLOPs for nn.LSTM/nn.GRU on CPU, so their formula is checked by hand.)
_MATMUL_OPS = {"Linear", "TransposedLinear", "FusedLinear", "MatMul", "Conv1d", "Conv2d", "Attention",
               "RNNCell", "LSTMCell", "GRUCell", "NegativeSamplingLoss"}


def _cases(in_place_only: bool = False):
    for name, op in sorted(REGISTRY.items()):
        for index, s in enumerate(op.samples):
            if not in_place_only or op.can_run_in_place(op.attrs(**s.attrs)):
                yield pytest.param(name, index, id=f"{name}-{index}")


def _random(t: TensorType, generator: torch.Generator) -> torch.Tensor:
    shape = tuple(int(d) for d in t.shape)
    dtype = _DTYPES[t.dtype]
    if dtype == torch.bool:
        return torch.rand(shape, generator=generator) > 0.3
    if not dtype.is_floating_point:
        return torch.randint(0, 4, shape, generator=generator, dtype=dtype)
    return torch.randn(shape, generator=generator, dtype=dtype)


class _Lowered:
    """A sample's lowering, compiled once; `run()` executes it on fresh copies of the inputs."""

    def __init__(self, op: OpDef, s: Sample, attrs=None):
        self.attrs = attrs if attrs is not None else op.attrs(**s.attrs)
        self.ins = list(s.inputs)
        self.outs = op.infer(self.attrs, self.ins)
        args = [None if t is None else f"x{i}" for i, t in enumerate(self.ins)]
        names = [f"out{i}" for i in range(len(self.outs))]
        counter = iter(range(10**6))
        ctx = LowerContext(args, names, "self.layer" if op.init else None, self.ins, self.outs, {},
                           lambda base: f"{base}_{next(counter)}")
        self.names = names
        self.code = "\n".join(op.lower(self.attrs, ctx))
        self.namespace = {"torch": torch, "nn": nn, "F": F, "math": math, "re": re}
        for helper in op.helpers:
            exec(HELPERS[helper], self.namespace)
        holder = nn.Module()
        if op.init:
            torch.manual_seed(0)
            holder.layer = eval(op.init(self.attrs), self.namespace)
        self.namespace["self"] = holder.eval()

    def run(self, inputs: list[torch.Tensor | None]) -> list[torch.Tensor]:
        scope = dict(self.namespace)
        scope.update({f"x{i}": None if x is None else x.clone() for i, x in enumerate(inputs)})
        exec(self.code, scope)
        return [scope[name] for name in self.names]


def _inputs(s: Sample) -> list[torch.Tensor | None]:
    generator = torch.Generator().manual_seed(1)
    return [None if t is None else _random(t, generator) for t in s.inputs]


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_op_has_samples_and_a_flop_formula(name):
    op = REGISTRY[name]
    assert op.samples, f"{name} has no samples: add `samples=(sample(...),)` to its registry entry"
    assert op.flops is not None, f"{name} has no FLOP formula: add `flops=` to its registry entry"


@pytest.mark.parametrize("name, index", list(_cases()))
def test_sample_lowers_runs_and_has_the_inferred_type(name, index):
    op = REGISTRY[name]
    lowered = _Lowered(op, op.samples[index])
    assert len(lowered.outs) == op.num_outputs(lowered.attrs)
    with torch.no_grad():
        results = lowered.run(_inputs(op.samples[index]))
    for got, want in zip(results, lowered.outs):
        assert tuple(got.shape) == tuple(int(d) for d in want.shape), lowered.code
        assert got.dtype == _DTYPES[want.dtype], lowered.code


def _identity_cases():
    """The samples for which an op's `identity` trait claims the call computes nothing."""
    for case in _cases():
        name, index = case.values
        op = REGISTRY[name]
        s = op.samples[index]
        if op.identity is not None:
            attrs = op.attrs(**s.attrs)
            if op.computes_nothing(attrs, list(s.inputs), op.infer(attrs, list(s.inputs))):
                yield case


def test_samples_cover_the_identity_trait():
    """Every op with an `identity` trait has a sample where it holds, so the test below checks it."""
    covered = {case.values[0] for case in _identity_cases()}
    assert covered == {name for name, op in REGISTRY.items() if op.identity is not None}


@pytest.mark.parametrize("name, index", list(_identity_cases()))
def test_identity_trait_holds_where_it_says(name, index):
    """Where the registry says a call computes nothing (the remove-identities pass drops it),
    the lowered code returns its input unchanged."""
    op = REGISTRY[name]
    lowered = _Lowered(op, op.samples[index])
    inputs = _inputs(op.samples[index])
    with torch.no_grad():
        torch.testing.assert_close(lowered.run(inputs)[0], inputs[0], rtol=0, atol=0)


@pytest.mark.parametrize("name, index", list(_cases(in_place_only=True)))
def test_in_place_lowering_gives_the_same_values(name, index):
    op = REGISTRY[name]
    s = op.samples[index]
    attrs = op.attrs(**s.attrs)
    inputs = _inputs(s)
    if tuple(inputs[0].shape) != tuple(int(d) for d in op.infer(attrs, list(s.inputs))[0].shape):
        pytest.skip("the first operand is broadcast; the inplace pass never overwrites it")
    expected = _Lowered(op, s).run(inputs)
    in_place = _Lowered(op, s, attrs.model_copy(update={"inplace": True}))
    assert in_place.code != _Lowered(op, s).code, "the in-place lowering is the out-of-place one"
    torch.testing.assert_close(in_place.run(inputs)[0], expected[0], rtol=0, atol=0)


def _flops_beyond_matmuls(name: str, attrs, s: Sample) -> Dim:
    """The part of an op's formula that torch's flop counter does not count (it counts only
    matmuls and convolutions): Attention's softmax, the negative-sampling loss's
    positive dot product and log-sigmoids."""
    if name == "Attention":
        q, k = s.inputs[0], s.inputs[1]
        return 5 * numel(TensorType((q.shape[0], const(attrs.heads), q.shape[1], k.shape[1])))
    if name == "NegativeSamplingLoss":
        center, negatives = s.inputs[0], s.inputs[2]
        return 2 * numel(center) + 5 * center.shape[0] * (negatives.shape[1] + 1)
    return const(0)


@pytest.mark.parametrize("name, index", list(_cases()))
def test_flop_formula_matches_torch_flop_counter(name, index):
    op = REGISTRY[name]
    s = op.samples[index]
    lowered = _Lowered(op, s)
    ours = op.count_flops(lowered.attrs, lowered.ins, lowered.outs)
    assert ours is not None and ours.is_int and ours >= 0, ours
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        lowered.run(_inputs(s))
    theirs = counter.get_total_flops()
    if name in _MATMUL_OPS and not getattr(lowered.attrs, "fused", False):
        assert theirs > 0, f"torch counted no FLOPs for {name}: the comparison would prove nothing"
    if theirs:
        assert int(ours - _flops_beyond_matmuls(name, lowered.attrs, s)) == theirs


def test_flop_formulas_stay_symbolic():
    """`dlc summary` reports FLOPs in the spec's dimension names."""
    from compiler.ir.types import symbol
    B, S = symbol("B"), symbol("S")
    linear = REGISTRY["Linear"]
    attrs = linear.attrs(in_features=8, out_features=5)
    x = TensorType((B, S, const(8)))
    assert linear.count_flops(attrs, [x], linear.infer(attrs, [x])) == 80 * B * S


@pytest.mark.parametrize("name, cell", [("LSTM", "LSTMCell"), ("GRU", "GRUCell")])
def test_sequence_flops_are_the_cell_flops_at_every_step(name, cell):
    """torch counts nothing for nn.LSTM/nn.GRU on CPU; their formula is T steps of the cell's
    (which the flop counter checks above), per layer and direction."""
    seq, step = REGISTRY[name], REGISTRY[cell]
    x = TensorType((const(3), const(7), const(4)))            # [B, T, input_size]
    one = seq.attrs(input_size=4, hidden_size=6)
    cell_flops = step.count_flops(step.attrs(input_size=4, hidden_size=6), [TensorType(x.shape[::2])], [])
    assert seq.count_flops(one, [x], seq.infer(one, [x])) == 7 * cell_flops
    two = seq.attrs(input_size=4, hidden_size=6, num_layers=2, bidirectional=True)
    second_layer = step.count_flops(step.attrs(input_size=12, hidden_size=6), [TensorType(x.shape[::2])], [])
    assert seq.count_flops(two, [x], seq.infer(two, [x])) == 7 * 2 * (cell_flops + second_layer)
