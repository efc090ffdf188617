"""Attention with dropout, forward + backward, as a training step runs it: torch's SDPA (on CPU its
math path, since the flash kernel has no dropout) against the runtime's dropout_attention
(dlc/runtime/attention.py), which -O2 training builds call.

    .venv/bin/python -m benchmarks.attention_train                       # BERT-base's shape
    .venv/bin/python -m benchmarks.attention_train --threads 2 --rounds 30

q, k and v are views of one fused projection, heads transposed, as generated code makes them;
the mask is the padding mask dlc builds ([B, 1, 1, S], additive).  The two take turns, the order
swapped every round; each call is timed in process CPU seconds (steadier than wall time on a
shared machine) and wall seconds, and the ratio SDPA / dropout_attention of minima and medians
is printed (above 1: dropout_attention is faster).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dlc.runtime.attention import dropout_attention  # noqa: E402


def make_call(attention, batch: int, heads: int, seq: int, head_dim: int, dropout: float):
    """One forward + backward of `attention` on fresh inputs of the given shape."""
    fused = torch.randn(batch, seq, 3 * heads * head_dim)
    keep = torch.ones(batch, seq, dtype=torch.bool)
    keep[batch // 2:, seq * 3 // 4:] = False
    mask = torch.zeros(batch, 1, 1, seq).masked_fill(~keep[:, None, None, :], torch.finfo(torch.float32).min)

    def call() -> None:
        x = fused.clone().requires_grad_()
        q, k, v = (t.unflatten(-1, (heads, head_dim)).transpose(1, 2) for t in x.chunk(3, dim=-1))
        out = attention(q, k, v, attn_mask=mask, dropout_p=dropout).transpose(1, 2).flatten(2)
        out.backward(torch.ones_like(out))
    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    shape = (args.batch, args.heads, args.seq, args.head_dim, args.dropout)
    calls = {"sdpa": make_call(F.scaled_dot_product_attention, *shape),
             "dropout_attention": make_call(dropout_attention, *shape)}
    times = {name: {"cpu": [], "wall": []} for name in calls}
    for call in calls.values():
        call()
    for r in range(args.rounds):
        for name in (list(calls) if r % 2 == 0 else list(calls)[::-1]):
            wall, cpu = time.perf_counter(), time.process_time()
            calls[name]()
            times[name]["cpu"].append(time.process_time() - cpu)
            times[name]["wall"].append(time.perf_counter() - wall)
    print(f"attention forward + backward, B={args.batch} H={args.heads} S={args.seq} D={args.head_dim}, "
          f"dropout {args.dropout}, {args.threads} thread(s), {args.rounds} rounds, "
          f"load average {os.getloadavg()[0]:.1f}")
    for clock in ("cpu", "wall"):
        for name, clocks in times.items():
            print(f"  {name:18} {clock:4} min {min(clocks[clock]) * 1e3:7.1f} ms  "
                  f"median {statistics.median(clocks[clock]) * 1e3:7.1f} ms")
        sdpa, ours = times["sdpa"][clock], times["dropout_attention"][clock]
        print(f"  sdpa / dropout_attention, {clock}: minima {min(sdpa) / min(ours):.3f}, "
              f"medians {statistics.median(sdpa) / statistics.median(ours):.3f}")


if __name__ == "__main__":
    main()
