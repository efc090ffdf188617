"""Helpers for tests: compile a spec (or source text) and import the result."""
from __future__ import annotations

import importlib.util
import itertools
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
    result = compile_spec(Path(spec), opt_level=opt_level, overrides=overrides, inference=inference)
    assert result.ok and result.text is not None, "\n".join(d.message for d in result.diagnostics)
    return import_source(result.text, tmp_path, name)


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
