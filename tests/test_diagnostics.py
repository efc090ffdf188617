"""One test per diagnostic class: the code, the file:line:col, the message, the
caret under the span, the hint, and the CLI's exit status — never a traceback.
Also: independent errors are all reported, and one root cause gives one diagnostic."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from compiler.cli import main
from compiler.diagnostics import CODES, Diagnostic, Severity
from compiler.driver import check


@pytest.fixture(autouse=True)
def workdir(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)        # spans then read `spec.dl:3:5`
    return tmp_path


def diagnose(text: str, name: str = "spec.dl", **others: str) -> list[Diagnostic]:
    for other, source in others.items():
        Path(f"{other}.dl").write_text(source)
    Path(name).write_text(text)
    return check(Path(name), all_blocks=True).diagnostics


def only(diagnostics: list[Diagnostic]) -> Diagnostic:
    assert len(diagnostics) == 1, [f"{d.span} {d.code} {d.message}" for d in diagnostics]
    return diagnostics[0]


def at(d: Diagnostic) -> tuple[str, int, int]:
    return d.span.file, d.span.line, d.span.col


def cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err
    return code, err


def caret_under(err: str, source_line: str, token: str, search_from: int = 0) -> None:
    """The rendered excerpt shows `source_line` with carets exactly under `token`."""
    lines = err.splitlines()
    index = next(i for i, line in enumerate(lines) if line.endswith("| " + source_line))
    prefix = lines[index].index("| ") + 2
    carets = [i for i, c in enumerate(lines[index + 1]) if c == "^"]
    start = prefix + source_line.index(token, search_from)
    assert carets == list(range(start, start + len(token))), "\n".join(lines[index:index + 2])


# ---------------------------------------------------------------------- DLC001
def test_syntax_error(capsys):
    d = only(diagnose("model M(d: int = 4) {\n    in x: [B, d]\n    y = Linear(d d)(x)\n    out y\n}\n"))
    assert (d.code, at(d)) == ("DLC001", ("spec.dl", 3, 18))
    assert d.message.startswith("unexpected 'd'; expected") and d.hint == "separate arguments with ','"
    code, err = cli(capsys, "check", "spec.dl")
    assert code == 1
    assert err.startswith("spec.dl:3:18: error[DLC001]: unexpected 'd'")
    caret_under(err, "    y = Linear(d d)(x)", "d", search_from=17)
    assert "hint: separate arguments with ','" in err and "1 error(s), 0 warning(s)" in err


def test_syntax_error_hints(capsys):
    d = only(diagnose("model M(d: int = 4) {\n  require d = 4\n  in x: [B, d]\n  out x\n}"))
    assert (d.code, d.span.line, d.span.col, d.hint) == ("DLC001", 2, 13, "use `==` to compare values")
    d = only(diagnose("model M(act: str = 'relu') {}"))
    assert (d.span.col, d.hint) == (20, "strings use double quotes")
    d = only(diagnose("model M(d: int = 4) {\n  let k = 1 if d > 2 else 0\n}"))
    assert (d.span.line, d.hint) == (2, "conditional expressions are written `if COND then A else B`")


def test_file_that_is_not_utf8(capsys):
    Path("spec.dl").write_bytes(b"model M() {\n  let s = \"\xff\"\n}")
    d = only(check(Path("spec.dl")).diagnostics)
    assert (d.code, d.span.line, d.message) == ("DLC001", 2, "file is not UTF-8 text")


# ---------------------------------------------------------------------- DLC002
def test_undefined_name_with_did_you_mean(capsys):
    text = "model M(d: int = 4) {\n  in tokens: [B, d]\n  out y = Linear(d, d)(tokns)\n}\n"
    d = only(diagnose(text))
    assert (d.code, at(d), d.message, d.hint) == ("DLC002", ("spec.dl", 3, 24), "`tokns` is not defined",
                                                  "did you mean `tokens`?")
    code, err = cli(capsys, "check", "spec.dl")
    assert code == 1 and "spec.dl:3:24: error[DLC002]: `tokns` is not defined" in err
    caret_under(err, "  out y = Linear(d, d)(tokns)", "tokns")
    assert "hint: did you mean `tokens`?" in err


def test_undefined_parameter_in_a_dimension():
    # Inputs introduce their symbols, so only declared outputs (and bodies) can misspell one.
    d = only(diagnose("model M(d_model: int = 4) {\n  in x: [B, d_model]\n  out y: [B, d_modle] = x\n}"))
    assert (d.code, d.span.line, d.hint) == ("DLC002", 3, "did you mean `d_model`?")


# ---------------------------------------------------------------------- DLC004
def test_unknown_op_or_block(capsys):
    text = "model M(d: int = 4) {\n  in x: [B, d]\n  out y = Linaer(d, d)(x)\n}\n"
    d = only(diagnose(text))
    assert (d.code, at(d), d.message, d.hint) == ("DLC004", ("spec.dl", 3, 11), "unknown block or op `Linaer`",
                                                  "did you mean `Linear`?")
    code, err = cli(capsys, "check", "spec.dl")
    assert code == 1
    caret_under(err, "  out y = Linaer(d, d)(x)", "Linaer")


def test_unknown_block_suggests_imported_blocks():
    d = only(diagnose("import attention\nmodel M(d: int = 8) {\n  in x: [B, S, d]\n"
                      "  out y = MultiHeadAtention(d, 2)(x, x)\n}"))
    assert (d.code, d.span.line, d.hint) == ("DLC004", 4, "did you mean `MultiHeadAttention`?")
    d = only(diagnose("model M(d: int = 8) {\n  in x: [B, d]\n  out y = Zqxjw(d)(x)\n}"))
    assert d.code == "DLC004" and "import" in d.hint


def test_unknown_model_alias_target():
    d = only(diagnose("model Base(d: int = 4) {\n  in x: [B, d]\n  out x\n}\nmodel Small = Bsae(d=2)\n"))
    assert (d.code, d.span.line, d.message, d.hint) == ("DLC004", 5, "unknown block `Bsae`", "did you mean `Base`?")


# ---------------------------------------------------------------------- DLC005
def test_unknown_parameter_of_an_op(capsys):
    d = only(diagnose("model M(d: int = 4) {\n  in x: [B, d]\n  out y = Linear(d, d, biass=false)(x)\n}"))
    assert (d.code, at(d), d.message, d.hint) == ("DLC005", ("spec.dl", 3, 24), "Linear has no argument `biass`",
                                                  "did you mean `bias`?")
    code, err = cli(capsys, "check", "spec.dl")
    assert code == 1
    caret_under(err, "  out y = Linear(d, d, biass=false)(x)", "biass=false")


def test_wrong_argument_type():
    d = only(diagnose("model M(d: int = 4) {\n  in x: [B, d]\n  out y = Linear(d, d / 2)(x)\n}"))
    assert (d.code, d.span.line, d.span.col) == ("DLC005", 3, 21)
    assert "out_features" in d.message and "2.0" in d.message and d.hint == "use // for integer division"
    d = only(diagnose("model M(d: int = 4) {\n  in x: [B, d]\n  out y = Dropout(p=1.5)(x)\n}"))
    assert d.code == "DLC005" and "less than 1" in d.message and "1.5" in d.message


def test_block_parameters_and_inputs():
    block = "block Blk(d: int, h: int = 2) {\n  in x: [B, d]\n  out y = x\n}\n"
    d = only(diagnose(block + "model M() {\n  in x: [B, 4]\n  out y = Blk(4, hh=3)(x)\n}"))
    assert (d.code, d.span.line, d.message, d.hint) == ("DLC005", 7, "`Blk` has no parameter `hh`",
                                                        "did you mean `h`?")
    assert d.notes[0].span.line == 1 and d.notes[0].message == "defined here"
    d = only(diagnose(block + "model M() {\n  in x: [B, 4]\n  out y = Blk()(x)\n}"))
    assert (d.code, d.message) == ("DLC005", "`Blk` needs a value for parameter `d`")
    d = only(diagnose(block + "model M() {\n  in x: [B, 4]\n  out y = Blk(4)(x, x)\n}"))
    assert (d.code, d.message) == ("DLC005", "`Blk` takes 1 input, got 2")
    d = only(diagnose(block + 'model M() {\n  in x: [B, 4]\n  out y = Blk("4")(x)\n}'))
    assert (d.code, d.message) == ("DLC005", 'parameter `d` expects int, got str "4"')
    d = only(diagnose(block + "model M() {\n  in x: [B, 4]\n  out y = repeat(2) Blk(4)(none)\n}"))
    assert d.code == "DLC005" and "required" in d.message


def test_enum_parameter():
    d = only(diagnose('model M(act: {"relu", "gelu"} = "gleu") {\n  in x: [B, 4]\n  out x\n}'))
    assert (d.code, d.span.line, d.hint) == ("DLC005", 1, "did you mean `gelu`?")


# ---------------------------------------------------------------------- DLC006
def test_failed_requirement(capsys):
    text = "model M(d: int = 768, heads: int = 10) {\n  require d % heads == 0\n  in x: [B, d]\n  out x\n}\n"
    d = only(diagnose(text))
    assert (d.code, at(d)) == ("DLC006", ("spec.dl", 2, 3))
    assert d.message == "requirement `d % heads == 0` does not hold"
    assert d.hint == "d % heads == 0  evaluates as  768 % 10 == 0, i.e. 8 == 0"
    code, err = cli(capsys, "check", "spec.dl")
    assert code == 1
    caret_under(err, "  require d % heads == 0", "require d % heads == 0")
    assert "768 % 10 == 0" in err


def test_failed_requirement_with_its_own_message_and_precedence_kept():
    d = only(diagnose('model M(a: int = 1, b: int = -2) {\n  require (a + b) * 3 >= 0, "a + b must not be negative"\n'
                      "  in x: [B, 4]\n  out x\n}"))
    assert (d.code, d.message) == ("DLC006", "a + b must not be negative")
    assert d.hint.endswith("evaluates as  (1 + (-2)) * 3 >= 0, i.e. -3 >= 0")


def _require_line(library: str) -> int:
    lines = (Path(__file__).parent.parent / "stdlib" / library).read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if line.strip().startswith("require"))


def test_requirement_in_a_library_block_is_reported_at_the_users_line():
    """The user's call is the primary location (CI annotations land on the user's files, issue 14);
    the library's `require` line is a note naming the instantiation."""
    d = only(diagnose('import attention\nmodel M() {\n  in x: [B, S, 12]\n'
                      '  out y = MultiHeadAttention(12, 5)(x, x)\n}'))
    assert (d.code, d.message, d.span.file, d.span.line) == ("DLC006", "heads must divide d_model", "spec.dl", 4)
    assert "12 % 5 == 0" in d.hint
    library = d.notes[0]
    assert library.span.file.endswith("stdlib/attention.dl") and library.span.line == _require_line("attention.dl")
    assert "raised here in the library" in library.message and "MultiHeadAttention(d_model=12, heads=5" in library.message


