"""The disk caches behind a fast `dlc check`: answers equal to a fresh check, invalidated by
every change they depend on, safe against corrupt entries, off with DLC_NO_CACHE; plus the
cheap paths of dims_equal and Graph.ordered, checked against what they replace."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler import check_cache
from compiler.driver import check, check_diagnostics
from compiler.ir import Graph, Node
from compiler.ir.dims import const, floor
from compiler.ir.types import dims_equal, symbol
from tests.fast_lane import examples
from tests.lazy_import import lazy_import
from tests.test_dims import to_sympy

ROOT = Path(__file__).resolve().parent.parent
CORPUS = sorted((ROOT / "tests" / "fuzz_corpus").glob("*.dl"))
SPECS = sorted((ROOT / "specs").glob("*.dl"))

nx = lazy_import("networkx")
sympy = lazy_import("sympy")

GOOD = "block Twice(d: int) {\n    in x: [B, d]\n    out y = x + x\n}\nmodel M() {\n    in x: [B, 4]\n    out y = Twice(4)(x)\n}\n"


@pytest.fixture()
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("DLC_CACHE_DIR", str(folder))
    monkeypatch.delenv("DLC_NO_CACHE", raising=False)
    return folder


def _entries(cache: Path, kind: str = "check") -> list[Path]:
    return sorted((cache / kind).glob("*")) if (cache / kind).is_dir() else []


@pytest.mark.parametrize("spec", CORPUS + SPECS[:4], ids=lambda p: p.name)
def test_a_cached_answer_equals_a_fresh_check(cache, spec, monkeypatch):
    monkeypatch.chdir(ROOT)
    fresh = check(spec.relative_to(ROOT), all_blocks=True).diagnostics
    first = check_diagnostics(spec.relative_to(ROOT), all_blocks=True)
    again = check_diagnostics(spec.relative_to(ROOT), all_blocks=True)
    assert first == fresh and again == fresh
    codes = {d.code for d in fresh}
    assert len(_entries(cache)) == (0 if codes & {"DLC000", "DLC010"} else 1)


def _spec(tmp_path: Path, text: str = "import lib\nmodel M() {\n    in x: [B, 4]\n    out y = Twice(4)(x)\n}\n") -> Path:
    (tmp_path / "lib.dl").write_text("block Twice(d: int) {\n    in x: [B, d]\n    out y = x + x\n}\n")
    spec = tmp_path / "spec.dl"
    spec.write_text(text)
    return spec


def test_editing_an_imported_module_invalidates(cache, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = _spec(tmp_path)
    assert check_diagnostics(Path("spec.dl")) == []
    (tmp_path / "lib.dl").write_text("block Twice(d: int) {\n    in x: [B, d, d]\n    out y = x + x\n}\n")
    found = check_diagnostics(Path("spec.dl"))
    assert [d.code for d in found] == ["DLC007"] and found == check(spec.relative_to(tmp_path)).diagnostics


def test_a_new_module_that_shadows_the_stdlib_invalidates(cache, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "spec.dl"
    spec.write_text("import layers\nmodel M() {\n    in x: [B, 4]\n    out y = Linear(4, 4)(x)\n}\n")
    before = check_diagnostics(Path("spec.dl"))
    (tmp_path / "layers.dl").write_text("block Broken( {\n")
    after = check_diagnostics(Path("spec.dl"))
    assert after != before and after == check(Path("spec.dl")).diagnostics
    assert any(d.code == "DLC001" and d.span.file == "layers.dl" for d in after)


def test_overrides_and_all_blocks_are_part_of_the_key(cache, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("spec.dl").write_text("model M(d: int = 4) {\n    require d % 2 == 0\n    in x: [B, d]\n    out y = x + x\n}\n")
    assert check_diagnostics(Path("spec.dl")) == []
    odd = check_diagnostics(Path("spec.dl"), {"d": 3})
    assert [d.code for d in odd] == ["DLC006"]
    assert check_diagnostics(Path("spec.dl"), all_blocks=True) == []
    assert len(_entries(cache)) == 3


def test_a_corrupt_or_foreign_entry_reads_as_missing(cache, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("spec.dl").write_text(GOOD.replace("x + x", "x + z"))
    expected = check(Path("spec.dl")).diagnostics
    assert check_diagnostics(Path("spec.dl")) == expected
    (entry,) = _entries(cache)
    entry.write_bytes(entry.read_bytes()[:-7])                            # torn
    assert check_diagnostics(Path("spec.dl")) == expected
    (entry,) = _entries(cache)
    payload = b'{"schema": 1, "key": "another", "diagnostics": []}'
    entry.write_bytes(hashlib.sha256(payload).digest() + payload)   # valid, but for another key
    assert check_cache.load(entry.name) is None
    assert check_diagnostics(Path("spec.dl")) == expected


def test_a_corrupt_ast_entry_is_parsed_again(cache, tmp_path, monkeypatch):
    from compiler.syntax import parser
    monkeypatch.chdir(tmp_path)
    Path("spec.dl").write_text(GOOD)
    parser._parse_cached.cache_clear()
    expected = parser.parse_file(Path("spec.dl"))
    for entry in _entries(cache, "ast"):
        payload = b"not a pickle"
        entry.write_bytes(hashlib.sha256(payload).digest() + payload)
    parser._parse_cached.cache_clear()
    assert parser.parse_file(Path("spec.dl")) == expected


def test_no_cache_writes_nothing(cache, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DLC_NO_CACHE", "1")
    Path("spec.dl").write_text(GOOD)
    assert check_diagnostics(Path("spec.dl")) == []
    assert not cache.exists()


def test_an_unwritable_cache_is_skipped(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("DLC_CACHE_DIR", str(blocker / "below-a-file"))
    monkeypatch.chdir(tmp_path)
    Path("spec.dl").write_text(GOOD)
    assert check_diagnostics(Path("spec.dl")) == []


def test_a_cache_hit_loads_no_parser_checker_or_code_generator(cache, tmp_path):
    (tmp_path / "spec.dl").write_text(GOOD)
    probe = ("import sys; from compiler.cli import main; code = main(['check', 'spec.dl']); "
             "heavy = sorted(m for m in ('sympy', 'networkx', 'lark', 'jinja2', 'pydantic', 'compiler.codegen.model') "
             "if m in sys.modules); print(code, heavy)")
    env = {**os.environ, "DLC_CACHE_DIR": str(cache), "PYTHONPATH": str(ROOT)}
    runs = [subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True)
            for _ in range(2)]
    # a miss parses and checks, but never loads the code generator (nor lark: the hand-written parser
    # takes a valid spec, nor networkx: the IR's graphs are compiler/ir/multigraph.py, nor sympy:
    # dimensions are compiler/ir/dims.py, nor pydantic: valid attributes pass compiler/ops/schema.py's
    # own checks); a hit loads nothing heavy at all
    assert runs[0].stdout.splitlines()[-1] == "0 []", runs[0].stderr
    assert runs[1].stdout.splitlines()[-1] == "0 []", runs[1].stdout + runs[1].stderr


# ---------------------------------------------------------------------- the cheap paths
B, S, H = symbol("B"), symbol("S"), symbol("H")
EXPRESSIONS = [B, S, B * S, B + 1, 2 * B, B * S + S, (B + 1) * (S + 1), B**2, B * 4 // 2,
               floor((H - 3) / 2) + 1, floor((H + 1) / 2), H, 12 * H, const(3)]


@pytest.mark.parametrize("a", EXPRESSIONS, ids=str)
def test_dims_equal_agrees_with_simplify(a):
    for b in [*EXPRESSIONS, a * 2 - a, (a + B) - B, a * (B + 1) - a * B]:
        assert dims_equal(a, b) == (sympy.simplify(to_sympy(a) - to_sympy(b)) == 0), (a, b)


def _graph(edges: list[tuple[int, int]], orders: list[int]) -> Graph:
    graph = Graph("G", "G", {}, None)
    for i, order in enumerate(orders):
        graph.g.add_node(f"n{i}", node=Node(f"n{i}", "op", "Add", None, None, (f"v{i}",), order=order))
    for slot, (src, dst) in enumerate(edges):
        graph.connect(f"n{src}", 0, f"n{dst}", slot)
    return graph


@settings(max_examples=examples(200), deadline=None)
@given(st.integers(2, 9).flatmap(lambda n: st.tuples(
    st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)).filter(lambda e: e[0] < e[1]), max_size=12),
    st.permutations(range(n)), st.lists(st.integers(0, 3), min_size=n, max_size=n))))
def test_ordered_equals_the_lexicographical_topological_sort(case):
    edges, names, orders = case
    # node ids by a permutation: edges still follow a topological order, source orders are arbitrary (ties too)
    graph = _graph([(names[s], names[d]) for s, d in edges], orders)
    expected = list(nx.lexicographical_topological_sort(graph.g.to_networkx(), key=lambda n: graph.node(n).order))
    assert [n.id for n in graph.ordered()] == expected


# ---------------------------------------------------------------------- clean answers, by their files
def _counting_checks(monkeypatch) -> list[Path]:
    import compiler.driver as driver
    checked: list[Path] = []
    real = driver.check

    def counting(spec, *args, **kwargs):
        checked.append(spec)
        return real(spec, *args, **kwargs)
    monkeypatch.setattr(driver, "check", counting)
    return checked


def test_editing_a_sibling_spec_keeps_a_clean_answer(cache, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _spec(tmp_path)
    Path("other.dl").write_text(GOOD)
    checked = _counting_checks(monkeypatch)
    assert check_diagnostics(Path("spec.dl")) == [] and check_diagnostics(Path("other.dl")) == []
    Path("other.dl").write_text(GOOD + "# edited\n")                        # same folder, not imported
    assert check_diagnostics(Path("spec.dl")) == []
    assert checked == [Path("spec.dl"), Path("other.dl")]                   # spec.dl answered from the cache
    assert check_diagnostics(Path("other.dl")) == [] and checked[-1] == Path("other.dl")


def test_a_clean_answer_is_invalidated_by_its_imports_and_by_shadowing(cache, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    spec = tmp_path / "sub" / "spec.dl"
    spec.write_text("import lib, layers\nmodel M() {\n    in x: [B, 4]\n    out y = Linear(4, 4)(Twice(4)(x))\n}\n")
    (tmp_path / "sub" / "lib.dl").write_text("block Twice(d: int) {\n    in x: [B, d]\n    out y = x + x\n}\n")
    checked = _counting_checks(monkeypatch)
    assert check_diagnostics(spec) == [] and check_diagnostics(spec) == [] and len(checked) == 1
    (tmp_path / "sub" / "lib.dl").write_text("block Twice(d: int) {\n    in x: [B, d]\n    out y = x * x\n}\n")
    assert check_diagnostics(spec) == [] and len(checked) == 2                # an import's text changed
    (tmp_path / "sub" / "layers.dl").write_text("block Broken( {\n")           # shadows the stdlib's layers
    after = check_diagnostics(spec)
    assert len(checked) == 3 and after == check(spec).diagnostics and any(d.code == "DLC001" for d in after)


def test_the_shadowing_candidates_follow_the_loaders_search(tmp_path, monkeypatch):
    from compiler.elaborate.loader import Loader
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "spec.dl"
    spec.write_text("import lib, layers, attention\nmodel M() {\n    in x: [B, 4]\n    out y = Linear(4, 4)(x)\n}\n")
    (tmp_path / "lib.dl").write_text("block Twice(d: int) {\n    in x: [B, d]\n    out y = x + x\n}\n")
    loader = Loader()
    loader.load(spec)
    for module in loader.modules.values():
        absent = set(check_cache._shadowing_candidates(module))
        for imp in module.tree.imports:
            for name, span in imp.names:
                found = loader._find(name, module, span)
                assert os.path.abspath(found) not in absent
                searched = [module.path.parent, *check_cache.search_path()]
                before = searched[:[f.resolve() for f in searched].index(found.parent.resolve())]
                assert {os.path.abspath(f / f"{name}.dl") for f in before} <= absent
