"""Where a CNN's inference time goes, convolution by convolution: dlc best against ONNX Runtime.

    .venv/bin/python -m benchmarks.cnn_layers --model mobilenet_v2                 # 2 threads, wall
    .venv/bin/python -m benchmarks.cnn_layers --model resnet50 --threads 1 --cpu  # thread CPU time

Both arms are built in this one process on the same weights (benchmarks/arms.py): dlc best (-O2 +
optimize_for_inference() with the benchmark's images) and ONNX Runtime (ORT_ENABLE_ALL, an ONNX
export of the reference).  Each of dlc best's convolution layers is timed in place, in forwards of
the whole model (a forward hook pair around it), and each ONNX Runtime node by its profiler
(SessionOptions.enable_profiling); a layer's figure is its fastest over `--runs` forwards, as a
busy machine slows calls but never speeds them up.  Rows match a dlc layer to the ONNX Runtime
node with the same input and weight shapes; the table prints each shape's layers summed, the
GFLOP/s they reach, and which side is faster, then the time outside convolutions on each side.

`--cpu` (with `--threads 1`) times dlc's layers by the thread's CPU time, which preemption by
other processes does not inflate; ONNX Runtime's profiler gives wall time only, so compare the
two sides' whole-forward CPU times (printed too) rather than their rows there.  Not the
benchmark's figure: bench.py runs each arm in its own process.
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.arms import _dlc_args, dlc_model, export_onnx, reference_model  # noqa: E402
from benchmarks.models import ENTRIES  # noqa: E402


def conv_of(module: torch.nn.Module) -> torch.nn.Conv2d | None:
    """The convolution a layer of the optimized model computes: a FusedConv's, or a plain one."""
    if type(module).__name__ == "FusedConv":
        return module.conv
    return module if isinstance(module, torch.nn.Conv2d) else None


def time_dlc_layers(model, run, runs: int, clock) -> tuple[dict, float]:
    """(input, weight, output shapes, kernel) -> [fastest seconds of each layer of that key], and the
    fastest whole forward, over `runs` forwards."""
    per_layer: dict[int, list[float]] = collections.defaultdict(list)
    keys, starts, hooks = {}, {}, []
    fused = [m for m in model.modules() if type(m).__name__ == "FusedConv"]
    inside = {id(m.conv) for m in fused}  # timed as part of the fused layer around them
    plain = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and id(m) not in inside]
    for module in fused + plain:
        conv = conv_of(module)
        kernel = "fused" if type(module).__name__ == "FusedConv" else "plain"

        def before(mod, args, kernel=kernel, conv=conv):
            x = args[max(getattr(mod, "conv_operand", -1), 0)]
            keys[id(mod)] = (tuple(x.shape), tuple(conv.weight.shape), kernel)
            starts[id(mod)] = clock()

        def after(mod, args, out):
            per_layer[id(mod)].append(clock() - starts[id(mod)])
            keys[id(mod)] = (*keys[id(mod)][:2], tuple(out.shape), keys[id(mod)][-1])

        hooks += [module.register_forward_pre_hook(before), module.register_forward_hook(after)]
    # A forward hook turns argument donation off (it could keep a tensor a later layer overwrites);
    # these keep none, so the residual sums run in place as they do unhooked.
    runtime = type(fused[0]).forward.__globals__ if fused else {}    # the generated module's namespace
    hooked = runtime.get("_hooks_anywhere")
    if hooked is not None:
        runtime["_hooks_anywhere"] = lambda model: False
    whole = []
    try:
        with torch.inference_mode():
            run()
            per_layer.clear()
            for _ in range(runs):
                start = clock()
                run()
                whole.append(clock() - start)
    finally:
        if hooked is not None:
            runtime["_hooks_anywhere"] = hooked
        for hook in hooks:
            hook.remove()
    found: dict[tuple, list[float]] = collections.defaultdict(list)
    for layer, times in per_layer.items():
        found[keys[layer]].append(min(times))
    return found, min(whole)


