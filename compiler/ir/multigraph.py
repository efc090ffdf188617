"""A small directed multigraph: the part of networkx's MultiDiGraph API the IR uses.

Every check builds one graph per block specialization, and importing networkx cost a cold
`dlc check` about a fifth of its start-up; its graph classes also spend most of their time in
generic views.  This class keeps networkx's data layout (node -> data dict, succ/pred maps
of neighbour -> key -> edge data dict) and its iteration orders (nodes and neighbours in
insertion order, then edge keys), so code written against networkx reads the same and walks
graphs in the same order.  `to_networkx()` gives a real networkx graph where one of its
algorithms is wanted (networkx is imported then, not before).
"""
from __future__ import annotations

import heapq
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Any

EdgeData = dict[str, Any]


class NodeView:
    """`g.nodes[n]` is n's data dict; `g.nodes(data=True)` yields (n, data); iterating yields n."""

    __slots__ = ("_nodes",)

    def __init__(self, nodes: dict[Hashable, dict]):
        self._nodes = nodes

    def __getitem__(self, node: Hashable) -> dict:
        return self._nodes[node]

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self._nodes)

    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, node: object) -> bool:
        return node in self._nodes

    def __call__(self, data: bool = False) -> Iterable:
        return self._nodes.items() if data else self._nodes.keys()


class MultiDiGraph:
    """Nodes with data dicts, and keyed edges with data dicts (the key is the consumer's slot)."""

    def __init__(self) -> None:
        # Bumped by every change of the node or edge sets, so a caller can tell that what it
        # derived from the structure (Graph.ordered()) still holds.
        self.version = 0
        self._node: dict[Hashable, dict] = {}
        self._succ: dict[Hashable, dict[Hashable, dict[Hashable, EdgeData]]] = {}
        self._pred: dict[Hashable, dict[Hashable, dict[Hashable, EdgeData]]] = {}

    # ------------------------------------------------------------------ nodes
    @property
    def nodes(self) -> NodeView:
        return NodeView(self._node)

    @property
    def node_data(self) -> dict[Hashable, dict]:
        """node -> its data dict, as one dict (`nodes[n]` for many nodes at once)."""
        return self._node

    @property
    def pred(self) -> dict[Hashable, dict[Hashable, dict[Hashable, EdgeData]]]:
        """node -> predecessor -> key -> edge data (read it, do not edit it)."""
        return self._pred

    @property
    def succ(self) -> dict[Hashable, dict[Hashable, dict[Hashable, EdgeData]]]:
        """node -> successor -> key -> edge data (read it, do not edit it)."""
        return self._succ

    def __contains__(self, node: object) -> bool:
        return node in self._node

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self._node)

    def __len__(self) -> int:
        return len(self._node)

    def number_of_nodes(self) -> int:
        return len(self._node)

    def add_node(self, node: Hashable, /, **data: Any) -> None:
        self.version += 1
        if node not in self._node:
            self._node[node] = data         # `data` is this call's own dict: kept, not copied
            self._succ[node] = {}
            self._pred[node] = {}
        else:
            self._node[node].update(data)

    def remove_node(self, node: Hashable) -> None:
        """Remove `node` and every edge into or out of it (KeyError if it is absent, as networkx)."""
        del self._node[node]
        self.version += 1
        for dst in self._succ.pop(node):
            del self._pred[dst][node]
        for src in self._pred.pop(node):
            del self._succ[src][node]

    def remove_nodes_from(self, nodes: Iterable[Hashable]) -> None:
        for node in list(nodes):
            if node in self._node:
                self.remove_node(node)

    # ------------------------------------------------------------------ edges
    def add_edge(self, src: Hashable, dst: Hashable, /, key: Hashable = 0, **data: Any) -> Hashable:
        """Add the edge (or update its data), adding missing end points as networkx does."""
        if src not in self._node:
            self.add_node(src)
        if dst not in self._node:
            self.add_node(dst)
        keyed = self._succ[src].get(dst)
        if keyed is None:
            keyed = self._succ[src][dst] = self._pred[dst][src] = {}
        if key not in keyed:
            self.version += 1
            keyed[key] = data           # this call's own dict: kept, not copied
        else:
            keyed[key].update(data)
        return key

    def out_edges(self, node: Hashable, keys: bool = False, data: bool = False) -> list[tuple]:
        """The edges out of `node`: (node, dst[, key][, data]) in networkx's order."""
        return [_edge(node, dst, key, attrs, keys, data)
                for dst, keyed in self._succ[node].items() for key, attrs in keyed.items()]

    def in_edges(self, node: Hashable, keys: bool = False, data: bool = False) -> list[tuple]:
        """The edges into `node`: (src, node[, key][, data])."""
        return [_edge(src, node, key, attrs, keys, data)
                for src, keyed in self._pred[node].items() for key, attrs in keyed.items()]

    def edges(self, keys: bool = False, data: bool = False) -> list[tuple]:
        """Every edge, by source in node order: (src, dst[, key][, data])."""
        return [_edge(src, dst, key, attrs, keys, data) for src, succ in self._succ.items()
                for dst, keyed in succ.items() for key, attrs in keyed.items()]

    def successors(self, node: Hashable) -> Iterator[Hashable]:
        """The nodes `node` feeds, each once, in the order their first edge was added."""
        return iter(self._succ[node])

    neighbors = successors

    def predecessors(self, node: Hashable) -> Iterator[Hashable]:
        """The nodes that feed `node`, each once."""
        return iter(self._pred[node])

    def has_node(self, node: Hashable) -> bool:
        return node in self._node

    def has_edge(self, src: Hashable, dst: Hashable, key: Hashable | None = None) -> bool:
        keyed = self._succ.get(src, {}).get(dst)
        return keyed is not None and (key is None or key in keyed)

    def number_of_edges(self) -> int:
        return sum(len(keyed) for succ in self._succ.values() for keyed in succ.values())

    def out_degree(self, node: Hashable) -> int:
        return sum(len(keyed) for keyed in self._succ[node].values())

    def in_degree(self, node: Hashable) -> int:
        return sum(len(keyed) for keyed in self._pred[node].values())

    # ------------------------------------------------------------------ whole graph
    def copy(self) -> "MultiDiGraph":
        """New node and edge data dicts holding the same values (networkx's `copy()`)."""
        new = MultiDiGraph()
        new.version = self.version
        new._node = {node: dict(attrs) for node, attrs in self._node.items()}
        new._succ = {node: {} for node in self._node}
        new._pred = {node: {} for node in self._node}
        for src, succ in self._succ.items():
            for dst, keyed in succ.items():
                copied = {key: dict(attrs) for key, attrs in keyed.items()}
                new._succ[src][dst] = new._pred[dst][src] = copied
        return new

    def to_networkx(self) -> Any:
        """The same graph as a networkx.MultiDiGraph, for its algorithms and drawings."""
        import networkx as nx
        graph = nx.MultiDiGraph()
        graph.add_nodes_from(self._node.items())
        graph.add_edges_from(self.edges(keys=True, data=True))
        return graph


