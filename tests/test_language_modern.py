"""Language features of issue 11: renames that drop a prefix or hold a placeholder inside a
dotted component, list values for -D, a block shadowing a primitive (DLC022), and the
per-op reference of `dlc explain OP` and `dlc ops`."""
from __future__ import annotations

import pytest
import torch

from compiler.cli import _override, main
from compiler.driver import check
from compiler.ops import REGISTRY
from compiler.ops.docs import describe, signature
from tests.helpers import compile_to_module, rename_reference_keys


def diagnostics(tmp_path, source: str):
    path = tmp_path / "spec.dl"
    path.write_text(source)
    return check(path).diagnostics


# ---------------------------------------------------------------------- renames
def test_rename_drops_a_prefix_and_matches_inside_a_component(tmp_path):
    module = compile_to_module(
        "block Layer(d: int) {\n  in x: [B, d]\n  linear = Linear(d, d)\n  out y = linear(x)\n  rename \"mlp.fc_in_\" -> \"linear.\"\n}\n"
        "model M(d: int = 4) {\n  in x: [B, d]\n  layers = repeat(2) Layer(d)(x)\n  out y = layers\n"
        "  rename \"body.layers.block_{i}.\" -> \"layers.{i}.\"\n  rename \"wrapper.\" -> \"\"\n}", tmp_path)
    model = module.M()
    checkpoint = {"body.layers.block_0.mlp.fc_in_weight": torch.ones(4, 4), "body.layers.block_0.mlp.fc_in_bias": torch.zeros(4),
                  "body.layers.block_1.mlp.fc_in_weight": torch.eye(4), "wrapper.layers.1.linear.bias": torch.ones(4)}
    renamed = rename_reference_keys(model, checkpoint)
    assert sorted(renamed) == ["layers.0.linear.bias", "layers.0.linear.weight", "layers.1.linear.bias",
                               "layers.1.linear.weight"]
    model.load_reference_state_dict(checkpoint)
    assert torch.equal(model.layers[1].linear.weight, torch.eye(4))


@pytest.mark.parametrize("rule, message", [
    ('"" -> "x."', "not a checkpoint key prefix"),
    ('"a.{i}{j}." -> "b."', "side by side"),
    ('"a..b" -> "c."', "not a checkpoint key prefix"),
])
def test_bad_renames(tmp_path, rule, message):
    found = diagnostics(tmp_path, f"model M() {{\n  in x: [B, 4]\n  out y = ReLU()(x)\n  rename {rule}\n}}")
    assert [d.code for d in found if d.is_error] == ["DLC039"] and message in found[0].message


# ---------------------------------------------------------------------- -D
def test_override_values_include_lists():
    assert _override("widths=[64, 128]") == ("widths", [64, 128])
    assert _override("w=[]") == ("w", [])
    assert _override("kinds=[\"relu\", \"gelu\"]") == ("kinds", ["relu", "gelu"])
    assert _override("p=0.1") == ("p", 0.1) and _override("on=true") == ("on", True)


def test_list_override_compiles(tmp_path):
    module = compile_to_module(
        "model M(widths: [int] = [4, 8]) {\n  in x: [B, 4]\n"
        "  h = repeat(len(widths), i) Linear(if i == 0 then 4 else widths[i - 1], widths[i])(x)\n  out y = h\n}",
        tmp_path, overrides={"widths": [4, 16, 2]})
    assert module.M()(torch.randn(3, 4)).shape == (3, 2)


# ---------------------------------------------------------------------- a block named like an op
def test_block_shadowing_an_op_warns_and_is_used(tmp_path):
    source = ("block Linear(d: int) {\n  in x: [B, d]\n  out y = ReLU()(x)\n}\n"
              "model M() {\n  in x: [B, 4]\n  out y = Linear(4)(x)\n}")
    found = diagnostics(tmp_path, source)
    assert [(d.code, d.severity.value, d.span.line) for d in found] == [("DLC022", "warning", 1)]
    module = compile_to_module(source, tmp_path, name="shadow")
    x = torch.randn(2, 4)
    assert torch.equal(module.M()(x), torch.relu(x))         # the block, not nn.Linear


# ---------------------------------------------------------------------- per-op reference
def test_explain_documents_an_op(capsys):
    assert main(["explain", "conv2d"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("Conv2d(in_channels: int") and "kernel_size" in text and "inputs:" in text
    assert "stride: int | list = 1" in text and "state: a submodule" in text


def test_explain_unknown_name(capsys):
    assert main(["explain", "Nonsense"]) == 2
    assert "unknown code or op Nonsense" in capsys.readouterr().err


def test_ops_lists_every_op(capsys):
    assert main(["ops"]) == 0
    text = capsys.readouterr().out
    for name, op in REGISTRY.items():
        assert signature(op) in text, name


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_op_is_documented(name):
    op = REGISTRY[name]
    text = describe(op)
    assert op.doc.strip() and len(op.doc) > 5
    assert text.splitlines()[0] == signature(op)
    for field in op.attrs.model_fields:
        assert field in text or field in ("inplace", "fused", "sources"), field


def test_rename_reshapes_on_load(tmp_path):
    module = compile_to_module(
        "model M(d: int = 4) {\n  in x: [B, T, d]\n  cls = Parameter([1, 1, d])()\n"
        "  out y = Concat(1)(Expand([B, -1, -1])(cls), x)\n  rename \"cls_token\" -> \"cls\" as [1, 1, d]\n}", tmp_path)
    model = module.M()
    assert module.M.REFERENCE_RENAMES == (("cls_token", "cls", (1, 1, 4)),)
    model.load_reference_state_dict({"cls_token": torch.arange(4.0)[None]})          # [1, 4] in the checkpoint
    assert model.cls.shape == (1, 1, 4) and torch.equal(model.cls.flatten(), torch.arange(4.0))


@pytest.mark.parametrize("shape", ['[0, 4]', '"x"', '[-1, -1]', '[2.5]'])
def test_rename_shape_errors(tmp_path, shape):
    found = diagnostics(tmp_path, f"model M() {{\n  in x: [B, 4]\n  out y = ReLU()(x)\n  rename \"a\" -> \"b\" as {shape}\n}}")
    assert [d.code for d in found if d.is_error] == ["DLC039"] and "`as` takes" in found[0].message