# ---------------------------------------------------------------------- DLC007
_NESTED = """block Inner(d: int) {
    in x: [B, S, d]
    h = Linear(d, d * 2)(x)
    out y = x + h
}
block Mid(d: int) {
    in x: [B, S, d]
    out y = Inner(d)(x)
}
model M(d: int = 8, n: int = 3) {
    in x: [B, S, d]
    out y = repeat(n) Mid(d)(x)
}
"""


def test_shape_mismatch_deep_inside_a_repeat(capsys):
    """Planted in a block used by a block that is repeated: reported once, at the op's line."""
    d = only(diagnose(_NESTED))
    assert (d.code, at(d)) == ("DLC007", ("spec.dl", 4, 13))
    assert "[B, S, 8]" in d.message and "[B, S, 16]" in d.message
    assert [(n.span.line, n.message) for n in d.notes] == [(2, "input `x` is [B, S, 8], from here"),
                                                           (3, "`h` is [B, S, 16], from here"),
                                                           (8, "in instance `M.y[0].y` (and 2 other instances)")]
    code, err = cli(capsys, "check", "spec.dl")
    assert code == 1 and err.count("error[") == 1
    caret_under(err, "    out y = x + h", "x + h")
    caret_under(err, "    h = Linear(d, d * 2)(x)", "Linear(d, d * 2)(x)")


