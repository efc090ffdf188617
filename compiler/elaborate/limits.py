"""Budgets on compile-time work: beyond them a spec gets DLC013 instead of running away.

Every limit dlc enforces is a field of `Limits` (the syntax-stage ones come in through
`SourceLimits`, which the parser owns because it runs before elaboration), and `LIMITS_TABLE`
documents each one: README's limits table is printed from it and a test drives every row past
its limit.  `Budget` is the running account of one compile against those limits.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from compiler.diagnostics import CompileError, Span, error
from compiler.syntax.parser import SourceLimits
from compiler.diagnostics.codes import RESOURCE_LIMIT

# The largest integer a compile-time value may hold (literal, arithmetic or -D).  Beyond any real
# size, and it keeps every value an int64 in the generated code.
MAX_INT = 2**62


@dataclass(frozen=True)
class Limits:
    source: SourceLimits = field(default_factory=SourceLimits)
    max_modules: int = 256             # spec files loaded for one compile
    max_import_depth: int = 64         # a imports b imports c ...
    max_repeat: int = 4096             # layers in one `repeat`
    max_range: int = 1 << 16           # values of one `range(...)`
    max_depth: int = 64                # blocks instantiated inside blocks
    max_instances: int = 20_000        # block instantiations (configured layers of block type)
    max_nodes: int = 200_000           # IR nodes over all specializations
    max_steps: int = 500_000           # expression evaluations (loops, defaults, requires, ...)
    max_sequence: int = 1 << 16        # characters of a string, items of a list
    max_int: int = MAX_INT             # magnitude of a compile-time integer


# (field, what it bounds, how the README says it); one row per enforced limit.
LIMITS_TABLE: tuple[tuple[str, str], ...] = (
    ("source.max_source_bytes", "bytes in one spec file"),
    ("source.max_nesting", "nesting of brackets and of expressions"),
    ("source.max_literal_digits", "digits of an integer literal"),
    ("max_modules", "spec files loaded by one compile (the spec and its imports)"),
    ("max_import_depth", "length of an import chain"),
    ("max_repeat", "layers in one `repeat`"),
    ("max_range", "values of one `range(...)`"),
    ("max_depth", "blocks nested inside blocks"),
    ("max_instances", "block instantiations in one compile"),
    ("max_nodes", "graph nodes over all block specializations"),
    ("max_steps", "expression evaluations in one compile (loops included)"),
    ("max_sequence", "characters of a compile-time string, items of a list"),
    ("max_int", "magnitude of a compile-time integer (literal, arithmetic, `-D`)"),
)


def limit_value(limits: Limits, name: str) -> int:
    """The value of a dotted LIMITS_TABLE field name."""
    value: object = limits
    for part in name.split("."):
        value = getattr(value, part)
    assert isinstance(value, int)
    return value


def limits_markdown(limits: Limits | None = None) -> str:
    """README's limits table."""
    limits = limits or Limits()
    rows = ["| limit | value |", "|---|---|"]
    rows += [f"| {what} | {_shown(limit_value(limits, name))} |" for name, what in LIMITS_TABLE]
    return "\n".join(rows)


def _shown(value: int) -> str:
    return "2**62" if value == 2**62 else f"{value:,}"


@dataclass
class Budget:
    """The compile-time work one compile has done so far, charged against `limits`."""

    limits: Limits = field(default_factory=Limits)
    steps: int = 0
    instances: int = 0

    def step(self, span: Span) -> None:
        self.steps += 1
        if self.steps > self.limits.max_steps:
            self.out_of_steps(span)

    def out_of_steps(self, span: Span) -> None:
        """Raise for a step past the limit (`steps` already counts it): DLC013 at the first such
        step, an empty CompileError after it.  The evaluator's hot path counts inline and calls this."""
        if self.steps > self.limits.max_steps + 1:
            raise CompileError([])       # reported once, where the budget ran out
        raise error(RESOURCE_LIMIT, f"compile-time evaluation exceeds {self.limits.max_steps:,} steps", span,
                    hint="a loop or a chain of blocks does more work than any model needs")

    def instance(self, span: Span) -> None:
        self.instances += 1
        if self.instances > self.limits.max_instances:
            if self.instances > self.limits.max_instances + 1:
                raise CompileError([])
            raise error(RESOURCE_LIMIT, f"more than {self.limits.max_instances:,} block instantiations", span,
                        hint="blocks that each use the next several times grow exponentially")

    def sequence(self, length: int, span: Span) -> None:
        if length > self.limits.max_sequence:
            raise error(RESOURCE_LIMIT, f"a string or list of {length:,} items exceeds the limit of "
                        f"{self.limits.max_sequence:,}", span)
