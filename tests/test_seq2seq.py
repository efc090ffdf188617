"""specs/seq2seq.dl (stdlib/seq2seq_layers.dl) and `scan`: the Bahdanau and Luong encoder-decoders
against hand-written PyTorch (nn.GRU/nn.LSTM encoders, cells stepped in a Python loop) with
the generated models' weights copied in: teacher-forced outputs and gradients, greedy and beam
search ids; every -O level; and a small model learning to reverse sequences."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from tests.helpers import ROOT, compile_to_module

SPEC = ROOT / "specs" / "seq2seq.dl"
SRC_VOCAB, TGT_VOCAB, EMBED, HIDDEN, ATTENTION = 11, 13, 6, 8, 5
BAHDANAU = {"source_vocab": SRC_VOCAB, "target_vocab": TGT_VOCAB, "embed": EMBED, "hidden": HIDDEN,
            "attention": ATTENTION}
LUONG = {"source_vocab": SRC_VOCAB, "target_vocab": TGT_VOCAB, "embed": EMBED, "hidden": HIDDEN}
START = 1


class HandWrittenBahdanau(nn.Module):
    """RNNsearch as a user writes it: a bidirectional nn.GRU encoder, additive attention and a
    GRUCell decoder stepped in a loop."""

    def __init__(self):
        super().__init__()
        self.src_embed = nn.Embedding(SRC_VOCAB, EMBED)
        self.tgt_embed = nn.Embedding(TGT_VOCAB, EMBED)
        self.encoder = nn.GRU(EMBED, HIDDEN, batch_first=True, bidirectional=True)
        self.init_state = nn.Linear(HIDDEN, HIDDEN)
        self.W_a = nn.Linear(HIDDEN, ATTENTION, bias=False)
        self.U_a = nn.Linear(2 * HIDDEN, ATTENTION, bias=False)
        self.v_a = nn.Linear(ATTENTION, 1, bias=False)
        self.cell = nn.GRUCell(EMBED + 2 * HIDDEN, HIDDEN)
        self.out = nn.Linear(HIDDEN + EMBED + 2 * HIDDEN, TGT_VOCAB)

    def encode(self, src):
        annotations, final = self.encoder(self.src_embed(src))
        state = torch.tanh(self.init_state(final[1]))          # the backward GRU at the first word
        return (annotations, self.U_a(annotations)), state

    def step(self, previous, state, memory):
        annotations, keys = memory
        energies = self.v_a(torch.tanh(keys + self.W_a(state).unsqueeze(1))).squeeze(2)
        alpha = energies.softmax(dim=1)
        context = torch.bmm(alpha.unsqueeze(1), annotations).squeeze(1)
        y = self.tgt_embed(previous)
        state = self.cell(torch.cat([y, context], dim=-1), state)
        return self.out(torch.cat([state, y, context], dim=-1)), state

    def forward(self, src, tgt):
        memory, state = self.encode(src)
        logits = []
        for t in range(tgt.size(1)):
            scores, state = self.step(tgt[:, t], state, memory)
            logits.append(scores)
        return torch.stack(logits, dim=1)


class HandWrittenLuong(nn.Module):
    """Luong et al.'s global attention with input feeding: an nn.LSTM encoder, an LSTMCell decoder."""

    def __init__(self, score: str):
        super().__init__()
        self.score = score
        self.src_embed = nn.Embedding(SRC_VOCAB, EMBED)
        self.tgt_embed = nn.Embedding(TGT_VOCAB, EMBED)
        self.encoder = nn.LSTM(EMBED, HIDDEN, batch_first=True)
        self.cell = nn.LSTMCell(EMBED + HIDDEN, HIDDEN)
        if score == "general":
            self.W_a = nn.Linear(HIDDEN, HIDDEN, bias=False)
        if score == "concat":
            self.W_query = nn.Linear(HIDDEN, HIDDEN, bias=False)
            self.W_memory = nn.Linear(HIDDEN, HIDDEN, bias=False)
            self.v_a = nn.Linear(HIDDEN, 1, bias=False)
        self.W_c = nn.Linear(2 * HIDDEN, HIDDEN, bias=False)
        self.W_s = nn.Linear(HIDDEN, TGT_VOCAB)

    def encode(self, src):
        memory, (h_n, c_n) = self.encoder(self.src_embed(src))
        return memory, (h_n[0], c_n[0], torch.zeros_like(h_n[0]))

    def energies(self, h, memory):
        if self.score == "dot":
            return torch.bmm(memory, h.unsqueeze(2)).squeeze(2)
        if self.score == "general":
            return torch.bmm(memory, self.W_a(h).unsqueeze(2)).squeeze(2)
        return self.v_a(torch.tanh(self.W_memory(memory) + self.W_query(h).unsqueeze(1))).squeeze(2)

    def step(self, previous, state, memory):
        h, c, feed = state
        h, c = self.cell(torch.cat([self.tgt_embed(previous), feed], dim=-1), (h, c))
        alpha = self.energies(h, memory).softmax(dim=1)
        context = torch.bmm(alpha.unsqueeze(1), memory).squeeze(1)
        feed = torch.tanh(self.W_c(torch.cat([context, h], dim=-1)))
        return self.W_s(feed), (h, c, feed)

    def forward(self, src, tgt):
        memory, state = self.encode(src)
        logits = []
        for t in range(tgt.size(1)):
            scores, state = self.step(tgt[:, t], state, memory)
            logits.append(scores)
        return torch.stack(logits, dim=1)