def test_shape_mismatch_at_an_op():
    d = only(diagnose("model M(d: int = 8) {\n  in x: [B, S, d]\n  a = Linear(d, 2 * d)(x)\n"
                      "  out y = LayerNorm(d)(a)\n}"))
    assert (d.code, d.span.line, d.span.col) == ("DLC007", 4, 11)
    assert "must be 8, got 16" in d.message
    assert d.notes[0].span.line == 3 and "[B, S, 16]" in d.notes[0].message


def test_shape_mismatch_at_a_block_input():
    d = only(diagnose("block Blk(d: int) {\n  in x: [B, S, d]\n  out y = x\n}\n"
                      "model M() {\n  in x: [B, S, 6]\n  out y = Blk(4)(x)\n}"))
    assert (d.code, d.span.line) == ("DLC007", 7)
    assert "expects [B, S, 4], got [B, S, 6]" in d.message
    assert any(n.span.line == 2 and "declared as" in n.message and "d=4" in n.message for n in d.notes)


def test_declared_output_shape():
    d = only(diagnose("model M(d: int = 8) {\n  in x: [B, d]\n  out y: [B, 4] = Linear(d, d)(x)\n}"))
    assert (d.code, d.span.line, d.message) == ("DLC007", 3, "output `y` is declared [B, 4] but is [B, 8]")


