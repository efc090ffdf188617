"""The names a generated module must not bind are derived, not hand-kept (issue 14), and a spec
that would bind one gets DLC012: layer names, block names, and the spec's own file name."""
from __future__ import annotations

import ast as pyast
import builtins
import keyword
from pathlib import Path

import pytest
from torch import nn

from compiler.codegen.helpers import HELPERS
from compiler.codegen.names import (
    CLASS_MEMBERS,
    IMPORTED_NAMES,
    class_name_problem,
    helper_names,
    module_name_problem,
    nn_module_attributes,
    output_module_problem,
    reserved_names,
    suggest_module_name,
)
from compiler.driver import check
from tests.helpers import ROOT


def test_the_nn_module_attribute_list_covers_the_installed_torch():
    """Run scripts/derive_reserved_names.py when this fails (a torch upgrade added attributes)."""
    # What libraries patch in at run time counts too (transformers, when the suite has imported it);
    # dunder-like names are refused as such, listed or not.
    missing = {n for n in dir(nn.Module()) if module_name_problem(n) is None}
    assert not missing, f"run scripts/derive_reserved_names.py; missing {sorted(missing)}"


def test_helper_names_are_read_from_the_helpers_source():
    """Exec every helper and compare what it binds with what names.py derived."""
    import math
    import re

    import torch
    from torch.nn import functional
    import functools
    import threading
    import time
    import typing
    from collections.abc import Callable
    from dataclasses import dataclass
    for name in sorted(helper_names()):
        source = HELPERS[name]
        namespace = {"torch": torch, "nn": nn, "F": functional, "functools": functools, "math": math, "re": re,
                     "threading": threading, "time": time, "typing": typing, "dataclass": dataclass, "Callable": Callable}
        before = set(namespace)
        exec(compile(source, "<helper>", "exec"), namespace)
        assert set(namespace) - before - {"__builtins__"} <= helper_names()
    assert {"PackedLinear", "packed_linear_available", "join_fused_keys", "SinusoidalPositions"} <= helper_names()


def _class_level_names(path: Path) -> set[str]:
    tree = pyast.parse(path.read_text())
    names: set[str] = set()
    for cls in (n for n in tree.body if isinstance(n, pyast.ClassDef)):
        bases = {pyast.unparse(b) for b in cls.bases}
        if "nn.Module" not in bases or cls.name in helper_names():
            continue
        for stmt in cls.body:
            if isinstance(stmt, (pyast.FunctionDef, pyast.ClassDef)):
                names.add(stmt.name)
            elif isinstance(stmt, pyast.Assign):
                names.update(t.id for t in stmt.targets if isinstance(t, pyast.Name))
    return names


def test_every_member_a_generated_class_defines_is_reserved():
    """The generated classes in generated/ define nothing that CLASS_MEMBERS does not list."""
    found = set().union(*(_class_level_names(p) for p in (ROOT / "generated").glob("*.py")))
    assert found and found <= CLASS_MEMBERS, found - CLASS_MEMBERS


def test_module_level_names_of_generated_files_are_reserved():
    for path in (ROOT / "generated").glob("*.py"):
        if path.stem in ("dlc_parallel", "dlc_runtime"):      # the runtimes: modules of their own, no model in them
            continue
        tree = pyast.parse(path.read_text())
        for stmt in tree.body:
            if isinstance(stmt, (pyast.Import, pyast.ImportFrom)):
                assert {a.asname or a.name for a in stmt.names} <= IMPORTED_NAMES
            elif isinstance(stmt, (pyast.FunctionDef, pyast.ClassDef)) and stmt.name in helper_names():
                assert class_name_problem(stmt.name)


def test_the_reserved_set_enumerated():
    """Every reserved name, by category, is refused where it would do harm."""
    categories = reserved_names()
    assert set(categories) == {"keyword", "soft keyword", "builtin", "nn.Module attribute",
                               "generated class member", "generated module name"}
    assert categories["keyword"] == set(keyword.kwlist) and categories["builtin"] == set(dir(builtins))
    for name in categories["nn.Module attribute"] | categories["generated class member"]:
        assert module_name_problem(name), name                 # never a layer name
    for name in categories["generated module name"] | categories["keyword"] | categories["builtin"]:
        assert class_name_problem(name), name                  # never a block or model name
    assert module_name_problem("encoder") is None and class_name_problem("Encoder") is None


def _layers_spec(names: list[str]) -> str:
    lines = ["model M(d: int = 4) {", "  in x0: [B, d]"]
    lines += [f"  {name} = Linear(d, d)(x{i})\n  x{i + 1} = ReLU()({name})" for i, name in enumerate(names)]
    return "\n".join(lines + [f"  out y = x{len(names)}", "}"]) + "\n"


def test_layer_names_that_shadow_module_attributes_or_class_members_are_dlc012(tmp_path):
    names = sorted(n for n in nn_module_attributes() | CLASS_MEMBERS if n.isidentifier() and not keyword.iskeyword(n)
                   and n not in {"forward"} and n[:1] != "x")
    path = tmp_path / "spec.dl"
    path.write_text(_layers_spec(names))
    result = check(path)
    flagged = {d.message.split("`")[1] for d in result.diagnostics if d.code == "DLC012"}
    assert flagged == set(names), set(names) - flagged
    for d in result.diagnostics:
        assert d.code == "DLC012" and d.span.line > 2


@pytest.mark.parametrize("name", sorted(helper_names() | IMPORTED_NAMES))
def test_block_names_that_shadow_emitted_helpers_or_imports_are_dlc012(tmp_path, name):
    path = tmp_path / "spec.dl"
    path.write_text(f"block {name}(d: int = 4) {{\n  in x: [B, d]\n  out y = Linear(d, d)(x)\n}}\n"
                    f"model M(d: int = 4) {{\n  in x: [B, d]\n  out y = {name}(d)(x)\n}}\n")
    assert "DLC012" in [d.code for d in check(path, all_blocks=True).diagnostics]


@pytest.mark.parametrize("stem, suggestion", [
    ("torch", "torch_model"), ("os", "os_model"), ("my-model", "my_model"), ("1abc", "model_1abc"),
    ("class", "class_model"), ("__init__", "init"), ("re", "re_model"), ("typing", "typing_model"),
])
def test_spec_file_names_that_cannot_be_modules_are_dlc012_with_a_suggestion(tmp_path, stem, suggestion):
    path = tmp_path / f"{stem}.dl"
    path.write_text("model M(d: int = 4) {\n  in x: [B, d]\n  out y = Linear(d, d)(x)\n}\n")
    (d,) = check(path).diagnostics
    assert d.code == "DLC012" and d.hint == f"rename the spec to `{suggestion}.dl`"
    assert output_module_problem(suggest_module_name(stem)) is None


def test_library_files_are_not_held_to_module_names(tmp_path):
    """A file without a model produces no module, so its name may be anything."""
    path = tmp_path / "my-layers.dl"
    path.write_text("block Layer(d: int = 4) {\n  in x: [B, d]\n  out y = Linear(d, d)(x)\n}\n")
    assert check(path, all_blocks=True).diagnostics == []


def test_soft_keywords_are_importable_module_names(tmp_path):
    path = tmp_path / "match.dl"
    path.write_text("model M(d: int = 4) {\n  in x: [B, d]\n  out y = Linear(d, d)(x)\n}\n")
    assert check(path).diagnostics == []
