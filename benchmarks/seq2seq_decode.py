"""Greedy decoding speed of the generated recurrent seq2seq (specs/seq2seq.dl's BahdanauSeq2Seq):
`generate()` with its carried state (one scan step per token), `generate(use_cache=False)` (the
whole prefix rescanned per token), and a hand-written loop on the same modules that encodes the
source once and steps the decoder (what a user writes by hand), in one process, alternating.

    nice .venv/bin/python -m benchmarks.seq2seq_decode
    nice .venv/bin/python -m benchmarks.seq2seq_decode --hidden 1000 --vocab 30000 --embed 620

Random weights; no end token, so every arm makes exactly `--new-tokens` ids per row and the ids
must agree.  Figures: median tokens/s per arm and each arm's ratio to the hand-written loop.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.machine import describe  # noqa: E402

START = 1


def _hand_written_greedy(model, src, new_tokens: int):
    """Encode once, then step the decoder module: the loop `generate()` stands in for."""
    import torch
    annotations, final = model.encoder(model.source_embedding(src))
    state = torch.tanh(model.initial_projection(final.select(0, 1)))
    keys = model.keys(annotations)
    ids = [torch.full((len(src),), START, dtype=torch.long, device=src.device)]
    for _ in range(new_tokens):
        scores, state = model.decoder(model.target_embedding(ids[-1]), state, annotations, keys)
        ids.append(scores.argmax(-1))
    return torch.stack(ids, dim=1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab", type=int, default=8000)
    parser.add_argument("--embed", type=int, default=256)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--source", type=int, default=20)
    parser.add_argument("--new-tokens", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    import torch
    from generated import seq2seq
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = seq2seq.BahdanauSeq2Seq(args.vocab, args.vocab, args.embed, args.hidden, args.hidden).eval()
    src = torch.randint(0, args.vocab, (args.batch, args.source))
    common = {"max_new_tokens": args.new_tokens, "decoder_start_token_id": START}
    arms = {
        "hand": lambda: _hand_written_greedy(model, src, args.new_tokens),
        "dlc": lambda: model.generate(src, **common),
        "dlc-rescan": lambda: model.generate(src, **common, use_cache=False),
    }
    print(f"# {describe('cpu')}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"# BahdanauSeq2Seq vocab={args.vocab} embed={args.embed} hidden={args.hidden} batch={args.batch} "
          f"source={args.source} new_tokens={args.new_tokens} rounds={args.rounds}")
    with torch.inference_mode():
        outputs = {name: call() for name, call in arms.items()}          # warm-up, and the ids to compare
        same = all(torch.equal(out, outputs["hand"]) for out in outputs.values())
        seconds: dict[str, list[float]] = {name: [] for name in arms}
        for round_ in range(args.rounds):
            for name in (list(arms) if round_ % 2 == 0 else list(reversed(arms))):
                start = time.perf_counter()
                arms[name]()
                seconds[name].append(time.perf_counter() - start)
    tokens = args.batch * args.new_tokens
    rates = {name: tokens / statistics.median(times) for name, times in seconds.items()}
    for name, rate in rates.items():
        print(f"{name:10s} {rate:9.1f} tokens/s  ratio to hand: {rate / rates['hand']:.2f}")
    print(f"same ids: {same}")


if __name__ == "__main__":
    main()