def test_each_repeated_layer_takes_the_previous_output():
    d = only(diagnose("model M(d: int = 8) {\n  in x: [B, d]\n  out y = repeat(2) Linear(d, 2 * d)(x)\n}"))
    assert (d.code, d.span.line) == ("DLC007", 3)
    assert d.message.startswith("Linear[1]: ") and "must be 8, got 16" in d.message
    assert [(n.span.line, n.message) for n in d.notes] == [(2, "input `x` is [B, 8], from here")]


# ---------------------------------------------------------------------- DLC008
def test_float_ids_into_embedding(capsys):
    d = only(diagnose("model M(d: int = 8) {\n  in ids: [B, S]\n  out y = Embedding(100, d)(ids)\n}"))
    assert (d.code, at(d)) == ("DLC008", ("spec.dl", 3, 11))
    assert "integer ids" in d.message and "float" in d.message
    assert d.notes[0].span.line == 2 and "int64" in d.hint
    code, err = cli(capsys, "check", "spec.dl")
    assert code == 1 and "error[DLC008]" in err


def test_dtype_mismatch_at_a_block_input():
    d = only(diagnose("block Blk() {\n  in ids: [B] int64\n  out ids\n}\n"
                      "model M() {\n  in x: [B]\n  out y = Blk()(x)\n}"))
    assert (d.code, d.span.line) == ("DLC008", 7) and "int64" in d.message


# ---------------------------------------------------------------------- DLC009
def test_block_using_itself(capsys):
    d = only(diagnose("block A(d: int) {\n  in x: [B, d]\n  out y = A(d)(x)\n}\n"
                      "model M() {\n  in x: [B, 4]\n  out y = A(4)(x)\n}"))
    assert (d.code, at(d), d.message) == ("DLC009", ("spec.dl", 3, 11), "block `A` uses itself")
    assert d.notes[0].span.line == 1


def test_blocks_using_each_other():
    d = only(diagnose("block A(d: int) {\n  in x: [B, d]\n  out y = C(d)(x)\n}\n"
                      "block C(d: int) {\n  in x: [B, d]\n  out y = A(d)(x)\n}\n"
                      "model M() {\n  in x: [B, 4]\n  out y = A(4)(x)\n}"))
    assert (d.code, d.span.line) == ("DLC009", 7)
    assert {n.span.line for n in d.notes} >= {3, 11}


