"""One arm of benchmarks/decode.py in a process of its own: dlc's generated `generate()` or HF
transformers' `generate`, on the weights every worker builds alike from one seed.

The worker builds the model, says it is ready, then answers commands, one per line:

    run I N   run case I (decode.CASES's order) N times; reply each call's seconds and the ids
    quit

Replies are JSON on lines starting with REPLY, so library chatter on stdout is ignored.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import types
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# transformers imports torchvision where it is installed, whose compiled ops do not load against the
# CPU build of torch; its model code runs with the meta-registrations stubbed (as tests/conftest.py).
sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))

REPLY = "@@dlc-decode "
SEED = 0


def reply(data) -> None:
    print(REPLY + json.dumps(data), flush=True)


def _gpt2(layers: int):
    import transformers
    from generated import gpt2
    config = transformers.GPT2Config(n_layer=layers, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    return transformers.GPT2LMHeadModel(config), lambda: gpt2.GPT2LMHeadModel(layers=layers, dropout=0.0), {}


def _t5(layers: int):
    import transformers
    from generated import t5
    config = transformers.T5Config(num_layers=layers, num_decoder_layers=layers, dropout_rate=0.0,
                                   decoder_start_token_id=0, pad_token_id=0)
    return (transformers.T5ForConditionalGeneration(config),
            lambda: t5.T5ForConditionalGeneration(layers=layers, dropout=0.0), {"decoder_start_token_id": 0})


MODELS = {"gpt2": _gpt2, "t5": _t5}
DEFAULT_LAYERS = {"gpt2": 12, "t5": 6}     # GPT-2 124M, t5-small


def build(model: str, arm: str, layers: int, device: str):
    """The arm's model (eval, on `device`), its vocabulary size and its generate() keywords.  The
    HF model is built first in both arms, from one seed, so both decode with the same weights."""
    torch.manual_seed(SEED)
    reference, make_ours, extra = MODELS[model](layers)
    vocab = reference.config.vocab_size
    if arm == "hf":
        return reference.eval().to(device), vocab, {}
    ours = make_ours()
    ours.load_reference_state_dict(reference.state_dict())      # strict: every key and shape matches
    del reference
    return ours.eval().to(device), vocab, extra


def case_call(model, arm: str, vocab: int, case: dict, extra: dict, device: str):
    """One generate() call of a case: `prompt` random ids per row, exactly `new_tokens` new ones
    (no end token; HF's min_new_tokens forbids its default one)."""
    ids = torch.randint(0, vocab, (case["batch"], case["prompt"]), generator=torch.Generator().manual_seed(1))
    ids = ids.to(device)
    common = {"max_new_tokens": case["new_tokens"], "num_beams": case["num_beams"], "do_sample": False}
    if arm == "hf":
        return lambda: model.generate(ids, attention_mask=torch.ones_like(ids), pad_token_id=0,
                                      min_new_tokens=case["new_tokens"], **common)
    return lambda: model.generate(ids, **common, **extra)


def _timed(call, device: str) -> tuple[float, torch.Tensor]:
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = call()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--arm", choices=("dlc", "hf"), required=True)
    parser.add_argument("--layers", type=int, required=True)
    parser.add_argument("--cases", required=True, help="JSON list of cases")
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    try:
        model, vocab, extra = build(args.model, args.arm, args.layers, args.device)
        calls = [case_call(model, args.arm, vocab, case, extra, args.device) for case in json.loads(args.cases)]
    except Exception as exc:  # reported as an arm that did not start, with the reason
        reply({"error": f"{type(exc).__name__}: {str(exc)[:300]}"})
        return
    reply({"ready": True})
    for line in sys.stdin:
        command = line.split()
        if not command or command[0] == "quit":
            break
        if command[0] == "run":
            times, ids = [], None
            with torch.inference_mode():
                for _ in range(int(command[2])):
                    elapsed, ids = _timed(calls[int(command[1])], args.device)
                    times.append(elapsed)
            reply({"times": times, "ids": ids.tolist()})


if __name__ == "__main__":
    main()
