"""Would dlc's CNNs run faster with their activations in oneDNN's blocked layout (issue 12)?

    GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=17179869184 \\
        .venv/bin/python -m benchmarks.blocked_layout --model resnet50 --rounds 8
    .venv/bin/python -m benchmarks.blocked_layout --model mobilenet_v2 --verbose   # + oneDNN's kernels

One process, the same weights (benchmarks/arms.py), forwards interleaved (the order alternates
each round), each arm's fastest: a shared machine slows calls, never speeds them up.  The arms:

- `dlc best`: -O2 + optimize_for_inference() on the benchmark's images, as bench.py builds it
  (channels-last activations, oneDNN's fused convolution + residual + activation kernels).
- `dlc blocked`: the same -O2 model, batch norms folded, every convolution on an mkldnn tensor
  (`x.to_mkldnn()`, oneDNN's blocked nChw8c layout from the first convolution on) through
  torch.utils.mkldnn.MkldnnConv2d, ReLU and the residual sum in place on the mkldnn tensors, back
  to dense before the pooled features' flatten.  MkldnnConv2d reorders its weight once, but into
  the format of the nhwc kernels (Acdb16a/24a/32a on AVX2): the nChw8c kernels want ABcd8b8a, so
  oneDNN reorders every weight again in every forward (`--verbose` shows it), and no eager API
  asks for the blocked kernels' format.  ReLU6 has no mkldnn
  kernel in eager PyTorch: it goes through a dense copy (and shows what that costs).
- `reference jit`: the torchvision reference through torch.jit.optimize_for_inference, which
  keeps the whole convolution chain in the blocked layout with its own TorchScript-only ops
  (prim::mkldnn_convolution, prim::MKLDNNHardTanh_): the best the blocked layout reaches here.
  dlc's generated code cannot take that route (TorchScript rejects its `del` statements, and
  those ops exist only inside TorchScript graphs).
- `reference channels-last`: the reference in eager mode on channels-last tensors.

`--verbose` runs one more forward of dlc best and of the reference jit under oneDNN's verbose mode
and sums oneDNN's own time per primitive, kernel implementation and source format (brgconv on
nhwc against jit:avx2 on nChw8c, and the reorders each forward pays).  A measurement, not the
benchmark's figure: bench.py runs each arm in its own process.
"""
from __future__ import annotations

import argparse
import collections
import copy
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.arms import _dlc_args, dlc_model, reference_model  # noqa: E402
from benchmarks.models import ENTRIES  # noqa: E402


class BlockedConv(nn.Module):
    """One of dlc best's fused chains (a FusedConv: convolution, residual sum, activation) on mkldnn tensors."""

    def __init__(self, fused: nn.Module) -> None:
        super().__init__()
        from torch.utils import mkldnn as mkldnn_utils      # here: importing it warns 28 times (torch.jit)
        conv = copy.deepcopy(fused.conv).to(memory_format=torch.contiguous_format)
        self.conv = mkldnn_utils.MkldnnConv2d(conv, torch.float32)
        self.activation, self.operand = fused.activation, fused.conv_operand

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        y = self.conv(inputs[max(self.operand, 0)])
        if self.operand >= 0:
            y = y.add_(inputs[1 - self.operand])
        if self.activation == "relu":
            return torch.relu_(y)
        if self.activation == "relu6":  # no mkldnn hardtanh in eager PyTorch
            return y.to_dense().clamp_(0.0, 6.0).to_mkldnn()
        assert self.activation == "none", self.activation
        return y


def blocked_model(model: nn.Module, example: torch.Tensor) -> nn.Module:
    """A copy of the -O2 `model` whose every convolution chain is a BlockedConv."""
    blocked = copy.deepcopy(model).optimize_for_inference(example, kernels="fused")
    for parent in list(blocked.modules()):
        for name, child in list(parent.named_children()):
            if type(child).__name__ == "FusedConv":
                setattr(parent, name, BlockedConv(child))
    left = [n for n, m in blocked.named_modules() if type(m) is nn.Conv2d and not isinstance(m, BlockedConv)]
    assert not left, f"convolutions outside a fused chain: {left}"
    return blocked