def test_import_cycle(capsys):
    d = only(diagnose("import one\nmodel M() {\n  in x: [B]\n  out x\n}", one="import two\n", two="import one\n"))
    assert (d.code, d.message) == ("DLC009", "import cycle: one -> two -> one")
    assert d.span.file in ("one.dl", "two.dl") and d.hint
    code, err = cli(capsys, "check", "spec.dl")
    assert code == 1 and "error[DLC009]: import cycle" in err


# ---------------------------------------------------------------------- DLC003
def test_duplicate_name(capsys):
    d = only(diagnose("model M(d: int = 8) {\n  in x: [B, d]\n  h = Linear(d, d)(x)\n  h = Linear(d, d)(h)\n"
                      "  out h\n}"))
    assert (d.code, at(d), d.message) == ("DLC003", ("spec.dl", 4, 3), "`h` is already defined")
    assert d.notes[0].span.line == 3 and d.notes[0].message == "first defined here"
    code, err = cli(capsys, "check", "spec.dl")
    assert code == 1 and "note: spec.dl:3:3: first defined here" in err


def test_duplicate_blocks_outputs_and_shadowing():
    one = "block A() {\n  in x: [B]\n  out x\n}\n"
    d = only(diagnose(one + one + "model M() {\n  in x: [B]\n  out y = A()(x)\n}"))
    assert (d.code, d.span.line, d.notes[0].span.line) == ("DLC003", 5, 1)
    d = only(diagnose("model M() {\n  in x: [B]\n  out x\n  out x\n}"))
    assert d.code == "DLC003" and d.span.line == 4
    d = only(diagnose("model M() {\n  in x: [B, 4]\n  Linear = Dropout(0.1)\n  out y = Linear(x)\n}"))
    assert d.code == "DLC003" and "shadows the op" in d.message


def test_model_variant_named_like_a_block_or_model():
    model = "model M(d: int = 4) {\n  in x: [B, d]\n  out y = Linear(d, d)(x)\n}\n"
    d = only(diagnose(model + "model M = M(d=2)\n"))
    assert (d.code, d.span.line, d.span.col, d.message) == ("DLC003", 5, 7, "`M` is already defined")
    assert d.notes[0].span.line == 1
    d = only(diagnose(model + "model A = M(d=2)\nmodel A = M(d=3)\n"))
    assert (d.code, d.span.line, d.notes[0].span.line) == ("DLC003", 6, 5)
    d = only(diagnose("import layers\n" + model + "model FeedForward = M(d=3)\n"))
    assert (d.code, d.span.line) == ("DLC003", 6) and d.notes[0].span.file.endswith("layers.dl")


# ---------------------------------------------------------------------- DLC010
def test_missing_import(capsys):
    d = only(diagnose("import atention\nmodel M() {\n  in x: [B]\n  out x\n}"))
    assert (d.code, at(d), d.message, d.hint) == ("DLC010", ("spec.dl", 1, 8), "cannot find module `atention`",
                                                  "did you mean `attention`?")
    d = only(diagnose("import zzzzzz\nmodel M() {\n  in x: [B]\n  out x\n}"))
    assert d.code == "DLC010" and d.hint.startswith("looked in")
    code, err = cli(capsys, "check", "spec.dl")
    assert code == 1
    caret_under(err, "import zzzzzz", "zzzzzz")


# ---------------------------------------------------------------------- DLC011, DLC013, DLC014, DLC015
def test_type_error():
    d = only(diagnose('model M() {\n  let s = "a" * 2\n  in x: [B]\n  out x\n}'))
    assert (d.code, d.span.line, d.span.col) == ("DLC011", 2, 11) and "str" in d.message


def test_resource_limit():
    d = only(diagnose("model M() {\n  in x: [B, 4]\n  out y = repeat(100000) Linear(4, 4)(x)\n}"))
    assert (d.code, d.span.line, d.span.col) == ("DLC013", 3, 18) and "100000" in d.message


def _chain(depth: int) -> str:
    blocks = [f"block L{i}(d: int) {{\n  in x: [B, d]\n  out y = L{i + 1}(d)(x)\n}}" for i in range(depth - 1)]
    blocks.append(f"block L{depth - 1}(d: int) {{\n  in x: [B, d]\n  out y = Linear(d, d)(x)\n}}")
    return "\n".join(blocks) + "\nmodel M() {\n  in x: [B, 4]\n  out y = L0(4)(x)\n}\n"


