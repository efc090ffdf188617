"""Issue 13's papercuts: a readable AST dump, -D on dump, help on every option, shell
completion, and `dlc check` on a folder without specs."""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from compiler.cli import _parser, main
from tests.helpers import ROOT


@pytest.fixture(autouse=True)
def _root(monkeypatch):
    monkeypatch.chdir(ROOT)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_ast_dump_is_indented_and_reads_like_the_spec(capsys):
    code, out, _ = run(capsys, "dump", "specs/transformer.dl", "--stage", "ast")
    lines = out.splitlines()
    assert code == 0 and len(lines) > 30 and max(map(len, lines)) <= 120
    assert "    BlockDef(  # 6:1" in lines
    assert any(line.strip().startswith("Assign(targets=('positions',), value=Call`SinusoidalPositions(max_len, d_model)`)")
               for line in lines)


@pytest.mark.parametrize("stage", ["ir", "shapes", "opt"])
def test_dump_takes_overrides(capsys, stage):
    code, out, _ = run(capsys, "dump", "specs/transformer.dl", "--stage", stage, "-D", "layers=1", "-D", "vocab=100")
    assert code == 0 and "graph Transformer = Transformer(vocab=100, d_model=512, heads=8, d_ff=2048, layers=1," in out
    assert stage == "ir" or "[B, T, 100]" in out          # types exist from the shapes stage on


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_option_has_help():
    parser = _parser()
    missing = []
    for name, sub in {"dlc": parser, **_subparsers(parser)}.items():
        for action in sub._actions:
            if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) and not action.help:
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, missing


def test_shell_completion(capsys):
    pytest.importorskip("shtab")
    code, out, _ = run(capsys, "completion", "bash")
    assert code == 0 and "summary" in out and "--max-params" in out and "complete" in out


def test_check_of_a_folder_without_specs_is_an_error(capsys, tmp_path):
    (tmp_path / "notes.txt").write_text("no specs here")
    code, out, err = run(capsys, "check", str(tmp_path))
    assert code == 2 and f"no .dl spec in {tmp_path}" in err and "ok" not in out
    assert run(capsys, "check", "specs")[0] == 0


def test_rich_table_when_installed(capsys):
    pytest.importorskip("rich")
    from compiler.driver import check
    from compiler.tools.summary import summarize_program
    from compiler.tools.summary_render import render_rich
    render_rich(summarize_program(check(Path("specs/tagger.dl")).program), {"B": 2, "T": 5}, 1)
    out = capsys.readouterr().out
    assert "4,936,209" in out and "RecurrentEncoder" in out and "┃ layer" in out
