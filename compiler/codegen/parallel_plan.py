"""A model class's parallelism plan, as class attributes the runtime's `parallelize` and
`apply_parallelism` read (dlc/runtime/parallel.py):

    TP_PLAN     module path -> tensor-parallel style, `*` for each element of a `repeat`
                stack (the shape of HF's `base_model_tp_plan`), derived by check/parallel.py
    TP_PACKED   a fused projection -> how many equal parts it packs (q, k, v: 3)
    FSDP_UNITS  groups of module paths that fully_shard wraps as one unit: each element of a
                stack alone, a tied embedding and head together

A class stands for every configuration of its definition the spec uses: the plan is the
union of theirs (the paths a configuration lacks match no module at run time).  A model
inside another (BertForMaskedLM's `bert`) brings its own class's plan, which `parallelize`
reads under its path: the outer class lists only the rest.
"""
from __future__ import annotations

from typing import Callable

from compiler.check.parallel import Plan, derive_plan
from compiler.ir import Graph, Program


def parallel_plan_lines(program: Program, keys: list[str],
                        class_keys: Callable[[str], list[str]] = lambda key: [key]) -> tuple[list[str], list[str]]:
    """The class-body lines of a model class whose configurations are the graphs `keys`, and the
    modules in it that hold a model with a plan of its own, which `parallelize` reads there
    (`class_keys`: the configurations the class of a graph builds)."""
    plans = [derive_plan(program, key) for key in keys]
    styles, packed = _styles(plans)
    units = _fsdp_units(program, keys, plans)
    inner = _planned_models_inside(program, keys, styles, packed, class_keys)
    styles = {path: style for path, style in styles.items() if not _under(path, inner)}
    packed = {path: parts for path, parts in packed.items() if not _under(path, inner)}
    lines = []
    if styles:
        lines += ["# Tensor-parallel plan derived from the block structure (module path -> style; `parallelize`)"
                  + ("; TP_PACKED: a fused projection's equal parts, each sharded on its own." if packed else ".")]
        lines += _mapping("TP_PLAN", {path: f'"{style}"' for path, style in styles.items()}, "str")
    if packed:          # explained with TP_PLAN, whose packed_colwise layers it gives the part counts of
        lines += _mapping("TP_PACKED", {path: str(parts) for path, parts in packed.items()}, "int")
    lines += ["# What fully_shard wraps as one unit (`apply_parallelism`); the root holds the rest."]
    lines += [f"FSDP_UNITS = ({', '.join(_tuple(unit) for unit in units)}{',' if len(units) == 1 else ''})"]
    return lines, inner


def _styles(plans: list[Plan]) -> tuple[dict[str, str], dict[str, int]]:
    """TP_PLAN's entries and TP_PACKED's, over the configurations' plans."""
    styles = {s.path: s.style for plan in plans for s in plan.shards}
    packed = {s.path: len(s.sizes) for plan in plans for s in plan.shards
              if s.style == "packed_colwise" and s.equal_parts}
    return styles, packed


def _planned_models_inside(program: Program, keys: list[str], styles: dict[str, str], packed: dict[str, int],
                           class_keys: Callable[[str], list[str]]) -> list[str]:
    """The modules holding a model (BertForMaskedLM's `bert`) whose class's plan is, under their
    path, exactly this class's: that class states it, this one does not repeat it."""
    found: dict[str, None] = {}
    for key in keys:
        for node in program.graphs[key].ordered():
            if node.kind != "block" or not node.module or not program.graphs[node.op].definition.is_model:
                continue
            prefix = f"{node.module}."
            own_styles, own_packed = _styles([derive_plan(program, k) for k in class_keys(node.op)])
            if own_styles and _prefixed(own_styles, prefix) == _within(styles, prefix) and \
                    _prefixed(own_packed, prefix) == _within(packed, prefix):
                found[node.module] = None
    return list(found)


def _prefixed(entries: dict, prefix: str) -> dict:
    return {prefix + path: value for path, value in entries.items()}


def _within(entries: dict, prefix: str) -> dict:
    return {path: value for path, value in entries.items() if path.startswith(prefix)}


def _under(path: str, modules: list[str]) -> bool:
    return any(path.startswith(f"{module}.") for module in modules)


def has_plan(program: Program, keys: list[str]) -> bool:
    """Whether any configuration shards a layer (language models; not the convolutional ones)."""
    return any(derive_plan(program, key).shards for key in keys)


def _mapping(name: str, entries: dict[str, str], value_type: str) -> list[str]:
    declared = f"{name}: typing.ClassVar[dict[str, {value_type}]]"
    one_line = f"{declared} = {{{', '.join(f'{chr(34)}{path}{chr(34)}: {value}' for path, value in entries.items())}}}"
    if len(one_line) <= 116:         # the class body's indent within ruff's 120 columns
        return [one_line]
    return [f"{declared} = {{", *(f'    "{path}": {value},' for path, value in entries.items()), "}"]


def _tuple(paths: tuple[str, ...]) -> str:
    return f"({', '.join(f'{chr(34)}{p}{chr(34)}' for p in paths)}{',' if len(paths) == 1 else ''})"


def _fsdp_units(program: Program, keys: list[str], plans: list[Plan]) -> list[tuple[str, ...]]:
    """Each repeat stack's elements, then each tie's modules (an embedding and the head that
    reads its matrix must gather and free that parameter together)."""
    units: dict[tuple[str, ...], None] = {}
    stacks = list(dict.fromkeys(unit for plan in plans for unit in plan.wrap_units))
    # A stack inside another's elements (VGG's convs in its stages) is already inside a unit.
    units.update({(unit,): None for unit in stacks
                  if not any(unit.startswith(outer[:-1]) for outer in stacks if outer != unit)})
    for key in keys:
        units.update({group: None for group in _tie_groups(program, program.graphs[key], "")})
    return list(units)


def _tie_groups(program: Program, graph: Graph, prefix: str, memo: dict | None = None) -> list[tuple[str, ...]]:
    """(module holding the source, module holding the target) of every tie, in this graph and in
    the blocks it holds (not inside stacks, whose elements are units already); each block
    configuration's groups are found once, relative to it."""
    memo = {} if memo is None else memo
    if graph.key not in memo:
        found = [tuple(dict.fromkeys(".".join(side[:-1]) for side in (tie.source, tie.target))) for tie in graph.ties]
        for node in graph.ordered():
            if node.kind == "block" and node.module:
                found += [tuple(f"{node.module}.{path}" for path in group)
                          for group in _tie_groups(program, program.graphs[node.op], "", memo)]
            if len(found) > 10_000:      # 2**depth instances: no unit list anyone would use
                break
        memo[graph.key] = list(dict.fromkeys(found))
    return [tuple(prefix + path for path in group) for group in memo[graph.key]]