def test_blocks_nested_too_deeply():
    assert diagnose(_chain(60)) == []
    d = only(diagnose(_chain(80)))
    assert d.code == "DLC013" and "nested deeper than" in d.message


def test_repeat_of_a_stateless_op_is_caught_by_check(capsys):
    d = only(diagnose("model M() {\n  in x: [B, 4]\n  out y = repeat(3) ReLU()(x)\n}"))
    assert (d.code, d.span.line, d.span.col) == ("DLC005", 3, 21) and "ReLU has none" in d.message
    assert cli(capsys, "check", "spec.dl")[0] == 1


def test_missing_output():
    d = only(diagnose("model M() {\n  in x: [B, 4]\n}"))
    assert (d.code, d.span.line, d.span.col, d.message) == ("DLC014", 1, 7, "block `M` has no output")


def test_bad_tie():
    d = only(diagnose("model M() {\n  in x: [B, 4]\n  a = Linear(4, 8)(x)\n  out y = Linear(8, 8)(a)\n"
                      "  tie y.weight = a.weight\n}"))
    assert (d.code, d.span.line) == ("DLC015", 5) and "[8, 4]" in d.message and "[8, 8]" in d.message


# ---------------------------------------------------------------------- DLC012
@pytest.mark.parametrize("name, problem", [("training", "is an attribute of torch.nn.Module"),
                                           ("forward", "is an attribute of torch.nn.Module"),
                                           ("class", "is a Python keyword"), ("__init__", "is a dunder name")])
def test_invalid_layer_name(capsys, name, problem):
    text = f"model M(d: int = 4) {{\n  in x: [B, d]\n  {name} = Linear(d, d)\n  out y = {name}(x)\n}}\n"
    d = only(diagnose(text))
    assert (d.code, d.message) == ("DLC012", f"`{name}` cannot name a layer: it {problem}")
    assert d.span.line == 4
    for argv in (["check", "spec.dl"], ["compile", "spec.dl", "-o", "out"]):
        code, err = cli(capsys, *argv)
        assert code == 1 and f"error[DLC012]: `{name}` cannot name a layer" in err
    assert not Path("out").exists()


def test_invalid_class_names():
    d = only(diagnose("block class() {\n  in x: [B]\n  out x\n}\nmodel M() {\n  in x: [B]\n  out y = class()(x)\n}"))
    assert d.code == "DLC012" and "`class` cannot name a generated class" in d.message
    d = only(diagnose("model M() {\n  in x: [B]\n  out x\n}\nmodel __init__ = M()\n"))
    assert (d.code, d.span.line, d.span.col) == ("DLC012", 5, 7)


# ---------------------------------------------------------------------- DLC020 / DLC021
_UNUSED = ("model M(d: int = 4) {\n  in x: [B, d]\n  in extra: [B, d]\n  h = Linear(d, d)(x)\n"
           "  out y = Linear(d, d)(x)\n}\n")


def test_unused_input_and_result_are_warnings(capsys):
    unused_input, unused_result = diagnose(_UNUSED)
    assert (unused_input.code, unused_input.severity, unused_input.span.line) == ("DLC020", Severity.WARNING, 3)
    assert unused_input.message == "input `extra` of `M` is never used"
    assert (unused_result.code, unused_result.severity, unused_result.span.line) == ("DLC021", Severity.WARNING, 4)
    code, err = cli(capsys, "check", "spec.dl")
    assert code == 0 and "spec.dl:3:3: warning[DLC020]" in err and "spec.dl:4:7: warning[DLC021]" in err
    assert "0 error(s), 2 warning(s)" in err
    caret_under(err, "  h = Linear(d, d)(x)", "Linear(d, d)(x)")


