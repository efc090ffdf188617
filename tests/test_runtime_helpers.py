"""The runtime helpers (dlc/runtime/helpers.py) as code: what they do, how codegen copies
them (as text, never importing them), and that their names are reserved."""
from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from dlc.runtime import helpers as runtime
from compiler.codegen.helpers import helper_names, helper_sources
from compiler.codegen.names import class_name_problem, module_level_names
from tests.helpers import ROOT


def test_renames_then_transposes_reference_layouts():
    class Inner(nn.Module):
        REFERENCE_RENAMES = (("c_fc.", "hidden."),)
        LAYER_OPS = (("hidden", "TransposedLinear"),)       # its weight loads transposed

        def __init__(self):
            super().__init__()
            self.hidden = nn.Linear(3, 5)

    class Outer(runtime.ReferenceCheckpointMixin, nn.Module):
        REFERENCE_RENAMES = (("h.{i}.", "blocks.{i}."),)

        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([Inner(), Inner()])

    model = Outer()
    weight = torch.randn(3, 5)          # the reference's [in, out] layout
    reference = {f"h.{i}.c_fc.{name}": value for i in range(2)
                 for name, value in (("weight", weight), ("bias", torch.zeros(5)))}
    model.load_reference_state_dict(reference)
    assert torch.equal(model.blocks[1].hidden.weight, weight.t())


def test_the_transposed_reference_layouts_are_the_registry_s():
    """rename_reference_keys transposes the parameters the op registry says a reference stores
    [in, out], for the layers a block's LAYER_OPS names with that op."""
    from compiler.ops import REGISTRY
    declared = {name: tuple(op.reference_transposed) for name, op in REGISTRY.items() if op.reference_transposed}
    assert declared and runtime.REFERENCE_TRANSPOSED_OPS == declared


def test_fold_conv_bn_skips_pairs_an_instance_lacks():
    class Block(nn.Module):
        CONV_BN_FOLDS = (("conv", "bn"), ("conv2", "bn2"))    # conv2/bn2 belong to another configuration

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 4, 3, padding=1)
            self.bn = nn.BatchNorm2d(4)

        def forward(self, x):
            return self.bn(self.conv(x))

    torch.manual_seed(0)
    block = Block().eval()
    block.bn.running_mean.uniform_(-1, 1)
    block.bn.running_var.uniform_(0.5, 2)
    x = torch.randn(1, 2, 5, 5)
    expected = block(x)
    runtime.fold_conv_bn(block)
    assert isinstance(block.bn, nn.Identity)
    torch.testing.assert_close(block(x), expected)


def test_join_fused_keys_concatenates_separate_layers():
    layer = nn.Module()
    layer.qkv = nn.Linear(4, 12)
    layer.register_load_state_dict_pre_hook(runtime.join_fused_keys({"qkv": (("q", 4), ("k", 4), ("v", 4))}))
    parts = {f"{n}.{p}": torch.randn(4, 4) if p == "weight" else torch.randn(4) for n in "qkv" for p in ("weight", "bias")}
    layer.load_state_dict(parts)
    assert torch.equal(layer.qkv.weight, torch.cat([parts["q.weight"], parts["k.weight"], parts["v.weight"]]))


def test_helpers_come_with_the_helpers_they_use():
    sources = "\n".join(helper_sources({"choose_linear_kernels"}))
    assert "class PackedLinear" in sources and "def packed_linear_available" in sources
    assert "DEFAULT_ROWS = 1024" in sources and "# Rows of a linear layer's input" in sources   # constants, commented
    assert "def rename_reference_keys" in "\n".join(helper_sources({"ReferenceCheckpointMixin"}))


def test_every_helper_name_is_reserved():
    assert helper_names() <= module_level_names()
    assert class_name_problem("PackedLinear") is not None
    assert class_name_problem("rename_reference_keys") is not None


def test_no_compiler_module_imports_the_runtime():
    """The compiler reads dlc/runtime/ as text: importing it would import torch."""
    for path in (ROOT / "compiler").rglob("*.py"):
        text = path.read_text()
        # every import of dlc.runtime spells "runtime" (import dlc.runtime, from dlc import runtime, ...):
        # parsing only the modules that mention it: 0.2 s of CPU instead of 1.1 s (measured)
        if "runtime" in path.parts or "runtime" not in text:
            continue
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom):
                names = [f"{node.module}.{a.name}" for a in node.names] + [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            assert not any(n.startswith("dlc.runtime") for n in names), path


def test_compiler_imports_without_torch():
    code = ("import sys; sys.modules['torch'] = None; "
            "from compiler.driver import compile_spec; from pathlib import Path; "
            "assert compile_spec(Path('specs/gpt2.dl')).text")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


@pytest.mark.parametrize("which", ["bert-resnet", "all"])
def test_check_gives_the_same_verdict_from_a_copy_of_the_project(tmp_path, which):
    copy = tmp_path / "elsewhere"
    for name in ("specs", "generated", "stdlib"):
        shutil.copytree(ROOT / name, copy / name)
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    specs = sorted(p.name for p in (copy / "specs").glob("*.dl"))
    if which != "all":          # the fast lane: a transformer and a CNN, both importing the stdlib
        specs = ["bert.dl", "resnet.dl"]
    done = subprocess.run([sys.executable, "-m", "dlc", "compile", "--check", *specs], cwd=copy / "specs",
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert Path(copy / "generated").is_dir()


@pytest.mark.parametrize("file", sorted(p.name for p in (ROOT / "dlc/runtime").glob("*.py") if p.name != "__init__.py"))
def test_every_runtime_file_is_a_module_that_defines_what_its_text_defines(file):
    """Codegen copies runtime files as text (parallel.py as a file of its own): each must also
    import as the module it is, with torch, binding every top-level function and class its text has."""
    import importlib
    module = importlib.import_module(f"dlc.runtime.{file.removesuffix('.py')}")
    tree = ast.parse((ROOT / "dlc/runtime" / file).read_text(encoding="utf-8"))
    defined = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    assert defined and all(callable(getattr(module, name, None)) for name in defined), file
