"""What argument donation adds: one dlc best model, its fused residual sums adding into the dying
input's memory or writing a new tensor, in alternating forwards of the same instance.

    .venv/bin/python -m benchmarks.donation --models resnet50,mobilenet_v2 --rounds 20

The model is built once (benchmarks/arms.py, `dlc best`: -O2 + optimize_for_inference() on the
benchmark's batch), so both sides run the same kernel choices; only the FusedConv layers' `overwrite`
flag changes between calls, and the two outputs must be equal bit for bit.  Prints each side's
minimum and median and the ratio of the new-tensor side's to the donated side's, with the machine.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.arms import _dlc_args, dlc_model, reference_model  # noqa: E402
from benchmarks.machine import describe  # noqa: E402
from benchmarks.models import ENTRIES  # noqa: E402


def overwriting_layers(model: torch.nn.Module) -> list:
    return [layer for layer in model.modules() if getattr(layer, "overwrite", False)]


def compare(name: str, rounds: int, batch: int, threads: int) -> str:
    entry = ENTRIES[name]
    inputs = entry.inputs(batch, 128, torch.device("cpu"))
    with tempfile.TemporaryDirectory() as tmp:
        reference = reference_model(entry, torch.device("cpu"), torch.float32, train=False)
        model = dlc_model(entry, 2, reference, Path(tmp), torch.device("cpu"), train=False, fuse=True)
        model.optimize_for_inference(*_dlc_args(entry, inputs))
    layers = overwriting_layers(model)
    if not layers:
        return f"{name}: no residual sum overwrites its input here"
    times: dict[bool, list[float]] = {True: [], False: []}
    outputs = {}
    with torch.inference_mode():
        for r in range(rounds + 1):
            for donated in ((True, False) if r % 2 == 0 else (False, True)):
                for layer in layers:
                    layer.overwrite = donated
                start = time.perf_counter()
                outputs[donated] = entry.run_dlc(model, inputs)
                if r:                                      # round 0 warms both up
                    times[donated].append(time.perf_counter() - start)
    same = torch.equal(outputs[True].float(), outputs[False].float())
    lines = [f"{name}: {len(layers)} residual sums, {rounds} alternating rounds, outputs equal: {same}"]
    for donated, label in ((True, "donated (in place)"), (False, "new tensor")):
        lines.append(f"  {label:20} min {min(times[donated]) * 1e3:7.1f} ms  "
                     f"median {statistics.median(times[donated]) * 1e3:7.1f} ms")
    lines.append(f"  new tensor / donated: min {min(times[False]) / min(times[True]):.3f}, "
                 f"median {statistics.median(times[False]) / statistics.median(times[True]):.3f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet50,mobilenet_v2")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# argument donation, {describe('cpu')}, {args.threads} threads, batch {args.batch}")
    for name in args.models.split(","):
        print(compare(name, args.rounds, args.batch, args.threads), flush=True)


if __name__ == "__main__":
    main()
