"""Declarative peephole rewrites: rules as data, one driver.

A `Rule` is a pattern over a chain of ops (each op's first operand produced by the
next pattern down, as tinygrad's `UPat` nests sources), a silent `guard` that
finishes the match, a `condition` that can decline a match with the reason the
optimization log prints, a `rewrite` that edits the graph and says what it did,
and a one-line `why`.  `apply_rules` walks the graph once in topological order;
at each node the first rule whose pattern and guard match decides: it declines
or rewrites, and the walk moves on.  A pass is then just its list of rules:

    RULES = [Rule("cancel-transpose-pair", Op(REORDERS, "second", src=Op(REORDERS, "first")),
                  guard=undoes, rewrite=remove_both, why="a permutation and its inverse are the identity")]
    def cancel_transpose_pairs(graph, program): return apply_rules(RULES, graph, program)
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from compiler.ir import Graph, Node, Program
from compiler.passes.rewrite import each_node, producer, uses


@dataclass(frozen=True)
class Match:
    """The nodes a pattern bound, by name (`m.first`, `m.second`), and the graph they are in."""

    graph: Graph
    nodes: dict[str, Node]

    def __getattr__(self, name: str) -> Node:
        try:
            return self.nodes[name]
        except KeyError:
            raise AttributeError(name) from None


@dataclass(frozen=True)
class Op:
    """Matches a typed op node whose op is one of `ops` and binds it to `bind`; `src`, when
    given, must match the single-output op that produces its first operand."""

    ops: tuple[str, ...]
    bind: str
    src: Op | None = None

    def match(self, graph: Graph, node: Node | None, bound: dict[str, Node]) -> bool:
        if node is None or node.kind != "op" or node.op not in self.ops or not node.types:
            return False
        bound[self.bind] = node
        return self.src is None or self.src.match(graph, producer(graph, node), bound)


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: Op
    rewrite: Callable[[Match], str]                    # edits the graph; returns its log line
    why: str                                           # one line: why the rewrite is correct and worth it
    guard: Callable[[Match], bool] = lambda m: True    # part of the match: a failed guard is silent
    condition: Callable[[Match], str | None] = lambda m: None   # why not, or None: a decline is logged
    describe: Callable[[Match], str] = lambda m: ""    # names the match in a "declined ..." line

    def match(self, graph: Graph, node: Node) -> Match | None:
        bound: dict[str, Node] = {}
        if not self.pattern.match(graph, node, bound):
            return None
        found = Match(graph, bound)
        return found if self.guard(found) else None


def apply_rules(rules: Sequence[Rule], graph: Graph, program: Program) -> bool:
    """Run `rules` over `graph` once, top to bottom; log every rewrite and decline."""
    changed = False
    for node in each_node(graph):
        for rule in rules:
            found = rule.match(graph, node)
            if found is None:
                continue
            reason = rule.condition(found)
            if reason is not None:
                program.log.append(f"declined {rule.describe(found)} in {graph.key}: {reason}")
            else:
                program.log.append(rule.rewrite(found))
                changed = True
            break
    return changed


def only_reader(m: Match, name: str = "first") -> str | None:
    """A condition: the bound node's result has no reader besides the rest of the chain
    (otherwise it is computed anyway, and folding it into the chain saves nothing)."""
    return "the value between them has other uses" if uses(m.graph, m.nodes[name].id) > 1 else None
