"""Typed IR -> a plain "module model": every name and line of the generated
file decided in Python, so the templates only lay them out."""
from __future__ import annotations

from dataclasses import dataclass, field

import sympy

from ..diagnostics import error
from ..ir import Graph, Node, Program
from ..ops import REGISTRY, LowerContext
from ..types import TensorType
from ..values import Layer, show
from .names import NameAllocator, class_name_problem, module_name_problem


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
    imports: list[str] = field(default_factory=list)


def _safe_text(text: str) -> str:
    """Text for a comment or docstring: one line, no quotes that could close it."""
    return text.replace("\\", "/").replace('"', "'").replace("\r", " ").replace("\n", " ")


def build_file_model(program: Program) -> FileModel:
    helpers: set[str] = set()
    classes = [ClassBuilder(g, program, helpers).build() for g in program.graphs.values()]
    models = FileModel(program.source, f"PyTorch modules compiled from {_safe_text(program.source)}.")
    models.classes = classes
    from .helpers import HELPERS
    models.helpers = [HELPERS[h] for h in sorted(helpers)]
    models.imports = ["math", *(["re"] if "rename_reference_keys" in helpers else [])]
    for public, key in program.models:
        if public != key:
            models.aliases.append((public, key))
    models.exports = sorted({public for public, _ in program.models})
    return models


class ClassBuilder:
    def __init__(self, graph: Graph, program: Program, helpers: set[str]):
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
        problem = class_name_problem(g.key)
        if problem:
            raise error("DLC012", f"`{g.key}` cannot name a generated class: it {problem}", g.span,
                        hint="rename the block or model")
        self._reserve_modules()
        inputs = [g.node(i) for i in g.inputs]
        params = []
        for node in inputs:
            name = self.vars.fresh(node.outputs[0])
            self.value_names[(node.id, 0)] = name
            params.append(f"{name}: torch.Tensor | None = None" if node.attrs.optional else f"{name}: torch.Tensor")
        prepare_dim_names(self)
        body: list[str] = []
        for node in g.ordered():
            if node.kind != "input":
                body.extend(self._lower(node))
        prologue = self._dim_prologue(inputs)
        outs = [self.value_names[(o.node, o.index)] for o in g.outputs]
        body.append(f"return {', '.join(outs)}")
        self._ties()
        returns = "torch.Tensor" if len(outs) == 1 else f"tuple[{', '.join(['torch.Tensor'] * len(outs))}]"
        model = ClassModel(g.key, self._doc(), self.init or ["pass"], ", ".join(["self", *params]), returns,
                           prologue + body)
        if g.renames:
            self._reference_loader(model)
        return model

    def _reference_loader(self, model: ClassModel) -> None:
        self.helpers.add("rename_reference_keys")
        first = self.graph.renames[0].span
        model.class_lines = [f"# Reference checkpoint key prefixes -> this module's names ({self._where_span(first)}).",
                             "REFERENCE_RENAMES = ["]
        model.class_lines += [f"    ({_py_str(r.source)}, {_py_str(r.target)})," for r in self.graph.renames]
        model.class_lines.append("]")
        model.methods.append(
            "def load_reference_state_dict(self, state_dict: dict, strict: bool = True):\n"
            '    """Load a checkpoint of the reference implementation, renaming its keys."""\n'
            "    return self.load_state_dict(rename_reference_keys(state_dict, self.REFERENCE_RENAMES), strict=strict)")

    def _doc(self) -> list[str]:
        g = self.graph
        params = ", ".join(f"{k}={show(v)}" for k, v in g.params.items())
        lines = [f"{g.block}({params})", f"from {g.span.file}:{g.span.line}.", ""]
        lines += [f"{g.node(i).outputs[0]}: {g.node(i).attrs}" for i in g.inputs]
        lines += [f"-> {o.name}: {g.output_type(o.node, o.index)}" for o in g.outputs]
        return [_safe_text(line) for line in lines]

    # ------------------------------------------------------------------ submodules
    def _reserve_modules(self) -> None:
        attrs = NameAllocator()
        for node in self.graph.ordered():
            if node.module is None or node.module in self.modules:
                continue
            problem = module_name_problem(node.module)
            if problem:
                raise error("DLC012", f"`{node.module}` cannot name a layer: it {problem}", node.span,
                            hint="pick another name; layer names become attribute and state_dict names")
            self.modules[node.module] = node.module
            attrs.reserve(node.module)
            self.init.append(f"self.{node.module} = {self._constructor(node)}  # {self._where(node)}")

    def _where(self, node: Node) -> str:
        return _safe_text(f"{node.span.file}:{node.span.line}")

    def _constructor(self, node: Node) -> str:
        if node.kind == "op":
            op = REGISTRY[node.op]
            self.helpers.update(op.helpers)
            return op.init(node.attrs)
        if node.kind == "block":
            return f"{node.op}()"
        layers: tuple[Layer, ...] = node.attrs
        parts = [self._layer_constructor(l) for l in layers]
        if len(set(parts)) == 1:
            return f"nn.ModuleList([{parts[0]} for _ in range({len(parts)})])"
        return f"nn.ModuleList([{', '.join(parts)}])"

    def _layer_constructor(self, layer: Layer) -> str:
        if layer.kind == "block":
            return f"{layer.target}()"
        op = REGISTRY[layer.target]
        if op.init is None:
            raise error("DLC005", f"repeat needs a layer with state; {layer.target} has none", layer.span)
        self.helpers.update(op.helpers)
        return op.init(layer.attrs)

    # ------------------------------------------------------------------ forward
    def _lower(self, node: Node) -> list[str]:
        g = self.graph
        operands = g.operands(node.id)
        args = [self.value_names[operands[s]] if s in operands else None for s in range(max(operands, default=-1) + 1)]
        in_types = [g.output_type(*operands[s]) if s in operands else None for s in range(len(args))]
        outs = [self.vars.fresh(name) for name in node.outputs]
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
            raise error("DLC011", f"dimension {', '.join(sorted(map(str, needed)))} is not given by any required input",
                        self.graph.span)
        return lines

    def _ties(self) -> None:
        for tie in self.graph.ties:
            self.init.append(f"{_path(tie.target)} = {_path(tie.source)}  # tied, {self._where_span(tie.span)}")

    def _where_span(self, span) -> str:
        return _safe_text(f"{span.file}:{span.line}")


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
                if sym not in builder.dim_names:
                    builder.dim_names[sym] = builder.vars.fresh(str(sym))
