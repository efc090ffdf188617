"""AlexNet (specs/alexnet.dl) against torchvision's alexnet: parameter count, strict loading
of its state_dict, eval-mode outputs on the same weights, and a few training steps."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from generated import alexnet
from tests.test_parity_vision import count, materialize, randomize, shapes, torchvision_builder
from tests.helpers import rename_reference_keys

ATOL, RTOL = 1e-5, 1e-4


def alexnet_parameters(classes: int = 1000) -> int:
    """Closed form: (k * k * cin + 1) * cout per convolution, (cin + 1) * cout per linear layer."""
    convs = [(11, 3, 64), (5, 64, 192), (3, 192, 384), (3, 384, 256), (3, 256, 256)]
    linears = [(9216, 4096), (4096, 4096), (4096, classes)]
    return sum((k * k * cin + 1) * cout for k, cin, cout in convs) + sum((i + 1) * o for i, o in linears)


def test_parameters_and_keys():
    with torch.device("meta"):
        reference, ours = torchvision_builder("alexnet")(), alexnet.AlexNet()
    assert count(ours) == count(reference) == alexnet_parameters() == 61_100_840
    renamed = rename_reference_keys(ours, reference.state_dict())
    assert shapes(renamed) == shapes(ours.state_dict())


@pytest.mark.parametrize("size", [64, 224])
def test_outputs_match(size):
    reference = randomize(materialize(torchvision_builder("alexnet")), (2, 3, size, size))
    ours = materialize(alexnet.AlexNet)
    result = ours.load_reference_state_dict(reference.state_dict())          # strict
    assert not result.missing_keys and not result.unexpected_keys
    images = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(images), reference(images), atol=ATOL, rtol=RTOL)


@pytest.mark.slow          # a minute or more on a shared 2-core CPU
def test_training_lowers_the_loss(tmp_path):
    from tests.helpers import ROOT, compile_to_module
    module = compile_to_module(ROOT / "specs" / "alexnet.dl", tmp_path, {"num_classes": 10, "dropout": 0.0},
                               name="alexnet10")
    torch.manual_seed(0)
    model = module.AlexNet().train()
    images, labels = torch.randn(8, 3, 64, 64), torch.randint(0, 10, (8,))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    losses = []
    for _ in range(10):
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses
