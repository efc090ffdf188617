"""Decoding speed: tokens per second of the generated `generate()` (with its key/value cache)
against HF transformers' `generate` on the same weights, in one process, in alternating rounds.

    nice .venv/bin/python -m benchmarks.decode                       # GPT-2 124M, greedy, CPU fp32
    nice .venv/bin/python -m benchmarks.decode --num-beams 4 --layers 6
    .venv/bin/python -m benchmarks.decode --model t5 --device cuda

Both models are built from the same config with random weights (HF's, loaded into ours with
strict key matching); each round times one `generate` call of each arm, in turns, after a
warm-up, and checks that both produced the same ids.  The figure is the ratio of median
tokens/s (ours / HF's: above 1, faster).  The CPU model and ISA head the output.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.machine import describe  # noqa: E402

# transformers imports torchvision where it is installed, whose compiled ops do not load against the
# CPU build of torch; its model code runs with the meta-registrations stubbed (as tests/conftest.py).
sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))


def _gpt2(args):
    import transformers
    from generated import gpt2
    config = transformers.GPT2Config(n_layer=args.layers, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    reference = transformers.GPT2LMHeadModel(config).eval()
    ours = gpt2.GPT2LMHeadModel(layers=args.layers, dropout=0.0).eval()
    ours.load_reference_state_dict(reference.state_dict())
    return ours, reference, config.vocab_size, {}


def _t5(args):
    import transformers
    from generated import t5
    config = transformers.T5Config(num_layers=args.layers, num_decoder_layers=args.layers, dropout_rate=0.0)
    reference = transformers.T5ForConditionalGeneration(config).eval()
    ours = t5.T5ForConditionalGeneration(layers=args.layers, dropout=0.0).eval()
    ours.load_reference_state_dict(reference.state_dict())
    return ours, reference, config.vocab_size, {"decoder_start_token_id": 0}


MODELS = {"gpt2": _gpt2, "t5": _t5}


def _timed(call) -> tuple[float, "object"]:
    start = time.perf_counter()
    out = call()
    return time.perf_counter() - start, out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="gpt2")
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--prompt", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--num-beams", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    ours, reference, vocab, extra = MODELS[args.model](args)
    ours, reference = ours.to(args.device), reference.to(args.device)
    ids = torch.randint(0, vocab, (args.batch, args.prompt), device=args.device)
    # No end token: every call makes exactly new_tokens ids per row, so tokens/s compare like for like.
    common = {"max_new_tokens": args.new_tokens, "num_beams": args.num_beams, "do_sample": False}
    arms = {
        "dlc": lambda: ours.generate(ids, **common, **extra),
        "hf": lambda: reference.generate(ids, attention_mask=torch.ones_like(ids), pad_token_id=0,
                                         min_new_tokens=args.new_tokens, **common),
    }
    print(f"# {describe(args.device)}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"# {args.model} layers={args.layers} batch={args.batch} prompt={args.prompt} "
          f"new_tokens={args.new_tokens} num_beams={args.num_beams} rounds={args.rounds}")
    with torch.inference_mode():
        outputs = {name: call() for name, call in arms.items()}      # warm-up, and the ids to compare
        same = torch.equal(outputs["dlc"], outputs["hf"])
        seconds: dict[str, list[float]] = {name: [] for name in arms}
        for round_ in range(args.rounds):
            order = list(arms) if round_ % 2 == 0 else list(reversed(arms))
            for name in order:
                elapsed, _ = _timed(arms[name])
                seconds[name].append(elapsed)
    tokens = args.batch * args.new_tokens
    rates = {name: tokens / statistics.median(times) for name, times in seconds.items()}
    for name, rate in rates.items():
        spread = ", ".join(f"{tokens / t:.1f}" for t in seconds[name])
        print(f"{name:4s} {rate:8.1f} tokens/s (rounds: {spread})")
    print(f"ratio dlc/hf: {rates['dlc'] / rates['hf']:.2f}; same ids: {same}")


if __name__ == "__main__":
    main()
