"""Autoregressive decoding for generated language models: greedy search, beam search
and sampling, with HuggingFace `generate`'s argument names and results.

This file is runtime code: generated modules carry it (the compiler copies its source
text, never imports it), so it imports torch and nothing of dlc, and annotations that
the generated module cannot evaluate are strings.  A model takes part
through one function, `step(sequences) -> logits [N, vocab]` for the position after
the last one of each of the N sequences; beam search asks it to follow the surviving
beams with `reorder(indices)` when it keeps a cache.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import torch
from torch.nn import functional as F

NEVER = -1.0e9   # the score of a slot that holds no hypothesis


@dataclass(frozen=True)
class Search:
    """One call's settings, as HF names them."""

    max_new_tokens: int = 20
    do_sample: bool = False
    num_beams: int = 1
    temperature: float = 1.0
    top_k: int = 50
    top_p: float = 1.0
    eos_token_id: int | list[int] | None = None
    pad_token_id: int | None = None
    length_penalty: float = 1.0
    early_stopping: bool = False

    def eos_ids(self, device: torch.device) -> torch.Tensor:
        ids = [] if self.eos_token_id is None else self.eos_token_id
        return torch.tensor(ids if isinstance(ids, list) else [ids], dtype=torch.long, device=device)

    def first_eos(self) -> int | None:
        eos = self.eos_token_id
        return eos[0] if isinstance(eos, list) else eos

    def fill_id(self) -> int:
        """What follows a finished sequence in greedy search and sampling: the pad token,
        else the (first) end token, as HF does."""
        if self.pad_token_id is not None:
            return self.pad_token_id
        eos = self.first_eos()
        return eos if eos is not None else -1

    def beam_fill_id(self) -> int:
        """What pads a shorter beam hypothesis.  HF's beam search uses a non-zero pad token,
        else the end token, and -1 without an end token; kept so the ids match HF's."""
        eos = self.first_eos()
        if eos is None:
            return -1
        return self.pad_token_id if self.pad_token_id else eos


@torch.no_grad()
def generate(step: "Callable[[torch.Tensor], torch.Tensor]", input_ids: torch.Tensor, search: Search,
             generator: "torch.Generator | None" = None,
             reorder: "Callable[[torch.Tensor], None] | None" = None) -> torch.Tensor:
    """The prompts [B, L] followed by up to `max_new_tokens` new ids each, padded to one length."""
    if search.num_beams > 1:
        if search.do_sample:
            raise ValueError("beam sampling is not supported: use num_beams=1 with do_sample=True, or do_sample=False")
        return beam_search(step, input_ids, search, reorder)
    return sample_or_greedy(step, input_ids, search, generator)


def sample_or_greedy(step: "Callable[[torch.Tensor], torch.Tensor]", input_ids: torch.Tensor, search: Search,
                     generator: "torch.Generator | None" = None) -> torch.Tensor:
    eos = search.eos_ids(input_ids.device)
    sequences = input_ids
    running = torch.ones(len(input_ids), dtype=torch.bool, device=input_ids.device)
    for _ in range(search.max_new_tokens):
        scores = step(sequences).float()
        if search.do_sample:
            probabilities = F.softmax(warp(scores, search), dim=-1)
            next_ids = torch.multinomial(probabilities, 1, generator=generator).squeeze(1)
        else:
            next_ids = scores.argmax(-1)
        next_ids = torch.where(running, next_ids, torch.full_like(next_ids, search.fill_id()))
        sequences = torch.cat([sequences, next_ids[:, None]], dim=1)
        running &= ~torch.isin(next_ids, eos)
        if not running.any():
            break
    return sequences


