"""The benchmark's practical GEMM peak counts every library dlc's inference build may run a linear
layer on: torch.mm, and oneDNN's GEMM on a packed weight, which on AVX-512 AMD CPUs is more than
twice as fast as torch.mm (benchmarks/machine.py)."""
from __future__ import annotations

import pytest
import torch

from benchmarks.machine import cpu_model_and_isa, gemm_peaks, onednn_mm


def _onednn() -> bool:
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


@pytest.mark.skipif(not _onednn(), reason="this torch build has no oneDNN GEMM")
@pytest.mark.parametrize("m, k, n", [(64, 48, 96), (7, 33, 5)])
def test_the_timed_onednn_call_computes_the_product(m, k, n):
    a, b = torch.randn(m, k), torch.randn(k, n)
    torch.testing.assert_close(onednn_mm(a, b)(), a @ b, rtol=1e-4, atol=1e-4)


@pytest.mark.skipif(not _onednn(), reason="this torch build has no oneDNN GEMM")
def test_the_peaks_name_both_libraries():
    peaks = gemm_peaks(seconds=0.06)
    assert set(peaks) == {"torch.mm", "oneDNN packed"} and all(g > 0 for g in peaks.values())


_CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC
flags\t\t: fpu sse2 avx2 fma avx512f avx512bw avx512_bf16 avx512_vnni sha_ni

processor\t: 1
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC
"""


def test_the_machine_line_names_the_cpu_family_and_model_beside_a_bare_model_name():
    # Virtual machines report only "AMD EPYC" for the Zen 3, Zen 4 and Zen 5 kinds alike.
    model, isa = cpu_model_and_isa(_CPUINFO)
    assert model == "AMD EPYC (family 25, model 17)"
    assert isa == ["avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni"]
    assert cpu_model_and_isa("model name\t: Some CPU\nflags\t: sse2\n") == ("Some CPU", [])


def test_the_machine_line_names_an_intel_xeon_and_its_amx_units():
    # The Intel kind (session 13) reports "Intel(R) Xeon(R) Processor" and has AMX tiles for bf16.
    cpuinfo = ("vendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 167\n"
               "model name\t: Intel(R) Xeon(R) Processor\n"
               "flags\t\t: fma avx2 avx512f avx512_bf16 avx512_vnni amx_bf16 avx512_fp16 amx_tile amx_int8\n")
    assert cpu_model_and_isa(cpuinfo) == ("Intel(R) Xeon(R) Processor (family 6, model 167)",
                                          ["avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16"])
