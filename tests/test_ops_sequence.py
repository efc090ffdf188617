"""The ops recurrence and decoding need: recurrent cells and initial/final states
against torch's own modules, the indexing ops (Argmax, TopK, SelectAt, Gather, Where,
Cast, Compare) and the losses, compiled from small specs and run; and their shape
errors, reported before anything runs."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from compiler.driver import check
from tests.helpers import compile_to_module


def spec_errors(tmp_path, text: str) -> list[str]:
    path = tmp_path / "spec.dl"
    path.write_text(text)
    return [f"{d.code} {d.message}" for d in check(path).diagnostics if d.is_error]


# ------------------------------------------------------------------ cells and states
CELLS = """
model Cells(d: int = 6, h: int = 5) {
    in x: [B, d]
    in h0: [B, h]
    in c0: [B, h]
    lstm = LSTMCell(d, h)
    h1, c1 = lstm(x, h0, c0)
    out lstm_h = h1
    out lstm_c = c1
    out gru_h = GRUCell(d, h)(x, h0)
    out rnn_h = RNNCell(d, h, nonlinearity="relu")(x)
}
"""


def test_cells_match_torch_cells_with_the_same_state_dict(tmp_path):
    torch.manual_seed(0)
    ours = compile_to_module(CELLS, tmp_path, name="cells").Cells()
    lstm, gru, rnn = nn.LSTMCell(6, 5), nn.GRUCell(6, 5), nn.RNNCell(6, 5, nonlinearity="relu")
    names = dict(ours.named_children())
    for reference, kind in ((lstm, "LSTMCell"), (gru, "GRUCell"), (rnn, "RNNCell")):
        child = next(m for m in names.values() if type(m).__name__ == kind)
        child.load_state_dict(reference.state_dict(), strict=True)
    x, h0, c0 = torch.randn(3, 6), torch.randn(3, 5), torch.randn(3, 5)
    lstm_h, lstm_c, gru_h, rnn_h = ours(x, h0, c0)
    expected_h, expected_c = lstm(x, (h0, c0))
    torch.testing.assert_close(lstm_h, expected_h)
    torch.testing.assert_close(lstm_c, expected_c)
    torch.testing.assert_close(gru_h, gru(x, h0))
    torch.testing.assert_close(rnn_h, rnn(x))


STATES = """
model Seq(d: int = 4, h: int = 3) {
    in x: [B, T, d]
    in h0: [2, B, h] optional
    in c0: [2, B, h] optional
    lstm = LSTM(d, h, num_layers=2)
    output, h_n, c_n = lstm(x, h0, c0)
    out y = output
    out state = h_n
    gru = GRU(d, h, bidirectional=true)
    g, g_n = gru(x, h0)
    out z = g
    out z_n = g_n
}
"""


def test_lstm_and_gru_take_initial_states_and_return_final_ones(tmp_path):
    torch.manual_seed(0)
    ours = compile_to_module(STATES, tmp_path, name="states").Seq()
    lstm = nn.LSTM(4, 3, num_layers=2, batch_first=True)
    gru = nn.GRU(4, 3, batch_first=True, bidirectional=True)
    ours.lstm.load_state_dict(lstm.state_dict())
    ours.gru.load_state_dict(gru.state_dict())
    x, h0, c0 = torch.randn(2, 7, 4), torch.randn(2, 2, 3), torch.randn(2, 2, 3)
    y, state, z, z_n = ours(x, h0, c0)
    expected, (h_n, _) = lstm(x, (h0, c0))
    torch.testing.assert_close(y, expected)
    torch.testing.assert_close(state, h_n)
    expected_z, expected_z_n = gru(x, h0)
    torch.testing.assert_close(z, expected_z)
    torch.testing.assert_close(z_n, expected_z_n)
    # without the optional states: zeros, as torch
    y0 = ours(x)[0]
    torch.testing.assert_close(y0, lstm(x)[0])


def test_a_state_of_the_wrong_shape_is_reported_at_the_call(tmp_path):
    errors = spec_errors(tmp_path, "model M() {\n    in x: [B, T, 4]\n    in h0: [1, B, 5]\n"
                                   "    y, h = GRU(4, 3)(x, h0)\n    out o = y\n}\n")
    assert any("initial state must be [1, B, 3]" in e for e in errors), errors
    errors = spec_errors(tmp_path, "model M() {\n    in x: [B, 4]\n    in h: [B, 3]\n"
                                   "    y, c = LSTMCell(4, 3)(x, h)\n    out o = y\n}\n")
    assert any("both states" in e for e in errors), errors


# ------------------------------------------------------------------ indexing and decoding
DECODE = """
model Decode(V: int = 11) {
    in scores: [B, T, V]
    in ids: [B, T] int64
    in position: [B] int64
    out next_ids = Argmax()(scores)
    best, best_ids = TopK(3)(scores)
    out top_values = best
    out top_ids = best_ids
    out at_position = SelectAt(1)(scores, position)
    _values, top2 = TopK(2)(scores)
    out gathered = Gather(2)(scores, top2)
    is_pad = Compare("eq", 0)(ids)
    out masked = Where()(is_pad, Cast("float")(ids), Cast("float")(next_ids))
    out as_bool = Cast("bool")(ids)
}
"""


def test_decoding_ops_match_torch(tmp_path):
    torch.manual_seed(0)
    model = compile_to_module(DECODE, tmp_path, name="decode").Decode()
    scores, ids = torch.randn(2, 5, 11), torch.randint(0, 3, (2, 5))
    position = torch.tensor([4, 1])
    next_ids, top_values, top_ids, at_position, gathered, masked, as_bool = model(scores, ids, position)
    assert next_ids.dtype == torch.int64 and torch.equal(next_ids, scores.argmax(-1))
    values, indices = scores.topk(3, dim=-1)
    assert torch.equal(top_values, values) and torch.equal(top_ids, indices)
    assert torch.equal(at_position, torch.stack([scores[0, 4], scores[1, 1]]))
    assert torch.equal(gathered, scores.topk(2, dim=-1).values)
    expected = torch.where(ids == 0, ids.float(), scores.argmax(-1).float())
    assert torch.equal(masked, expected)
    assert torch.equal(as_bool, ids.bool())


@pytest.mark.parametrize("body, message", [
    ("out y = SelectAt(1)(x, Argmax()(x))", "SelectAt index must be [B]"),
    ("out y = SelectAt(0)(x, ids)", "dim 0 is the batch"),
    ("v, i = TopK(9)(x)\n    out y = v", "larger than dim -1 of size 5"),
    ("out y = Where()(x, x, x)", "condition must be bool"),
    ("out y = Gather(1)(x, ids)", "index must have the input's rank"),
    ("out y = CrossEntropy()(x, ids)", "labels must be the logits' shape without the class dimension"),
])
def test_indexing_misuse_is_a_diagnostic(tmp_path, body, message):
    text = f"model M() {{\n    in x: [B, T, 5]\n    in ids: [B] int64\n    {body}\n}}\n"
    errors = spec_errors(tmp_path, text)
    assert any(message in e for e in errors), errors


# ------------------------------------------------------------------ losses
LOSS = """
model Head(d: int = 6, classes: int = 4) {
    in x: [B, T, d]
    in labels: [B, T] int64 optional
    scores = Linear(d, classes)(x)
    out loss = CrossEntropy()(scores, labels)
    out shifted = CrossEntropy(shift=true, ignore_index=-1)(scores, labels)
}
"""


def test_cross_entropy_follows_hf_conventions(tmp_path):
    torch.manual_seed(0)
    model = compile_to_module(LOSS, tmp_path, name="loss").Head()
    x, labels = torch.randn(2, 5, 6), torch.randint(0, 4, (2, 5))
    labels[0, 0] = -100
    loss, shifted = model(x, labels)
    scores = model.linear(x) if hasattr(model, "linear") else next(model.children())(x)
    torch.testing.assert_close(loss, F.cross_entropy(scores.reshape(-1, 4), labels.reshape(-1)))
    torch.testing.assert_close(shifted, F.cross_entropy(scores[:, :-1].reshape(-1, 4), labels[:, 1:].reshape(-1),
                                                        ignore_index=-1))
    assert model(x) == (None, None)
