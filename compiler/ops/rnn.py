"""Recurrent layers: nn.LSTM and nn.GRU as stateful submodules.

Inputs are [B, T, input_size] when batch_first (the default here, unlike
torch) and [T, B, input_size] otherwise.  The initial states h_0 (and c_0), optional,
and the final states h_n (and c_n) are [num_layers * directions, B, hidden_size], as
torch takes and returns them, so an encoder's final state can start a decoder.
"""
from __future__ import annotations

from compiler.ops.schema import PositiveInt, confloat

from compiler.ir.residual import is_residual
from compiler.ir.types import TensorType, dim, dims_equal
from compiler.ops.registry import (
    Attrs,
    OpDef,
    Port,
    ShapeError,
    need,
    need_dim,
    need_float,
    register,
    sample,
    tensor,
    half,
)

GATES = {"LSTM": 4, "GRU": 3}
OUTPUTS = {"LSTM": 3, "GRU": 2}   # (output, h_n, c_n) / (output, h_n)
_STATES = {"LSTM": ("h_0", "c_0"), "GRU": ("h_0",)}


class RNNAttrs(Attrs):
    input_size: PositiveInt
    hidden_size: PositiveInt
    num_layers: PositiveInt = 1
    bias: bool = True
    batch_first: bool = True
    dropout: confloat(ge=0.0, lt=1.0) = 0.0  # type: ignore[valid-type]
    bidirectional: bool = False


def _directions(a: RNNAttrs) -> int:
    return 2 if a.bidirectional else 1


def _infer_rnn(name: str):
    def infer(a: RNNAttrs, ins) -> list[TensorType]:
        x = need(ins[0], 0, f"{name} input")
        need_float(x, 0, f"{name} input")
        layout = "[B, T, input_size]" if a.batch_first else "[T, B, input_size]"
        if x.rank != 3:
            raise ShapeError(f"{name} input must be {layout}, got {x.shape_str()}", 0,
                             hint="batch_first=false expects time first" if not a.batch_first else
                             "a recurrent layer reads a sequence of vectors; give it a time dimension" if x.rank == 2
                             else None)
        need_dim(x.shape[2], dim(a.input_size), 0, f"the feature dimension (2) of {name}'s input", x,
                 argument="input_size")
        batch = x.shape[0] if a.batch_first else x.shape[1]
        dirs = _directions(a)
        out = x.with_shape((*x.shape[:2], a.hidden_size * dirs))
        state = TensorType((dim(a.num_layers * dirs), batch, dim(a.hidden_size)), x.dtype)
        _check_initial_states(name, [*ins[1:], *[None] * (len(_STATES[name]) + 1 - len(ins))], state)
        return [out, state] + ([state] if name == "LSTM" else [])
    return infer


def _check_initial_states(name: str, states: list[TensorType | None], expected: TensorType) -> None:
    given = [s is not None for s in states]
    if name == "LSTM" and given[0] != given[1]:
        raise ShapeError("LSTM takes both initial states (h_0 and c_0) or neither", 2 if given[0] else 1)
    for slot, state in enumerate(states, start=1):
        if state is not None and (state.rank != 3 or not all(dims_equal(x, y)
                                                              for x, y in zip(state.shape, expected.shape))):
            raise ShapeError(f"{name}'s initial state must be {expected.shape_str()} "
                             f"([num_layers * directions, B, hidden_size]), got {state.shape_str()}", slot)


def _rnn_params(name: str):
    def params(a: RNNAttrs) -> dict[str, tuple[int, ...]]:
        # Same names and order as torch's state_dict: per layer, per direction, w_ih, w_hh, b_ih, b_hh.
        rows, dirs = GATES[name] * a.hidden_size, _directions(a)
        shapes: dict[str, tuple[int, ...]] = {}
        for layer in range(a.num_layers):
            width = a.input_size if layer == 0 else a.hidden_size * dirs
            for suffix in ("", "_reverse")[:dirs]:
                tag = f"l{layer}{suffix}"
                shapes[f"weight_ih_{tag}"] = (rows, width)
                shapes[f"weight_hh_{tag}"] = (rows, a.hidden_size)
                if a.bias:
                    shapes[f"bias_ih_{tag}"] = (rows,)
                    shapes[f"bias_hh_{tag}"] = (rows,)
        return shapes
    return params


