"""Typed IR -> a plain "module model": every name and line of the generated
file decided in Python, so the templates only lay them out."""
from __future__ import annotations

import itertools
import re
import textwrap
from dataclasses import dataclass, field

import sympy

from compiler.codegen.lifetimes import last_readers
from compiler.codegen.names import NameAllocator, class_name_diagnostic, layer_name_diagnostic
from compiler.diagnostics import CompileError, error
from compiler.ir import Graph, Node, Program
from compiler.ir.types import TensorType, has_star, is_star
from compiler.ir.values import Layer, show
from compiler.ops import REGISTRY, LowerContext
from compiler.diagnostics.codes import BAD_REPEAT, UNBOUND_DIMENSION


@dataclass
class ClassModel:
    name: str
    doc: list[str]
    init_lines: list[str]
    signature: str
    returns: str
    forward_lines: list[str]
    class_lines: list[str] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)


@dataclass
class FileModel:
    source: str
    doc: str
    helpers: list[str] = field(default_factory=list)
    classes: list[ClassModel] = field(default_factory=list)
    aliases: list[tuple[str, str]] = field(default_factory=list)
    exports: list[str] = field(default_factory=list)
    import_lines: list[str] = field(default_factory=list)


def _safe_text(text: str) -> str:
    """Text for a comment or docstring: one line of printable characters, no quotes that could close it."""
    text = text.replace("\\", "/").replace('"', "'")
    return "".join(c if c.isprintable() else " " for c in text)


def build_file_model(program: Program) -> FileModel:
    helpers: set[str] = set()
    names = {key: key for key in program.graphs}
    classes = [ClassBuilder(g, program, helpers, names).build() for g in program.graphs.values()]
    models = FileModel(_safe_text(program.source), f"PyTorch modules compiled from {_safe_text(program.source)}.")
    models.classes = classes
    from compiler.codegen.helpers import HELPERS
    models.helpers = [HELPERS[h] for h in sorted(helpers)]
    models.import_lines = _import_lines(models)
    for public, key in program.models:
        if public != key:
            invalid = class_name_diagnostic(public, program.graphs[key], program)
            if invalid:
                raise CompileError(invalid)
            models.aliases.append((public, names[key]))
    models.exports = sorted({public for public, _ in program.models}, key=_export_order)
    return models


def _import_lines(file: FileModel) -> list[str]:
    """The generated module's imports: standard-library modules only where used (isort's
    groups, a blank line between), then torch; `F` only where used."""
    lines = [f"import {name}" for name in ("functools", "math", "re", "time") if _uses(file, name)]
    lines += ["", "import torch", "from torch import nn"]
    return lines + (["from torch.nn import functional as F"] if _uses(file, "F") else [])


def _uses(file: FileModel, name: str) -> bool:
    code = [*file.helpers, *(line for c in file.classes for line in (*c.init_lines, *c.forward_lines, *c.methods))]
    return any(re.search(rf"\b{name}\.", text) for text in code)


