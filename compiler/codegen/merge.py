"""Check per instance, emit per definition: the specializations of one block become
one class, its static `if`s Python `if`s.

Each specialization's lines carry the branches they were built in.  Merging lines
up by sequence alignment and checking that every specialization reads its own
code back (keeping the lines whose branches it took) proves the merged class
builds each of them exactly.  Where that fails, the passes (or a lowering) made
different code from one definition, and the definition splits into classes named
after the parameter values that differ.
"""
from __future__ import annotations

import difflib
import itertools
import re
from typing import Any, Callable

from compiler.codegen.specialization import Guard, Line, Rendered
from compiler.ir import Graph


def merge(sequences: list[list[Line]]) -> list[Line]:
    """One sequence holding every sequence's lines, in an order each of them keeps."""
    merged = list(sequences[0])
    for seq in sequences[1:]:
        merged = _merge_two(merged, seq)
    return merged


def _aligned(a: list[Line], b: list[Line], differing) -> list[Line]:
    """a's and b's lines aligned (difflib): one line for each pair in common, keeping a comment
    both share, and `differing(a_run, b_run)` for each stretch where they differ."""
    matcher = difflib.SequenceMatcher(a=[line.key for line in a], b=[line.key for line in b], autojunk=False)
    out: list[Line] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            out += [Line(x.guard, x.text, x.comment if x.comment == y.comment else _common_comment(x.comment, y.comment))
                    for x, y in zip(a[i1:i2], b[j1:j2])]
        else:
            out += differing(a[i1:i2], b[j1:j2])
    return out


def _merge_two(a: list[Line], b: list[Line]) -> list[Line]:
    def differing(a_run: list[Line], b_run: list[Line]) -> list[Line]:
        if _takes(b_run, True) and _takes(a_run, False):
            return b_run + a_run          # an `if`'s true branch reads first
        return a_run + b_run
    return _aligned(a, b, differing)


def _takes(lines: list[Line], value: bool) -> bool:
    return bool(lines) and all(line.guard and line.guard[-1][1] == value for line in lines)


def _common_comment(a: str, b: str) -> str:
    """A spec location is the same for every specialization; a shape that differs is left out."""
    return a if a.startswith("  # ") and not a.startswith("  # [") and a == b else ""


def taken(lines: list[Line], decisions: set[tuple[str, bool]]) -> list[tuple]:
    return [line.key for line in lines if all(g in decisions for g in line.guard)]


def reproduces(merged: list[Line], own: list[Line], decisions: set[tuple[str, bool]]) -> bool:
    """Whether the merged lines, filtered by one specialization's branches, are its own lines."""
    return taken(merged, decisions) == [line.key for line in own]


class Variant:
    """Specializations of one definition that one class builds."""

    def __init__(self, first: Rendered):
        self.members = [first]
        self.init = list(first.init)
        self.forward = list(first.forward)
        self.signature = list(first.signature)
        self.aliased: list[str] = []     # inputs a caller leaves None to pass the earlier one's tensor

    def admit(self, other: Rendered) -> bool:
        if other.signature != self.members[0].signature:
            return False
        init, forward = merge([self.init, other.init]), merge([self.forward, other.forward])
        members = [*self.members, other]
        if all(reproduces(init, m.init, decisions(m)) and reproduces(forward, m.forward, decisions(m))
               for m in members):
            self.members, self.init, self.forward = members, init, forward
            return True
        return False

    def constant_branches(self) -> dict[str, bool]:
        """The `if`s every member that reached them decided the same way: no `if` in the class."""
        seen: dict[str, set[bool]] = {}
        for m in self.members:
            for key, value in m.graph.decisions:
                seen.setdefault(key, set()).add(value)
        return {key: next(iter(values)) for key, values in seen.items() if len(values) == 1}


def decisions(r: Rendered) -> set[tuple[str, bool]]:
    return set(r.graph.decisions)


def _merged(members: list[Rendered]) -> Variant | None:
    variant = Variant(members[0])
    return variant if all(variant.admit(m) for m in members[1:]) else None


