"""`dlc fmt`: the canonical layout is idempotent, keeps every comment, keeps the program (the
formatted text parses to the same AST), and is what stdlib/ and specs/ already hold."""
from __future__ import annotations

import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.cli import main
from compiler.diagnostics import CompileError
from compiler.syntax.formatter import format_source, same_program
from compiler.syntax.parser import parse
from compiler.syntax.trivia import scan
from tests.helpers import ROOT
from tests.test_parser import _SEEDS, _mutate, modules, print_module
from tests.fast_lane import examples

SPECS = sorted((ROOT / "stdlib").glob("*.dl")) + sorted((ROOT / "specs").glob("*.dl"))
_IDS = [f"{p.parent.name}/{p.name}" for p in SPECS]


def comments(text: str) -> list[str]:
    return [t.text for t in scan(text) if t.kind == "comment"]


def check_formatting(text: str, width: int = 120) -> str:
    """Format `text` and assert the three properties; returns the formatted text."""
    once = format_source(text, "t.dl", width)
    assert format_source(once, "t.dl", width) == once, "formatting is not idempotent"
    assert same_program(parse(text, "t.dl"), parse(once, "t.dl"))
    assert comments(once) == comments(text)
    return once


# ---------------------------------------------------------------------- the repository's own specs
@pytest.mark.parametrize("path", SPECS, ids=_IDS)
def test_every_stdlib_and_spec_file_is_already_formatted(path):
    text = path.read_text()
    assert format_source(text, str(path)) == text, f"run `dlc fmt {path.relative_to(ROOT)}`"


@pytest.mark.parametrize("width", [50])
@pytest.mark.parametrize("path", SPECS, ids=_IDS)
def test_specs_at_other_widths_keep_program_and_comments(path, width):
    check_formatting(path.read_text(), width)


def _strip_comments(text: str) -> str:
    kept = [re.sub(r"\s*#[^\n\"]*$", "", line) for line in text.splitlines() if not line.lstrip().startswith("#")]
    return "\n".join(kept) + "\n"


def _relayout(text: str, rng: random.Random) -> str:
    """The same tokens with other blanks: each space between tokens (outside strings) becomes a
    run of spaces, a tab or a newline, and indentation is scrambled.  Newlines do not end
    statements in dlc, so the program is unchanged."""
    out = []
    for line in text.splitlines():
        parts = re.split(r'("[^"]*")', line.lstrip())
        for i, part in enumerate(parts):
            if i % 2 == 0:
                parts[i] = re.sub(" ", lambda _: rng.choice([" ", "   ", "\t", "\n", "\n      ", " \n "]), part)
        out.append(" " * rng.randrange(0, 9) + "".join(parts))
    return "\n".join(out) + "\n"


@settings(max_examples=examples(25), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SPECS), st.integers(0, 2**32))
def test_layout_is_canonical_whatever_the_input_layout(path, seed):
    """Without comments, the result depends only on the tokens: re-spaced and re-broken input
    formats to exactly the same text."""
    bare = _strip_comments(path.read_text())
    assert format_source(_relayout(bare, random.Random(seed))) == format_source(bare)


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(modules, st.sampled_from([30, 60, 120]))
def test_random_programs_format_to_the_same_program(module, width):
    check_formatting(print_module(module), width)


def _parses(text: str) -> bool:
    try:
        parse(text, "t.dl")
    except CompileError:
        return False
    return True


@settings(max_examples=examples(30), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32), st.sampled_from(range(len(_SEEDS))))
def test_mutated_specs_that_parse_format_to_the_same_program(seed, which):
    """The parser's fuzzing mutants (tokens deleted, doubled, swapped, replaced): whatever
    parses also formats, keeping its program and comments (a campaign of 3,000 mutants, 634
    of them parsing, found nothing at the time of writing)."""
    text = _mutate(random.Random(seed), _SEEDS[which]).decode("utf-8", "replace")
    if _parses(text):
        check_formatting(text, 30)


_CORPUS = sorted((ROOT / "tests" / "fuzz_corpus").glob("*.dl"))


@pytest.mark.parametrize("path", _CORPUS, ids=[p.name for p in _CORPUS])
def test_fuzz_corpus_inputs_that_parse_format_to_the_same_program(path):
    text = path.read_bytes().decode("utf-8", "replace")
    if _parses(text):
        check_formatting(text)


# ---------------------------------------------------------------------- comments and blank lines
def test_comments_stay_where_they_were():
    text = """\
# file header


import layers   # trailing on an import
# the block's documentation
block A(x: int, y: int = 2) {   # after the brace
    # first statement
    in a: [B, x]    # a short one
    let z = x+y*2   # aligned with the line above


    if z > 3 {  # the header's
        c = ReLU()(a)
        # end of the branch
    } else {
        c = a
    }   # after the closing brace
    out o = c
    # end of the body
}
# end of file
"""
    assert check_formatting(text) == """\
# file header

import layers  # trailing on an import

# the block's documentation
block A(x: int, y: int = 2) {  # after the brace
    # first statement
    in a: [B, x]       # a short one
    let z = x + y * 2  # aligned with the line above

    if z > 3 {  # the header's
        c = ReLU()(a)
        # end of the branch
    } else {
        c = a
    }  # after the closing brace
    out o = c
    # end of the body
}
# end of file
"""


