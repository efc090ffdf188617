"""`dlc summary` output: a plain-text table (what tests read), markdown, versioned JSON, and
the same table through `rich` when it is installed and the output is a terminal."""
from __future__ import annotations

import json
from typing import Any

from compiler.tools.formulas import formula, has_floor, human, human_bytes
from compiler.ir.dims import ZERO, Dim
from compiler.ir.types import symbol
from compiler.tools.summary import DTYPE_BYTES, ModelSummary, Row, as_number, at_dims

JSON_VERSION = 1
HEADERS = ("layer", "type", "output", "params", "MACs", "FLOPs")


def _count(expr: Dim, dims: dict[str, int], exact: bool = False) -> str:
    """A count for a table cell: a number when the dims fix it, else its formula."""
    value = as_number(at_dims(expr, dims))
    if value is not None:
        return f"{value:,}" if exact or value < 10_000 else human(value)
    if has_floor(expr):
        free = ", ".join(sorted(str(s) for s in expr.symbols))
        return f"f({free})"
    return formula(expr)


def _shape(row: Row, dims: dict[str, int]) -> str:
    return ", ".join(str(t.subs({k: at_dims(k, dims) for k in _free(t)})) for t in row.outputs) or "-"


def _free(t) -> set:
    return {s for d in t.shape for s in d.symbols}


def _params(row: Row) -> str:
    text = f"{row.params:,}"
    return text + " *" if row.notes else text


def visible_rows(summary: ModelSummary, depth: int) -> list[Row]:
    """The rows down to `depth`, parents first; in a repeat, a run of iterations equal to the
    one before them is one row (`1–11  11 × BertLayer (as 0)`), as a table of 12 equal layers
    says no more than two rows."""
    shown: list[Row] = []

    def visit(row: Row) -> None:
        for child in _grouped(row.children) if row.kind == "repeat" else row.children:
            if child.depth <= depth:
                shown.append(child)
                visit(child)
    visit(summary.root)
    return shown


def _same(a: Row, b: Row) -> bool:
    return (a.type_name, a.params, a.buffers, a.macs, a.flops, a.outputs, a.notes) == \
        (b.type_name, b.params, b.buffers, b.macs, b.flops, b.outputs, b.notes)


def _grouped(iterations: list[Row]) -> list[Row]:
    out: list[Row] = []
    i = 0
    while i < len(iterations):
        j = i + 1
        while j < len(iterations) and _same(iterations[i], iterations[j]):
            j += 1
        out.append(iterations[i])
        if j - i > 2:           # i, then one row for i+1 .. j-1
            first, rest = iterations[i], iterations[i + 1:j]
            out.append(Row(rest[0].path, f"{rest[0].name}–{rest[-1].name}",
                           f"{len(rest)} × {first.type_name} (as {first.name})", first.depth, first.span,
                           rest[-1].outputs, sum(r.params for r in rest), sum(r.buffers for r in rest),
                           sum((r.macs for r in rest), ZERO), sum((r.flops for r in rest), ZERO),
                           sum((r.activation_bytes for r in rest), ZERO), kind="group"))
        else:
            out.extend(iterations[i + 1:j])
        i = j
    return out


def table_rows(summary: ModelSummary, dims: dict[str, int], depth: int) -> list[tuple[str, ...]]:
    return [("  " * (row.depth - 1) + row.name, row.type_name, _shape(row, dims), _params(row),
             _count(row.macs, dims), _count(row.flops, dims)) for row in visible_rows(summary, depth)]


def _dims_text(dims: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in dims.items())


def totals(summary: ModelSummary, dims: dict[str, int]) -> list[tuple[str, str]]:
    """(label, text) lines under the table."""
    root = summary.root
    tied = sum(t.numel for t in summary.tied)
    memory = human_bytes(root.params * DTYPE_BYTES[summary.dtype])
    lines = [("parameters", f"{root.params:,} ({memory} in {summary.dtype})"
              + (f"; tied ones counted once ({tied:,} shared)" if tied else "")),
             ("buffers", f"{root.buffers:,}")]
    matmul = 2 * root.macs
    for label, expr, unit in (("MACs", root.macs, ""), ("FLOPs", root.flops, ""),
                              ("  matmul/conv", matmul, ""), ("  element-wise", root.flops - matmul, ""),
                              (f"activations ({summary.dtype})", root.activation_bytes, "bytes")):
        lines.append((label, _total(expr, dims, unit)))
    return lines


def _total(expr: Dim, dims: dict[str, int], unit: str) -> str:
    """The formula, then its value at the given dims (a formula with floor() terms, from strided
    convolutions, is long and says little: only its value is shown)."""
    suffix = f" {unit}" if unit else ""
    sub = at_dims(expr, dims)
    used = {k: v for k, v in dims.items() if symbol(k) in expr.symbols}
    at = f" at {_dims_text(used)}" if used else ""
    value = as_number(sub)
    if value is None:
        if has_floor(sub):
            free = ", ".join(sorted(str(d) for d in sub.symbols))
            return f"a function of {free} with floor() terms: give --dims (--format json prints it)"
        return formula(sub) + suffix + at
    number = f"{value:,}{suffix} ({human_bytes(value) if unit else human(value)})"
    if not used or has_floor(expr):
        return number + at
    return f"{formula(expr)}{suffix}\n= {number}{at}"


def _notes(summary: ModelSummary, depth: int) -> list[str]:
    shown = visible_rows(summary, depth)
    lines = [f"* {row.path}: {note}" for row in shown for note in row.notes]
    hidden = [t for t in summary.tied if not any(r.path == t.parameter.rsplit(".", 1)[0] for r in shown)]
    lines += [f"* {t.parameter} is tied to {t.source} ({t.numel:,} parameters, counted once)" for t in hidden]
    return lines


