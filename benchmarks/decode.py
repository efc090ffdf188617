"""Decoding speed: tokens per second of the generated `generate()` (with its key/value cache)
against HF transformers' `generate` on the same weights, each arm in a process of its own
(benchmarks/decode_worker.py), in alternating rounds, over several batch sizes and searches.

    nice .venv/bin/python -m benchmarks.decode                        # GPT-2 124M and t5-small, CPU fp32
    nice .venv/bin/python -m benchmarks.decode --models gpt2 --new-tokens 64 --rounds 5
    .venv/bin/python -m benchmarks.decode --device cuda --batches 1,8 --beams 1,4

Both arms build HF's model from one seed (random weights, no download); the dlc arm loads its
state_dict into the generated model with strict key matching.  Every case (batch size x
num_beams, `--prompt` random ids a row, exactly `--new-tokens` new ids: no end token) runs once
per arm to warm up and to compare the ids (they must be equal), then `--rounds` rounds, one call
per arm per case per round, the arms' order alternating.  Figures: median tokens/s (batch x
new tokens / seconds; a beam search counts the returned ids, not the beams') and the ratio
dlc / HF (above 1: dlc faster).  The exact command, the CPU model and ISA and the load average
head the output.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.decode_worker import DEFAULT_LAYERS, MODELS, REPLY  # noqa: E402
from benchmarks.machine import describe  # noqa: E402

ARMS = ("dlc", "hf")


class Arm:
    """One arm's worker process for one model."""

    def __init__(self, arm: str, model: str, cases: list[dict], args) -> None:
        self.name = arm
        command = [sys.executable, "-m", "benchmarks.decode_worker", "--model", model, "--arm", arm,
                   "--layers", str(args.layers or DEFAULT_LAYERS[model]), "--cases", json.dumps(cases),
                   "--threads", str(args.threads), "--device", args.device]
        self.process = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=None if args.verbose else subprocess.DEVNULL, text=True)
        self.ready = self._read()

    def _read(self) -> dict:
        for line in self.process.stdout:
            if line.startswith(REPLY):
                return json.loads(line[len(REPLY):])
        return {"error": f"exited with status {self.process.wait()}"}

    def run(self, case: int, calls: int = 1) -> dict:
        self.process.stdin.write(f"run {case} {calls}\n")
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


def cases_of(args) -> list[dict]:
    return [{"batch": b, "num_beams": k, "prompt": args.prompt, "new_tokens": args.new_tokens}
            for b in args.batches for k in args.beams]


def measure(model: str, args) -> dict:
    """Per case: each arm's seconds per round and whether the ids agreed."""
    cases = cases_of(args)
    arms = [Arm(name, model, cases, args) for name in ARMS]     # started one after the other
    try:
        failed = {a.name: a.ready["error"] for a in arms if "error" in a.ready}
        if failed:
            return {"error": failed}
        results = []
        for index, case in enumerate(cases):
            warm = {a.name: a.run(index) for a in arms}
            same = warm["dlc"]["ids"] == warm["hf"]["ids"]
            seconds: dict[str, list[float]] = {a.name: [] for a in arms}
            for round_ in range(args.rounds):
                for arm in (arms if round_ % 2 == 0 else arms[::-1]):
                    seconds[arm.name] += arm.run(index)["times"]
            results.append({"case": case, "seconds": seconds, "same_ids": same})
        return {"cases": results}
    finally:
        for arm in arms:
            arm.stop()


def report(model: str, result: dict) -> str:
    if "error" in result:
        return f"## {model}\n\nnot run: {result['error']}\n"
    lines = [f"## {model}\n", "| batch | num_beams | dlc tokens/s | HF tokens/s | dlc / HF | dlc min–max s | HF min–max s "
             "| same ids |", "|---|---|---|---|---|---|---|---|"]
    for entry in result["cases"]:
        case, seconds = entry["case"], entry["seconds"]
        tokens = case["batch"] * case["new_tokens"]
        rate = {arm: tokens / statistics.median(seconds[arm]) for arm in ARMS}
        spread = {arm: f"{min(seconds[arm]):.2f}–{max(seconds[arm]):.2f}" for arm in ARMS}
        lines.append(f"| {case['batch']} | {case['num_beams']} | {rate['dlc']:.1f} | {rate['hf']:.1f} | "
                     f"{rate['dlc'] / rate['hf']:.2f} | {spread['dlc']} | {spread['hf']} | "
                     f"{'yes' if entry['same_ids'] else 'NO'} |")
    return "\n".join(lines) + "\n"


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",")]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="gpt2,t5", help=f"comma-separated, of {', '.join(MODELS)}")
    parser.add_argument("--layers", type=int, default=None, help="default: the full model's (12 GPT-2, 6 t5-small)")
    parser.add_argument("--batches", type=_ints, default=[1, 4])
    parser.add_argument("--beams", type=_ints, default=[1, 4], help="num_beams values")
    parser.add_argument("--prompt", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--verbose", action="store_true", help="show the workers' stderr")
    args = parser.parse_args(argv)
    import torch
    command = " ".join(["python -m benchmarks.decode", *(sys.argv[1:] if argv is None else argv)])
    print(f"# {command}\n\n{describe(args.device)}; torch {torch.__version__}, {args.device} fp32, "
          f"{args.threads} threads, prompt {args.prompt}, {args.new_tokens} new tokens, {args.rounds} rounds, "
          f"load average at start {os.getloadavg()[0]:.1f}\n", flush=True)
    start = time.perf_counter()
    for model in args.models.split(","):
        print(report(model, measure(model, args)) + f"\n- load average after {model}: {os.getloadavg()[0]:.1f}\n",
              flush=True)
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