# The generated models' state_dict keys -> the hand-written ones.
BAHDANAU_KEYS = {"embedding": "src_embed", "source_embedding": "src_embed", "target_embedding": "tgt_embed",
                 "encoder": "encoder", "initial_projection": "init_state", "keys": "U_a",
                 "decoder.context.query_part": "W_a", "decoder.context.energies": "v_a", "decoder.cell": "cell",
                 "decoder.logits": "out"}
LUONG_KEYS = {"source_embedding": "src_embed", "target_embedding": "tgt_embed", "encoder": "encoder",
              "decoder.cell": "cell", "decoder.context.weighted_query": "W_a",
              "decoder.context.query_part": "W_query", "decoder.context.memory_part": "W_memory",
              "decoder.context.energies": "v_a", "decoder.combined": "W_c", "decoder.logits": "W_s"}
MODELS = {"BahdanauSeq2Seq": (BAHDANAU, BAHDANAU_KEYS, HandWrittenBahdanau),
          "LuongSeq2Seq": (LUONG, LUONG_KEYS, lambda: HandWrittenLuong("general")),
          "LuongDotSeq2Seq": (LUONG, LUONG_KEYS, lambda: HandWrittenLuong("dot")),
          "LuongConcatSeq2Seq": (LUONG, LUONG_KEYS, lambda: HandWrittenLuong("concat"))}


@pytest.fixture(scope="module")
def modules(tmp_path_factory):
    folder = tmp_path_factory.mktemp("seq2seq")
    built = {}

    def get(overrides: dict, level: int = 1):
        key = (tuple(sorted(overrides.items())), level)
        if key not in built:
            built[key] = compile_to_module(SPEC, folder, overrides, opt_level=level, name=f"seq2seq_o{level}")
        return built[key]
    return get


def _reference_key(key: str, keys: dict[str, str]) -> str:
    module, _, param = key.rpartition(".")
    return f"{keys[module]}.{param}"


def _pair(modules, name: str, level: int = 1):
    """The generated model and the hand-written one holding the same (random) weights."""
    overrides, keys, make_reference = MODELS[name]
    torch.manual_seed(0)
    ours = getattr(modules(overrides, level), name)()
    reference = make_reference()
    weights = {_reference_key(k, keys): v for k, v in ours.state_dict().items()}
    reference.load_state_dict(weights, strict=True)
    return ours, reference, keys


def _batch(batch: int = 3, source: int = 7, target: int = 5):
    generator = torch.Generator().manual_seed(1)
    return (torch.randint(0, SRC_VOCAB, (batch, source), generator=generator),
            torch.randint(0, TGT_VOCAB, (batch, target), generator=generator))


@pytest.mark.parametrize("name", list(MODELS))
def test_teacher_forcing_matches_hand_written_outputs_and_gradients(modules, name):
    ours, reference, keys = _pair(modules, name)
    src, tgt = _batch()
    logits = ours(src, tgt).logits
    expected = reference(src, tgt)
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-5)
    weights = torch.randn(expected.shape, generator=torch.Generator().manual_seed(2))
    (logits * weights).sum().backward()
    (expected * weights).sum().backward()
    found = dict(reference.named_parameters())
    for key, parameter in ours.named_parameters():
        torch.testing.assert_close(parameter.grad, found[_reference_key(key, keys)].grad, atol=1e-5, rtol=1e-5)


