"""One benchmark arm in a process of its own, driven by benchmarks/bench.py over stdin/stdout.

The parent starts one worker per arm, so no runtime's thread pool or allocator state can
slow another's.  A worker builds its arm, saves its output (or first loss) for the agreement
check, warms up, says it is ready, then answers commands, one per line:

    time N     run N forwards (training steps) and report each one's seconds, wall and
               process CPU (every thread's; steadier than wall time on a shared machine)
    memory     report the peak memory one forward needs beyond what is already allocated
    quit

Replies are JSON on lines starting with REPLY, so library chatter on stdout is ignored.
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TORCHINDUCTOR_FORCE_DISABLE_CACHES", "1")   # compile times are cold times

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.arms import build_inference, build_training  # noqa: E402
from benchmarks.models import ENTRIES  # noqa: E402

REPLY = "@@dlc-bench "


def reply(data) -> None:
    print(REPLY + json.dumps(data), flush=True)


def slug(arm: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in arm)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def peak_memory_mb(run, device: torch.device) -> float | None:
    """Memory one call needs beyond what is already allocated (weights, inputs): the CUDA
    allocator's peak, or on Linux the peak RSS after returning freed heap pages (malloc_trim)
    and resetting the kernel's high-water mark (/proc/self/clear_refs)."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        run()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - before) / 2**20
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        Path("/proc/self/clear_refs").write_text("5")
        before = _status_kb("VmRSS")
        run()
        return (_status_kb("VmHWM") - before) / 1024
    except (OSError, KeyError):
        return None


def build(args) -> tuple:
    entry = ENTRIES[args.model]
    device = torch.device(args.device)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    batch = args.batch
    inputs = entry.inputs(batch, args.seq, device)
    if "images" in inputs and args.mode == "infer":
        inputs["images"] = inputs["images"].to(dtype)
    tmp = Path(args.tmp)
    if args.mode == "train":
        step, notes = build_training(args.arm, entry, inputs, tmp, device, dtype, args.adamw)
        return step, notes, device, lambda: step()
    run, notes = build_inference(args.arm, entry, inputs, tmp, device, dtype, args.threads)
    return run, notes, device, run


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("mode", "model", "arm", "device", "dtype", "tmp"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--adamw", default="default")
    for name in ("batch", "seq", "threads", "warmup"):
        parser.add_argument(f"--{name}", type=int, required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    try:
        run, notes, device, call = build(args)
        context = torch.inference_mode() if args.mode == "infer" else torch.enable_grad()
        with context:
            torch.save(call().detach().float().cpu(), Path(args.tmp) / f"{slug(args.arm)}.pt")
            for _ in range(args.warmup):
                call()
    except Exception as exc:  # reported as a skipped arm, with the reason
        reply({"error": f"{type(exc).__name__}: {str(exc)[:300]}"})
        return
    if args.arm == "reference":   # FLOPs of one call (matmuls and convolutions; backward too when training)
        from torch.utils.flop_counter import FlopCounterMode
        with context, FlopCounterMode(display=False) as counter:
            call()
        notes["gflop"] = counter.get_total_flops() / 1e9
    reply({"ready": notes})
    for line in sys.stdin:
        command = line.split()
        if not command or command[0] == "quit":
            break
        with context:
            if command[0] == "time":
                times, cpu_times = [], []
                for _ in range(int(command[1])):
                    _sync(device)
                    start, cpu_start = time.perf_counter(), time.process_time()
                    call()
                    _sync(device)
                    times.append(time.perf_counter() - start)
                    cpu_times.append(time.process_time() - cpu_start)
                reply({"times": times, "cpu_times": cpu_times})
            elif command[0] == "memory":
                reply({"memory_mb": peak_memory_mb(call, device)})


if __name__ == "__main__":
    main()
