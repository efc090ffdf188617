"""The three figures of issue 16, measured on the corpus of realistic mistakes
(tests/diagnostics/corpus/): is the primary location the line to edit, does the hint
name a correct fix, and does any message leak an internal representation."""
from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from compiler.diagnostics import Diagnostic
from tests.diagnostic_cases import CASES_DIR, Case, all_cases, run_case

CORPUS_DIR = CASES_DIR / "corpus"

# What a message must never show: reprs of the compiler's objects, dataclass reprs,
# Python type names where a DSL type is meant, pydantic's own wording.
INTERNAL = re.compile(r"\b(TensorRef|Callee|Node|Layer|Graph|TensorType|Span|BlockCall|OutputDecl)\("
                      r"|\b[A-Z]\w*\(\w+='"                   # a dataclass repr: Name(field='...
                      r"|<class |\bNoneType\b|\bdict_keys\b|\bsympy\b|'(str|int|float|list|bool)' object"
                      r"|input_value=|For further information visit|\btype=\w+_(type|parsing)\b")


@dataclass
class Outcome:
    case: Case
    found: list[Diagnostic]

    @property
    def primary(self) -> Diagnostic | None:
        return next((d for d in self.found if d.is_error), None)

    def at_line_to_edit(self) -> bool:
        p, want = self.primary, self.case.wants[0]
        return p is not None and p.span.file == self.case.path.name and p.span.line == want.line

    def names_the_fix(self) -> bool:
        p, want = self.primary, self.case.wants[0]
        return p is not None and want.fix is not None and want.fix in (p.hint or "")

    def has_expected_code(self) -> bool:
        return self.primary is not None and self.primary.code == self.case.wants[0].code

    def leaks(self) -> list[str]:
        texts = [t for d in self.found for t in (d.message, d.hint or "", *(n.message for n in d.notes))]
        return [t for t in texts if INTERNAL.search(t)]


@dataclass
class Figures:
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def cases(self) -> int:
        return len(self.outcomes)

    @property
    def located(self) -> int:
        return sum(o.at_line_to_edit() for o in self.outcomes)

    @property
    def with_fix(self) -> int:
        return sum(o.case.wants[0].fix is not None for o in self.outcomes)

    @property
    def fixed(self) -> int:
        return sum(o.names_the_fix() for o in self.outcomes)

    @property
    def coded(self) -> int:
        return sum(o.has_expected_code() for o in self.outcomes)

    @property
    def single(self) -> int:
        return sum(sum(d.is_error for d in o.found) == 1 for o in self.outcomes)

    @property
    def leaking_messages(self) -> int:
        return sum(len(o.leaks()) for o in self.outcomes)

    def summary(self) -> str:
        def share(n: int, total: int) -> str:
            return f"{n}/{total} = {100 * n / total:.1f}%" if total else "n/a"
        return "\n".join([
            f"cases                                         {self.cases}",
            f"primary location is the line to edit          {share(self.located, self.cases)}   (goal 100%)",
            f"hint names a correct fix (cases with a fix)   {share(self.fixed, self.with_fix)}   (goal >= 80%)",
            f"messages with internal representations        {self.leaking_messages}   (goal 0)",
            f"expected code                                 {share(self.coded, self.cases)}",
            f"exactly one error (no cascade)                {share(self.single, self.cases)}",
        ])


def corpus_cases() -> list[Case]:
    cases = all_cases(CORPUS_DIR)
    bad = [c.id for c in cases if len(c.wants) != 1]
    assert not bad, f"every corpus case needs exactly one `# want`: {bad}"
    return cases


def measure(cases: list[Case] | None = None) -> Figures:
    figures = Figures()
    with tempfile.TemporaryDirectory() as tmp:
        for n, case in enumerate(cases if cases is not None else corpus_cases()):
            figures.outcomes.append(Outcome(case, run_case(case, Path(tmp) / str(n))))
    return figures
