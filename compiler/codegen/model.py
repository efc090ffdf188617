"""Typed IR -> a plain "module model": every name and line of the generated
file decided in Python, so the templates only lay them out.

Check per instance, emit per definition: the specializations of each block
definition are rendered in its parameters' terms and merged into one class
(definition.py, merge.py); model variants (`model ResNet18 = ResNet(depth=18)`)
become subclasses that fix those parameters.
"""
from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from compiler.check.decoding import decoding_entry
from compiler.codegen.definition import ClassModel, Context, DefinitionBuilder, alias_class, definition_order
from compiler.codegen.merge import Variant
from compiler.codegen.interface import tuple_source
from compiler.codegen.names import class_name_diagnostic, class_name_problem
from compiler.codegen.parallel_plan import has_plan, parallel_plan_lines
from compiler.codegen.runtime_module import runtime_import_lines
from compiler.codegen.sharding import SHARDING_MODULE
from compiler.diagnostics import CompileError, Diagnostic
from compiler.diagnostics.codes import INVALID_IDENTIFIER
from compiler.ir import Graph, Node, Program
from compiler.ops import REGISTRY

# Columns of a method's docstring, as the hand-written helpers' docstrings.
DOC_WIDTH = 96


@dataclass
class FileModel:
    source: str
    doc: str
    options: str = ""
    helpers: list[str] = field(default_factory=list)
    classes: list[ClassModel] = field(default_factory=list)
    exports: list[str] = field(default_factory=list)
    import_lines: list[str] = field(default_factory=list)


def _safe_text(text: str) -> str:
    """Text for a comment or docstring: one line of printable characters, no quotes that could close it."""
    text = text.replace("\\", "/").replace('"', "'")
    return "".join(c if c.isprintable() else " " for c in text)


def build_file_model(program: Program, notes: list[str] | None = None, options: str = "",
                     path: Callable[[str], str] = str, standalone: bool = False) -> FileModel:
    """The module model of a program; `notes` collects what --explain says about splits, `path`
    writes a spec's path as the generated file shows it (relative to the project).  The runtime
    helpers it uses are imported from dlc_runtime, or with `standalone` copied into it."""
    ctx = Context(program, lambda span: _safe_text(f"{path(span.file)}:{span.line}"))
    classes: list[ClassModel] = []
    results: list[str] = []
    for keys in definition_order(program):
        results += _output_tuples(program, keys, ctx)
        for model, variant in DefinitionBuilder(ctx, keys).build():
            _check_class_name(model.name, variant, program)
            if _loads_reference(variant, program):
                ctx.helpers.add("ReferenceCheckpointMixin")
                model.bases = "ReferenceCheckpointMixin, nn.Module"
            elif any(m.graph.is_model for m in variant.members):
                model.methods.append(_PLAIN_REFERENCE_LOADER)
            if any(m.graph.is_model for m in variant.members):
                _add_parallel_plan(model, variant, program, ctx)
            _add_generation(model, variant, ctx)
            if program.optimize_for_inference and any(m.graph.is_model for m in variant.members):
                model.methods.append(_inference_preparation(model.name, variant, program, ctx.helpers))
                training = _training_preparation(model.name, variant, program, ctx.helpers)
                if training:
                    model.methods.append(training)
            model.bases = model.bases.replace("nn.Module", "WeightInitMixin, nn.Module")
            ctx.helpers.add("WeightInitMixin")
            classes.append(model)
    classes += _alias_classes(program, ctx)
    for model in classes:
        model.doc = [_safe_text(line) for line in model.doc]
    source = _safe_text(path(program.source))
    file = FileModel(source, f"PyTorch modules compiled from {source}.", options)
    file.classes = classes
    from compiler.codegen.helpers import helper_closure, helper_names, helper_sources
    used = ctx.helpers | _called_helpers(classes, helper_names())
    runtime: list[str] = []
    if standalone:
        file.helpers = helper_sources(used) + results
    else:       # the names the classes read; dlc_runtime holds the helpers those use in turn
        file.helpers = results
        read = _names_read(classes)
        runtime = sorted(name for name in helper_closure(used) if name in read)
    file.import_lines = import_lines(file.helpers, classes)
    if runtime:
        file.import_lines += ["", *runtime_import_lines(runtime, Path(program.source).stem)]
    file.exports = sorted({public for public, _ in program.models}, key=_export_order)
    if notes is not None:
        notes.extend(ctx.notes)
    return file


