"""Generated forward() code lets each intermediate value go after its last reader (`del`),
as hand-written code does by reassigning `x`: checked by watching tensors die, with weak
references, while the model runs; outputs are unchanged (the parity tests compare them)."""
from __future__ import annotations

import weakref

import torch

from compiler.codegen.lifetimes import last_readers
from compiler.driver import check
from tests.helpers import ROOT, compile_to_module


def test_a_bottleneck_frees_its_first_convolution_before_the_last_one_runs(tmp_path):
    module = compile_to_module(ROOT / "specs" / "resnet.dl", tmp_path, {"depth": 50, "num_classes": 10},
                               opt_level=0, name="resnet50_O0")
    model = module.ResNet().eval()
    block = model.layer1[1]                     # conv1 -> bn1 -> relu -> conv2 -> ... -> conv3 -> bn3 (+ x)
    seen: dict[str, weakref.ref] = {}
    alive_at_conv3: list[bool] = []

    def watch(name: str):
        def hook(module, args, out) -> None:          # returns None: the output is left as it is
            seen[name] = weakref.ref(out)
        return hook

    def look(module, args) -> None:
        alive_at_conv3.extend(seen[k]() is not None for k in ("conv1", "conv2"))

    block.conv1.register_forward_hook(watch("conv1"))
    block.conv2.register_forward_hook(watch("conv2"))
    block.conv3.register_forward_pre_hook(look)
    with torch.no_grad():
        model(torch.randn(1, 3, 64, 64))
    # conv1's and conv2's outputs were read by their batch norms, then released
    assert alive_at_conv3 == [False, False]


def test_outputs_and_inputs_are_never_released():
    result = check(ROOT / "tests" / "golden" / "tiny.dl")
    for graph in result.program.graphs.values():
        dying = {value for values in last_readers(graph, graph.ordered()).values() for value in values}
        assert not dying & {(o.node, o.index) for o in graph.outputs}
        assert not any(graph.node(src).kind == "input" for src, _ in dying)