def partition(rendered: list[Rendered]) -> tuple[list[Variant], list[str]]:
    """The fewest classes that build every specialization, told apart by parameter values: one
    if they all merge (where some were given one tensor for two inputs, with an `if` on the
    input left None), else one per value of the first parameter (or pair) that makes each group
    merge; the features used are returned to name the classes."""
    whole = _merged(rendered) or merged_over_aliases(rendered)
    if whole is not None:
        return [whole], []
    features = sorted([*rendered[0].graph.params, ALIASES], key=lambda p: _preference(p, rendered))
    for size in (1, 2):
        for chosen in itertools.combinations(features, size):
            groups: dict[tuple, list[Rendered]] = {}
            for r in rendered:
                groups.setdefault(tuple(_feature(r.graph, p) for p in chosen), []).append(r)
            variants = [_merged(g) for g in groups.values()]
            if all(v is not None for v in variants):
                return variants, list(chosen)
    variants: list[Variant] = []
    for r in rendered:
        if not any(v.admit(r) for v in variants):
            variants.append(Variant(r))
    return variants, []


# The guard of the lines only the specializations given one tensor for two inputs run: the class
# takes the second input optional, and a caller passing the same tensor leaves it None.
ALIASED = "(aliased inputs)"


def merged_over_aliases(rendered: list[Rendered]) -> Variant | None:
    """One class for the specializations called with separate tensors and those called with one
    tensor for two inputs (self-attention's `kv` is `q`), where only forward differs (at -O1, a
    cross-attention caches its keys while decoding and a self-attention does not): the input is
    optional, and forward branches on whether it was given.  None where __init__ differs too (-O2
    fuses the projections of one tensor): the passes made really different code, and it splits."""
    plain = [r for r in rendered if not r.graph.aliases]
    aliased = [r for r in rendered if r.graph.aliases]
    if not plain or not aliased or len({tuple(r.graph.aliases) for r in aliased}) != 1:
        return None
    full, short = _merged(plain), _merged(aliased)
    if full is None or short is None or [x.key for x in full.init] != [x.key for x in short.init]:
        return None
    names = [name for name, _ in aliased[0].graph.aliases]
    signature = _signature_with_optional(full.signature, short.signature, names)
    if signature is None:
        return None
    variant = Variant(full.members[0])
    variant.members, variant.signature, variant.aliased = [*full.members, *short.members], signature, names
    variant.forward = _merge_guarded(full.forward, short.forward, ALIASED)
    for m in variant.members:
        own = decisions(m) | {(ALIASED, bool(m.graph.aliases))}
        read_back = [(tuple(g for g in line.guard if g[0] != ALIASED), line.text) for line in variant.forward
                     if all(g in own for g in line.guard)]
        if read_back != [line.key for line in m.forward]:
            return None
    return variant


def aliased_slots(graph: Graph, names: list[str]) -> list[int]:
    """The positions of the inputs `names` among a block's inputs (its unaliased specialization's)."""
    inputs = [graph.node(i).outputs[0] for i in graph.inputs]
    return sorted(inputs.index(n) for n in names)


def _signature_with_optional(full: list[str], short: list[str], names: list[str]) -> list[str] | None:
    """forward's parameters with the aliased inputs optional (None: the earlier input's tensor); None
    where a required input follows one of them, or the signatures differ otherwise."""
    entry = {e.split(":")[0]: e for e in full}
    if [e for e in full if e.split(":")[0] not in names] != short or not all(n in entry for n in names):
        return None
    first = min(full.index(entry[n]) for n in names)
    if any(" = " not in e for e in full[first:] if e.split(":")[0] not in names):
        return None
    return [f"{e.split(':')[0]}: torch.Tensor | None = None" if e.split(":")[0] in names else e for e in full]


def _merge_guarded(a: list[Line], b: list[Line], key: str) -> list[Line]:
    """a's and b's lines aligned: the common ones for both, the others in a branch each (b's under
    `key` true, a's under false)."""
    def differing(a_run: list[Line], b_run: list[Line]) -> list[Line]:
        return ([Line((*y.guard, (key, True)), y.text, y.comment) for y in b_run]
                + [Line((*x.guard, (key, False)), x.text, x.comment) for x in a_run])
    return _aligned(a, b, differing)


