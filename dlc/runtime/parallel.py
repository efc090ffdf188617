"""Tensor parallelism and FSDP for generated models, from the plan the compiler derived.

`dlc compile` writes this file as `dlc_parallel.py` beside the generated modules whose
models have a tensor-parallel plan (compiler/codegen/sharding.py); the compiler never
imports it.  It imports only torch, and torch.distributed only when called.

A generated model class lists `TP_PLAN` (module path -> style, `*` for every element of
a `repeat` stack), `TP_PACKED` (a fused projection -> how many equal parts it packs) and
`FSDP_UNITS` (groups of module paths sharded together: each element of a stack, a tied
embedding with its head).  A model inside another states its own plan, under its path.
"""
from __future__ import annotations

import functools
import re

import torch
from torch import nn


def parallelize(model: nn.Module, mesh, plan: dict | None = None, packed: dict | None = None) -> nn.Module:
    """Shard `model` in place for tensor parallelism over the 1-D device mesh `mesh` and return it.
    `plan` (default: the model's TP_PLAN, with those of the models inside it) maps module paths to
    styles: `colwise` and `rowwise`
    (Megatron's pairs: the activations between them stay sharded by heads or features),
    `packed_colwise` (a fused q/k/v or gate/up projection: each rank holds the same slice of every
    part, `packed` giving the part counts), `vocab` (an embedding sharded over its rows),
    `vocab_head` (a head over the vocabulary, its logits gathered) and `heads` (a table with a
    column per head: T5's relative position bias).  A vocabulary that does not
    divide by the mesh size stays replicated; every other width must divide (`dlc check --tp N`
    proves it before anything runs).  Parameters tied before stay tied.  The sharded modules
    take whole tensors (a full state dict, the same on every rank) as well as sharded ones."""
    from torch.distributed.tensor.parallel import parallelize_module

    plan = model_plan(model, "TP_PLAN") if plan is None else dict(plan)
    packed = model_plan(model, "TP_PACKED") if packed is None else dict(packed)
    ties = tied_parameters(model)
    styles = {}
    for pattern, style in plan.items():
        for path, module in matching_modules(model, pattern):
            chosen = tensor_parallel_style(style, module, mesh.size(), packed.get(pattern), path)
            if chosen is not None:
                styles[path] = chosen
    if styles:
        parallelize_module(model, mesh, styles)
    for path, style in styles.items():
        module = model.get_submodule(path)
        if not getattr(style, "fresh_output", False):
            module.register_forward_hook(fresh_output)
        module.register_state_dict_post_hook(contiguous_shards)
        module.register_load_state_dict_pre_hook(shard_incoming)
    retie(ties)
    return model


def model_plan(model: nn.Module, name: str) -> dict:
    """The model's TP_PLAN (or TP_PACKED) with those of the models inside it (BertForMaskedLM's
    `bert` states BertModel's), each under its module path."""
    plan = {}
    for path, module in model.named_modules():
        prefix = f"{path}." if path else ""
        plan.update({prefix + pattern: value for pattern, value in getattr(type(module), name, {}).items()})
    return plan


def contiguous_shards(module: nn.Module, state_dict: dict, prefix: str, local_metadata) -> None:
    """A state_dict hook: a packed parameter (each rank holding a slice of every part) is handed
    out replicated, since a DCP checkpoint stores each rank's piece as one contiguous block."""
    from torch.distributed.tensor import DTensor, Replicate
    from torch.distributed.tensor.placement_types import _StridedShard

    for key, value in state_dict.items():
        if key.startswith(prefix) and isinstance(value, DTensor) and \
                any(isinstance(p, _StridedShard) and p.split_factor > 1 for p in value.placements[-1:]):
            state_dict[key] = value.redistribute(value.device_mesh, [Replicate()] * value.device_mesh.ndim)


def shard_incoming(module: nn.Module, state_dict: dict, prefix: str, *args) -> None:
    """A load_state_dict pre-hook: tensors for this sharded module's parameters, whole (a full
    state dict, the same on every rank) or sharded otherwise (a DCP checkpoint), are laid out as
    its parameters before they are copied in."""
    from torch.distributed.tensor import DTensor, distribute_tensor

    for name, param in module.named_parameters(recurse=False):
        key = prefix + name
        value = state_dict.get(key)
        if not isinstance(param, DTensor) or not isinstance(value, torch.Tensor):
            continue
        if isinstance(value, DTensor):
            if value.placements != param.placements:
                state_dict[key] = value.redistribute(param.device_mesh, param.placements)
        else:
            state_dict[key] = distribute_tensor(value.to(param.dtype), param.device_mesh, param.placements)


