"""The Vision Transformer (specs/vit.dl) against torchvision: ViT-B/16, B/32 and L/16
parameter counts and checkpoint keys, strict loading, eval-mode outputs on the same
weights (a small configuration in the fast lane, B/16 at 224x224 in the slow one), and
a few training steps."""
from __future__ import annotations


import pytest
import torch
import torch.nn.functional as F

from generated import vit
from tests.helpers import ROOT, compile_to_module, rename_reference_keys
from tests.test_parity_vision import count, shapes, torchvision_builder

ATOL, RTOL = 1e-5, 1e-4
SMALL = {"image_size": 32, "patch_size": 8, "num_layers": 2, "num_heads": 4, "hidden_dim": 64, "mlp_dim": 128,
         "num_classes": 10}
FULL = {"vit_b_16": (vit.ViTB16, 86_567_656), "vit_b_32": (vit.ViTB32, 88_224_232),
        "vit_l_16": (vit.ViTL16, 304_326_632)}


def vit_parameters(image: int, patch: int, layers: int, hidden: int, mlp: int, classes: int) -> int:
    """Closed form: patch convolution, class token, positions, per block two LayerNorms, the
    packed attention projections and the MLP, the final LayerNorm and the head."""
    seq = (image // patch) ** 2 + 1
    block = 2 * 2 * hidden + (3 * hidden * hidden + 3 * hidden) + (hidden * hidden + hidden) \
        + (hidden * mlp + mlp) + (mlp * hidden + hidden)
    return (3 * patch * patch * hidden + hidden) + hidden + seq * hidden + layers * block + 2 * hidden \
        + hidden * classes + classes


@pytest.mark.parametrize("name", list(FULL))
def test_full_size_parameters_and_keys(name):
    cls, expected = FULL[name]
    with torch.device("meta"):
        reference, ours = torchvision_builder(name)(), cls()
    assert count(ours) == count(reference) == expected
    renamed = rename_reference_keys(ours, reference.state_dict())
    assert shapes(renamed) == shapes(ours.state_dict())
    ours.load_reference_state_dict(reference.state_dict())          # strict


def test_closed_form_count():
    assert vit_parameters(224, 16, 12, 768, 3072, 1000) == 86_567_656


@pytest.fixture(scope="module")
def small_module(tmp_path_factory):
    return compile_to_module(ROOT / "specs" / "vit.dl", tmp_path_factory.mktemp("vit"), SMALL, name="vit_small")


def randomized_reference(**config):
    import torchvision
    torch.manual_seed(0)
    reference = torchvision.models.VisionTransformer(**config).eval()
    with torch.no_grad():            # torchvision zeroes the class token and the head: give them values
        for tensor in reference.state_dict().values():
            if tensor.is_floating_point():
                tensor.normal_(0.0, 0.2)
    return reference


def test_small_outputs_match(small_module):
    reference = randomized_reference(**SMALL)
    ours = small_module.VisionTransformer().eval()
    result = ours.load_reference_state_dict(reference.state_dict())
    assert not result.missing_keys and not result.unexpected_keys
    assert count(ours) == count(reference) == vit_parameters(32, 8, 2, 64, 128, 10)
    images = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(ours(images), reference(images), atol=ATOL, rtol=RTOL)


@pytest.mark.slow
def test_vit_b_16_outputs_match():
    import torchvision
    reference = torchvision.models.vit_b_16().eval()
    with torch.no_grad():
        reference.class_token.normal_()
        reference.heads.head.weight.normal_(0.0, 0.02)
    ours = vit.ViTB16().eval()
    ours.load_reference_state_dict(reference.state_dict())
    images = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(ours(images), reference(images), atol=ATOL, rtol=RTOL)


def test_training_lowers_the_loss(small_module):
    torch.manual_seed(0)
    model = small_module.VisionTransformer().train()
    images, labels = torch.randn(16, 3, 32, 32), torch.randint(0, 10, (16,))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    # 30 steps: with torchvision's init (a zero head) the loss starts at log(10) and halves after
    # about 22, as torchvision's own VisionTransformer does on these inputs.
    for _ in range(30):
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses
