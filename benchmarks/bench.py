"""Side by side, on the same weights: each stdlib model's reference implementation, dlc's builds
and the peers, every arm in a process of its own (benchmarks/worker.py), in alternating rounds.

    nice .venv/bin/python -m benchmarks.bench                      # inference, every model, CPU fp32
    nice .venv/bin/python -m benchmarks.bench --mode train --models bert-base,gpt2,resnet50
    .venv/bin/python -m benchmarks.bench --device cuda --dtype bf16   # the same script on a GPU

Inference arms: the reference (transformers / torchvision, eager), dlc -O0, dlc best (-O2 plus
`optimize_for_inference()` given the benchmark's inputs as example inputs), inductor
(`torch.compile` of the reference with freezing), ONNX Runtime (ORT_ENABLE_ALL) and OpenVINO
(both on a torch.onnx export of the reference; CPU fp32 only); on request (`--arms`), "dlc best
unfused": dlc best without the fused convolution / GEMM epilogue kernels, to measure what they add.  Training arms: the reference,
dlc -O2, dlc best (-O2 plus `optimize_for_training()` given the benchmark's inputs: each linear
layer's GEMMs on the library measured faster here, and channels-last convolutions where a forward
+ backward measures faster) and `torch.compile` of the reference; one step is forward + backward
+ AdamW, bf16 by autocast.

Each worker builds its arm, saves its output (checked here against the reference's), warms
up, then runs `--runs` calls per round; the arms take turns, in a rotated order each round,
for `--rounds` rounds.  Ratios are reference_time / arm_time (above 1: faster than the
reference), from medians over all rounds in the table; below it, the same ratios from minima and
paired by round (each round's best call of the reference over the arm's), in wall and process
CPU time (benchmarks/stats.py), to tell a real difference from load.  GFLOP/s count the reference's matmul and
convolution FLOPs (torch's FlopCounterMode) and are set beside this machine's practical GEMM
peak (benchmarks/machine.py).  The CPU model and ISA head the output.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.arms import ADAMW, INFERENCE_ARMS, TRAINING_ARMS  # noqa: E402
from benchmarks.machine import describe, gemm_peaks  # noqa: E402
from benchmarks.models import ENTRIES  # noqa: E402
from benchmarks.stats import describe as describe_ratios, ratios  # noqa: E402
from benchmarks.worker import REPLY, slug  # noqa: E402

TOLERANCE = {"fp32": (1e-4, 1e-3), "bf16": (0.1, 0.05)}   # atol, rtol of an arm's output vs the reference's


class Worker:
    """One arm's process: started, asked to time calls, stopped."""

    def __init__(self, arm: str, model: str, args, tmp: Path) -> None:
        self.arm = arm
        command = [sys.executable, "-m", "benchmarks.worker", "--mode", args.mode, "--model", model, "--arm", arm,
                   "--device", args.device, "--dtype", args.dtype, "--tmp", str(tmp), "--batch", str(args.batch),
                   "--seq", str(args.seq), "--threads", str(args.threads), "--warmup", str(args.warmup),
                   "--adamw", args.adamw]
        self.process = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL if not args.verbose else None, text=True)
        self.ready = self._read()

    def _read(self) -> dict:
        for line in self.process.stdout:
            if line.startswith(REPLY):
                return json.loads(line[len(REPLY):])
        return {"error": f"exited with status {self.process.wait()}"}

    def ask(self, command: str) -> dict:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._read()

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.stdin.write("quit\n")
                self.process.stdin.close()
            except BrokenPipeError:
                pass
            self.process.wait(timeout=60)


def agreement(arms: list[str], tmp: Path, dtype: str) -> dict[str, str]:
    import torch
    expected = torch.load(tmp / "reference.pt")
    atol, rtol = TOLERANCE[dtype]
    found = {}
    for arm in arms:
        got = torch.load(tmp / f"{slug(arm)}.pt")
        diff = (got - expected).abs().max().item() if got.shape == expected.shape else float("inf")
        ok = got.shape == expected.shape and torch.allclose(got, expected, atol=atol, rtol=rtol)
        found[arm] = f"{diff:.1e}" + ("" if ok else " (DISAGREES)")
    return found


def run_model(model: str, arms: list[str], args) -> dict:
    with tempfile.TemporaryDirectory(prefix="dlc-bench-") as tmp:
        workers, skipped = [], {}
        for arm in arms:                         # one at a time: no build competes with another
            worker = Worker(arm, model, args, Path(tmp))
            if "error" in worker.ready:
                skipped[arm] = worker.ready["error"]
                worker.stop()
            else:
                workers.append(worker)
        try:
            if not workers or workers[0].arm != "reference":
                return {"skipped": skipped, "error": "the reference arm did not start"}
            times: dict[str, list[float]] = {w.arm: [] for w in workers}
            # per arm, per round: wall and CPU seconds of each call, for the paired ratios
            rounds: dict[str, dict[str, list[list[float]]]] = {w.arm: {"wall": [], "cpu": []} for w in workers}
            for r in range(args.rounds):
                for worker in workers[r % len(workers):] + workers[:r % len(workers)]:
                    answer = worker.ask(f"time {args.runs}")
                    times[worker.arm] += answer["times"]
                    rounds[worker.arm]["wall"].append(answer["times"])
                    rounds[worker.arm]["cpu"].append(answer["cpu_times"])
            memory = {w.arm: w.ask("memory")["memory_mb"] for w in workers} if args.memory else {}
            diffs = agreement([w.arm for w in workers[1:]], Path(tmp), args.dtype) if args.mode == "infer" else {}
            notes = {w.arm: w.ready.get("ready", {}) for w in workers}
        finally:
            for worker in workers:
                worker.stop()
    return {"times": times, "rounds": rounds, "memory_mb": memory, "diffs": diffs, "notes": notes,
            "skipped": skipped}


