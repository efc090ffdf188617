"""What a generated class needs for `init_weights()` (runtime/init.py): its `init` rules
as data in `__init__`, the op of each layer with parameters, and `tie_weights()`."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Callable

from compiler.codegen.expressions import Unprintable, py_literal, to_python
from compiler.ir import Graph, InitRule
from compiler.ops import REGISTRY

if TYPE_CHECKING:
    from compiler.codegen.specialization import Line, SpecializationRenderer

# A fused layer is initialized as the layers it replaced (part by part): rules name their op.
_LOGICAL_OP = {"FusedLinear": "Linear"}


def init_rule_lines(renderer: SpecializationRenderer) -> list[Line]:
    """`self.init_rules = (...)`: the block's `init` statements, then its Parameter layers' declared
    initialization (a rule naming the layer, so an outer block's rule for it still wins)."""
    from compiler.codegen.specialization import Line
    graph = renderer.graph
    entries = [_rule_entry(rule, renderer.scope.init_name) for rule in graph.init_rules]
    for node in graph.ordered():
        if node.kind == "op" and node.op == "Parameter" and node.module:
            entries.append(_parameter_entry(node.module, renderer.init_attrs(node.call, node.attrs, node)))
    if not entries:
        return []
    span = graph.init_rules[0].span if graph.init_rules else graph.span
    from compiler.codegen.definition import wrap_def
    text = "\n".join(wrap_def("self.init_rules = (", entries if len(entries) > 1 else [entries[0] + ","], ")", width=104))
    return [Line((), text, f"  # {renderer.where(span)}" if graph.init_rules else "")]


def _rule_entry(rule: InitRule, name: Callable[[str], str]) -> str:
    arguments = []
    for arg, value, expr in rule.args:
        if expr is None:
            continue            # the scheme's default is torch.nn.init's
        try:
            text = to_python(expr, name)
        except Unprintable:
            text = py_literal(value)
        arguments.append(f'"{arg}": {text}')
    return f'("{".".join(rule.target)}", "{rule.scheme}", {{{", ".join(arguments)}}})'


def _parameter_entry(module: str, a: Any) -> str:
    """Parameter([..], init=...)'s scheme as an init rule."""
    scheme, arguments = {
        "zeros": ("zeros", ""), "ones": ("ones", ""), "constant": ("constant", f'"val": {a.value!r}'),
        "normal": ("normal", f'"std": {a.std!r}'), "trunc_normal": ("trunc_normal", f'"std": {a.std!r}'),
        "uniform": ("uniform", f'"a": -{a.value!r}, "b": {a.value!r}'),
    }[a.init]
    return f'("{module}", "{scheme}", {{{arguments}}})'


def layer_ops(graphs: list[Graph]) -> dict[str, str]:
    """Each layer with parameters -> its op, in registration order, over the specializations."""
    found: dict[str, str] = {}
    for graph in graphs:
        for node in graph.ordered():
            if not node.module or node.module in found:
                continue
            if node.kind == "op" and REGISTRY[node.op].params(node.attrs):
                found[node.module] = _LOGICAL_OP.get(node.op, node.op)
            elif node.kind == "repeat":
                layers = [layer for layer in node.attrs if layer.kind != "block"]
                if layers and REGISTRY[layers[0].target].params(layers[0].attrs):
                    found[node.module] = layers[0].target
    return found


def layer_ops_lines(graphs: list[Graph], init_lines: list[str]) -> list[str]:
    """LAYER_OPS: the layers whose op init_weights() cannot read off their class.  A layer built
    as the torch.nn class its op is named after (`self.norm = nn.LayerNorm(...)` for LayerNorm)
    is left out: the runtime takes the class name (runtime/init.py)."""
    code = "\n".join(init_lines)
    ops = {name: op for name, op in layer_ops(graphs).items()
           if not re.search(rf"^\s*self\.{re.escape(name)} = nn\.{re.escape(op)}\(", code, re.MULTILINE)}
    if not ops:
        return []
    entries = [f'("{name}", "{op}")' for name, op in ops.items()]
    one = "LAYER_OPS = (" + ", ".join(entries) + ("," if len(entries) == 1 else "") + ")"
    if len(one) <= 112:
        return [one]
    return ["LAYER_OPS = (", *(f"    {e}," for e in entries), ")"]


def tie_weights_method(tie_lines: list[str]) -> str:
    """`tie_weights()`: the spec's `tie`s again, for init_weights() and loading (`to_empty()` unties)."""
    body = "\n".join(f"    {line}" for text in tie_lines for line in text.split("\n"))
    return 'def tie_weights(self) -> None:\n    """Re-apply the spec\'s `tie`s (`to_empty()` unties parameters)."""\n' + body


def tied_weights_lines(tie_lines: list[str]) -> list[str]:
    """`TIED_WEIGHTS`, the (target, source) parameter paths that WeightInitMixin.tie_weights() ties
    (as HF's `_tied_weights_keys`), where every tie holds in every configuration; none where one
    depends on the parameters (an `if`): the block's own tie_weights() then."""
    pairs = [re.fullmatch(r"self\.([\w.]+) = self\.([\w.]+)", text.split("  #")[0]) for text in tie_lines]
    if not all(pairs):
        return []
    entries = ", ".join(f'("{m.group(1)}", "{m.group(2)}")' for m in pairs if m)
    where = ", ".join(dict.fromkeys(text.split("  # tied, ")[-1] for text in tie_lines))
    return [f"TIED_WEIGHTS = ({entries}{',' if len(pairs) == 1 else ''})  # tied, {where}"]
