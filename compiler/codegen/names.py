"""Collision-free identifiers for generated code.

Every name that reaches Python goes through a `NameAllocator`: keywords,
dunders, builtins we rely on and names already taken get a suffix.  Module
attribute names become state_dict keys, so those are validated instead of
renamed (see `check_module_name`).
"""
from __future__ import annotations

import builtins
import keyword
import re
import sys
from functools import lru_cache
from pathlib import Path

from compiler.diagnostics import Diagnostic, Span
from compiler.ir import Graph, Node, Program
from compiler.diagnostics.codes import INVALID_IDENTIFIER

# Looked up for every name allocated: dir() builds and sorts a fresh list on each call.
_BUILTINS = frozenset(dir(builtins))

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

# Names the generated module imports (see model._import_lines) and binds itself besides its classes.
IMPORTED_NAMES = frozenset({"torch", "nn", "F", "functools", "math", "re", "time", "traceback", "typing", "NamedTuple", "dataclass", "Callable"})
MODULE_NAMES = frozenset({"__all__"})

# What the generated class defines besides the layers: the members codegen emits
# (model.py) on top of nn.Module's.  tests/test_names.py checks every generated file against it.
CLASS_MEMBERS = frozenset({"__init__", "forward", "REFERENCE_RENAMES", "TIED_WEIGHTS", "CONV_BN_FOLDS",
                           "EPILOGUES", "CONV_EPILOGUE", "RESIDUAL_OVERWRITES", "DONATES", "load_reference_state_dict",
                           "optimize_for_inference",
                           "inference_summary", "optimize_for_training", "training_summary", "TP_PLAN", "TP_PACKED", "FSDP_UNITS", "init_weights", "tie_weights",
                           "init_rules", "LAYER_OPS",
                           "DECODING", "generate"})       # generate() and its entry (`decode`, GenerationMixin)

# Attributes of an nn.Module instance, written by scripts/derive_reserved_names.py from the
# installed torch (a union over the versions it has been run with); a test keeps it current.
NN_MODULE_ATTRIBUTES_FILE = Path(__file__).with_name("nn_module_attributes.txt")

# Packages a generated module imports or sits beside; a module named like one would shadow it.
THIRD_PARTY_MODULES = frozenset({"torch", "torchvision", "torchaudio", "transformers", "numpy", "triton", "sympy",
                                 "onnx", "onnxruntime", "dlc", "compiler", "dlc_parallel",
                                 "dlc_runtime"})


@lru_cache(maxsize=1)
def nn_module_attributes() -> frozenset[str]:
    lines = NN_MODULE_ATTRIBUTES_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def helper_names() -> frozenset[str]:
    """Every module-level name the emitted helpers define (dlc/runtime/helpers.py)."""
    from compiler.codegen.helpers import helper_names as defined
    return frozenset(defined())


@lru_cache(maxsize=1)
def module_level_names() -> frozenset[str]:
    """Names a generated module binds at top level besides its classes: what a block name must not take."""
    return IMPORTED_NAMES | MODULE_NAMES | helper_names()


@lru_cache(maxsize=1)
def reserved_attribute_names() -> frozenset[str]:
    """Names a layer (a submodule attribute) must not take: nn.Module's and the generated class's own."""
    return nn_module_attributes() | CLASS_MEMBERS


@lru_cache(maxsize=1)
def reserved_names() -> dict[str, frozenset[str]]:
    """The whole reserved set, by why each name is reserved (tests enumerate it)."""
    return {"keyword": frozenset(keyword.kwlist), "soft keyword": frozenset(keyword.softkwlist),
            "builtin": frozenset(dir(builtins)), "nn.Module attribute": nn_module_attributes(),
            "generated class member": CLASS_MEMBERS, "generated module name": module_level_names()}


# Kept for callers that read the module-level names as a set.
RESERVED = {"self"} | set(IMPORTED_NAMES)


def is_identifier(name: str) -> bool:
    return bool(_IDENT.match(name)) and not keyword.iskeyword(name) and not keyword.issoftkeyword(name)


def module_name_problem(name: str) -> str | None:
    """Why `name` cannot be a submodule attribute, or None when it can."""
    if not _IDENT.match(name):
        return "is not a Python identifier"
    if keyword.iskeyword(name):
        return "is a Python keyword"
    if name.startswith("__") or name.endswith("__"):
        return "is a dunder name"
    if name in nn_module_attributes():
        return "is an attribute of torch.nn.Module"
    if name in CLASS_MEMBERS:
        return "is a member the generated class defines"
    return None


