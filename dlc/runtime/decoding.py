"""Incremental decoding for generated models: the key/value cache that causal attention
layers append to, and `generate()` as a method of the models that have a decoder step.

Runtime code, copied into generated modules as text (never imported by them): it imports
torch and nothing of dlc, and its annotations are strings, since generated modules do
not import `typing`.  The search itself (greedy, beam, sampling) is generation.py's.
"""
from __future__ import annotations

import typing

import torch
from torch import nn

from dlc.runtime.generation import Search, generate


class KVCache:
    """The keys and values of every position a decoder has seen, per causal attention layer:
    pass one cache as `past_key_values` to each forward, give each call only the new tokens,
    and the layers attend over the cached positions and append the new ones (the cache is
    updated in place, as HF's DynamicCache).  Positions (learned, sinusoidal, rotary, T5's
    relative bias) continue from the cached length.  An encoder-decoder's source side (the
    encoder output, the cross-attention keys and values) is computed at the first call and kept
    (`computed_once`): give every call with one cache the same source."""

    def __init__(self) -> None:
        # (attention module, its output's name) -> (keys, values), each [N, kv_heads, T, head_dim]
        self.layers: dict = {}
        # a `scan`'s step module -> the states it carries after the positions seen, each [N, ...]
        self.states: dict = {}
        # (module, the name of its result) -> what it computed at the first call (computed_once)
        self.computed: dict = {}
        # [N, T] each row's positions, for left-padded prompts (generate() with an attention_mask)
        self.position_ids: torch.Tensor | None = None

    def update(self, layer: nn.Module, name: str, keys: torch.Tensor, values: torch.Tensor) -> tuple:
        """Append one layer's new keys and values [N, heads, T_new, head_dim]; all of them, cached first."""
        cached = self.layers.get((layer, name))
        if cached is not None:
            keys = torch.cat([cached[0], keys], dim=-2)
            values = torch.cat([cached[1], values], dim=-2)
        self.layers[(layer, name)] = (keys, values)
        return keys, values

    def get_seq_length(self, layer: nn.Module | None = None) -> int:
        """The positions cached: by `layer`'s own attention (0 before its first step), for
        positions read inside a layer, after the layers below it have appended this step's
        keys; without a layer, by the first layer (positions read at the bottom of a stack,
        before any layer appends)."""
        if layer is not None:
            return next((keys.shape[-2] for (owner, _), (keys, _) in self.layers.items() if owner is layer), 0)
        return next(iter(self.layers.values()))[0].shape[-2] if self.layers else 0

    def carried(self, step: nn.Module, *initial: torch.Tensor) -> "torch.Tensor | tuple":
        """A recurrent decoder's states before this call's positions: those kept by the last
        call, else `initial` (one tensor for one state)."""
        states = self.states.get(step, initial)
        return states if len(states) > 1 else states[0]

    def keep(self, step: nn.Module, *states: torch.Tensor) -> None:
        """The states after this call's positions, for the next call."""
        self.states[step] = states

    def reorder_cache(self, rows: torch.Tensor) -> None:
        """Keep the cached rows `rows` [N] (the surviving beams' parents, in beam search)."""
        for key, (keys, values) in self.layers.items():
            self.layers[key] = (keys.index_select(0, rows), values.index_select(0, rows))
        for step, states in self.states.items():
            self.states[step] = tuple(state.index_select(0, rows) for state in states)
        for key, value in self.computed.items():
            self.computed[key] = _select_rows(value, rows)
        if self.position_ids is not None:
            self.position_ids = self.position_ids.index_select(0, rows)


def _select_rows(value, rows: torch.Tensor):
    """The rows `rows` of a tensor, or of each tensor of a tuple of results."""
    if isinstance(value, torch.Tensor):
        return value.index_select(0, rows)
    if isinstance(value, tuple):
        return type(value)(*(_select_rows(v, rows) for v in value)) if hasattr(value, "_fields") \
            else tuple(_select_rows(v, rows) for v in value)
    return value


def computed_once(cache: "KVCache | None", name: str, module: nn.Module, *args):
    """`module(*args)`, at the first forward with `cache`, and that same result at every later one.
    Generated forwards call a layer or block this way where it reads no input along the decoded
    axis (an encoder over the source ids, a cross-attention's key and value projections of the
    encoder output): its result is the same at every decoding step, so generate() computes it
    once, as HF's generate runs the encoder once and caches the cross-attention keys and values."""
    if cache is None:
        return module(*args)
    key = (module, name)
    if key not in cache.computed:
        cache.computed[key] = module(*args)
    return cache.computed[key]


def past_length(cache: "KVCache | None", layer: "nn.Module | None") -> int:
    """The first position of this forward's tokens: 0 without a cache."""
    return 0 if cache is None else cache.get_seq_length(layer)


def decoded_positions(cache: "KVCache | None", layer: "nn.Module | None", x: torch.Tensor) -> torch.Tensor:
    """The positions of the tokens along x's time axis (dimension 1): [T], after those `cache`
    holds; or [N, T], each row's own, where the cache has position_ids (generate() of a
    left-padded batch sets them from its attention_mask, as HF does)."""
    start, length = past_length(cache, layer), x.shape[1]
    if cache is not None and cache.position_ids is not None:
        return cache.position_ids[:, start:start + length]
    return torch.arange(start, start + length, device=x.device)


