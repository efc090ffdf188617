"""Generated forward() code lets each intermediate value go after its last reader (`del`),
as hand-written code does by reassigning `x`: checked by watching tensors die, with weak
references, while the model runs; outputs are unchanged (the parity tests compare them)."""
from __future__ import annotations

import weakref

import torch

import ast

from compiler.driver import compile_spec
from tests.helpers import ROOT, compile_to_module


def generate_text(spec):
    result = compile_spec(spec)
    assert result.ok, result.diagnostics
    return result.text


def test_a_bottleneck_frees_its_first_convolution_before_the_last_one_runs(tmp_path):
    module = compile_to_module(ROOT / "specs" / "resnet.dl", tmp_path, {"depth": 50, "num_classes": 10},
                               opt_level=0, name="resnet50_O0")
    model = module.ResNet().eval()
    block = model.layer1[1]                     # conv1 -> bn1 -> relu -> conv2 -> ... -> conv3 -> bn3 (+ x)
    seen: dict[str, weakref.ref] = {}
    alive_at_conv3: list[bool] = []

    def watch(name: str):
        def hook(module, args, out) -> None:          # returns None: the output is left as it is
            seen[name] = weakref.ref(out)
        return hook

    def look(module, args) -> None:
        alive_at_conv3.extend(seen[k]() is not None for k in ("conv1", "conv2"))

    block.conv1.register_forward_hook(watch("conv1"))
    block.conv2.register_forward_hook(watch("conv2"))
    block.conv3.register_forward_pre_hook(look)
    with torch.no_grad():
        model(torch.randn(1, 3, 64, 64))
    # conv1's and conv2's outputs were read by their batch norms, then released
    assert alive_at_conv3 == [False, False]


def test_outputs_and_inputs_are_never_released():
    """In every forward of a generated file, no `del` names an input of that forward or a value
    its `return` reads, and every deleted name is read nowhere after its `del`."""
    text = generate_text(ROOT / "specs" / "transformer.dl")
    tree = ast.parse(text)
    deletes = 0
    for fn in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "forward"):
        inputs = {a.arg for a in fn.args.args}
        returned = {n.id for r in ast.walk(fn) if isinstance(r, ast.Return) for n in ast.walk(r) if isinstance(n, ast.Name)}
        for stmt in (n for n in ast.walk(fn) if isinstance(n, ast.Delete)):
            names = {t.id for t in stmt.targets}
            deletes += 1
            assert not names & inputs and not names & returned
            later = [n for n in ast.walk(fn) if isinstance(n, ast.Name) and n.id in names and n.lineno > stmt.lineno]
            assert not later, (fn.lineno, names)
    assert deletes > 10


def test_releases_go_in_the_branch_of_the_last_reader():
    from compiler.codegen.lifetimes import with_releases
    from compiler.codegen.specialization import Line
    lines = [Line((), "a = f(x)"), Line((("c", True),), "b = g(a)"), Line((("c", True),), "y = h(b)"),
             Line((("c", False),), "y = k(a)"), Line((), "return y")]
    out = [(line.guard, line.text) for line in with_releases(lines, Line, {"x"})]
    assert out == [((), "a = f(x)"), ((("c", True),), "b = g(a)"), ((("c", True),), "y = h(b)"),
                   ((("c", True),), "del b"), ((("c", False),), "y = k(a)"), ((("c", False),), "del a"),
                   ((), "return y")]


def test_a_view_goes_with_its_base():
    """`del query` right after `q_heads = query.unflatten(...)` frees nothing (the view holds the
    storage): base and view go on one `del`, after the last reader of either; a base whose view
    is returned is never deleted, and a view bound again elsewhere is not tied to its base."""
    from compiler.codegen.lifetimes import with_releases
    from compiler.codegen.specialization import Line
    texts = ["query = f(x)", "heads = query.unflatten(-1, (-1, 64)).transpose(1, 2)", "scores = g(heads)",
             "out = h(scores)", "return out"]
    out = [line.text for line in with_releases([Line((), t) for t in texts], Line, {"x"})]
    assert out == [texts[0], texts[1], texts[2], "del heads, query", texts[3], texts[4]]
    texts = ["y = f(x)", "part = y[:, -1:]", "return part"]
    assert [line.text for line in with_releases([Line((), t) for t in texts], Line, {"x"})] == texts
    texts = ["y = f(x)", "z = y.flatten(2)", "w = g(z)", "return w"]       # flatten may copy: not a view
    assert [line.text for line in with_releases([Line((), t) for t in texts], Line, {"x"})] == \
        ["y = f(x)", "z = y.flatten(2)", "del y", "w = g(z)", "return w"]
    texts = ["a = f(x)", "v = a.transpose(1, 2)", "b = g(v)", "v = h(b)", "c = k(v)", "return c"]
    released = [line.text for line in with_releases([Line((), t) for t in texts], Line, {"x"})]
    assert released.index("del a") == 2          # `v` is rebound: `a` goes after its own last reader
