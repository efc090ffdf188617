"""The benchmark's practical GEMM peak counts every library dlc's inference build may run a linear
layer on: torch.mm, and oneDNN's GEMM on a packed weight, which on AVX-512 AMD CPUs is more than
twice as fast as torch.mm (benchmarks/machine.py)."""
from __future__ import annotations

import pytest
import torch

from benchmarks.machine import gemm_peaks, onednn_mm


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