class DecoderStep:
    """`step(sequences) -> logits [N, vocab]` of the position after each sequence, through the
    model's forward; with a cache it feeds only the tokens the cache has not seen.  The N rows
    are the B prompts' rows, each prompt's num_beams rows in a run (beam search)."""

    def __init__(self, model: nn.Module, source: "torch.Tensor | None", use_cache: bool,
                 mask: "torch.Tensor | None" = None) -> None:
        self.model, self.source, self.mask = model, source, mask
        self.use_cache = use_cache
        self.cache = KVCache() if use_cache else None
        self.fed = 0          # tokens of each sequence the cache holds

    def __call__(self, sequences: torch.Tensor) -> torch.Tensor:
        decoding = self.model.DECODING
        cache = self.cache
        inputs = {decoding["tokens"]: sequences[:, self.fed:] if cache is not None else sequences}
        if self.source is not None:
            inputs[decoding["source"]] = _per_row(self.source, len(sequences))
            if self.mask is not None:
                inputs[decoding["mask"]] = _per_row(self.mask, len(sequences))
        elif self.mask is not None:
            # A decoder's prompt mask, and every new token real (HF extends it by ones); the
            # positions count the real tokens, so a left-padded prompt starts at 0 as a bare one.
            prompt = _per_row(self.mask, len(sequences))
            mask = torch.cat([prompt, prompt.new_ones(len(sequences), sequences.shape[1] - prompt.shape[1])], 1)
            inputs[decoding["mask"]] = mask
            cache = cache if cache is not None else KVCache()     # without caching: for the positions only
            cache.position_ids = (mask.long().cumsum(-1) - 1).masked_fill_(mask == 0, 1)
        if cache is not None:
            inputs["past_key_values"] = cache
            self.fed = sequences.shape[1] if self.cache is not None else 0
        if decoding.get("keeps_logits"):
            inputs["logits_to_keep"] = 1       # the next token's scores only, as HF's generate asks
        out = self.model(**inputs)
        logits = out[decoding["logits"]] if isinstance(out, tuple) else out
        return logits[:, -1]

    def reorder(self, rows: torch.Tensor) -> None:
        if self.cache is not None:
            self.cache.reorder_cache(rows)


def _per_row(tensor: torch.Tensor, rows: int) -> torch.Tensor:
    """A prompt's tensor repeated for each of its rows (its beams): rows of one prompt stay
    together, and a beam never moves to another prompt's rows, so these need no reordering."""
    return tensor if rows == len(tensor) else tensor.repeat_interleave(rows // len(tensor), 0)


class GenerationMixin:
    """`generate()` for a model with a decoder step: autoregressive decoding with HF's
    argument names, through the key/value cache.  DECODING (set by the compiler) names the
    input that takes the decoded tokens, the source input of an encoder-decoder, the mask of
    generate()'s input_ids, and the output that holds the logits."""

    DECODING: typing.ClassVar[dict] = {}

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, max_new_tokens: int = 20, do_sample: bool = False,
                 num_beams: int = 1, temperature: float = 1.0, top_k: int = 50, top_p: float = 1.0,
                 eos_token_id: "int | list[int] | None" = None, pad_token_id: "int | None" = None,
                 length_penalty: float = 1.0, early_stopping: bool = False, decoder_start_token_id: int = 0,
                 generator: "torch.Generator | None" = None, use_cache: bool = True,
                 attention_mask: "torch.Tensor | None" = None) -> torch.Tensor:
        """Decode up to `max_new_tokens` ids after each row of `input_ids` [B, L] (the prompt; the
        source of an encoder-decoder, whose decoding starts at `decoder_start_token_id`): greedy,
        beam search (`num_beams`, `length_penalty`, `early_stopping`) or sampling (`do_sample`,
        `temperature`, `top_k`, `top_p`, `generator`), ending a row at `eos_token_id`.  Returns the
        prompt followed by the new ids (the decoder's ids for an encoder-decoder), rows that end
        early filled with `pad_token_id` (else the end token), as HF's `generate` returns them.
        `attention_mask` [B, L] (1 at real tokens, 0 at padding) masks the padding of input_ids: a
        batch of prompts of different lengths is padded on the left, as HF's convention for
        decoder-only models; each row's positions count its real tokens."""
        search = Search(max_new_tokens, do_sample, num_beams, temperature, top_k, top_p, eos_token_id,
                        pad_token_id, length_penalty, early_stopping)
        source = input_ids if self.DECODING.get("source") else None
        if attention_mask is not None and self.DECODING.get("mask") is None:
            raise ValueError(f"{type(self).__name__} takes no mask of its input_ids: generate() without attention_mask")
        mask = None if attention_mask is None else attention_mask.bool()
        start = input_ids if source is None else torch.full(
            (len(input_ids), 1), decoder_start_token_id, dtype=torch.long, device=input_ids.device)
        step = DecoderStep(self, source, use_cache, mask)
        return generate(step, start, search, generator, step.reorder)
