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

from compiler.diagnostics import Diagnostic
from compiler.ir import Graph, Node, Program

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

from compiler.codegen.helpers import helper_names

# Names the generated file binds at module level or uses inside forward(); every helper's name.
RESERVED = {"self", "torch", "nn", "F", "math", "re"} | helper_names()

# Attributes of nn.Module that a submodule must not shadow.
MODULE_ATTRIBUTES = {
    "training", "forward", "parameters", "named_parameters", "buffers", "named_buffers", "children",
    "named_children", "modules", "named_modules", "state_dict", "load_state_dict", "to", "cuda", "cpu",
    "float", "double", "half", "bfloat16", "type", "apply", "eval", "train", "zero_grad",
    "register_buffer", "register_parameter", "register_module", "add_module", "get_submodule",
    "get_parameter", "requires_grad_", "extra_repr", "compile", "dump_patches",
}


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
    if name in MODULE_ATTRIBUTES:
        return "is an attribute of torch.nn.Module"
    return None


def class_name_problem(name: str) -> str | None:
    """Why a block name cannot be a generated class name, or None when it can."""
    problem = module_name_problem(name)
    if problem and problem != "is an attribute of torch.nn.Module":
        return problem
    if name in RESERVED or name in dir(builtins):
        return "would shadow a name the generated module uses"
    return None


def class_name_diagnostic(name: str, graph: Graph, program: Program) -> Diagnostic | None:
    """DLC012 when a block or model name cannot be a generated class name."""
    problem = class_name_problem(name)
    if problem is None:
        return None
    return Diagnostic("DLC012", f"`{name}` cannot name a generated class: it {problem}",
                      program.model_spans.get(name, graph.span), hint="rename the block or model")


def layer_name_diagnostic(node: Node) -> Diagnostic | None:
    """DLC012 when a layer's name cannot be a submodule attribute."""
    problem = module_name_problem(node.module) if node.module is not None else None
    if problem is None:
        return None
    return Diagnostic("DLC012", f"`{node.module}` cannot name a layer: it {problem}", node.span,
                      hint="pick another name; layer names become attribute and state_dict names")


def name_diagnostics(program: Program) -> list[Diagnostic]:
    """Every class and layer name that cannot reach Python, so `dlc check` reports what codegen would refuse."""
    found: list[Diagnostic] = []
    for graph in program.graphs.values():
        found.append(class_name_diagnostic(graph.key, graph, program))
        found.extend(layer_name_diagnostic(node) for node in graph.ordered())
    for public, key in program.models:
        if public != key:
            found.append(class_name_diagnostic(public, program.graphs[key], program))
    return [d for d in dict.fromkeys(found) if d is not None]     # each specialization repeats its block's names


class NameAllocator:
    def __init__(self, taken: set[str] | None = None):
        self.taken = set(RESERVED) | set(taken or ())

    def reserve(self, name: str) -> None:
        self.taken.add(name)

    def fresh(self, hint: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_]", "_", hint).strip("_") or "v"
        if base[0].isdigit():
            base = "v_" + base
        if base.startswith("__"):
            base = base.strip("_") or "v"
        if not is_identifier(base) or base in dir(builtins):
            base += "_"
        name, n = base, 1
        while name in self.taken:
            name = f"{base}_{n}"
            n += 1
        self.taken.add(name)
        return name
