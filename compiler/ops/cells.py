"""Recurrent cells: one time step of an RNN, LSTM or GRU, as torch's nn.RNNCell,
nn.LSTMCell and nn.GRUCell (same gate layouts and parameter names, so a cell's
state_dict is torch's).  A step-by-step decoder (Bahdanau et al. 2015, whose input at
step t depends on the state at t - 1) is built from these."""
from __future__ import annotations

from typing import Literal

from compiler.ops.schema import PositiveInt

from compiler.ir.types import TensorType, dim, dim_str, dims_equal
from compiler.ops.registry import Attrs, OpDef, Port, ShapeError, need, need_dim, need_float, register, sample, tensor, half
from compiler.ops.rnn import state_argument

GATES = {"RNNCell": 1, "LSTMCell": 4, "GRUCell": 3}


class CellAttrs(Attrs):
    input_size: PositiveInt
    hidden_size: PositiveInt
    bias: bool = True


class RNNCellAttrs(CellAttrs):
    nonlinearity: Literal["tanh", "relu"] = "tanh"


def _infer_cell(name: str):
    def infer(a: CellAttrs, ins) -> list[TensorType]:
        x = need(ins[0], 0, f"{name} input")
        need_float(x, 0, f"{name} input")
        if x.rank != 2:
            raise ShapeError(f"{name} input must be one time step [B, input_size], got {x.shape_str()}", 0,
                             hint="a whole sequence [B, T, input_size] goes to LSTM/GRU, or step through it")
        need_dim(x.shape[1], dim(a.input_size), 0, f"the feature dimension of {name}'s input", x)
        state = TensorType((x.shape[0], dim(a.hidden_size)), x.dtype)
        states = list(ins[1:]) + [None] * (len(_STATE_PORTS[name]) + 1 - len(ins))
        if name == "LSTMCell" and (states[0] is None) != (states[1] is None):
            raise ShapeError("LSTMCell takes both states (h and c) or neither", 2 if states[0] is not None else 1)
        for slot, s in enumerate(states, start=1):
            if s is not None and (s.rank != 2 or not all(dims_equal(u, v) for u, v in zip(s.shape, state.shape))):
                raise ShapeError(f"{name}'s state must be [{dim_str(x.shape[0])}, {a.hidden_size}] "
                                 f"([B, hidden_size]), got {s.shape_str()}", slot)
        return [state, state] if name == "LSTMCell" else [state]
    return infer


def _cell_params(name: str):
    def params(a: CellAttrs) -> dict[str, tuple[int, ...]]:
        rows = GATES[name] * a.hidden_size
        shapes = {"weight_ih": (rows, a.input_size), "weight_hh": (rows, a.hidden_size)}
        if a.bias:
            shapes.update(bias_ih=(rows,), bias_hh=(rows,))
        return shapes
    return params


def _cell_init(name: str):
    def init(a: CellAttrs) -> str:
        args = [str(a.input_size), str(a.hidden_size)] + ([] if a.bias else ["bias=False"])
        if isinstance(a, RNNCellAttrs) and a.nonlinearity != "tanh":
            args.append(f"nonlinearity={a.nonlinearity!r}")
        return f"nn.{name}({', '.join(args)})"
    return init


def _lower_cell(name: str):
    def lower(a: CellAttrs, ctx) -> list[str]:
        states = state_argument(ctx, list(ctx.args[1:]))
        return [f"{', '.join(ctx.outs)} = {ctx.module}({ctx.args[0]}{states})"]
    return lower


_STATE_PORTS = {"RNNCell": ("h",), "GRUCell": ("h",), "LSTMCell": ("h", "c")}

def _cell_flops(name: str):
    def flops(a: CellAttrs, ins, outs):
        # The gate matmuls x W_ih^T and h W_hh^T, 2 FLOPs per multiply-add, as torch's flop counter
        # counts them (the gate nonlinearities are not counted).
        return 2 * ins[0].shape[0] * GATES[name] * a.hidden_size * (a.input_size + a.hidden_size)
    return flops


def _cell_samples(name: str) -> tuple:
    states = (tensor(3, 6),) * len(_STATE_PORTS[name])
    extra = {"nonlinearity": "relu"} if name == "RNNCell" else {}
    return (sample(tensor(3, 4), input_size=4, hidden_size=6),
            sample(tensor(3, 4), *states, input_size=4, hidden_size=6, bias=False, **extra))


for _name in GATES:
    register(OpDef(
        _name, RNNCellAttrs if _name == "RNNCell" else CellAttrs,
        (Port("x"), *(Port(p, optional=True) for p in _STATE_PORTS[_name])),
        _infer_cell(_name), _lower_cell(_name),
        doc=f"One step of torch's nn.{_name}: x [B, input_size] and the previous state "
            f"{' and '.join(_STATE_PORTS[_name])} [B, hidden_size] (zeros when not given) give the next "
            f"{'(h, c)' if _name == 'LSTMCell' else 'h'}.",
        init=_cell_init(_name),
        params=_cell_params(_name),
        num_outputs=lambda a, _name=_name: 2 if _name == "LSTMCell" else 1,
        flops=_cell_flops(_name),
        macs=half(_cell_flops(_name)),
        samples=_cell_samples(_name),
    ))