def _grid(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    right = {3, 4, 5}
    return ["  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
            for r in rows]


def header(summary: ModelSummary) -> list[str]:
    inputs = ", ".join(f"{name} {t}" for name, t in summary.inputs)
    return [f"{summary.name} = {summary.block}({summary.params_text})  [{summary.span.file}:{summary.span.line}]",
            f"inputs: {inputs}"]


def render_text(summaries: list[ModelSummary], dims: dict[str, int], depth: int) -> str:
    out: list[str] = []
    for summary in summaries:
        out += header(summary) + [""]
        rows = table_rows(summary, dims, depth)
        if rows:
            grid = _grid([HEADERS, *rows])
            out += [grid[0], "-" * len(grid[0]), *grid[1:], ""]
        out += _notes(summary, depth)
        width = max(len(label) for label, _ in totals(summary, dims))
        for label, text in totals(summary, dims):
            first, *rest = text.split("\n")
            out.append(f"{label.ljust(width)}  {first}")
            out += [" " * (width + 2) + line for line in rest]
        out += parallel_lines(summary)
        missing = [d for d in summary.free_dims if d not in dims]
        if missing:
            example = ",".join(f"{d}=8" if d == "B" else f"{d}=128" for d in missing)
            out.append(f"free dims: {', '.join(missing)}; give sizes with --dims {example}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def parallel_lines(summary: ModelSummary) -> list[str]:
    """The derived tensor-parallel plan and FSDP units (TP_PLAN and FSDP_UNITS in the generated class)."""
    if not summary.tp_plan:
        return []
    width = max(len(path) for path in summary.tp_plan)
    lines = ["tensor-parallel plan (`dlc check --tp N` proves it divides; `parallelize(model, mesh)` applies it):"]
    lines += [f"  {path.ljust(width)}  {style}" for path, style in summary.tp_plan.items()]
    if summary.fsdp_units:
        lines.append(f"FSDP units: {', '.join(summary.fsdp_units)} (one per element), the rest with the root")
    return lines


def render_markdown(summaries: list[ModelSummary], dims: dict[str, int], depth: int) -> str:
    out: list[str] = []
    for summary in summaries:
        out += [f"### {summary.name}", "", f"`{summary.block}({summary.params_text})`", ""]
        rows = table_rows(summary, dims, depth)
        if rows:
            out += ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * 3 + "--:|" * 3]
            out += ["| " + " | ".join(_md_cell(i, c, row) for i, c in enumerate(r)) + " |"
                    for r, row in zip(rows, visible_rows(summary, depth))]
            out.append("")
        out += [f"- {n[2:]}" for n in _notes(summary, depth)]
        out += [f"- **{label.strip()}**: {text.replace(chr(10), ' ')}" for label, text in totals(summary, dims)]
        out.append("")
    return "\n".join(out)


def _md_cell(i: int, cell: str, row: Row) -> str:
    if i == 0:      # the layer's path, indented with non-breaking spaces (markdown drops leading spaces)
        return "  " * (row.depth - 1) + f"`{cell.strip()}`"
    return cell.replace("|", "\\|")


def _json_count(expr: Dim, dims: dict[str, int]) -> dict[str, Any]:
    return {"formula": str(expr), "value": as_number(at_dims(expr, dims))}


def _json_row(row: Row, dims: dict[str, int]) -> dict[str, Any]:
    return {"path": row.path, "type": row.type_name, "depth": row.depth,
            "outputs": [str(t) for t in row.outputs], "params": row.params, "buffers": row.buffers,
            "macs": _json_count(row.macs, dims), "flops": _json_count(row.flops, dims),
            "activation_bytes": _json_count(row.activation_bytes, dims), "notes": row.notes,
            "span": {"file": row.span.file, "line": row.span.line, "column": row.span.col}}


def render_json(summaries: list[ModelSummary], dims: dict[str, int], depth: int) -> str:
    models = []
    for s in summaries:
        root = s.root
        models.append({
            "name": s.name, "block": s.block, "free_dims": s.free_dims, "dtype": s.dtype,
            "params": root.params, "trainable_params": root.params, "buffers": root.buffers,
            "tied": [{"parameter": t.parameter, "source": t.source, "numel": t.numel} for t in s.tied],
            "macs": _json_count(root.macs, dims), "flops": _json_count(root.flops, dims),
            "activation_bytes": _json_count(root.activation_bytes, dims),
            "tp_plan": s.tp_plan, "fsdp_units": s.fsdp_units,
            "layers": [_json_row(r, dims) for r in root.rows(depth)]})
    return json.dumps({"version": JSON_VERSION, "dims": dims, "models": models}, indent=2) + "\n"


def render_rich(summaries: list[ModelSummary], dims: dict[str, int], depth: int) -> None:
    """The text table through `rich` (an optional extra: `pip install dlc[pretty]`)."""
    from rich.console import Console
    from rich.table import Table
    console = Console()
    for summary in summaries:
        table = Table(title="\n".join(header(summary)), title_justify="left")
        for i, name in enumerate(HEADERS):
            table.add_column(name, justify="right" if i >= 3 else "left")
        for row in table_rows(summary, dims, depth):
            table.add_row(*row)
        console.print(table)
        for note in _notes(summary, depth):
            console.print(note, highlight=False)
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        for label, text in totals(summary, dims):
            grid.add_row(label, text)
        console.print(grid, highlight=False)