def simplify(lines: list[Line], constant: dict[str, bool]) -> list[Line]:
    """Drop the guards every member satisfies."""
    return [Line(tuple(g for g in line.guard if g[0] not in constant), line.text, line.comment) for line in lines]


def hoist_equal_branches(lines: list[Line]) -> list[Line]:
    """`if c: X else: X` is X: a run of lines in one branch followed by the same lines in the
    other loses that guard (to a fixpoint, for nested ifs)."""
    changed = True
    while changed:
        changed, out, i = False, [], 0
        while i < len(lines):
            guard = lines[i].guard
            run = _run(lines, i, guard)
            if guard:
                key, value = guard[-1]
                other = guard[:-1] + ((key, not value),)
                twin = _run(lines, i + len(run), other)
                if [l.text for l in twin] == [l.text for l in run]:
                    out += [Line(guard[:-1], l.text, l.comment if l.comment == t.comment else "")
                            for l, t in zip(run, twin)]
                    i, changed = i + 2 * len(run), True
                    continue
            out.append(lines[i])
            i += 1
        lines = out
    return lines


def _run(lines: list[Line], start: int, guard: Guard) -> list[Line]:
    end = start
    while end < len(lines) and lines[end].guard == guard:
        end += 1
    return lines[start:end]


def used_conditions(lines: list[Line]) -> list[str]:
    return list(dict.fromkeys(key for line in lines for key, _ in line.guard))


def render(lines: list[Line], condition: Callable[[str, bool], str]) -> list[str]:
    """Guarded lines as Python, each guard an `if` (or the `else` of the `if` just closed).
    `condition(key, value)` is the test that selects the branch."""
    out: list[str] = []
    stack: list[tuple[str, bool, bool]] = []      # the open branches: (key, value, is an else)
    for line in lines:
        path = line.guard
        common = 0
        while common < len(stack) and common < len(path) and stack[common][:2] == path[common]:
            common += 1
        closed = stack[common] if len(stack) > common else None
        del stack[common:]
        for depth in range(common, len(path)):
            key, value = path[depth]
            pad = "    " * depth
            sibling = depth == common and closed is not None and closed[0] == key and closed[1] != value
            if sibling and not closed[2]:
                out.append(f"{pad}else:")
            else:
                out.append(f"{pad}if {condition(key, value)}:")
            stack.append((key, value, bool(sibling and not closed[2])))
        pad = "    " * len(path)
        parts = line.text.split("\n")
        parts[-1] += line.comment
        out += [pad + part for part in parts]
    return out


def camel(text: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", text) if part)


def variant_names(block: str, variants: list[Variant], chosen: list[str]) -> list[str]:
    """One class per variant, named after the values that tell them apart (`ConvBNActIdentity`,
    `InvertedResidualNoExpand`, `MultiHeadAttentionKvIsQ` for inputs given one tensor); a
    counter only where no parameter does."""
    if len(variants) == 1:
        return [block]
    names = [block + "".join(_value_name(p, _feature(v.members[0].graph, p)) for p in chosen) for v in variants]
    if chosen and len(set(names)) == len(names):
        return names
    return [f"{block}Variant{chr(ord('A') + i)}" for i in range(len(variants))]


ALIASES = "(inputs given one tensor)"


def _preference(param: str, rendered: list[Rendered]) -> int:
    """Name splits first after the values the code was seen to depend on (an activation's name),
    then after flags and names, then after numbers."""
    if param == ALIASES:
        return 1
    if any(str(u.expr) == param for m in rendered for u in m.assumed):
        return 0
    value = rendered[0].graph.params.get(param)
    return 1 if isinstance(value, (bool, str)) else 2


def _feature(graph, name: str) -> Any:
    if name == ALIASES:
        return tuple(graph.aliases)
    return _freeze(graph.params.get(name))


def _value_name(param: str, value: Any) -> str:
    if param == ALIASES:
        return "".join(f"{camel(name)}Is{camel(source)}" for name, source in value)
    if isinstance(value, bool):
        return camel(param) if value else "No" + camel(param)
    if isinstance(value, str):
        return camel(value)
    return camel(param) + re.sub(r"[^0-9]", "_", str(value))


def _freeze(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value
