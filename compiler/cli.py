"""The `dlc` command line: argument parsing and reporting, nothing else."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from compiler import __version__
from compiler.diagnostics import CODES, Diagnostic, Severity, SourceCache, lookup, render, use_color
from compiler.diagnostics.codes import RESOURCE_LIMIT

EXIT_OK, EXIT_DIAGNOSTICS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


def _override(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    name, raw = text.split("=", 1)
    return name, _value(raw.strip())


def _value(raw: str) -> Any:
    """A -D value as the spec would write it: 12, 0.1, true, "gelu", or a list like [64, 128]."""
    if raw.startswith("[") and raw.endswith("]"):
        inner = raw[1:-1].strip()
        return [_value(item.strip()) for item in inner.split(",")] if inner else []
    for convert in (int, float):
        try:
            return convert(raw)
        except ValueError:
            pass
    if raw in ("true", "false"):
        return raw == "true"
    return raw.strip('"')


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dlc", description="Compile neural-network block-graph specs to PyTorch.")
    parser.add_argument("--version", action="version", version=f"dlc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    comp = sub.add_parser("compile", help="compile specs to Python modules",
                          description="Check and compile specs; writes DIR/<spec>.py for each.")
    comp.add_argument("specs", nargs="+", type=Path, metavar="SPEC")
    comp.add_argument("-o", "--output", type=Path, default=Path("generated"), metavar="DIR",
                      help="output folder (default: generated/)")
    comp.add_argument("-O", dest="opt", type=int, choices=(0, 1, 2), default=1, help="optimization level (default 1)")
    comp.add_argument("--passes", default="", help="comma-separated passes to enable in addition")
    comp.add_argument("--no-pass", action="append", default=[], metavar="NAME", help="disable a pass")
    comp.add_argument("-D", dest="overrides", action="append", type=_override, default=[], metavar="NAME=VALUE",
                      help="override a model parameter")
    comp.add_argument("--check", action="store_true", help="write nothing; exit 1 when an output is stale")
    comp.add_argument("--explain", action="store_true", help="print what each pass changed")
    comp.add_argument("--inference", action="store_true",
                      help="build for inference only: also run passes that assume the model never trains "
                           "(drop-dropout)")
    comp.add_argument("--strict", action="store_true", help="treat warnings as errors")
    comp.add_argument("--force", action="store_true",
                      help="overwrite output files that dlc did not generate (without it they are left alone)")

    chk = sub.add_parser("check", help="parse and shape-check specs, write nothing",
                         description="Parse, resolve and shape-check every spec; exit 1 on any error.")
    chk.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="spec files or folders")
    chk.add_argument("--strict", action="store_true", help="treat warnings as errors")
    chk.add_argument("--format", choices=("text", "json", "github", "sarif"), default="text",
                     help="text (default), json (schema v1), github (workflow annotations) or sarif (2.1.0)")
    chk.add_argument("-D", dest="overrides", action="append", type=_override, default=[], metavar="NAME=VALUE")
    chk.add_argument("--tp", type=int, metavar="N", help="also prove every model shards N ways (tensor parallel)")

    dump = sub.add_parser("dump", help="print one stage's output", description="Print the AST, IR, typed IR or optimized IR.")
    dump.add_argument("spec", type=Path)
    dump.add_argument("--stage", choices=("ast", "ir", "shapes", "opt"), default="shapes")
    dump.add_argument("-O", dest="opt", type=int, choices=(0, 1, 2), default=1)

    exp = sub.add_parser("explain", help="explain a diagnostic code or an op",
                         description="Explain a diagnostic code (DLC007) or document a primitive op (Conv2d).")
    exp.add_argument("code", metavar="CODE_OR_OP", help="a code number (DLC007) or name (shape-mismatch), or an op")
    sub.add_parser("ops", help="list the primitive ops", description="List every primitive op with its signature.")
    _add_language_tools(sub)
    return parser


def _add_language_tools(sub) -> None:
    from compiler.syntax import DEFAULT_WIDTH
    fmt = sub.add_parser("fmt", help="format specs in place", description="Rewrite .dl files in the canonical "
                         "layout (comments kept); `-` formats standard input to standard output.")
    fmt.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="spec files or folders, or -")
    fmt.add_argument("--check", action="store_true", help="write nothing; list the files that would change, exit 1")
    fmt.add_argument("--width", type=int, default=DEFAULT_WIDTH, metavar="N",
                     help=f"line width to break at (default {DEFAULT_WIDTH})")
    sub.add_parser("lsp", help="run the language server on stdin/stdout",
                   description="The dlc language server (needs the `lsp` extra: pip install 'dlc[lsp]').")


def _spec_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(path.rglob("*.dl")))
        else:
            files.append(path)
    return files


class Reporter:
    def __init__(self, strict: bool = False):
        self.sources = SourceCache()
        self.color = use_color(sys.stderr)
        self.strict = strict
        self.errors = 0
        self.warnings = 0

    def report(self, diagnostics: list[Diagnostic]) -> None:
        for d in diagnostics:
            if d.severity is Severity.WARNING and self.strict:
                d = Diagnostic(d.code, d.message, d.span, Severity.ERROR, d.notes, d.hint)
            self.errors += d.is_error
            self.warnings += not d.is_error
            print(render(d, self.sources, self.color), file=sys.stderr)

    def summary(self) -> None:
        if self.errors or self.warnings:
            print(f"{self.errors} error(s), {self.warnings} warning(s)", file=sys.stderr)


def _missing(paths: list[Path]) -> list[Path]:
    return [p for p in paths if not p.exists()]


def _strict(diagnostics: list[Diagnostic], strict: bool) -> list[Diagnostic]:
    if not strict:
        return diagnostics
    return [Diagnostic(d.code, d.message, d.span, Severity.ERROR, d.notes, d.hint) for d in diagnostics]


def cmd_check(args) -> int:
    from compiler.diagnostics.report import to_github, to_json, to_sarif
    from compiler.driver import check_diagnostics
    files = _spec_files(args.paths)
    found = [d for spec in files for d in check_diagnostics(spec, dict(args.overrides), all_blocks=True, tp=args.tp)]
    found = _strict(found, args.strict)
    status = EXIT_DIAGNOSTICS if any(d.is_error for d in found) else EXIT_OK
    if args.format != "text":
        formatters = {"json": lambda: to_json(found, [str(f) for f in files]),
                      "github": lambda: to_github(found),
                      "sarif": lambda: to_sarif(found, status, sys.argv[1:])}
        text = formatters[args.format]()
        if text:
            _print_or_closed(text, status)
        return status
    reporter = Reporter(args.strict)
    reporter.report(found)
    reporter.summary()
    if not reporter.errors:
        print(f"checked {len(files)} spec(s): ok")
    return EXIT_DIAGNOSTICS if reporter.errors else EXIT_OK


class _ClosedPipe(Exception):
    """The reader went away (`dlc check ... | head`); the exit status is decided already."""

    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


def _print_or_closed(text: str, status: int) -> None:
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:
        raise _ClosedPipe(status) from None


def _silence_stdout() -> None:
    """After a closed pipe, point stdout at /dev/null so the interpreter's final flush is quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def cmd_compile(args) -> int:
    from compiler.driver import compile_spec, output_path
    from compiler.outputs import PACKAGE_INIT, Output, check_outputs, unchanged, write_outputs
    from compiler.passes import select_passes
    reporter = Reporter(args.strict)
    try:
        passes = select_passes(args.opt, [p for p in args.passes.split(",") if p], args.no_pass, args.inference)
    except ValueError as exc:
        print(f"dlc compile: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    outputs: list[Output] = []
    for spec in args.specs:
        result = compile_spec(spec, overrides=dict(args.overrides), passes=passes, inference=args.inference)
        reporter.report(result.diagnostics)
        if args.explain:
            print("\n".join(result.log) or f"{spec}: no pass changed anything")
        if result.text is not None:
            outputs.append(Output(spec, output_path(spec, args.output), result.text))
    if not reporter.errors:
        reporter.report(check_outputs(outputs, args.output, args.force))
    reporter.summary()
    if reporter.errors:
        return EXIT_DIAGNOSTICS      # nothing is written unless every spec compiled and every output may be
    if args.check:
        stale = [str(out.path) for out in outputs if not unchanged(out.path, out.text)]
        for path in stale:
            print(f"stale: {path}", file=sys.stderr)
        return EXIT_DIAGNOSTICS if stale else EXIT_OK
    init = args.output / "__init__.py"
    package = [Output(args.specs[0], init, PACKAGE_INIT)] if outputs and not init.exists() else []
    try:
        written = set(write_outputs(outputs + package, args.output))
    except OSError as exc:
        where = exc.filename or args.output
        print(f"dlc compile: error[DLC017]: cannot write {where}: {exc.strerror}; nothing was written",
              file=sys.stderr)
        return EXIT_DIAGNOSTICS
    for out in outputs:
        print(f"{'wrote' if out.path in written else 'unchanged'} {out.path}")
    return EXIT_OK


def cmd_dump(args) -> int:
    from compiler.driver import check
    from compiler.ir import dump
    from compiler.syntax.parser import parse_file
    reporter = Reporter()
    if args.stage == "ast":
        from compiler.diagnostics import CompileError
        try:
            tree = parse_file(args.spec)
        except CompileError as exc:
            reporter.report(exc.diagnostics)
            return EXIT_DIAGNOSTICS
        print(tree)
        return EXIT_OK
    if args.stage == "ir":
        from compiler.elaborate.resolve import resolve_file
        program, diagnostics = resolve_file(args.spec)
        reporter.report(diagnostics)
        if program is None or reporter.errors:
            return EXIT_DIAGNOSTICS
        print(dump(program))
        return EXIT_OK
    result = check(args.spec)
    reporter.report(result.diagnostics)
    if result.program is None or not result.ok:
        return EXIT_DIAGNOSTICS
    program = result.program
    if args.stage == "opt":
        from compiler.passes import optimize, select_passes
        program, _ = optimize(program, select_passes(args.opt))
    print(dump(program))
    return EXIT_OK


def cmd_explain(args) -> int:
    registered = lookup(args.code)
    if registered is None:
        from compiler.ops.docs import describe, find
        op = find(args.code)
        if op is not None:
            print(describe(op))
            return EXIT_OK
        print(f"dlc explain: unknown code or op {args.code}; known codes: {', '.join(CODES)}; "
              "`dlc ops` lists the ops", file=sys.stderr)
        return EXIT_USAGE
    from compiler.diagnostics.explanations import EXPLANATIONS
    print(f"{registered.code} [{registered.name}]: {registered.summary}\n\n"
          f"{EXPLANATIONS.get(registered.code, registered.summary)}")
    return EXIT_OK


def cmd_ops(args) -> int:
    from compiler.ops.docs import table
    print(table())
    return EXIT_OK


def cmd_fmt(args) -> int:
    from compiler.syntax.format_files import format_paths
    return format_paths(args.paths, args.check, args.width)


def cmd_lsp(args) -> int:
    from compiler.lsp import serve
    return serve()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    paths = getattr(args, "specs", None) or getattr(args, "paths", None) or [getattr(args, "spec", None)]
    missing = (_missing([p for p in paths if p is not None and str(p) != "-"])
               if args.command not in ("explain", "ops") else [])
    if missing:
        print(f"dlc {args.command}: error: no such file or folder: {', '.join(map(str, missing))}", file=sys.stderr)
        return EXIT_USAGE
    handlers = {"check": cmd_check, "compile": cmd_compile, "dump": cmd_dump, "explain": cmd_explain, "ops": cmd_ops,
                "fmt": cmd_fmt, "lsp": cmd_lsp}
    try:
        return handlers[args.command](args)
    except RecursionError:
        print(f"dlc: error[{RESOURCE_LIMIT}]: the spec nests too deeply to process", file=sys.stderr)
        return EXIT_DIAGNOSTICS
    except _ClosedPipe as closed:   # `dlc check --format json | head`: still red when errors were found
        _silence_stdout()
        return closed.status
    except BrokenPipeError:          # `dlc dump ... | head`: the output was cut short, not wrong
        _silence_stdout()
        return EXIT_OK
    except Exception as exc:  # a bug in dlc: say so plainly instead of dumping a traceback
        print(f"dlc: internal error: {type(exc).__name__}: {exc}\n"
              "This is a bug in dlc, not in your spec; please report it with the spec.", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