def report(model: str, result: dict, peak: float) -> str:
    if "times" not in result:
        return f"## {model}\n\nnot run: {result.get('error')}; {result.get('skipped')}\n"
    times, notes = result["times"], result["notes"]
    gflop = notes["reference"].get("gflop", 0.0)
    ref = statistics.median(times["reference"])
    lines = [f"## {model}\n", "| arm | median ms | min–max ms | reference / arm | GFLOP/s | of GEMM peak |",
             "|---|---|---|---|---|---|"]
    for arm, samples in times.items():
        med = statistics.median(samples)
        rate = gflop / med if gflop else 0.0
        lines.append(f"| {arm} | {med * 1e3:.1f} | {min(samples) * 1e3:.1f}–{max(samples) * 1e3:.1f} | "
                     f"{ref / med:.2f} | {rate:.0f} | {rate / peak:.2f} |")
    lines.append("")
    lines.append(f"- GFLOP per call (reference, FlopCounterMode): {gflop:.1f}")
    lines += _ratio_lines(result["rounds"])
    for arm, note in notes.items():
        for key, value in note.items():
            if key == "choices":
                lines += [f"- {arm} chose: {choice}" for choice in value]
            elif key != "gflop":
                lines.append(f"- {arm} {key}: {value:.2f}")
    if result["diffs"]:
        lines.append("- max |arm - reference|: " + ", ".join(f"{k} {v}" for k, v in result["diffs"].items()))
    if result["memory_mb"]:
        lines.append("- peak memory of one call beyond weights and inputs (MB): " + ", ".join(
            f"{k} {v:.0f}" if v is not None else f"{k} n/a" for k, v in result["memory_mb"].items()))
    for arm, why in result["skipped"].items():
        lines.append(f"- {arm} skipped: {why}")
    return "\n".join(lines) + "\n"


def _ratio_lines(rounds: dict) -> list[str]:
    """reference / arm from wall and from CPU time: of medians, of minima, paired by round."""
    lines = []
    reference = rounds["reference"]
    for arm, clocks in rounds.items():
        if arm != "reference":
            for clock in ("wall", "cpu"):
                lines.append(f"- reference / {arm}, {clock} time: {describe_ratios(ratios(reference[clock], clocks[clock]))}")
    cpu = {arm: statistics.median(t for calls in clocks["cpu"] for t in calls) for arm, clocks in rounds.items()}
    lines.append("- median CPU s per call (all threads): " + ", ".join(f"{arm} {s:.2f}" for arm, s in cpu.items()))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("infer", "train"), default="infer")
    parser.add_argument("--models", default=",".join(ENTRIES))
    parser.add_argument("--arms", help="comma-separated; default: every arm of the mode")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3, help="calls per arm per round")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--adamw", choices=sorted(ADAMW), default="default",
                        help="training: AdamW's implementation, the same for every arm (default: torch's, on CPU "
                             "the loop over parameters)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--dtype", choices=("fp32", "bf16"), default=None, help="default: fp32 on CPU, bf16 on CUDA")
    parser.add_argument("--memory", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--verbose", action="store_true", help="show the workers' stderr")
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    args = parser.parse_args()
    import torch
    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    args.dtype = args.dtype or ("bf16" if args.device == "cuda" else "fp32")
    torch.set_num_threads(args.threads)
    arms = args.arms.split(",") if args.arms else list(INFERENCE_ARMS if args.mode == "infer" else TRAINING_ARMS)
    arms = ["reference", *(a for a in arms if a != "reference")]
    peaks = gemm_peaks(args.device, args.dtype)
    peak = max(peaks.values())
    each = ", ".join(f"{library} {gflops:.0f}" for library, gflops in peaks.items())
    print(f"# {args.mode}, {describe(args.device)}\n\ntorch {torch.__version__}, {args.device}, {args.dtype}, "
          f"threads={args.threads}, batch={args.batch}, AdamW {args.adamw}, seq={args.seq}, {args.rounds} rounds x {args.runs} runs, "
          f"practical GEMM peak {peak:.0f} GFLOP/s ({each}), load average at start {os.getloadavg()[0]:.1f}, "
          f"GLIBC_TUNABLES={os.environ.get('GLIBC_TUNABLES', '(unset)')}\n", flush=True)
    raw = {"machine": describe(args.device), "peak_gflops": peak, "peaks_gflops": peaks, "args": vars(args) | {"json": None}}
    for model in args.models.split(","):
        raw[model] = run_model(model, arms, args)
        print(report(model, raw[model], peak) + f"- load average after {model}: {os.getloadavg()[0]:.1f}\n", flush=True)
    if args.json:
        args.json.write_text(json.dumps(raw, indent=2, default=str))


if __name__ == "__main__":
    main()
