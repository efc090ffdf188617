"""Helpers for tests: compile a spec (or source text) and import the result."""
from __future__ import annotations

import importlib.util
import itertools
import os
import sys
from pathlib import Path
from types import ModuleType

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
    module_name = f"dlc_test_{name}_{next(_counter)}"
    out = tmp_path / f"{module_name}.py"
    out.write_text(text)
    spec_obj = importlib.util.spec_from_file_location(module_name, out)
    module = importlib.util.module_from_spec(spec_obj)
    sys.modules[module_name] = module
    spec_obj.loader.exec_module(module)
    return module
