"""Side-by-side timings: each stdlib model against its reference implementation,
on the same weights, in one process.

    GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=17179869184 \\
        .venv/bin/python -m benchmarks.bench --threads 2 --runs 7

Arms per model: the reference (transformers / torchvision), torch.compile of the
reference, dlc -O0, and dlc's best inference build (-O2 plus the generated
`optimize_for_inference()`).  Outputs are checked to agree before anything is
timed; runs are interleaved (one forward of each arm per round) after warm-up.
Ratios are reference_time / arm_time: above 1 means faster than the reference.
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

# torch.compile's "cold" time means no inductor/FX caches from earlier runs; set before torch loads.
os.environ.setdefault("TORCHINDUCTOR_FORCE_DISABLE_CACHES", "1")

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.models import ENTRIES, Entry, load_reference_weights
from compiler.driver import compile_spec


def compile_dlc(spec: str, opt_level: int, out_dir: Path):
    """Compile a spec and import the generated module; returns (module, seconds)."""
    start = time.perf_counter()
    result = compile_spec(ROOT / "specs" / f"{spec}.dl", opt_level=opt_level)
    assert result.text is not None, [d.message for d in result.diagnostics]
    name = f"bench_{spec}_O{opt_level}"
    path = out_dir / f"{name}.py"
    path.write_text(result.text)
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module, time.perf_counter() - start


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_arms(arms: dict, inputs: dict, runs: int, warmup: int, device: torch.device) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in arms}
    with torch.inference_mode():
        for _ in range(warmup):
            for fn in arms.values():
                fn(inputs)
        names = list(arms)
        for run in range(runs):
            # Rotate the order each round, so no arm always runs right after the same other arm.
            for name in names[run % len(names):] + names[:run % len(names)]:
                fn = arms[name]
                _sync(device)
                start = time.perf_counter()
                fn(inputs)
                _sync(device)
                times[name].append(time.perf_counter() - start)
    return times


def build_arms(key: str, entry: Entry, args, tmp: Path, device, dtype) -> tuple[dict, dict, dict]:
    torch.manual_seed(0)
    reference = entry.reference().eval().to(device, dtype)
    inputs = entry.inputs(args.batch, args.seq, device)
    if "images" in inputs:
        inputs["images"] = inputs["images"].to(dtype)
    arms = {"reference": lambda x, m=reference: entry.run_reference(m, x)}
    notes: dict = {}
    o0, notes["dlc compile -O0 s"] = compile_dlc(entry.spec, 0, tmp)
    o2, compile_s = compile_dlc(entry.spec, 2, tmp)
    for name, module in (("dlc -O0", o0), ("dlc best", o2)):
        model = getattr(module, entry.cls)().eval()
        load_reference_weights(model, reference)
        model = model.to(device, dtype)
        start = time.perf_counter()
        if name == "dlc best" and hasattr(model, "optimize_for_inference"):
            model = model.optimize_for_inference()
        with torch.inference_mode():
            entry.run_dlc(model, inputs)
        if name == "dlc best":
            notes["dlc spec -> first optimized forward s"] = compile_s + time.perf_counter() - start
        arms[name] = lambda x, m=model: entry.run_dlc(m, x)
    if args.compile:
        compiled = torch.compile(reference)
        start = time.perf_counter()
        with torch.inference_mode():
            entry.run_reference(compiled, inputs)
        notes["torch.compile(reference) cold s"] = time.perf_counter() - start
        arms["torch.compile(ref)"] = lambda x, m=compiled: entry.run_reference(m, x)
    return arms, inputs, notes


def check_agreement(arms: dict, inputs: dict, entry_key: str, dtype) -> dict[str, float]:
    tol = {torch.float32: (1e-4, 1e-3), torch.bfloat16: (0.1, 0.05)}[dtype]
    with torch.inference_mode():
        expected = arms["reference"](inputs).float()
        diffs = {}
        for name, fn in arms.items():
            if name != "reference":
                got = fn(inputs).float()
                diffs[name] = (got - expected).abs().max().item()
                assert torch.allclose(got, expected, atol=tol[0], rtol=tol[1]), f"{entry_key}/{name}: {diffs[name]}"
    return diffs


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def peak_forward_memory_mb(fn, inputs: dict, device: torch.device) -> float | None:
    """Memory one forward needs beyond what is already allocated (weights, inputs).

    CUDA: the allocator's peak.  CPU (Linux): freed heap pages are returned with
    malloc_trim, the kernel's peak-RSS mark is reset (/proc/self/clear_refs), and
    the peak RSS reached during the forward is compared with the RSS before it.
    """
    gc.collect()
    with torch.inference_mode():
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
            fn(inputs)
            torch.cuda.synchronize()
            return (torch.cuda.max_memory_allocated() - before) / 2**20
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
            Path("/proc/self/clear_refs").write_text("5")
            before = _status_kb("VmRSS")
            fn(inputs)
            return (_status_kb("VmHWM") - before) / 1024
        except (OSError, KeyError):
            return None


def summarize(name: str, samples: list[float], ref: list[float]) -> str:
    med, lo, hi = statistics.median(samples), min(samples), max(samples)
    ratio = statistics.median(ref) / med
    return f"| {name} | {med * 1000:.1f} | {lo * 1000:.1f}–{hi * 1000:.1f} | {ratio:.2f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(ENTRIES))
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True,
                        help="also time torch.compile of the reference")
    parser.add_argument("--memory", action=argparse.BooleanOptionalAction, default=True,
                        help="measure the peak memory of one forward of each arm")
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), {"fp32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    print(f"# torch {torch.__version__}, {device}, {args.dtype}, threads={args.threads}, batch={args.batch}, "
          f"seq={args.seq}, runs={args.runs}, GLIBC_TUNABLES={os.environ.get('GLIBC_TUNABLES', '(unset)')}\n")
    raw = {}
    for key in args.models.split(","):
        entry = ENTRIES[key]
        with tempfile.TemporaryDirectory() as tmp:
            arms, inputs, notes = build_arms(key, entry, args, Path(tmp), device, dtype)
            diffs = check_agreement(arms, inputs, key, dtype)
            times = time_arms(arms, inputs, args.runs, args.warmup, device)
            memory = {name: peak_forward_memory_mb(fn, inputs, device) for name, fn in arms.items()} if args.memory else {}
        print(f"## {key}\n\n| arm | median ms | min–max ms | reference / arm |\n|---|---|---|---|")
        for name, samples in times.items():
            print(summarize(name, samples, times["reference"]))
        print()
        for label, value in notes.items():
            print(f"- {label}: {value:.2f}")
        print("- max |arm - reference|: " + ", ".join(f"{k} {v:.1e}" for k, v in diffs.items()))
        if memory:
            print("- peak memory of one forward beyond weights and inputs (MB): " +
                  ", ".join(f"{k} {v:.0f}" if v is not None else f"{k} n/a" for k, v in memory.items()))
        print()
        sys.stdout.flush()
        raw[key] = {"times": times, "notes": notes, "diffs": diffs, "memory_mb": memory}
    if args.json:
        args.json.write_text(json.dumps(raw, indent=2))


if __name__ == "__main__":
    main()
