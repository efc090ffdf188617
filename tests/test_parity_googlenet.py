"""GoogLeNet (specs/googlenet.dl) against torchvision's googlenet(aux_logits=False,
init_weights=True): parameter count, strict loading of its state_dict, eval-mode outputs
on the same weights, and a few training steps."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from generated import googlenet
from tests.test_parity_vision import count, randomize, shapes
from tests.helpers import rename_reference_keys

ATOL, RTOL = 1e-5, 1e-4


def reference_googlenet():
    import torchvision
    return torchvision.models.googlenet(aux_logits=False, init_weights=True)


def test_parameters_and_keys():
    with torch.device("meta"):
        reference, ours = reference_googlenet(), googlenet.GoogLeNet()
    assert count(ours) == count(reference) == 6_624_904
    renamed = rename_reference_keys(ours, reference.state_dict())
    assert shapes(renamed) == shapes(ours.state_dict())


@pytest.mark.parametrize("size", [64, pytest.param(224, marks=pytest.mark.slow)])
def test_outputs_match(size):
    torch.manual_seed(0)
    reference = randomize(reference_googlenet(), (2, 3, size, size))
    ours = googlenet.GoogLeNet()
    result = ours.load_reference_state_dict(reference.state_dict())          # strict
    assert not result.missing_keys and not result.unexpected_keys
    images = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(images), reference(images), atol=ATOL, rtol=RTOL)


@pytest.mark.slow          # a minute or more on a shared 2-core CPU
def test_training_lowers_the_loss(tmp_path):
    from tests.helpers import ROOT, compile_to_module
    module = compile_to_module(ROOT / "specs" / "googlenet.dl", tmp_path, {"num_classes": 10, "dropout": 0.0},
                               name="googlenet10")
    torch.manual_seed(0)
    model = module.GoogLeNet().train()
    images, labels = torch.randn(8, 3, 64, 64), torch.randint(0, 10, (8,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(10):      # torchvision's init (truncated normal 0.01) starts slower than torch's defaults
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses
