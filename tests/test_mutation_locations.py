"""A property over mutated specs (issue 16): change one number or swap two arguments on
one line of a spec in specs/, and every error dlc reports is at that line or at a line
that follows from it (one that reads a name the changed line binds, transitively) — never
at an unrelated line, never inside the standard library."""
from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from compiler.driver import check
from tests.helpers import ROOT

SPECS = sorted((ROOT / "specs").glob("*.dl"))
_CALL_ARGS = re.compile(r"\b[A-Z]\w*\(([^()]*)\)")
_NUMBER = re.compile(r"(?<![\w.])\d+(?![\w.])")
_BOUND = re.compile(r"^\s*(?:out\s+|let\s+|in\s+)?([A-Za-z_][\w ,]*?)\s*(?::[^=]*)?=(?!=)")
_PARAM = re.compile(r"([A-Za-z_]\w*)\s*:\s*[^,=()]+=")


def _code(line: str) -> str:
    return line.split("#", 1)[0]


def mutate_line(text: str, rng: random.Random) -> tuple[str, int] | None:
    """One planted mistake on one line: a number in a call changed, or two arguments swapped."""
    lines = text.splitlines()
    candidates = [i for i, line in enumerate(lines) if _CALL_ARGS.search(_code(line))]
    if not candidates:
        return None
    i = rng.choice(candidates)
    code = _code(lines[i])
    numbers = list(_NUMBER.finditer(code))
    if numbers and rng.random() < 0.6:
        m = rng.choice(numbers)
        n = int(m.group())
        new = rng.choice([v for v in (n * 2, n // 2, n + 1, 3) if v != n] or [n + 1])
        lines[i] = lines[i][:m.start()] + str(new) + lines[i][m.end():]
    else:
        call = rng.choice(list(_CALL_ARGS.finditer(code)))
        args = call.group(1).split(",")
        if len(args) < 2 or any("=" in a for a in args[:2]):
            return None
        args[0], args[1] = args[1], args[0]
        lines[i] = lines[i][:call.start(1)] + ",".join(args) + lines[i][call.end(1):]
    return "\n".join(lines) + "\n", i + 1


def _statements(lines: list[str]) -> list[list[int]]:
    """Line numbers grouped by statement: a call may continue on the next lines."""
    groups: list[list[int]] = []
    depth = 0
    for number, line in enumerate(lines, 1):
        if depth == 0:
            groups.append([])
        groups[-1].append(number)
        depth = max(0, depth + line.count("(") + line.count("[") - line.count(")") - line.count("]"))
    return groups


def following_lines(text: str, changed: int) -> set[int]:
    """The changed statement and every later statement that reads a name it binds, transitively."""
    lines = [_code(line) for line in text.splitlines()]
    groups = _statements(lines)
    first = next(g for g in groups if changed in g)
    names = set(_PARAM.findall(" ".join(lines[n - 1] for n in first)))
    bound = _BOUND.match(lines[first[0] - 1])
    names |= {n.strip() for n in bound.group(1).split(",")} if bound else set()
    allowed = set(first)
    for group in groups[groups.index(first) + 1:]:
        statement = " ".join(lines[n - 1] for n in group)
        if any(re.search(rf"\b{re.escape(n)}\b", statement) for n in names):
            allowed.update(group)
            bound = _BOUND.match(lines[group[0] - 1])
            names |= {n.strip() for n in bound.group(1).split(",")} if bound else set()
    return allowed


def _misplaced(spec: Path, seed: int, tmp_path: Path) -> list[str]:
    rng = random.Random(seed)
    mutated = mutate_line(spec.read_text(), rng)
    if mutated is None:
        return []
    text, changed = mutated
    path = tmp_path / spec.name
    path.write_text(text)
    allowed = following_lines(text, changed)
    found = [d for d in check(path).diagnostics if d.is_error]
    return [f"{spec.name} line {changed} `{text.splitlines()[changed - 1].strip()}` -> {d.span} {d.code} {d.message}"
            for d in found if d.span.file != str(path) or d.span.line not in allowed]


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_errors_follow_from_the_changed_line(spec, tmp_path):
    for seed in range(3):
        assert _misplaced(spec, seed, tmp_path) == []


@pytest.mark.slow
@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_errors_follow_from_the_changed_line_campaign(spec, tmp_path):
    problems = [p for seed in range(3, 60) for p in _misplaced(spec, seed, tmp_path)]
    assert problems == []
