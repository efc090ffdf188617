"""What machine a benchmark ran on, and how fast it multiplies matrices.

Every recorded figure names the CPU model and its vector ISA (the kernels torch, oneDNN, MKL,
ONNX Runtime and OpenVINO pick differ between AVX2 and AVX-512 machines), and GFLOP/s are
put beside the machine's own practical GEMM peak: the best of torch.mm over a few large fp32
(or bf16) shapes at the benchmark's thread count.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16")


def cpu_model_and_isa() -> tuple[str, list[str]]:
    """The CPU's model name and which of ISA_FLAGS it has (Linux /proc/cpuinfo)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown CPU", []
    lines = text.splitlines()
    model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), [])
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
    """The best GFLOP/s torch.mm reaches here over PEAK_SHAPES: the practical peak."""
    import torch
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    best = 0.0
    for m, k, n in PEAK_SHAPES:
        a = torch.randn(m, k, device=device, dtype=dtype)
        b = torch.randn(k, n, device=device, dtype=dtype)
        torch.mm(a, b)
        deadline = time.perf_counter() + seconds / len(PEAK_SHAPES)
        while time.perf_counter() < deadline:
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            torch.mm(a, b)
            if device == "cuda":
                torch.cuda.synchronize()
            best = max(best, 2 * m * k * n / (time.perf_counter() - start) / 1e9)
    return best