def test_strict_makes_warnings_fail(capsys):
    Path("spec.dl").write_text(_UNUSED)
    code, err = cli(capsys, "check", "--strict", "spec.dl")
    assert code == 1 and "error[DLC020]" in err and "2 error(s), 0 warning(s)" in err
    code, _ = cli(capsys, "compile", "--strict", "spec.dl", "-o", "out")
    assert code == 1 and not Path("out").exists()
    code, _ = cli(capsys, "compile", "spec.dl", "-o", "out")
    assert code == 0 and Path("out/spec.py").exists()


# ---------------------------------------------------------------------- several errors, no cascades
def test_independent_errors_are_all_reported(capsys):
    text = (_NESTED.replace("model M", "model Unused")
            + "model M(d: int = 8) {\n"
            "  in x: [B, d]\n"
            "  a = Linear(d, d)(undefined_thing)\n"    # 16: DLC002
            "  b = Linaer(d, d)(x)\n"                  # 17: DLC004
            "  c = Dropout(p=2.0)(x)\n"                # 18: DLC005
            "  out y = x\n"
            "}\n")
    found = diagnose(text)
    assert [(d.code, d.span.line) for d in found] == [("DLC002", 16), ("DLC004", 17), ("DLC005", 18), ("DLC007", 4)]
    code, err = cli(capsys, "check", "spec.dl")
    assert code == 1 and "4 error(s)" in err


def test_one_root_cause_gives_one_diagnostic():
    text = ("block Bad(d: int) {\n  in x: [B, d]\n  out y = Linear(d, d)(missing)\n}\n"
            "model M(d: int = 4) {\n"
            "  in x: [B, d]\n"
            "  a = Linear(d, 2 * d)(x)\n"
            "  b = LayerNorm(d)(a)\n"          # the one shape error
            "  c = Linear(d, d)(b)\n"          # uses the failed value: silent
            "  e = c + b * 2.0\n"              # silent
            "  f = Bad(d)(x)\n  g = Bad(d)(e)\n  h = Bad(d)(f)\n"   # one error inside Bad, reported once
            "  out y = e + h\n"
            "}\n")
    found = diagnose(text)
    assert [(d.code, d.span.line) for d in found] == [("DLC002", 3)]
    found = diagnose(text.replace("missing", "x"))
    assert [(d.code, d.span.line) for d in found] == [("DLC007", 8)]


def test_poisoned_names_do_not_cascade():
    found = diagnose("model M(d: int = 4) {\n  in x: [B, d]\n  a = Linaer(d, d)(x)\n  b = a + a\n"
                     "  c, e = Split([2, 2])(b)\n  out y = Linear(d, d)(c)\n}\n")
    assert [(d.code, d.span.line) for d in found] == [("DLC004", 3)]


def test_every_code_can_be_explained(capsys):
    for code in CODES:
        assert main(["explain", code]) == 0
        assert capsys.readouterr().out.startswith(f"{code}: {CODES[code][0]}")


def test_rendering_has_location_caret_notes_and_hint(capsys):
    diagnose("import attention\nmodel M() {\n  in x: [B, S, 12]\n  out y = MultiHeadAttention(12, 5)(x, x)\n}")
    code, err = cli(capsys, "check", "spec.dl")
    assert code == 1
    lines = err.splitlines()
    line = _require_line("attention.dl")
    assert lines[0] == "spec.dl:4:11: error[DLC006]: heads must divide d_model"
    assert lines[1].endswith("|   out y = MultiHeadAttention(12, 5)(x, x)")
    assert set(lines[2].split("| ", 1)[1].strip()) == {"^"}
    assert re.match(rf"  note: \S*stdlib/attention\.dl:{line}:5: raised here in the library, in `MultiHeadAttention\(",
                    lines[3])
    assert lines[4].endswith('|     require d_model % heads == 0, "heads must divide d_model"')
    assert any(line.startswith("  hint: ") for line in lines)


def test_required_input_after_an_optional_one():
    d = only(diagnose("model M(d: int = 4) {\n  in m: [B, d] bool optional\n  in x: [B, d]\n  out x\n}"))
    assert (d.code, d.span.line, d.span.col) == ("DLC005", 3, 3)
    assert d.message == "required input `x` follows optional input `m`"
    assert d.notes[0].span.line == 2 and "optional inputs last" in d.hint
