"""Golden files for every stage, and generated/ kept in step with specs/.

Run `pytest tests/test_golden.py --update-goldens` to rewrite the expectations,
then review the diff like code.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from compiler.driver import check, compile_spec, output_path
from compiler.ir import dump
from compiler.syntax.parser import parse_file
from compiler.passes import optimize, select_passes
from compiler.elaborate.resolve import resolve_file
from tests.helpers import ROOT

GOLDEN = Path(__file__).parent / "golden"
SPEC = GOLDEN / "tiny.dl"


def _expect(request, name: str, actual: str) -> None:
    path = GOLDEN / name
    if request.config.getoption("--update-goldens"):
        path.write_text(actual)
    assert path.exists(), f"missing golden {path}; run pytest --update-goldens"
    assert actual == path.read_text(), f"{name} differs from the golden file; review and --update-goldens"


@pytest.fixture(autouse=True)
def _repo_root(monkeypatch):
    monkeypatch.chdir(ROOT)      # spans in the dumps are relative to the working directory


def test_ast_stage(request):
    module = parse_file(SPEC.relative_to(ROOT))
    text = "\n".join(f"{type(s).__name__} {getattr(s, 'name', '')}: {s.span.line}:{s.span.col}"
                     for b in module.blocks for s in b.body)
    _expect(request, "tiny.ast.expect", text + "\n")


def test_ir_stage(request):
    program, diagnostics = resolve_file(SPEC.relative_to(ROOT))
    assert program is not None and not diagnostics
    _expect(request, "tiny.ir.expect", dump(program))


def test_shapes_stage(request):
    result = check(SPEC.relative_to(ROOT))
    assert result.program is not None
    _expect(request, "tiny.shapes.expect", dump(result.program))


def test_optimized_stage(request):
    result = check(SPEC.relative_to(ROOT))
    optimized, _ = optimize(result.program, select_passes(2), check=True)
    _expect(request, "tiny.opt.expect", dump(optimized))


def test_generated_code(request):
    result = compile_spec(SPEC.relative_to(ROOT))
    assert result.text is not None
    _expect(request, "tiny.py.expect", result.text)


def test_dead_layer_norm_is_warned_and_removed():
    result = compile_spec(SPEC.relative_to(ROOT))
    assert [d.code for d in result.diagnostics] == ["DLC021"]
    assert "LayerNorm" not in result.text


def _specs() -> list[Path]:
    return sorted((ROOT / "specs").glob("*.dl"))


@pytest.mark.parametrize("spec", _specs(), ids=lambda p: p.name)
def test_generated_folder_is_up_to_date(spec):
    result = compile_spec(spec.relative_to(ROOT))
    assert result.ok, [d.message for d in result.diagnostics]
    committed = output_path(spec, ROOT / "generated")
    assert committed.exists(), f"{committed} is missing; run `dlc compile {spec.relative_to(ROOT)}`"
    assert committed.read_text() == result.text, f"{committed} is stale; run `dlc compile specs/*.dl`"


def test_every_generated_file_has_a_spec():
    generated = {p.stem for p in (ROOT / "generated").glob("*.py")} - {"__init__"}
    assert generated == {p.stem for p in _specs()}


def test_generated_modules_import_without_dlc():
    code = ("import sys, importlib, pathlib\n"
            "for p in sorted(pathlib.Path('generated').glob('*.py')):\n"
            "    importlib.import_module('generated.' + p.stem)\n"
            "assert 'compiler' not in sys.modules, 'generated code imported the compiler'\n")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


VARIANTS = GOLDEN / "variants.dl"


def test_generated_code_per_definition(request, tmp_path):
    """One class per definition: configurations merged under Python ifs, a split named after the
    value that differs (and said so in --explain), a model variant as a subclass."""
    result = compile_spec(VARIANTS.relative_to(ROOT))
    assert result.text is not None
    _expect(request, "variants.py.expect", result.text)
    assert any("UnitIdentity, UnitRelu" in line and "different act" in line for line in result.log)
    namespace: dict = {}
    exec(compile(result.text, "variants.py", "exec"), namespace)    # noqa: S102
    assert len(namespace["Net"](depth=5, width=6).body) == 5
    assert issubclass(namespace["Small"], namespace["Net"]) and len(namespace["Small"]().body) == 2
    with pytest.raises(ValueError, match=r"d_out must be even \(tests/golden/variants\.dl:5\)"):
        namespace["UnitRelu"](8, 7)
