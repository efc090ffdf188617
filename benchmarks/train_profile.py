"""Where a training step spends its time, op by op, for the reference and dlc's training build.

    .venv/bin/python -m benchmarks.train_profile --model bert-base --seq 32          # op tables
    .venv/bin/python -m benchmarks.train_profile --model resnet50 --batch 2 --ab 10  # + A/B timing

Both arms are built in this one process on the same weights by benchmarks/arms.py's
build_training (forward + backward + AdamW, the benchmark's step).  The profile is
torch.profiler's self CPU time per op over `--iterations` steps; ops are grouped by phase
(forward ops, autograd's backward nodes, the optimizer) so a difference can be placed.
`--ab N` then times the arms in N rounds, taking turns in a rotated order, in wall and process
CPU time, and prints minima and medians: a within-process comparison (the benchmark proper runs
each arm in its own process: benchmarks/bench.py).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.arms import ADAMW, build_training  # noqa: E402
from benchmarks.models import ENTRIES  # noqa: E402
from benchmarks.stats import rotated_turns  # noqa: E402

ARMS = ("reference", "dlc -O2")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def _phase(key: str) -> str:
    if "Backward" in key or key.startswith("autograd::"):
        return "backward"
    if "_foreach" in key or "Optimizer" in key or "adam" in key.lower():
        return "optimizer"
    return "forward/other"


def op_table(step, iterations: int, rows: int) -> tuple[str, dict[str, float]]:
    """The `rows` ops with the most self CPU time over `iterations` steps, and ms per step per phase."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(iterations):
            step()
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    phases: dict[str, float] = defaultdict(float)
    for e in events:
        phases[_phase(e.key)] += e.self_cpu_time_total / 1e3 / iterations
    events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    lines = [f"{'op':48} {'calls':>6} {'ms/step':>8}"]
    for e in events[:rows]:
        lines.append(f"{e.key[:48]:48} {e.count // iterations:6d} {e.self_cpu_time_total / 1e3 / iterations:8.1f}")
    return "\n".join(lines), dict(phases)


def alternate(steps: dict, rounds: int) -> dict[str, dict[str, list[float]]]:
    """Wall and process-CPU seconds per step of each arm over `rounds` rotated rounds."""
    names = list(steps)
    times = {name: {"wall": [], "cpu": []} for name in names}
    for name in rotated_turns(names, rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        steps[name]()
        times[name]["cpu"].append(time.process_time() - cpu)
        times[name]["wall"].append(time.perf_counter() - wall)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="bert-base", choices=sorted(ENTRIES))
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp32")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--adamw", choices=sorted(ADAMW), default="default")
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--rows", type=int, default=25)
    parser.add_argument("--ab", type=int, default=0, help="alternating timing rounds (0: none)")
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    entry = ENTRIES[args.model]
    device = torch.device("cpu")
    inputs = entry.inputs(args.batch, args.seq, device)
    steps = {}
    with tempfile.TemporaryDirectory() as tmp:
        for arm in args.arms.split(","):
            steps[arm], _ = build_training(arm, entry, inputs, Path(tmp), device, DTYPES[args.dtype], args.adamw)
            steps[arm]()
    if not args.no_profile:
        for arm, step in steps.items():
            table, phases = op_table(step, args.iterations, args.rows)
            summary = ", ".join(f"{name} {ms:.0f}" for name, ms in sorted(phases.items()))
            print(f"\n== {args.model} {args.dtype}, {arm}: self CPU ms per step: {summary}\n{table}", flush=True)
    if args.ab:
        times = alternate(steps, args.ab)
        first = next(iter(times))
        print(f"\nalternating, {args.ab} rounds ({args.threads} threads); ratio = first arm / arm, of minima:")
        for arm, clocks in times.items():
            cells = []
            for clock, seconds in clocks.items():
                cells.append(f"{clock} min {min(seconds) * 1e3:7.1f} median {statistics.median(seconds) * 1e3:7.1f} "
                             f"ratio {min(times[first][clock]) / min(seconds):.3f}")
            print(f"  {arm:10} " + " | ".join(cells))


if __name__ == "__main__":
    main()