def _rnn_init(name: str):
    def init(a: RNNAttrs) -> str:
        args = [str(a.input_size), str(a.hidden_size)]
        if a.num_layers != 1 or is_residual(a.num_layers):
            args.append(f"num_layers={a.num_layers}")
        if is_residual(a.bias) or not a.bias:
            args.append(f"bias={a.bias}")
        # Always explicit: torch defaults to batch_first=False but the DSL defaults to True.
        args.append(f"batch_first={a.batch_first}")
        if a.dropout or is_residual(a.dropout):
            args.append(f"dropout={a.dropout!r}")
        if is_residual(a.bidirectional) or a.bidirectional:
            args.append(f"bidirectional={a.bidirectional}")
        return f"nn.{name}({', '.join(args)})"
    return init


def state_argument(ctx, states: list[str | None]) -> str:
    """The state argument: absent when no port is connected, else None-safe for optional inputs."""
    given = [s for s in states if s is not None]
    if not given:
        return ""
    state = given[0] if len(given) == 1 else f"({', '.join(given)})"
    optional = any(t is not None and t.optional for t in ctx.in_types[1:])
    return f", None if {given[0]} is None else {state}" if optional else f", {state}"


def _lower_lstm(a: RNNAttrs, ctx) -> list[str]:
    out, h, c = ctx.outs
    return [f"{out}, ({h}, {c}) = {ctx.module}({ctx.args[0]}{state_argument(ctx, ctx.args[1:3])})"]


def _lower_gru(a: RNNAttrs, ctx) -> list[str]:
    out, h = ctx.outs
    return [f"{out}, {h} = {ctx.module}({ctx.args[0]}{state_argument(ctx, ctx.args[1:2])})"]


def _rnn_flops(name: str):
    def flops(a: RNNAttrs, ins, outs):
        # The gate matmuls, per time step, layer and direction: [B, width + hidden] x [.., gates * hidden],
        # 2 FLOPs per multiply-add; the gate nonlinearities are not counted.
        x = ins[0]
        steps_times_batch = x.shape[0] * x.shape[1]
        dirs, rows = _directions(a), GATES[name] * a.hidden_size
        widths = [a.input_size] + [a.hidden_size * dirs] * (a.num_layers - 1)
        return 2 * steps_times_batch * dirs * rows * sum(w + a.hidden_size for w in widths)
    return flops


_RNN_SAMPLES = (
    sample(tensor(2, 5, 4), input_size=4, hidden_size=6),
    sample(tensor(5, 2, 4), input_size=4, hidden_size=3, num_layers=2, bidirectional=True, batch_first=False),
    sample(tensor(2, 3, 4), input_size=4, hidden_size=5, bias=False, num_layers=2, dropout=0.1),
)
# The initial states, given: h_0 (and c_0) [num_layers * directions, B, hidden_size].
_RNN_STATE_SAMPLES = {
    "LSTM": sample(tensor(2, 5, 4), tensor(4, 2, 6), tensor(4, 2, 6), input_size=4, hidden_size=6, num_layers=2,
                   bidirectional=True),
    "GRU": sample(tensor(2, 5, 4), tensor(1, 2, 6), input_size=4, hidden_size=6),
}


for _name, _lower in (("LSTM", _lower_lstm), ("GRU", _lower_gru)):
    _states = "(output, h_n, c_n)" if _name == "LSTM" else "(output, h_n)"
    register(OpDef(
        _name, RNNAttrs, (Port("x"), *(Port(s, optional=True) for s in _STATES[_name])), _infer_rnn(_name), _lower,
        doc=f"{_name} over x [B, T, input_size] (batch_first, the default) or [T, B, input_size], "
            f"from optional initial states {', '.join(_STATES[_name])} (zeros when not given); "
            f"returns {_states} with output [B, T, hidden_size * directions] and states "
            f"[num_layers * directions, B, hidden_size].",
        init=_rnn_init(_name),
        params=_rnn_params(_name),
        num_outputs=lambda a, _name=_name: OUTPUTS[_name],
        # Inter-layer dropout makes training-mode outputs random; treat as impure.
        pure=False,
        training_only=("dropout",),
        flops=_rnn_flops(_name),
        macs=half(_rnn_flops(_name)),
        samples=(*_RNN_SAMPLES, _RNN_STATE_SAMPLES[_name]),
    ))