def fresh_output(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
    """A copy of a stock style's output: DTensor hands out its local tensor as a view made by a
    custom autograd function, which autograd forbids to modify in place, and the generated code
    does so where the input is read nowhere else (residual sums, in-place activations)."""
    return output.clone()


def matching_modules(model: nn.Module, pattern: str) -> list[tuple[str, nn.Module]]:
    """The submodules a plan path names; `*` matches one dotted component (a stack's index)."""
    if not pattern:
        return [("", model)]
    regex = re.compile("\\.".join("[^.]+" if part == "*" else re.escape(part) for part in pattern.split(".")) + r"\Z")
    return [(path, module) for path, module in model.named_modules() if path and regex.match(path)]


def tensor_parallel_style(style: str, module: nn.Module, size: int, parts: int | None, path: str):
    """The torch ParallelStyle for one module, or None where it stays replicated."""
    from torch.distributed.tensor import Replicate
    from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel

    if style == "vocab":
        return RowwiseParallel(input_layouts=Replicate()) if module.num_embeddings % size == 0 else None
    if style == "vocab_head":
        return ColwiseParallel(output_layouts=Replicate()) if module.out_features % size == 0 else None
    if style == "packed_colwise" and not parts:
        raise ValueError(f"`{path}` packs parts of unequal widths (grouped-query q/k/v): they cannot be sharded "
                         "as one projection; compile at -O1, which keeps the projections apart")
    if style == "heads":
        width = module.weight.shape[-1]
    else:
        width = module.in_features if style == "rowwise" else module.out_features // (parts or 1)
    if width % size:
        raise ValueError(f"`{path}` is {style} over {width} features, which do not divide by {size} ranks")
    if style == "colwise":
        return packed_colwise_style(1)
    if style == "rowwise":
        return RowwiseParallel()
    if style == "packed_colwise":
        return packed_colwise_style(parts)
    if style == "heads":
        return per_head_style()
    raise ValueError(f"unknown tensor-parallel style {style!r} for `{path}`")


def tied_parameters(model: nn.Module) -> list[list[tuple[nn.Module, str]]]:
    """Groups of (module, parameter name) holding one parameter object (a tied embedding and head)."""
    holders: dict[int, list[tuple[nn.Module, str]]] = {}
    for module in model.modules():
        for name, param in module._parameters.items():
            if param is not None:
                holders.setdefault(id(param), []).append((module, name))
    return [group for group in holders.values() if len(group) > 1]


def retie(ties: list[list[tuple[nn.Module, str]]]) -> None:
    """Make every holder of a tie hold its first holder's (now sharded) parameter again."""
    from torch.distributed.tensor import DTensor

    for (first, first_name), *others in ties:
        kept = first._parameters[first_name]
        for module, name in others:
            other = module._parameters[name]
            placements = [getattr(t, "placements", None) if isinstance(t, DTensor) else None for t in (kept, other)]
            if placements[0] != placements[1]:
                raise ValueError(f"tied parameter `{name}` is sharded as {placements[1]} here and as {placements[0]} "
                                 "where it is tied from: give both the same style")
            module._parameters[name] = kept


def packed_colwise_style(parts: int):
    """Column parallel for a projection whose output is `parts` equal pieces (fused q, k, v; 1 for a
    plain projection): each rank holds the same slice of every piece (a strided shard of the
    weight's rows), so cutting its output in `parts` with chunk gives this rank's heads of each.
    The input is replicated: its gradient is the sum of every rank's (Megatron's `f`)."""
    from torch.distributed.tensor import Shard
    from torch.distributed.tensor.placement_types import _StridedShard

    rows = Shard(0) if parts == 1 else _StridedShard(0, split_factor=parts)
    return local_shard_style(lambda name, param: rows, copy_inputs=True, label=f"packed_colwise({parts})")


def per_head_style():
    """A table with one column per attention head (T5's relative position bias, [buckets, heads]):
    each rank holds its heads' columns, so the bias it makes matches its heads of the scores."""
    from torch.distributed.tensor import Shard

    return local_shard_style(lambda name, param: Shard(param.dim() - 1), copy_inputs=False, label="heads")


def local_shard_style(placement_of, copy_inputs: bool, label: str):
    """A ParallelStyle that shards each parameter of a module by `placement_of(name, param)` and runs
    the module's own forward on this rank's pieces (plain tensors), so its output is a plain tensor
    the generated code may modify in place.  The parameters keep the unsharded layout as their
    global view: full state dicts are those of the unsharded model."""
    from torch.distributed.tensor import distribute_module, distribute_tensor
    from torch.distributed.tensor.parallel import ParallelStyle

    class _LocalShardStyle(ParallelStyle):
        fresh_output = True

        def _apply(self, module: nn.Module, device_mesh) -> nn.Module:
            def shard(name, layer, mesh):
                for key, param in list(layer.named_parameters(recurse=False)):
                    placed = distribute_tensor(param.detach(), mesh, [placement_of(key, param)])
                    layer.register_parameter(key, nn.Parameter(placed, requires_grad=param.requires_grad))

            distribute_module(module, device_mesh, shard)
            module.forward = functools.partial(forward_on_local_shards, module, module.forward, device_mesh,
                                               copy_inputs)
            return module

        def __repr__(self) -> str:
            return label

    return _LocalShardStyle()


def forward_on_local_shards(module: nn.Module, forward, mesh, copy_inputs: bool, *args, **kwargs):
    """`forward` with the module's parameters swapped for their local pieces (autograd still
    reaches the sharded parameters), floating-point inputs marked replicated first when
    `copy_inputs`."""
    from torch.distributed.tensor import DTensor, Partial, Replicate

    if copy_inputs:
        args = tuple(DTensor.from_local(a, mesh, [Replicate()], run_check=False).to_local(grad_placements=[Partial()])
                     if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args)
    sharded = dict(module._parameters)
    for key, param in sharded.items():
        if isinstance(param, DTensor):
            module._parameters[key] = param.to_local()
    try:
        return forward(*args, **kwargs)
    finally:
        module._parameters.update(sharded)


def apply_parallelism(model: nn.Module, tp_mesh=None, dp_mesh=None, checkpoint: bool = False,
                      compile: bool | dict = False, units: tuple | None = None) -> nn.Module:
    """Tensor parallel, activation checkpointing, torch.compile and FSDP2, in this order (the
    order torchtitan applies them: each later step wraps what the earlier produced): `tp_mesh`
    shards by TP_PLAN (parallelize); `checkpoint` recomputes each FSDP unit's activations in
    backward; `compile` compiles each unit (a dict: torch.compile's options); `dp_mesh` shards parameters with `fully_shard`, each
    unit of FSDP_UNITS (every element of a `repeat` stack, a tied embedding with its head) on its
    own and the rest with the root.  Returns the model (in place)."""
    units = tuple(getattr(model, "FSDP_UNITS", ()) if units is None else units)
    if tp_mesh is not None:
        parallelize(model, tp_mesh)
    stacked = [group for group in units if any("*" in path for path in group)]
    if checkpoint:
        checkpoint_units(model, stacked)
    if compile:
        for group in stacked:
            for _, module in unit_modules(model, group):
                module.compile(**(compile if isinstance(compile, dict) else {}))
    if dp_mesh is not None:
        from torch.distributed.fsdp import fully_shard
        for group in units:
            for modules in unit_groups(model, group):
                fully_shard(modules if len(modules) > 1 else modules[0], mesh=dp_mesh)
        fully_shard(model, mesh=dp_mesh)
    return model


def unit_modules(model: nn.Module, group: tuple) -> list[tuple[str, nn.Module]]:
    return [found for path in group for found in matching_modules(model, path)]


def unit_groups(model: nn.Module, group: tuple) -> list[list[nn.Module]]:
    """The module lists one FSDP unit entry stands for: each element of a stack alone, the
    modules of a plain group (a tied embedding and head) together."""
    found = unit_modules(model, group)
    if any("*" in path for path in group):
        return [[module] for _, module in found]
    return [[module for _, module in found]] if found else []


def checkpoint_units(model: nn.Module, groups: list) -> None:
    """Wrap each stack element in torch's checkpoint wrapper; its state_dict keys stay unchanged."""
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper

    for group in groups:
        for path, module in unit_modules(model, group):
            parent, _, name = path.rpartition(".")
            setattr(model.get_submodule(parent), name, checkpoint_wrapper(module))   # a ModuleList's "0" too
