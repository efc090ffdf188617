"""The vision specs against torchvision: parameter counts and shapes, loading torchvision's
state_dict, eval-mode outputs on the same weights, and a few training steps.

MobileNetV1 has no torchvision model, so it is checked against a closed-form parameter
count and the usual hand-written PyTorch implementation.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from generated import mobilenet, resnet, vgg
from tests.helpers import ROOT, compile_to_module, rename_reference_keys

# torchvision builder -> the generated class that should hold its weights.
VGG = {
    "vgg11": vgg.VGG11, "vgg11_bn": vgg.VGG11BN, "vgg13": vgg.VGG13, "vgg13_bn": vgg.VGG13BN,
    "vgg16": vgg.VGG16, "vgg16_bn": vgg.VGG16BN, "vgg19": vgg.VGG19, "vgg19_bn": vgg.VGG19BN,
}
RESNET = {
    "resnet18": resnet.ResNet18, "resnet34": resnet.ResNet34, "resnet50": resnet.ResNet50,
    "resnet101": resnet.ResNet101, "resnet152": resnet.ResNet152,
}
MODELS = {**VGG, **RESNET, "mobilenet_v2": mobilenet.MobileNetV2}


def torchvision_builder(name: str) -> Callable[[], nn.Module]:
    import torchvision  # tests/conftest.py stubs the compiled ops it cannot load on this torch

    return getattr(torchvision.models, name)


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def shapes(state_dict: dict) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in state_dict.items()}


def randomize(model: nn.Module, input_shape: tuple[int, ...], seed: int = 0) -> nn.Module:
    """Random weights (He-scaled), biases and batch-norm scales and shifts, and batch-norm
    running statistics as one training step on random images leaves them, so that eval-mode
    batch norm neither is the identity nor lets activations blow up."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith(("running_mean", "running_var", "num_batches_tracked")):
                continue
            if tensor.dim() > 1:
                tensor.normal_(0.0, math.sqrt(2.0 / tensor[0].numel()), generator=generator)
            elif name.endswith("weight"):                   # batch-norm scales
                tensor.uniform_(0.5, 1.5, generator=generator)
            else:
                tensor.normal_(0.0, 0.1, generator=generator)
        norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None            # running statistics: the average over the batches seen
        if norms:
            model.train()(torch.randn(input_shape, generator=generator))
    return model.eval()


def materialize(build: Callable[[], nn.Module]) -> nn.Module:
    """`build()` without its own initialisation (VGG's 138M parameters take seconds to init):
    built on the meta device, then given (uninitialised) CPU storage."""
    with torch.device("meta"):
        model = build()
    return model.to_empty(device="cpu")


def reference_and_ours(name: str, input_shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    reference = randomize(materialize(torchvision_builder(name)), input_shape)
    ours = materialize(MODELS[name])
    result = ours.load_reference_state_dict(reference.state_dict())     # strict: every key, both ways
    assert not result.missing_keys and not result.unexpected_keys
    return reference, ours.eval()


def assert_same_outputs(name: str, input_shape: tuple[int, ...]) -> None:
    reference, ours = reference_and_ours(name, input_shape)
    images = torch.randn(input_shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, actual = reference(images), ours(images)
    assert actual.shape == expected.shape
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-4)


# ------------------------------------------------------------------ parameters and names
@pytest.mark.parametrize("name", list(MODELS))
def test_parameters_match_torchvision(name):
    """Same number of parameters; after renaming torchvision's keys, the same keys with the
    same shapes (buffers included), so its state_dict loads strictly."""
    with torch.device("meta"):
        reference, ours = torchvision_builder(name)(), MODELS[name]()
    assert count(ours) == count(reference)
    renamed = rename_reference_keys(ours, reference.state_dict())
    assert shapes(renamed) == shapes(ours.state_dict())
    ours.load_reference_state_dict(reference.state_dict())


@pytest.mark.parametrize("cls, expected", [
    (vgg.VGG, 138_357_544),                 # VGG-16, the default
    (resnet.ResNet, 25_557_032),            # ResNet-50, the default
    (mobilenet.MobileNetV2, 3_504_872),
])
def test_default_configurations(cls, expected):
    with torch.device("meta"):
        assert count(cls()) == expected


def test_resnet_names_are_torchvisions():
    """Only torchvision's nn.Sequential numbering (downsample.0/1) needs renaming."""
    with torch.device("meta"):
        reference, ours = torchvision_builder("resnet50")(), resnet.ResNet50()
    differ = set(reference.state_dict()) ^ set(ours.state_dict())
    assert differ and all(".downsample." in key for key in differ)


# ------------------------------------------------------------------ outputs on the same weights
# Global average pooling (ResNet, MobileNet) and VGG's adaptive pooling to 7x7 take any input
# size the strides allow, so small images exercise every layer.
@pytest.mark.parametrize("name, input_shape", [
    ("resnet18", (2, 3, 64, 64)),
    ("resnet50", (2, 3, 64, 64)),
    ("mobilenet_v2", (2, 3, 224, 224)),
    ("vgg11_bn", (2, 3, 32, 32)),
    ("vgg16", (2, 3, 32, 32)),
])
def test_outputs_match_torchvision(name, input_shape):
    assert_same_outputs(name, input_shape)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["vgg16", "resnet50"])
