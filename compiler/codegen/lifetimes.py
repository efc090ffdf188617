"""When each value in a forward() dies, so the generated code can let it go.

SSA-style locals (`conv1 = ...; bn1 = self.bn1(conv1); ...`) all stay referenced until
forward() returns, so a deep block holds every intermediate activation at once: ResNet-50's
-O0 forward peaked at 349 MB where torchvision's, which reassigns `x`, needs 237 MB.  The
generated forward instead ends each value's life after its last reader with `del`.

The releases are placed on the class's final lines, after the specializations of a block
merged (so they never make two configurations' code differ): a local's last reader in the
merged order is the last that any configuration runs, and a `del` in that reader's branch
runs only where the reader did, so the value exists there.  Not deleted: the inputs (the
caller holds them anyway), whatever `return` reads, unused results (`_`), loop variables and
names bound only inside a branch of a lowering's own `if`.
A value its last reader overwrites in place (`relu1 = F.relu(bn1, inplace=True)`) is
deleted too: `relu1` is the same tensor, and `bn1` would otherwise keep it alive.
"""
from __future__ import annotations

import ast
from typing import Protocol


class GuardedLine(Protocol):
    guard: tuple
    text: str
    comment: str


def _assigned(tree: ast.Module) -> set[str]:
    """Names a statement always binds: its own assignment targets, not those inside an `if` or a
    loop within it (a branch not taken leaves them unbound, and `del` would fail)."""
    found: set[str] = set()
    for stmt in tree.body:
        if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            found |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return found - {"_"}


def _bound_in_branches(tree: ast.AST) -> set[str]:
    """Names bound inside the body of a compound statement (if, for, while, with, try)."""
    compound = (ast.If, ast.For, ast.While, ast.With, ast.Try)
    return set().union(*(_assigned(node) for node in ast.walk(tree) if isinstance(node, compound)))


def _read(tree: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _statements(lines: list) -> list[tuple[int, int, ast.AST]]:
    """(first, last, tree) of each statement: a lowering's `if x:` line, its indented body and an
    `else:` are separate lines that parse together."""
    units, start = [], 0
    while start < len(lines):
        end, tree = start, None
        while tree is None or (end + 1 < len(lines) and _continues(lines[end + 1].text)):
            if tree is not None:
                end += 1
            tree = _parse(lines[start:end + 1])
            while tree is None:
                if end + 1 == len(lines):
                    raise SyntaxError(f"generated forward lines do not parse: {lines[start].text!r}")
                end += 1
                tree = _parse(lines[start:end + 1])
        units.append((start, end, tree))
        start = end + 1
    return units


def _continues(text: str) -> bool:
    """Whether a line belongs to the statement before it (its body or its else)."""
    return text.startswith((" ", "else", "elif"))


def _parse(lines: list) -> ast.AST | None:
    try:
        return ast.parse("\n".join(line.text for line in lines))
    except SyntaxError:
        return None


def with_releases(lines: list, make, kept: set[str]) -> list:
    """`lines` (guarded forward lines) with `del` lines after each local's last reader.
    `make(guard, text)` builds a line; `kept` are names never released (the inputs)."""
    units = _statements(lines)
    trees = [tree for _, _, tree in units]
    returns = [any(isinstance(n, ast.Return) for n in ast.walk(t)) for t in trees]
    assigned = set().union(*(_assigned(t) for t in trees)) - kept
    reads = [_read(tree) for tree in trees]
    last: dict[str, int] = {}
    for index, read in enumerate(reads):
        for name in read & assigned:
            last[name] = index
    returned = set().union(*(read for read, r in zip(reads, returns) if r))
    in_branches: dict[int, set[str]] = {}       # per statement, walked once (a large model has thousands)
    dying: dict[int, list[str]] = {}
    for name, index in last.items():
        # a name a lowering binds in one branch of its own `if` (attention's `attn_mask` only when a
        # mask is given; the cached and fused paths) may not exist after it: it goes when forward returns
        if name in returned or returns[index]:
            continue
        if index not in in_branches:
            in_branches[index] = _bound_in_branches(trees[index])
        branch_local = isinstance(trees[index].body[0], ast.If) and name in _assigned(trees[index])
        if name not in in_branches[index] and not branch_local:
            dying.setdefault(index, []).append(name)
    out = []
    for index, (first, end, tree) in enumerate(units):
        out += lines[first:end + 1]
        names = sorted(dying.get(index, ()), key=lambda n: _first_read(tree, n))
        following = units[index + 1][0] if index + 1 < len(units) else None
        right_before_return = following is not None and returns[index + 1] and \
            lines[following].guard == lines[first].guard     # the locals go then anyway
        if names and not right_before_return:
            out.append(make(lines[first].guard, f"del {', '.join(names)}"))
    return out


def _first_read(tree: ast.AST, name: str) -> tuple[int, int]:
    """Where `name` is first read in a line, to list released names in reading order."""
    spots = [(n.lineno, n.col_offset) for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == name]
    return min(spots)
