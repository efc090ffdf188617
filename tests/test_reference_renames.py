"""`rename` rules are relative to the block that declares them: a block's rules
apply to the keys under each of its instances, after the enclosing blocks' rules.
Also the small codegen rules that keep generated files lint-clean."""
from __future__ import annotations

from pathlib import Path

import torch

from tests.helpers import compile_to_module, rename_reference_keys

NESTED = """
block Inner(d: int) {
    in x: [B, d]
    rename "dense." -> "proj."
    rename "LayerNorm." -> "norm."
    proj = Linear(d, d)(x)
    norm = LayerNorm(d)(proj)
    out y = norm
}

block Middle(d: int) {
    in x: [B, d]
    out y = Inner(d)(x)
}

model Outer(d: int = 4, n: int = 2) {
    in x: [B, d]
    rename "layer.{i}." -> "layers.{i}."
    layers = repeat(n) Inner(d)(x)
    wrapped = Middle(d)(layers)
    out z = wrapped
}
"""


def _reference_checkpoint() -> dict:
    """Outer's weights, named the way the reference names them."""
    checkpoint = {}
    for prefix in ("layer.0.", "layer.1.", "wrapped.y."):
        checkpoint[prefix + "dense.weight"] = torch.randn(4, 4)
        for name in ("dense.bias", "LayerNorm.weight", "LayerNorm.bias"):
            checkpoint[prefix + name] = torch.randn(4)
    return checkpoint


def test_rules_apply_under_every_instance_of_the_block(tmp_path):
    module = compile_to_module(NESTED, tmp_path, name="nested")
    model = module.Outer()
    checkpoint = _reference_checkpoint()
    renamed = rename_reference_keys(model, checkpoint)
    assert sorted(renamed) == sorted(model.state_dict())
    model.load_reference_state_dict(checkpoint)       # strict
    assert torch.equal(model.layers[1].proj.weight, checkpoint["layer.1.dense.weight"])
    assert torch.equal(model.wrapped.y.norm.bias, checkpoint["wrapped.y.LayerNorm.bias"])


def test_blocks_holding_renaming_blocks_can_load_too(tmp_path):
    module = compile_to_module(NESTED, tmp_path, name="nested")
    assert module.Inner.REFERENCE_RENAMES == (("dense.", "proj."), ("LayerNorm.", "norm."))
    assert not hasattr(module.Middle, "REFERENCE_RENAMES")
    middle = module.Middle(d=4)
    middle.load_reference_state_dict({"y.dense.weight": torch.zeros(4, 4), "y.dense.bias": torch.zeros(4),
                                      "y.LayerNorm.weight": torch.zeros(4), "y.LayerNorm.bias": torch.zeros(4)})
    assert torch.count_nonzero(middle.y.proj.weight) == 0


def test_files_import_only_what_they_use_and_unused_results_are_underscores(tmp_path):
    module = compile_to_module("""
        model Halves(d: int = 4) {
            in x: [B, d]
            first, second = Split([2, 2])(x)
            out y = Linear(2, 2)(second)
        }""", tmp_path, name="halves")
    source = Path(module.__file__).read_text()
    assert "import math" not in source and "import re" not in source
    assert "_, second = x.chunk(2, dim=-1)" in source