def warp(scores: torch.Tensor, search: Search) -> torch.Tensor:
    """Temperature, then top-k, then nucleus (top-p) filtering, in HF's order."""
    scores = scores / search.temperature if search.temperature != 1.0 else scores
    if 0 < search.top_k < scores.shape[-1]:
        kth = scores.topk(search.top_k, dim=-1).values[..., -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if search.top_p < 1.0:
        ordered, order = scores.sort(dim=-1)            # ascending: the tail to drop comes first
        tail = ordered.softmax(-1).cumsum(-1) <= 1 - search.top_p
        tail[..., -1] = False                           # always keep the most likely token
        scores = scores.masked_fill(tail.scatter(-1, order, tail), float("-inf"))
    return scores


@dataclass
class Beams:
    """Beam search state for B prompts of num_beams beams each (N = B * num_beams rows)."""

    running: torch.Tensor        # [B, beams, L] sequences still being extended
    running_scores: torch.Tensor  # [B, beams] their summed log-probabilities
    finished: torch.Tensor       # [B, beams, max_len] the best finished hypotheses
    finished_scores: torch.Tensor  # [B, beams] their length-normalized scores (NEVER: empty slot)
    finished_lengths: torch.Tensor  # [B, beams] how many new tokens each holds
    open: torch.Tensor           # [B] whether a running beam may still beat a finished one


def beam_search(step: "Callable[[torch.Tensor], torch.Tensor]", input_ids: torch.Tensor, search: Search,
                reorder: "Callable[[torch.Tensor], None] | None" = None) -> torch.Tensor:
    """Beam search with HF's rules: 2 * num_beams candidates per step, hypotheses that end
    (an end token, or the length limit) scored by sum_logprobs / new_tokens ** length_penalty,
    and HF's default stopping heuristic (`early_stopping=False`)."""
    batch, prompt = input_ids.shape
    beams, device = search.num_beams, input_ids.device
    max_len = prompt + search.max_new_tokens
    state = _initial_beams(input_ids, beams, max_len, search.beam_fill_id())
    eos = search.eos_ids(device)
    keep = max(2, 1 + len(eos)) * beams
    for length in range(prompt, max_len):
        log_probs = F.log_softmax(step(state.running.flatten(0, 1)).float(), dim=-1)
        vocab = log_probs.shape[-1]
        totals = (state.running_scores[..., None] + log_probs.view(batch, beams, vocab)).view(batch, -1)
        scores, flat = totals.topk(keep, dim=-1)
        parents, tokens = flat // vocab, flat % vocab
        candidates = torch.cat([_gather(state.running, parents), tokens[..., None]], dim=-1)
        ends = torch.isin(tokens, eos) | (length + 1 >= max_len)
        _keep_finished(state, candidates, scores, ends, length + 1 - prompt, search)
        alive = (scores + ends.float() * NEVER).topk(beams, dim=-1)
        state.running = _gather(candidates, alive.indices)
        state.running_scores = alive.values
        if reorder is not None:
            offsets = torch.arange(batch, device=device)[:, None] * beams
            reorder((_gather(parents, alive.indices) + offsets).flatten())
        state.open &= _may_improve(state, length + 1 - prompt, search)
        if not state.open.any() or bool(ends.all()):
            break
    return _best(state, prompt)


def _initial_beams(input_ids: torch.Tensor, beams: int, max_len: int, fill: int) -> Beams:
    batch, prompt = input_ids.shape
    running = input_ids[:, None, :].expand(batch, beams, prompt).clone()
    running_scores = torch.zeros(batch, beams, device=input_ids.device)
    running_scores[:, 1:] = NEVER            # identical beams at first: only one may spread
    finished = torch.full((batch, beams, max_len), fill, dtype=torch.long, device=input_ids.device)
    empty = torch.full((batch, beams), NEVER, device=input_ids.device)
    lengths = torch.zeros(batch, beams, dtype=torch.long, device=input_ids.device)
    return Beams(running, running_scores, finished, empty, lengths,
                 torch.ones(batch, dtype=torch.bool, device=input_ids.device))


def _gather(tensor: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """tensor[b, index[b, k], ...] for every b, k."""
    shape = (*index.shape, *tensor.shape[2:])
    return tensor.gather(1, index.view(*index.shape, *[1] * (tensor.dim() - 2)).expand(shape))


def _keep_finished(state: Beams, candidates, scores, ends, new_tokens: int, search: Search) -> None:
    """Candidates among the best num_beams that end join the finished set, which keeps its best num_beams."""
    beams = state.finished.shape[1]
    top = torch.zeros_like(ends)
    top[:, :beams] = True
    accepted = ends & top & state.open[:, None]
    if search.early_stopping:
        accepted &= ~(state.finished_scores > NEVER).all(-1, keepdim=True)
    normalized = torch.where(accepted, scores / new_tokens ** search.length_penalty, torch.full_like(scores, NEVER))
    padded = F.pad(candidates, (0, state.finished.shape[-1] - candidates.shape[-1]), value=search.beam_fill_id())
    merged = torch.cat([state.finished_scores, normalized], dim=1)
    best = merged.topk(beams, dim=-1).indices
    state.finished = _gather(torch.cat([state.finished, padded], dim=1), best)
    lengths = torch.full_like(normalized, new_tokens, dtype=torch.long)
    state.finished_lengths = _gather(torch.cat([state.finished_lengths, lengths], dim=1), best)
    state.finished_scores = _gather(merged, best)


def _may_improve(state: Beams, new_tokens: int, search: Search) -> torch.Tensor:
    """HF's heuristic: the best running beam, scored at the current length, beats the worst
    finished hypothesis (or some slot is still empty)."""
    best_running = state.running_scores[:, 0] / new_tokens ** search.length_penalty
    full = (state.finished_scores > NEVER).all(-1)
    worst = torch.where(full, state.finished_scores.min(-1).values, torch.full_like(best_running, NEVER))
    return best_running > worst


def _best(state: Beams, prompt: int) -> torch.Tensor:
    """The best finished hypothesis of each prompt, cut to the longest one kept."""
    length = prompt + int(state.finished_lengths[:, 0].max())
    return state.finished[:, 0, :length]
