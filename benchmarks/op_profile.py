"""Where a transformer's forward spends its time, op by op, for the reference and dlc's builds.

    .venv/bin/python -m benchmarks.op_profile --model bert-base              # op table per arm
    .venv/bin/python -m benchmarks.op_profile --model gpt2 --ab 20           # + alternating A/B timing

Every arm is built in this one process on the same weights (benchmarks/arms.py): the reference,
dlc -O0 and dlc best (-O2 + optimize_for_inference() with the benchmark's inputs).  The profile
is torch.profiler's self CPU time per op over `--iterations` forwards, printed as a share of the
total, so a busy machine inflates every arm alike.  `--ab N` then times the arms in N rounds,
taking turns in a rotated order, and prints each arm's minimum and median and the ratio of the
reference's minimum to the arm's: a within-process comparison, not the benchmark's figure (the
benchmark runs each arm in its own process: benchmarks/bench.py).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.arms import build_inference  # noqa: E402
from benchmarks.models import ENTRIES  # noqa: E402
from benchmarks.stats import rotated_turns  # noqa: E402

ARMS = ("reference", "dlc -O0", "dlc best")


def op_table(run, iterations: int, rows: int) -> tuple[str, float]:
    """The `rows` ops with the most self CPU time over `iterations` calls, as text, and the total ms
    per call."""
    from torch.profiler import ProfilerActivity, profile
    with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(iterations):
            run()
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    lines = [f"{'op':40} {'calls':>6} {'ms/fwd':>8} {'share':>6}"]
    for e in events[:rows]:
        ms = e.self_cpu_time_total / 1e3 / iterations
        lines.append(f"{e.key[:40]:40} {e.count // iterations:6d} {ms:8.1f} {e.self_cpu_time_total / total:6.1%}")
    return "\n".join(lines), total / 1e3 / iterations


def alternate(runs: dict, rounds: int, clock=time.perf_counter) -> dict[str, list[float]]:
    """Seconds per call of each arm over `rounds` rounds, the order rotated every round."""
    names = list(runs)
    times: dict[str, list[float]] = {name: [] for name in names}
    with torch.inference_mode():
        for name in rotated_turns(names, rounds):
            start = clock()
            runs[name]()
            times[name].append(clock() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="bert-base", choices=sorted(ENTRIES))
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--rows", type=int, default=18)
    parser.add_argument("--ab", type=int, default=0, help="alternating timing rounds (0: none)")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--cpu-time", action="store_true",
                        help="time A/B rounds in process CPU seconds (steadier on a shared machine; with one thread)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    entry = ENTRIES[args.model]
    inputs = entry.inputs(args.batch, args.seq, torch.device("cpu"))
    runs, outputs = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for arm in args.arms.split(","):
            run, notes = build_inference(arm, entry, inputs, Path(tmp), torch.device("cpu"), torch.float32,
                                         args.threads)
            with torch.inference_mode():
                outputs[arm] = run().float()
                run()
            runs[arm] = run
            for line in notes.get("choices", []):
                print(f"  [{arm}] {line}")
    first = next(iter(outputs.values()))
    for arm, out in outputs.items():
        print(f"{arm}: max |arm - {next(iter(outputs))}| = {(out - first).abs().max().item():.1e}")
    if not args.no_profile:
        for arm, run in runs.items():
            table, total = op_table(run, args.iterations, args.rows)
            print(f"\n== {args.model}, {arm}: {total:.0f} ms self CPU per forward (profiled)\n{table}")
    if args.ab:
        times = alternate(runs, args.ab, time.process_time if args.cpu_time else time.perf_counter)
        best_reference = min(times[next(iter(times))])
        clock = "CPU" if args.cpu_time else "wall"
        print(f"\nalternating, {args.ab} rounds ({args.threads} threads, {clock} time):")
        for arm, seconds in times.items():
            ordered = sorted(seconds)
            print(f"  {arm:12} min {ordered[0] * 1e3:7.1f} ms  median {ordered[len(ordered) // 2] * 1e3:7.1f} ms"
                  f"  first-arm min / min {best_reference / ordered[0]:.3f}")


if __name__ == "__main__":
    main()