def test_the_loss_is_cross_entropy_of_the_scores(modules):
    ours, reference, _ = _pair(modules, "BahdanauSeq2Seq")
    src, tgt = _batch()
    labels = tgt.roll(-1, dims=1)
    labels[0, -2:] = -100
    out = ours(src, tgt, labels=labels)
    expected = F.cross_entropy(reference(src, tgt).flatten(0, 1), labels.flatten(), ignore_index=-100)
    torch.testing.assert_close(out.loss, expected, atol=1e-6, rtol=1e-5)


@torch.no_grad()
def greedy(reference, src, steps: int) -> torch.Tensor:
    memory, state = reference.encode(src)
    ids = [torch.full((len(src),), START)]
    for _ in range(steps):
        scores, state = reference.step(ids[-1], state, memory)
        ids.append(scores.argmax(-1))
    return torch.stack(ids, dim=1)


@torch.no_grad()
def beam_search(reference, src, steps: int, beams: int) -> torch.Tensor:
    """The textbook beam search, one sentence at a time: keep the `beams` best prefixes by their
    summed log-probabilities; with no end token every hypothesis has the same length."""
    found = []
    for row in src:
        memory, state = reference.encode(row[None])
        hypotheses = [(0.0, [START], state)]
        for _ in range(steps):
            candidates = []
            for score, ids, state in hypotheses:
                scores, after = reference.step(torch.tensor([ids[-1]]), state, memory)
                for token, logp in enumerate(F.log_softmax(scores[0], dim=-1).tolist()):
                    candidates.append((score + logp, ids + [token], after))
            hypotheses = sorted(candidates, key=lambda c: -c[0])[:beams]
        found.append(hypotheses[0][1])
    return torch.tensor(found)


@pytest.mark.parametrize("name", list(MODELS))
def test_greedy_and_beam_search_match_the_hand_written_decoder(modules, name):
    ours, reference, _ = _pair(modules, name)
    ours.eval()
    src, _ = _batch()
    ids = ours.generate(src, max_new_tokens=6, decoder_start_token_id=START)
    assert torch.equal(ids, greedy(reference, src, 6))
    ids = ours.generate(src, max_new_tokens=5, num_beams=3, decoder_start_token_id=START)
    assert torch.equal(ids, beam_search(reference, src, 5, 3))


def test_decoding_carries_the_state_instead_of_rescanning(modules):
    """generate() with the cache steps the decoder once per new token (the state kept between
    calls); without it each token rescans the whole prefix.  Both give the same ids."""
    ours, _, _ = _pair(modules, "LuongSeq2Seq")
    ours.eval()
    calls = []
    ours.decoder.register_forward_hook(lambda *_: calls.append(1))
    src, _ = _batch()
    cached = ours.generate(src, max_new_tokens=6, num_beams=2, decoder_start_token_id=START)
    stepped, calls[:] = len(calls), []
    full = ours.generate(src, max_new_tokens=6, num_beams=2, decoder_start_token_id=START, use_cache=False)
    assert torch.equal(cached, full)
    assert stepped == 6 and len(calls) == sum(range(1, 7))


@pytest.mark.parametrize("name", ["BahdanauSeq2Seq", "LuongConcatSeq2Seq"])
def test_every_optimization_level_computes_the_same_scan(modules, name):
    overrides = MODELS[name][0]
    torch.manual_seed(0)
    base = getattr(modules(overrides, 0), name)()
    src, tgt = _batch()
    expected = base(src, tgt).logits
    for level in (1, 2):
        other = getattr(modules(overrides, level), name)()
        other.load_state_dict(base.state_dict(), strict=True)
        torch.testing.assert_close(other(src, tgt).logits, expected, atol=1e-6, rtol=1e-5)


