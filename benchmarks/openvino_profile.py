"""Where OpenVINO's forward spends its time, node type by node type: the anchor's side of op_profile.

    .venv/bin/python -m benchmarks.openvino_profile --model t5-small
    .venv/bin/python -m benchmarks.openvino_profile --model resnet50 --nodes 12    # + the slowest nodes

The model is the benchmark's OpenVINO arm (benchmarks/arms.py: an ONNX export of the reference,
compiled for CPU in fp32 with the latency hint) with OpenVINO's own per-node counters on
(`PERF_COUNT`).  Of `--runs` forwards it keeps the fastest one's counters, as a busy machine slows
calls but never speeds them up, and prints each node type's total, count and the kernels
OpenVINO picked for it (`exec_type`, e.g. `gemm_mlas_f32`, `brgconv_avx512_1x1_f32`): what to set
beside `python -m benchmarks.op_profile --model ... --arms "dlc best"`.  Needs the `bench` extra.
"""
from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.arms import export_onnx, reference_model  # noqa: E402
from benchmarks.models import ENTRIES  # noqa: E402


def node_types(info: list, rows: int) -> list[str]:
    """The node types with the most real time in one forward's profiling info, as table rows:
    type, count, ms, and up to three kernel names."""
    total, count, kernels = collections.Counter(), collections.Counter(), collections.defaultdict(set)
    for node in info:
        total[node.node_type] += node.real_time.total_seconds() * 1e3
        count[node.node_type] += 1
        kernels[node.node_type].add(node.exec_type)
    return [f"| {kind} | {count[kind]} | {ms:.2f} | {', '.join(sorted(kernels[kind])[:3])} |"
            for kind, ms in total.most_common(rows)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(ENTRIES), default="t5-small")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rows", type=int, default=14, help="node types printed")
    parser.add_argument("--nodes", type=int, default=0, help="also print the slowest nodes")
    args = parser.parse_args()
    import openvino as ov
    torch.set_num_threads(args.threads)
    entry = ENTRIES[args.model]
    inputs = entry.inputs(args.batch, args.seq, torch.device("cpu"))
    reference = reference_model(entry, torch.device("cpu"), torch.float32, train=False)
    path, names, values = export_onnx(entry, reference, inputs, Path(tempfile.mkdtemp()))
    feeds = {name: value.numpy() for name, value in zip(names, values)}
    compiled = ov.Core().compile_model(str(path), "CPU", {
        "INFERENCE_NUM_THREADS": args.threads, "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32",
        "PERF_COUNT": "YES"})
    request = compiled.create_infer_request()
    ordered = [feeds[port.get_any_name()] for port in compiled.inputs]
    request.infer(ordered)
    best = (float("inf"), [])
    for _ in range(args.runs):
        start = time.perf_counter()
        request.infer(ordered)
        seconds = time.perf_counter() - start
        if seconds < best[0]:
            best = (seconds, request.profiling_info)
    seconds, info = best
    print(f"# {args.model}, OpenVINO {ov.__version__}, batch {args.batch}, {args.threads} thread(s): "
          f"the fastest of {args.runs} forwards, {seconds * 1e3:.1f} ms wall\n")
    print("| node type | nodes | ms | kernels |\n|---|---|---|---|")
    print("\n".join(node_types(info, args.rows)))
    if args.nodes:
        print("\n| node | type | kernel | ms |\n|---|---|---|---|")
        for node in sorted(info, key=lambda n: -n.real_time.total_seconds())[:args.nodes]:
            print(f"| {node.node_name} | {node.node_type} | {node.exec_type} | "
                  f"{node.real_time.total_seconds() * 1e3:.3f} |")


if __name__ == "__main__":
    main()