def test_a_statement_with_a_comment_inside_is_kept_as_written_and_reindented():
    text = """\
block A(x: int,     # the width
          y: int) {
        b = Linear(x, y)(   # interior
                a)
  out o = b
}
"""
    assert check_formatting(text) == """\
block A(x: int,     # the width
          y: int) {
    b = Linear(x, y)(   # interior
            a)
    out o = b
}
"""


def test_comments_between_a_closing_brace_and_else_move_into_the_branch():
    text = "block A() {\n    if c {\n        x = a\n    }  # one\n    # two\n    else {\n        x = b\n    }\n}\n"
    assert check_formatting(text) == (
        "block A() {\n    if c {\n        x = a\n        # one\n        # two\n    } else {\n        x = b\n    }\n}\n")


def test_hash_and_braces_inside_strings_are_not_trivia():
    text = 'block A() {\n    require x == "#{", "a # b }"  # real\n    rename "{i}#" -> "}"\n}\n'
    assert comments(check_formatting(text)) == ["# real"]


# ---------------------------------------------------------------------- line breaking
def test_layer_inputs_hang_under_the_configuration():
    text = ("block A(d: int) {\n    attention = MultiHeadAttention(d, heads, dropout, causal=true)"
            "(normalized_input, normalized_input, attention_mask)\n}\n")
    assert check_formatting(text, 80).splitlines()[1:3] == [
        "    attention = MultiHeadAttention(d, heads, dropout, causal=true)(",
        "        normalized_input, normalized_input, attention_mask)"]


def test_parameter_lists_fill_under_the_first_parameter():
    params = ", ".join(f"p{i}: int = {i}" for i in range(12))
    lines = check_formatting(f"model M({params}) {{\n}}\n", 60).splitlines()
    assert lines[0].startswith("model M(p0: int = 0, ") and all(line.startswith(" " * 8 + "p") for line in lines[1:-1])
    assert all(len(line) <= 60 for line in lines) and lines[-2].endswith(") {")


def test_long_conditionals_and_requirements_break_where_a_reader_expects():
    text = ('model M(depth: int = 50) {\n    require depth == 18 or depth == 34 or depth == 50, '
            '"ResNet comes in depths 18, 34 and 50"\n    let blocks = if depth == 18 then [2, 2, 2, 2] '
            'else if depth == 34 then [3, 4, 6, 3] else [3, 4, 23, 3]\n}\n')
    assert check_formatting(text, 90).splitlines()[1:5] == [
        "    require depth == 18 or depth == 34 or depth == 50,",
        '            "ResNet comes in depths 18, 34 and 50"',
        "    let blocks = if depth == 18 then [2, 2, 2, 2] else if depth == 34 then [3, 4, 6, 3]",
        "                 else [3, 4, 23, 3]"]


def test_redundant_parentheses_go_and_number_spellings_stay():
    text = "block A() {\n    let a = ((1 + 2)) * (3)\n    let e = 1e-6 + 0.10 + 1E5\n}\n"
    assert check_formatting(text).splitlines()[1:3] == ["    let a = (1 + 2) * 3", "    let e = 1e-6 + 0.10 + 1E5"]


def test_a_syntax_error_is_a_diagnostic():
    with pytest.raises(CompileError) as info:
        format_source("block A( {\n", "bad.dl")
    assert info.value.diagnostics[0].code == "DLC001"


# ---------------------------------------------------------------------- the command
def test_fmt_check_lists_what_would_change_and_writes_nothing(tmp_path, capsys):
    good, bad = tmp_path / "good.dl", tmp_path / "bad.dl"
    good.write_text("model M() {\n    in x: [B]\n    out y = x\n}\n")
    bad.write_text("model M( ) {\n in x: [ B ]\n out y=x }\n")
    before = bad.read_text()
    assert main(["fmt", "--check", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"would reformat {bad}" in err and str(good) not in err.replace("1 unchanged", "")
    assert bad.read_text() == before
    assert main(["fmt", str(tmp_path)]) == 0
    assert bad.read_text() == good.read_text()
    assert main(["fmt", "--check", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.dl", "good.dl"]     # no temporary file left


def test_fmt_leaves_a_file_that_does_not_parse_alone(tmp_path, capsys):
    spec = tmp_path / "broken.dl"
    spec.write_text("model M( {\n")
    assert main(["fmt", str(spec)]) == 1
    assert "error[DLC001]" in capsys.readouterr().err and spec.read_text() == "model M( {\n"


def test_fmt_reads_standard_input():
    run = subprocess.run([sys.executable, "-m", "compiler.cli", "fmt", "--width", "100", "-"],
                         input="model M( ) { in x: [B]  out y=x }", capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "model M() {\n    in x: [B]\n    out y = x\n}\n"


def test_fmt_width_changes_the_breaks(tmp_path):
    spec = tmp_path / "m.dl"
    spec.write_text(Path(ROOT / "specs" / "bert.dl").read_text())
    assert main(["fmt", "--width", "80", str(spec)]) == 0
    assert max(len(line) for line in spec.read_text().splitlines() if "#" not in line) <= 80