def _output_tuples(program: Program, keys: list[str], ctx: Context) -> list[str]:
    """The NamedTuples a model definition with several outputs returns (codegen/interface.py)."""
    block = program.graphs[keys[0]].definition
    results = list({r.name: r for k in keys if (r := ctx.results.get(k)) is not None}.values())
    taken = {g.block for g in program.graphs.values()} | {public for public, _ in program.models}
    sources = []
    for result in results:
        if result.name in taken or class_name_problem(result.name):
            raise CompileError([Diagnostic(INVALID_IDENTIFIER, f"`{result.name}`, the name of {block.name}'s output "
                                           "tuple, is taken", block.name_span, hint=f"rename the block `{result.name}`")])
        doc = (f"{result.name.removesuffix('Output')}'s outputs ({ctx.where(block.span)}); indexing and unpacking "
               "work as on a tuple.")
        sources.append(tuple_source(result, _safe_text(doc)))
    return sources


def _add_parallel_plan(model: ClassModel, variant: Variant, program: Program, ctx: Context) -> None:
    """TP_PLAN, TP_PACKED and FSDP_UNITS on a model class, and where there is something to shard
    the pointer to the module that applies them."""
    keys = [m.graph.key for m in variant.members]
    same_class = {}
    for key, name in ctx.class_of.items():
        same_class.setdefault(name, []).append(key)
    lines, inner = parallel_plan_lines(program, keys, lambda key: same_class.get(ctx.class_of.get(key), [key]))
    if has_plan(program, keys):      # the code that applies it is one module for every model (codegen/sharding.py)
        graphs = {n.module: n.op for m in variant.members for n in m.graph.ordered() if n.kind == "block"}
        beside = "".join(f"; {ctx.class_of[graphs[m]]}'s in `{m}` too" for m in inner)
        packed = "; TP_PACKED: fused layers' parts" \
            if any(line.startswith("TP_PACKED") for line in lines) else ""
        pointer = f"# Tensor-parallel plan (path -> style{beside}{packed}): {SHARDING_MODULE}.parallelize(model, mesh)"
        lines = [pointer, *lines[1:]] if lines[0].startswith("# Tensor-parallel") else [pointer, *lines]
    model.class_lines += lines


def _add_generation(model: ClassModel, variant: Variant, ctx: Context) -> None:
    """A model that says `decode logits from tokens` gets `generate()` (GenerationMixin,
    dlc/runtime/decoding.py); check_decoding has made sure it can."""
    graphs = [m.graph for m in variant.members if m.graph.decode is not None]
    if not graphs:
        return
    entry = decoding_entry(graphs[0], ctx.decoding.uses_cache)
    ctx.helpers.add("GenerationMixin")
    model.bases = "GenerationMixin, " + model.bases
    where = ctx.where(graphs[0].decode.span)
    source = f'"{entry.source}"' if entry.source else "None"
    mask = f'"{entry.mask}"' if entry.mask else "None"
    keeps = graphs[0].key in ctx.decoding.heads       # its forward can score the last position only
    model.class_lines += [f"# generate(): the inputs of the decoded ids, the source and its mask, the logits "
                          f"output, whether forward takes logits_to_keep ({where}).",
                          f'DECODING: typing.ClassVar[dict] = {{"tokens": "{entry.tokens}", "source": {source}, '
                          f'"mask": {mask}, "logits": {entry.logits}, "keeps_logits": {keeps}}}']


# An identifier that is not an attribute (`x.name`): its whole name, as one token.  Collecting the
# tokens of the code once and looking names up in the set is one pass over the code, where a search
# per name was one pass per name (most of codegen's time on large models).
_PLAIN_NAME = re.compile(r"(?<![.\w])([A-Za-z_]\w*)")
_PLAIN_CALL = re.compile(r"(?<![.\w])([A-Za-z_]\w*)\(")


def _called_helpers(classes: list[ClassModel], helpers: set[str]) -> set[str]:
    """Helpers the printed expressions call (`make_divisible(...)` in a constructor)."""
    code = "\n".join(line for c in classes for line in (*c.init_def, *c.init_lines, *c.forward_lines, *c.methods))
    return helpers & set(_PLAIN_CALL.findall(code))


def _check_class_name(name: str, variant: Variant, program: Program) -> None:
    invalid = class_name_diagnostic(name, variant.members[0].graph, program)
    if invalid:
        raise CompileError([invalid])


