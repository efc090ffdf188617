"""Per-pass golden files: each pass alone on a small spec written for it, the typed IR
before and after (with op attributes) and the pass's log, in
tests/golden/passes/<pass>.expect.  A pass without its spec fails here.

Run `pytest tests/test_pass_goldens.py --update-goldens` to rewrite the
expectations, then review the diff like code: it is what the pass does.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from compiler.driver import check
from compiler.ir import dump
from compiler.passes import PIPELINE, optimize
from tests.helpers import ROOT

PASSES = Path(__file__).parent / "golden" / "passes"


@pytest.fixture(autouse=True)
def _repo_root(monkeypatch):
    monkeypatch.chdir(ROOT)      # spans in the log are relative to the working directory


def _render(name: str) -> str:
    spec = (PASSES / f"{name}.dl").relative_to(ROOT)
    result = check(spec)
    assert result.program is not None, [d.message for d in result.diagnostics]
    [the_pass] = [p for p in PIPELINE if p.name == name]
    before = _after_needed(result.program, the_pass)
    optimized, log = optimize(before, [the_pass], check=True)
    return "\n".join([
        f"# {name}: {the_pass.why} (-O{the_pass.level}{', inference only' if the_pass.inference_only else ''})",
        f"# input: {spec.as_posix()}" + (f", after {', '.join(the_pass.needs)}" if the_pass.needs else ""),
        "## before", dump(before, attrs=True),
        "## log", *log, "",
        "## after", dump(optimized, attrs=True),
    ])


def _after_needed(program, the_pass):
    """The program after the passes whose marks `the_pass` reads (its `needs`), in pipeline order."""
    needed = [p for p in PIPELINE if p.name in the_pass.needs]
    return optimize(program, needed)[0] if needed else program


@pytest.mark.parametrize("name", [p.name for p in PIPELINE])
def test_pass_golden(request, name):
    assert (PASSES / f"{name}.dl").exists(), f"pass {name} has no golden spec: write {PASSES}/{name}.dl"
    actual = _render(name)
    path = PASSES / f"{name}.expect"
    if request.config.getoption("--update-goldens"):
        path.write_text(actual)
    assert path.exists(), f"missing golden {path}; run pytest --update-goldens"
    assert actual == path.read_text(), f"{path.name} differs from the golden file; review and --update-goldens"


@pytest.mark.parametrize("name", [p.name for p in PIPELINE])
def test_pass_changes_its_golden_spec(name):
    """Each spec exercises its pass: the log says it changed something."""
    spec = (PASSES / f"{name}.dl").relative_to(ROOT)
    [the_pass] = [p for p in PIPELINE if p.name == name]
    _, log = optimize(_after_needed(check(spec).program, the_pass), [the_pass])
    assert "no change" not in log[0], log


def test_every_golden_spec_names_a_pass():
    assert {p.stem for p in PASSES.glob("*.dl")} == {p.name for p in PIPELINE}
