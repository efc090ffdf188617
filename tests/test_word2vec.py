"""word2vec (specs/word2vec.dl): skip-gram and CBOW with negative sampling against a
hand-written PyTorch reference with copied weights, and a few training steps on a tiny
synthetic corpus whose loss falls."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests.helpers import ROOT, compile_to_module

SPEC = ROOT / "specs" / "word2vec.dl"
VOCAB, D = 40, 16


@pytest.fixture(scope="module")
def word2vec(tmp_path_factory):
    return compile_to_module(SPEC, tmp_path_factory.mktemp("w2v"), {"vocab": VOCAB, "d": D}, name="word2vec")


def reference_sgns_loss(center_vectors, context_vectors, negative_vectors):
    """Mikolov et al. 2013, eq. 4, averaged over the batch: written out term by term."""
    total = []
    for c, o, noise in zip(center_vectors, context_vectors, negative_vectors):
        term = torch.log(torch.sigmoid(torch.dot(o, c)))
        for n in noise:
            term = term + torch.log(torch.sigmoid(-torch.dot(n, c)))
        total.append(-term)
    return torch.stack(total).mean()


def _ids():
    g = torch.Generator().manual_seed(3)
    return (torch.randint(0, VOCAB, (6,), generator=g), torch.randint(0, VOCAB, (6,), generator=g),
            torch.randint(0, VOCAB, (6, 5), generator=g), torch.randint(0, VOCAB, (6, 4), generator=g))


def test_skip_gram_loss_matches_the_paper(word2vec):
    torch.manual_seed(0)
    model = word2vec.SkipGram()
    center, context, negatives, _ = _ids()
    inputs, outputs = model.center_embeddings.weight, model.context_embeddings.weight
    expected = reference_sgns_loss(inputs[center], outputs[context], outputs[negatives])
    torch.testing.assert_close(model(center, context, negatives), expected, atol=1e-6, rtol=1e-5)


def test_cbow_loss_averages_the_context(word2vec):
    torch.manual_seed(0)
    model = word2vec.CBOW()
    center, _, negatives, window = _ids()
    inputs, outputs = model.context_embeddings.weight, model.center_embeddings.weight
    expected = reference_sgns_loss(inputs[window].mean(1), outputs[center], outputs[negatives])
    torch.testing.assert_close(model(window, center, negatives), expected, atol=1e-6, rtol=1e-5)


def _corpus_pairs(g: torch.Generator):
    """A corpus where word w is always followed by (w + 1) % VOCAB: skip-gram pairs at distance 1."""
    centers = torch.randint(0, VOCAB, (64,), generator=g)
    return centers, (centers + 1) % VOCAB, torch.randint(0, VOCAB, (64, 5), generator=g)


def test_skip_gram_trains_on_a_tiny_corpus(word2vec):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    model = word2vec.SkipGram()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(30):
        loss = model(*_corpus_pairs(g))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    # the learned vectors: a word's successor scores higher than a random word
    words = torch.arange(VOCAB)
    scores = model.center_embeddings(words) @ model.context_embeddings.weight.T
    successor = scores[words, (words + 1) % VOCAB]
    assert (successor > scores.median(dim=1).values).float().mean() > 0.9


def test_gradients_match_the_reference(word2vec):
    torch.manual_seed(0)
    model = word2vec.SkipGram()
    center, context, negatives, _ = _ids()
    model(center, context, negatives).backward()
    ours = model.center_embeddings.weight.grad.clone()
    weights = model.center_embeddings.weight.detach().clone().requires_grad_()
    outputs = model.context_embeddings.weight.detach()
    reference_sgns_loss(weights[center], outputs[context], outputs[negatives]).backward()
    torch.testing.assert_close(ours, weights.grad, atol=1e-6, rtol=1e-5)
    assert F.cosine_similarity(ours.flatten(), weights.grad.flatten(), dim=0) > 0.999
