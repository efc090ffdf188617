"""Diagnostic tests as data: `.dl` files whose comments say what `dlc check` must report.

A file holds one case, or several, each opened by a `# case: NAME` line.  A case is
checked as the whole file with every other case blanked out, so line numbers in a case
are the file's own.  On the line of each expected diagnostic (mypy's `.test` style):

    out y = Linaer(d, d)(x)   # E@11: DLC004 unknown block or op | hint: did you mean `Linear`?

`E` is an error and `W` a warning; `@COL` pins the column (`# E: ...` leaves it free);
the text after the code is a substring of the message, and after `| hint:` a substring of
the hint.  A diagnostic in another file is expected on the case line as
`# E@FILE:LINE:COL: ...` (FILE a suffix of its path).  A `# define: NAME=VALUE` line in a
case passes `-D NAME=VALUE`.  Every diagnostic must be expected and every
expectation met; `pytest --update-diagnostics` rewrites the E/W comments from what dlc says.

Cases of the corpus of realistic mistakes (tests/diagnostics/corpus/) also say, by hand,
what the *right* answer is, on the line a user has to edit:

    h = Linear(196, 10)(f)    # want@16: DLC007 fix: in_features=147

— the code, the line and column to edit, and a substring the hint must contain to name
a correct fix (`fix: -` where no single fix exists).  `want` comments are never rewritten.
"""
from __future__ import annotations

import os
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from compiler.diagnostics import Diagnostic
from compiler.driver import check

CASES_DIR = Path(__file__).resolve().parent / "diagnostics"
_MARK = re.compile(r"#\s*(E|W|want)(?:@((?:[^\s:#]+:\d+:)?\d+))?:\s*")
_CASE = re.compile(r"^#\s*case:\s*([\w.-]+)")
_DEFINE = re.compile(r"#\s*define:\s*(\w+)=(\S+)")


@dataclass(frozen=True)
class Expected:
    """One expected diagnostic: `file` is None for the case's own file."""

    severity: str
    code: str
    line: int
    col: int | None
    message: str
    hint: str | None
    file: str | None = None

    def matches(self, d: Diagnostic, case_file: str) -> bool:
        where = (d.span.file == case_file) if self.file is None else d.span.file.endswith(self.file)
        return (where and d.span.line == self.line and self.col in (None, d.span.col)
                and d.code == self.code and self.severity == ("E" if d.is_error else "W")
                and self.message in d.message and (self.hint is None or self.hint in (d.hint or "")))


@dataclass(frozen=True)
class Want:
    """The right answer for a corpus case: the line (and column) to edit, the code, the fix."""

    line: int
    col: int | None
    code: str
    fix: str | None


@dataclass
class Case:
    path: Path
    name: str
    start: int                      # first line (1-based) of the case
    end: int                        # last line, inclusive
    defines: dict[str, object] = field(default_factory=dict)
    expected: list[Expected] = field(default_factory=list)
    wants: list[Want] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(CASES_DIR)}::{self.name}"


def _value(text: str) -> object:
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text, text)


def _marks(line: str) -> list[tuple[str, str | None, str]]:
    """The (kind, @where, body) of each E/W/want comment on a line."""
    found = list(_MARK.finditer(line))
    return [(m.group(1), m.group(2), line[m.end():found[i + 1].start() if i + 1 < len(found) else None].strip())
            for i, m in enumerate(found)]


def _expected(kind: str, where: str | None, body: str, line: int) -> Expected:
    code, _, rest = body.partition(" ")
    message, _, hint = rest.partition("| hint:")
    file, col = None, None
    if where and ":" in where:
        file, line_text, col_text = where.rsplit(":", 2)
        line, col = int(line_text), int(col_text)
    elif where:
        col = int(where)
    return Expected(kind, code, line, col, message.strip(), hint.strip() if hint else None, file)


def _want(where: str | None, body: str, line: int) -> Want:
    code, _, rest = body.partition(" ")
    fix = rest.split("fix:", 1)[1].strip() if "fix:" in rest else None
    return Want(line, int(where) if where else None, code, None if fix in (None, "-") else fix)


