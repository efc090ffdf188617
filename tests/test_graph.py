"""`dlc graph`: nested clusters collapsed at a depth, shape-labelled edges, spec-line links.

The DOT tests always run; rendering needs Graphviz's `dot` and skips cleanly without it.
"""
from __future__ import annotations

import re
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from compiler.cli import main

HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="Graphviz's dot is not installed")
SVG = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}href"

NESTED = """block Inner(d: int) {
    in x: [B, d]
    h = Linear(d, d)(x)
    out y = ReLU()(h)
}

model M(d: int = 4, n: int = 3) {
    in x: [B, d]
    a = Inner(d)(x)
    s = repeat(n) Inner(d)(a)
    out y = Linear(d, 2)(s)
}
"""
# (depth, unroll) -> (clusters, nodes), counted by hand from NESTED: inputs and outputs are nodes;
# an opened block is a cluster of its layers; a repeat opens its first iteration, the rest is one node.
EXPECTED = {
    (1, False): (0, 5),          # x, a, s, linear, y
    (2, False): (3, 8),          # a{linear, relu}, s{s.0{linear, relu}, s.1–2}; x, linear, y
    (2, True): (5, 11),          # a{2}, s{s.0{2}, s.1{2}, s.2{2}}; x, linear, y
}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


@pytest.fixture
def spec(tmp_path) -> Path:
    path = tmp_path / "nested.dl"
    path.write_text(NESTED)
    return path


def _options(depth: int, unroll: bool) -> list[str]:
    return ["--depth", str(depth)] + (["--unroll"] if unroll else [])


@pytest.mark.parametrize("depth, unroll", list(EXPECTED))
def test_dot_clusters_and_nodes(capsys, spec, depth, unroll):
    code, out, _ = run(capsys, "graph", str(spec), "--format", "dot", *_options(depth, unroll))
    assert code == 0 and out.startswith('digraph "M" {')
    clusters = re.findall(r'subgraph "cluster_', out)
    nodes = re.findall(r'^\s*"[^"]+" \[label=', out, re.M)
    assert (len(clusters), len(nodes)) == EXPECTED[(depth, unroll)]
    assert ' [label=" [B, 4]"];' in out and ' [label=" [B, 2]"];' in out      # shapes on the edges
    assert re.search(r'URL="[^"]*/nested\.dl#L9"', out)                     # `a = Inner(d)(x)` is line 9


def test_shared_and_tied_layers_are_marked(capsys):
    code, out, _ = run(capsys, "graph", "specs/transformer.dl", "--depth", "1")
    assert code == 0
    assert "src_embed (shared)\\nEmbedding" in out and "weight tied to src_embed.weight" in out
    assert 'label="encoder\\n6 × EncoderLayer"' in out


def _svg_counts(path: Path) -> tuple[int, int, list[str]]:
    root = ET.parse(path).getroot()
    groups = list(root.iter(f"{SVG}g"))
    links = [a.get(XLINK) for a in root.iter(f"{SVG}a") if a.get(XLINK)]
    return (sum(g.get("class") == "cluster" for g in groups), sum(g.get("class") == "node" for g in groups), links)


@needs_dot
@pytest.mark.parametrize("depth, unroll", list(EXPECTED))
def test_rendered_svg(capsys, spec, tmp_path, depth, unroll):
    out = tmp_path / "pictures" / "m.svg"
    code, printed, _ = run(capsys, "graph", str(spec), "-o", str(out), *_options(depth, unroll))
    assert code == 0 and printed == f"wrote {out}\n"
    clusters, nodes, links = _svg_counts(out)
    assert (clusters, nodes) == EXPECTED[(depth, unroll)]
    assert "../nested.dl#L9" in links            # relative to the picture's folder


@needs_dot
def test_without_the_graphviz_package_dot_runs_directly(capsys, spec, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", None)      # `import graphviz` raises ImportError
    code, _, _ = run(capsys, "graph", str(spec), "-o", str(tmp_path / "m.svg"))
    assert code == 0 and _svg_counts(tmp_path / "m.svg")[:2] == EXPECTED[(2, False)]


@needs_dot
def test_html_and_png(capsys, spec, tmp_path):
    assert run(capsys, "graph", str(spec), "-o", str(tmp_path / "m.html"))[0] == 0
    page = (tmp_path / "m.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "</html>" in page
    assert run(capsys, "graph", str(spec), "-o", str(tmp_path / "m.png"))[0] == 0
    assert (tmp_path / "m.png").read_bytes().startswith(b"\x89PNG")


def test_a_clear_message_when_dot_is_missing(capsys, spec, tmp_path, monkeypatch):
    monkeypatch.setattr("compiler.tools.render.shutil.which", lambda name: None)
    code, _, err = run(capsys, "graph", str(spec), "-o", str(tmp_path / "m.svg"))
    assert code == 1 and "`dot` program is not installed" in err and "--format dot" in err
    assert not (tmp_path / "m.svg").exists()
    assert run(capsys, "graph", str(spec), "--format", "dot")[0] == 0      # DOT needs no Graphviz


def test_errors(capsys, spec, tmp_path):
    (tmp_path / "bad.dl").write_text("model M( {")
    code, out, err = run(capsys, "graph", str(tmp_path / "bad.dl"))
    assert code == 1 and "error[DLC001]" in err and out == ""
    assert run(capsys, "graph", "specs/resnet.dl", "--model", "all")[0] == 2
    assert run(capsys, "graph", "specs/resnet.dl", "--model", "ResNet18", "--depth", "1")[0] == 0


def test_dims_make_edge_labels_concrete(capsys):
    code, out, _ = run(capsys, "graph", "specs/resnet.dl", "--model", "ResNet18", "--dims", "H=224,W=224")
    assert code == 0 and '[label=" [B, 64, 56, 56]"]' in out and "floor" not in out
    assert 'label="layer1.1\\nBasicBlock"' in out        # the one iteration after the first is named as such
