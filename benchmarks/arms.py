"""The arms of the benchmark: how each contestant is built from the same weights and run.

An arm is a callable of no arguments that runs one forward (inference) or one training
step (forward + backward + AdamW step), built by `build(arm, entry, ...)` in the worker
process that times it.  Weights are the same in every process: the reference is built under
a fixed seed, dlc's models load its state_dict, ONNX Runtime and OpenVINO run an ONNX export
of it.
"""
from __future__ import annotations

import importlib.util
import sys
import time
from types import SimpleNamespace
from collections.abc import Callable
from pathlib import Path

import torch

from benchmarks.models import Entry, load_reference_weights

ROOT = Path(__file__).resolve().parent.parent
INFERENCE_ARMS = ("reference", "dlc -O0", "dlc best", "inductor", "onnxruntime", "openvino")
# Not in the default list: dlc best without the fused epilogue kernels, and dlc best whose fused residual
# sums always write a new tensor (no argument donation), to measure what each adds.
EXTRA_INFERENCE_ARMS = ("dlc best unfused", "dlc best undonated")
TRAINING_ARMS = ("reference", "dlc -O2", "dlc best", "torch.compile(ref)")


def compile_dlc(spec: str, opt_level: int, out_dir: Path):
    """Compile a spec with dlc and import the generated module."""
    sys.path.insert(0, str(ROOT))
    from compiler.driver import compile_spec
    # standalone: one file, loaded by its path, whose helpers an arm may replace (fuse_epilogues)
    result = compile_spec(ROOT / "specs" / f"{spec}.dl", opt_level=opt_level, standalone=True)
    assert result.text is not None, [d.message for d in result.diagnostics]
    name = f"bench_{spec}_O{opt_level}"
    path = out_dir / f"{name}.py"
    path.write_text(result.text)
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def reference_model(entry: Entry, device: torch.device, dtype: torch.dtype, train: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    model = entry.reference().to(device)
    return (model.train() if train else model.eval()).to(dtype=dtype if not train else torch.float32)


def dlc_model(entry: Entry, level: int, reference: torch.nn.Module, tmp: Path, device, train: bool,
              fuse: bool = True):
    module = compile_dlc(entry.spec, level, tmp)
    if not fuse and hasattr(module, "fuse_epilogues"):
        module.fuse_epilogues = lambda *args, **kwargs: ["epilogues: none fused (the benchmark's unfused arm)"]
    model = getattr(module, entry.cls)()
    load_reference_weights(model, reference)
    return (model.train() if train else model.eval()).to(device)


def tensor_inputs(entry: Entry, inputs: dict) -> tuple[list[str], tuple[torch.Tensor, ...]]:
    """The inputs as the positional tensors an exported graph takes (masks as int64, as HF wants)."""
    names = [name for name in ("ids", "mask", "decoder_ids", "images") if name in inputs]
    if "images" in names:
        names = ["images"]
    elif entry.spec != "t5":
        names = ["ids", "mask"]
    values = tuple(inputs[n].long() if n == "mask" else inputs[n] for n in names)
    return names, values


class PositionalReference(torch.nn.Module):
    """The reference with positional tensor inputs and one tensor output, for export."""

    def __init__(self, entry: Entry, model: torch.nn.Module, names: list[str]) -> None:
        super().__init__()
        self.entry, self.model, self.names = entry, model, names

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        named = dict(zip(self.names, tensors))
        if "mask" in named:
            named["mask"] = named["mask"].bool()
        return self.entry.run_reference(self.model, named)


def export_onnx(entry: Entry, reference: torch.nn.Module, inputs: dict, tmp: Path) -> tuple[Path, list[str], tuple]:
    names, values = tensor_inputs(entry, inputs)
    path = tmp / f"{entry.spec}.onnx"
    with torch.no_grad():
        torch.onnx.export(PositionalReference(entry, reference, names), values, str(path), input_names=names,
                          output_names=["out"], dynamo=True, external_data=False)
    return path, names, values


def build_inference(arm: str, entry: Entry, inputs: dict, tmp: Path, device, dtype, threads: int) -> tuple:
    """(run: () -> output tensor, notes) for one inference arm."""
    notes: dict = {}
    reference = reference_model(entry, device, dtype, train=False)
    if arm == "reference":
        return (lambda: entry.run_reference(reference, inputs)), notes
    if arm in ("dlc -O0", "dlc best", *EXTRA_INFERENCE_ARMS):
        start = time.perf_counter()
        model = dlc_model(entry, 0 if arm == "dlc -O0" else 2, reference, tmp, device, train=False,
                          fuse=arm != "dlc best unfused").to(dtype=dtype)
        if arm != "dlc -O0":
            model.optimize_for_inference(*_dlc_args(entry, inputs))
            if arm == "dlc best undonated":
                for layer in model.modules():
                    if hasattr(layer, "overwrite"):
                        layer.overwrite = False    # FusedConv: the residual sum into a new tensor
            notes["choices"] = getattr(model, "inference_summary", [])
            notes["spec -> optimized model s"] = time.perf_counter() - start
        return (lambda: entry.run_dlc(model, inputs)), notes
    if arm == "inductor":
        import torch._inductor.config as inductor_config
        inductor_config.freezing = True          # weights become constants: folded, pre-packed (CPU)
        compiled = torch.compile(reference)
        start = time.perf_counter()
        with torch.no_grad():
            entry.run_reference(compiled, inputs)
        notes["compile s"] = time.perf_counter() - start
        return (lambda: entry.run_reference(compiled, inputs)), notes
    if device.type != "cpu" or dtype != torch.float32:
        raise RuntimeError(f"{arm} runs fp32 on CPU only here")
    path, names, values = export_onnx(entry, reference, inputs, tmp)
    feeds = {name: value.numpy() for name, value in zip(names, values)}
    run = _onnxruntime(path, feeds, threads) if arm == "onnxruntime" else _openvino(path, feeds, threads)
    return (lambda: torch.from_numpy(run())), notes


def _dlc_args(entry: Entry, inputs: dict) -> tuple:
    """The positional inputs entry.run_dlc passes, as example inputs for optimize_for_inference."""
    captured: list = []

    class Probe(torch.nn.Module):
        def forward(self, *args):
            captured.extend(args)
            return SimpleNamespace(last_hidden_state=args[0])   # read like a model's named result

    entry.run_dlc(Probe(), inputs)
    return tuple(captured)


def _onnxruntime(path: Path, feeds: dict, threads: int) -> Callable:
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Idle ORT threads must not spin while another arm's process runs.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda: session.run(None, feeds)[0]


def _openvino(path: Path, feeds: dict, threads: int) -> Callable:
    import openvino as ov
    core = ov.Core()
    compiled = core.compile_model(str(path), "CPU", {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
                                                     "INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()
    ordered = [feeds[port.get_any_name()] for port in compiled.inputs]
    return lambda: request.infer(ordered)[compiled.outputs[0]].copy()


# ---------------------------------------------------------------------- training
def training_loss(output) -> torch.Tensor:
    """A scalar to differentiate: the mean square of the output (the same for every arm)."""
    return output.float().pow(2).mean()


# AdamW's implementations (the same one for every arm): torch's default, which on CPU is the loop
# over parameters, or its multi-tensor (foreach) or fused kernels.
ADAMW = {"default": {}, "foreach": {"foreach": True}, "fused": {"fused": True}}


def build_training(arm: str, entry: Entry, inputs: dict, tmp: Path, device, dtype, adamw: str = "default") -> tuple:
    """(step: () -> loss, notes): forward + backward + AdamW step, autocast to `dtype` if bf16."""
    reference = reference_model(entry, device, dtype, train=True)
    if arm in ("dlc -O2", "dlc best"):
        model = dlc_model(entry, 2, reference, tmp, device, train=True)
        if arm == "dlc best" and hasattr(model, "optimize_for_training"):
            model.optimize_for_training(*_dlc_args(entry, inputs))
        forward = lambda: entry.run_dlc(model, inputs)           # noqa: E731
    else:
        model = torch.compile(reference) if arm == "torch.compile(ref)" else reference
        forward = lambda: entry.run_reference(model, inputs)     # noqa: E731
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, **ADAMW[adamw])

    def step() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            loss = training_loss(forward())
        loss.backward()
        optimizer.step()
        return loss.detach()

    notes: dict = {"choices": list(getattr(model, "training_summary", []))} if arm == "dlc best" else {}
    start = time.perf_counter()
    step()
    notes["first step s"] = time.perf_counter() - start
    return step, notes
