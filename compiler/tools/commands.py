"""What `dlc summary` and `dlc graph` do with a checked program (the CLI parses the arguments
and runs `compiler.driver.check`; this stage comes before the driver and cannot call it)."""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from compiler.ir import Program
from compiler.tools.summary import ModelSummary, summarize_program

EXIT_OK, EXIT_DIAGNOSTICS, EXIT_USAGE = 0, 1, 2


def _pick(names: list[str], wanted: str | None, command: str) -> list[str] | None:
    """The entry points to show: the first by default, `all`, or one by name (None: unknown)."""
    if not names:
        print(f"dlc {command}: error: the spec declares no model (`model Name(...) {{ ... }}`): "
              "library blocks appear in the models that use them", file=sys.stderr)
        return None
    if wanted is None:
        return names[:1]
    if wanted == "all":
        return names
    if wanted in names:
        return [wanted]
    print(f"dlc {command}: error: no entry point `{wanted}`; this spec has {', '.join(names)} (or `all`)",
          file=sys.stderr)
    return None


def summary_command(args: Any, program: Program) -> int:
    from compiler.tools import summary_render
    summaries = summarize_program(program, args.opt, args.dtype)
    names = _pick([s.name for s in summaries], args.model, "summary")
    if names is None:
        return EXIT_USAGE
    chosen = [s for s in summaries if s.name in names]
    dims = dict(args.dims)
    _warn_unknown_dims(chosen, dims)
    if args.format == "text" and _use_rich():
        summary_render.render_rich(chosen, dims, args.depth)
    else:
        render = {"text": summary_render.render_text, "markdown": summary_render.render_markdown,
                  "json": summary_render.render_json}[args.format]
        sys.stdout.write(render(chosen, dims, args.depth))
    others = [s.name for s in summaries if s.name not in names]
    if others and args.format == "text":
        print(f"other entry points: {', '.join(others)} (--model NAME or --model all)")
    return EXIT_OK


def _use_rich() -> bool:
    """rich draws the table when it is installed and stdout is a terminal; pipes get plain text."""
    if not sys.stdout.isatty() or os.environ.get("NO_COLOR") or os.environ.get("DLC_PLAIN"):
        return False
    try:
        import rich  # noqa: F401
    except ImportError:
        return False
    return True


def _warn_unknown_dims(summaries: list[ModelSummary], dims: dict[str, int]) -> None:
    known = {d for s in summaries for d in s.free_dims}
    unknown = sorted(set(dims) - known)
    if unknown:
        print(f"dlc summary: warning: --dims {', '.join(unknown)}: not a free dimension of "
              f"{', '.join(s.name for s in summaries)} (they are {', '.join(sorted(known)) or 'none'})",
              file=sys.stderr)


# ---------------------------------------------------------------------- dlc graph
FORMATS = ("dot", "svg", "png", "html")


def graph_format(output: Path | None, fmt: str | None) -> str:
    """--format if given, else the output file's suffix, else dot."""
    if fmt:
        return fmt
    suffix = output.suffix.lstrip(".").lower() if output else ""
    return suffix if suffix in FORMATS else "dot"


def graph_command(args: Any, checked: Program) -> int:
    from compiler.ir import entry_program
    from compiler.passes import optimize, select_passes
    from compiler.tools.graph import to_dot
    from compiler.tools.render import RenderError, render
    program, _ = optimize(entry_program(checked), select_passes(args.opt))
    names = _pick([public for public, _ in program.models], args.model, "graph")
    if names is None or len(names) != 1:
        if names:
            print("dlc graph: error: draw one entry point at a time (--model NAME)", file=sys.stderr)
        return EXIT_USAGE
    base = str(args.output.parent) if args.output else "."
    dot_text = to_dot(program, names[0], depth=args.depth, unroll=args.unroll, link_base=base, dims=dict(args.dims))
    fmt = graph_format(args.output, args.format)
    try:
        data = render(dot_text, fmt)
    except RenderError as exc:
        print(f"dlc graph: error: {exc}", file=sys.stderr)
        return EXIT_DIAGNOSTICS
    if args.output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return EXIT_OK
    write_atomically(args.output, data)
    print(f"wrote {args.output}")
    return EXIT_OK


def write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data` in one step: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
