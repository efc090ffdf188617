"""The `dlc` command line: help and usage errors, check/compile/dump/explain,
atomic and deterministic output, no torch in the compiler, and generated code
that is clean, self-contained and safe whatever the spec says."""
from __future__ import annotations

import ast as pyast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from compiler import __version__
from compiler.cli import main
from tests.helpers import ROOT

RUFF = Path(sys.executable).parent / "ruff"
SMALL = """model Small(d: int = 8, p: float = 0.0) {
    in x: [B, S, d]
    h = Dropout(p)(Linear(d, d)(x))
    out y: [B, S, d] = LayerNorm(d)(h)
}
"""


@pytest.fixture
def in_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def exit_code(capsys, *argv: str) -> tuple[int, str, str]:
    """For argparse paths that end in SystemExit (--help, --version, usage errors)."""
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    out, err = capsys.readouterr()
    return info.value.code, out, err


def dlc(*argv: str, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "compiler.cli", *argv], cwd=cwd, capture_output=True, text=True,
                          check=False, env={**os.environ, **env}, timeout=120)


def files_in(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------- help, version, usage
def test_version(capsys):
    code, out, _ = exit_code(capsys, "--version")
    assert code == 0 and out.strip() == f"dlc {__version__}"


@pytest.mark.parametrize("argv", [["--help"], ["compile", "--help"], ["check", "--help"], ["dump", "--help"],
                                  ["explain", "--help"]])
def test_help(capsys, argv):
    code, out, _ = exit_code(capsys, *argv)
    assert code == 0 and out.startswith("usage: dlc")


@pytest.mark.parametrize("argv", [[], ["frobnicate"], ["compile"], ["check"], ["compile", "x.dl", "-O", "7"],
                                  ["dump", "x.dl", "--stage", "bytecode"], ["compile", "x.dl", "-D", "novalue"],
                                  ["check", "--no-such-flag", "specs"]])
def test_usage_errors_exit_2(capsys, argv):
    code, _, err = exit_code(capsys, *argv)
    assert code == 2 and "usage: dlc" in err


def test_missing_files_and_unknown_names_exit_2(capsys, tmp_path):
    code, _, err = run(capsys, "check", str(tmp_path / "nope.dl"))
    assert code == 2 and "no such file" in err
    (tmp_path / "small.dl").write_text(SMALL)
    code, _, err = run(capsys, "compile", str(tmp_path / "small.dl"), "-o", str(tmp_path / "out"), "--passes", "nope")
    assert code == 2 and "unknown pass nope" in err and not (tmp_path / "out").exists()
    code, _, err = run(capsys, "explain", "DLC999")
    assert code == 2 and "unknown code" in err


# ---------------------------------------------------------------------- check, explain, dump
def test_check_every_spec(capsys, in_root):
    code, out, err = run(capsys, "check", "specs/")
    assert code == 0, err
    assert re.fullmatch(r"checked \d+ spec\(s\): ok\n", out)


def test_check_overrides(capsys, tmp_path):
    (tmp_path / "small.dl").write_text(SMALL)
    assert run(capsys, "check", str(tmp_path / "small.dl"), "-D", "d=16")[0] == 0
    code, _, err = run(capsys, "check", str(tmp_path / "small.dl"), "-D", "dd=16")
    assert code == 1 and "error[DLC050]" in err and "did you mean `d`?" in err


def test_explain(capsys):
    code, out, _ = run(capsys, "explain", "DLC007")
    assert code == 0 and out.startswith("DLC007 [shape-mismatch]: a tensor's shape does not match what an op or block expects\n\n") and "shape" in out.splitlines()[2]
    assert run(capsys, "explain", "dlc007")[1] == out


@pytest.mark.parametrize("stage, expect", [("ast", r"Module\(.*BlockDef\(.*name='Small'"),
                                           ("ir", r"graph Small = Small\(d=8, p=0\.0\)\n.*op:Linear"),
                                           ("shapes", r"op:Linear @linear\(n1\.0\) :: \[B, S, 8\]"),
                                           ("opt", r"graph Small")])
def test_dump_stages(capsys, tmp_path, stage, expect):
    (tmp_path / "small.dl").write_text(SMALL)
    code, out, _ = run(capsys, "dump", str(tmp_path / "small.dl"), "--stage", stage)
    assert code == 0 and re.search(expect, out, re.DOTALL), out


def test_dump_optimized_drops_identities(capsys, tmp_path):
    # A dropout computed from a parameter stays (the generated class takes the rate); a constant zero goes.
    (tmp_path / "small.dl").write_text(SMALL.replace("Dropout(p)", "Dropout(0.0)"))
    assert "Dropout" in run(capsys, "dump", str(tmp_path / "small.dl"), "--stage", "shapes")[1]
    assert "Dropout" not in run(capsys, "dump", str(tmp_path / "small.dl"), "--stage", "opt")[1]
    assert "Dropout" in run(capsys, "dump", str(tmp_path / "small.dl"), "--stage", "opt", "-O", "0")[1]


def test_dump_of_a_broken_spec(capsys, tmp_path):
    (tmp_path / "bad.dl").write_text("model M( {")
    for stage in ("ast", "ir", "shapes", "opt"):
        code, out, err = run(capsys, "dump", str(tmp_path / "bad.dl"), "--stage", stage)
        assert code == 1 and "error[DLC001]" in err and out == ""


# ---------------------------------------------------------------------- compile
def test_compile_writes_the_module_and_a_package_init(capsys, tmp_path):
    (tmp_path / "small.dl").write_text(SMALL)
    out_dir = tmp_path / "gen"
    code, out, _ = run(capsys, "compile", str(tmp_path / "small.dl"), "-o", str(out_dir))
    assert code == 0 and out == f"wrote {out_dir / 'small.py'}\nwrote {out_dir / 'dlc_runtime.py'}\n"
    assert sorted(files_in(out_dir)) == ["__init__.py", "dlc_runtime.py", "small.py"]
    text = (out_dir / "small.py").read_text()
    assert text.startswith("# @generated by dlc") and "class Small(WeightInitMixin, nn.Module):" in text
    assert "from .dlc_runtime import WeightInitMixin" in text
    code, out, _ = run(capsys, "compile", str(tmp_path / "small.dl"), "-o", str(out_dir))
    assert code == 0 and out == f"unchanged {out_dir / 'small.py'}\n"


def test_a_failing_compile_changes_nothing(capsys, tmp_path):
    good, bad = tmp_path / "small.dl", tmp_path / "broken.dl"
    good.write_text(SMALL)
    out_dir = tmp_path / "gen"
    assert run(capsys, "compile", str(good), "-o", str(out_dir))[0] == 0
    before = files_in(out_dir)
    # The same spec, now broken: the existing output must survive byte for byte.
    good.write_text(SMALL.replace("LayerNorm(d)", "LayerNorm(d + 1)"))
    code, out, err = run(capsys, "compile", str(good), "-o", str(out_dir))
    assert code == 1 and "error[DLC007]" in err and out == ""
    assert files_in(out_dir) == before
    # Several specs: one failure means none is written, and no temporary file is left behind.
    good.write_text(SMALL.replace("d: int = 8", "d: int = 16"))
    bad.write_text("model Broken() {\n  in x: [B]\n  out y = Nope()(x)\n}\n")
    code, _, _ = run(capsys, "compile", str(good), str(bad), "-o", str(out_dir))
    assert code == 1 and files_in(out_dir) == before
    assert not list(tmp_path.rglob("*.tmp"))


def test_compile_check_reports_stale_files_and_writes_nothing(capsys, tmp_path):
    spec = tmp_path / "small.dl"
    spec.write_text(SMALL)
    out_dir = tmp_path / "gen"
    code, _, err = run(capsys, "compile", "--check", str(spec), "-o", str(out_dir))
    assert code == 1 and f"stale: {out_dir / 'small.py'}" in err and not out_dir.exists()
    assert run(capsys, "compile", str(spec), "-o", str(out_dir))[0] == 0
    assert run(capsys, "compile", "--check", str(spec), "-o", str(out_dir))[0] == 0
    before = files_in(out_dir)
    spec.write_text(SMALL.replace("d: int = 8", "d: int = 16"))
    code, _, err = run(capsys, "compile", "--check", str(spec), "-o", str(out_dir))
    assert code == 1 and "stale:" in err and files_in(out_dir) == before


def test_compile_overrides_and_opt_levels(capsys, tmp_path):
    spec = tmp_path / "small.dl"
    spec.write_text(SMALL)
    assert run(capsys, "compile", str(spec), "-o", str(tmp_path / "a"), "-D", "d=32")[0] == 0
    assert "d: int = 32" in (tmp_path / "a" / "small.py").read_text()
    assert "(-O1 -D d=32)" in (tmp_path / "a" / "small.py").read_text().splitlines()[0]
    assert "nn.Dropout(p)" in (tmp_path / "a" / "small.py").read_text()      # the class takes the rate
    spec.write_text(SMALL.replace("Dropout(p)", "Dropout(0.0)"))
    assert run(capsys, "compile", str(spec), "-o", str(tmp_path / "b"), "-O", "0")[0] == 0
    assert run(capsys, "compile", str(spec), "-o", str(tmp_path / "a"))[0] == 0
    assert "nn.Dropout" in (tmp_path / "b" / "small.py").read_text()
    assert "nn.Dropout" not in (tmp_path / "a" / "small.py").read_text()
    assert "(-O0)" in (tmp_path / "b" / "small.py").read_text().splitlines()[0]
    code, out, _ = run(capsys, "compile", str(spec), "-o", str(tmp_path / "c"), "--explain")
    assert code == 0 and "remove-identities: changed Small" in out


def test_compiling_twice_is_byte_identical(capsys, tmp_path, in_root):
    specs = ["specs/transformer.dl", "tests/golden/tiny.dl"]
    assert run(capsys, "compile", *specs, "-o", str(tmp_path / "one"))[0] == 0
    assert run(capsys, "compile", *specs, "-o", str(tmp_path / "two"))[0] == 0
    assert files_in(tmp_path / "one") == files_in(tmp_path / "two")


def test_output_does_not_depend_on_hash_seed(tmp_path):
    specs = ["specs/transformer.dl", "tests/golden/tiny.dl"]
    outputs = []
    for seed in ("0", "4242"):
        result = dlc("compile", *specs, "-o", str(tmp_path / seed), PYTHONHASHSEED=seed)
        assert result.returncode == 0, result.stderr
        outputs.append(files_in(tmp_path / seed))
    assert outputs[0] == outputs[1]


def test_the_compiler_never_imports_torch(tmp_path):
    code = ("import sys, compiler.cli\n"
            "assert compiler.cli.main(['check', 'specs/transformer.dl']) == 0\n"
            f"assert compiler.cli.main(['compile', 'specs/transformer.dl', '-O', '2', '-o', {str(tmp_path)!r}]) == 0\n"
            "assert 'torch' not in sys.modules, 'the compiler imported torch'\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False,
                            timeout=120)
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------------- generated code quality
def _compiled(capsys, tmp_path, spec: Path) -> str:
    code, _, err = run(capsys, "compile", str(spec), "-o", str(tmp_path / "gen"))
    assert code == 0, err
    return (tmp_path / "gen" / f"{spec.stem}.py").read_text()


def test_generated_code_is_self_contained_and_lint_clean(capsys, tmp_path, in_root):
    """The modules import torch, the standard library and the runtime module written beside them."""
    for spec in (Path("specs/transformer.dl"), Path("tests/golden/tiny.dl")):
        text = _compiled(capsys, tmp_path, spec)
        runtime = (tmp_path / "gen" / "dlc_runtime.py").read_text()
        for source in (text, runtime):
            compile(source, spec.name, "exec")
            tree = pyast.parse(source)
            imports = {alias.name for n in pyast.walk(tree) if isinstance(n, pyast.Import) for alias in n.names}
            imports |= {n.module or "." for n in pyast.walk(tree) if isinstance(n, pyast.ImportFrom)}
            assert {m.split(".")[0] for m in imports} <= {"collections", "dataclasses", "functools", "math", "re",
                                                         "time", "torch", "traceback", "__future__", "typing",
                                                         "dlc_runtime", ""}, imports
    if not RUFF.exists() and shutil.which("ruff") is None:
        pytest.skip("ruff is not installed")
    ruff = str(RUFF) if RUFF.exists() else shutil.which("ruff")
    result = subprocess.run([ruff, "check", "--no-cache", str(tmp_path / "gen")], cwd=ROOT, capture_output=True,
                            text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------------- code injection
def _compile_or_reject(capsys, tmp_path, text: str, name: str = "inject.dl") -> str | None:
    """Compile `text`; returns the generated module, or None when a diagnostic rejected it."""
    spec = tmp_path / name
    spec.write_text(text, encoding="utf-8", newline="")
    code, _, err = run(capsys, "compile", str(spec), "-o", str(tmp_path / "gen"))
    if code != 0:
        assert code == 1 and re.search(r"error\[DLC0\d\d\]", err), err
        return None
    generated = tmp_path / "gen" / f"{spec.stem}.py"
    return generated.read_text()


class _BlankStrings(pyast.NodeTransformer):
    def visit_Constant(self, node: pyast.Constant) -> pyast.Constant:
        return pyast.Constant("") if isinstance(node.value, str) else node


def _assert_safe(text: str) -> None:
    """The generated module compiles, and nothing from the spec became code: outside string
    literals (docstrings may quote the spec), no trace of the payload remains."""
    tree = pyast.parse(text)
    compile(tree, "generated", "exec")
    names = {n.id for n in pyast.walk(tree) if isinstance(n, pyast.Name)}
    assert not names & {"os", "sys", "subprocess", "eval", "exec", "__import__", "open", "print", "pwned"}, names
    code = pyast.unparse(_BlankStrings().visit(tree))
    assert not re.search(r"pwned|system|__import__|\bos\b", code), code


_BLOCK = "model M(d: int = 4) {{\n  in x: [B, d]\n{body}\n}}\n"


@pytest.mark.parametrize("text", [
    # strings land in docstrings: quotes, triple quotes, control characters, unicode line breaks
    'model M(s: str = "\'\'\' + __import__(\'os\').system(\'pwned\') + \'\'\'") {\n  in x: [B]\n  out x\n}\n',
    'model M(s: str = "x\\\\") {\n  in x: [B]\n  out x\n}\n',
    'model M(s: str = "a\x00b\x0c\x1b[2J\u2028\u2029\x85end") {\n  in x: [B]\n  out x\n}\n',
    'model M(s: str = "{{ self }}{% raw %}") {\n  in x: [B]\n  out x\n}\n',
    # comments are dropped, whatever they hold
    '# """; import os; os.system("pwned")\nmodel M() {  # \'\'\' \n  in x: [B]  # """\n  out x\n}\n',
    # Python keywords, dunders and builtins as value, input and dimension names
    _BLOCK.format(body="  class = Linear(d, d)(x)\n  out y = class"),
    _BLOCK.format(body="  h = Linear(d, d)(x)\n  self, import, __init__ = Split([1, 1, 2])(h)\n  out y = __init__"),
    "model M(d: int = 4) {\n  in self: [B, d]\n  in class: [B, d]\n  out y = self + class\n}\n",
    "model M(d: int = 4) {\n  in x: [__import__, self, d]\n  out y = Reshape([__import__, self * d])(x)\n}\n",
    "model M(d: int = 4) {\n  in print: [B, d]\n  out exec = Linear(d, d)(print)\n}\n",
    "model M(d: int = 4) {\n  in x: [B, d]\n  out __class__ = Linear(d, d)(x)\n}\n",
    "model M(class: int = 4, __import__: int = 2) {\n  in x: [B, class]\n  out y = Linear(class, __import__)(x)\n}\n",
    "block __import__() {\n  in x: [B]\n  out x\n}\nmodel M() {\n  in x: [B]\n  out y = __import__()(x)\n}\n",
    "model torch() {\n  in x: [B]\n  out x\n}\n",
    "model M() {\n  in x: [B]\n  out x\n}\nmodel nn = M()\n",
    "model M() {\n  in x: [B]\n  out x\n}\nmodel self = M()\n",
    'model M() {\n  in x: [B, 4]\n  y = Linear(4, 4)(x)\n  rename "a\'); import os; (\'" -> "y."\n  out y\n}\n',
    "model M() {\n  in x: [B, 4]\n  y = Linear(4, 4)(x)\n  tie y.__class__ = y.weight\n  out y\n}\n",
])
def test_injection_is_rejected_or_harmless(capsys, tmp_path, text):
    generated = _compile_or_reject(capsys, tmp_path, text)
    if generated is not None:
        _assert_safe(generated)


def test_spec_file_name_cannot_inject_code(capsys, tmp_path):
    """A file name that is no identifier cannot name an importable module: refused with DLC012
    (issue 14), so nothing of it reaches generated code."""
    name = 'evil\nimport os\nos.system("pwned")\n#.dl'
    generated = _compile_or_reject(capsys, tmp_path, "model M() {\n  in x: [B]\n  out x\n}\n", name)
    assert generated is None
    assert not (tmp_path / "gen").exists()


def test_python_names_in_specs_become_safe_identifiers(capsys, tmp_path):
    generated = _compile_or_reject(capsys, tmp_path, "model M(d: int = 4) {\n  in self: [B, d]\n  in class: [B, d]\n"
                                                     "  out y = self + class\n}\n")
    assert generated is not None
    assert re.search(r"def forward\(self, self_\w*: torch.Tensor, class_\w*: torch.Tensor\)", generated)
