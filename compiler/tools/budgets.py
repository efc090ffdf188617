"""`dlc check --max-params N --max-flops N`: fail CI when an entry point grows past a budget."""
from __future__ import annotations

from dataclasses import dataclass

from compiler.diagnostics import Diagnostic
from compiler.diagnostics.codes import OVER_BUDGET
from compiler.ir import Program
from compiler.tools.summary import ModelSummary, as_number, at_dims, summarize_program

_SUFFIXES = {"k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15}


def parse_count(text: str) -> int:
    """`110M`, `1.5G`, `2e9`, `110_000_000` or `110,000,000` as an integer; ValueError otherwise."""
    cleaned = text.strip().replace("_", "").replace(",", "")
    scale = _SUFFIXES.get(cleaned[-1:].lower(), 1)
    if scale != 1:
        cleaned = cleaned[:-1]
    value = float(cleaned) * scale
    if value < 0 or value != value:
        raise ValueError(f"expected a non-negative count, got {text!r}")
    return int(value)


@dataclass(frozen=True)
class Budgets:
    max_params: int | None = None
    max_flops: int | None = None
    dims: tuple[tuple[str, int], ...] = ()

    def __bool__(self) -> bool:
        return self.max_params is not None or self.max_flops is not None


def budget_diagnostics(program: Program, budgets: Budgets, opt_level: int = 1) -> list[Diagnostic]:
    """One error per entry point over a budget, at the line that declares it.  The program is
    summarized as `dlc compile -O{opt_level}` builds it."""
    found: list[Diagnostic] = []
    for summary in summarize_program(program, opt_level):
        found += _over_budget(summary, budgets)
    return found


def _over_budget(summary: ModelSummary, budgets: Budgets) -> list[Diagnostic]:
    found = []
    params = summary.root.params
    if budgets.max_params is not None and params > budgets.max_params:
        found.append(Diagnostic(OVER_BUDGET, f"`{summary.name}` has {params:,} parameters, over the budget of "
                                f"{budgets.max_params:,} (--max-params)", summary.span,
                                hint=f"{params - budgets.max_params:,} too many; `dlc summary` shows where they are"))
    if budgets.max_flops is None:
        return found
    dims = dict(budgets.dims)
    flops = as_number(at_dims(summary.root.flops, dims))
    if flops is None:
        missing = sorted(str(s) for s in at_dims(summary.root.flops, dims).symbols)
        found.append(Diagnostic(OVER_BUDGET, f"the FLOPs of `{summary.name}` depend on {', '.join(missing)}, so "
                                "--max-flops cannot be checked", summary.span,
                                hint="give their sizes, e.g. --dims " + ",".join(f"{d}=1" for d in missing)))
    elif flops > budgets.max_flops:
        at = ", ".join(f"{k}={v}" for k, v in dims.items())
        found.append(Diagnostic(OVER_BUDGET, f"`{summary.name}` needs {flops:,} FLOPs per forward"
                                + (f" at {at}" if at else "") + f", over the budget of {budgets.max_flops:,} "
                                "(--max-flops)", summary.span, hint="`dlc summary` shows where they are"))
    return found