def class_name_problem(name: str) -> str | None:
    """Why a block name cannot be a generated class name, or None when it can."""
    if not _IDENT.match(name):
        return "is not a Python identifier"
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return "is a Python keyword"
    if name.startswith("__") or name.endswith("__"):
        return "is a dunder name"
    if name in module_level_names() or name == "self":
        return "would shadow a name the generated module uses"
    if name in _BUILTINS:
        return "would shadow a Python builtin"
    return None


def output_module_problem(stem: str) -> str | None:
    """Why a spec's file name cannot name its generated module (`generated/<stem>.py`), or None."""
    if not _IDENT.match(stem):
        return "is not a Python identifier, so no `import` can load the module"
    if keyword.iskeyword(stem):      # soft keywords (`match`, `type`) import fine
        return "is a Python keyword, so no `import` can load the module"
    if stem.startswith("__") or stem.endswith("__"):
        return "is a dunder name (`__init__` is the package's own file)"
    if stem in sys.stdlib_module_names or stem in THIRD_PARTY_MODULES:
        return f"would shadow the `{stem}` module wherever the output folder is on sys.path"
    return None


def suggest_module_name(stem: str) -> str:
    """A module name close to `stem` that output_module_problem accepts."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", stem).strip("_") or "model"
    if name[0].isdigit():
        name = "model_" + name
    while output_module_problem(name):
        name += "_model"
    return name


def output_module_diagnostic(spec_display: str, stem: str) -> Diagnostic | None:
    """DLC012 when the spec's file name cannot become the name of its generated module."""
    problem = output_module_problem(stem)
    if problem is None:
        return None
    suggestion = suggest_module_name(stem)
    return Diagnostic(INVALID_IDENTIFIER, f"the spec's file name `{stem}` cannot name its generated module: it {problem}",
                      Span(spec_display, 1, 1, 1, 2), hint=f"rename the spec to `{suggestion}.dl`")


def class_name_diagnostic(name: str, graph: Graph, program: Program) -> Diagnostic | None:
    """DLC012 when a block or model name cannot be a generated class name."""
    problem = class_name_problem(name)
    if problem is None:
        return None
    return Diagnostic(INVALID_IDENTIFIER, f"`{name}` cannot name a generated class: it {problem}",
                      program.model_spans.get(name, graph.span), hint="rename the block or model")


def layer_name_diagnostic(node: Node, graph: Graph | None = None) -> Diagnostic | None:
    """DLC012 when a layer's name cannot be a submodule attribute; at the line that binds
    the name (`training = Linear(d, d)`) when the graph knows it."""
    problem = module_name_problem(node.module) if node.module is not None else None
    if problem is None:
        return None
    span = graph.layer_spans.get(node.module, node.span) if graph is not None else node.span
    return Diagnostic(INVALID_IDENTIFIER, f"`{node.module}` cannot name a layer: it {problem}", span,
                      hint="pick another name; layer names become attribute and state_dict names")


def name_diagnostics(program: Program) -> list[Diagnostic]:
    """Every class and layer name that cannot reach Python, so `dlc check` reports what codegen would refuse."""
    found: list[Diagnostic] = []
    for graph in program.graphs.values():
        found.append(class_name_diagnostic(graph.key, graph, program))
        found.extend(layer_name_diagnostic(node, graph) for node in graph.ordered())
    for public, key in program.models:
        if public != key:
            found.append(class_name_diagnostic(public, program.graphs[key], program))
    return [d for d in dict.fromkeys(found) if d is not None]     # each specialization repeats its block's names


class NameAllocator:
    def __init__(self, taken: set[str] | None = None):
        self.taken = set(RESERVED) | module_level_names() | set(taken or ())

    def reserve(self, name: str) -> None:
        self.taken.add(name)

    def fresh(self, hint: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_]", "_", hint).strip("_") or "v"
        if base[0].isdigit():
            base = "v_" + base
        if base.startswith("__"):
            base = base.strip("_") or "v"
        if not is_identifier(base) or base in _BUILTINS:
            base += "_"
        name, n = base, 1
        while name in self.taken:
            name = f"{base}_{n}"
            n += 1
        self.taken.add(name)
        return name