def _edge(src: Hashable, dst: Hashable, key: Hashable, attrs: EdgeData, keys: bool, data: bool) -> tuple:
    if keys:
        return (src, dst, key, attrs) if data else (src, dst, key)
    return (src, dst, attrs) if data else (src, dst)


def ancestors(graph: MultiDiGraph, node: Hashable) -> set[Hashable]:
    """Every node with a path to `node` (networkx.ancestors)."""
    seen: set[Hashable] = set()
    stack = list(graph.pred[node])
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack.extend(graph.pred[current])
    seen.discard(node)
    return seen


def lexicographical_topological_sort(graph: MultiDiGraph, key: Callable[[Hashable], Any]) -> list[Hashable]:
    """networkx.lexicographical_topological_sort: of the nodes whose producers are all placed,
    the smallest by `key` (then by insertion order) comes next.  ValueError on a cycle."""
    position = {node: i for i, node in enumerate(graph)}
    waiting = {node: graph.in_degree(node) for node in graph}
    ready = [(key(node), position[node], node) for node, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        node = heapq.heappop(ready)[2]
        order.append(node)
        for _, child in graph.out_edges(node):
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, (key(child), position[child], child))
    if len(order) != len(graph):
        raise ValueError("the graph has a cycle")
    return order


def is_directed_acyclic_graph(graph: MultiDiGraph) -> bool:
    try:
        lexicographical_topological_sort(graph, key=lambda node: 0)
    except ValueError:
        return False
    return True