def _alias_classes(program: Program, ctx: Context) -> list[ClassModel]:
    """Entry points named otherwise than their class: the spec's `model A = B(...)` variants."""
    found = []
    for public, key in program.models:
        base = ctx.class_of[key]
        if public == base:
            continue
        invalid = class_name_diagnostic(public, program.graphs[key], program)
        if invalid:
            raise CompileError([invalid])
        graph = program.graphs[key]
        params = {p.name: p.name for p in graph.definition.params}
        span = program.model_spans.get(public, graph.span)
        found.append(alias_class(public, base, graph.definition, program.alias_args.get(public, ()), graph,
                                 ctx.where(span), params, ctx.fixed.get(base, {})))
    return found


def _inference_preparation(name: str, variant: Variant, program: Program, helpers: set[str]) -> str:
    """`optimize_for_inference`, with the steps that apply to the layers this model holds."""
    graphs = [g for m in variant.members for g in _reachable_graphs(m.graph, program)]
    ops = {op for g in graphs for op in _ops(g)}
    steps, done = ["self.eval()"], ["eval mode"]
    if any(g.conv_bn_folds for g in graphs):
        helpers.add("fold_conv_bn")
        steps.append("fold_conv_bn(self)")
        done.append("batch norms folded into the convolutions before them")
    if "Conv2d" in ops:
        # Channels-last: measured on CPU (2 threads, batch 8) 20-40% faster for ResNet-50, MobileNetV2 and
        # VGG-16; with example inputs the helper measures it again on this machine and keeps the faster.
        helpers.add("choose_memory_format")
        steps.append("summary += choose_memory_format(self, example_inputs)")
        done.append("channels-last convolution weights where that is faster")
    swaps_layers = any(g.epilogues or g.conv_epilogue for g in graphs) or bool(
        ops & {"Linear", "FusedLinear", "TransposedLinear"})
    if swaps_layers:
        # The layers as compiled (batch norms folded), for the whole-model check at the end.
        helpers.add("module_slots")
        steps.append("compiled = module_slots(self)")
    if any(g.epilogues or g.conv_epilogue for g in graphs):
        # Before the linear kernels are chosen: a linear layer fused with its activation is not packed again.
        helpers.add("fuse_epilogues")
        steps.append("summary += fuse_epilogues(self, example_inputs, kernels)")
        done.append("convolution (+ residual sum) + activation and linear + GELU chains as one oneDNN kernel on "
                    "pre-packed weights where that measures faster")
    if ops & {"Linear", "FusedLinear", "TransposedLinear"}:
        helpers.add("choose_linear_kernels")
        steps.append("summary += choose_linear_kernels(self, example_inputs, kernels)")
        done.append("each linear layer shape on the fastest kernel measured on this machine (plain, or "
                    "pre-packed oneDNN or MKL weights, on CPU)")
    if swaps_layers:
        # Each kernel was chosen on its layer alone: keep the choices only if the whole model gains.
        helpers.add("keep_if_faster")
        steps.append("summary += keep_if_faster(self, compiled, example_inputs, kernels)")
        done.append("the chosen layers kept only if the whole forward of `example_inputs` is not slower with them")
    doc = (f"Prepare this model for inference, in place, and return it: {', '.join(done)}.  Load the "
           "weights first: the prepared layers no longer match a checkpoint, and are not for training.  "
           "`example_inputs` (a batch like those to be served) make the measurements use their shapes; "
           "`kernels` is \"measure\", \"plain\", a packed kernel's name, or \"fused\" (every fused kernel, plain "
           "linear layers otherwise).  What was chosen, and why: "
           "`self.inference_summary`.")
    lines = textwrap.wrap(f'"""{doc}"""', DOC_WIDTH)
    uses_summary = any("summary +=" in step for step in steps)
    signature = "self, *example_inputs: torch.Tensor, kernels: str = \"measure\"" if uses_summary else "self"
    body = [f'def optimize_for_inference({signature}) -> "{name}":', *(f"    {line}" for line in lines),
            *(f"    {step}" for step in steps[:1]), *(["    summary = []"] if uses_summary else []),
            *(f"    {step}" for step in steps[1:]),
            *(["    self.inference_summary = summary"] if uses_summary else []), "    return self"]
    return "\n".join(body)


