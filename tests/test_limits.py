"""Every limit of compiler/elaborate/limits.py holds, one by one: at the limit a spec compiles,
one beyond it gets DLC013.  README's limits table is printed from the same table."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from compiler.elaborate.limits import LIMITS_TABLE, Limits, limit_value, limits_markdown
from compiler.elaborate.resolve import resolve_file
from compiler.syntax.parser import SourceLimits
from tests.helpers import ROOT

N = 6      # each limit is set to N, and a spec is made to need N, then N + 1


def _model(body: str) -> str:
    return f"model M(d: int = 2) {{\n  in x: [B, d]\n{body}\n}}\n"


def _chain(n: int) -> str:
    return _model("\n".join(f"  x{i + 1} = ReLU()(x{i})" for i in range(n - 1)).replace("(x0)", "(x)")
                  + f"\n  out y = ReLU()(x{n - 1})".replace("(x0)", "(x)"))


def _nested_blocks(n: int) -> str:
    blocks = "".join(f"block B{k}(d: int = 2) {{\n  in x: [N, d]\n  out y = B{k + 1}(d)(x)\n}}\n" for k in range(n - 1))
    return blocks + f"block B{n - 1}(d: int = 2) {{\n  in x: [N, d]\n  out y = ReLU()(x)\n}}\n" + \
        "model M() {\n  in x: [N, 2]\n  out y = B0(2)(x)\n}\n"


def _instances(n: int) -> str:
    block = "block L(k: int = 2) {\n  in x: [N, 2]\n  out y = ReLU()(x)\n}\n"
    calls = "\n".join(f"  x{i + 1} = L({i})(x{i})" for i in range(n)).replace("(x0)", "(x)")
    return block + f"model M() {{\n  in x: [N, 2]\n{calls}\n  out y = x{n}\n}}\n"


def _files(tmp_path: Path, n: int, chained: bool) -> str:
    for i in range(n):
        imports = f"import m{i + 1}\n" if chained and i + 1 < n else ""
        (tmp_path / f"m{i}.dl").write_text(imports + f"block B{i}(d: int = 2) {{\n  in x: [N, d]\n  out x\n}}\n")
    imports = "import m0" if chained else "import " + ", ".join(f"m{i}" for i in range(n))
    return imports + "\nmodel M() {\n  in x: [N, 2]\n  out y = B0(2)(x)\n}\n"


def _padded(text: str, size: int) -> str:
    """`text` with a comment making it exactly `size` bytes."""
    return text + "#" * (size - len(text.encode()) - 1) + "\n"


def _steps(text: str) -> int:
    """The evaluation steps a spec takes, counted by the budget itself."""
    import tempfile
    from compiler.elaborate.loader import Loader
    from compiler.elaborate.resolve import Resolver
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "spec.dl"
        path.write_text(text)
        loader = Loader()
        resolver = Resolver(loader)
        resolver.resolve_module(loader.load(path), {})
        return resolver.budget.steps


# limit -> (a spec that needs `n` of it, Limits with the limit at N)
CASES = {
    "source.max_source_bytes": (lambda t, n: _padded(_model("  out x"), n),
                                Limits(source=SourceLimits(max_source_bytes=200))),
    # the model's `{` is one level, each parenthesis another
    "source.max_nesting": (lambda t, n: _model("  let v = " + "(" * (n - 1) + "1" + ")" * (n - 1) + "\n  out x"),
                           Limits(source=SourceLimits(max_nesting=30))),
    "source.max_literal_digits": (lambda t, n: _model(f"  let v = {'9' * n}\n  out x"),
                                  Limits(source=SourceLimits(max_literal_digits=N))),
    "max_modules": (lambda t, n: _files(t, n - 1, chained=False), Limits(max_modules=N)),
    "max_import_depth": (lambda t, n: _files(t, n - 1, chained=True), Limits(max_import_depth=N)),  # + the spec
    "max_repeat": (lambda t, n: _model(f"  out y = repeat({n}) Linear(d, d)(x)"), Limits(max_repeat=N)),
    "max_range": (lambda t, n: _model(f"  for i in range({n}) {{\n    let v = i\n  }}\n  out x"), Limits(max_range=N)),
    "max_depth": (lambda t, n: _nested_blocks(n - 1), Limits(max_depth=N)),       # the model is a level too
    "max_instances": (lambda t, n: _instances(n), Limits(max_instances=N)),
    "max_nodes": (lambda t, n: _chain(n - 1), Limits(max_nodes=N)),
    "max_steps": (lambda t, n: _model("  for i in range(50) {\n    let v = i * 2 + 1\n  }\n  out x"),
                  Limits(max_steps=_steps(_model("  for i in range(50) {\n    let v = i * 2 + 1\n  }\n  out x")))),
    "max_sequence": (lambda t, n: _model(f'  let v = "{"a" * n}"\n  out x'), Limits(max_sequence=N)),
    "max_int": (lambda t, n: _model(f"  let v = {n}\n  out x"), Limits(max_int=N)),
}


def test_every_limit_in_the_table_has_a_case():
    assert set(CASES) == {name for name, _ in LIMITS_TABLE}


def _codes(tmp_path: Path, text: str, limits: Limits) -> list[str]:
    path = tmp_path / "spec.dl"
    path.write_text(text)
    _, diagnostics = resolve_file(path, limits=limits)
    return [d.code for d in diagnostics]


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_limit_holds_exactly(tmp_path, name):
    make, limits = CASES[name]
    value = limit_value(limits, name)
    assert _codes(tmp_path, make(tmp_path, value), limits) == [], "at the limit"
    if name == "max_steps":          # the same spec, one step less allowed
        limits, value = replace(limits, max_steps=value - 1), value - 1
    assert "DLC013" in _codes(tmp_path, make(tmp_path, value + 1), limits), "one beyond"


def test_the_defaults_are_the_documented_ones():
    limits = Limits()
    assert (limits.max_repeat, limits.max_depth, limits.max_nodes, limits.max_modules) == (4096, 64, 200_000, 256)
    assert (limits.source.max_nesting, limits.source.max_source_bytes) == (200, 2_000_000)
    assert replace(limits, max_repeat=1).max_repeat == 1


def test_readme_shows_the_limits_table():
    assert limits_markdown() in (ROOT / "README.md").read_text()
