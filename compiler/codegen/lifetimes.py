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
A view (`q_heads = query.unflatten(...).transpose(1, 2)`) shares its base's storage, so
deleting the base while the view lives frees nothing: the two go on one `del`, after the
last reader of either.
"""
from __future__ import annotations

import ast
import re
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
    last: dict[str, int] = {}
    for index, tree in enumerate(trees):
        for name in _read(tree) & assigned:
            last[name] = index
    returned = set().union(*(_read(t) for t, r in zip(trees, returns) if r))
    groups = _storage_groups(trees, assigned)
    releasable: dict[str, int] = {}
    for name, index in last.items():
        # a name a lowering binds in one branch of its own `if` (attention's `attn_mask` only when a
        # mask is given; the cached and fused paths) may not exist after it: it goes when forward returns
        branch_local = isinstance(trees[index].body[0], ast.If) and name in _assigned(trees[index])
        if name not in returned and not returns[index] and name not in _bound_in_branches(trees[index]) \
                and not branch_local:
            releasable[name] = index
    dying: dict[int, list[str]] = {}
    for group in groups.values():
        # a view keeps its base's storage: the names of one storage go together, after the last reader of
        # any of them, or (where one of them outlives forward's locals) not at all
        members = [name for name in group if name in last]
        if members and all(name in releasable for name in members):
            index = max(releasable[name] for name in members)
            dying.setdefault(index, []).extend(members)
    out = []
    for index, (first, end, tree) in enumerate(units):
        out += lines[first:end + 1]
        names = _release_order(dying.get(index, []), tree, groups)
        following = units[index + 1][0] if index + 1 < len(units) else None
        right_before_return = following is not None and returns[index + 1] and \
            lines[following].guard == lines[first].guard     # the locals go then anyway
        if names and not right_before_return:
            out.append(make(lines[first].guard, f"del {', '.join(names)}"))
    return out


def _first_read(tree: ast.AST, name: str) -> tuple[int, int]:
    """Where `name` is first read in a line, to list released names in reading order."""
    spots = [(n.lineno, n.col_offset) for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == name]
    return min(spots, default=(1 << 30, 0))


def _release_order(names: list[str], tree: ast.AST, groups: dict[str, list[str]]) -> list[str]:
    """The names the line reads, in reading order, each followed by the bases it is a view of."""
    read = sorted((n for n in names if _first_read(tree, n)[0] < 1 << 30), key=lambda n: _first_read(tree, n))
    ordered: list[str] = []
    for name in read + names:
        for member in [name, *(m for m in groups.get(_root_of(name, groups), ()) if m in names)]:
            if member not in ordered:
                ordered.append(member)
    return ordered


# Tensor methods whose result shares its operand's storage (a view): `del` of the operand frees
# nothing while the view lives.  `reshape`, `flatten` and `contiguous` may copy: not listed.
_VIEWS = {"unflatten", "transpose", "permute", "view", "view_as", "select", "narrow", "chunk", "split",
          "unbind", "unsqueeze", "squeeze", "expand", "expand_as", "movedim", "diagonal", "unfold"}


def _view_base(value: ast.expr) -> str | None:
    """The name whose storage an expression is a view of (`query.unflatten(...).transpose(1, 2)`)."""
    if isinstance(value, ast.Name):
        return value.id
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr in _VIEWS:
        return _view_base(value.func.value)
    if isinstance(value, ast.Attribute) and value.attr in ("T", "mT"):
        return _view_base(value.value)
    if isinstance(value, ast.Subscript) and _basic_index(value.slice):
        return _view_base(value.value)
    return None


def _basic_index(index: ast.expr) -> bool:
    parts = index.elts if isinstance(index, ast.Tuple) else [index]
    return all(isinstance(p, ast.Slice) or (isinstance(p, ast.Constant) and (p.value is None or p.value is ...))
               for p in parts)


def _storage_groups(trees: list[ast.Module], assigned: set[str]) -> dict[str, list[str]]:
    """root name -> the locals that share its storage (it, and the views of it assigned in turn)."""
    root: dict[str, str] = {}
    bindings: dict[str, int] = {}
    for tree in trees:
        for name in _assigned(tree):
            bindings[name] = bindings.get(name, 0) + 1
    for tree in trees:
        stmt = tree.body[0] if len(tree.body) == 1 else None
        if not isinstance(stmt, ast.Assign) or len(stmt.targets) != 1:
            continue
        base = _view_base(stmt.value)
        target = stmt.targets[0]
        names = [target] if isinstance(target, ast.Name) else list(getattr(target, "elts", []))
        # a name bound again (`v = f(v)`) may hold another tensor by its last reader: only a view bound
        # once goes with its base.  One rebound in a branch (the cache's `k_heads, v_heads = update(..)`)
        # holds the view on the other path: it still goes with its base, which lives that little longer
        if base in assigned and names and all(isinstance(n, ast.Name) and n.id != base and bindings.get(n.id) == 1
                                              for n in names):
            for n in names:
                root[n.id] = root.get(base, base)
    groups: dict[str, list[str]] = {name: [name] for name in assigned if name not in root}
    for name, base in root.items():
        groups.setdefault(base, [base]).append(name)
    return groups


def _root_of(name: str, groups: dict[str, list[str]]) -> str:
    return next((root for root, members in groups.items() if name in members), name)


def carried_into_loops(lines: list, make) -> list:
    """A repeat stack starts from its input (`encoder = embeddings`, then `for layer in self.encoder:`).
    Where nothing else reads that input, the line that computes it names its result after the
    stack instead: no alias, and no `del` to let the input go once the first layer has run.
    `make(guard, text, comment)` builds a line."""
    out = list(lines)
    for k in range(len(out) - 2, 0, -1):
        alias = re.fullmatch(r"(\w+) = (\w+)", out[k].text)
        if alias is None or not out[k + 1].text.startswith("for ") or out[k].comment:
            continue
        carried, source = alias.groups()
        producer = next((j for j in range(k - 1, -1, -1) if out[j].text.startswith(f"{source} = ")), None)
        reads = [line for j, line in enumerate(out) if j not in (producer, k)
                 and re.search(rf"(?<![.\w]){source}\b", line.text)]
        if producer is None or reads or out[producer].guard != out[k].guard or "\n" in out[producer].text:
            continue
        out[producer] = make(out[producer].guard, carried + out[producer].text[len(source):], out[producer].comment)
        del out[k]
    return out
