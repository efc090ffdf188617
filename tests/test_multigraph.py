"""compiler/ir/multigraph.py against networkx: the same operations give the same nodes, edges,
data and iteration orders, so the IR walks its graphs exactly as it did on networkx."""
from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.ir.multigraph import MultiDiGraph, ancestors, is_directed_acyclic_graph, lexicographical_topological_sort
from tests.fast_lane import examples
from tests.lazy_import import lazy_import

nx = lazy_import("networkx")

NODES = st.integers(0, 7)
OPERATIONS = st.lists(st.one_of(
    st.tuples(st.just("add_node"), NODES, st.integers(0, 3)),
    st.tuples(st.just("add_edge"), NODES, NODES, st.integers(0, 2), st.integers(0, 3)),
    st.tuples(st.just("remove_node"), NODES),
    st.tuples(st.just("remove_nodes_from"), st.lists(NODES, max_size=3)),
), max_size=40)


def _apply(graph, operation) -> None:
    name, *args = operation
    if name == "add_node":
        graph.add_node(args[0], node=args[1])
    elif name == "add_edge":
        src, dst, key, index = args
        graph.add_edge(src, dst, key=key, index=index)
    elif name == "remove_node":
        if args[0] in graph:
            graph.remove_node(args[0])
    else:
        graph.remove_nodes_from(args[0])


def _views(graph) -> list:
    views = [list(graph.nodes(data=True)), list(graph.edges()), list(graph.edges(keys=True, data=True)),
             graph.number_of_nodes(), graph.number_of_edges()]
    for node in graph.nodes:
        views += [list(graph.out_edges(node)), list(graph.out_edges(node, keys=True, data=True)),
                  list(graph.out_edges(node, data=True)), list(graph.in_edges(node, keys=True)),
                  graph.out_degree(node), graph.in_degree(node), graph.nodes[node],
                  list(graph.successors(node)), list(graph.predecessors(node)), list(graph.neighbors(node)),
                  [graph.has_edge(node, other) for other in range(8)], graph.has_edge(node, node, 1),
                  graph.has_node(node),
                  {src: dict(keyed) for src, keyed in graph.pred[node].items()}]
    return views


@settings(max_examples=examples(150), deadline=None)
@given(OPERATIONS)
def test_every_view_matches_networkx(operations):
    ours, theirs = MultiDiGraph(), nx.MultiDiGraph()
    for operation in operations:
        _apply(ours, operation)
        _apply(theirs, operation)
    assert _views(ours) == _views(theirs)
    assert _views(ours.copy()) == _views(theirs.copy())
    assert _views(ours.to_networkx()) == _views(theirs.copy())     # both rebuilt edge by edge
    assert is_directed_acyclic_graph(ours) == nx.is_directed_acyclic_graph(theirs)
    for node in theirs:
        assert ancestors(ours, node) == nx.ancestors(theirs, node)
    if nx.is_directed_acyclic_graph(theirs):
        order = lexicographical_topological_sort(ours, key=lambda n: -n % 3)
        assert order == list(nx.lexicographical_topological_sort(theirs, key=lambda n: -n % 3))


def test_a_copy_does_not_share_data_dicts():
    graph = MultiDiGraph()
    graph.add_edge("a", "b", key=0, index=1)
    copy = graph.copy()
    copy.nodes["a"]["node"] = "changed"
    copy.add_edge("a", "b", key=0, index=2)
    assert graph.nodes["a"] == {} and graph.edges(keys=True, data=True) == [("a", "b", 0, {"index": 1})]


def test_ordered_follows_every_change_of_structure_or_order():
    from compiler.ir import Graph, Node
    graph = Graph("G", "G", {}, None)
    for i in range(3):
        graph.add(Node(f"n{i}", "op", "Add", None, None, (f"v{i}",)))
    graph.connect("n0", 0, "n1", 0)
    assert [n.id for n in graph.ordered()] == ["n0", "n1", "n2"]
    graph.replace_node(dataclasses.replace(graph.node("n2"), order=-1))      # a node moved first
    assert [n.id for n in graph.ordered()] == ["n2", "n0", "n1"]
    graph.connect("n1", 0, "n2", 0)                                          # n2 now reads n1
    assert [n.id for n in graph.ordered()] == ["n0", "n1", "n2"]
    typed = dataclasses.replace(graph.node("n1"), types=())                 # same order: cached order,
    graph.replace_node(typed)                                                # the current nodes
    assert graph.ordered()[1] is typed
    graph.g.remove_node("n0")
    assert [n.id for n in graph.ordered()] == ["n1", "n2"]
    graph.g = graph.g.copy()
    graph.g.remove_node("n2")
    assert [n.id for n in graph.ordered()] == ["n1"]