def _export_order(name: str) -> tuple:
    """isort's order, as ruff's RUF022 wants `__all__`: CONSTANTS, then Classes, then the rest,
    each in natural order (ResNet18 before ResNet101)."""
    category = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    return category, [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


class ClassBuilder:
    def __init__(self, graph: Graph, program: Program, helpers: set[str], names: dict[str, str] | None = None):
        self.names = names if names is not None else {k: k for k in program.graphs}
        self.graph = graph
        self.program = program
        self.helpers = helpers
        self.modules: dict[str, str] = {}          # IR module name -> attribute name
        self.init: list[str] = []
        self.vars = NameAllocator()
        self.value_names: dict[tuple[str, int], str] = {}
        self.dim_names: dict[sympy.Symbol, str] = {}
        self.uses_dims: set = set()

    def build(self) -> ClassModel:
        g = self.graph
        invalid = class_name_diagnostic(g.key, g, self.program)
        if invalid:
            raise CompileError(invalid)
        self._reserve_modules()
        inputs = [g.node(i) for i in g.inputs]
        params = []
        for node in inputs:
            name = self.vars.fresh(node.outputs[0])
            self.value_names[(node.id, 0)] = name
            params.append(f"{name}: torch.Tensor | None = None" if node.attrs.optional else f"{name}: torch.Tensor")
        prepare_dim_names(self)
        body: list[str] = []
        order = g.ordered()
        dying = last_readers(g, order)
        for node in order:
            if node.kind != "input":
                lines, dead = self._release_carried(node, self._lower(node), dying.get(node.id, []))
                body.extend(lines)
                body.extend(self._release(dead))
        if body and body[-1].startswith("del "):
            body.pop()                   # right before `return`: the locals go then anyway
        prologue = self._dim_prologue(inputs)
        outs = [self.value_names[(o.node, o.index)] for o in g.outputs]
        body.append(f"return {', '.join(outs)}")
        self._ties()
        self._fused_key_hook()
        returns = "torch.Tensor" if len(outs) == 1 else f"tuple[{', '.join(['torch.Tensor'] * len(outs))}]"
        model = ClassModel(self.names[g.key], self._doc(), self.init or ["pass"], ", ".join(["self", *params]), returns,
                           prologue + body)
        if g.renames:
            self._reference_renames(model)
        if g.conv_bn_folds:
            self._conv_bn_folds(model)
        if _loads_reference(g, self.program):
            self._reference_loader(model)
        elif g.is_model:
            self._plain_reference_loader(model)
        if g.is_model and self.program.optimize_for_inference:
            self._inference_preparation(model)
        return model

    def _fused_key_hook(self) -> None:
        """Layers made by fusion still load checkpoints of the layers they replaced."""
        joins = {}
        for node in self.graph.ordered():
            op = REGISTRY.get(node.op) if node.kind == "op" else None
            if op is not None and op.joins is not None:
                joins[node.module] = tuple(zip(op.joins(node.attrs), node.attrs.out_sizes))
        if joins:
            self.helpers.add("join_fused_keys")
            entries = ", ".join(f"{_py_str(k)}: ({', '.join(f'({_py_str(s)}, {n})' for s, n in v)},)"
                                for k, v in joins.items())
            self.init.append("# Checkpoints keep the separate layers; they load into the fused ones.")
            self.init.append(f"self.register_load_state_dict_pre_hook(join_fused_keys({{{entries}}}))")

    def _reference_renames(self, model: ClassModel) -> None:
        first = self.graph.renames[0].span
        where = self._where_span(first)
        comment = f"# Reference checkpoint key prefixes -> this module's names, relative to this module ({where})."
        model.class_lines += [comment, "REFERENCE_RENAMES = ("]
        model.class_lines += [f"    ({_py_str(r.source)}, {_py_str(r.target)}{_shape_entry(r.shape)})," for r in self.graph.renames]
        model.class_lines.append(")")

    def _conv_bn_folds(self, model: ClassModel) -> None:
        model.class_lines += ["# Batch norms that optimize_for_inference() folds into the convolution before them.",
                              "CONV_BN_FOLDS = ("]
        model.class_lines += [f"    ({_py_str(conv)}, {_py_str(norm)})," for conv, norm in self.graph.conv_bn_folds]
        model.class_lines.append(")")

    def _inference_preparation(self, model: ClassModel) -> None:
        """`optimize_for_inference`, with the steps that apply to the layers this model holds."""
        graphs = _reachable_graphs(self.graph, self.program)
        ops = {op for g in graphs for op in _ops(g)}
        steps, done = ["self.eval()"], ["eval mode"]
        if any(g.conv_bn_folds for g in graphs):
            self.helpers.add("fold_conv_bn")
            steps.append("fold_conv_bn(self)")
            done.append("batch norms folded into the convolutions before them")
        if "Conv2d" in ops:
            # Channels-last: measured on CPU (2 threads, batch 8) 20-40% faster for ResNet-50, MobileNetV2 and
            # VGG-16; with example inputs the helper measures it again on this machine and keeps the faster.
            self.helpers.add("choose_linear_kernels")
            steps.append("summary += choose_memory_format(self, example_inputs)")
            done.append("channels-last convolution weights where that is faster")
        if ops & {"Linear", "FusedLinear", "TransposedLinear"}:
            self.helpers.add("choose_linear_kernels")
            transposed = ", transposed=(TransposedLinear,)" if "TransposedLinear" in ops else ""
            steps.append(f"summary += choose_linear_kernels(self, example_inputs, kernels{transposed})")
            done.append("each linear layer shape on the fastest kernel measured on this machine (plain, or "
                        "pre-packed oneDNN or MKL weights, on CPU)")
        doc = (f"Prepare this model for inference, in place, and return it: {', '.join(done)}.  Load the "
               "weights first: the prepared layers no longer match a checkpoint, and are not for training.  "
               "`example_inputs` (a batch like those to be served) make the measurements use their shapes; "
               "`kernels` is \"measure\", \"plain\" or a packed kernel's name.  What was chosen, and why: "
               "`self.inference_summary`.")
        lines = textwrap.wrap(f'"""{doc}"""', DOC_WIDTH)
        uses_summary = any("summary +=" in step for step in steps)
        signature = "self, *example_inputs: torch.Tensor, kernels: str = \"measure\"" if uses_summary else "self"
        body = [f'def optimize_for_inference({signature}) -> "{model.name}":', *(f"    {line}" for line in lines),
                *(f"    {step}" for step in steps[:1]), *(["    summary = []"] if uses_summary else []),
                *(f"    {step}" for step in steps[1:]),
                *(["    self.inference_summary = summary"] if uses_summary else []), "    return self"]
        model.methods.append("\n".join(body))

    def _plain_reference_loader(self, model: ClassModel) -> None:
        """`load_reference_state_dict` for a model without renames: every model has one, and here the
        reference's names are already this model's."""
        model.methods.append(
            "def load_reference_state_dict(self, state_dict: dict, strict: bool = True):\n"
            '    """Load a checkpoint of the reference implementation, whose keys are this model\'s."""\n'
            "    return self.load_state_dict(state_dict, strict=strict)")

    def _reference_loader(self, model: ClassModel) -> None:
        """`load_reference_state_dict`, for a block that declares renames or holds one that does."""
        self.helpers.add("rename_reference_keys")
        model.methods.append(
            "def load_reference_state_dict(self, state_dict: dict, strict: bool = True):\n"
            '    """Load a checkpoint of the reference implementation, renaming its keys."""\n'
            "    return self.load_state_dict(rename_reference_keys(self, state_dict), strict=strict)")

    def _doc(self) -> list[str]:
        g = self.graph
        params = ", ".join(f"{k}={show(v)}" for k, v in g.params.items())
        lines = [f"{g.block}({params})", f"from {g.span.file}:{g.span.line}.", ""]
        lines += [f"{g.node(i).outputs[0]}: {g.node(i).attrs}" for i in g.inputs]
        lines += [f"({name} is the same tensor as {source})" for name, source in g.aliases]
        lines += [f"-> {o.name}: {g.output_type(o.node, o.index)}" for o in g.outputs]
        return [_safe_text(line) for line in lines]

    # ------------------------------------------------------------------ submodules
    def _reserve_modules(self) -> None:
        attrs = NameAllocator()
        for node in self.graph.ordered():
            if node.module is None or node.module in self.modules:
                continue
            invalid = layer_name_diagnostic(node)
            if invalid:
                raise CompileError(invalid)
            self.modules[node.module] = node.module
            attrs.reserve(node.module)
            comment = f"  # {self._where(node)}"
            first, newline, rest = self._constructor(node, f"self.{node.module} = ", comment).partition("\n")
            self.init.append(f"self.{node.module} = {first}{comment}{newline}{rest}")

    def _where(self, node: Node) -> str:
        return _safe_text(f"{node.span.file}:{node.span.line}")

    def _constructor(self, node: Node, before: str = "", after: str = "") -> str:
        """The submodule's constructor; `before` and `after` share its line."""
        if node.kind == "op":
            op = REGISTRY[node.op]
            self.helpers.update(op.helpers)
            return op.init(node.attrs)
        if node.kind == "block":
            return f"{self.names[node.op]}()"
        layers: tuple[Layer, ...] = node.attrs
        return _module_list([self._layer_constructor(l) for l in layers], INIT_WIDTH - len(before) - len(after))

    def _layer_constructor(self, layer: Layer) -> str:
        if layer.kind == "block":
            return f"{self.names[layer.target]}()"
        op = REGISTRY[layer.target]
        if op.init is None:
            raise error(BAD_REPEAT, f"repeat needs a layer with state; {layer.target} has none", layer.span)
        self.helpers.update(op.helpers)
        return op.init(layer.attrs)

    # ------------------------------------------------------------------ forward
    def _lower(self, node: Node) -> list[str]:
        g = self.graph
        operands = g.operands(node.id)
        args = [self.value_names[operands[s]] if s in operands else None for s in range(max(operands, default=-1) + 1)]
        in_types = [g.output_type(*operands[s]) if s in operands else None for s in range(len(args))]
        outs = [self._result_name(node, i) for i in range(len(node.outputs))]
        for i, name in enumerate(outs):
            self.value_names[(node.id, i)] = name
        comment = "  # " + ", ".join(t.shape_str() for t in node.types) if node.types else ""
        if node.kind == "block":
            lines = [f"{', '.join(outs)} = self.{node.module}({_call_args(args)})"]
        elif node.kind == "repeat":
            lines = self._lower_repeat(node, args, in_types, outs)
        else:
            ctx = LowerContext(args, outs, f"self.{node.module}" if node.module else None, in_types,
                               list(node.types or ()), self.dim_names, self.vars.fresh)
            lines = REGISTRY[node.op].lower(node.attrs, ctx)
            self.helpers.update(REGISTRY[node.op].helpers)
            self.uses_dims |= ctx.uses_dims
        lines[-1] += comment
        return lines

    def _release_carried(self, node: Node, lines: list[str], dead: list[tuple[str, int]]) -> tuple[list[str], list]:
        """A repeat copies its input into the carried variable (`layer2 = layer1`) before the loop:
        when the loop is the input's last reader, release it there, not after every iteration ran."""
        first = self.graph.operands(node.id).get(0)
        if node.kind != "repeat" or first not in dead or lines[0].startswith("for "):
            return lines, dead
        return [lines[0], *self._release([first]), *lines[1:]], [v for v in dead if v != first]

    def _release(self, values: list[tuple[str, int]]) -> list[str]:
        """`del` the locals whose last reader was just lowered (see codegen/lifetimes.py)."""
        names = [self.value_names[v] for v in values if self.value_names.get(v, "_") != "_"]
        return [f"del {', '.join(dict.fromkeys(names))}"] if names else []

    def _result_name(self, node: Node, index: int) -> str:
        """A fresh variable for a node's result; `_` for an unused one among several, as in
        `_, pooled = self.bert(...)`."""
        g = self.graph
        used = any(data["index"] == index for _, _, data in g.g.out_edges(node.id, data=True)) or any(
            (o.node, o.index) == (node.id, index) for o in g.outputs)
        if len(node.outputs) > 1 and node.kind != "repeat" and not used:
            return "_"
        return self.vars.fresh(node.outputs[index])

    def _lower_repeat(self, node: Node, args, in_types, outs) -> list[str]:
        layer = self.vars.fresh("layer")
        carried = outs[0]
        head = [] if args[0] == carried else [f"{carried} = {args[0]}"]
        call_args = _call_args([carried, *args[1:]])
        first: Layer = node.attrs[0]
        if first.kind == "block":
            step = f"{', '.join(outs)} = {layer}({call_args})"
        else:
            ctx = LowerContext([carried, *args[1:]], outs, layer, in_types, list(node.types or ()),
                               self.dim_names, self.vars.fresh)
            step = "\n    ".join(REGISTRY[first.target].lower(first.attrs, ctx))
        return head + [f"for {layer} in self.{node.module}:", f"    {step}"]

    def _dim_prologue(self, inputs: list[Node]) -> list[str]:
        """Bind the symbolic dimensions the body uses: `B, S, _ = x.shape`."""
        needed = set(self.uses_dims)
        lines = []
        for node in inputs:
            t: TensorType = node.attrs
            if t.optional or not needed:
                continue
            if has_star(t.shape):     # rank-polymorphic: its trailing dimensions, counted from the end
                for i, d in enumerate(t.shape):
                    if d.is_Symbol and d in needed and not is_star(d):
                        lines.append(f"{self.dim_names[d]} = {self.value_names[(node.id, 0)]}.shape[{i - t.rank}]")
                        needed.discard(d)
                continue
            names = []
            for d in t.shape:
                if d.is_Symbol and d in needed:
                    names.append(self.dim_names[d])
                    needed.discard(d)
                else:
                    names.append("_")
            if any(n != "_" for n in names):
                lines.append(f"{', '.join(names)}{',' if len(names) == 1 else ''} = {self.value_names[(node.id, 0)]}.shape")
        if needed:
            raise error(UNBOUND_DIMENSION, f"dimension {', '.join(sorted(map(str, needed)))} is not given by any required input",
                        self.graph.span)
        return lines

    def _ties(self) -> None:
        for tie in self.graph.ties:
            self.init.append(f"{_path(tie.target)} = {_path(tie.source)}  # tied, {self._where_span(tie.span)}")

    def _where_span(self, span) -> str:
        return _safe_text(f"{span.file}:{span.line}")


def _loads_reference(graph: Graph, program: Program) -> bool:
    """Whether `graph`, or a block anywhere inside it, declares `rename` rules."""
    return any(g.renames for g in _reachable_graphs(graph, program))


def _reachable_graphs(graph: Graph, program: Program) -> list[Graph]:
    """`graph` and the graphs of the blocks anywhere inside it."""
    found, pending = {graph.key: graph}, [graph]
    while pending:
        for key in sorted({key for node in pending.pop().ordered() for key in _block_keys(node)} - found.keys()):
            found[key] = program.graphs[key]
            pending.append(found[key])
    return list(found.values())


def _ops(graph: Graph) -> set[str]:
    """The primitives a graph applies, directly or as the layers of a `repeat`."""
    ops = {node.op for node in graph.ordered() if node.kind == "op"}
    return ops | {layer.target for node in graph.ordered() if node.kind == "repeat"
                  for layer in node.attrs if layer.kind != "block"}


def _block_keys(node: Node) -> list[str]:
    """The graphs of the blocks a node instantiates."""
    if node.kind == "block":
        return [node.op]
    if node.kind == "repeat":
        return [layer.target for layer in node.attrs if layer.kind == "block"]
    return []


# Columns a line of __init__ may take after its indentation (ruff's line-length is 120).
INIT_WIDTH = 112
# Columns of a method's docstring, as the hand-written helpers' docstrings.
DOC_WIDTH = 96


def _module_list(parts: list[str], width: int) -> str:
    """`nn.ModuleList` of the layers' constructors.  A run of three or more equal ones is a
    comprehension; the items go one per line when one line would be wider than `width`."""
    runs = [(part, len(list(group))) for part, group in itertools.groupby(parts)]
    if len(runs) == 1:
        return f"nn.ModuleList([{parts[0]} for _ in range({len(parts)})])"
    items: list[str] = []
    for part, count in runs:
        items += [f"*[{part} for _ in range({count})]"] if count > 2 else [part] * count
    one_line = f"nn.ModuleList([{', '.join(items)}])"
    if len(one_line) <= width:
        return one_line
    return "nn.ModuleList([\n" + "".join(f"    {item},\n" for item in items) + "])"


def _shape_entry(shape: tuple[int, ...] | None) -> str:
    """The third entry of a REFERENCE_RENAMES rule that reshapes on load: `, (1, 1, 768)`."""
    return "" if shape is None else ", (" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _py_str(text: str) -> str:
    """A Python string literal for text the resolver has already restricted to [\\w.{}]."""
    assert all(c.isalnum() or c in "_.{}" for c in text), text
    return '"' + text + '"'


def _path(parts: tuple[str, ...]) -> str:
    text = "self"
    for p in parts:
        text += f"[{p}]" if p.isdigit() else f".{p}"
    return text


def _call_args(args: list[str | None]) -> str:
    while args and args[-1] is None:
        args = args[:-1]
    return ", ".join(a if a is not None else "None" for a in args)


def prepare_dim_names(builder: ClassBuilder) -> None:
    """Symbols get their spec names as Python variables where free."""
    for node_id in builder.graph.inputs:
        for d in builder.graph.node(node_id).attrs.shape:
            for sym in getattr(d, "free_symbols", ()):
                if sym not in builder.dim_names and not is_star(sym):   # `*` is no one Python value
                    builder.dim_names[sym] = builder.vars.fresh(str(sym))
