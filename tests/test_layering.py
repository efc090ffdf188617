"""The compiler's folders are the pipeline's stages, and data flows one way: no stage
imports a later one (type-checking-only imports included), and the compiler never
imports torch."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

COMPILER = Path(__file__).resolve().parent.parent / "compiler"

# The stages in the order data flows; a module may import its own stage and earlier ones.
# disk_cache is a base utility like diagnostics (the parser stores ASTs in it); check_cache is the
# driver's cache of whole `dlc check` answers; workers shares a command's specs among processes.
STAGES = ["diagnostics", "disk_cache", "syntax", "ir", "ops", "elaborate", "check", "passes", "codegen", "tools",
          "check_cache", "outputs", "workers", "driver", "lsp", "cli", "pytest_plugin"]


def stage_of(module: str) -> str:
    """`compiler.check.shapes` -> `check`; the package's own `__init__` is the base."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "diagnostics"


def imported_modules(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, node.lineno))
        elif isinstance(node, ast.ImportFrom) and node.level:
            found.append(("<relative>", node.lineno))
        elif isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
    return found


def module_name(path: Path) -> str:
    rel = path.relative_to(COMPILER.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


SOURCES = sorted(COMPILER.rglob("*.py"))


def test_every_compiler_module_belongs_to_a_known_stage():
    unknown = {stage_of(module_name(p)) for p in SOURCES} - set(STAGES)
    assert not unknown, f"compiler/ has modules outside the stage list: {sorted(unknown)}; add them to STAGES"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(COMPILER)))
def test_no_stage_imports_a_later_one(path: Path):
    own = STAGES.index(stage_of(module_name(path)))
    for target, line in imported_modules(path):
        assert target != "<relative>", f"{path.name}:{line}: use absolute imports, so layering is visible"
        if target.split(".")[0] != "compiler":
            continue
        other = stage_of(target)
        assert STAGES.index(other) <= own, (
            f"{path.relative_to(COMPILER)}:{line} imports {target}: stage `{stage_of(module_name(path))}` "
            f"must not depend on the later stage `{other}`")


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(COMPILER)))
def test_the_compiler_does_not_import_torch(path: Path):
    for target, line in imported_modules(path):
        assert target.split(".")[0] not in {"torch", "torchvision", "transformers"}, (
            f"{path.relative_to(COMPILER)}:{line} imports {target}")


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(COMPILER)))
def test_the_compiler_does_not_import_sympy(path: Path):
    """Dimensions are compiler/ir/dims.py: sympy's import alone was half a cold `dlc check`."""
    for target, line in imported_modules(path):
        assert target.split(".")[0] != "sympy", f"{path.relative_to(COMPILER)}:{line} imports {target}"


def test_neither_the_cli_nor_a_check_run_loads_sympy(tmp_path: Path):
    probe = ("import sys; import compiler.cli; loaded = 'sympy' in sys.modules; "
             "from compiler.cli import main; code = main(['check', sys.argv[1]]); "
             "print(loaded, code, 'sympy' in sys.modules)")
    spec = Path(__file__).resolve().parents[1] / "specs" / "resnet.dl"
    env = {**os.environ, "DLC_NO_CACHE": "1", "PYTHONPATH": str(COMPILER.parent)}
    run = subprocess.run([sys.executable, "-c", probe, str(spec)], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert run.stdout.splitlines()[-1].split() == ["False", "0", "False"], run.stdout + run.stderr


# What a clean, uncached `dlc check` of valid specs must not load: the code generator and its
# templates, the passes, lark (the fallback parser, for syntax errors), networkx, pydantic (op
# attributes are validated by compiler/ops/schema.py's own checks; pydantic words their errors),
# sympy, the language server and the summary tools.  Each was a measurable part of a cold check.
NOT_ON_THE_CHECK_PATH = ("jinja2", "lark", "networkx", "pydantic", "pydantic_core", "sympy", "rich",
                         "compiler.passes", "compiler.lsp", "compiler.tools", "compiler.syntax.lark_parser",
                         "compiler.outputs")
# Of the code generator, a check uses only the rules for names that reach Python (codegen/names.py,
# with the runtime's helper names it reserves): not the module model, the templates or the runtime text.
CODEGEN_ON_THE_CHECK_PATH = {"compiler.codegen", "compiler.codegen.names", "compiler.codegen.helpers"}


def _loaded_by_check(tmp_path: Path, *specs: str) -> tuple[int, list[str]]:
    probe = ("import sys, json; from compiler.cli import main; code = main(['check', *sys.argv[1:]]); "
             "print(json.dumps([code, sorted(sys.modules)]))")
    root = COMPILER.parent
    env = {**os.environ, "DLC_NO_CACHE": "1", "PYTHONPATH": str(root)}
    run = subprocess.run([sys.executable, "-c", probe, *(str(root / s) for s in specs)], cwd=tmp_path, env=env,
                         capture_output=True, text=True)
    import json
    code, modules = json.loads(run.stdout.splitlines()[-1])
    return code, modules


def test_a_check_loads_no_code_generator_parser_generator_or_validator_library(tmp_path: Path):
    code, modules = _loaded_by_check(tmp_path, "specs/bert.dl", "specs/mobilenet.dl", "specs/t5.dl")
    assert code == 0
    heavy = [m for m in modules if any(m == name or m.startswith(name + ".") for name in NOT_ON_THE_CHECK_PATH)]
    assert heavy == []
    assert {m for m in modules if m.startswith("compiler.codegen")} <= CODEGEN_ON_THE_CHECK_PATH


def test_a_wrong_attribute_loads_pydantic_to_word_the_error(tmp_path: Path):
    spec = tmp_path / "wrong.dl"
    spec.write_text("model M() {\n    in x: [B, 8]\n    y = Linear(8, 0)(x)\n    out y\n}\n")
    code, modules = _loaded_by_check(tmp_path, str(spec))
    assert code == 1
    assert "pydantic" in modules and "lark" not in modules