def run_blocked(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The generated forward of ResNet / MobileNetV2 up to the pooled features on mkldnn tensors,
    the rest (flatten, dropout, classifier: no mkldnn kernels) on dense ones."""
    h = x.to_mkldnn()
    if hasattr(model, "layer1"):  # ResNet
        h = nn.functional.max_pool2d(model.conv1_relu(model.bn1(model.conv1(h))), 3, stride=2, padding=1)
        for layer in (*model.layer1, *model.layer2, *model.layer3, *model.layer4):
            h = layer(h)
        return model.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(h, 1).to_dense(), 1))
    h = model.stem(h)
    for layer in model.blocks:
        h = layer(h)
    pooled = nn.functional.adaptive_avg_pool2d(model.head(h), 1).to_dense()
    return model.classifier(model.drop(torch.flatten(pooled, 1)))


def fastest_ms(arms: dict, rounds: int) -> dict:
    """Each arm's fastest forward in ms, over `rounds` interleaved rounds (one warm-up each)."""
    best = {name: float("inf") for name in arms}
    with torch.inference_mode():
        for run in arms.values():
            run()
        for r in range(rounds):
            for name in (list(arms) if r % 2 == 0 else list(arms)[::-1]):
                start = time.perf_counter()
                arms[name]()
                best[name] = min(best[name], time.perf_counter() - start)
    return {name: seconds * 1e3 for name, seconds in best.items()}


def _c_stdout_of(run) -> str:
    """What oneDNN's verbose mode prints in one call of `run`: it writes to the C stdout, not Python's."""
    with tempfile.TemporaryFile(mode="w+") as sink, torch.inference_mode():
        sys.stdout.flush()
        saved = os.dup(1)
        os.dup2(sink.fileno(), 1)
        try:
            with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
                run()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        sink.seek(0)
        return sink.read()


def _parse_verbose(text: str) -> dict:
    found: dict = collections.defaultdict(float)
    for line in text.splitlines():
        fields = line.split(",")
        if len(fields) < 10 or fields[2] != "primitive" or fields[3] != "exec":
            continue
        primitive, kernel, descriptors = fields[5], fields[6], fields[8]
        source = descriptors.split()[0].split(":")
        layout = " ".join(d.split(":")[4] for d in descriptors.split()[:2]) if primitive == "reorder" else source[4]
        found[(primitive, kernel, layout)] += float(fields[-1])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet50", choices=("resnet50", "mobilenet_v2"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--verbose", action="store_true", help="oneDNN's time per kernel in one forward of three arms")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    entry, device = ENTRIES[args.model], torch.device("cpu")
    inputs = entry.inputs(args.batch, 128, device)
    (images,) = _dlc_args(entry, inputs)
    reference = reference_model(entry, device, torch.float32, train=False)
    compiled = dlc_model(entry, 2, reference, Path(tempfile.mkdtemp()), device, train=False)
    best = copy.deepcopy(compiled).optimize_for_inference(images)
    blocked = blocked_model(compiled, images)
    jit = torch.jit.optimize_for_inference(torch.jit.script(copy.deepcopy(reference)))
    channels_last = copy.deepcopy(reference).to(memory_format=torch.channels_last)
    images_cl = images.contiguous(memory_format=torch.channels_last)
    arms = {"dlc best": lambda: best(images), "dlc blocked": lambda: run_blocked(blocked, images),
            "reference jit": lambda: jit(images), "reference channels-last": lambda: channels_last(images_cl)}
    with torch.inference_mode():
        expected = reference(images)
        for name, run in arms.items():
            print(f"max |{name} - reference|: {(run() - expected).abs().max().item():.1e}")
    print(f"# {args.model}, batch {args.batch}, {args.threads} thread(s), fastest of {args.rounds} interleaved "
          f"rounds; load average {os.getloadavg()[0]:.2f}; GLIBC_TUNABLES={os.environ.get('GLIBC_TUNABLES', '')}")
    for name, ms in fastest_ms(arms, args.rounds).items():
        print(f"{name:24s} {ms:8.1f} ms")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    if args.verbose:
        for name in ("dlc best", "dlc blocked", "reference jit"):
            times = _parse_verbose(_c_stdout_of(arms[name]))
            print(f"\n## oneDNN time in one forward of {name}: {sum(times.values()):.1f} ms")
            for (primitive, kernel, layout), ms in sorted(times.items(), key=lambda item: -item[1]):
                print(f"{primitive:14s} {kernel:22s} {layout:28s} {ms:8.2f} ms")


if __name__ == "__main__":
    main()
