"""The `dlc` command line: argument parsing and reporting, nothing else."""
from __future__ import annotations

import argparse
import gc
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


def _dims(text: str) -> list[tuple[str, int]]:
    """`B=8,S=128` -> [("B", 8), ("S", 128)]."""
    pairs = []
    for item in filter(None, text.split(",")):
        name, _, raw = item.partition("=")
        if not name.strip().isidentifier() or not raw.strip().isdigit() or int(raw) < 1:
            raise argparse.ArgumentTypeError(f"expected NAME=SIZE[,NAME=SIZE...] with positive sizes, got {text!r}")
        pairs.append((name.strip(), int(raw)))
    return pairs


def _depth(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a depth 0, 1, 2, ..., got {text!r}")
    return int(text)


def _jobs(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a number of processes (1 or more), got {text!r}")
    return int(text)


def _count(text: str) -> int:
    from compiler.tools.budgets import parse_count
    try:
        return parse_count(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a count like 110000000, 110M or 2.5G, got {text!r}") from None


def _add_overrides(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-D", dest="overrides", action="append", type=_override, default=[], metavar="NAME=VALUE",
                        help="override a model parameter, e.g. -D layers=2 (repeatable)")


def _add_opt(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("-O", dest="opt", type=int, choices=(0, 1, 2), default=1,
                        help=f"optimization level of the {what} (default 1, as dlc compile)")


def _add_summary(sub) -> None:
    summ = sub.add_parser("summary", help="parameters, FLOPs and memory of a model, per layer (no torch needed)",
                          description="A tree of blocks and layers with output shapes, parameter counts (tied and "
                                      "shared parameters once), MACs/FLOPs as formulas in the free dimensions and "
                                      "as numbers for --dims, and activation memory per forward.")
    summ.add_argument("spec", type=Path, metavar="SPEC", help="the spec file")
    _add_overrides(summ)
    summ.add_argument("--dims", type=_dims, action="extend", default=[], metavar="B=8,S=128",
                      help="sizes of the free dimensions, to turn formulas into numbers")
    summ.add_argument("--depth", type=_depth, default=2, metavar="N", help="show layers down to N levels (default 2)")
    summ.add_argument("--format", choices=("text", "json", "markdown"), default="text",
                      help="text (default; drawn with rich on a terminal when installed), json or markdown")
    summ.add_argument("--dtype", choices=("float32", "float16", "bfloat16", "float64"), default="float32",
                      help="element type of float activations, for memory (default float32)")
    summ.add_argument("--model", metavar="NAME", help="the entry point to show (default: the first), or `all`")
    _add_opt(summ, "summarized model")


def _add_graph(sub) -> None:
    graph = sub.add_parser("graph", help="draw the block hierarchy of a model (Graphviz)",
                           description="Draw an entry point as nested clusters of blocks, edges labelled with "
                                       "shapes, each node linking to its spec line.  svg, png and html need "
                                       "Graphviz's `dot`; --format dot does not.")
    graph.add_argument("spec", type=Path, metavar="SPEC", help="the spec file")
    graph.add_argument("-o", "--output", type=Path, metavar="FILE", help="write here (default: stdout)")
    graph.add_argument("--format", choices=("dot", "svg", "png", "html"),
                       help="output format (default: from the -o suffix, else dot)")
    graph.add_argument("--depth", type=_depth, default=2, metavar="N",
                       help="open blocks down to N levels; deeper ones are single nodes (default 2)")
    graph.add_argument("--unroll", action="store_true",
                       help="open every iteration of a repeat (default: the first; the rest as one node)")
    graph.add_argument("--model", metavar="NAME", help="the entry point to draw (default: the first)")
    graph.add_argument("--dims", type=_dims, action="extend", default=[], metavar="H=224,W=224",
                       help="sizes of free dimensions, written into the edges' shapes")
    _add_overrides(graph)
    _add_opt(graph, "drawn model")


def _add_completion(parser: argparse.ArgumentParser, sub) -> None:
    comp = sub.add_parser("completion", help="print a shell completion script",
                          description="Print a completion script: eval \"$(dlc completion bash)\" in ~/.bashrc, "
                                      "or save `dlc completion zsh` as _dlc on your $fpath.  Needs shtab "
                                      "(pip install dlc[completion]).")
    comp.add_argument("shell", choices=("bash", "zsh", "tcsh"), help="the shell to complete in")
    comp.set_defaults(root_parser=parser)


def _terminal_columns() -> int:
    """`shutil.get_terminal_size().columns`, worked out the same way without importing shutil."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns > 0:
        return columns
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):
        return 80


class _Parser(argparse.ArgumentParser):
    """argparse's parser, with the help width argparse's formatter would compute (terminal columns
    minus 2) given to it: argparse makes a formatter for every add_argument, and the formatter
    imports shutil for the width, which brings lzma and bz2 along (a twentieth of a cold `dlc check`).
    Subparsers are made of the same class."""

    def _get_formatter(self) -> argparse.HelpFormatter:
        return self.formatter_class(prog=self.prog, width=_terminal_columns() - 2)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dlc", description="Compile neural-network block-graph specs to PyTorch.")
    parser.add_argument("--version", action="version", version=f"dlc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    comp = sub.add_parser("compile", help="compile specs to Python modules",
                          description="Check and compile specs; writes DIR/<spec>.py for each.")
    comp.add_argument("specs", nargs="+", type=Path, metavar="SPEC", help="spec files to compile")
    comp.add_argument("-o", "--output", type=Path, default=None, metavar="DIR",
                      help="output folder (default: generated/ in the specs' project, the nearest folder "
                           "above them with a pyproject.toml or .git)")
    comp.add_argument("-O", dest="opt", type=int, choices=(0, 1, 2), default=1,
                      help="optimization level: 0 in-place only, 1 clean-ups (default), 2 fusion and SDPA")
    comp.add_argument("--passes", default="", metavar="A,B", help="comma-separated passes to enable in addition")
    comp.add_argument("--no-pass", action="append", default=[], metavar="NAME", help="disable a pass")
    _add_overrides(comp)
    comp.add_argument("--check", action="store_true", help="write nothing; exit 1 when an output is stale")
    comp.add_argument("--explain", action="store_true", help="print what each pass changed")
    comp.add_argument("--inference", action="store_true",
                      help="build for inference only: also run passes that assume the model never trains "
                           "(drop-dropout)")
    comp.add_argument("--standalone", action="store_true",
                      help="copy the runtime helpers into each module (a file that works on its own) instead of "
                           "importing them from dlc_runtime.py, written beside the modules")
    comp.add_argument("--strict", action="store_true", help="treat warnings as errors")
    comp.add_argument("--force", action="store_true",
                      help="overwrite output files that dlc did not generate (without it they are left alone)")

    chk = sub.add_parser("check", help="parse and shape-check specs, write nothing",
                         description="Parse, resolve and shape-check every spec; exit 1 on any error.")
    chk.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="spec files or folders")
    chk.add_argument("--strict", action="store_true", help="treat warnings as errors")
    chk.add_argument("--format", choices=("text", "json", "github", "sarif"), default="text",
                     help="text (default), json (schema v1), github (workflow annotations) or sarif (2.1.0)")
    _add_overrides(chk)
    chk.add_argument("-j", "--jobs", type=_jobs, default=None, metavar="N",
                     help="check the specs in N processes (default: one per CPU; 1: in this one)")
    chk.add_argument("--tp", type=int, metavar="N", help="also prove every model shards N ways (tensor parallel)")
    chk.add_argument("--max-params", type=_count, metavar="N", help="fail when an entry point has more parameters")
    chk.add_argument("--max-flops", type=_count, metavar="N",
                     help="fail when a forward needs more FLOPs at --dims (e.g. 25G)")
    chk.add_argument("--dims", type=_dims, action="extend", default=[], metavar="B=1,S=512",
                     help="sizes of the free dimensions, for --max-flops")

    dump = sub.add_parser("dump", help="print one stage's output", description="Print the AST, IR, typed IR or optimized IR.")
    dump.add_argument("spec", type=Path, metavar="SPEC", help="the spec file")
    dump.add_argument("--stage", choices=("ast", "ir", "shapes", "opt"), default="shapes",
                      help="ast (parsed, before -D), ir (resolved), shapes (typed, the default) or opt (optimized)")
    _add_opt(dump, "opt stage")
    _add_overrides(dump)
    _add_summary(sub)
    _add_graph(sub)
    _add_completion(parser, sub)

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
    from compiler.driver import CheckRequest, check, check_many
    empty = [str(p) for p in args.paths if p.is_dir() and not any(p.rglob("*.dl"))]
    if empty:
        print(f"dlc check: error: no .dl spec in {', '.join(empty)}", file=sys.stderr)
        return EXIT_USAGE
    files = _spec_files(args.paths)
    requests = [CheckRequest(spec, dict(args.overrides), all_blocks=True, tp=args.tp) for spec in files]
    found = [d for answer in check_many(requests, args.jobs) for d in answer]
    if (args.max_params or args.max_flops) and not any(d.is_error for d in found):
        # budgets need the checked programs (not the cached answer), and the summary's counts
        from compiler.tools.budgets import Budgets, budget_diagnostics
        budgets = Budgets(args.max_params, args.max_flops, tuple(args.dims))
        results = [check(spec, dict(args.overrides), all_blocks=True, tp=args.tp) for spec in files]
        found += [d for r in results if r.ok and r.program for d in budget_diagnostics(r.program, budgets)]
    found = _strict(found, args.strict)
    status = EXIT_DIAGNOSTICS if any(d.is_error for d in found) else EXIT_OK
    if args.format != "text":
        from compiler.diagnostics.report import to_github, to_json, to_sarif
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
    if args.output is None:
        args.output = _default_output(args.specs)
        if args.output is None:
            print("dlc compile: error: the specs belong to different projects; choose one output folder with -o",
                  file=sys.stderr)
            return EXIT_USAGE
    outputs: list[Output] = []
    for spec in args.specs:
        result = compile_spec(spec, args.opt, [p for p in args.passes.split(",") if p], args.no_pass,
                              dict(args.overrides), passes, args.inference, args.standalone)
        reporter.report(result.diagnostics)
        if args.explain:
            print("\n".join(result.log) or f"{spec}: no pass changed anything")
        if result.text is not None:
            outputs.append(Output(spec, output_path(spec, args.output), result.text))
    if not reporter.errors:
        reporter.report(check_outputs(outputs + _shared_outputs(outputs, args.output), args.output, args.force))
    reporter.summary()
    if reporter.errors:
        return EXIT_DIAGNOSTICS      # nothing is written unless every spec compiled and every output may be
    if args.check:
        stale = [str(out.path) for out in outputs + _shared_outputs(outputs, args.output)
                 if not unchanged(out.path, out.text)]
        for path in stale:
            print(f"stale: {path}", file=sys.stderr)
        return EXIT_DIAGNOSTICS if stale else EXIT_OK
    init = args.output / "__init__.py"
    package = [Output(args.specs[0], init, PACKAGE_INIT)] if outputs and not init.exists() else []
    package += _shared_outputs(outputs, args.output)
    try:
        written = set(write_outputs(outputs + package, args.output))
    except OSError as exc:
        where = exc.filename or args.output
        print(f"dlc compile: error[DLC017]: cannot write {where}: {exc.strerror}; nothing was written",
              file=sys.stderr)
        return EXIT_DIAGNOSTICS
    for out in outputs:
        print(f"{'wrote' if out.path in written else 'unchanged'} {out.path}")
    for out in package:
        if out.path in written and out.path.name != "__init__.py":
            print(f"{'wrote' if out.text is not None else 'removed'} {out.path}")
    return EXIT_OK


def _shared_outputs(outputs: list, out_dir: Path) -> list:
    """The modules written once per folder: dlc_runtime.py, the helpers the modules there import
    (those compiled now and those already there), and dlc_parallel.py, the code that applies the
    models' tensor-parallel plans, when a module has one."""
    from compiler import __version__
    from compiler.codegen.runtime_module import RUNTIME_MODULE, imported_runtime_names, runtime_module
    from compiler.outputs import generated_modules, names_used_in_folder, removal
    from compiler.codegen.sharding import SHARDING_MODULE, needs_sharding_module, sharding_module
    from compiler.outputs import Output
    if not outputs:
        return []
    shared = []
    compiled = {out.path for out in outputs}
    names = names_used_in_folder(out_dir, compiled)
    for out in outputs:
        names |= imported_runtime_names(out.text)
    runtime = out_dir / f"{RUNTIME_MODULE}.py"
    if names:
        shared.append(Output(outputs[0].spec, runtime, runtime_module(names, __version__)))
    else:       # every module here is standalone now: the runtime they no longer import goes
        shared += removal(outputs[0].spec, runtime)
    users = [out for out in outputs if needs_sharding_module(out.text)]
    sharding = out_dir / f"{SHARDING_MODULE}.py"
    if users:
        shared.append(Output(users[0].spec, sharding, sharding_module(__version__)))
    elif not any(needs_sharding_module(text) for text in generated_modules(out_dir, compiled)):
        shared += removal(outputs[0].spec, sharding)
    return shared


def _default_output(specs: list[Path]) -> Path | None:
    """generated/ in the specs' project (shown relative to the working directory where it can
    be), or None when they belong to different projects."""
    from compiler.driver import project_root
    from compiler.elaborate.loader import display_path
    roots = {project_root(spec) for spec in specs}
    if len(roots) != 1:
        return None
    return Path(display_path(roots.pop() / "generated"))


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
        from compiler.tools.ast_dump import dump_ast
        sys.stdout.write(dump_ast(tree))
        return EXIT_OK
    if args.stage == "ir":
        from compiler.elaborate.resolve import resolve_file
        program, diagnostics = resolve_file(args.spec, dict(args.overrides))
        reporter.report(diagnostics)
        if program is None or reporter.errors:
            return EXIT_DIAGNOSTICS
        print(dump(program))
        return EXIT_OK
    result = check(args.spec, dict(args.overrides))
    reporter.report(result.diagnostics)
    if result.program is None or not result.ok:
        return EXIT_DIAGNOSTICS
    program = result.program
    if args.stage == "opt":
        from compiler.passes import optimize, select_passes
        program, _ = optimize(program, select_passes(args.opt))
    print(dump(program))
    return EXIT_OK


def _checked(args):
    """The checked program of `args.spec` with `-D` applied; None (diagnostics printed) when it fails."""
    from compiler.driver import check
    result = check(args.spec, dict(args.overrides))
    reporter = Reporter()
    reporter.report(result.diagnostics)
    return result.program if result.ok else None


def cmd_summary(args) -> int:
    from compiler.tools.commands import summary_command
    program = _checked(args)
    return EXIT_DIAGNOSTICS if program is None else summary_command(args, program)


def cmd_graph(args) -> int:
    from compiler.tools.commands import graph_command
    program = _checked(args)
    return EXIT_DIAGNOSTICS if program is None else graph_command(args, program)


def cmd_completion(args) -> int:
    try:
        import shtab
    except ImportError:
        print("dlc completion: error: needs shtab: pip install 'dlc[completion]'", file=sys.stderr)
        return EXIT_USAGE
    print(shtab.complete(args.root_parser, shell=args.shell))
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
               if args.command not in ("explain", "ops", "completion") else [])
    if missing:
        print(f"dlc {args.command}: error: no such file or folder: {', '.join(map(str, missing))}", file=sys.stderr)
        return EXIT_USAGE
    handlers = {"check": cmd_check, "compile": cmd_compile, "dump": cmd_dump, "explain": cmd_explain, "ops": cmd_ops,
                "fmt": cmd_fmt, "lsp": cmd_lsp, "summary": cmd_summary, "graph": cmd_graph,
                "completion": cmd_completion}
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


def run() -> None:
    """The `dlc` command (console script, `python -m dlc`): `main()` in a process of its own.

    The process ends when the command does, so the cyclic collector is switched off for it: the
    compiler builds large, acyclic object graphs (ASTs, IR, shapes) and leaves almost no cyclic
    garbage (a 20,000-node check and a compile of six specs peak at the same memory either way),
    yet every collection rescans every young object: even at driver.COLLECTOR_THRESHOLDS
    (200,000) a 20,000-node `dlc check` of distinct block configurations spent a sixth of its
    CPU time in them.  `gc.freeze()` skips the scan of every object still alive at interpreter
    shutdown (a third of the same check's CPU time before).  main() itself leaves the collector
    alone: tests and the language server call it in-process (driver.check then raises its
    thresholds while it works).

    Pydantic looks for plugins (package entry points) when it builds its first validator, which
    reads the metadata of every installed distribution: 0.05 s of CPU but 0.3 s of wall time on
    this project's machines, a third of a cold `dlc check`.  The op attribute schemas are dlc's
    own and there is nothing in them for a plugin to observe, so the command turns the search
    off unless the environment says otherwise (PYDANTIC_DISABLE_PLUGINS= keeps them)."""
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    gc.disable()
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    run()