def load_cases(path: Path) -> list[Case]:
    lines = path.read_text(encoding="utf-8").splitlines()
    starts = [i for i, text in enumerate(lines, 1) if _CASE.match(text)] or [1]
    cases = []
    for n, start in enumerate(starts):
        end = (starts[n + 1] - 1) if n + 1 < len(starts) else len(lines)
        header = _CASE.match(lines[start - 1])
        case = Case(path, header.group(1) if header else path.stem, start, end)
        for number in range(start, end + 1):
            case.defines.update({k: _value(v) for k, v in _DEFINE.findall(lines[number - 1])})
            for kind, where, body in _marks(lines[number - 1]):
                if kind == "want":
                    case.wants.append(_want(where, body, number))
                else:
                    case.expected.append(_expected(kind, where, body, number))
        cases.append(case)
    return cases


def all_cases(folder: Path = CASES_DIR) -> list[Case]:
    return [case for path in sorted(folder.rglob("*.dl")) for case in load_cases(path)]


@contextmanager
def _inside(folder: Path) -> Iterator[None]:
    before = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def case_text(case: Case) -> str:
    """The file with every line outside the case blanked, so line numbers stay the file's."""
    lines = case.path.read_text(encoding="utf-8").splitlines()
    return "\n".join(text if case.start <= i <= case.end else "" for i, text in enumerate(lines, 1)) + "\n"


_FOUND: dict[tuple[str, str], list[Diagnostic]] = {}


def run_case(case: Case, workdir: Path) -> list[Diagnostic]:
    """`dlc check` of the case, as the CLI runs it, from `workdir` (spans read `NAME.dl:L:C`).
    Results are kept for the session, so the figures test reuses the driver's runs."""
    text = case_text(case)
    key = (text, repr(sorted(case.defines.items())))
    if key not in _FOUND:
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / case.path.name).write_text(text, encoding="utf-8")
        with _inside(workdir):
            _FOUND[key] = check(Path(case.path.name), case.defines, all_blocks=True).diagnostics
    return _FOUND[key]


def mismatches(case: Case, found: list[Diagnostic]) -> list[str]:
    """What differs between the expectations and the diagnostics (empty when they agree)."""
    unmet = list(case.expected)
    unexpected = []
    for d in found:
        hit = next((e for e in unmet if e.matches(d, case.path.name)), None)
        if hit is None:
            unexpected.append(f"unexpected: {describe(d, case.path.name)}")
        else:
            unmet.remove(hit)
    return unexpected + [f"missing: {e}" for e in unmet]


def describe(d: Diagnostic, case_file: str) -> str:
    return f"# {_where(d, case_file)}: {d.code} {d.message}" + (f" | hint: {d.hint}" if d.hint else "")


def _where(d: Diagnostic, case_file: str) -> str:
    kind = "E" if d.is_error else "W"
    if d.span.file == case_file:
        return f"{kind}@{d.span.col}"
    shown = d.span.file.split("stdlib/", 1)[-1] if "stdlib/" in d.span.file else Path(d.span.file).name
    return f"{kind}@{shown}:{d.span.line}:{d.span.col}"


def update_case(case: Case, found: list[Diagnostic]) -> None:
    """Rewrite the E/W comments of one case from the diagnostics found (line numbers never move)."""
    lines = case.path.read_text(encoding="utf-8").splitlines()
    for number in range(case.start, case.end + 1):
        lines[number - 1] = _strip_expectations(lines[number - 1])
    for d in found:
        at = d.span.line if d.span.file == case.path.name else case.start
        lines[at - 1] = f"{lines[at - 1]}  {describe(d, case.path.name)}".rstrip()
    case.path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _strip_expectations(line: str) -> str:
    kept = line
    for m in reversed(list(_MARK.finditer(line))):
        if m.group(1) in ("E", "W"):
            following = _MARK.search(line, m.end())
            kept = kept[:m.start()] + (kept[following.start():] if following else "")
    return kept.rstrip()
