"""What machine a benchmark ran on, and how fast it multiplies matrices.

Every recorded figure names the CPU model and its vector ISA (the kernels torch, oneDNN, MKL,
ONNX Runtime and OpenVINO pick differ between AVX2 and AVX-512 machines), and GFLOP/s are
put beside the machine's own practical GEMM peak: the best of torch.mm and (on CPU) oneDNN's GEMM
on a pre-packed weight over a few large fp32 (or bf16) shapes at the benchmark's thread count.
"""
from __future__ import annotations

import functools
import os
import time
from pathlib import Path

ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16")


def cpu_model_and_isa(cpuinfo: str | None = None) -> tuple[str, list[str]]:
    """The CPU's model name and which of ISA_FLAGS it has (Linux /proc/cpuinfo).

    The name carries the CPU family and model numbers: virtual machines often report only
    "AMD EPYC" or "Intel(R) Xeon(R) Processor", and the Zen 3 (family 25, model 1), Zen 4 (family
    25, model 17), Zen 5 (family 26) and Intel Xeon (family 6, model 167, with AMX) machines this
    project runs on differ in kernels and speed.  `cpuinfo` is the
    file's text, read here when not given."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return "unknown CPU", []
    lines = cpuinfo.splitlines()

    def field(name: str) -> str | None:
        return next((line.split(":", 1)[1].strip() for line in lines
                     if line.split(":", 1)[0].strip() == name), None)

    model = field("model name") or "?"
    numbers = [f"{name} {value}" for name, value in (("family", field("cpu family")), ("model", field("model")))
               if value]
    if numbers:
        model += f" ({', '.join(numbers)})"
    flags = (field("flags") or "").split()
    return model, [flag for flag in ISA_FLAGS if flag in flags]


def cpu_description() -> str:
    model, isa = cpu_model_and_isa()
    return f"{model}, {os.cpu_count()} logical CPUs, ISA: {' '.join(isa) or 'no AVX2'}"


def describe(device: str) -> str:
    """One line naming the machine the figures belong to (the GPU too, on CUDA)."""
    text = cpu_description()
    if device == "cuda":
        import torch
        text += f"; GPU: {torch.cuda.get_device_name()}"
    return text


# (M, K, N): BERT-base's projections and FFN at batch 8 x 128 tokens, and a square one.
PEAK_SHAPES = ((1024, 768, 3072), (1024, 3072, 768), (2048, 2048, 2048))


def gemm_peak_gflops(device: str = "cpu", dtype_name: str = "fp32", seconds: float = 1.0) -> float:
    """The practical peak: the best GFLOP/s any GEMM library reaches here over PEAK_SHAPES."""
    return max(gemm_peaks(device, dtype_name, seconds).values())


def gemm_peaks(device: str = "cpu", dtype_name: str = "fp32", seconds: float = 1.0) -> dict[str, float]:
    """The best GFLOP/s of each GEMM library over PEAK_SHAPES: torch.mm (MKL on CPU, cuBLAS on CUDA)
    and, on CPU, oneDNN's GEMM on a pre-packed weight, the kernel dlc's inference build may choose.
    Both count: on an AVX-512 AMD EPYC (Zen 5) torch.mm reached 193-201 GFLOP/s at 2 threads and
    oneDNN 449-458, so a peak of torch.mm alone put models above "1.0 of the peak"; on the AVX2
    Zen 3 machines MKL was the faster of the two (166-173 against 131-144)."""
    import torch
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    share = seconds / len(PEAK_SHAPES)
    peaks = {"torch.mm": 0.0}
    onednn = device == "cpu" and torch.backends.mkldnn.is_available() and all(
        hasattr(torch.ops.mkldnn, op) for op in ("_reorder_linear_weight", "_linear_pointwise"))
    for m, k, n in PEAK_SHAPES:
        a = torch.randn(m, k, device=device, dtype=dtype)
        b = torch.randn(k, n, device=device, dtype=dtype)
        flops = 2 * m * k * n
        peaks["torch.mm"] = max(peaks["torch.mm"], flops / _fastest(functools.partial(torch.mm, a, b), device, share) / 1e9)
        if not onednn:
            continue
        try:
            seconds_each = _fastest(onednn_mm(a, b), device, share)
        except RuntimeError:  # a dtype this build's oneDNN GEMM does not take
            onednn = False
            continue
        peaks["oneDNN packed"] = max(peaks.get("oneDNN packed", 0.0), flops / seconds_each / 1e9)
    return peaks


def onednn_mm(a, b):
    """A call computing a @ b with oneDNN's GEMM, b packed once for a's rows (as dlc packs a linear
    layer's weight)."""
    import torch
    packed = torch.ops.mkldnn._reorder_linear_weight(b.t().contiguous(), a.shape[0])
    return lambda: torch.ops.mkldnn._linear_pointwise(a, packed, None, "none", [], "")


def _fastest(call, device: str, seconds: float) -> float:
    """The fastest of the calls that fit in `seconds`, after one warm-up call."""
    call()
    synchronize = device == "cuda"
    if synchronize:
        import torch
    best, deadline = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < deadline or best == float("inf"):
        if synchronize:
            torch.cuda.synchronize()
        start = time.perf_counter()
        call()
        if synchronize:
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best