def test_full_size_outputs_match_torchvision(name):
    assert_same_outputs(name, (2, 3, 224, 224))


# ------------------------------------------------------------------ MobileNetV1
V1_CHANNELS = [64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024]
V1_STRIDES = [1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1]


def mobilenet_v1_parameters(num_classes: int = 1000) -> int:
    """A conv (no bias) + batch norm has cout * cin/groups * k * k + 2 * cout parameters."""
    def conv_bn(cin: int, cout: int, k: int, groups: int = 1) -> int:
        return cout * cin // groups * k * k + 2 * cout
    total, cin = conv_bn(3, 32, 3), 32
    for cout in V1_CHANNELS:
        total += conv_bn(cin, cin, 3, groups=cin) + conv_bn(cin, cout, 1)
        cin = cout
    return total + cin * num_classes + num_classes


class MobileNetV1Reference(nn.Module):
    """MobileNetV1 as it is usually written by hand in PyTorch."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()

        def conv_bn(cin: int, cout: int, stride: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        def conv_dw(cin: int, cout: int, stride: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False), nn.BatchNorm2d(cin),
                    nn.ReLU(inplace=True),
                    nn.Conv2d(cin, cout, 1, 1, 0, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        layers, cin = conv_bn(3, 32, 2), 32
        for cout, stride in zip(V1_CHANNELS, V1_STRIDES):
            layers += conv_dw(cin, cout, stride)
            cin = cout
        self.model = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1))
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.model(x).flatten(1))


def test_mobilenet_v1_parameter_count():
    with torch.device("meta"):
        ours, reference = mobilenet.MobileNetV1(), MobileNetV1Reference()
    assert count(ours) == mobilenet_v1_parameters() == count(reference) == 4_231_976


def test_mobilenet_v1_matches_hand_written_reference():
    reference = randomize(MobileNetV1Reference(), (2, 3, 224, 224))
    ours = mobilenet.MobileNetV1().eval()
    # The layers come in the same order; the names differ, so match the tensors up by position.
    pairs = list(zip(reference.state_dict().items(), ours.state_dict()))
    assert len(pairs) == len(ours.state_dict()) == len(reference.state_dict())
    assert all(value.shape == ours.state_dict()[key].shape for (_, value), key in pairs)
    ours.load_state_dict({key: value for (_, value), key in pairs})
    images = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(ours(images), reference(images), atol=1e-5, rtol=1e-4)


# ------------------------------------------------------------------ training
def test_training_steps_lower_the_loss(tmp_path):
    """ResNet-18 for 10 classes of 32x32 images, compiled with parameter overrides, fits a batch."""
    module = compile_to_module(ROOT / "specs" / "resnet.dl", tmp_path, {"depth": 18, "num_classes": 10},
                               name="resnet18_cifar")
    torch.manual_seed(0)
    model = module.ResNet().train()
    images, labels = torch.randn(16, 3, 32, 32), torch.randint(0, 10, (16,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(5):
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert model(images).shape == (16, 10)
    assert losses[-1] < 0.5 * losses[0], losses
