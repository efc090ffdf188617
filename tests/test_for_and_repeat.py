"""Language pieces the vision specs rely on: static `for` loops and values in `rename`
strings, `repeat` stacks whose layers change the shape (a ResNet stage), how such stacks
are constructed in generated code, and the order of `__all__`."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from compiler.diagnostics import Diagnostic
from compiler.driver import check
from tests.helpers import compile_to_module

UNIT = """
block Unit(d_in: int, d_out: int) {
    in x: [B, d_in]
    out y = Linear(d_in, d_out)(x)
}
"""


def diagnose(tmp_path: Path, text: str) -> list[Diagnostic]:
    path = tmp_path / "spec.dl"
    path.write_text(text)
    return check(path).diagnostics


def only_error(tmp_path: Path, text: str) -> Diagnostic:
    errors = [d for d in diagnose(tmp_path, text) if d.is_error]
    assert len(errors) == 1, [f"{d.span} {d.code} {d.message}" for d in errors]
    return errors[0]


# ------------------------------------------------------------------ for, and values in renames
def test_for_unrolls_renames_with_values_and_keeps_placeholders(tmp_path):
    module = compile_to_module(UNIT + """
model M(n: int = 3, step: int = 2, prefix: str = "features") {
    in x: [B, 4]
    h = repeat(n) Unit(4, 4)(x)
    for i in range(n) {
        let at = step * i + 1
        rename "{prefix}.{at}." -> "h.{i}."
        if i == 0 {
            rename "stem.{k}." -> "h.{i}.{k}."
        }
    }
    out y = h
}""", tmp_path, name="for_renames")
    # Rules that depend on parameters are computed by the constructor, for the configuration built.
    model = module.M()
    assert model.REFERENCE_RENAMES == (
        ("features.1.", "h.0."), ("stem.{k}.", "h.0.{k}."), ("features.3.", "h.1."), ("features.5.", "h.2."))
    assert module.M(n=4, step=3, prefix="f").REFERENCE_RENAMES[-1] == ("f.10.", "h.3.")
    reference = {f"features.{2 * i + 1}.{name}": value for i, layer in enumerate(model.h)
                 for name, value in layer.state_dict().items()}
    model.load_reference_state_dict({key: torch.zeros_like(value) for key, value in reference.items()})
    assert all(torch.count_nonzero(p) == 0 for p in model.parameters())


def test_nested_for_over_lists(tmp_path):
    module = compile_to_module(UNIT + """
model M(sizes: [int] = [1, 2]) {
    in x: [B, 4]
    out y = Unit(4, 4)(x)
    for s in range(len(sizes)) {
        for j in range(sizes[s]) {
            rename "a.{s}.{j}." -> "y."
        }
    }
}""", tmp_path, name="nested_for")
    assert [source for source, _ in module.M().REFERENCE_RENAMES] == ["a.0.0.", "a.1.0.", "a.1.1."]
    assert [source for source, _ in module.M(sizes=[2]).REFERENCE_RENAMES] == ["a.0.0.", "a.0.1."]


@pytest.mark.parametrize("body, code, line, message", [
    ("for i in range(2) {\n    z = Linear(4, 4)(x)\n}", "DLC040", 4,
     "a `for` body may only hold `let`, `require`, `rename`, `if` and `for`"),
    ("for i in 3 {\n}", "DLC011", 3, "`for` runs over a list, like `range(n)`, got int 3"),
    ("for i in range(2) {\n    rename \"a.{p}.\" -> \"b.\"\n}", "DLC039", 4,
     "`{p}` in a rename must be an int or a string, got float 0.5"),
    ("for n in range(2) {\n}", "DLC003", 3, "`n` is already defined"),
    ("for i in range(100000) {\n}", "DLC013", 3, "range of 100,000 values exceeds the limit of 65,536"),
])
def test_for_mistakes_are_diagnostics(tmp_path, body, code, line, message):
    d = only_error(tmp_path, f"model M(n: int = 2, p: float = 0.5) {{\n  in x: [B, 4]\n  {body}\n  out y = x\n}}\n")
    assert (d.code, d.span.line, d.message) == (code, line, message)


# ------------------------------------------------------------------ repeat stacks that change shape
def test_repeat_iterations_may_change_the_shape(tmp_path):
    module = compile_to_module(UNIT + """
model M() {
    in x: [B, 4]
    out y: [B, 8] = repeat(4, i) Unit(if i == 0 then 4 else 8, 8)(x)
}""", tmp_path, name="widening")
    model = module.M()
    assert model(torch.randn(2, 4)).shape == (2, 8)
    assert [tuple(layer.y.weight.shape) for layer in model.y] == [(8, 4), (8, 8), (8, 8), (8, 8)]


def test_repeat_still_checks_each_layer_against_the_previous_output(tmp_path):
    d = only_error(tmp_path, UNIT + "model M() {\n  in x: [B, 4]\n  out y = repeat(2) Unit(4, 8)(x)\n}\n")
    assert d.code == "DLC007" and "[1]" in d.message and "expects [B, 4], got [B, 8]" in d.message


def test_module_lists_name_runs_of_one_layer_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)        # the line comments then read `runs.dl:9`, whatever tmp_path is
    Path("runs.dl").write_text(UNIT + """
model M() {
    in x: [B, 4]
    out y = repeat(5, i) Unit(if i == 0 then 4 else 8, 8)(x)
}
model Long() {
    in x: [B, 4]
    out y = repeat(12, i) Unit(if i < 6 then 4 else 8 + i, if i < 5 then 4 else 8 + i + 1)(x)
}""")
    module = compile_to_module(Path("runs.dl"), tmp_path, name="runs")
    source = Path(module.__file__).read_text()
    # One class for every configuration of Unit; the comprehension computes each layer's widths.
    assert "        self.y = nn.ModuleList([Unit(4 if i == 0 else 8, 8) for i in range(5)])  # runs.dl:9\n" in source
    assert ("        self.y = nn.ModuleList([Unit(4 if i < 6 else 8 + i, 4 if i < 5 else 8 + i + 1) "
            "for i in range(12)])  # runs.dl:13\n") in source
    assert source.count("class Unit") == 1
    assert len(module.Long().y) == 12 and list(module.M().state_dict())[-1] == "y.4.y.bias"


def test_all_lists_models_in_natural_order(tmp_path):
    module = compile_to_module(UNIT + """
model Net(d: int = 4) {
    in x: [B, 4]
    out y = Unit(4, d)(x)
}
model Net101 = Net(d=101)
model Net18 = Net(d=18)
model NET2 = Net(d=2)
""", tmp_path, name="exports")
    assert module.__all__ == ["NET2", "Net", "Net18", "Net101"]