def test_the_step_module_holds_one_steps_weights(modules):
    """The decoder's state_dict is one step's, whatever the target length: a single-step
    checkpoint loads into it."""
    ours, _, _ = _pair(modules, "BahdanauSeq2Seq")
    decoder_keys = sorted(k for k in ours.state_dict() if k.startswith("decoder."))
    assert decoder_keys == ["decoder.cell.bias_hh", "decoder.cell.bias_ih", "decoder.cell.weight_hh",
                            "decoder.cell.weight_ih", "decoder.context.energies.weight",
                            "decoder.context.query_part.weight", "decoder.logits.bias", "decoder.logits.weight"]
    src, tgt = _batch()
    assert ours(src, tgt[:, :2]).logits.shape == (3, 2, TGT_VOCAB)
    assert ours(src, torch.cat([tgt, tgt], dim=1)).logits.shape == (3, 10, TGT_VOCAB)


def _reversal_batch(generator: torch.Generator, batch: int, length: int, symbols: int):
    """Sequences over the symbols 2.. and their reversals; the decoder starts from 1."""
    src = torch.randint(2, symbols, (batch, length), generator=generator)
    target = src.flip(1)
    tgt = torch.cat([torch.full((batch, 1), START), target[:, :-1]], dim=1)
    return src, tgt, target


@pytest.mark.slow
def test_a_small_bahdanau_model_learns_to_reverse_sequences(modules):
    torch.manual_seed(0)
    symbols, length = 10, 6
    module = modules({"source_vocab": symbols, "target_vocab": symbols, "embed": 16, "hidden": 32,
                      "attention": 32})
    model = module.BahdanauSeq2Seq()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(0)
    for _ in range(250):
        src, tgt, target = _reversal_batch(generator, 64, length, symbols)
        loss = model(src, tgt, labels=target).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    src, _, target = _reversal_batch(generator, 256, length, symbols)
    decoded = model.generate(src, max_new_tokens=length, decoder_start_token_id=START)[:, 1:]
    accuracy = (decoded == target).float().mean().item()
    assert accuracy >= 0.95, accuracy


SCAN_DIRECTIONS = """
block Step(d: int) {
    in x: [B, d]
    in h: [B, d]
    cell = RNNCell(d, d)
    h_next = cell(x, h)
    out y = h_next
    out state = h_next
}

model Forward(d: int = 4) {
    in xs: [B, T, d]
    in h0: [B, d]
    ys, h = scan(axis=1) Step(d)(xs, h0)
    out y = ys
    out last = h
}

model Backward(d: int = 4) {
    in xs: [B, T, d]
    in h0: [B, d]
    ys, h = scan(axis=1, reverse=true) Step(d)(xs, h0)
    out y = ys
    out last = h
}

model TimeFirst(d: int = 4) {
    in xs: [T, B, d]
    in h0: [B, d]
    ys, h = scan(0) Step(d)(xs, h0)
    out y = ys
    out last = h
}
"""


@pytest.mark.parametrize("model, reverse, axis", [("Forward", False, 1), ("Backward", True, 1), ("TimeFirst", False, 0)])
def test_scan_steps_over_its_axis_in_either_direction(tmp_path, model, reverse, axis):
    torch.manual_seed(0)
    ours = getattr(compile_to_module(SCAN_DIRECTIONS, tmp_path, name="scan_directions"), model)()
    cell = nn.RNNCell(4, 4)
    cell.load_state_dict({k.removeprefix("ys.cell."): v for k, v in ours.state_dict().items()})
    xs, h0 = torch.randn(3, 5, 4), torch.randn(3, 4)
    xs = xs.transpose(0, 1).contiguous() if axis == 0 else xs
    outputs, h = {}, h0
    for t in (reversed(range(5)) if reverse else range(5)):
        h = cell(xs.select(axis, t), h)
        outputs[t] = h
    ys, last = ours(xs, h0)
    torch.testing.assert_close(ys, torch.stack([outputs[t] for t in range(5)], dim=axis), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(last, h, atol=1e-6, rtol=1e-5)


@pytest.mark.slow
def test_the_scan_loop_exports(modules):
    """torch.export traces the loop (unrolled at the example's length) to the same function."""
    ours, _, _ = _pair(modules, "BahdanauSeq2Seq")
    ours.eval()
    src, tgt = _batch()
    program = torch.export.export(ours, (src, tgt))
    torch.testing.assert_close(program.module()(src, tgt)[1], ours(src, tgt).logits, atol=1e-6, rtol=1e-5)
