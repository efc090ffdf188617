"""Helpers for tests: compile a spec (or source text) and import the result."""
from __future__ import annotations

import importlib.util
import itertools
import os
import sys
from pathlib import Path
from types import ModuleType

from compiler import __version__
from compiler.codegen.runtime_module import RUNTIME_MODULE, imported_runtime_names, runtime_module
from compiler.driver import compile_spec

ROOT = Path(__file__).resolve().parent.parent
_counter = itertools.count()


def compile_to_module(spec: Path | str, tmp_path: Path, overrides: dict | None = None, opt_level: int = 1,
                      name: str = "spec", inference: bool = False) -> ModuleType:
    """Compile a spec file, or dlc source text, and import the generated module (`inference`:
    as `dlc compile --inference` builds it)."""
    if isinstance(spec, str) and not spec.endswith(".dl"):
        path = tmp_path / f"{name}.dl"
        path.write_text(spec)
        spec = path
    return import_source(compiled_text(Path(spec), overrides, opt_level, inference), tmp_path, name)


# (spec, its folder's .dl files, options) -> generated text: many tests compile the same spec with the
# same options (the parity, -O level and init suites each build BERT, GPT-2, ResNet...), and a compile
# is deterministic (tests/test_cli.py checks it), so each worker compiles each once.  Every test still
# imports a module of its own.
_COMPILED: dict[tuple, str] = {}


def compiled_text(spec: Path, overrides: dict | None = None, opt_level: int = 1, inference: bool = False) -> str:
    """The generated module of a spec that compiles (asserted), compiled once per worker."""
    spec = spec.resolve()
    folder = tuple((p.name, p.read_bytes()) for p in sorted(spec.parent.glob("*.dl")))
    key = (spec, folder, repr(sorted((overrides or {}).items())), opt_level, inference,
           os.environ.get("DLC_PATH"), os.getcwd())
    if key not in _COMPILED:
        result = compile_spec(spec, opt_level=opt_level, overrides=overrides, inference=inference)
        assert result.ok and result.text is not None, "\n".join(d.message for d in result.diagnostics)
        _COMPILED[key] = result.text
    return _COMPILED[key]


def import_source(text: str, tmp_path: Path, name: str = "spec") -> ModuleType:
    """Import generated Python source as a fresh module."""
    return import_generated_text(text, tmp_path / f"dlc_test_{name}_{next(_counter)}", name)


def import_generated_text(text: str, folder: Path, name: str = "spec") -> ModuleType:
    """Import generated source as `dlc compile` leaves it: the module `name` of a fresh package in
    `folder` (made here), with the dlc_runtime module it imports beside it; what
    `from generated.x import M` does, under a package name no other test uses."""
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder / f"{name}.py").write_text(text)
    names = imported_runtime_names(text)
    if names:
        (folder / f"{RUNTIME_MODULE}.py").write_text(runtime_module(names, __version__))
    package = f"{folder.name}_{next(_counter)}"
    found = importlib.util.spec_from_file_location(package, folder / "__init__.py",
                                                   submodule_search_locations=[str(folder)])
    sys.modules[package] = importlib.util.module_from_spec(found)
    found.loader.exec_module(sys.modules[package])
    return importlib.import_module(f"{package}.{name}")


def runtime_of(model_or_module) -> ModuleType:
    """The module holding the runtime helpers a generated module uses: the dlc_runtime beside
    it, or the module itself when compiled --standalone."""
    module = (model_or_module if isinstance(model_or_module, ModuleType)
              else sys.modules[type(model_or_module).__module__])
    return sys.modules[module.WeightInitMixin.__module__]


def rename_reference_keys(model, state_dict: dict) -> dict:
    """A reference checkpoint under `model`'s names, by the runtime of its module (unchanged
    for a model without renames, whose runtime has no renaming)."""
    rename = getattr(runtime_of(model), "rename_reference_keys", None)
    return state_dict if rename is None else rename(model, state_dict)
