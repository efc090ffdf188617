"""Validated op attributes are shared between layers configured alike (block_builder._validated):
exactly alike, not merely equal, and never in place of a diagnostic."""
from __future__ import annotations

from pathlib import Path

from compiler.driver import check
from compiler.elaborate.arguments import attrs_key
from compiler.ops import REGISTRY
from compiler.syntax import parser

SPEC = """model M(d: int = 8) {
    in x: [B, d]
    a = Dropout(0.0)(x)
    b = Dropout(-0.0)(a)
    c = Dropout(p=0.0)(b)
    e = Dropout(0.0)(c)
    f = Linear(d, d)(e)
    g = Linear(d, d)(f)
    out y = g
}
"""


def _nodes(tmp_path: Path, text: str):
    parser._parse_cached.cache_clear()
    path = tmp_path / "m.dl"
    path.write_text(text)
    result = check(path)
    return result, {n.outputs[0]: n for g in (result.program.graphs.values() if result.program else ())
                    for n in g.ordered()}


def test_keys_tell_apart_values_that_python_finds_equal():
    dropout = REGISTRY["Dropout"]
    key = lambda value, name=None: attrs_key(dropout, [(name, value, None)])   # noqa: E731
    assert len({key(0.0), key(-0.0), key(0), key(False), key(0.0, "p")}) == 5
    assert attrs_key(dropout, [(None, [1, 2], None)]) is None


def test_layers_configured_alike_share_attributes_and_the_rest_keep_their_own(tmp_path):
    result, nodes = _nodes(tmp_path, SPEC)
    assert result.ok, [d.message for d in result.diagnostics]
    assert nodes["a"].attrs is nodes["e"].attrs and nodes["f"].attrs is nodes["g"].attrs
    assert repr(nodes["b"].attrs.p) == "-0.0" and repr(nodes["a"].attrs.p) == "0.0"
    # written with the name, `p` is set explicitly either way; the cache keeps the spelling apart
    assert nodes["c"].attrs is not nodes["a"].attrs and nodes["c"].attrs == nodes["a"].attrs


def test_every_bad_configuration_is_still_reported(tmp_path):
    bad = SPEC.replace("Dropout(0.0)(x)", "Dropout(1.5)(x)").replace("Dropout(0.0)(c)", "Dropout(1.5)(c)")
    result, _ = _nodes(tmp_path, bad)
    lines = sorted(d.span.line for d in result.diagnostics if d.is_error)
    assert lines == [3, 6], [(d.span.line, d.message) for d in result.diagnostics]
