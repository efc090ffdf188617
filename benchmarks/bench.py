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
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.models import ENTRIES, Entry, load_reference_weights  # noqa: E402
from compiler.driver import compile_spec  # noqa: E402


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


def peak_memory_mb(key: str, arm: str, args) -> float | None:
    """Peak RSS of a fresh process that builds one arm and runs one forward (CPU)."""
    cmd = [sys.executable, "-m", "benchmarks.bench", "--memory-probe", key, arm, "--batch", str(args.batch),
           "--seq", str(args.seq), "--threads", str(args.threads)]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    try:
        return float(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


def memory_probe(key: str, arm: str, args) -> None:
    entry = ENTRIES[key]
    with tempfile.TemporaryDirectory() as tmp:
        arms, inputs, _ = build_arms(key, entry, argparse.Namespace(**{**vars(args), "compile": False}),
                                     Path(tmp), torch.device("cpu"), torch.float32)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        with torch.inference_mode():
            arms[arm](inputs)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{max(after - before, 0) / 1024:.1f}")


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
                        help="measure peak RSS of each arm in a fresh process (CPU)")
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    parser.add_argument("--memory-probe", nargs=2, metavar=("MODEL", "ARM"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_probe:
        memory_probe(*args.memory_probe, args)
        return
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
        print(f"## {key}\n\n| arm | median ms | min–max ms | reference / arm |\n|---|---|---|---|")
        for name, samples in times.items():
            print(summarize(name, samples, times["reference"]))
        print()
        for label, value in notes.items():
            print(f"- {label}: {value:.2f}")
        print(f"- max |arm - reference|: " + ", ".join(f"{k} {v:.1e}" for k, v in diffs.items()))
        if args.memory and device.type == "cpu":
            mem = {arm: peak_memory_mb(key, arm, args) for arm in ("reference", "dlc -O0", "dlc best")}
            print("- peak RSS growth during one forward (MB): " +
                  ", ".join(f"{k} {v:.0f}" if v is not None else f"{k} n/a" for k, v in mem.items()))
        print()
        sys.stdout.flush()
        raw[key] = {"times": times, "notes": notes, "diffs": diffs}
    if args.json:
        args.json.write_text(json.dumps(raw, indent=2))


if __name__ == "__main__":
    main()