def ort_session(path: Path, threads: int, profile_prefix: Path):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.enable_profiling, options.profile_file_prefix = True, str(profile_prefix)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def time_ort_nodes(session, feeds: dict, runs: int, clock) -> tuple[dict, float, float]:
    """(input, weight, output shapes) -> [fastest seconds of each Conv node of that key], the other
    nodes' seconds, and the fastest whole run (by `clock`)."""
    whole = []
    session.run(None, feeds)
    for _ in range(runs):
        start = clock()
        session.run(None, feeds)
        whole.append(clock() - start)
    events = json.loads(Path(session.end_profiling()).read_text())
    per_node: dict[str, list[float]] = collections.defaultdict(list)
    shapes = {}
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            per_node[event["name"]].append(event["dur"] / 1e6)
            shapes[event["name"]] = (event["args"].get("op_name"), event["args"].get("input_type_shape", []),
                                     event["args"].get("output_type_shape", []))
    convs: dict[tuple, list[float]] = collections.defaultdict(list)
    other = 0.0
    for node, times in per_node.items():
        op, inputs, outputs = shapes[node]
        if op == "Conv" and len(inputs) >= 2 and outputs:
            x, w, y = (tuple(next(iter(i.values()))) for i in (*inputs[:2], outputs[0]))
            convs[(x, w, y)].append(min(times))
        else:
            other += min(times)
    return convs, other, min(whole)


def gflop(w: tuple, y: tuple) -> float:
    """Multiply-adds x 2 of a convolution by weight `w` [out, in / groups, kh, kw] giving output `y`."""
    return 2 * y[0] * y[2] * y[3] * w[0] * w[1] * w[2] * w[3] / 1e9


def table(dlc: dict, ort: dict) -> list[str]:
    """One row per convolution shape: dlc's layers of that shape summed, ONNX Runtime's nodes of it."""
    lines = [f"{'input':>18} {'weight':>18} {'stride':>6} {'n':>3} {'dlc':>6} {'dlc ms':>8} {'GF/s':>5} "
             f"{'ort ms':>8} {'GF/s':>5} {'faster':>6}"]
    rows = []
    for (x, w, y, kernel), times in dlc.items():
        rows.append((sum(times), x, w, x[2] // y[2], len(times), kernel, sum(ort.get((x, w, y), [])),
                     gflop(w, y) * len(times)))
    for dlc_s, x, w, stride, count, kernel, ort_s, work in sorted(rows, reverse=True):
        rate = lambda s: f"{work / s:5.0f}" if s else "    -"  # noqa: E731
        faster = "-" if not ort_s else "dlc" if dlc_s <= ort_s else "ort"
        lines.append(f"{str(list(x)):>18} {str(list(w)):>18} {stride:6} {count:3} {kernel:>6} {dlc_s * 1e3:8.2f} "
                     f"{rate(dlc_s)} {ort_s * 1e3:8.2f} {rate(ort_s)} {faster:>6}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobilenet_v2", choices=[n for n, e in ENTRIES.items() if e.spec in
                                                                    ("resnet", "mobilenet", "vgg")])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--cpu", action="store_true", help="time dlc's layers by thread CPU time (needs --threads 1)")
    args = parser.parse_args()
    if args.cpu and args.threads != 1:
        parser.error("--cpu times one thread's CPU: use it with --threads 1")
    torch.set_num_threads(args.threads)
    clock = time.thread_time if args.cpu else time.perf_counter
    entry, device = ENTRIES[args.model], torch.device("cpu")
    inputs = entry.inputs(args.batch, 128, device)
    tmp = Path(tempfile.mkdtemp())
    reference = reference_model(entry, device, torch.float32, train=False)
    model = dlc_model(entry, 2, reference, tmp, device, train=False)
    model.optimize_for_inference(*_dlc_args(entry, inputs))
    dlc, dlc_whole = time_dlc_layers(model, lambda: entry.run_dlc(model, inputs), args.runs, clock)
    path, names, values = export_onnx(entry, reference, inputs, tmp)
    session = ort_session(path, args.threads, tmp / "ort_profile")
    ort, ort_other, ort_whole = time_ort_nodes(session, {n: v.numpy() for n, v in zip(names, values)}, args.runs,
                                               clock)
    unit = "thread CPU" if args.cpu else "wall"
    print(f"# {args.model}, batch {args.batch}, {args.threads} thread(s), fastest of {args.runs} forwards ({unit} "
          f"for dlc and the whole forwards; ONNX Runtime's nodes: profiler wall time)")
    print("\n".join(line for line in model.inference_summary if line.startswith(("whole model", "channels"))))
    print("\n".join(table(dlc, ort)))
    dlc_convs = sum(sum(t) for t in dlc.values())
    ort_convs = sum(sum(t) for t in ort.values())
    print(f"\nconvolutions: dlc {dlc_convs * 1e3:.1f} ms, onnxruntime {ort_convs * 1e3:.1f} ms")
    print(f"whole forward: dlc {dlc_whole * 1e3:.1f} ms ({(dlc_whole - dlc_convs) * 1e3:.1f} outside its "
          f"convolutions), onnxruntime {ort_whole * 1e3:.1f} ms ({ort_other * 1e3:.1f} in its other nodes)")


if __name__ == "__main__":
    main()
