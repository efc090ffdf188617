"""benchmarks/blocked_layout.py's reading of oneDNN's verbose lines (lines printed on AVX2 Zen 3)."""
import pytest

torch = pytest.importorskip("torch")

from benchmarks.blocked_layout import _parse_verbose  # noqa: E402

LINES = """\
onednn_verbose,v1,primitive,info,template:operation,engine,primitive,implementation,prop_kind,memory_descriptors,attributes,auxiliary,problem_desc,exec_time
onednn_verbose,v1,primitive,exec,cpu,convolution,brgconv_1x1:avx2,forward_training,src:f32::blocked:acdb::f0 wei:f32:a:blocked:Acdb16a::f0 bia:f32:a:blocked:a::f0 dst:f32::blocked:acdb::f0,attr-scratchpad:user,alg:convolution_direct,mb8_ic32oc16_ih112oh112kh1sh1dh0ph0_iw112ow112kw1sw1dw0pw0,1.25
onednn_verbose,v1,primitive,exec,cpu,convolution,brgconv_1x1:avx2,forward_training,src:f32::blocked:acdb::f0 wei:f32:a:blocked:Acdb16a::f0 bia:f32:a:blocked:a::f0 dst:f32::blocked:acdb::f0,attr-scratchpad:user,alg:convolution_direct,mb8_ic32oc16_ih112oh112kh1sh1dh0ph0_iw112ow112kw1sw1dw0pw0,0.5
onednn_verbose,v1,primitive,exec,cpu,reorder,jit:uni,undef,src:f32::blocked:acdb::f0 dst:f32::blocked:Acdb24a::f0,attr-scratchpad:user,,24x96x1x1,0.25
"""


def test_sums_time_per_kernel_and_layout() -> None:
    found = _parse_verbose(LINES)
    assert found == {("convolution", "brgconv_1x1:avx2", "acdb"): 1.75,
                     ("reorder", "jit:uni", "acdb Acdb24a"): 0.25}