def _training_preparation(name: str, variant: Variant, program: Program, helpers: set[str]) -> str | None:
    """`optimize_for_training`, for a model holding linear layers or convolutions: each linear layer
    shape's GEMMs on the library measured faster here (choose_training_kernels), and channels-last
    convolution weights where a forward + backward measures faster (choose_training_memory_format)."""
    graphs = [g for m in variant.members for g in _reachable_graphs(m.graph, program)]
    ops = {op for g in graphs for op in _ops(g)}
    steps, done = [], []
    if "Conv2d" in ops:
        helpers.add("choose_training_memory_format")
        steps.append("summary += choose_training_memory_format(self, example_inputs, kernels)")
        done.append("channels-last convolution weights where one forward + backward of `example_inputs` "
                    "measures faster")
    if ops & {"Linear", "FusedLinear", "TransposedLinear"}:
        helpers.add("choose_training_kernels")
        steps.append("summary += choose_training_kernels(self, example_inputs, kernels)")
        done.append("each linear layer's forward and backward GEMMs, on CPU in fp32, on the library measured "
                    "faster here for its shape (torch's, or oneDNN's)")
    if not steps:
        return None
    doc = (f"Prepare this model for training, in place, and return it: {', '.join(done)}.  The parameters "
           "stay the same tensors (an optimizer built before keeps working) and checkpoints load as before; "
           "gradients match torch's to rounding.  `example_inputs` (a batch like those to be trained on) make "
           "the measurements use their shapes; `kernels=\"onednn\"` or `\"plain\"` sets the linear layers' library "
           "without measuring, and \"plain\" leaves the convolutions' layout as it is.  What was chosen, and "
           "why: `self.training_summary`.")
    lines = textwrap.wrap(f'"""{doc}"""', DOC_WIDTH)
    signature = f'def optimize_for_training(self, *example_inputs: torch.Tensor, kernels: str = "measure") -> "{name}":'
    return "\n".join([signature, *(f"    {line}" for line in lines), "    summary = []", *(f"    {s}" for s in steps),
                      "    self.training_summary = summary", "    return self"])


# Every model loads reference checkpoints; one without renames or transposed layouts takes them as they are.
_PLAIN_REFERENCE_LOADER = (
    "def load_reference_state_dict(self, state_dict: dict, strict: bool = True):\n"
    '    """Load a checkpoint of the reference implementation, whose keys are this model\'s."""\n'
    "    return self.load_state_dict(state_dict, strict=strict)")


def _loads_reference(variant: Variant, program: Program) -> bool:
    """Whether a block, or one anywhere inside it, declares `rename` rules or holds a layer whose
    reference checkpoints store a tensor transposed."""
    graphs = [g for m in variant.members for g in _reachable_graphs(m.graph, program)]
    return any(g.renames for g in graphs) or any(
        REGISTRY[node.op].reference_transposed for g in graphs for node in g.ordered() if node.kind == "op")


def import_lines(helpers: list[str], classes: list[ClassModel]) -> list[str]:
    """The imports of a module holding `helpers` (source texts) and `classes`: standard-library
    modules only where used (isort's groups, a blank line between), then torch; `F` only where used."""
    code = [*helpers, *(line for c in classes for line in _class_code(c))]
    lines = [f"import {name}" for name in ("functools", "math", "re", "threading", "time", "traceback", "typing")
             if _uses(code, name)]
    # isort's order: the plain imports, then the `from` ones, each by module
    if any("Callable[" in helper for helper in helpers):              # the decoding step's type
        lines.append("from collections.abc import Callable")
    if any(helper.startswith("@dataclass") for helper in helpers):     # the decoding state
        lines.append("from dataclasses import dataclass")
    lines += ["", "import torch", "from torch import nn"]
    return lines + (["from torch.nn import functional as F"] if _uses(code, "F") else [])


def _class_code(model: ClassModel) -> list[str]:
    return [model.bases, *model.class_lines, *model.init_def, *model.init_lines, model.signature, model.returns,
            *model.forward_lines, *model.methods]


def _uses(code: list[str], name: str) -> bool:
    return any(re.search(rf"\b{name}\.", text) for text in code)


def _names_read(classes: list[ClassModel]) -> set[str]:
    """The names the classes' code reads: not as an attribute (`self.name` is another thing), nor
    in a comment."""
    return {name for c in classes for line in _class_code(c)
            for name in _PLAIN_NAME.findall(re.sub(r"(^|\s)#.*", "", line))}


def _export_order(name: str) -> tuple:
    """isort's order, as ruff's RUF022 wants `__all__`: CONSTANTS, then Classes, then the rest,
    each in natural order (ResNet18 before ResNet101)."""
    category = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    return category, [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


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


