"""specs/tagger.dl and stdlib/recurrent.dl: LSTM/GRU stacks against hand-written torch."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.helpers import ROOT, compile_to_module

SPEC = ROOT / "specs" / "tagger.dl"
SMALL = {"vocab": 50, "embed_dim": 8, "hidden": 12, "layers": 2, "tags": 5, "dropout": 0.0}


class HandWrittenTagger(nn.Module):
    def __init__(self, cell: type[nn.Module]):
        super().__init__()
        self.embedding = nn.Embedding(50, 8)
        self.rnn = cell(8, 12, num_layers=2, batch_first=True, bidirectional=True)
        self.scores = nn.Linear(24, 5)

    def forward(self, tokens):
        steps, _ = self.rnn(self.embedding(tokens))
        return self.scores(steps)


@pytest.mark.parametrize("cell, torch_cell", [("lstm", nn.LSTM), ("gru", nn.GRU)])
def test_tagger_matches_hand_written_torch(tmp_path, cell, torch_cell):
    torch.manual_seed(0)
    ours = compile_to_module(SPEC, tmp_path, {**SMALL, "cell": cell}, name=f"tagger_{cell}").Tagger().eval()
    reference = HandWrittenTagger(torch_cell).eval()
    renamed = {k.replace("rnn.", "encoder.steps."): v for k, v in reference.state_dict().items()}
    ours.load_state_dict(renamed, strict=True)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in reference.parameters())
    tokens = torch.randint(0, 50, (3, 7))
    torch.testing.assert_close(ours(tokens), reference(tokens), atol=1e-6, rtol=1e-5)


def test_default_tagger_builds_and_trains(tmp_path):
    torch.manual_seed(0)
    model = compile_to_module(SPEC, tmp_path, SMALL, name="tagger_train").Tagger()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-2)
    tokens, tags = torch.randint(0, 50, (8, 10)), torch.randint(0, 5, (8, 10))
    losses = []
    for _ in range(30):
        loss = nn.functional.cross_entropy(model(tokens).reshape(-1, 5), tags.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_unnamed_layers_never_share_a_module(tmp_path):
    """Two unnamed layers of one kind get their own submodules (and weights)."""
    spec = """model M(d: int = 4) {
        in x: [B, d]
        out y = Linear(d, d)(x) + Linear(d, d)(x)
    }"""
    model = compile_to_module(spec, tmp_path, name="unnamed").M()
    assert sum(p.numel() for p in model.parameters()) == 2 * (4 * 4 + 4)
